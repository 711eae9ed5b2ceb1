import { BackendUnavailableError, describeError } from '../errors.js';
import type { Cache } from '../cache/cache.js';
import type { TtlClass } from '../cache/cache-store.js';
import { escapeGlob } from '../keys/glob.js';
import type { KeySpace } from '../keys/key-families.js';
import type { Registry } from '../registry/registry-store.js';
import type { YamlTenantSource } from '../tenants/tenant-source.js';
import { TenantTally } from './tenant-tally.js';
import { showControls } from '../redact.js';

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
  /**
   * Cached tenants that are in neither the registry nor YAML, or not active:
   * the largest `--top` of them (all of them with --tenant); undefined when the registry could not be asked.
   */
  orphans?: Orphan[];
  /** How many orphans there are in all. */
  orphan_count?: number;
  /** Why orphans are not known (registry down or absent). */
  orphans_unknown?: string;
  /** Cluster: slots that moved between masters during the pass (a resharding): their keys may be counted twice or not at all. */
  moving_slots?: number[];
}

const zero = (): KeyStats => ({ keys: 0, bytes: 0, ttl_under_minute: 0, ttl_under_hour: 0, ttl_later: 0, no_ttl: 0 });

/** Counts one key into a family's stats. */
function add(into: KeyStats, bytes: number, ttl: TtlClass): void {
  into.keys += 1;
  into.bytes += bytes;
  if (ttl === 1) into.ttl_under_minute += 1;
  else if (ttl === 2) into.ttl_under_hour += 1;
  else if (ttl === 3) into.ttl_later += 1;
  else if (ttl === 4) into.no_ttl += 1;
}

/** The stats of all the given groups together. */
function sum(all: KeyStats[]): KeyStats {
  const total = zero();
  for (const s of all) for (const k of Object.keys(total) as Array<keyof KeyStats>) total[k] += s[k];
  return total;
}

/** Registry rows read per query when looking for orphans. */
const PAGE = 1000;

/** The id's bytes, shown as UTF-8 (an id that is not UTF-8 shows replacement characters). */
/**
 * A tenant slot's bytes (a binary string) as text: UTF-8 where they are UTF-8, else each byte past ASCII
 * as `\xNN`, so two different slots are never shown (nor labelled in Prometheus) alike, as two
 * invalid sequences decoded to U+FFFD would be.
 */
export function shownTenant(binary: string): string {
  const bytes = Buffer.from(binary, 'latin1');
  const text = bytes.toString('utf8');
  if (!text.includes('\uFFFD') || Buffer.from(text, 'utf8').equals(bytes)) return text;
  return binary.replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
const shown = shownTenant;

/**
 * Profiles the tool's keys in one server-side pass per master (MEMORY USAGE
 * and PTTL per key in the server; key names never cross the wire), sums them
 * per family and, in a columnar tally, per tenant, then finds the orphans
 * among the cached tenants. Memory grows with the number of tenants (a few
 * bytes each), never with the number of keys.
 */
export async function profileCache(
  deps: { cache: Cache; keys: KeySpace; source: YamlTenantSource; registry: () => Promise<Registry> },
  options: { by: 'tenant' | 'family'; tenant?: string; top?: number; signal?: AbortSignal },
): Promise<CacheProfile> {
  const rules = deps.keys.rules(options.tenant ? { tenants: [options.tenant] } : {});
  const families = rules.groups.map((g) => ({ family: g, ...zero() }));
  const tally = new TenantTally(rules.groups.length);
  const result = await deps.cache.need((store) =>
    store.sweep({
      rules,
      action: 'profile',
      // One tenant: every key of it contains its id, so the server filters first.
      match: options.tenant ? `*${escapeGlob(options.tenant)}*` : undefined,
      signal: options.signal,
      onBatch: (b) =>
        b.profile?.forEach((group, tenant, start, end, bytes, ttl) => {
          add(families[group], bytes, ttl);
          tally.add(group, tenant, start, end, bytes, ttl);
        }),
    }),
  );
  const top = options.tenant ? tally.size : (options.top ?? 10);
  const profile: CacheProfile = {
    by: options.by,
    tenant: options.tenant,
    scanned: result.scanned,
    total: sum(families),
    families,
    tenants: tally.largest(top).map((i) => ({ tenant: shown(tally.id(i)), ...tally.row(i, rules.groups) })),
    tenant_count: tally.size,
    ...(result.moving?.length && { moving_slots: result.moving }),
  };
  try {
    // Reasons by tenant position: a number and a shared string each, however many orphans there are.
    const reasons = await findOrphans(deps, tally);
    profile.orphan_count = reasons.size;
    profile.orphans = tally
      .largest(top, (at) => reasons.has(at))
      .map((at) => ({ tenant: shown(tally.id(at)), keys: tally.keys(at), bytes: tally.bytes(at), reason: reasons.get(at)! }));
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    profile.orphans_unknown = describeError(err);
  }
  return profile;
}

/** Cached tenants the registry and YAML do not know, or whose registry status is not active: why, by tenant position. */
async function findOrphans(deps: { source: YamlTenantSource; registry: () => Promise<Registry> }, tally: TenantTally): Promise<Map<number, string>> {
  // No embedded registry yet reads as an empty one: then YAML alone knows the tenants.
  const registry = await deps.registry().catch((err) => {
    if (err instanceof BackendUnavailableError && err.reason === 'not-configured') return undefined;
    throw err;
  });
  const orphans = new Map<number, string>();
  // One directory listing, not a lookup per cached tenant (100,000 of them: 400,000 stats).
  let inYaml: Set<string> | undefined;
  for (let from = 0; from < tally.size; from += PAGE) {
    const page = Array.from({ length: Math.min(PAGE, tally.size - from) }, (_, i) => shown(tally.id(from + i)));
    const rows = registry ? await registry.getTenants(page) : new Map();
    const unknown: number[] = [];
    page.forEach((tenant, i) => {
      const row = rows.get(tenant);
      if (row) {
        if (row.status !== 'active') orphans.set(from + i, `status ${row.status}`);
      } else if (!(inYaml ??= new Set(deps.source.listIds())).has(tenant)) {
        // A registry-only id (tn_...) with no registry to look in is not known to be an orphan (verify: undecided).
        if (registry || deps.source.allows(tenant)) unknown.push(i);
      }
    });
    // A business known by its subscription alone (a permissions: entry) is not an orphan either, as for verify.
    const subscribed = registry && unknown.length ? await registry.getSubscriptions(unknown.map((i) => page[i])) : new Map();
    for (const i of unknown) if (!subscribed.has(page[i])) orphans.set(from + i, 'unknown tenant');
  }
  return orphans;
}

/** Whether the profile ran (1) or Redis could not be profiled (0): its own gauge, beside plain cache-info's tenantctl_redis_up. */
export function profileUpMetric(up: boolean): string {
  return `# HELP tenantctl_cache_profile_up Whether the cache profile ran (1) or Redis was unavailable (0).\n# TYPE tenantctl_cache_profile_up gauge\ntenantctl_cache_profile_up ${up ? 1 : 0}\n`;
}

/** The profile in Prometheus text; the `tenant` label only for the top tenants (bounded cardinality). */
export function profileToPrometheus(p: CacheProfile): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: Array<[string, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  // Control characters (a tenant part of raw bytes, read as latin1, may hold C1 codes) shown as \xNN first.
  const esc = (s: string) => showControls(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  // No series of plain cache-info's (tenantctl_cache_keys, tenantctl_redis_up): a textfile collector reads
  // both files, and refuses a series that two of them carry ("was collected before with the same name and label values").
  metric('tenantctl_cache_family_keys', 'Keys per tenantctl key family.', p.families.map((f) => [`{family="${esc(f.family)}"}`, f.keys]));
  metric('tenantctl_cache_family_bytes', 'Memory (MEMORY USAGE) per key family.', p.families.map((f) => [`{family="${esc(f.family)}"}`, f.bytes]));
  metric('tenantctl_cache_family_keys_without_ttl', 'Keys with no TTL per family (the services always set one).', p.families.map((f) => [`{family="${esc(f.family)}"}`, f.no_ttl]));
  metric('tenantctl_cache_tenant_bytes', 'Memory of the top tenants (the label is capped to --top).', p.tenants.map((t) => [`{tenant="${esc(t.tenant)}"}`, t.bytes]));
  metric('tenantctl_cache_tenant_keys', 'Keys of the top tenants.', p.tenants.map((t) => [`{tenant="${esc(t.tenant)}"}`, t.keys]));
  metric('tenantctl_cache_tenants', 'Tenants with keys in the cache.', [['', p.tenant_count]]);
  if (p.orphan_count !== undefined) metric('tenantctl_cache_orphan_tenants', 'Cached tenants unknown to the registry and YAML, or not active.', [['', p.orphan_count]]);
  return `${lines.join('\n')}\n`;
}
