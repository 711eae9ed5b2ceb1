import { canonicalJson } from '../json/canonical-json.js';
import { sha256Hex } from '../node-crypto.js';
import type { Catalogue, Subscription } from '../permissions/model.js';
import type { TenantRow, TenantVersionInfo, TenantWrite } from './registry-store.js';

/**
 * Content hashes: what tenantctl stores next to what it migrated (so a later
 * edit in the registry is seen as a conflict), and the *versions* a write
 * compares against inside its transaction (compare-and-set: a row that
 * changed since it was planned is reported as a conflict, never overwritten).
 */

/** Rows are read once and never changed: each is hashed once, however often a plan asks. */
const rowHashes = new WeakMap<object, string>();

/** Hash of the content tenantctl owns in a row (everything it writes but the hash itself). */
export function contentHash(row: Omit<TenantWrite, 'tenantctl_hash'> | TenantRow): string {
  const known = rowHashes.get(row);
  if (known) return known;
  const hash = computeContentHash(row);
  rowHashes.set(row, hash);
  return hash;
}

function computeContentHash(row: Omit<TenantWrite, 'tenantctl_hash'> | TenantRow): string {
  return sha256Hex(
    canonicalJson({
      id: row.id,
      name: row.name,
      short_name: row.short_name ?? null,
      timezone: row.timezone ?? null,
      currency: row.currency ?? null,
      primary_email: row.primary_email ?? null,
      gcp_project_id: row.gcp_project_id ?? null,
      gcp_dataset: row.gcp_dataset ?? null,
      tenant_config: row.tenant_config ?? {},
    }),
  );
}

export const subscriptionHash = (s: Subscription) =>
  sha256Hex(canonicalJson({ tier: s.tier, status: s.status, demo_expires_at: s.demo_expires_at, overrides: s.overrides }));

export const catalogueHash = (c: Catalogue) => sha256Hex(canonicalJson({ features: [...c.features].sort(), tiers: c.tiers }));

/** A row's version info: its content hash and the columns a decision reads. */
export const versionInfo = (row: TenantRow): TenantVersionInfo => ({ config_source: row.config_source, tenantctl_hash: row.tenantctl_hash ?? null, content_hash: contentHash(row) });

/** The version info of whole rows read by id. */
export const versionsOf = (rows: Map<string, TenantRow>): Map<string, TenantVersionInfo> => new Map([...rows].map(([id, row]) => [id, versionInfo(row)]));

/** Everything a migration decision about a tenant row depends on; null for no row. */
export const tenantVersion = (row: TenantRow | TenantVersionInfo | undefined): string | null => {
  if (!row) return null;
  const hash = 'content_hash' in row ? row.content_hash : contentHash(row);
  return `${hash}|${row.config_source}|${row.tenantctl_hash ?? ''}`;
};

/** Everything a decision about a subscription depends on; null for none. */
export const subscriptionVersion = (sub: (Subscription & { tenantctl_hash: string | null }) | undefined): string | null =>
  sub ? `${subscriptionHash(sub)}|${sub.tenantctl_hash ?? ''}` : null;

/** Everything a decision about the catalogue depends on; null for an empty one. */
export const catalogueVersion = (c: Catalogue & { tenantctl_hash: string | null }): string | null =>
  c.features.length || Object.keys(c.tiers).length ? `${catalogueHash(c)}|${c.tenantctl_hash ?? ''}` : null;
