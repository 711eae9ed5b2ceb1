import type { SupabaseClient } from '@supabase/supabase-js';
import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../redact.js';
import {
  CommitOutcomeUnknownError, invalidationsFor, RefusedAmidChanges, refusedRowCode, normaliseRow, CONFIG_DIGITS_COLUMN, CONFIG_TEXT_COLUMN, subscriptionsFromRows, TENANT_WRITE_COLUMNS,
  type ChangeItem, type ChangeOutcome, type ChangeSet, type InvalidationKind, type PendingInvalidation, type Registry, type StoredSubscription, type TenantRow, type TenantVersionInfo, type TenantWrite,
} from './registry-store.js';
import { catalogueVersion, subscriptionVersion, tenantVersion, versionsOf } from './content-hash.js';
import type { Catalogue, Subscription } from '../permissions/model.js';
import { DEFAULT_REGISTRY_TIMEOUT_MS } from './postgres-store.js';

/** Ids per `in.(…)` filter, to keep request URLs short. */
const IDS_PER_REQUEST = 100;
/** PostgREST's usual max-rows: list in pages of this size. */
const PAGE = 1000;

type Result<T> = { data: T | null; error: { message: string; code?: string } | null; status?: number };

/** Requests this store's client sent that change something (anything but GET and HEAD). */
interface Traffic {
  writes: number;
}

/**
 * The hosted registry through supabase-js with a service-role key. Calls
 * return `{ data, error }` and never throw, so every call is checked; writes
 * ask for the written rows back, because row-level security can make an
 * update silently affect nothing (supabase#20867).
 *
 * PostgREST has no transactions: a change set is applied item by item, each
 * update conditional on the row's `updated_at` and hash as they were read
 * (compare-and-set), and the invalidations it owes are recorded *before* the
 * writes (at least once: an item that then turns out a conflict costs one
 * extra invalidation, never a stale entry).
 */
export class SupabaseRegistryStore implements Registry {
  readonly description: string;

  private constructor(
    private readonly client: SupabaseClient,
    url: string,
    private readonly traffic: Traffic,
  ) {
    this.description = `supabase ${maskUrl(url)}`;
  }

  static async open(url: string, key: string, timeoutMs = DEFAULT_REGISTRY_TIMEOUT_MS): Promise<SupabaseRegistryStore> {
    const { createClient } = await import('@supabase/supabase-js');
    const { default: ws } = await import('ws');
    const client = createClient(url, key, {
      auth: { autoRefreshToken: false, persistSession: false, detectSessionInUrl: false },
      // Node 20 has no global WebSocket; realtime is never used, but the client builds one.
      realtime: { transport: ws as never },
      global: {
        fetch: (input, init) => {
          const method = (init?.method ?? 'GET').toUpperCase();
          if (method !== 'GET' && method !== 'HEAD') traffic.writes++;
          return fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(timeoutMs) });
        },
      },
    });
    const traffic: Traffic = { writes: 0 };
    const store = new SupabaseRegistryStore(client, url, traffic);
    // Fail early, with a useful hint, when the table is missing. Reads need nothing of tenantctl's own
    // (a services' project reads as it is, as on PostgreSQL); writers check its column in ensureSchema.
    const probe = (await client.from('tenants').select('id').limit(1).retry(false)) as Result<unknown>;
    store.check(probe, 'checking the tenants table');
    return store;
  }

  private check<T>(res: Result<T>, what: string): T | null {
    if (res.error) {
      const msg = res.error.message || 'request failed';
      const noSchema = /tenantctl_hash|relation|does not exist|schema cache/i.test(msg);
      // No answer (postgrest-js reports a failed fetch as status 0) or a gateway's timeout: the request may have been applied.
      const answered = !(res.status === 0 || ((res.status === 502 || res.status === 504) && !res.error.code));
      // 401: the key was refused (PostgREST's "Invalid API key", a bad JWT); 42501: the role lacks the right.
      // (PostgREST answers a lack of rights 401 for the anonymous role, 403 otherwise: its code says which.)
      // A refused row first: PostgreSQL's words for it ("new row for relation ...") read as a missing schema (a review).
      const reason = res.error.code === '42501' ? 'no-permission' : res.status === 401 ? 'refused-login' : res.status === 403 ? 'no-permission' : refusedRowCode(res.error.code) ? 'rejected' : noSchema ? 'no-schema' : 'failed';
      throw new BackendUnavailableError('registry', `registry (${this.description}) ${reason === 'refused-login' ? 'refused the key' : 'failed'} while ${what}: ${msg}`, {
        cause: answered ? undefined : new NoAnswerError(),
        reason,
      });
    }
    return res.data;
  }

  /** A request's whole answer (its error and count unread); a thrown failure (the network: no answer) is a registry error. */
  private async send<R>(what: string, op: () => PromiseLike<R>): Promise<R> {
    try {
      return await op();
    } catch (err) {
      throw new BackendUnavailableError('registry', `registry (${this.description}) failed while ${what}: ${describeError(err)}`, { cause: new NoAnswerError(err) });
    }
  }

  private async call<T>(what: string, op: () => PromiseLike<Result<T>>): Promise<T | null> {
    return this.check(await this.send(what, op), what);
  }

  async getTenant(id: string): Promise<TenantRow | undefined> {
    const data = await this.call('reading a tenant', () =>
      // With the config's text as the server writes it out (PostgREST's cast): the number 1.0 is 1 once parsed.
      this.client.from('tenants').select(`*,${CONFIG_TEXT_COLUMN}:tenant_config::text`).eq('id', id).retry(false).maybeSingle() as unknown as PromiseLike<Result<Record<string, unknown>>>,
    );
    return data ? normaliseRow(data) : undefined;
  }

  async getTenants(ids: string[], options: { exactNumbers?: boolean } = {}): Promise<Map<string, TenantRow>> {
    const out = new Map<string, TenantRow>();
    // Exact numbers: the config's text with every row (PostgREST selects no expression to match it first).
    const columns = options.exactNumbers ? `*,${CONFIG_DIGITS_COLUMN}:tenant_config::text` : '*';
    for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) {
      const chunk = ids.slice(i, i + IDS_PER_REQUEST);
      const rows = await this.call('reading tenants', () =>
        this.client.from('tenants').select(columns).in('id', chunk).retry(false) as unknown as PromiseLike<Result<Record<string, unknown>[]>>,
      );
      for (const r of rows ?? []) out.set(String(r.id), normaliseRow(r));
    }
    return out;
  }

  /** Whole rows over PostgREST (no text form to fingerprint), hashed here. */
  async getTenantVersions(ids: string[]): Promise<Map<string, TenantVersionInfo>> {
    return versionsOf(await this.getTenants(ids));
  }

  async listActiveTenants(): Promise<TenantRow[]> {
    return (await this.allPages('listing tenants', (from, to, count) => this.table('tenants').select('*', { count }).eq('status', 'active').order('id').range(from, to).retry(false))).map(normaliseRow);
  }

  /**
   * Every row a query selects, page by page (its order must be total); at most `limit` rows.
   * PostgREST caps each answer at its max-rows (1,000 on Supabase by default, and a project may
   * set less), so a short page is not the end: the total from the first page is, or, without
   * one, an empty page.
   */
  private async allPages<T = Record<string, unknown>>(what: string, page: (from: number, to: number, count?: 'exact') => unknown, limit = Infinity): Promise<T[]> {
    const out: T[] = [];
    // The first page asks for the total (PostgREST's Content-Range), so a read that fits one page is one
    // request; without a total, only an empty page is the end.
    let total: number | undefined;
    while (out.length < limit && (total === undefined || out.length < total)) {
      const want = Math.min(PAGE, limit - out.length);
      const first = out.length === 0;
      let res: Result<T[]> & { count?: number | null };
      try {
        res = (await page(out.length, out.length + want - 1, first ? 'exact' : undefined)) as Result<T[]> & { count?: number | null };
      } catch (err) {
        throw new BackendUnavailableError('registry', `registry (${this.description}) failed while ${what}: ${describeError(err)}`, { cause: err });
      }
      const rows = this.check(res, what) ?? [];
      if (first && typeof res.count === 'number') total = res.count;
      if (rows.length === 0) break;
      out.push(...rows);
    }
    return out;
  }

  /** Builds a query against a table; every call goes through `call` (error checked, no retries). */
  private table(name: string) {
    return this.client.from(name);
  }

  private rows<T = Record<string, unknown>>(what: string, op: () => unknown): Promise<T[]> {
    return this.call(what, op as () => PromiseLike<Result<T[]>>).then((r) => r ?? []);
  }

  async getCatalogue(): Promise<Catalogue & { tenantctl_hash: string | null }> {
    const features = await this.allPages<{ name: string }>('reading the feature catalogue', (from, to, count) => this.table('permission_features').select('name', { count }).order('name').range(from, to).retry(false));
    const tiers = await this.allPages<{ name: string; features: string[]; max_devices: number | null }>('reading tiers', (from, to, count) =>
      this.table('permission_tiers').select('name, features, max_devices', { count }).order('name').range(from, to).retry(false));
    // tenantctl's own table may not be there (a services' project): the catalogue is the services' all the same.
    const meta = await this.rows<{ value: string }>('reading tenantctl_meta', () => this.table('tenantctl_meta').select('value').eq('key', 'catalogue_hash').retry(false)).catch((err: unknown) => {
      if (!(err instanceof BackendUnavailableError) || err.reason !== 'no-schema') throw err;
      return [];
    });
    const out: Catalogue['tiers'] = {};
    // A tier whose features are no list (a JSON string a service wrote: spread, it was its characters) grants none.
    for (const t of tiers) out[t.name] = { name: t.name, features: [...(Array.isArray(t.features) ? t.features : [])].sort(), max_devices: t.max_devices ?? null };
    return { features: features.map((f) => f.name).sort(), tiers: out, tenantctl_hash: meta[0]?.value ?? null };
  }

  async getSubscription(business: string): Promise<StoredSubscription | undefined> {
    return (await this.getSubscriptions([business])).get(business);
  }

  async getSubscriptions(businesses: string[]): Promise<Map<string, StoredSubscription>> {
    const out = new Map<string, StoredSubscription>();
    for (let i = 0; i < businesses.length; i += IDS_PER_REQUEST) {
      const chunk = businesses.slice(i, i + IDS_PER_REQUEST);
      const subs = await this.rows('reading subscriptions', () => this.table('business_subscriptions').select('*').in('business_id', chunk).retry(false));
      // A chunk's overrides may pass a page (100 businesses with a dozen each): in pages.
      const overrides = await this.allPages('reading overrides', (from, to, count) =>
        this.table('business_feature_overrides').select('business_id, feature, value', { count }).in('business_id', chunk).order('business_id').order('feature').range(from, to).retry(false));
      subscriptionsFromRows(subs, overrides, out);
    }
    return out;
  }

  async migratedTenantIds(): Promise<string[]> {
    const rows = await this.allPages<{ id: string }>('listing migrated tenants', (from, to, count) =>
      this.table('tenants').select('id', { count }).not('tenantctl_hash', 'is', null).eq('status', 'active').order('id').range(from, to).retry(false));
    return rows.map((r) => String(r.id));
  }

  /** Subscriptions on tiers none of `tiers` names (a page of `limit`), with the exact total. */
  async subscriptionsOffTiers(tiers: string[], limit: number): Promise<{ total: number; some: Array<{ business_id: string; tier: string }> }> {
    let q = this.table('business_subscriptions').select('business_id, tier', { count: 'exact' });
    if (tiers.length) q = q.not('tier', 'in', postgrestList(tiers));
    const what = 'reading subscriptions by tier';
    const res = await this.send(what, () => q.order('business_id').range(0, Math.max(0, limit - 1)).retry(false) as unknown as PromiseLike<Result<Array<{ business_id: string; tier: string }>> & { count?: number | null }>);
    const rows = this.check(res, what) ?? [];
    // The total from the Content-Range the exact count asks for (the rows are capped at `limit`).
    return { total: Math.max(res.count ?? 0, rows.length), some: rows.map((r) => ({ business_id: String(r.business_id), tier: String(r.tier) })) };
  }

  /** Nothing to apply from here: the schema is applied in the SQL editor (`tenantctl schema`); checks it is there. */
  async ensureSchema(): Promise<void> {
    await this.rows("checking tenantctl's column on tenants", () => this.table('tenants').select('id, tenantctl_hash').limit(1).retry(false));
    await this.rows('checking the outbox table', () => this.table('tenantctl_outbox').select('kind').limit(1).retry(false));
  }

  async applyChanges(changes: ChangeSet): Promise<ChangeOutcome> {
    const outcome: ChangeOutcome = {
      written: { tenants: [], subscriptions: [], catalogue: false },
      conflicts: { tenants: [], subscriptions: [], catalogue: false },
    };
    const tenants = changes.tenants ?? [];
    const subs = changes.subscriptions ?? [];
    // Owed before anything is written: a crash after a write must still leave its invalidation behind.
    const owed = invalidationsFor({
      tenants: tenants.map((t) => t.row.id),
      subscriptions: subs.map((s) => s.sub.business_id),
      catalogue: !!changes.catalogue,
    });
    await this.recordInvalidations(owed);
    const writesBefore = this.traffic.writes;
    // The item being written, and the write requests sent before it (see RefusedAmidChanges).
    const at: ItemUnderWay = { item: undefined, writesBefore: 0 };
    try {
      await this.applyItems(changes, outcome, at);
      // And again after the writes (a new seq): another process's drain between the first record and these
      // writes may have done and cleared it, before the rows it was for had changed. Inside: this failing
      // after the writes landed leaves them unconfirmed to the caller, not "nothing written".
      await this.recordInvalidations(owed);
    } catch (err) {
      // No transaction to roll back: once a write request was sent, the registry may hold part of this
      // change set, unless the one that failed was the first and got a definite answer (nothing applied).
      const sent = this.traffic.writes - writesBefore;
      // One item refused with a definite answer after other writes landed: what landed is said, and the
      // caller writes the rest without it (the item itself partly written when a request of its own landed
      // first). Before, the whole set was unconfirmed (exit 3), and a rerun stopped at the same row every time.
      if (err instanceof BackendUnavailableError && err.reason === 'rejected' && !(err.cause instanceof NoAnswerError) && at.item && sent > 1) {
        const partly = this.traffic.writes - at.writesBefore > 1;
        // The invalidations owed for what landed, recorded again after the writes (as below).
        try {
          await this.recordInvalidations(owed);
        } catch (recordErr) {
          throw outcomeUnknownError(recordErr, CUT_OFF, describeError(recordErr));
        }
        throw new RefusedAmidChanges(err, outcome, at.item, partly);
      }
      if (err instanceof BackendUnavailableError && sent > 0 && (sent > 1 || err.cause instanceof NoAnswerError)) {
        throw outcomeUnknownError(err, sent > 1 ? CUT_OFF : 'no answer to a write');
      }
      throw err;
    }
    return outcome;
  }

  /** The writes of a change set, item by item, each conditional on the version it was planned on. */
  private async applyItems(changes: ChangeSet, outcome: ChangeOutcome, at: ItemUnderWay): Promise<void> {
    const tenants = changes.tenants ?? [];
    const subs = changes.subscriptions ?? [];
    const begin = (kind: ChangeItem['kind'], id: string) => Object.assign(at, { item: { kind, id }, writesBefore: this.traffic.writes });
    const current = await this.getTenants(tenants.map((t) => t.row.id));
    for (const t of tenants) {
      begin('tenant', t.row.id);
      const row = current.get(t.row.id);
      const ok = tenantVersion(row) === t.expect && (row ? await this.updateTenantIf(t.row, row) : await this.insertTenant(t.row));
      (ok ? outcome.written.tenants : outcome.conflicts.tenants).push(t.row.id);
    }
    // The stamps first: a write landing after them changes the stamp (this update then matches nothing),
    // one landing before the subscriptions are read changes their version (a conflict at once).
    const stamps = await this.subscriptionStamps(subs.map((s) => s.sub.business_id));
    const currentSubs = await this.getSubscriptions(subs.map((s) => s.sub.business_id));
    for (const s of subs) {
      begin('subscription', s.sub.business_id);
      const seen = currentSubs.get(s.sub.business_id);
      const ok = subscriptionVersion(seen) === s.expect && (await this.putSubscriptionIf(s.sub, s.hash, seen && { sub: seen, updatedAt: stamps.get(s.sub.business_id) ?? null }));
      (ok ? outcome.written.subscriptions : outcome.conflicts.subscriptions).push(s.sub.business_id);
    }
    if (changes.catalogue) {
      begin('catalogue', 'tiers');
      if (catalogueVersion(await this.getCatalogue()) !== changes.catalogue.expect) outcome.conflicts.catalogue = true;
      else {
        await this.replaceCatalogue(changes.catalogue.catalogue, changes.catalogue.hash);
        outcome.written.catalogue = true;
      }
    }
  }

  private async insertTenant(row: TenantWrite): Promise<boolean> {
    const values: Record<string, unknown> = { config_source: 'database', status: 'active', updated_at: new Date().toISOString() };
    for (const c of TENANT_WRITE_COLUMNS) values[c] = row[c];
    return this.insertNew('tenants', 'id', values, `inserting tenant ${row.id}`);
  }

  /** Updates only if the row is still as it was read (its updated_at and hash); false when it changed meanwhile. */
  private async updateTenantIf(row: TenantWrite, seen: TenantRow): Promise<boolean> {
    const values: Record<string, unknown> = { config_source: 'database', updated_at: new Date().toISOString() };
    for (const c of TENANT_WRITE_COLUMNS) values[c] = row[c];
    const asRead = { ...(seen.updated_at ? { updated_at: seen.updated_at } : {}), tenantctl_hash: seen.tenantctl_hash };
    return this.updateIf('tenants', 'id', values, asRead, `updating tenant ${row.id}`, async () => {
      const now = await this.getTenant(row.id);
      return !!now && tenantVersion(now) === tenantVersion(seen);
    });
  }

  /** Inserts a row that must not exist yet; false when another writer inserted it since it was read (23505): a conflict, not an overwrite. */
  private async insertNew(table: string, key: string, values: Record<string, unknown>, what: string): Promise<boolean> {
    const res = await this.send(what, () => this.client.from(table).insert(values).select(key).retry(false) as unknown as PromiseLike<Result<unknown[]>>);
    if (res.error?.code === '23505') return false;
    const written = this.check(res, what);
    if (!written || written.length !== 1) throw this.rlsError(String(values[key]));
    return true;
  }

  /**
   * Updates the row `values[key]` names only where its columns are still as read (`asRead`, null meaning
   * IS NULL); false when it changed meanwhile. Nothing updated while the row still reads as before
   * (`unchanged`) is row-level security hiding it: an error, not a conflict.
   */
  private async updateIf(
    table: string, key: string, values: Record<string, unknown>, asRead: Record<string, unknown>, what: string, unchanged: () => Promise<boolean>,
  ): Promise<boolean> {
    let q = this.client.from(table).update(values).eq(key, values[key]);
    for (const [column, v] of Object.entries(asRead)) q = v === null || v === undefined ? q.is(column, null) : q.eq(column, v);
    const written = await this.call(what, () => q.select(key).retry(false) as unknown as PromiseLike<Result<unknown[]>>);
    if (written && written.length === 1) return true;
    if (await unchanged()) throw this.rlsError(String(values[key]));
    return false;
  }

  /** Writes the new rows first, then removes what is no longer listed. */
  private async replaceCatalogue(catalogue: Catalogue, hash: string): Promise<void> {
    if (catalogue.features.length) {
      await this.rows('writing features', () => this.table('permission_features').upsert(catalogue.features.map((name) => ({ name })), { onConflict: 'name' }).select('name').retry(false));
    }
    await this.rows('removing features', () => this.table('permission_features').delete().not('name', 'in', postgrestList(catalogue.features)).select('name').retry(false));
    const tiers = Object.values(catalogue.tiers);
    if (tiers.length) {
      await this.rows('writing tiers', () => this.table('permission_tiers').upsert(tiers.map((t) => ({ name: t.name, features: t.features, max_devices: t.max_devices })), { onConflict: 'name' }).select('name').retry(false));
    }
    await this.rows('removing tiers', () => this.table('permission_tiers').delete().not('name', 'in', postgrestList(tiers.map((t) => t.name))).select('name').retry(false));
    await this.rows('writing tenantctl_meta', () => this.table('tenantctl_meta').upsert({ key: 'catalogue_hash', value: hash }, { onConflict: 'key' }).select('key').retry(false));
  }

  /** Each subscription row's updated_at as stored (the compare-and-set of putSubscriptionIf). */
  private async subscriptionStamps(businesses: string[]): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    for (let i = 0; i < businesses.length; i += IDS_PER_REQUEST) {
      const chunk = businesses.slice(i, i + IDS_PER_REQUEST);
      const rows = await this.rows<{ business_id: string; updated_at: string | null }>('reading subscription stamps', () =>
        this.table('business_subscriptions').select('business_id, updated_at').in('business_id', chunk).retry(false));
      for (const r of rows) out.set(String(r.business_id), r.updated_at ?? null);
    }
    return out;
  }

  /**
   * Writes a subscription only if it is still as planned: a new one by an insert (one created meanwhile is
   * a conflict, not an overwrite), an existing one by an update conditional on the updated_at it was read
   * with. False on a conflict. Its overrides are then replaced (replaceOverrides).
   */
  private async putSubscriptionIf(sub: Subscription, hash: string | null, seen: { sub: StoredSubscription; updatedAt: string | null } | undefined): Promise<boolean> {
    const row = { business_id: sub.business_id, tier: sub.tier, status: sub.status, demo_expires_at: sub.demo_expires_at, tenantctl_hash: hash, updated_at: new Date().toISOString() };
    const written = !seen
      ? await this.insertNew('business_subscriptions', 'business_id', row, `inserting the subscription of ${sub.business_id}`)
      : await this.updateIf('business_subscriptions', 'business_id', row, { updated_at: seen.updatedAt }, `writing the subscription of ${sub.business_id}`, async () => {
        const now = await this.getSubscription(sub.business_id);
        return !!now && subscriptionVersion(now) === subscriptionVersion(seen.sub);
      });
    if (!written) return false;
    await this.replaceOverrides(sub);
    return true;
  }

  /**
   * A subscription's overrides become exactly `sub.overrides`, in two requests (PostgREST has no
   * transaction): the new values are upserted first, then the features no longer set are removed. A
   * run lost between them leaves every planned value in place plus a dropped feature or two (seen as a
   * conflict by the next run), never a business without its overrides. A services' table without the
   * unique key an upsert needs (42P10) is written as before: delete, then insert.
   */
  private async replaceOverrides(sub: Subscription): Promise<void> {
    const table = () => this.table('business_feature_overrides');
    const overrides = Object.entries(sub.overrides).map(([feature, value]) => ({ business_id: sub.business_id, feature, value }));
    if (overrides.length) {
      const what = `writing the overrides of ${sub.business_id}`;
      const res = await this.send(what, () => table().upsert(overrides, { onConflict: 'business_id,feature' }).select('feature').retry(false) as unknown as PromiseLike<Result<unknown[]>>);
      if (res.error?.code === '42P10') {
        await this.rows('replacing overrides', () => table().delete().eq('business_id', sub.business_id).select('feature').retry(false));
        await this.rows('writing overrides', () => table().insert(overrides).select('feature').retry(false));
        return;
      }
      this.check(res, what);
    }
    await this.rows('removing dropped overrides', () => {
      const q = table().delete().eq('business_id', sub.business_id);
      return (overrides.length ? q.not('feature', 'in', postgrestList(overrides.map((o) => o.feature))) : q).select('feature').retry(false);
    });
  }

  /** A fresh sequence number per recording (PostgREST cannot call nextval): time-based, unique within the process. */
  private seq = Date.now() * 1000;

  private async recordInvalidations(owed: Array<{ kind: InvalidationKind; target: string }>): Promise<void> {
    if (!owed.length) return;
    const rows = owed.map((o) => ({ kind: o.kind, target: o.target, seq: ++this.seq, created_at: new Date().toISOString() }));
    await this.rows('recording invalidations', () => this.table('tenantctl_outbox').upsert(rows, { onConflict: 'kind,target' }).select('kind').retry(false));
  }

  async pendingInvalidations(limit = 10_000): Promise<PendingInvalidation[]> {
    const rows = await this.allPages<{ kind: string; target: string; seq: number | string }>('reading pending invalidations', (from, to, count) =>
      this.table('tenantctl_outbox').select('kind, target, seq', { count }).order('seq').order('kind').order('target').range(from, to).retry(false), limit);
    return rows.map((r) => ({ kind: r.kind as InvalidationKind, target: r.target, seq: String(r.seq) }));
  }

  async clearInvalidations(done: PendingInvalidation[]): Promise<number> {
    let cleared = 0;
    for (const d of done) {
      const gone = await this.rows('clearing an invalidation', () =>
        this.table('tenantctl_outbox').delete().eq('kind', d.kind).eq('target', d.target).eq('seq', d.seq).select('kind').retry(false));
      cleared += gone.length;
    }
    return cleared;
  }

  /** Not serialised across processes on Supabase (no session to hold an advisory lock); compare-and-set still prevents lost updates. */
  async lockMigrations(): Promise<() => Promise<void>> {
    return async () => undefined;
  }

  private rlsError(id: string) {
    return new BackendUnavailableError('registry', `registry (${this.description}) wrote no row for ${id}: check row-level security for the service-role key`);
  }

  /**
   * Realtime is never used: no channel, no socket to close. (removeAllChannels disconnects all the same, and
   * realtime-js's disconnect leaves a 10 s timer behind it: the process lived on 10 s after a command.)
   */
  async close(): Promise<void> {
    if (this.client.getChannels().length) await this.client.removeAllChannels().catch(() => undefined);
  }
}

/** The cause of a registry error whose request got no answer (it may have been applied). */
/** The item of a change set being written, and the store's write requests sent before it. */
interface ItemUnderWay {
  item: ChangeItem | undefined;
  writesBefore: number;
}

const CUT_OFF = 'cut off after part of the change was written';

/** A write's failure once part of the change set may be in the registry (no transaction): its outcome unknown. */
function outcomeUnknownError(err: unknown, what: string, message = (err as Error).message): BackendUnavailableError {
  return new BackendUnavailableError('registry', message, { cause: new CommitOutcomeUnknownError(err, what), reason: (err as BackendUnavailableError).reason });
}

class NoAnswerError extends Error {
  constructor(override readonly cause?: unknown) {
    super(cause instanceof Error ? cause.message : 'no answer');
  }
}

/** A PostgREST `in` list for `.not(column, 'in', ...)`: each value double-quoted, with its quotes and backslashes escaped. */
const postgrestList = (values: string[]): string => `(${values.map((v) => `"${v.replace(/["\\]/g, '\\$&')}"`).join(',')})`;
