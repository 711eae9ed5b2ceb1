import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { load, CORE_SCHEMA } from 'js-yaml';
import { UsageError } from '../errors.js';
import { buildFamilies, DEFAULT_RESOURCES, type KeyFamily } from '../cache/key-families.js';
import { parseRegistrySpec, supabaseKeyFromEnv, DEFAULT_EMBEDDED_DIR, type RegistrySpec } from './registry-spec.js';

/** The resolved configuration of one run. */
export interface TenantctlConfig {
  /** Redis URL (`redis://`, `rediss://`, with optional `user:password@`); undefined = cache disabled. */
  redisUrl?: string;
  /** Redis Cluster seed nodes (`host:port`); when set, the cluster is used instead of redisUrl's host. */
  redisCluster?: string[];
  /** Connect and per-command timeout in ms. @default 1000 */
  redisTimeoutMs: number;
  registry: RegistrySpec;
  /** @default ./tenants */
  tenantsDir: string;
  /** TTL of tenant config entries, seconds. @default 300 */
  ttl: number;
  /** TTL of `permissions:<business>` entries, seconds. @default the ttl */
  permissionsTtl: number;
  /** Tenants whose id starts with this live only in the registry. @default "tn_" */
  registryOnlyPrefix: string;
  families: KeyFamily[];
  /** The config file that was read, if any. */
  configFile?: string;
}

/** Flags as commander hands them over (all optional strings / numbers). */
export interface ConfigFlags {
  redisUrl?: string;
  redisCluster?: string;
  redisTimeout?: number;
  registry?: string;
  tenantsDir?: string;
  ttl?: number;
}

const FILE_KEYS = new Set([
  'redis_url', 'redis_cluster', 'redis_timeout_ms', 'registry', 'tenants_dir', 'ttl',
  'permissions_ttl', 'registry_only_prefix', 'resources', 'families',
]);

/** Parses a whole number of at least `min`; the message names where it came from. */
export function parsePositiveInt(value: unknown, where: string, min = 1): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${where} must be a whole number >= ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseNodes(value: unknown, where: string): string[] {
  const list = Array.isArray(value) ? value.map(String) : String(value).split(',');
  const nodes = list.map((s) => s.trim()).filter(Boolean);
  for (const n of nodes) {
    if (!/^[^\s:]+:\d{1,5}$/.test(n)) throw new UsageError(`${where}: "${n}" is not host:port`);
  }
  if (nodes.length === 0) throw new UsageError(`${where} lists no nodes`);
  return nodes;
}

function readConfigFile(cwd: string): { file?: string; data: Record<string, unknown> } {
  for (const name of ['tenantctl.config.json', 'tenantctl.config.yaml', 'tenantctl.config.yml']) {
    const file = path.join(cwd, name);
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    let data: unknown;
    try {
      data = name.endsWith('.json') ? JSON.parse(text) : load(text, { schema: CORE_SCHEMA, maxAliases: 50, maxDepth: 32 });
    } catch (err) {
      throw new UsageError(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (data == null) data = {};
    if (typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`${name}: must be a mapping`);
    for (const k of Object.keys(data as object)) {
      if (!FILE_KEYS.has(k)) throw new UsageError(`${name}: unknown setting "${k}"`);
    }
    return { file, data: data as Record<string, unknown> };
  }
  return { data: {} };
}

function parseFamilies(value: unknown, where: string): KeyFamily[] {
  if (!Array.isArray(value)) throw new UsageError(`${where}: families must be a list`);
  return value.map((f, i) => {
    if (!f || typeof f !== 'object') throw new UsageError(`${where}: families[${i}] must be a mapping`);
    const { name, pattern, ttl } = f as Record<string, unknown>;
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
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new UsageError(`${where}: resource "${name}" is not a plain name`);
    out[name] = parsePositiveInt(ttl, `${where}: resources.${name}`);
  }
  return out;
}

/**
 * Resolves every setting: flag > environment > `tenantctl.config.{json,yaml}`
 * in the working directory > default (DESIGN.md, "Configuration").
 */
export function resolveConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): TenantctlConfig {
  const { file, data } = readConfigFile(cwd);
  const fileName = file ? path.basename(file) : 'config';
  const pick = <T>(flag: T | undefined, envValue: string | undefined, fileValue: unknown): { v: unknown; where: string } | undefined => {
    if (flag !== undefined) return { v: flag, where: 'flag' };
    if (envValue !== undefined && envValue !== '') return { v: envValue, where: 'env' };
    if (fileValue !== undefined && fileValue !== null) return { v: fileValue, where: fileName };
    return undefined;
  };

  const redisUrlPick = pick(flags.redisUrl, env.REDIS_URL, data.redis_url);
  const redisUrl = redisUrlPick ? String(redisUrlPick.v) : undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//i.test(redisUrl)) {
    throw new UsageError(`Redis URL must start with redis:// or rediss://`);
  }
  const clusterPick = pick(flags.redisCluster, env.REDIS_CLUSTER_NODES, data.redis_cluster);
  const timeoutPick = pick(flags.redisTimeout, env.REDIS_TIMEOUT_MS, data.redis_timeout_ms);
  const ttlPick = pick(flags.ttl, env.CACHE_TTL, data.ttl);
  const ttl = ttlPick ? parsePositiveInt(ttlPick.v, `TTL (${ttlPick.where})`) : 300;
  const permissionsTtl = data.permissions_ttl != null ? parsePositiveInt(data.permissions_ttl, `${fileName}: permissions_ttl`) : ttl;

  let registry: RegistrySpec;
  if (flags.registry !== undefined) registry = parseRegistrySpec(flags.registry, env, cwd);
  else if (env.DATABASE_URL) registry = parseRegistrySpec(env.DATABASE_URL, env, cwd);
  else if (env.SUPABASE_URL) {
    const key = supabaseKeyFromEnv(env);
    if (!key) throw new UsageError('SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is not');
    registry = { kind: 'supabase', url: env.SUPABASE_URL.replace(/\/+$/, ''), key };
  } else if (data.registry != null) registry = parseRegistrySpec(String(data.registry), env, cwd);
  else registry = { kind: 'embedded', dir: path.resolve(cwd, DEFAULT_EMBEDDED_DIR) };

  const tenantsPick = pick(flags.tenantsDir, env.TENANTS_DIR, data.tenants_dir);
  const prefix = data.registry_only_prefix == null ? 'tn_' : String(data.registry_only_prefix);

  return {
    redisUrl,
    redisCluster: clusterPick ? parseNodes(clusterPick.v, `Redis cluster nodes (${clusterPick.where})`) : undefined,
    redisTimeoutMs: timeoutPick ? parsePositiveInt(timeoutPick.v, `Redis timeout (${timeoutPick.where})`) : 1000,
    registry,
    tenantsDir: path.resolve(cwd, tenantsPick ? String(tenantsPick.v) : 'tenants'),
    ttl,
    permissionsTtl,
    registryOnlyPrefix: prefix,
    families: buildFamilies({
      ttl,
      permissionsTtl,
      resources: data.resources != null ? parseResources(data.resources, fileName) : { ...DEFAULT_RESOURCES },
      extra: data.families != null ? parseFamilies(data.families, fileName) : [],
    }),
    configFile: file,
  };
}
