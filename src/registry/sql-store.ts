import { readFileSync } from 'node:fs';
import { BackendUnavailableError, describeError } from '../errors.js';
import { normaliseRow, TENANT_WRITE_COLUMNS, type RegistryStore, type TenantRow, type TenantWrite } from './registry-store.js';

/** What pg's Client and PGlite have in common: `$n` parameters, rows back. */
export interface SqlExecutor {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  /** Runs a script of several statements. */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** The schema shipped with the package (src/registry/schema.sql, copied into dist at build). */
export function schemaSql(): string {
  return readFileSync(new URL('./schema.sql', import.meta.url), 'utf8');
}

/** The RegistryStore for PostgreSQL and PGlite: the same SQL on both. */
export class SqlRegistryStore implements RegistryStore {
  constructor(
    readonly db: SqlExecutor,
    readonly description: string,
  ) {}

  /** Applies schema.sql (idempotent). */
  async applySchema(): Promise<void> {
    await this.guard('applying the schema', () => this.db.exec(schemaSql()));
  }

  /** Wraps a registry call so a lost connection becomes BackendUnavailableError. */
  async guard<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw new BackendUnavailableError('registry', `registry (${this.description}) failed while ${what}: ${describeError(err)}`, { cause: err });
    }
  }

  async getTenant(id: string): Promise<TenantRow | undefined> {
    const { rows } = await this.guard('reading a tenant', () => this.db.query('SELECT * FROM tenants WHERE id = $1', [id]));
    return rows[0] ? normaliseRow(rows[0]) : undefined;
  }

  async getTenants(ids: string[]): Promise<Map<string, TenantRow>> {
    const out = new Map<string, TenantRow>();
    if (ids.length === 0) return out;
    const { rows } = await this.guard('reading tenants', () => this.db.query('SELECT * FROM tenants WHERE id = ANY($1::text[])', [ids]));
    for (const r of rows) out.set(String(r.id), normaliseRow(r));
    return out;
  }

  async listActiveTenants(): Promise<TenantRow[]> {
    const { rows } = await this.guard('listing tenants', () =>
      this.db.query("SELECT * FROM tenants WHERE status = 'active' ORDER BY id"),
    );
    return rows.map(normaliseRow);
  }

  async upsertTenant(row: TenantWrite): Promise<void> {
    const cols = TENANT_WRITE_COLUMNS;
    const values = cols.map((c) => (c === 'tenant_config' ? JSON.stringify(row[c]) : row[c]));
    const placeholders = cols.map((c, i) => (c === 'tenant_config' ? `$${i + 1}::jsonb` : `$${i + 1}`));
    const updates = cols.filter((c) => c !== 'id').map((c) => `${c} = EXCLUDED.${c}`);
    const sql =
      `INSERT INTO tenants (${cols.join(', ')}, config_source, status) VALUES (${placeholders.join(', ')}, 'database', 'active') ` +
      `ON CONFLICT (id) DO UPDATE SET ${updates.join(', ')}, config_source = 'database', updated_at = now()`;
    await this.guard(`writing tenant ${row.id}`, () => this.db.query(sql, values));
  }

  async close(): Promise<void> {
    await this.db.close().catch(() => undefined);
  }
}
