import path from 'node:path';
import { load, CORE_SCHEMA } from 'js-yaml';
import { UsageError } from '../errors.js';
import { maskUrl } from '../redact.js';
import { assertNoOverlap, buildFamilies, DEFAULT_RESOURCES, type KeyFamily } from '../keys/key-families.js';
import { isValidId } from '../keys/ids.js';
import { readRegularFile } from '../regular-file.js';
import { yamlReasonShown } from '../yaml/yaml-reason.js';
import { ignoredRedisUrlParams, parseRedisSpec, tlsFilesGiven, type RedisSpec } from '../cache/redis-spec.js';
import { DEFAULT_EMBEDDED_DIR, parseRegistrySpec, supabaseKeyFromEnv, type RegistrySpec } from '../registry/registry-spec.js';
import { findProjectRoot, type ProjectRoot } from './project-root.js';
import { MAX_TIMEOUT_MS, parsePositiveInt } from './positive-int.js';
import { shownPath } from '../shown-path.js';
import { workingDirectory } from '../working-directory.js';

/** The resolved configuration of one run. */
export interface TenantctlConfig {
  /** The project directory (found by walking up from the working directory). */
  project: ProjectRoot;
  /** undefined = no Redis configured: the cache is off and commands fall back. */
  redis?: RedisSpec;
  /** Connect and per-command Redis timeout, ms. @default 1000 */
  redisTimeoutMs: number;
  registry: RegistrySpec;
  /** Connect, lock and statement timeout of the registry, ms. @default 5000 */
  registryTimeoutMs: number;
  /** @default <project>/tenants */
  tenantsDir: string;
  /** True when the tenants directory was given (flag, env or file): then it must exist. */
  tenantsDirExplicit: boolean;
  /** TTL of tenant config entries, seconds. @default 300 */
  ttl: number;
  /** TTL of `permissions:<business>` entries, seconds. @default the ttl */
  permissionsTtl: number;
  /** Tenants whose id starts with this live only in the registry. @default "tn_" */
  registryOnlyPrefix: string;
  /**
   * Tenants read from YAML alone, as if their files said `yaml_only: true`: the services'
   * own hard-coded list (their YAML_ONLY_TENANTS, seed 001). @default none
   */
  yamlOnlyTenants: string[];
  families: KeyFamily[];
  /** Append one JSON line per write or deletion here. @default none */
  auditLog?: string;
  /** get-config writes what the services would on a cache miss. @default false */
  warmCache: boolean;
  /** Every setting with its value (secrets masked) and where it came from, for `tenantctl config`. */
  settings: ResolvedSetting[];
  /** One-time notes for stderr (a registry driver suffix dropped). */
  notices: string[];
}

/** Flags as commander hands them over. */
export interface ConfigFlags {
  redisUrl?: string;
  redisCluster?: string;
  redisSentinel?: string;
  sentinelMaster?: string;
  redisTimeout?: number;
  registry?: string;
  registryTimeout?: number;
  tenantsDir?: string;
  ttl?: number;
  auditLog?: string;
}

export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/**
 * How messages name a flag: `--redis-url` for the command line (the CLI), `flags.redisUrl` for a
 * library's options (its errors named CLI flags the caller never typed).
 */
export type FlagNaming = 'command-line' | 'options';

export interface ResolvedSetting {
  /** The config file key. */
  key: string;
  /** Shown value (credentials masked); undefined when unset. */
  value?: string;
  source: SettingSource;
  /** The flag, variable or file that set it. */
  origin?: string;
  /** Set but not used: the setting that outranks it ("--redis-url"). */
  overriddenBy?: string;
  /** Used in part: a Redis URL beside a Cluster or Sentinels lends them its credentials only (what is the target). */
  partlyUsed?: string;
}

/** One setting: its config-file key, flag and environment variables. */
interface SettingDef {
  key: string;
  flag?: keyof ConfigFlags;
  flagName?: string;
  env?: string[];
  secret?: boolean;
}

/** Every setting tenantctl reads (DESIGN.md, "Configuration"); the file accepts exactly these keys. */
export const SETTINGS: readonly SettingDef[] = [
  { key: 'redis_url', flag: 'redisUrl', flagName: '--redis-url', env: ['REDIS_URL'] },
  { key: 'redis_cluster', flag: 'redisCluster', flagName: '--redis-cluster', env: ['REDIS_CLUSTER_NODES'] },
  { key: 'redis_sentinel', flag: 'redisSentinel', flagName: '--redis-sentinel', env: ['REDIS_SENTINEL_NODES'] },
  { key: 'sentinel_master', flag: 'sentinelMaster', flagName: '--sentinel-master', env: ['REDIS_SENTINEL_MASTER'] },
  { key: 'sentinel_password', env: ['REDIS_SENTINEL_PASSWORD'], secret: true },
  { key: 'redis_ca_cert', env: ['REDIS_CA_CERT'] },
  { key: 'redis_tls_cert', env: ['REDIS_TLS_CERT'] },
  { key: 'redis_tls_key', env: ['REDIS_TLS_KEY'] },
  { key: 'redis_timeout_ms', flag: 'redisTimeout', flagName: '--redis-timeout', env: ['REDIS_TIMEOUT_MS'] },
  { key: 'registry', flag: 'registry', flagName: '--registry', env: ['DATABASE_URL', 'SUPABASE_URL'] },
  { key: 'registry_timeout_ms', flag: 'registryTimeout', flagName: '--registry-timeout', env: ['REGISTRY_TIMEOUT_MS'] },
  { key: 'tenants_dir', flag: 'tenantsDir', flagName: '--tenants-dir', env: ['TENANTS_DIR'] },
  { key: 'ttl', flag: 'ttl', flagName: '--ttl', env: ['CACHE_TTL'] },
  { key: 'permissions_ttl' },
  { key: 'registry_only_prefix' },
  { key: 'yaml_only_tenants' },
  { key: 'audit_log', flag: 'auditLog', flagName: '--audit-log', env: ['TENANTCTL_AUDIT_LOG'] },
  { key: 'warm_cache' },
  { key: 'resources' },
  { key: 'families' },
];

export { parsePositiveInt } from './positive-int.js';

/** A list of tenant ids (a YAML/JSON list, or one id): each valid, or a usage error naming the setting. */
function parseIdList(value: unknown, where: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (typeof id !== 'string' || !isValidId(id)) throw new UsageError(`${where}: ${JSON.stringify(String(id)).slice(0, 80)} is not a valid tenant id`);
  }
  return [...new Set(list as string[])];
}

/** The definition of a setting by its config-file key. */
const settingDef = (key: string): SettingDef => SETTINGS.find((s) => s.key === key)!;

/** Settings whose value is a mapping or list of their own (checked where they are parsed). */
const STRUCTURED = new Set(['resources', 'families', 'yaml_only_tenants']);
/** Settings that may also be a YAML list of strings (seeds). */
const LISTS = new Set(['redis_cluster', 'redis_sentinel']);

/** Nothing but blank lines and `#` comments. */
const EMPTY_CONFIG = /^(?:[ \t\r]*(?:#[^\n]*)?\n)*[ \t\r]*(?:#[^\n]*)?$/;

function readConfigFile(file: string | undefined, cwd: string): Record<string, unknown> {
  if (!file) return {};
  // Named as from the working directory (run from a subdirectory, its bare name named no file there).
  const name = shownPath(file, cwd);
  let data: unknown;
  try {
    // A UTF-8 byte order mark (an editor on Windows) is no setting: the YAML reader skipped it, JSON.parse refused it.
    const text = readRegularFile(file).replace(/^\uFEFF/, '');
    // An empty file (or comments only: `touch tenantctl.config.yaml` marks a project's root) is no settings.
    if (EMPTY_CONFIG.test(text)) data = {};
    else data = name.endsWith('.json') ? JSON.parse(text) : load(text, { schema: CORE_SCHEMA, maxAliases: 50, maxDepth: 32 });
    // JSON.parse keeps the last of a key given twice without a word (the YAML reader refuses it).
    const twice = name.endsWith('.json') ? duplicateJsonKey(text) : undefined;
    if (twice !== undefined) throw new UsageError(`${name}: duplicate key ${JSON.stringify(twice.slice(0, 60))}`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${name}: ${configReadError(err as NodeJS.ErrnoException, name)}`);
  }
  if (data == null) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`${name}: must be a mapping`);
  const known = new Set(SETTINGS.map((s) => s.key));
  for (const [k, v] of Object.entries(data as object)) {
    if (!known.has(k)) throw new UsageError(`${name}: unknown setting "${k.slice(0, 60)}"`);
    // `registry:` with nothing after it is no setting at all: it read as the default (a new embedded registry), unsaid.
    if (v === null) throw new UsageError(`${name}: ${k} has no value (leave it out for the default)`);
    // Checked here, not where the value is used: a flag that overrides a malformed value must not hide it.
    if (v !== null && typeof v === 'object' && !STRUCTURED.has(k) && !(LISTS.has(k) && Array.isArray(v))) {
      throw new UsageError(`${name}: ${k} must be a single value, not a ${Array.isArray(v) ? 'list' : 'mapping'}`);
    }
  }
  return data as Record<string, unknown>;
}

/** The first key given twice in one object of a (valid) JSON text, or undefined. */
function duplicateJsonKey(text: string): string | undefined {
  // One set of keys per open object; null for an open array.
  const open: Array<Set<string> | null> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const quoted = text.slice(i, end + 1);
      i = end;
      let next = end + 1;
      while (next < text.length && ' \t\r\n'.includes(text[next])) next++;
      const keys = open[open.length - 1];
      if (text[next] === ':' && keys) {
        const key = JSON.parse(quoted) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
    } else if (c === '{') open.push(new Set());
    else if (c === '[') open.push(null);
    else if (c === '}' || c === ']') open.pop();
  }
  return undefined;
}

/**
 * Why the config file could not be read, without quoting its text: JSON.parse's message quotes the
 * text around the fault (`..."assword": SentSecret"...`), which may be a credential.
 */
function configReadError(err: NodeJS.ErrnoException, name: string): string {
  if (err.code === 'ENOENT') return 'cannot be read: no such file (a dangling link?)';
  if (err.code === 'EFTYPE') return 'cannot be read: not a regular file (a directory, a FIFO or a device?)';
  if (err.code) return `cannot be read (${err.code})`;
  if (!name.endsWith('.json')) return yamlReasonShown(err.message.split('\n')[0]);
  const token = /^Unexpected token '?(.)'?/.exec(err.message)?.[1];
  const position = /position (\d+)/.exec(err.message)?.[1];
  const what = /Unexpected end of JSON input/.test(err.message) ? 'it ends too soon' : token ? `unexpected "${token}"` : 'a syntax error';
  return `not valid JSON: ${what}${position ? ` at character ${position}` : ''}`;
}

function parseFamilies(value: unknown, where: string): KeyFamily[] {
  if (!Array.isArray(value)) throw new UsageError(`${where}: families must be a list`);
  return value.map((f, i) => {
    if (!f || typeof f !== 'object') throw new UsageError(`${where}: families[${i}] must be a mapping`);
    const { name, pattern, ttl, ...unknown } = f as Record<string, unknown>;
    for (const k of Object.keys(unknown)) throw new UsageError(`${where}: families[${i}]: unknown key "${k.slice(0, 60)}" (expected name, pattern, ttl)`);
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new UsageError(`${where}: families[${i}].name must be a short identifier`);
    }
    if (typeof pattern !== 'string') throw new UsageError(`${where}: families[${i}].pattern must be a string`);
    return {
      name,
      patterns: [pattern],
      ttl: ttl === undefined || ttl === null ? undefined : parsePositiveInt(ttl, `${where}: families[${i}].ttl`),
    };
  });
}

function parseResources(value: unknown, where: string): Record<string, number> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${where}: resources must map resource names to TTL seconds`);
  }
  const out: Record<string, number> = {};
  for (const [name, ttl] of Object.entries(value)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new UsageError(`${where}: resource "${name.slice(0, 60)}" is not a plain name`);
    out[name] = parsePositiveInt(ttl, `${where}: resources.${name}`);
  }
  return out;
}

/** The registry a pick names (the project's embedded one when none); a UsageError when it is unusable. */
function registrySpec(pick: Picked | undefined, env: NodeJS.ProcessEnv, projectDir: string, notices: string[]): RegistrySpec {
  if (!pick) return { kind: 'embedded', dir: path.resolve(projectDir, DEFAULT_EMBEDDED_DIR) };
  const parsed = parseRegistrySpec(String(pick.value), env, pick.base, pick.where, projectDir);
  if (pick.where === 'env SUPABASE_URL') {
    // SUPABASE_URL is only ever a Supabase project; its key comes from the environment too.
    if (!supabaseKeyFromEnv(env)) throw new UsageError('SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SERVICE_KEY / SUPABASE_KEY) is not');
    if (parsed.spec.kind !== 'supabase') throw new UsageError(`env SUPABASE_URL: ${maskUrl(String(pick.value)).slice(0, 200)} is not an https:// URL`);
  }
  notices.push(...parsed.notices);
  return parsed.spec;
}

const LEVEL: Record<SettingSource, number> = { flag: 0, env: 1, file: 2, default: 3 };

/**
 * The Redis URL, Cluster and Sentinel picks that apply. A `--redis-url` on the
 * command line is that server, whatever the environment or the config file
 * name (a destructive command must reach the server typed). Otherwise a
 * Cluster or Sentinel wins, a URL at any level lending it credentials,
 * database and TLS (the services' REDIS_URL beside a Cluster in the config
 * file); between a Cluster and a Sentinel the higher level wins, and two at
 * one level stay (a usage error later).
 */
function outranked([url, cluster, sentinel]: (Picked | undefined)[]): (Picked | undefined)[] {
  const level = (p: Picked | undefined) => (p ? LEVEL[p.source] : Infinity);
  if (url?.source === 'flag' && cluster?.source !== 'flag' && sentinel?.source !== 'flag') return [url, undefined, undefined];
  const top = Math.min(level(cluster), level(sentinel));
  return [url, level(cluster) === top ? cluster : undefined, level(sentinel) === top ? sentinel : undefined];
}

interface Picked {
  value: unknown;
  source: SettingSource;
  /** For messages: "--redis-url", "env REDIS_URL", "tenantctl.config.yaml". */
  where: string;
  /** Relative paths resolve against this directory (the working directory for flags and env, the project for the file). */
  base: string;
}

/**
 * Resolves every setting: flag > environment > `tenantctl.config.{json,yaml}`
 * of the project > default (DESIGN.md, "Configuration"). The project is found
 * by walking up from `cwd` (see findProjectRoot).
 */
export function resolveConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env, cwd = workingDirectory(), naming: FlagNaming = 'command-line'): TenantctlConfig {
  const project = findProjectRoot(cwd);
  const flagName = (def: SettingDef) => (naming === 'command-line' ? def.flagName! : `flags.${def.flag}`);
  // Every way to give a setting, for advice: "--sentinel-master, env REDIS_SENTINEL_MASTER or sentinel_master in the config file".
  const waysToGive = (key: string) => {
    const def = settingDef(key);
    const ways = [...(def.flag ? [flagName(def)] : []), ...(def.env ?? []).map((e) => `env ${e}`)];
    return `${ways.join(', ')} or ${key} in the config file`;
  };
  const data = readConfigFile(project.configFile, cwd);
  const fileName = project.configFile ? shownPath(project.configFile, cwd) : 'config file';
  const settings = new Map<string, ResolvedSetting>();

  const pick = (key: string): Picked | undefined => {
    const def = settingDef(key);
    // Blanks around a value are a copy-paste slip (" redis://…" is used as a URL by the drivers, which trim it).
    // A secret (a password with deliberate blanks) is taken as given.
    const trimmed = (v: unknown) => (typeof v === 'string' && !def.secret ? v.trim() : v);
    const flag = def.flag ? flags[def.flag] : undefined;
    if (flag !== undefined) return { value: trimmed(flag), source: 'flag', where: flagName(def), base: cwd };
    for (const name of def.env ?? []) {
      const v = def.secret ? env[name] : env[name]?.trim();
      if (v !== undefined && v.trim() !== '') return { value: v, source: 'env', where: `env ${name}`, base: cwd };
    }
    const fileValue = data[key];
    if (fileValue !== undefined && fileValue !== null) return { value: trimmed(fileValue), source: 'file', where: fileName, base: project.dir };
    return undefined;
  };
  const record = (key: string, picked: Picked | undefined, shown: unknown) => {
    const def = settingDef(key);
    const value = shown === undefined ? undefined : def.secret ? '****' : maskUrl(typeof shown === 'string' ? shown : JSON.stringify(shown));
    settings.set(key, { key, value, source: picked?.source ?? 'default', origin: picked?.where });
  };
  const int = (key: string, label: string, fallback: number, max?: number) => {
    const p = pick(key);
    const v = p ? parsePositiveInt(p.value, `${label} (${p.where})`, 1, max) : fallback;
    record(key, p, v);
    return v;
  };
  // A text setting in the file must be text (a number passes: a numeric password); a list or mapping was
  // turned into "a,b" or "[object Object]" and used as such.
  const text = (key: string, listToo = false) => {
    const p = pick(key);
    const list = listToo && Array.isArray(p?.value) && (p.value as unknown[]).every((v) => typeof v === 'string');
    if (p && !list && typeof p.value !== 'string' && typeof p.value !== 'number') throw new UsageError(`${p.where}: ${key} must be a string`);
    if (p && String(p.value) === '') throw new UsageError(`${p.where}: ${key} is empty`);
    return p;
  };
  const str = (key: string, listToo = false) => {
    const p = text(key, listToo);
    record(key, p, p?.value);
    return p;
  };
  // A path setting is shown resolved (relative to the project for the config file's, else the working directory).
  const file = (key: string) => {
    const p = text(key);
    const resolved = p ? path.resolve(p.base, String(p.value)) : undefined;
    record(key, p, resolved);
    return resolved;
  };

  const redisTimeoutMs = int('redis_timeout_ms', 'Redis timeout', 1000, MAX_TIMEOUT_MS);
  // `--redis-url` on the command line is the server used, even where the environment or the config
  // file names a Cluster or Sentinel; otherwise a URL beside one only lends it credentials (outranked).
  // Seeds may be a YAML list of host:port.
  const topologyPicks = [str('redis_url'), str('redis_cluster', true), str('redis_sentinel', true)];
  const notices: string[] = [];
  const [urlPick, clusterPick, sentinelPick] = outranked(topologyPicks);
  // What `config` shows for a setting given but not used: the one whose topology won.
  const kept = [urlPick, clusterPick, sentinelPick];
  const winner = clusterPick ?? sentinelPick ?? urlPick;
  ['redis_url', 'redis_cluster', 'redis_sentinel'].forEach((key, i) => {
    if (topologyPicks[i] && !kept[i] && winner) settings.get(key)!.overriddenBy = winner.where;
  });
  const masterPick = str('sentinel_master');
  const sentinelPassword = str('sentinel_password');
  // A URL beside a Cluster or Sentinels lends its credentials only: `config` says so. Set above their level
  // (REDIS_URL in the shell, the Cluster in the file), the server it names is not the one used: said on stderr
  // (an operator's staging REDIS_URL under a project's production Cluster reached the Cluster, and `config`
  // showed the URL as used: a probe).
  const target = clusterPick ?? sentinelPick;
  if (urlPick && target) {
    settings.get('redis_url')!.partlyUsed = `credentials only: the target is ${target.where}`;
    if (LEVEL[urlPick.source] < LEVEL[target.source]) {
      // By host and port (6379 when the URL has none), loopback's names as one; a Sentinels' URL may name the master.
      const url = endpointOf(String(urlPick.value));
      const seeds = String(target.value).split(',').map((s) => endpointOf(`redis://${s.trim()}`));
      const named = url && (seeds.some((n) => n && n.host === url.host && n.port === url.port) || (!!sentinelPick && !!masterPick && url.host === String(masterPick.value)));
      if (url && !named) {
        notices.push(`note: the Redis URL (${urlPick.where}) names ${url.shown}, but the Redis ${clusterPick ? 'Cluster' : 'Sentinels'} (${target.where}) ${clusterPick ? 'is' : 'are'} used (a URL beside ${clusterPick ? 'it' : 'them'} lends its credentials only): give the URL on the command line to use that server`);
      }
    }
  }
  // The Sentinel's master name and password are not used when no Sentinel won: `config` says so.
  if (!sentinelPick && winner) for (const key of ['sentinel_master', 'sentinel_password']) if (settings.get(key)?.origin) settings.get(key)!.overriddenBy = winner.where;
  const tls = { ca: file('redis_ca_cert'), cert: file('redis_tls_cert'), key: file('redis_tls_key') };
  const redis = parseRedisSpec({
    url: urlPick && { value: String(urlPick.value), where: `Redis URL (${urlPick.where})`, fromFlag: urlPick.source === 'flag' },
    cluster: clusterPick && { value: clusterPick.value, where: `Redis cluster nodes (${clusterPick.where})` },
    sentinel: sentinelPick && { value: sentinelPick.value, where: `Redis sentinels (${sentinelPick.where})` },
    sentinelMaster: masterPick && { value: String(masterPick.value), where: masterPick.where, fromFlag: masterPick.source === 'flag' },
    sentinelPassword: sentinelPassword && String(sentinelPassword.value),
    tls,
    timeoutMs: redisTimeoutMs,
    names: {
      url: waysToGive('redis_url'),
      sentinels: flagName(settingDef('redis_sentinel')),
      sentinelMaster: waysToGive('sentinel_master'),
      urlFlag: flagName(settingDef('redis_url')),
      flagPlace: naming === 'command-line' ? 'on the command line' : 'among the flags',
    },
  });
  if (redis?.topology === 'cluster' && urlPick && /^\/0*[1-9]\d*$/.test(new URL(String(urlPick.value)).pathname)) {
    notices.push(`note: the Redis URL's database (${urlPick.where}) is not used: a Cluster has database 0 only`);
  }
  const ignored = urlPick ? ignoredRedisUrlParams(String(urlPick.value)) : [];
  if (ignored.length) notices.push(`note: the Redis URL (${urlPick!.where}): query parameter${ignored.length > 1 ? 's' : ''} ${ignored.slice(0, 5).join(', ')} not used by tenantctl (it reads db, username, password)`);
  // TLS files beside a plain redis:// server are not used: said once, and shown as such by `config`.
  if (redis?.topology === 'standalone' && !redis.tls && tlsFilesGiven(tls)) {
    const unused = ['redis_ca_cert', 'redis_tls_cert', 'redis_tls_key'].map((k) => settings.get(k)!).filter((st) => st.origin);
    for (const st of unused) st.overriddenBy = `the redis:// URL (${urlPick!.where})`;
    // Each by its name (`redis_ca_cert in tenantctl.config.yaml`, `env REDIS_CA_CERT`), not the whole file.
    const named = unused.map((st) => (st.source === 'file' ? `${st.key} in ${st.origin}` : st.origin));
    notices.push(`${named.join(', ')} not used: the Redis URL (${urlPick!.where}) is redis://, so no TLS (rediss:// for TLS)`);
  }

  const ttl = int('ttl', 'TTL', 300);
  const permissionsTtl = int('permissions_ttl', `${fileName}: permissions_ttl`, ttl);
  // Not set, it is the ttl's value: shown as coming from where that came from (it said "default").
  const ttlSetting = settings.get('ttl')!;
  if (settings.get('permissions_ttl')!.source === 'default' && ttlSetting.source !== 'default') {
    settings.set('permissions_ttl', { ...settings.get('permissions_ttl')!, source: ttlSetting.source, origin: `ttl (${ttlSetting.origin})` });
  }

  const registryPick = text('registry');
  let registry: RegistrySpec;
  try {
    registry = registrySpec(registryPick, env, project.dir, notices);
  } catch (err) {
    // Unusable, but only the commands that open the registry fail on it (exit 2 then): test-redis in a CI
    // whose DATABASE_URL is another service's mysql://, completion, schema and `config` itself still run.
    // Typed on this command line (fromFlag), it is a mistake in this command: every command but `config`
    // (which shows it) fails on it (see action.ts).
    if (!(err instanceof UsageError)) throw err;
    registry = { kind: 'invalid', problem: err.message, ...(registryPick?.source === 'flag' && { fromFlag: true }) };
  }
  record('registry', registryPick, registry.kind === 'invalid' ? `not usable: ${registry.problem}` : registryPick ? (registry.kind === 'embedded' ? `embedded ${registry.dir}` : registryPick.value) : `embedded ${path.join(project.dir, DEFAULT_EMBEDDED_DIR)}`);
  const registryTimeoutMs = int('registry_timeout_ms', 'registry timeout', 5000, MAX_TIMEOUT_MS);

  // An empty --tenants-dir (an unset variable in a script) would silently mean the working directory.
  if (flags.tenantsDir !== undefined && flags.tenantsDir.trim() === '') {
    throw new UsageError(`${flagName(settingDef('tenants_dir'))} is empty (leave it out for ./tenants)`, { reason: 'bad-tenants-dir' });
  }
  const tenantsPick = text('tenants_dir');
  const tenantsDir = tenantsPick ? path.resolve(tenantsPick.base, String(tenantsPick.value)) : path.join(project.dir, 'tenants');
  record('tenants_dir', tenantsPick, tenantsDir);

  const prefixPick = str('registry_only_prefix');
  const registryOnlyPrefix = prefixPick ? String(prefixPick.value) : 'tn_';
  if (!prefixPick) record('registry_only_prefix', undefined, registryOnlyPrefix);

  const yamlOnlyPick = pick('yaml_only_tenants');
  const yamlOnlyTenants = yamlOnlyPick ? parseIdList(yamlOnlyPick.value, `${fileName}: yaml_only_tenants`) : [];
  record('yaml_only_tenants', yamlOnlyPick, yamlOnlyTenants.length ? yamlOnlyTenants.join(', ') : undefined);

  const auditLog = file('audit_log');
  const warmPick = pick('warm_cache');
  if (warmPick && typeof warmPick.value !== 'boolean') throw new UsageError(`${fileName}: warm_cache must be true or false`);
  const warmCache = warmPick?.value === true;
  record('warm_cache', warmPick, warmCache);

  const resourcesPick = pick('resources');
  const resources = resourcesPick ? parseResources(resourcesPick.value, fileName) : { ...DEFAULT_RESOURCES };
  record('resources', resourcesPick, Object.entries(resources).map(([n, t]) => `${n}=${t}s`).join(', '));
  const familiesPick = pick('families');
  const extra = familiesPick ? parseFamilies(familiesPick.value, fileName) : [];
  // Each with its TTL where one is declared, as resources are shown (it was left out).
  record('families', familiesPick, extra.length ? extra.map((f) => `${f.name}=${f.patterns[0]}${f.ttl === undefined ? '' : ` ${f.ttl}s`}`).join(', ') : undefined);

  const families = buildFamilies({ ttl, permissionsTtl, resources, extra });
  assertNoOverlap(families);

  return {
    project,
    redis,
    redisTimeoutMs,
    registry,
    registryTimeoutMs,
    tenantsDir,
    tenantsDirExplicit: !!tenantsPick,
    ttl,
    permissionsTtl,
    registryOnlyPrefix,
    yamlOnlyTenants,
    families,
    auditLog,
    warmCache,
    settings: SETTINGS.map((s) => settings.get(s.key) ?? { key: s.key, source: 'default' }),
    notices,
  };
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

/** The host and port a Redis URL names (loopback's names as one), or undefined where it does not parse (said elsewhere). */
function endpointOf(url: string): { host: string; port: string; shown: string } | undefined {
  try {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) return undefined;
    return { host: LOOPBACK_NAMES.has(host) ? 'loopback' : host, port: u.port || '6379', shown: u.port ? `${u.hostname}:${u.port}` : u.hostname };
  } catch {
    return undefined;
  }
}
