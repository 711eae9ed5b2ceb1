import { BackendUnavailableError, describeError } from '../errors.js';
import type { Cache } from '../cache/cache.js';
import type { ProfileRow } from '../cache/cache-store.js';
import { escapeGlob } from '../keys/glob.js';
import type { KeySpace } from '../keys/key-families.js';
import type { RegistryStore } from '../registry/registry-store.js';
import type { YamlTenantSource } from '../tenants/tenant-source.js';

/** Keys, memory and TTL spread of a group of keys. */
export interface KeyStats {
  keys: number;
  bytes: number;
  /** TTL ends within a minute / within an hour / later. */
  ttl_under_minute: number;
  ttl_under_hour: number;
  ttl_later: number;
  /** Keys with no TTL at all: a leak (the services always set one). */
  no_ttl: number;
}

export interface FamilyProfile extends KeyStats {
  family: string;
}

export interface TenantProfile extends KeyStats {
  tenant: string;
  /** Keys per family. */
  families: Record<string, number>;
}

export interface Orphan {
  tenant: string;
  keys: number;
  bytes: number;
  reason: 'unknown tenant' | 'status suspended' | 'status deleted' | string;
}

/** Where the cache memory goes: exact (every key, not a sample), per family and per tenant. */
export interface CacheProfile {
  by: 'tenant' | 'family';
  /** Set with --tenant: only this tenant's keys. */
  tenant?: string;
  scanned: number;
  total: KeyStats;
  families: FamilyProfile[];
  /** The top tenants by memory (all of them with --tenant). */
  tenants: TenantProfile[];
  /** How many tenants have keys in the cache. */
  tenant_count: number;
  /** Cached tenants that are in neither the registry nor YAML, or not active; undefined when the registry could not be asked. */
  orphans?: Orphan[];
  /** Why orphans are not known (registry down or absent). */
  orphans_unknown?: string;
}

const zero = (): KeyStats => ({ keys: 0, bytes: 0, ttl_under_minute: 0, ttl_under_hour: 0, ttl_later: 0, no_ttl: 0 });

function add(into: KeyStats, row: ProfileRow): void {
  into.keys += row.keys;
  into.bytes += row.bytes;
  into.ttl_under_minute += row.ttlUnderMinute;
  into.ttl_under_hour += row.ttlUnderHour;
  into.ttl_later += row.ttlLater;
  into.no_ttl += row.noTtl;
}

/** Registry rows read per query when looking for orphans. */
const PAGE = 1000;

/**
 * Profiles the tool's keys in one server-side pass per master (MEMORY USAGE
 * and PTTL per key, aggregated per batch in the server; key names never cross
 * the wire), then finds the orphans among the cached tenants. Memory here
 * grows with the number of tenants, never with the number of keys.
 */
export async function profileCache(
  deps: { cache: Cache; keys: KeySpace; source: YamlTenantSource; registry: () => Promise<RegistryStore> },
  options: { by: 'tenant' | 'family'; tenant?: string; top?: number; signal?: AbortSignal },
): Promise<CacheProfile> {
  const rules = deps.keys.rules(options.tenant ? { tenants: [options.tenant] } : {});
  const families = new Map(rules.groups.map((g) => [g, { family: g, ...zero() }]));
  const tenants = new Map<string, TenantProfile>();
  const total = zero();
  const result = await deps.cache.need((store) =>
    store.sweep({
      rules,
      action: 'profile',
      // One tenant: every key of it contains its id, so the server filters first.
      match: options.tenant ? `*${escapeGlob(options.tenant)}*` : undefined,
      signal: options.signal,
      onBatch: (b) => {
        for (const row of b.profile ?? []) {
          const family = rules.groups[row.group];
          add(families.get(family)!, row);
          add(total, row);
          // A tenant id that is not UTF-8 is shown with replacement characters; it is still counted apart.
          const id = row.tenant.toString('latin1');
          let t = tenants.get(id);
          if (!t) tenants.set(id, (t = { tenant: Buffer.from(id, 'latin1').toString('utf8'), families: {}, ...zero() }));
          add(t, row);
          t.families[family] = (t.families[family] ?? 0) + row.keys;
        }
      },
    }),
  );
  const byMemory = [...tenants.values()].sort((a, b) => b.bytes - a.bytes || (a.tenant < b.tenant ? -1 : 1));
  const profile: CacheProfile = {
    by: options.by,
    tenant: options.tenant,
    scanned: result.scanned,
    total,
    families: [...families.values()],
    tenants: options.tenant ? byMemory : byMemory.slice(0, options.top ?? 10),
    tenant_count: tenants.size,
  };
  try {
    profile.orphans = await findOrphans(deps, byMemory);
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    profile.orphans_unknown = describeError(err);
  }
  return profile;
}

/** Cached tenants the registry and YAML do not know, or whose registry status is not active. */
async function findOrphans(deps: { source: YamlTenantSource; registry: () => Promise<RegistryStore> }, cached: TenantProfile[]): Promise<Orphan[]> {
  // No embedded registry yet reads as an empty one: then YAML alone knows the tenants.
  const registry = await deps.registry().catch((err) => {
    if (err instanceof BackendUnavailableError && err.reason === 'not-configured') return undefined;
    throw err;
  });
  const orphans: Orphan[] = [];
  for (let i = 0; i < cached.length; i += PAGE) {
    const page = cached.slice(i, i + PAGE);
    const rows = registry ? await registry.getTenants(page.map((t) => t.tenant)) : new Map();
    for (const t of page) {
      const row = rows.get(t.tenant);
      const reason = row ? (row.status === 'active' ? undefined : `status ${row.status}`) : deps.source.fileOf(t.tenant) ? undefined : 'unknown tenant';
      if (reason) orphans.push({ tenant: t.tenant, keys: t.keys, bytes: t.bytes, reason });
    }
  }
  return orphans;
}

/** The profile in Prometheus text; the `tenant` label only for the top tenants (bounded cardinality). */
export function profileToPrometheus(p: CacheProfile): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: Array<[string, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  metric('tenantctl_cache_family_keys', 'Keys per tenantctl key family.', p.families.map((f) => [`{family="${esc(f.family)}"}`, f.keys]));
  metric('tenantctl_cache_family_bytes', 'Memory (MEMORY USAGE) per key family.', p.families.map((f) => [`{family="${esc(f.family)}"}`, f.bytes]));
  metric('tenantctl_cache_family_keys_without_ttl', 'Keys with no TTL per family (the services always set one).', p.families.map((f) => [`{family="${esc(f.family)}"}`, f.no_ttl]));
  metric('tenantctl_cache_tenant_bytes', 'Memory of the top tenants (the label is capped to --top).', p.tenants.map((t) => [`{tenant="${esc(t.tenant)}"}`, t.bytes]));
  metric('tenantctl_cache_tenant_keys', 'Keys of the top tenants.', p.tenants.map((t) => [`{tenant="${esc(t.tenant)}"}`, t.keys]));
  metric('tenantctl_cache_tenants', 'Tenants with keys in the cache.', [['', p.tenant_count]]);
  if (p.orphans) metric('tenantctl_cache_orphan_tenants', 'Cached tenants unknown to the registry and YAML, or not active.', [['', p.orphans.length]]);
  return `${lines.join('\n')}\n`;
}
