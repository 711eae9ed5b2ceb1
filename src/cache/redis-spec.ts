import { accessSync, constants, statSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { decodable, maskUrl } from '../redact.js';

export interface HostPort {
  host: string;
  port: number;
}

/** PEM files for TLS; present (even empty) means TLS is on. */
export interface RedisTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Where the cache is and how to reach it: one shape for a standalone server,
 * a Cluster (seed nodes) or a Sentinel-managed master, each with optional TLS
 * and an ACL user. Parsed once from flags, environment and config file.
 */
export interface RedisSpec {
  topology: 'standalone' | 'cluster' | 'sentinel';
  /** The server (standalone), the seed nodes (cluster) or the sentinels (sentinel). */
  nodes: HostPort[];
  /** Sentinel: the monitored master's name. */
  sentinelMaster?: string;
  sentinelPassword?: string;
  /** ACL user and password of the data nodes. */
  username?: string;
  password?: string;
  /** Database number (standalone and sentinel). */
  db?: number;
  tls?: RedisTls;
  /** Connect and per-command timeout, ms. */
  timeoutMs: number;
  /** Where it points, for messages: credentials masked. */
  display: string;
}

/** The raw settings, already picked by precedence; `where` names their origin for messages. */
export interface RedisSettings {
  /** `fromFlag`: given on the command line (or as a library's flags), which outranks a topology set elsewhere. */
  url?: { value: string; where: string; fromFlag?: boolean };
  cluster?: { value: unknown; where: string };
  sentinel?: { value: unknown; where: string };
  sentinelMaster?: { value: string; where: string; fromFlag?: boolean };
  sentinelPassword?: string;
  tls?: RedisTls;
  timeoutMs: number;
  /** How the caller's settings are given, for advice in messages (the CLI's flags, a library's options). */
  names?: RedisSettingNames;
}

export interface RedisSettingNames {
  /** Every way to give a Redis URL. */
  url: string;
  /** The Sentinels' flag. */
  sentinels: string;
  /** Every way to give the Sentinel master's name. */
  sentinelMaster: string;
  /** The Redis URL's flag. */
  urlFlag: string;
  /** Where flags are given: "on the command line". */
  flagPlace: string;
}

/** Advice without a caller's names (parseRedisSpec called directly). */
const PLAIN_NAMES: RedisSettingNames = {
  url: 'the Redis URL setting', sentinels: 'the Sentinel nodes', sentinelMaster: 'the Sentinel master setting', urlFlag: 'the Redis URL', flagPlace: 'among the flags',
};

/** Parses `host:port,host:port` (or a list). */
export function parseHostPorts(value: unknown, where: string, urlNames = PLAIN_NAMES.url): HostPort[] {
  const list = Array.isArray(value) ? value.map(String) : String(value).split(',');
  const nodes = list.map((s) => s.trim()).filter(Boolean).map((n) => {
    // A URL given as a seed (credentials and all, a common slip in CI variables): said, masked, never dialled.
    if (n.includes('://') || n.includes('@') || n.includes('/')) {
      // Whatever came before an @ is credentials: never shown.
      const shown = n.includes('://') ? maskUrl(n) : n.replace(/^[^@]*@/, '****@');
      throw new UsageError(`${where}: "${shown.slice(0, 80)}" is ${n.includes('://') ? 'a URL' : 'not host:port'}; seeds are host:port (credentials go in a Redis URL: ${urlNames})`, { reason: 'bad-redis' });
    }
    const m = /^\[?([^\s[\]]+?)\]?:(\d{1,5})$/.exec(n);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) throw new UsageError(`${where}: "${maskUrl(n).slice(0, 80)}" is not host:port`, { reason: 'bad-redis' });
    return { host: m[1], port };
  });
  if (nodes.length === 0) throw new UsageError(`${where} lists no nodes`, { reason: 'bad-redis' });
  return nodes;
}

function parseRedisUrl(raw: string, where: string): { url: URL; tls: boolean } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${where}: ${maskUrl(raw).slice(0, 200)} is not a valid URL`, { reason: 'bad-redis' });
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new UsageError(`${where}: a Redis URL starts with redis:// or rediss://, not ${scheme}://`, { reason: 'bad-redis' });
  }
  // A % that starts no escape of UTF-8 in the user or password ("p%C3" for "pé"): decoding it threw, exit 70.
  if (!decodable(url.username) || !decodable(url.password)) {
    throw new UsageError(`${where}: ${maskUrl(raw).slice(0, 200)} has a % that is no escape in its user or password (write a % as %25)`, { reason: 'bad-redis' });
  }
  // "redis:/u:pw@h:1" or "redis:///:pw@h": no host, the credentials in the path (its database quoted them).
  if (!url.host && url.pathname.includes('@')) {
    throw new UsageError(`${where}: ${maskUrl(raw).slice(0, 200)} is not a valid URL (redis://[user:password@]host:port[/db])`, { reason: 'bad-redis' });
  }
  return { url, tls: scheme === 'rediss' };
}

const decode = (s: string) => (s ? decodeURIComponent(s) : undefined);

/** Whether any TLS file (CA, client certificate, key) is given. */
export const tlsFilesGiven = (tls: RedisTls | undefined): boolean => !!(tls && (tls.ca || tls.cert || tls.key));

/** Why a TLS file cannot be read, in words (no such file, not a regular file: a directory, a FIFO; no permission), or undefined when it can. */
export function unreadableTlsFile(file: string): string | undefined {
  try {
    // Never read from a FIFO or a device (every command would wait on it); asked, not read (it is read at the connect).
    if (!statSync(file).isFile()) return 'not a regular file';
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  }
}

/**
 * The CLI's check before a command runs: a TLS file given that cannot be read is a setting to mend (exit 2),
 * never Redis down (a typo in a path paged as an outage: cache-info's redis_up 0, test-redis exit 3; a probe),
 * and said before anything is written (after a registry write it read as "nothing changed"). A library's
 * cache is not stopped by it: there it is Redis unreachable, and reads fall back.
 */
export function assertTlsFilesReadable(spec: RedisSpec): void {
  for (const [what, file] of [['CA', spec.tls?.ca], ['certificate', spec.tls?.cert], ['key', spec.tls?.key]] as const) {
    const why = file ? unreadableTlsFile(file) : undefined;
    if (why) throw new UsageError(`cannot read the TLS ${what} file ${file}: ${why}`, { reason: 'bad-tls-file' });
  }
}

/**
 * The spec, or undefined when no Redis is configured (the cache is off).
 * A URL given with a Cluster or Sentinel supplies only credentials, database
 * and TLS; Cluster and Sentinel together are a usage error.
 */
export function parseRedisSpec(s: RedisSettings): RedisSpec | undefined {
  // A master name typed on the command line with no Sentinel anywhere: a usage error, not "no Redis configured".
  const names = s.names ?? PLAIN_NAMES;
  if (s.sentinelMaster?.fromFlag && !s.sentinel) {
    const why = s.url?.fromFlag ? ` (${names.urlFlag} ${names.flagPlace} outranks Sentinels set elsewhere)` : '';
    throw new UsageError(`${s.sentinelMaster.where} needs Sentinels ${names.flagPlace} too: ${names.sentinels} host:port,...${why}`, { reason: 'bad-redis' });
  }
  if (!s.url && !s.cluster && !s.sentinel) return undefined;
  if (s.cluster && s.sentinel) {
    throw new UsageError(`Redis: give ${s.cluster.where} or ${s.sentinel.where}, not both`, { reason: 'bad-redis' });
  }
  const parsed = s.url ? parseRedisUrl(s.url.value, s.url.where) : undefined;
  const u = parsed?.url;
  // The database, user and password may also be query parameters (`redis://h?db=2`, as redis-py and
  // ioredis read them); given both ways and different, the two libraries disagree on which wins: refused.
  const query = (name: string) => u?.searchParams.get(name) ?? undefined;
  const pathDb = u?.pathname.replace(/^\//, '') ?? '';
  const queryDb = query('db');
  if (pathDb && queryDb !== undefined && pathDb !== queryDb) {
    throw new UsageError(`${s.url!.where}: database ${pathDb} in the path and db=${queryDb.slice(0, 20)} in the query: give one`, { reason: 'bad-redis' });
  }
  const dbText = pathDb || queryDb || '';
  if (dbText && !/^\d{1,5}$/.test(dbText)) throw new UsageError(`${s.url!.where}: database "${dbText.slice(0, 20)}" must be a number`, { reason: 'bad-redis' });
  // A standalone server's URL says whether it is TLS (redis:// or rediss://), as the services' clients
  // read it; TLS files only configure it. A Cluster's or Sentinel's seeds have no scheme: files turn it on.
  const tlsOn = parsed?.tls || (tlsFilesGiven(s.tls) && !!(s.cluster || s.sentinel));
  const base = {
    username: (u ? decode(u.username) : undefined) || query('username') || query('user'),
    password: (u ? decode(u.password) : undefined) || query('password'),
    db: dbText ? Number(dbText) : undefined,
    tls: tlsOn ? { ...s.tls } : undefined,
    timeoutMs: s.timeoutMs,
  };
  if (s.cluster) {
    const nodes = parseHostPorts(s.cluster.value, s.cluster.where, names.url);
    // A Cluster has database 0 only: a URL's /N lent beside it is not used (counts read db0 of each master).
    return { ...base, db: undefined, topology: 'cluster', nodes, display: `cluster ${nodes.map(hp).join(',')}` };
  }
  if (s.sentinel) {
    const nodes = parseHostPorts(s.sentinel.value, s.sentinel.where, names.url);
    const master = s.sentinelMaster?.value;
    if (!master) throw new UsageError(`${s.sentinel.where}: a Sentinel needs the master's name too (${names.sentinelMaster})`, { reason: 'bad-redis' });
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(master)) throw new UsageError(`${s.sentinelMaster!.where}: "${master.slice(0, 40)}" is not a master name`, { reason: 'bad-redis' });
    return { ...base, topology: 'sentinel', nodes, sentinelMaster: master, sentinelPassword: s.sentinelPassword || undefined, display: `sentinel ${master}@${nodes.map(hp).join(',')}` };
  }
  const host = u!.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = u!.port ? Number(u!.port) : 6379;
  return { ...base, topology: 'standalone', nodes: [{ host, port }], display: maskUrl(s.url!.value) };
}

const hp = (n: HostPort) => `${n.host}:${n.port}`;

/** The query parameters a Redis URL may carry that tenantctl reads; any other is said to be ignored. */
export const REDIS_URL_PARAMS = ['db', 'username', 'user', 'password'] as const;

/** The query parameters of a Redis URL that tenantctl does not read (`?ssl_cert_reqs=none`, `?family=6`). */
export function ignoredRedisUrlParams(raw: string): string[] {
  try {
    return [...new Set(new URL(raw).searchParams.keys())].filter((k) => !(REDIS_URL_PARAMS as readonly string[]).includes(k));
  } catch {
    return [];
  }
}

/**
 * Each seed's share of the Redis timeout (at least 100 ms), where the driver asks seeds one after the other
 * (the Sentinels; a Cluster's seeds for the slot map): a silent or black-holed one cannot take it all.
 */
export const seedShare = (spec: RedisSpec) => Math.max(100, Math.floor(spec.timeoutMs / spec.nodes.length));
