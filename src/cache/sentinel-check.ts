import { isIP } from 'node:net';
import { BackendUnavailableError } from '../errors.js';
import { seedShare, type RedisSpec } from './redis-spec.js';
import { withDeadline } from './deadline.js';

/** What this needs of a client (the ioredis adapter hands in its own; nothing here imports ioredis). */
export interface SentinelClient {
  readonly status: string;
  connect(): Promise<void>;
  call(...args: string[]): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** Connection options as the adapter builds them (its base options for every client). */
type ClientOptions = Record<string, unknown>;

export interface MasterAddress {
  host: string;
  port: number;
  /** With a hostname: the master's run id as the Sentinel knows it (hostnames and ports repeat). */
  runId?: string;
  /** With a hostname: a failover is under way (the run id may still be the old master's). */
  failingOver?: boolean;
  /** The replicas the Sentinel lists for it that it does not hold down or disconnected. */
  replicas?: number;
  /** A replica the Sentinel lists for it that reports itself a master now (host:port): promoted, a failover under way. */
  promoted?: string;
  /** The replicas (ip:port) the Sentinel lists for it, and those it holds down or disconnected. */
  listed?: string[];
  down?: string[];
}

/** A socket's peer address as the Sentinels write it (an IPv4 peer of a dual-stack socket without `::ffff:`). */
export const plainAddress = (address: string | undefined) => address?.replace(/^::ffff:/, '');

/** After no Sentinel answered, how long before they are asked again (a delete must not wait for them each time). */
const QUIET_MS = 5000;

/**
 * Asks the Sentinels which server is the master now, on
 * one connection kept open for the store's life, moving to the next Sentinel
 * when one fails or does not know the master. ioredis asks them once, at
 * connect; with its failover detector off, nothing else notices a failover
 * under way. Each Sentinel gets its share of the timeout, so a check takes
 * at most about the Redis timeout; none answering, they are left alone for a
 * while. Closed, it asks nothing (and opens nothing) again.
 */
export class SentinelWatch {
  private client: SentinelClient | undefined;
  private at = 0;
  private closed = false;
  private quietUntil = 0;

  constructor(
    private readonly open: (options: ClientOptions) => SentinelClient,
    private readonly spec: RedisSpec,
    private readonly base: ClientOptions,
  ) {}

  /** The master the first Sentinel that answers names; undefined when none does (or closed). */
  async master(): Promise<MasterAddress | undefined> {
    if (this.closed || Date.now() < this.quietUntil) return undefined;
    const share = seedShare(this.spec);
    for (let tried = 0; tried < this.spec.nodes.length && !this.closed; tried++) {
      try {
        const client = (this.client ??= this.connect());
        const named = await withDeadline(
          (async () => {
            if (client.status === 'wait') await client.connect();
            const addr = (await client.call('SENTINEL', 'get-master-addr-by-name', this.spec.sentinelMaster!)) as [string, string] | null;
            if (!addr) return undefined;
            const listed = await client.call('SENTINEL', 'REPLICAS', this.spec.sentinelMaster!).catch(() => []);
            const promoted = promotedReplica(listed, `${addr[0]}:${addr[1]}`);
            const at = { host: addr[0], port: Number(addr[1]), replicas: healthyReplicas(listed), listed: listedReplicas(listed), down: downReplicas(listed), ...(promoted && { promoted }) };
            if (isIP(at.host)) return at;
            // A hostname (all nodes on one port, as in Kubernetes): the run id tells the servers apart. The
            // address changes as soon as a replica is promoted; SENTINEL MASTER lags until the failover ends.
            const f = fields(await client.call('SENTINEL', 'MASTER', this.spec.sentinelMaster!));
            return { ...at, ...(f.runid && { runId: f.runid }), ...(/failover_in_progress/.test(f.flags ?? '') && { failingOver: true }) };
          })(),
          share,
          'asking a Sentinel for the master',
        );
        if (named) return named;
      } catch {
        // This one failed, or knows no such master: the next.
      }
      this.client?.disconnect();
      this.client = undefined;
      this.at = (this.at + 1) % this.spec.nodes.length;
    }
    if (!this.closed) this.quietUntil = Date.now() + QUIET_MS;
    return undefined;
  }

  private connect(): SentinelClient {
    const node = this.spec.nodes[this.at];
    const client = this.open({ ...this.base, host: node.host, port: node.port, username: undefined, password: this.spec.sentinelPassword, db: undefined });
    client.on('error', () => undefined);
    return client;
  }

  close(): void {
    this.closed = true;
    this.client?.disconnect();
    this.client = undefined;
  }
}

/** A replica's INFO older than this (a Sentinel asks every 10 s) is no evidence that it replicates now. */
const FRESH_INFO_MS = 20_000;

/**
 * How many of `SENTINEL REPLICAS`' entries the Sentinel saw replicating lately: up, connected, reporting
 * the replica role with its link to the master up, in an INFO of the last 20 s. A former master just
 * turned replica (after a failover) has no such INFO yet (its entry says link "ok" before any, the
 * Sentinel's default): not counted, so the new master is not held to a replica still attaching.
 */
export function healthyReplicas(reply: unknown): number {
  if (!Array.isArray(reply)) return 0;
  return reply.filter((r) => {
    const f = fields(r);
    return seenLately(f) && f['role-reported'] === 'slave' && f['master-link-status'] === 'ok';
  }).length;
}

/** The replicas (ip:port) the Sentinel lists. */
export function listedReplicas(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.map(fields).filter((f) => f.ip && f.port).map((f) => `${f.ip}:${f.port}`) : [];
}

/** The listed replicas (ip:port) the Sentinel holds down or disconnected. */
export function downReplicas(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.map(fields).filter(heldDown).map((f) => `${f.ip}:${f.port}`) : [];
}

/** A listed replica the Sentinel holds down or disconnected. */
const heldDown = (f: Record<string, string>) => /\b(s_down|o_down|disconnected)\b/.test(f.flags ?? '');

/** A listed replica the Sentinel holds up and connected, whose INFO it read in the last 20 s. */
const seenLately = (f: Record<string, string>) => !heldDown(f) && Number(f['info-refresh']) < FRESH_INFO_MS;

/**
 * The first of `SENTINEL REPLICAS`' entries that reports the master role in a recent INFO (up, connected):
 * a replica promoted while the Sentinel still names the old master (it stopped replicating from it at once,
 * and no longer counts among healthyReplicas, so the count alone missed it). Only one last seen replicating
 * from `master` (host:port as the Sentinels name it) counts: where the replicas know the master by another
 * name (hostnames), nothing is found, as before this check.
 */
export function promotedReplica(reply: unknown, master: string): string | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (const r of reply) {
    const f = fields(r);
    const at = `${f.ip}:${f.port}`;
    // Just after a failover the Sentinel may still list the promoted server among the replicas of the
    // master it now is (it said so in CI: "a replica that reports itself a master", the master itself).
    if (at === master) continue;
    // Promoted away from this master: last seen replicating from it (the Sentinel keeps the master a replica
    // last reported). Not the old master of a failover just done, listed under the new one and still
    // reporting the master role until the Sentinels turn it into a replica: it never replicated from it.
    const from = `${f['master-host']}:${f['master-port']}`;
    if (f['role-reported'] === 'master' && from === master && seenLately(f)) return at;
  }
  return undefined;
}

/** A flat RESP2 field/value array (`SENTINEL MASTER`'s reply) as a record. */
function fields(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

/**
 * Whether the server this client is on is the master the Sentinels name: by address where they give an
 * IP; for a hostname, not while a failover is under way, then by run id where both are known, else by port.
 */
export function isNamedMaster(named: MasterAddress, peer: { address?: string; port?: number; runId?: string }): boolean {
  const address = plainAddress(peer.address);
  if (isIP(named.host)) return named.port === peer.port && named.host === address;
  if (named.failingOver) return false;
  if (named.runId && peer.runId) return named.runId === peer.runId;
  return named.port === peer.port;
}

/** Deleted on a master that was failed over meanwhile: the work may come undone when it rejoins as a replica. */
export function failedOverError(name: string, was: string, now: MasterAddress): BackendUnavailableError {
  return new BackendUnavailableError(
    'redis',
    `Redis Sentinel failed over during this run (master ${name} moved from ${was} to ${now.host}:${now.port}): keys deleted on the old master may come back when it rejoins as a replica; run again`,
    { reason: 'failed-over' },
  );
}

/** Deleted on a master one of whose replicas reports itself a master: promoted, the Sentinels not yet naming it. */
export function promotedError(name: string, at: string, promoted: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'redis',
    `Redis Sentinel master ${name} (${at}) has a replica that reports itself a master (${promoted}): a failover may be under way, and the new master would still hold the keys deleted here; run again`,
    { reason: 'failed-over' },
  );
}

/** Who counted the replicas a deletion waits for: the Sentinels, the master at the connect (ROLE) with no Sentinel answering, or with them. */
export type ReplicasSeenBy = 'sentinels' | 'connect' | 'master';

/**
 * Deleted on a master fewer of whose replicas than the Sentinels saw replicating (or, with no Sentinel
 * answering, than it had at the connect) acknowledged it (WAIT, given `waitMs`) or are attached: the window
 * of a failover before the Sentinels name the promoted replica (it stopped replicating at once). The
 * deletions may not last.
 */
export function unreplicatedError(name: string, at: string, expected: number, attached: number, how: { waitMs?: number; seenBy?: ReplicasSeenBy } = {}): BackendUnavailableError {
  const { waitMs, seenBy = 'sentinels' } = how;
  const seen = seenBy === 'sentinels' ? 'the Sentinels saw replicating' : seenBy === 'master' ? 'it listed replicating at the connect' : 'it had at the connect';
  const has = waitMs === undefined ? `has ${attached} of the ${expected} replica(s) ${seen}` : `had ${attached} of the ${expected} replica(s) ${seen} acknowledge the deletions within ${waitMs} ms`;
  const why = seenBy === 'connect' ? ' (no Sentinel answered)' : '';
  return new BackendUnavailableError(
    'redis',
    `Redis Sentinel master ${name} (${at}) ${has}${why}: a failover may be under way, and the new master would still hold the keys deleted here; run again`,
    { reason: 'failed-over' },
  );
}
