import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { describeError } from '../errors.js';
import type { CacheProvider } from '../cache/cache-provider.js';
import { patternToGlob, type KeySpace } from '../cache/key-families.js';
import type { RedisCache } from '../cache/redis-cache.js';

/** Keys removed (or, on a dry run, found) for one tenant, per family. */
export interface TenantInvalidation {
  tenant: string;
  families: Record<string, number>;
  total: number;
  /** On a dry run: the keys themselves, sorted. */
  keys?: string[];
}

export interface InvalidateAllResult {
  dryRun: boolean;
  families: Record<string, number>;
  total: number;
}

/** Above this many tenants, one unfiltered pass beats one MATCH pass per tenant. */
const PER_TENANT_PASSES_UP_TO = 4;

/**
 * Cache administration over the tool's key families only: a key outside
 * them is never read, counted or deleted.
 */
export class CacheAdmin {
  constructor(
    readonly provider: CacheProvider,
    readonly keys: KeySpace,
  ) {}

  private zeroCounts(): Record<string, number> {
    return Object.fromEntries(this.keys.families.map((f) => [f.name, 0]));
  }

  /**
   * Deletes (UNLINK) every key of these tenants in every family, or on a dry
   * run lists them. Needs Redis: throws BackendUnavailableError when it is down.
   */
  async invalidateTenants(tenants: string[], options: { dryRun?: boolean } = {}): Promise<TenantInvalidation[]> {
    const unique = [...new Set(tenants)];
    const match = this.keys.matcher(unique);
    const cache = await this.provider.required();
    const results = new Map(unique.map((t) => [t, { tenant: t, families: this.zeroCounts(), total: 0, keys: options.dryRun ? [] as string[] : undefined }]));
    const globs = unique.length <= PER_TENANT_PASSES_UP_TO ? unique.map((t) => this.keys.tenantScanGlob(t)) : [undefined];
    // One set across passes: `*a*` also finds keys of tenant `ab`, which its own pass finds again.
    const seen = new Set<string>();
    try {
      for (const glob of globs) {
        if (options.dryRun) {
          await cache.scan(glob, (page) => {
            for (const k of page) if (!seen.has(k) && match(k)) seen.add(k);
          });
        } else {
          const removed = await cache.scanAndUnlink(glob, (k) => {
            const owner = match(k);
            return owner && `${owner.tenant}\u0000${owner.family}`;
          });
          for (const [group, n] of removed) {
            const [tenant, family] = group.split('\u0000');
            const r = results.get(tenant)!;
            r.families[family] += n;
            r.total += n;
          }
        }
      }
    } catch (err) {
      throw this.provider.markDown(err);
    }
    for (const k of seen) {
      const owner = match(k)!;
      const r = results.get(owner.tenant)!;
      r.families[owner.family]++;
      r.total++;
      r.keys!.push(k);
    }
    for (const r of results.values()) r.keys?.sort();
    return [...results.values()];
  }

  /**
   * Deletes every key of every family (all tenants), or counts them on a dry
   * run; `families` narrows it. Works per master on a cluster.
   */
  async invalidateAll(options: { dryRun?: boolean; families?: string[] } = {}): Promise<InvalidateAllResult> {
    const cache = await this.provider.required();
    const only = options.families;
    const select = (k: string) => {
      const family = this.keys.classify(k)?.family;
      return family && (!only || only.includes(family)) ? family : undefined;
    };
    // One family with one pattern: let the server filter (MATCH) instead of sending every key.
    const patterns = only?.length === 1 ? this.keys.family(only[0]).patterns : undefined;
    const glob = patterns?.length === 1 ? patternToGlob(patterns[0]) : undefined;
    try {
      const families = options.dryRun ? await this.countFamilies(cache, select, glob) : this.zeroCounts();
      if (!options.dryRun) {
        const removed = await cache.scanAndUnlink(glob, select);
        for (const [family, n] of removed) families[family] += n;
      }
      return { dryRun: !!options.dryRun, families, total: Object.values(families).reduce((a, b) => a + b, 0) };
    } catch (err) {
      throw this.provider.markDown(err);
    }
  }

  /** Exact key counts per family across the whole keyspace (SCAN may repeat a key: de-duplicated). */
  async countFamilies(cache: RedisCache, select = (k: string) => this.keys.classify(k)?.family, glob?: string): Promise<Record<string, number>> {
    const counts = this.zeroCounts();
    const seen = new Set<string>();
    await cache.scan(glob, (page) => {
      for (const k of page) {
        const family = select(k);
        if (family && !seen.has(k)) {
          seen.add(k);
          counts[family]++;
        }
      }
    });
    return counts;
  }

  /**
   * The CI smoke test: PING, SET with TTL, GET, DEL on a unique key, each
   * step timed, plus the server version. Throws BackendUnavailableError when
   * Redis is unreachable; a failed step is reported with `ok: false`.
   */
  async testRedis(): Promise<TestRedisResult> {
    const cache = await this.provider.required();
    const conn = cache.conn;
    const key = `tenantctl:test-redis:${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    const value = randomBytes(8).toString('hex');
    const steps: TestRedisStep[] = [];
    const step = async (name: string, op: () => Promise<unknown>, check: (r: unknown) => boolean) => {
      const start = process.hrtime.bigint();
      try {
        const reply = await conn.run(name, op);
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        const ok = check(reply);
        steps.push({ step: name, ok, ms: round(ms, 3), detail: ok ? undefined : `unexpected reply ${JSON.stringify(reply)}` });
        return ok;
      } catch (err) {
        steps.push({ step: name, ok: false, ms: round(Number(process.hrtime.bigint() - start) / 1e6, 3), detail: describeError(err) });
        return false;
      }
    };
    let version = 'unknown';
    try {
      (await step('PING', () => conn.client.ping(), (r) => r === 'PONG')) &&
        (await step('SET', () => conn.client.set(key, value, 'EX', 60), (r) => r === 'OK')) &&
        (await step('GET', () => conn.client.get(key), (r) => r === value));
    } finally {
      // Always clean up the test key, even after a failed GET.
      if (steps.some((s) => s.step === 'SET' && s.ok)) await step('DEL', () => conn.client.del(key), (r) => r === 1);
    }
    try {
      const info = (await cache.info())[0];
      version = info.redis_version ?? version;
    } catch {
      /* version is informative only */
    }
    const ok = steps.length === 4 && steps.every((s) => s.ok);
    return { ok, server: conn.target, mode: conn.mode, version, key, steps };
  }
}

export interface TestRedisStep {
  step: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

export interface TestRedisResult {
  ok: boolean;
  server: string;
  mode: string;
  version: string;
  key: string;
  steps: TestRedisStep[];
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
