import type { TenantFileError } from '../errors.js';
import type { TenantRow } from '../registry/registry-store.js';
import { configFromRow } from './registry-mapping.js';
import type { TenantDocument } from './tenant-source.js';

/** Where a tenant's stored config comes from, below the cache (DESIGN.md, get-config). */
export type StoredChoice =
  | { source: 'database'; config: Record<string, unknown>; row: TenantRow }
  | { source: 'yaml'; config: Record<string, unknown> }
  | { source: 'file-error'; error: TenantFileError }
  | { source: 'none'; row?: TenantRow };

/**
 * The one rule for the registry-then-YAML step, shared by `get-config` and
 * `verify`: a migrated row (`config_source = 'database'`) is rebuilt as the
 * services rebuild it; otherwise the YAML file, whose error only matters now
 * that it is needed. A yaml_only tenant never gets here (it skips cache and
 * registry). The YAML config is the document's own: copy it before changing it.
 */
export function chooseStoredConfig(row: TenantRow | undefined, doc: Readonly<TenantDocument> | undefined, fileError: TenantFileError | undefined): StoredChoice {
  if (row && row.config_source === 'database') return { source: 'database', config: configFromRow(row), row };
  if (fileError) return { source: 'file-error', error: fileError };
  if (doc) return { source: 'yaml', config: doc.config };
  return { source: 'none', row };
}
