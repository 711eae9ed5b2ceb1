import type { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { RedisConnection } from './redis-connection.js';

/** Keys per SCAN call: buckets visited, not matches returned (PITFALLS). */
export const SCAN_COUNT = 1000;
/** Keys per UNLINK call. */
export const UNLINK_BATCH = 500;
/** UNLINK calls in flight at once while scanning goes on. */
const MAX_IN_FLIGHT = 8;

/**
 * The cache operations the tool uses, and only those (one JSON format, SCAN
 * never KEYS, UNLINK never DEL), each under the connection's deadline.
 */
export class RedisCache {
  constructor(readonly conn: RedisConnection) {}

  /** The parsed JSON at `key`; undefined on a miss or a value that is not JSON. */
  async getJson(key: string): Promise<unknown | undefined> {
    const raw = await this.conn.run(`GET ${key}`, () => this.conn.client.get(key));
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return undefined;
    }
  }

  async setJson(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    const json = JSON.stringify(value);
    await this.conn.run(`SET ${key}`, () => this.conn.client.set(key, json, 'EX', ttlSeconds));
  }

  /**
   * UNLINKs keys (non-blocking delete: DEL of a large value blocks the server,
   * redis/redis#1748), grouped by hash slot so a cluster never sees CROSSSLOT.
   * Returns how many keys existed and were removed.
   */
  async unlink(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const groups = this.conn.mode === 'cluster' ? groupBySlot(keys) : [keys];
    let removed = 0;
    for (const group of groups) {
      for (let i = 0; i < group.length; i += UNLINK_BATCH) {
        const batch = group.slice(i, i + UNLINK_BATCH);
        removed += await this.conn.run(`UNLINK (${batch.length} keys)`, () => this.conn.client.unlink(...batch));
      }
    }
    return removed;
  }

  /**
   * Walks the whole keyspace of every master with SCAN (MATCH `glob` when
   * given), until each cursor is back at "0" even through empty pages.
   * Pages are handed to `onPage` as they come; a key may repeat across pages.
   */
  async scan(glob: string | undefined, onPage: (keys: string[]) => void | Promise<void>, count = SCAN_COUNT): Promise<void> {
    await Promise.all(this.conn.masters().map((node) => this.scanNode(node, glob, onPage, count)));
  }

  private async scanNode(node: Redis, glob: string | undefined, onPage: (keys: string[]) => void | Promise<void>, count: number) {
    let cursor = '0';
    do {
      const [next, keys] = await this.conn.run('SCAN', () =>
        glob === undefined ? node.scan(cursor, 'COUNT', count) : node.scan(cursor, 'MATCH', glob, 'COUNT', count),
      );
      cursor = next;
      if (keys.length) await onPage(keys);
    } while (cursor !== '0');
  }

  /**
   * Scans and UNLINKs every key that `select` accepts, overlapping the deletes
   * with the scan. Returns the number of keys removed per selected group.
   */
  async scanAndUnlink(glob: string | undefined, select: (key: string) => string | undefined): Promise<Map<string, number>> {
    const removed = new Map<string, number>();
    const inFlight = new Set<Promise<void>>();
    await this.scan(glob, async (keys) => {
      const chosen = new Map<string, string[]>();
      for (const k of keys) {
        const group = select(k);
        if (group === undefined) continue;
        const list = chosen.get(group) ?? [];
        list.push(k);
        chosen.set(group, list);
      }
      for (const [group, list] of chosen) {
        // UNLINK answers how many existed, so a key SCAN returned twice is counted once.
        const p: Promise<void> = this.unlink(list).then((n) => {
          removed.set(group, (removed.get(group) ?? 0) + n);
        });
        const tracked = p.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
      while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    });
    await Promise.all(inFlight);
    return removed;
  }

  /** INFO of every master, parsed into maps. */
  async info(): Promise<Array<Record<string, string>>> {
    return Promise.all(
      this.conn.masters().map(async (node) => parseInfo(await this.conn.run('INFO', () => node.info()))),
    );
  }

  /** Round-trip time of one PING, ms. */
  async pingMs(): Promise<number> {
    const start = process.hrtime.bigint();
    await this.conn.run('PING', () => this.conn.client.ping());
    return Number(process.hrtime.bigint() - start) / 1e6;
  }
}

function groupBySlot(keys: string[]): string[][] {
  const bySlot = new Map<number, string[]>();
  for (const k of keys) {
    const slot = calculateSlot(k);
    const list = bySlot.get(slot) ?? [];
    list.push(k);
    bySlot.set(slot, list);
  }
  return [...bySlot.values()];
}

/** `INFO` text -> { field: value } (sections merged; `# Section` lines skipped). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
