import { readFileSync } from 'node:fs';
import { BackendUnavailableError, describeError } from '../errors.js';
import { normaliseRow, subscriptionsFromRows, TENANT_WRITE_COLUMNS, type Registry, type StoredSubscription, type TenantRow, type TenantWrite } from './registry-store.js';
import type { Catalogue, Subscription } from '../permissions/model.js';

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
export class SqlRegistryStore implements Registry {
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

  /** Runs statements in one transaction. */
  private async transaction(what: string, work: () => Promise<void>): Promise<void> {
    await this.guard(what, async () => {
      await this.db.query('BEGIN');
      try {
        await work();
        await this.db.query('COMMIT');
      } catch (err) {
        await this.db.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async getCatalogue(): Promise<Catalogue & { tenantctl_hash: string | null }> {
    return this.guard('reading the feature catalogue', async () => {
      const features = (await this.db.query('SELECT name FROM permission_features ORDER BY name')).rows.map((r) => String(r.name));
      const tiers: Catalogue['tiers'] = {};
      for (const r of (await this.db.query('SELECT name, features, max_devices FROM permission_tiers ORDER BY name')).rows) {
        const f = typeof r.features === 'string' ? JSON.parse(r.features) : r.features;
        tiers[String(r.name)] = { name: String(r.name), features: [...(f as string[])].sort(), max_devices: r.max_devices === null ? null : Number(r.max_devices) };
      }
      const meta = (await this.db.query("SELECT value FROM tenantctl_meta WHERE key = 'catalogue_hash'")).rows[0];
      return { features, tiers, tenantctl_hash: meta ? String(meta.value) : null };
    });
  }

  async replaceCatalogue(catalogue: Catalogue, hash: string): Promise<void> {
    await this.transaction('writing the feature catalogue', async () => {
      await this.db.query('DELETE FROM permission_features WHERE NOT (name = ANY($1::text[]))', [catalogue.features]);
      for (const f of catalogue.features) await this.db.query('INSERT INTO permission_features (name) VALUES ($1) ON CONFLICT DO NOTHING', [f]);
      const names = Object.keys(catalogue.tiers);
      await this.db.query('DELETE FROM permission_tiers WHERE NOT (name = ANY($1::text[]))', [names]);
      for (const t of Object.values(catalogue.tiers)) {
        await this.db.query(
          'INSERT INTO permission_tiers (name, features, max_devices) VALUES ($1, $2::jsonb, $3) ON CONFLICT (name) DO UPDATE SET features = EXCLUDED.features, max_devices = EXCLUDED.max_devices',
          [t.name, JSON.stringify(t.features), t.max_devices],
        );
      }
      await this.db.query("INSERT INTO tenantctl_meta (key, value) VALUES ('catalogue_hash', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [hash]);
    });
  }

  async getSubscription(business: string): Promise<StoredSubscription | undefined> {
    return (await this.getSubscriptions([business])).get(business);
  }

  async getSubscriptions(businesses: string[]): Promise<Map<string, StoredSubscription>> {
    const out = new Map<string, StoredSubscription>();
    if (businesses.length === 0) return out;
    return this.guard('reading subscriptions', async () => {
      const subs = await this.db.query('SELECT * FROM business_subscriptions WHERE business_id = ANY($1::text[])', [businesses]);
      const overrides = await this.db.query('SELECT business_id, feature, value FROM business_feature_overrides WHERE business_id = ANY($1::text[])', [businesses]);
      return subscriptionsFromRows(subs.rows, overrides.rows, out);
    });
  }

  async putSubscription(sub: Subscription, hash: string | null): Promise<void> {
    await this.transaction(`writing the subscription of ${sub.business_id}`, async () => {
      await this.db.query(
        `INSERT INTO business_subscriptions (business_id, tier, status, demo_expires_at, tenantctl_hash) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (business_id) DO UPDATE SET tier = EXCLUDED.tier, status = EXCLUDED.status, demo_expires_at = EXCLUDED.demo_expires_at,
         tenantctl_hash = EXCLUDED.tenantctl_hash, updated_at = now()`,
        [sub.business_id, sub.tier, sub.status, sub.demo_expires_at, hash],
      );
      await this.db.query('DELETE FROM business_feature_overrides WHERE business_id = $1', [sub.business_id]);
      for (const [feature, value] of Object.entries(sub.overrides)) {
        await this.db.query('INSERT INTO business_feature_overrides (business_id, feature, value) VALUES ($1, $2, $3::jsonb)', [sub.business_id, feature, JSON.stringify(value)]);
      }
    });
  }

  async setOverride(business: string, feature: string, value: boolean | number | null): Promise<void> {
    await this.transaction(`writing an override of ${business}`, async () => {
      if (value === null) await this.db.query('DELETE FROM business_feature_overrides WHERE business_id = $1 AND feature = $2', [business, feature]);
      else {
        await this.db.query(
          'INSERT INTO business_feature_overrides (business_id, feature, value) VALUES ($1, $2, $3::jsonb) ON CONFLICT (business_id, feature) DO UPDATE SET value = EXCLUDED.value',
          [business, feature, JSON.stringify(value)],
        );
      }
      await this.db.query('UPDATE business_subscriptions SET updated_at = now() WHERE business_id = $1', [business]);
    });
  }

  async close(): Promise<void> {
    await this.db.close().catch(() => undefined);
  }
}
