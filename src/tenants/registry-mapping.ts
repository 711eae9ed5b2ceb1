import type { TenantRow, TenantWrite } from '../registry/registry-store.js';

export { contentHash } from '../registry/content-hash.js';
import { contentHash } from '../registry/content-hash.js';
import { isMap } from './plain-object.js';
import { UsageError } from '../errors.js';
import { MAX_CACHED_DEPTH } from '../json/bounded-json.js';

/** The client keys that live in registry columns rather than in tenant_config. */
const CLIENT_COLUMNS = ['id', 'name', 'short_name', 'timezone', 'currency'] as const;

type Json = Record<string, unknown>;
const str = (v: unknown): string | null => (v === undefined || v === null || v === '' ? null : String(v));

/**
 * The registry row for a tenant config (secrets already stripped): the client
 * block goes to the columns, everything else stays in tenant_config as written.
 * `email.primary` and `infrastructure.gcp` also fill their columns.
 * `knownHash`: the row's content hash computed before from this very config
 * (a parsed file's rowHash), so it is not computed again.
 */
export function rowFromConfig(id: string, config: Json, knownHash?: string): TenantWrite {
  const { client: rawClient, yaml_only: _yamlOnly, _meta: _m, ...rest } = config;
  const client = isMap(rawClient) ? rawClient : {};
  const extraClient = Object.fromEntries(Object.entries(client).filter(([k]) => !(CLIENT_COLUMNS as readonly string[]).includes(k)));
  const tenantConfig: Json = { ...rest };
  if (Object.keys(extraClient).length) tenantConfig.client = extraClient;
  const email = isMap(rest.email) ? rest.email : {};
  const infra = isMap(rest.infrastructure) ? rest.infrastructure : {};
  const gcp = isMap(infra.gcp) ? infra.gcp : {};
  const write: Omit<TenantWrite, 'tenantctl_hash'> = {
    id,
    name: String(client.name),
    short_name: str(client.short_name),
    timezone: str(client.timezone ?? rest.timezone),
    currency: str(client.currency ?? rest.currency),
    primary_email: str(email.primary),
    gcp_project_id: str(gcp.project_id),
    gcp_dataset: str(gcp.dataset),
    tenant_config: tenantConfig,
  };
  return { ...write, tenantctl_hash: knownHash ?? contentHash(write) };
}

/**
 * Rebuilds a config from a registry row as the services do: the client block
 * from the columns, `email.primary` and `infrastructure.gcp` from theirs.
 */
export function configFromRow(row: TenantRow): Json {
  const stored: Json = copyOf(row);
  const client: Json = { ...(isMap(stored.client) ? stored.client : {}), id: row.id, name: row.name };
  for (const c of ['short_name', 'timezone', 'currency'] as const) if (row[c] != null) client[c] = row[c];
  const { client: _c, ...rest } = stored;
  const config: Json = { client, ...rest };
  if (row.primary_email != null) config.email = { ...(isMap(rest.email) ? rest.email : {}), primary: row.primary_email };
  if (row.gcp_project_id != null || row.gcp_dataset != null) {
    const infra = isMap(rest.infrastructure) ? rest.infrastructure : {};
    const gcp: Json = { ...(isMap(infra.gcp) ? infra.gcp : {}) };
    if (row.gcp_project_id != null) gcp.project_id = row.gcp_project_id;
    if (row.gcp_dataset != null) gcp.dataset = row.gcp_dataset;
    config.infrastructure = { ...infra, gcp };
  }
  return config;
}

/**
 * The row's tenant_config, copied. A jsonb nested some thousands of levels deep (written by SQL: the services'
 * JSON.stringify cannot write, nor read, one) overflowed the stack here: exit 70, "internal error". Said as
 * what it is, a row that cannot be used.
 */
function copyOf(row: TenantRow): Json {
  const stored = isMap(row.tenant_config) ? row.tenant_config : {};
  // Held to the cache's own limit too: a row 65 to some thousand levels deep was served, cached by --warm, and
  // then refused by every read of that entry (verify called it stale, "not a JSON object": a review).
  if (nestsDeeperThan(stored, MAX_CACHED_DEPTH)) {
    throw new UsageError(`tenant ${row.id}: its registry row cannot be used: tenant_config nests deeper than ${MAX_CACHED_DEPTH} levels (a cached entry that deep is refused; thousands deep, JSON.stringify fails on it)`, { reason: 'bad-registry-row' });
  }
  return structuredClone(stored);
}

/** Whether a value holds arrays or objects more than `max` inside each other; walked without recursion. */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x && typeof x === 'object') stack.push([x, depth + 1]);
  }
  return false;
}
