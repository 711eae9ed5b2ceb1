import type { Cache } from '../cache/cache.js';
import { refusedCommand } from '../cache/cache-store.js';
import { TENANT_CONFIG_FAMILY } from '../keys/key-families.js';
import { BackendUnavailableError, describeError, type BackendReason } from '../errors.js';
import type { CacheAdmin } from './cache-admin.js';
import { round } from './cache-admin.js';

/**
 * What `cache-info` reports. The snake_case fields at the top are the ones the
 * services' own endpoints expose (get_cache_info, /cache/metrics), so existing
 * dashboards keep working; the rest is tenantctl's fuller picture.
 */
export interface CacheInfo {
  backend: 'redis' | 'none';
  available: boolean;
  ttl_seconds: number;
  /** null where the counts are not known (see counts_refused). */
  cached_tenants?: number | null;
  /** The fields read from INFO are null when the ACL user may not run INFO (see info_refused). */
  hits?: number | null;
  misses?: number | null;
  total_requests?: number | null;
  hit_rate_percent?: number | null;
  used_memory_mb?: number | null;
  max_memory_mb?: number | null;
  memory_usage_percent?: number | null;
  redis_evicted_keys?: number | null;
  /** masters: the masters walked (every master of a Cluster). */
  server?: { target: string; mode: string; version: string | null; masters: number };
  memory?: { used_bytes: number; max_bytes: number; policy: string } | null;
  /** Left out where the counts are not known (see counts_refused). */
  /** Keys per family; null where this Redis user may not SCAN (counts_refused). */
  families?: Record<string, number> | null;
  tool_keys?: number | null;
  total_keys?: number | null;
  /** Why the INFO fields are null: the server refused INFO to this user (a managed service's -@dangerous). */
  info_refused?: string;
  /** Why the key counts are unknown: the server refused SCAN to this user (Redis is up all the same). */
  counts_refused?: string;
  latency_ms?: number;
  /** Cluster: slots that moved between masters while counting (a resharding): the counts may be off by their keys. */
  moving_slots?: number[];
  error?: string;
  /** Why Redis is unavailable, as a type (a Cluster node given as one server, the login refused, ...), with `error`. */
  error_reason?: BackendReason;
}

const num = (v: string | undefined) => (v === undefined || v === '' ? 0 : Number(v));

/** Keys in database `db` by INFO keyspace (`db1:keys=12,...`), summed over masters. */
export function keysInDb(infos: Array<Record<string, string>>, db: number): number {
  return infos.reduce((a, i) => a + num(/keys=(\d+)/.exec(i[`db${db}`] ?? '')?.[1]), 0);
}

/** Availability, server, exact per-family counts, memory, evictions, hit rate and latency. */
/** `signal` stops the count between batches (InterruptedError): a full-keyspace count can take seconds. */
export async function collectCacheInfo(cache: Cache, admin: CacheAdmin, ttlSeconds: number, signal?: AbortSignal): Promise<CacheInfo> {
  if (!cache.configured) return { backend: 'none', available: false, ttl_seconds: ttlSeconds };
  const attempt = await cache.attempt(async (store) => {
    const latency = await store.ping();
    // An ACL user without INFO (+@all -@dangerous, as managed services hand out) still counts keys: Redis is up,
    // and only what INFO tells is unknown (it was reported unavailable, Prometheus tenantctl_redis_up 0).
    let infoRefused: string | undefined;
    const infos = await store.info().catch((err: unknown) => {
      if (!refusedCommand(err)) throw err;
      infoRefused = describeError(err);
      return [];
    });
    // An ACL user refused SCAN: the counts are unknown, Redis is not down (it said unavailable, redis_up 0).
    let countsRefused: string | undefined;
    const counted = await admin.countFamilyKeys(store, signal).catch((err: unknown) => {
      if (!refusedCommand(err)) throw err;
      countsRefused = describeError(err);
      return undefined;
    });
    return { latency, infos, infoRefused, countsRefused, families: counted?.families, moving: counted?.moving, masters: counted?.masters, target: store.target, mode: store.mode };
  });
  if (attempt.status !== 'done') {
    // As the services' own endpoint says it (seed 000): an unreachable Redis is backend 'none'; `error` says why.
    if (attempt.status !== 'failed') return { backend: 'none', available: false, ttl_seconds: ttlSeconds, error: 'not configured' };
    const reason = attempt.error instanceof BackendUnavailableError ? attempt.error.reason : undefined;
    return { backend: 'none', available: false, ttl_seconds: ttlSeconds, error: describeError(attempt.error), ...(reason && { error_reason: reason }) };
  }
  const { latency, infos, infoRefused, countsRefused, families, moving, masters, target, mode } = attempt.value;
  const tool_keys = families ? Object.values(families).reduce((a, b) => a + b, 0) : null;
  // INFO refused: what it tells is null (unknown), not 0; the counts stand.
  const fromInfo = <T>(value: T): T | null => (infoRefused === undefined ? value : null);
  // Keyspace counters are per server: a cluster's are summed over its masters.
  const sum = (field: string) => infos.reduce((a, i) => a + num(i[field]), 0);
  const hits = sum('keyspace_hits');
  const misses = sum('keyspace_misses');
  const used = sum('used_memory');
  // A master without a limit (0) makes the whole unlimited, as a standalone 0 is: summed, it counted as no
  // memory at all (a probe: "6.3 MB of 4.0 MB", 158% used, where one master of three had a 4 MB limit).
  const max = infos.some((i) => num(i.maxmemory) === 0) ? 0 : sum('maxmemory');
  // Every master's policy (it was the first master's: another seed, another answer).
  const policy = [...new Set(infos.map((i) => i.maxmemory_policy ?? 'unknown'))].sort().join(', ') || 'unknown';
  // The database the tool works in (the URL's /N; 0 on a Cluster), as the family counts are: not every dbN.
  const totalKeys = keysInDb(infos, cache.spec?.db ?? 0);
  const total = hits + misses;
  return {
    backend: 'redis',
    available: true,
    ttl_seconds: ttlSeconds,
    cached_tenants: families ? families[TENANT_CONFIG_FAMILY] ?? 0 : null,
    hits: fromInfo(hits),
    misses: fromInfo(misses),
    total_requests: fromInfo(total),
    hit_rate_percent: fromInfo(total ? round((hits / total) * 100) : 0),
    used_memory_mb: fromInfo(round(used / 1048576)),
    max_memory_mb: fromInfo(round(max / 1048576)),
    memory_usage_percent: fromInfo(max ? round((used / max) * 100) : 0),
    redis_evicted_keys: fromInfo(sum('evicted_keys')),
    server: {
      target,
      mode,
      // null where INFO is refused, as the other fields it tells (it was the string "unknown").
      version: infos[0]?.redis_version ?? null,
      // Counted by the sweep, which walks every master (INFO may be refused).
      masters: masters ?? (infos.length || 1),
    },
    memory: fromInfo({ used_bytes: used, max_bytes: max, policy }),
    // Refused, null as every field the user may not read (a probe: left out, so .families.x was an error).
    ...(families ? { families } : countsRefused !== undefined && { families: null }),
    tool_keys,
    total_keys: fromInfo(totalKeys),
    latency_ms: round(latency, 3),
    ...(infoRefused !== undefined && { info_refused: infoRefused }),
    ...(countsRefused !== undefined && { counts_refused: countsRefused }),
    ...(moving && { moving_slots: moving }),
  };
}

/** The tenantctl_redis_up gauge in exposition text (toPrometheus's first metric). */
export function redisUpMetric(up: boolean): string {
  return `# HELP tenantctl_redis_up Whether Redis answered (1) or not (0).\n# TYPE tenantctl_redis_up gauge\ntenantctl_redis_up ${up ? 1 : 0}\n`;
}

/** The report in the Prometheus text format, for the node exporter's textfile collector. */
export function toPrometheus(info: CacheInfo): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, type: 'gauge' | 'counter', samples: Array<[string, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  // SCAN refused: no family series (a 0 would say the cache is empty).
  if (info.available && info.families) {
    metric('tenantctl_cache_keys', 'Keys per tenantctl key family.', 'gauge',
      Object.entries(info.families ?? {}).map(([f, n]) => [`{family="${f}"}`, n]));
  }
  // INFO refused: its series are left out (a 0 would say no memory is used), the others kept.
  if (info.available && info.info_refused === undefined) {
    metric('tenantctl_redis_keyspace_hits_total', 'Keyspace hits (server-wide, summed over masters).', 'counter', [['', info.hits ?? 0]]);
    metric('tenantctl_redis_keyspace_misses_total', 'Keyspace misses (server-wide, summed over masters).', 'counter', [['', info.misses ?? 0]]);
    metric('tenantctl_redis_used_memory_bytes', 'Memory used by Redis.', 'gauge', [['', info.memory?.used_bytes ?? 0]]);
    metric('tenantctl_redis_max_memory_bytes', 'maxmemory (0 = unlimited).', 'gauge', [['', info.memory?.max_bytes ?? 0]]);
    metric('tenantctl_redis_evicted_keys_total', 'Keys evicted.', 'counter', [['', info.redis_evicted_keys ?? 0]]);
  }
  if (info.available) metric('tenantctl_redis_ping_seconds', 'Round trip of one PING.', 'gauge', [['', round((info.latency_ms ?? 0) / 1000, 6)]]);
  return redisUpMetric(info.available) + (lines.length ? `${lines.join('\n')}\n` : '');
}
