import type { SupabaseClient } from '@supabase/supabase-js';
import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../config/registry-spec.js';
import { normaliseRow, TENANT_WRITE_COLUMNS, type RegistryStore, type TenantRow, type TenantWrite } from './registry-store.js';
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
export class SupabaseRegistryStore implements RegistryStore {
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

  async close(): Promise<void> {
    await this.client.removeAllChannels().catch(() => undefined);
  }
}
