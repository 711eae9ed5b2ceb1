import type { SupabaseClient } from '@supabase/supabase-js';
import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../redact.js';
import { normaliseRow, subscriptionsFromRows, TENANT_WRITE_COLUMNS, type Registry, type StoredSubscription, type TenantRow, type TenantWrite } from './registry-store.js';
import type { Catalogue, Subscription } from '../permissions/model.js';
import { REGISTRY_CONNECT_TIMEOUT_MS } from './postgres-store.js';

/** Ids per `in.(…)` filter, to keep request URLs short. */
const IDS_PER_REQUEST = 100;
/** PostgREST's usual max-rows: list in pages of this size. */
const PAGE = 1000;

type Result<T> = { data: T | null; error: { message: string; code?: string } | null };

/**
 * The hosted registry through supabase-js with a service-role key. Calls
 * return `{ data, error }` and never throw, so every call is checked; writes
 * ask for the written rows back, because row-level security can make an
 * update silently affect nothing (supabase#20867).
 */
export class SupabaseRegistryStore implements Registry {
  readonly description: string;

  private constructor(
    private readonly client: SupabaseClient,
    url: string,
  ) {
    this.description = `supabase ${maskUrl(url)}`;
  }

  static async open(url: string, key: string, timeoutMs = REGISTRY_CONNECT_TIMEOUT_MS): Promise<SupabaseRegistryStore> {
    const { createClient } = await import('@supabase/supabase-js');
    const { default: ws } = await import('ws');
    const client = createClient(url, key, {
      auth: { autoRefreshToken: false, persistSession: false, detectSessionInUrl: false },
      // Node 20 has no global WebSocket; realtime is never used, but the client builds one.
      realtime: { transport: ws as never },
      global: { fetch: (input, init) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(timeoutMs) }) },
    });
    const store = new SupabaseRegistryStore(client, url);
    // Fail early, with a useful hint, when the table or tenantctl's column is missing.
    const probe = (await client.from('tenants').select('id, tenantctl_hash').limit(1).retry(false)) as Result<unknown>;
    store.check(probe, 'checking the tenants table');
    return store;
  }

  private check<T>(res: Result<T>, what: string): T | null {
    if (res.error) {
      const msg = res.error.message || 'request failed';
      const hint = /tenantctl_hash|relation|does not exist|schema cache/i.test(msg) ? ' (apply `tenantctl schema` in the SQL editor)' : '';
      throw new BackendUnavailableError('registry', `registry (${this.description}) failed while ${what}: ${msg}${hint}`);
    }
    return res.data;
  }

  private async call<T>(what: string, op: () => PromiseLike<Result<T>>): Promise<T | null> {
    let res: Result<T>;
    try {
      res = await op();
    } catch (err) {
      throw new BackendUnavailableError('registry', `registry (${this.description}) failed while ${what}: ${describeError(err)}`, { cause: err });
    }
    return this.check(res, what);
  }

  async getTenant(id: string): Promise<TenantRow | undefined> {
    const data = await this.call('reading a tenant', () =>
      this.client.from('tenants').select('*').eq('id', id).retry(false).maybeSingle() as unknown as PromiseLike<Result<Record<string, unknown>>>,
    );
    return data ? normaliseRow(data) : undefined;
  }

  async getTenants(ids: string[]): Promise<Map<string, TenantRow>> {
    const out = new Map<string, TenantRow>();
    for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) {
      const chunk = ids.slice(i, i + IDS_PER_REQUEST);
      const rows = await this.call('reading tenants', () =>
        this.client.from('tenants').select('*').in('id', chunk).retry(false) as unknown as PromiseLike<Result<Record<string, unknown>[]>>,
      );
      for (const r of rows ?? []) out.set(String(r.id), normaliseRow(r));
    }
    return out;
  }

  async listActiveTenants(): Promise<TenantRow[]> {
    const out: TenantRow[] = [];
    for (let from = 0; ; from += PAGE) {
      const rows = await this.call('listing tenants', () =>
        this.client.from('tenants').select('*').eq('status', 'active').order('id').range(from, from + PAGE - 1).retry(false) as unknown as PromiseLike<Result<Record<string, unknown>[]>>,
      );
      out.push(...(rows ?? []).map(normaliseRow));
      if (!rows || rows.length < PAGE) return out;
    }
  }

  async upsertTenant(row: TenantWrite): Promise<void> {
    const values: Record<string, unknown> = { config_source: 'database', updated_at: new Date().toISOString() };
    for (const c of TENANT_WRITE_COLUMNS) values[c] = row[c];
    const existing = await this.getTenant(row.id);
    const written = existing
      ? await this.call(`updating tenant ${row.id}`, () =>
          this.client.from('tenants').update(values).eq('id', row.id).select('id').retry(false) as unknown as PromiseLike<Result<unknown[]>>,
        )
      : await this.call(`inserting tenant ${row.id}`, () =>
          this.client.from('tenants').insert({ ...values, status: 'active' }).select('id').retry(false) as unknown as PromiseLike<Result<unknown[]>>,
        );
    if (!written || written.length !== 1) {
      throw new BackendUnavailableError('registry', `registry (${this.description}) wrote no row for tenant ${row.id}: check row-level security for the service-role key`);
    }
  }

  /** Builds a query against a table; every call goes through `call` (error checked, no retries). */
  private table(name: string) {
    return this.client.from(name);
  }

  private rows<T = Record<string, unknown>>(what: string, op: () => unknown): Promise<T[]> {
    return this.call(what, op as () => PromiseLike<Result<T[]>>).then((r) => r ?? []);
  }

  async getCatalogue(): Promise<Catalogue & { tenantctl_hash: string | null }> {
    const features = await this.rows<{ name: string }>('reading the feature catalogue', () => this.table('permission_features').select('name').order('name').retry(false));
    const tiers = await this.rows<{ name: string; features: string[]; max_devices: number | null }>('reading tiers', () =>
      this.table('permission_tiers').select('name, features, max_devices').order('name').retry(false));
    const meta = await this.rows<{ value: string }>('reading tenantctl_meta', () => this.table('tenantctl_meta').select('value').eq('key', 'catalogue_hash').retry(false));
    const out: Catalogue['tiers'] = {};
    for (const t of tiers) out[t.name] = { name: t.name, features: [...(t.features ?? [])].sort(), max_devices: t.max_devices ?? null };
    return { features: features.map((f) => f.name).sort(), tiers: out, tenantctl_hash: meta[0]?.value ?? null };
  }

  /** PostgREST has no transactions: write the new rows first, then remove what is no longer listed. */
  async replaceCatalogue(catalogue: Catalogue, hash: string): Promise<void> {
    const list = (names: string[]) => `(${names.map((n) => `"${n}"`).join(',')})`;
    if (catalogue.features.length) {
      await this.rows('writing features', () => this.table('permission_features').upsert(catalogue.features.map((name) => ({ name })), { onConflict: 'name' }).select('name').retry(false));
    }
    await this.rows('removing features', () => this.table('permission_features').delete().not('name', 'in', list(catalogue.features)).select('name').retry(false));
    const tiers = Object.values(catalogue.tiers);
    if (tiers.length) {
      await this.rows('writing tiers', () => this.table('permission_tiers').upsert(tiers.map((t) => ({ name: t.name, features: t.features, max_devices: t.max_devices })), { onConflict: 'name' }).select('name').retry(false));
    }
    await this.rows('removing tiers', () => this.table('permission_tiers').delete().not('name', 'in', list(tiers.map((t) => t.name))).select('name').retry(false));
    await this.rows('writing tenantctl_meta', () => this.table('tenantctl_meta').upsert({ key: 'catalogue_hash', value: hash }, { onConflict: 'key' }).select('key').retry(false));
  }

  async getSubscription(business: string): Promise<StoredSubscription | undefined> {
    return (await this.getSubscriptions([business])).get(business);
  }

  async getSubscriptions(businesses: string[]): Promise<Map<string, StoredSubscription>> {
    const out = new Map<string, StoredSubscription>();
    for (let i = 0; i < businesses.length; i += IDS_PER_REQUEST) {
      const chunk = businesses.slice(i, i + IDS_PER_REQUEST);
      const subs = await this.rows('reading subscriptions', () => this.table('business_subscriptions').select('*').in('business_id', chunk).retry(false));
      const overrides = await this.rows('reading overrides', () =>
        this.table('business_feature_overrides').select('business_id, feature, value').in('business_id', chunk).retry(false));
      subscriptionsFromRows(subs, overrides, out);
    }
    return out;
  }

  async putSubscription(sub: Subscription, hash: string | null): Promise<void> {
    const row = { business_id: sub.business_id, tier: sub.tier, status: sub.status, demo_expires_at: sub.demo_expires_at, tenantctl_hash: hash, updated_at: new Date().toISOString() };
    const written = await this.rows(`writing the subscription of ${sub.business_id}`, () =>
      this.table('business_subscriptions').upsert(row, { onConflict: 'business_id' }).select('business_id').retry(false));
    if (written.length !== 1) throw this.rlsError(sub.business_id);
    await this.rows('replacing overrides', () => this.table('business_feature_overrides').delete().eq('business_id', sub.business_id).select('feature').retry(false));
    const overrides = Object.entries(sub.overrides).map(([feature, value]) => ({ business_id: sub.business_id, feature, value }));
    if (overrides.length) await this.rows('writing overrides', () => this.table('business_feature_overrides').insert(overrides).select('feature').retry(false));
  }

  async setOverride(business: string, feature: string, value: boolean | number | null): Promise<void> {
    if (value === null) {
      await this.rows('removing an override', () => this.table('business_feature_overrides').delete().eq('business_id', business).eq('feature', feature).select('feature').retry(false));
      return;
    }
    const written = await this.rows('writing an override', () =>
      this.table('business_feature_overrides').upsert({ business_id: business, feature, value }, { onConflict: 'business_id,feature' }).select('feature').retry(false));
    if (written.length !== 1) throw this.rlsError(business);
  }

  private rlsError(id: string) {
    return new BackendUnavailableError('registry', `registry (${this.description}) wrote no row for ${id}: check row-level security for the service-role key`);
  }

  async close(): Promise<void> {
    await this.client.removeAllChannels().catch(() => undefined);
  }
}
