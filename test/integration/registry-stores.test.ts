import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noTenantsTable, outcomeUnknown, RefusedAmidChanges, type Registry } from '../../src/registry/registry-store.js';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { openPostgresStore } from '../../src/registry/postgres-store.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import { SupabaseRegistryStore } from '../../src/registry/supabase-store.js';
import { rowFromConfig } from '../../src/tenants/registry-mapping.js';
import { catalogueVersion, subscriptionVersion, tenantVersion, versionInfo } from '../../src/registry/content-hash.js';
import type { Catalogue, Subscription } from '../../src/permissions/model.js';
import { BackendUnavailableError, describeError } from '../../src/errors.js';
import { freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, workspace } from '../helpers/setup.js';
import { startFakePostgrest, type FakePostgrest } from '../helpers/fake-postgrest.js';
import { freePort } from '../helpers/ports.js';
import { waitUntil as waitFor } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis-server.js';

const config = (id: string, name = `Name ${id}`) => ({
  client: { id, name, timezone: 'UTC' },
  email: { primary: `${id}@example.com`, smtp: { host: 'h', password: '${SMTP_PASSWORD}' } },
  nested: { list: [1, 'two', { three: true }], unicode: 'héllo ✓' },
});

/** Writes a tenant as a command would: planned against the row as it is now. */
async function put(store: Registry, row: ReturnType<typeof rowFromConfig>) {
  return store.applyChanges({ tenants: [{ row, expect: tenantVersion(await store.getTenant(row.id)) }] });
}
async function putSub(store: Registry, sub: Subscription, hash: string | null) {
  return store.applyChanges({ subscriptions: [{ sub, hash, expect: subscriptionVersion(await store.getSubscription(sub.business_id)) }] });
}
async function putCatalogue(store: Registry, catalogue: Catalogue, hash: string) {
  return store.applyChanges({ catalogue: { catalogue, hash, expect: catalogueVersion(await store.getCatalogue()) } });
}

/** The same behaviour, asserted against every backend (unstorage's testDriver pattern). */
/** A tenant's status as the services set it (the tool never writes it): each backend's own way. */
type SetStatus = (id: string, status: string) => Promise<void>;
const sqlSetStatus = (store: SqlRegistryStore): SetStatus => async (id, status) => {
  await store.db.query('UPDATE tenants SET status = $1 WHERE id = $2', [status, id]);
};
/** A demo expiry stored by another writer, as PostgreSQL's text (what PostgREST answers for it). */
type SetExpiry = (business: string, text: string) => Promise<void>;
const sqlSetExpiry = (store: SqlRegistryStore): SetExpiry => async (business, text) => {
  await store.db.query("UPDATE business_subscriptions SET demo_expires_at = replace(replace($1, 'T', ' '), '+00:00', '+00')::timestamptz WHERE business_id = $2", [text, business]);
};

function registryContract(name: string, open: () => Promise<{ store: Registry; cleanup: () => Promise<void>; setStatus: SetStatus; setExpiry: SetExpiry }>) {
  describe(`RegistryStore contract: ${name}`, () => {
    let store: Registry;
    let cleanup: () => Promise<void>;
    let setStatus: SetStatus;
    let setExpiry: SetExpiry;
    beforeAll(async () => {
      ({ store, cleanup, setStatus, setExpiry } = await open());
      await store.ensureSchema();
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('inserts a tenant as active and database-sourced, reads it back exactly, and owes its invalidation', async () => {
      const row = rowFromConfig('acme', config('acme'));
      expect(await put(store, row)).toMatchObject({ written: { tenants: ['acme'] }, conflicts: { tenants: [] } });
      const got = await store.getTenant('acme');
      expect(got).toMatchObject({ id: 'acme', name: 'Name acme', timezone: 'UTC', primary_email: 'acme@example.com', config_source: 'database', status: 'active', tenantctl_hash: row.tenantctl_hash });
      expect(got!.tenant_config).toEqual(row.tenant_config);
      expect(typeof got!.created_at).toBe('string');
      expect(await store.getTenant('nobody')).toBeUndefined();
      expect(await store.pendingInvalidations()).toEqual([expect.objectContaining({ kind: 'tenant', target: 'acme' })]);
    });

    it('lists the active tenants it migrated (its hash set), sorted, for a migration to find the ones whose files are gone', async () => {
      await put(store, rowFromConfig('mig-listed', config('mig-listed')));
      await put(store, rowFromConfig('mig-also', config('mig-also')));
      const ids = await store.migratedTenantIds();
      expect(ids).toEqual(expect.arrayContaining(['mig-also', 'mig-listed']));
      expect(ids).toEqual([...ids].sort());
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('clears done invalidations, but not one recorded again since it was read', async () => {
      const first = await store.pendingInvalidations();
      await put(store, rowFromConfig('acme', config('acme', 'Acme Again')));
      // All it read but acme's, recorded again since (a new seq): that one stays owed.
      expect(await store.clearInvalidations(first)).toBe(first.filter((p) => !(p.kind === 'tenant' && p.target === 'acme')).length);
      expect((await store.pendingInvalidations()).map((p) => p.target)).toEqual(['acme']);
      const again = await store.pendingInvalidations();
      expect(await store.clearInvalidations(again)).toBe(1);
      // Cleared already (another process draining at once): none of them is this call's.
      expect(await store.clearInvalidations([...first, ...again])).toBe(0);
      expect(await store.pendingInvalidations()).toEqual([]);
    });

    it('a write given a memo teaches it each written row: the next plan reads none of them whole, and the hash is what a full read computes', async () => {
      const taught = new Map<string, string>();
      const teach = { get: (fp: string) => taught.get(fp), set: (fp: string, h: string) => void taught.set(fp, h) };
      const rows = ['mw1', 'mw2'].map((id) => rowFromConfig(id, { client: { id, name: `Memo ${id}`, timezone: 'UTC' }, nested: { a: [1, 2.5, 'x'], b: null } }));
      await store.applyChanges({ tenants: rows.map((row) => ({ row, expect: null })) }, teach);
      // An update is learnt too.
      const renamed = rowFromConfig('mw1', { client: { id: 'mw1', name: 'Memo renamed' }, nested: { a: [] } });
      await store.applyChanges({ tenants: [{ row: renamed, expect: tenantVersion(await store.getTenant('mw1')) }] }, teach);
      const learnt = taught.size;
      // Adapters that cannot fingerprint rows (Supabase) learn nothing, and lose nothing.
      if (learnt === 0) return;
      expect(learnt).toBe(3);
      // What a full read and hash give, for every row (a memo that knows nothing reads them whole).
      const full = new Map<string, string>();
      const fresh = await store.getTenantVersions(['mw1', 'mw2'], { get: () => undefined, set: (fp, h) => void full.set(fp, h) });
      for (const [fp, hash] of full) expect(taught.get(fp), fp).toBe(hash);
      // Planning against the taught memo reads no row whole, and finds the same versions.
      let sets = 0;
      const again = await store.getTenantVersions(['mw1', 'mw2'], { get: (fp) => taught.get(fp), set: () => void sets++ });
      expect(sets).toBe(0);
      expect(again).toEqual(fresh);
      expect(again.get('mw1')!.content_hash).toBe(renamed.tenantctl_hash);
    });

    it('gives every pending invalidation, past a page of the server\'s max-rows (Supabase: 1,000)', async () => {
      await store.clearInvalidations(await store.pendingInvalidations());
      const many = Array.from({ length: 1200 }, (_, i) => rowFromConfig(`owed${i}`, { client: { id: `owed${i}`, name: `Owed ${i}` } }));
      await store.applyChanges({ tenants: many.map((row) => ({ row, expect: null })) });
      const owed = await store.pendingInvalidations();
      expect(owed.filter((p) => p.kind === 'tenant').map((p) => p.target).sort()).toEqual(many.map((r) => r.id).sort());
      expect(await store.pendingInvalidations(1100)).toHaveLength(1100);
      await store.clearInvalidations(owed);
      expect(await store.pendingInvalidations()).toEqual([]);
    });

    it('reads every override of many businesses, past a page of the server\'s max-rows', async () => {
      const features = Array.from({ length: 12 }, (_, f) => `has_f${f}`);
      const subs = Array.from({ length: 100 }, (_, b) => ({
        business_id: `ovr${b}`, tier: 'pilot_core', status: 'active' as const, demo_expires_at: null,
        overrides: Object.fromEntries(features.map((f, i) => [f, (b + i) % 2 === 0])),
      }));
      await store.applyChanges({ subscriptions: subs.map((sub) => ({ sub, hash: null, expect: null })) });
      const got = await store.getSubscriptions(subs.map((s) => s.business_id));
      expect(got.size).toBe(100);
      for (const s of subs) expect(got.get(s.business_id)?.overrides, s.business_id).toEqual(s.overrides);
      await store.clearInvalidations(await store.pendingInvalidations());
    });

    it('subscriptions are compare-and-set: two writers planned against the same version, the second is a conflict (new and existing)', async () => {
      const sub = { business_id: 'cas', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: { has_ai: true } };
      // New: both planned against no row.
      const first = await store.applyChanges({ subscriptions: [{ sub, hash: 'w1', expect: null }] });
      const second = await store.applyChanges({ subscriptions: [{ sub: { ...sub, tier: 'pilot_pro', overrides: {} }, hash: 'w2', expect: null }] });
      expect([first.written.subscriptions, second.conflicts.subscriptions]).toEqual([['cas'], ['cas']]);
      expect(await store.getSubscription('cas')).toMatchObject({ tier: 'pilot_core', overrides: { has_ai: true }, tenantctl_hash: 'w1' });
      // Existing: both planned against the same version.
      const planned = subscriptionVersion(await store.getSubscription('cas'));
      const a = await store.applyChanges({ subscriptions: [{ sub: { ...sub, status: 'suspended' }, hash: 'w3', expect: planned }] });
      const b = await store.applyChanges({ subscriptions: [{ sub: { ...sub, overrides: { has_payroll: true } }, hash: 'w4', expect: planned }] });
      expect([a.written.subscriptions, b.conflicts.subscriptions]).toEqual([['cas'], ['cas']]);
      expect(await store.getSubscription('cas')).toMatchObject({ status: 'suspended', overrides: { has_ai: true }, tenantctl_hash: 'w3' });
      await store.clearInvalidations(await store.pendingInvalidations());
    });

    it('updates only the tenantctl columns of an existing row', async () => {
      await put(store, rowFromConfig('beta', config('beta')));
      await put(store, rowFromConfig('beta', config('beta', 'Beta Renamed')));
      const got = await store.getTenant('beta');
      expect(got).toMatchObject({ name: 'Beta Renamed', status: 'active' });
      expect(await store.getTenant('acme')).toMatchObject({ name: 'Acme Again' });
    });

    it("gives each row's version as a fresh read and hash would, through a memo, and never a stale one", async () => {
      const memo = new Map<string, string>();
      const counting = { sets: 0, get: (fp: string) => memo.get(fp), set: (fp: string, h: string) => (counting.sets++, memo.set(fp, h)) };
      // Twins: the same content but for the id (which the content hash covers too).
      const twin = (id: string) => rowFromConfig(id, { client: { id: 'same', name: 'Twin' }, same: true });
      await put(store, twin('twin1'));
      await put(store, twin('twin2'));
      const ids = ['acme', 'beta', 'cas', 'twin1', 'twin2', 'nobody'];
      const fresh = async () => {
        const rows = await store.getTenants(ids);
        return new Map([...rows].map(([id, r]) => [id, versionInfo(r)]));
      };
      expect(await store.getTenantVersions(ids, counting)).toEqual(await fresh());
      const setsFirst = counting.sets;
      expect(await store.getTenantVersions(ids, counting)).toEqual(await fresh());
      // A store that uses the memo hashes nothing the second time.
      if (setsFirst > 0) expect(counting.sets).toBe(setsFirst);
      // An edit of the JSON alone (same columns) is hashed anew, not served from the memo.
      const edited = rowFromConfig('beta', { ...config('beta', (await store.getTenant('beta'))!.name), nested: { edited: [true] } });
      await put(store, edited);
      const after = await store.getTenantVersions(ids, counting);
      expect(after).toEqual(await fresh());
      expect(after.get('beta')!.content_hash).toBe(edited.tenantctl_hash);
      expect(await store.getTenantVersions([], counting)).toEqual(new Map());
      // Each column the client block fills, changed on its own after the memo saw the row without it;
      // and a value moving between two columns next to a NULL (a fingerprint that skipped NULLs would read both alike).
      const base = { id: 'cols', name: 'Cols' };
      const variants: Array<Record<string, unknown>> = [
        { short_name: 'x' }, { timezone: 'x' }, { currency: 'x' }, { name: "Col's \\ name" },
        { short_name: null, timezone: 'y' }, { short_name: 'y', timezone: null },
      ];
      for (const variant of variants) {
        for (const client of [base, { ...base, ...variant }]) {
          const row = rowFromConfig('cols', { client });
          await put(store, row);
          expect((await store.getTenantVersions(['cols'], counting)).get('cols')!.content_hash).toBe(row.tenantctl_hash);
        }
      }
    });

    it('compare-and-set: a row changed since it was planned is a conflict and is not overwritten', async () => {
      await put(store, rowFromConfig('cas', config('cas')));
      const planned = tenantVersion(await store.getTenant('cas'));
      await put(store, rowFromConfig('cas', config('cas', 'Edited Meanwhile')));
      const r = await store.applyChanges({ tenants: [{ row: rowFromConfig('cas', config('cas', 'Stale Plan')), expect: planned }] });
      expect(r).toMatchObject({ written: { tenants: [] }, conflicts: { tenants: ['cas'] } });
      expect(await store.getTenant('cas')).toMatchObject({ name: 'Edited Meanwhile' });
      const created = await store.applyChanges({ tenants: [{ row: rowFromConfig('cas', config('cas', 'Planned As New')), expect: null }] });
      expect(created.conflicts.tenants).toEqual(['cas']);
    });

    it('reads many ids at once and lists active tenants sorted', async () => {
      for (const id of ['c3', 'c1', 'c2']) await put(store, rowFromConfig(id, config(id)));
      // Not active: never listed (a mutation review: the listing without its status filter passed on Supabase).
      await put(store, rowFromConfig('c4held', config('c4held')));
      await put(store, rowFromConfig('c5gone', config('c5gone')));
      await setStatus('c4held', 'suspended');
      await setStatus('c5gone', 'deleted');
      const many = await store.getTenants(['c1', 'c2', 'missing', 'c3']);
      expect([...many.keys()].sort()).toEqual(['c1', 'c2', 'c3']);
      const listed = (await store.listActiveTenants()).map((r) => r.id);
      expect(listed).toEqual([...listed].sort());
      expect(listed).toEqual(expect.arrayContaining(['acme', 'beta', 'c1', 'c2', 'c3']));
      expect(listed).not.toContain('c4held');
      expect(listed).not.toContain('c5gone');
      expect((await store.getTenant('c4held'))?.status).toBe('suspended');
      expect(await store.getTenants([])).toEqual(new Map());
    });

    it('writes many tenants in one change set', async () => {
      const rows = Array.from({ length: 120 }, (_, i) => rowFromConfig(`bulk${i}`, config(`bulk${i}`)));
      const r = await store.applyChanges({ tenants: rows.map((row) => ({ row, expect: null })) });
      expect(r.written.tenants).toHaveLength(120);
      expect((await store.getTenants(rows.map((x) => x.id))).size).toBe(120);
    });

    const catalogue = {
      features: ['has_ai', 'has_payroll'],
      tiers: { core: { name: 'core', features: ['has_ai'], max_devices: 2 }, pro: { name: 'pro', features: ['has_ai', 'has_payroll'], max_devices: null } },
    };

    it('stores the catalogue exactly, removing features and tiers no longer listed', async () => {
      expect(await store.getCatalogue()).toEqual({ features: [], tiers: {}, tenantctl_hash: null });
      await putCatalogue(store, catalogue, 'hash-1');
      expect(await store.getCatalogue()).toEqual({ ...catalogue, tenantctl_hash: 'hash-1' });
      const smaller = { features: ['has_ai'], tiers: { core: { name: 'core', features: ['has_ai'], max_devices: 5 } } };
      await putCatalogue(store, smaller, 'hash-2');
      expect(await store.getCatalogue()).toEqual({ ...smaller, tenantctl_hash: 'hash-2' });
      const stale = await store.applyChanges({ catalogue: { catalogue, hash: 'hash-x', expect: null } });
      expect(stale.conflicts.catalogue).toBe(true);
      await putCatalogue(store, catalogue, 'hash-3');
      expect((await store.pendingInvalidations()).map((p) => p.kind)).toContain('permissions-all');
    });

    it('stores subscriptions with their overrides; a write replaces them; a stale one is a conflict', async () => {
      const sub = { business_id: 'biz', tier: 'core', status: 'active' as const, demo_expires_at: '2030-01-01T00:00:00.000Z', overrides: { has_payroll: true, max_devices: 7 } };
      await putSub(store, sub, 'h1');
      expect(await store.getSubscription('biz')).toEqual({ ...sub, tenantctl_hash: 'h1' });
      const planned = subscriptionVersion(await store.getSubscription('biz'));
      await putSub(store, { ...sub, status: 'suspended', demo_expires_at: null, overrides: { has_ai: false } }, 'h1');
      expect(await store.getSubscription('biz')).toEqual({ ...sub, status: 'suspended', demo_expires_at: null, overrides: { has_ai: false }, tenantctl_hash: 'h1' });
      const stale = await store.applyChanges({ subscriptions: [{ sub, hash: 'h1', expect: planned }] });
      expect(stale.conflicts.subscriptions).toEqual(['biz']);
      await putSub(store, { ...sub, business_id: 'biz2', overrides: {} }, null);
      const many = await store.getSubscriptions(['biz', 'biz2', 'none']);
      expect([...many.keys()].sort()).toEqual(['biz', 'biz2']);
      expect(many.get('biz2')!.tenantctl_hash).toBeNull();
      expect(await store.getSubscription('none')).toBeUndefined();
      expect((await store.pendingInvalidations()).filter((p) => p.kind === 'permissions').map((p) => p.target).sort()).toEqual(['biz', 'biz2']);
    });

    it("reads a demo expiry past year 9999 or 'infinity' as the last instant, before year 1 or '-infinity' as the first: no registry failure (it failed every read of the business, and whole migration batches)", async () => {
      const sub = { business_id: 'far', tier: 'demo', status: 'active' as const, demo_expires_at: null, overrides: {} };
      await putSub(store, sub, null);
      const expected: Array<[string, string]> = [
        ['10000-01-01T04:59:59+00:00', '9999-12-31T23:59:59.999Z'],
        ['infinity', '9999-12-31T23:59:59.999Z'],
        ['0001-12-31T23:06:32+00:00 BC', '0001-01-01T00:00:00.000Z'],
        ['-infinity', '0001-01-01T00:00:00.000Z'],
        // PGlite's own reading of a timestamp took year 30 for 2030 (a demo that ended long ago, live again).
        ['0030-06-01T00:00:00+00:00', '0030-06-01T00:00:00.000Z'],
        ['2031-03-01T08:20:30.5+00:00', '2031-03-01T08:20:30.500Z'],
      ];
      for (const [stored, read] of expected) {
        await setExpiry('far', stored);
        expect((await store.getSubscription('far'))?.demo_expires_at, stored).toBe(read);
        expect((await store.getSubscriptions(['far'])).get('far')?.demo_expires_at, stored).toBe(read);
      }
    });
  });
}

registryContract('PGlite (in memory)', async () => {
  const store = await openPgliteStore(undefined);
  return { store, cleanup: async () => undefined, setStatus: sqlSetStatus(store), setExpiry: sqlSetExpiry(store) };
});

/** A test's set-up under a short timeout, tried up to five times (a loaded machine may miss it once). */
async function settingUp<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      if (attempt === 5) throw err;
    }
  }
}

/** The SQL stores share one session among concurrent callers: a transaction holds it, others wait. */
function sqlSessionTests(name: string, open: () => Promise<{ store: SqlRegistryStore; cleanup: () => Promise<void> }>) {
  describe(`one session, concurrent callers: ${name}`, () => {
    it('a read issued while another caller\'s transaction is open waits for it: it never sees (nor keeps) rows that are rolled back', async () => {
      const { store, cleanup } = await open();
      try {
        await store.ensureSchema();
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let inserted!: () => void;
        const insertedYet = new Promise<void>((r) => (inserted = r));
        const tx = store
          .transaction('a test transaction', async (tx) => {
            await tx.query("INSERT INTO tenants (id, name, config_source) VALUES ('uncommitted', 'U', 'database')");
            inserted();
            await gate;
            throw new Error('rolled back on purpose');
          })
          .catch(() => 'rolled back');
        await insertedYet;
        // Before: the read ran on the shared session inside the open transaction and saw the row.
        const read = store.getTenant('uncommitted');
        await new Promise((r) => setTimeout(r, 50));
        release();
        expect(await tx).toBe('rolled back');
        expect(await read).toBeUndefined();
        // Many callers at once: each answer its own, in order, none lost.
        const all = await Promise.all(Array.from({ length: 50 }, (_, i) => store.getTenant(`none${i}`)));
        expect(all.every((r) => r === undefined)).toBe(true);
      } finally {
        await store.close();
        await cleanup();
      }
    });

    it('getTenant says where tenant_config holds a whole-valued float (jsonb keeps 1.0; parsed, it is 1)', async () => {
      const { store, cleanup } = await open();
      try {
        await store.ensureSchema();
        await store.db.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ('wf', 'W', 'database', '{"a": [1, {"b": 2.00}], "s": "1.0"}'), ('nf', 'N', 'database', '{"a": [1, {"b": 2}]}')`);
        const row = await store.getTenant('wf');
        expect(row).toMatchObject({ tenant_config: { a: [1, { b: 2 }] }, config_whole_float: { path: ['a', '1', 'b'], written: '2.00' } });
        expect(row).not.toHaveProperty('tenantctl_config_text');
        expect(await store.getTenant('nf')).not.toHaveProperty('config_whole_float');
      } finally {
        await store.close();
        await cleanup();
      }
    });
  });
}

sqlSessionTests('PGlite', async () => ({ store: await openPgliteStore(undefined), cleanup: async () => undefined }));

describe.runIf(TEST_DATABASE_URL)('PostgreSQL at TEST_DATABASE_URL', () => {
  sqlSessionTests('PostgreSQL', async () => {
    const db = await freshPostgresDatabase();
    return { store: await openPostgresStore(db.url), cleanup: db.drop };
  });

  it('a server gone silent: the statement that times out gives the session up, so what follows fails at once instead of each waiting a timeout', async () => {
    const db = await freshPostgresDatabase();
    const target = new URL(db.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    // The 400 ms timeout is what the test measures against, not the set-up: under the full suite's load the
    // connect or the schema through the proxy took longer once (a flake), so the set-up is tried again.
    const store = await settingUp(async () => {
      const s = await openPostgresStore(proxy.via(db.url), 400);
      try {
        await s.ensureSchema();
        return s;
      } catch (err) {
        await s.close().catch(() => undefined);
        throw err;
      }
    });
    try {
      proxy.stall();
      const first = Date.now();
      await expect(store.getTenant('a')).rejects.toMatchObject({ backend: 'registry' });
      const firstMs = Date.now() - first;
      expect(store.lost).toBe(true);
      // Before: a second full wait (timeout + 1 s) on the same dead session, and a third for the ROLLBACK.
      const second = Date.now();
      await expect(store.getTenant('b')).rejects.toMatchObject({ backend: 'registry' });
      expect(Date.now() - second).toBeLessThan(firstMs / 2);
      await store.close();
    } finally {
      await proxy.close();
      await db.drop();
    }
  });

  it('a session whose client vanished (a network partition) does not hold its locks for hours: idle-in-transaction timeout and TCP keepalives are set', async () => {
    const db = await freshPostgresDatabase();
    const store = await openPostgresStore(db.url);
    try {
      const { rows } = await store.db.query(
        "SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('tcp_keepalives_idle') AS ka_idle, current_setting('tcp_keepalives_count') AS ka_count",
      );
      // Before: 0 (never) and the OS defaults (~2 h): rows FOR UPDATE and the migration lock stayed held.
      expect(rows[0]).toEqual({ idle: '30s', ka_idle: '15', ka_count: '3' });
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('a migration lock another run holds: "in use", said once (the timeout that ended the wait is not repeated)', async () => {
    const db = await freshPostgresDatabase();
    const holder = await openPostgresStore(db.url);
    const waiter = await openPostgresStore(db.url, 300);
    try {
      await holder.ensureSchema();
      const release = await holder.lockMigrations();
      const err = await waiter.lockMigrations().catch((e) => e);
      expect(err).toMatchObject({ reason: 'in-use' });
      expect(describeError(err)).toBe(`registry (${waiter.description}) is in use: another migration holds its lock (waited 300 ms, the registry timeout)`);
      await release();
    } finally {
      await holder.close();
      await waiter.close();
      await db.drop();
    }
  });

  it('a login the server refuses (no such role) is "refused the login", reason refused-login (not "unreachable")', async () => {
    const u = new URL(TEST_DATABASE_URL!);
    u.username = 'tenantctl_no_such_role';
    u.password = 'secret-pw';
    const err = await openPostgresStore(u.toString(), 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err).toMatchObject({ reason: 'refused-login' });
    expect(describeError(err)).toMatch(/refused the login: .*tenantctl_no_such_role/);
    expect(describeError(err)).not.toContain('secret-pw');
  });

  it('a database the server does not have: "has no such database", reason failed (not "unreachable": the server answered 3D000)', async () => {
    const u = new URL(TEST_DATABASE_URL!);
    u.pathname = '/tenantctl_no_such_database';
    const err = await openPostgresStore(u.toString(), 2000).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'failed' });
    expect(describeError(err)).toMatch(/has no such database: database "tenantctl_no_such_database" does not exist/);
  });

  it('a role that may not CONNECT to the database: "refused the connection", reason no-permission (not "unreachable")', async () => {
    const db = await freshPostgresDatabase();
    const role = `tenantctl_noconnect_${process.pid}`;
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`REVOKE CONNECT ON DATABASE ${new URL(db.url).pathname.slice(1)} FROM PUBLIC`);
      const u = new URL(db.url);
      u.username = role;
      const err = await openPostgresStore(u.toString(), 2000).catch((e: unknown) => e);
      expect(err).toMatchObject({ reason: 'no-permission' });
      expect(describeError(err)).toMatch(/refused the connection: permission denied for database/);
    } finally {
      await admin.end();
      await db.drop();
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`DROP ROLE IF EXISTS ${role}`);
      await c.end();
    }
  });

  it('a session ended by the server (pg_terminate_backend) makes the store say it is lost', async () => {
    const db = await freshPostgresDatabase();
    const store = await openPostgresStore(db.url);
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: db.url });
    try {
      await admin.connect();
      expect(await store.getTenant('x')).toBeUndefined();
      expect(store.lost).toBe(false);
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tenantctl' AND datname = current_database()");
      expect(await waitFor(() => store.lost)).toBe(true);
    } finally {
      await admin.end();
      await store.close();
      await db.drop();
    }
  });


  registryContract('PostgreSQL', async () => {
    const db = await freshPostgresDatabase();
    const store = await openPostgresStore(db.url);
    return { store, cleanup: db.drop, setStatus: sqlSetStatus(store), setExpiry: sqlSetExpiry(store) };
  });

  it('a new subscription created by another writer meanwhile is a conflict, not overwritten (nor its overrides deleted)', async () => {
    const db = await freshPostgresDatabase();
    const store = await openPostgresStore(db.url);
    const { default: pg } = await import('pg');
    const other = new pg.Client({ connectionString: db.url });
    try {
      await store.ensureSchema();
      await other.connect();
      // Another writer creates the subscription and holds its transaction open...
      await other.query('BEGIN');
      await other.query("INSERT INTO business_subscriptions (business_id, tier, status) VALUES ('race', 'pilot_pro', 'active')");
      await other.query("INSERT INTO business_feature_overrides (business_id, feature, value) VALUES ('race', 'has_ai', 'false')");
      // ...while this one, planned against no row, writes it: it waits on the key, then must not overwrite.
      const sub = { business_id: 'race', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: { has_payroll: true } };
      const writing = store.applyChanges({ subscriptions: [{ sub, hash: 'mine', expect: null }] });
      await new Promise((r) => setTimeout(r, 200));
      await other.query('COMMIT');
      const outcome = await writing;
      expect(outcome.conflicts.subscriptions).toEqual(['race']);
      expect(outcome.written.subscriptions).toEqual([]);
      expect(await store.getSubscription('race')).toMatchObject({ tier: 'pilot_pro', overrides: { has_ai: false }, tenantctl_hash: null });
    } finally {
      await other.end().catch(() => undefined);
      await store.close();
      await db.drop();
    }
  });

  it('reads a services\' database without tenantctl\'s column or tables, changing nothing; a writer adds them, keeping their rows', async () => {
    const db = await freshPostgresDatabase();
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, short_name text, timezone text, currency text, primary_email text,
      gcp_project_id text, gcp_dataset text, config_source text DEFAULT 'yaml', tenant_config jsonb DEFAULT '{}', status text DEFAULT 'active',
      plan text, features_enabled jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now())`);
    await c.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ('legacy', 'Legacy', 'database', '{"x": 1}')`);
    await c.end();
    const store = await openPostgresStore(db.url);
    expect(await store.getTenant('legacy')).toMatchObject({ name: 'Legacy', tenantctl_hash: null, tenant_config: { x: 1 } });
    expect(await store.getCatalogue()).toEqual({ features: [], tiers: {}, tenantctl_hash: null });
    expect(await store.getSubscription('legacy')).toBeUndefined();
    expect(await store.schemaState()).toEqual({ current: false, version: null });
    // What a dry run's plan reads (it failed: column "tenantctl_hash" does not exist, exit 3 before any plan).
    const memo = new Map<string, string>();
    expect((await store.getTenantVersions(['legacy', 'absent'], memo)).get('legacy')).toMatchObject({ config_source: 'database', tenantctl_hash: null });
    expect((await store.getTenantVersions(['legacy'], memo)).get('legacy')).toMatchObject({ config_source: 'database', tenantctl_hash: null });
    expect(await store.migratedTenantIds()).toEqual([]);
    // The whole dry run, from the command line: a plan, and nothing changed.
    const ws = workspace({ legacy: tenantYaml('legacy', 'Legacy From YAML'), fresh: tenantYaml('fresh', 'Fresh') }, { registry: false });
    try {
      const dry = await runCli(['migrate-yaml', '--dry-run', '--json', '--registry', db.url], { cwd: ws.dir });
      expect(dry.code, dry.stderr).toBe(4);
      const items = JSON.parse(dry.stdout).items.filter((i: { kind: string }) => i.kind === 'tenant');
      expect(Object.fromEntries(items.map((i: { id: string; action: string }) => [i.id, i.action]))).toEqual({ legacy: 'conflict', fresh: 'create' });
    } finally {
      ws.cleanup();
    }
    expect(await store.schemaState()).toEqual({ current: false, version: null });
    await store.ensureSchema();
    expect(await store.schemaState()).toMatchObject({ current: true });
    expect(await store.getTenant('legacy')).toMatchObject({ name: 'Legacy', tenantctl_hash: null });
    await store.close();
    await db.drop();
  });

  it("a services' registry with its own permission tables and rows in shapes tenantctl never writes: read as stored (a review: a JSON string parsed into config keys and a grant, the catalogue empty without tenantctl_meta, a NULL name exit 70)", async () => {
    const db = await freshPostgresDatabase();
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`CREATE TABLE tenants (id text PRIMARY KEY, name text, short_name text, timezone text, currency text, primary_email text,
      gcp_project_id text, gcp_dataset text, config_source text DEFAULT 'yaml', tenant_config jsonb DEFAULT '{}', status text DEFAULT 'active',
      plan text, features_enabled jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
      CREATE TABLE permission_features (name text PRIMARY KEY);
      CREATE TABLE permission_tiers (name text PRIMARY KEY, features jsonb NOT NULL DEFAULT '[]', max_devices integer);
      CREATE TABLE business_subscriptions (business_id text PRIMARY KEY, tier text NOT NULL, status text NOT NULL, demo_expires_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE business_feature_overrides (business_id text NOT NULL REFERENCES business_subscriptions ON DELETE CASCADE, feature text NOT NULL, value jsonb NOT NULL, PRIMARY KEY (business_id, feature));
      INSERT INTO permission_features VALUES ('has_ai'), ('has_payroll');
      INSERT INTO permission_tiers VALUES ('core', '[]', 2), ('pro', '["has_ai", "has_payroll"]', NULL), ('odd', '"has_ai"', 1);
      INSERT INTO business_subscriptions (business_id, tier, status) VALUES ('svcpro', 'pro', 'active'), ('ovstr', 'core', 'active'), ('ovyes', 'core', 'active'), ('oddtier', 'odd', 'active');
      INSERT INTO business_feature_overrides VALUES ('ovstr', 'has_ai', to_jsonb('true'::text)), ('ovyes', 'has_ai', '"yes"');
      INSERT INTO tenants (id, name, config_source, tenant_config) VALUES
        ('cfgjsonstr', 'X', 'database', to_jsonb('{"smuggled": {"admin": true}}'::text)), ('cfgstr', 'Y', 'database', '"hello"'), ('namenull', NULL, 'database', '{}')`);
    const store = await openPostgresStore(db.url);
    const ws = workspace({ acme: tenantYaml('acme', 'Acme') }, { registry: false });
    try {
      // The services' catalogue, though tenantctl_meta is not there (it read as empty: every feature denied).
      expect(await store.getCatalogue()).toEqual({
        features: ['has_ai', 'has_payroll'],
        tiers: { core: { name: 'core', features: [], max_devices: 2 }, pro: { name: 'pro', features: ['has_ai', 'has_payroll'], max_devices: null }, odd: { name: 'odd', features: [], max_devices: 1 } },
        tenantctl_hash: null,
      });
      // jsonb as stored: a JSON string is a string, never parsed again.
      expect((await store.getTenant('cfgjsonstr'))?.tenant_config).toBe('{"smuggled": {"admin": true}}');
      expect((await store.getSubscription('ovstr'))?.overrides).toEqual({ has_ai: 'true' });
      const env = { DATABASE_URL: db.url };
      const check = async (business: string) => (await runCli(['check-permission', business, 'has_ai', '--json'], { cwd: ws.dir, env }));
      expect((await check('svcpro')).code).toBe(0);
      for (const business of ['ovstr', 'ovyes', 'oddtier']) {
        const r = await check(business);
        expect(r.code, `${business}: ${r.stderr}`).toBe(1);
        expect(JSON.parse(r.stdout)).toMatchObject({ granted: false });
      }
      const got = await runCli(['get-config', 'cfgjsonstr', '--no-cache', '--json'], { cwd: ws.dir, env });
      expect(got.code, got.stderr).toBe(0);
      expect(JSON.parse(got.stdout).config.smuggled).toBeUndefined();
      for (const args of [['list-tenants', '--json'], ['get-config', 'cfgstr', '--no-cache', '--json']]) {
        const r = await runCli(args, { cwd: ws.dir, env });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      }
      // A writer adds tenantctl's column to the services' subscriptions table too (every write failed: no such column).
      expect((await runCli(['set-subscription', 'svcpro', '--tier', 'core'], { cwd: ws.dir, env })).code).toBe(0);
      expect(await store.schemaState()).toMatchObject({ current: true });
      expect(await store.getSubscription('svcpro')).toMatchObject({ tier: 'core' });
    } finally {
      ws.cleanup();
      await store.close();
      await c.end();
      await db.drop();
    }
  });

  it("a row a service's BEFORE trigger changes as it is written is not memoised as written: the plan reads it whole (it planned against a row that was not there: 'changed while planning' on every rerun)", async () => {
    const db = await freshPostgresDatabase();
    const store = await openPostgresStore(db.url);
    try {
      await store.ensureSchema();
      await store.db.exec(`CREATE FUNCTION svc_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.tenant_config := NEW.tenant_config || '{"svc_touched": true}'; RETURN NEW; END $$;
        CREATE TRIGGER svc_touch BEFORE INSERT OR UPDATE ON tenants FOR EACH ROW WHEN (NEW.id LIKE 'trig%') EXECUTE FUNCTION svc_touch()`);
      const taught = new Map<string, string>();
      const teach = { get: (fp: string) => taught.get(fp), set: (fp: string, h: string) => void taught.set(fp, h) };
      const touched = rowFromConfig('trig1', config('trig1'));
      const plain = rowFromConfig('plain1', config('plain1'));
      await store.applyChanges({ tenants: [touched, plain].map((row) => ({ row, expect: null })) }, teach);
      // Only the row stored as written is learnt.
      expect(taught.size).toBe(1);
      const viaMemo = await store.getTenantVersions(['trig1', 'plain1'], teach);
      const whole = await store.getTenantVersions(['trig1', 'plain1']);
      expect(viaMemo).toEqual(whole);
      expect(whole.get('trig1')!.content_hash).not.toBe(touched.tenantctl_hash);
      // An update the trigger changes too.
      const renamed = rowFromConfig('trig1', config('trig1', 'Renamed'));
      await store.applyChanges({ tenants: [{ row: renamed, expect: tenantVersion(await store.getTenant('trig1')) }] }, teach);
      expect(await store.getTenantVersions(['trig1'], teach)).toEqual(await store.getTenantVersions(['trig1']));
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('a tenants table made after a store found none is seen by that store (the check remembers only a table found)', async () => {
    const db = await freshPostgresDatabase();
    const store = await openPostgresStore(db.url);
    try {
      expect(await noTenantsTable(store)).toMatch(/has no tenants table/);
      await store.ensureSchema();
      expect(await noTenantsTable(store)).toBeUndefined();
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('a write command refused on a database without the tables creates none there (set-subscription, reactivate and override made all seven, then said exit 2 / 1)', async () => {
    const db = await freshPostgresDatabase();
    const ws = workspace({ acme: tenantYaml('acme', 'Acme') }, { registry: false });
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const env = { DATABASE_URL: db.url };
      for (const [args, code] of [[['set-subscription', 'acme', '--status', 'suspended'], 2], [['reactivate', 'acme'], 1], [['override', 'acme', 'has_ai', '--grant'], 2]] as const) {
        const r = await runCli([...args], { cwd: ws.dir, env });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
        expect((await c.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n, args.join(' ')).toBe(0);
      }
      // Reads say the database has no tenants table (YAML answered without a word), and verify --fix deletes
      // nothing against it (every registry tenant's entry went as an orphan).
      const got = await runCli(['get-config', 'acme', '--json'], { cwd: ws.dir, env });
      expect(got.code, got.stderr).toBe(0);
      expect(JSON.parse(got.stdout).source).toBe('yaml');
      expect(got.stderr).toMatch(/^note: registry \(postgres .*\) has no tenants table \(is it the services' database\? .*\); reading YAML only$/m);
      const redis = await startRedis();
      try {
        await redis.command('SET', 'tenant_config:svconly', '{"client":{"id":"svconly"}}');
        const fix = await runCli(['verify', '--fix', '--redis-url', redis.url], { cwd: ws.dir, env });
        expect(fix.code, fix.stderr).toBe(2);
        expect(fix.stderr).toMatch(/deleting stale entries needs the registry to compare with: registry .* has no tenants table/);
        expect(await redis.command('EXISTS', 'tenant_config:svconly')).toMatch(/^:1/);
        // Permissions are not "nothing granted" there (a confident "denied", exit 1, for acme, whose tenant file
        // says pilot_pro): unknown, exit 3, saying why. Nothing cached either.
        for (const args of [['check-permission', 'acme', 'has_ai'], ['check-permission', 'acme', 'has_ai', '--explain'], ['get-permissions', 'acme']]) {
          const r = await runCli([...args, '--redis-url', redis.url], { cwd: ws.dir, env });
          expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
          expect(r.stdout).toBe('');
          expect(r.stderr).toMatch(/^error: registry \(postgres .*\) has no tenants table: nothing to compute permissions from \(is it the services' database\? .*\)$/m);
          expect(r.stderr).not.toMatch(/denied|looked from the working directory/);
        }
        expect(await redis.command('EXISTS', 'permissions:acme')).toMatch(/^:0/);
      } finally {
        await redis.stop();
      }
    } finally {
      ws.cleanup();
      await c.end();
      await db.drop();
    }
  });
});

describe('Supabase store (contract test against a local PostgREST-like server)', () => {
  let fake: FakePostgrest;
  beforeAll(async () => {
    fake = await startFakePostgrest();
  });
  afterAll(() => fake.close());

  registryContract('Supabase (contract)', async () => ({
    store: await SupabaseRegistryStore.open(fake.url, fake.key),
    cleanup: async () => undefined,
    setStatus: async (id, status) => {
      fake.rows.get(id)!.status = status;
    },
    setExpiry: async (business, text) => {
      fake.tables.get('business_subscriptions')!.get(business)!.demo_expires_at = text;
    },
  }));

  it('a wrong key is a clear backend error, never printing the key; an unapplied schema stops writers only (reads need nothing of tenantctl\'s)', async () => {
    const wrong = SupabaseRegistryStore.open(fake.url, 'not-the-key');
    await expect(wrong).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(wrong).rejects.not.toThrow(/not-the-key/);
    // Said as what it is, with a reason a library caller can act on (a retry will not help).
    await expect(wrong).rejects.toMatchObject({ reason: 'refused-login', message: expect.stringMatching(/refused the key while checking the tenants table: Invalid API key/) });
    await put(await SupabaseRegistryStore.open(fake.url, fake.key), rowFromConfig('svc', config('svc', 'Services Row')));
    fake.missingColumn = true;
    try {
      // A services' project without tenantctl's column: get-config, list-tenants and the permission reads work...
      const reader = await SupabaseRegistryStore.open(fake.url, fake.key);
      expect(await reader.getTenant('svc')).toMatchObject({ name: 'Services Row' });
      // ...a writer is told to apply the schema.
      // (In the library's own terms: the reason; the CLI names its `tenantctl schema`.)
      const missing = await reader.ensureSchema().then(() => undefined, (err: unknown) => err);
      expect(missing).toMatchObject({ reason: 'no-schema', refused: true, message: expect.stringMatching(/tenantctl_hash/) });
      expect((missing as Error).message).not.toMatch(/tenantctl schema/);
    } finally {
      fake.missingColumn = false;
    }
  });

  it('getTenant asks for tenant_config as the server writes it out (a ::text cast) and says where it holds a whole-valued float', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    await put(store, rowFromConfig('wfsb', { client: { id: 'wfsb', name: 'W' }, limits: { rate: 1 } }));
    fake.jsonText.set('tenants:wfsb:tenant_config', '{"limits": {"rate": 1.0}}');
    try {
      const row = await store.getTenant('wfsb');
      expect(row).toMatchObject({ tenant_config: { limits: { rate: 1 } }, config_whole_float: { path: ['limits', 'rate'], written: '1.0' } });
      expect(row).not.toHaveProperty('tenantctl_config_text');
      expect(fake.requests.at(-1)?.path).toContain(`select=${encodeURIComponent('*,tenantctl_config_text:tenant_config::text')}`);
    } finally {
      fake.jsonText.clear();
    }
  });

  it('a read that fits one page is one request (the first page asks for the total), one past it pages to the end', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    await putCatalogue(store, { features: ['has_a', 'has_b'], tiers: { t1: { name: 't1', features: ['has_a'], max_devices: 1 } } }, 'hc');
    fake.requests.length = 0;
    await store.getCatalogue();
    const reads = (table: string) => fake.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/rest/v1/${table}`)).length;
    expect(reads('permission_features')).toBe(1);
    expect(reads('permission_tiers')).toBe(1);
  });

  it('a subscription changed by another writer between this write\'s read and its write is a conflict, not overwritten', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const other = await SupabaseRegistryStore.open(fake.url, fake.key);
    const sub = { business_id: 'race', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: {} };
    await store.applyChanges({ subscriptions: [{ sub, hash: 'h0', expect: null }] });
    const planned = subscriptionVersion(await store.getSubscription('race'));
    // The other writer lands right after this store has read the subscriptions (no transaction to stop it).
    const read = store.getSubscriptions.bind(store);
    let raced = false;
    store.getSubscriptions = async (ids: string[]) => {
      const got = await read(ids);
      if (!raced && ids.includes('race')) {
        raced = true;
        await other.applyChanges({ subscriptions: [{ sub: { ...sub, tier: 'pilot_pro' }, hash: 'theirs', expect: planned }] });
      }
      return got;
    };
    const mine = await store.applyChanges({ subscriptions: [{ sub: { ...sub, status: 'suspended' }, hash: 'mine', expect: planned }] });
    expect(raced).toBe(true);
    expect(mine.conflicts.subscriptions).toEqual(['race']);
    expect(await other.getSubscription('race')).toMatchObject({ tier: 'pilot_pro', status: 'active', tenantctl_hash: 'theirs' });
  });

  it('a tenant or subscription another writer creates between this write\'s read and its insert is a conflict, not an error or an overwrite', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const other = await SupabaseRegistryStore.open(fake.url, fake.key);
    const sub = { business_id: 'race-new', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: {} };
    // The other writer creates both right after this store has read them as absent.
    const readTenants = store.getTenants.bind(store);
    store.getTenants = async (ids: string[]) => {
      const got = await readTenants(ids);
      if (ids.includes('race-new')) await other.applyChanges({ tenants: [{ row: { ...rowFromConfig('race-new', config('race-new')), tenantctl_hash: 'theirs' }, expect: null }] });
      return got;
    };
    const readSubs = store.getSubscriptions.bind(store);
    store.getSubscriptions = async (ids: string[]) => {
      const got = await readSubs(ids);
      if (ids.includes('race-new')) await other.applyChanges({ subscriptions: [{ sub: { ...sub, tier: 'pilot_pro' }, hash: 'theirs', expect: null }] });
      return got;
    };
    const mine = await store.applyChanges({
      tenants: [{ row: { ...rowFromConfig('race-new', config('race-new')), tenantctl_hash: 'mine' }, expect: null }],
      subscriptions: [{ sub, hash: 'mine', expect: null }],
    });
    expect(mine.conflicts).toMatchObject({ tenants: ['race-new'], subscriptions: ['race-new'] });
    expect(mine.written).toMatchObject({ tenants: [], subscriptions: [] });
    expect(await other.getTenant('race-new')).toMatchObject({ tenantctl_hash: 'theirs' });
    expect(await other.getSubscription('race-new')).toMatchObject({ tier: 'pilot_pro', tenantctl_hash: 'theirs' });
  });

  it('an invalidation another process drains between this write\'s record and its rows is owed again after the write', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const other = await SupabaseRegistryStore.open(fake.url, fake.key);
    await store.clearInvalidations(await store.pendingInvalidations());
    // The other process drains (reads and clears what is owed) after this store recorded, before it writes.
    const getTenants = store.getTenants.bind(store);
    let drained = 0;
    store.getTenants = async (ids: string[]) => {
      if (!drained) {
        const owed = await other.pendingInvalidations();
        drained = owed.length;
        await other.clearInvalidations(owed);
      }
      return getTenants(ids);
    };
    await store.applyChanges({ tenants: [{ row: rowFromConfig('drained', config('drained')), expect: null }] });
    expect(drained).toBe(1);
    expect((await store.pendingInvalidations()).map((p) => p.target)).toEqual(['drained']);
  });

  it('a subscription\'s overrides are never left gone when the backend is lost between their requests (new values first, then the rest removed)', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const sub = { business_id: 'ovr', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: { has_ai: true, max_devices: 3 } };
    await store.applyChanges({ subscriptions: [{ sub, hash: 'o1', expect: null }] });
    const planned = subscriptionVersion(await store.getSubscription('ovr'));
    // The project goes away after the first request that changes overrides (a kill there is the same).
    let changes = 0;
    fake.failWhen = (method, p) => method !== 'GET' && p.startsWith('/rest/v1/business_feature_overrides') && ++changes > 1;
    try {
      const next = { ...sub, overrides: { has_ai: false, has_payroll: true } };
      await expect(store.applyChanges({ subscriptions: [{ sub: next, hash: 'o2', expect: planned }] })).rejects.toBeInstanceOf(BackendUnavailableError);
    } finally {
      fake.failWhen = undefined;
    }
    // What the YAML sets is there with its new value; only a feature it dropped may linger (before: all of them gone).
    expect((await store.getSubscription('ovr'))?.overrides).toEqual({ has_ai: false, has_payroll: true, max_devices: 3 });
    // Once the project is back, the next write leaves exactly the planned set.
    const now = subscriptionVersion(await store.getSubscription('ovr'));
    await store.applyChanges({ subscriptions: [{ sub: { ...sub, overrides: { has_payroll: true } }, hash: 'o3', expect: now }] });
    expect((await store.getSubscription('ovr'))?.overrides).toEqual({ has_payroll: true });
    await store.applyChanges({ subscriptions: [{ sub: { ...sub, overrides: {} }, hash: 'o4', expect: subscriptionVersion(await store.getSubscription('ovr')) }] });
    expect((await store.getSubscription('ovr'))?.overrides).toEqual({});
  });

  it('a write cut off without an answer, or a change set cut off after its first write: outcome unknown, not "not written"', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const change = (...ids: string[]) => ({ tenants: ids.map((id) => ({ row: rowFromConfig(id, config(id)), expect: null })) });
    const rejection = async (p: Promise<unknown>) => {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      return err;
    };
    /** The change's rejection while the fake fails the requests `when` picks. */
    const rejectedWhile = async (when: NonNullable<typeof fake.failWhen>, ...ids: string[]) => {
      fake.failWhen = when;
      try {
        return await rejection(store.applyChanges(change(...ids)));
      } finally {
        fake.failWhen = undefined;
      }
    };
    // The insert is applied, its answer lost (the connection dropped): the row is in, and the error says it may be.
    fake.loseAnswerWhen = (method, p) => method === 'POST' && p.startsWith('/rest/v1/tenants');
    try {
      const lost = await rejection(store.applyChanges(change('lost-answer')));
      expect(outcomeUnknown(lost)).toBe(true);
      expect(describeError(lost)).toMatch(/no answer to a write/);
    } finally {
      fake.loseAnswerWhen = undefined;
    }
    expect(await store.getTenant('lost-answer')).toBeDefined();
    // Two tenants, the second refused with an answer (503): the first is in, so the set's outcome is unknown.
    const cut = await rejectedWhile((method, p) => method === 'POST' && p.startsWith('/rest/v1/tenants') && fake.rows.has('cut-first'), 'cut-first', 'cut-second');
    expect(outcomeUnknown(cut)).toBe(true);
    expect(describeError(cut)).toMatch(/cut off after part of the change was written/);
    expect(await store.getTenant('cut-first')).toBeDefined();
    expect(await store.getTenant('cut-second')).toBeUndefined();
    // The first write refused with an answer: nothing was applied, and the error says so (a definite no).
    const refused = await rejectedWhile((method, p) => method === 'POST' && p.startsWith('/rest/v1/tenants'), 'refused');
    expect(outcomeUnknown(refused)).toBe(false);
    expect(await store.getTenant('refused')).toBeUndefined();
    // Every write landed, then the outbox's second record failed: unconfirmed, not "nothing written".
    let outboxWrites = 0;
    const late = await rejectedWhile((method, p) => method === 'POST' && p.startsWith('/rest/v1/tenantctl_outbox') && ++outboxWrites > 1, 'late-outbox');
    expect(outcomeUnknown(late)).toBe(true);
    expect(await store.getTenant('late-outbox')).toBeDefined();
  });

  it('a row refused for its content after other rows of the set landed: what landed is said, the refused one and those after it are not written (the whole set was "outcome unknown")', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    await store.clearInvalidations(await store.pendingInvalidations());
    const refuse = (id: string) => (method: string, p: string, body: unknown) =>
      p.startsWith('/rest/v1/tenants') && (JSON.stringify(body ?? null).includes(`"${id}"`) || p.includes(`eq.${id}`)) ? 'new row for relation "tenants" violates check constraint "currency_iso"' : undefined;
    const change = (...ids: string[]) => ({ tenants: ids.map((id) => ({ row: rowFromConfig(id, config(id)), expect: null })) });
    fake.refuseWhen = refuse('amid-b');
    let err: unknown;
    try {
      err = await store.applyChanges(change('amid-a', 'amid-b', 'amid-c')).then(() => undefined, (e: unknown) => e);
    } finally {
      fake.refuseWhen = undefined;
    }
    expect(err).toBeInstanceOf(RefusedAmidChanges);
    const amid = err as RefusedAmidChanges;
    expect(amid.refused).toEqual({ kind: 'tenant', id: 'amid-b' });
    expect(amid.applied.written.tenants).toEqual(['amid-a']);
    expect(amid.refusal).toBeInstanceOf(BackendUnavailableError);
    expect((amid.refusal as BackendUnavailableError).reason).toBe('rejected');
    expect(describeError(amid.refusal)).toMatch(/currency_iso/);
    expect(outcomeUnknown(amid)).toBe(false);
    expect(await store.getTenant('amid-a')).toBeDefined();
    expect(await store.getTenant('amid-b')).toBeUndefined();
    expect(await store.getTenant('amid-c')).toBeUndefined();
    // What landed is owed to the cache (recorded before and again after the writes).
    expect((await store.pendingInvalidations()).map((p) => p.target)).toContain('amid-a');
    // Refused on the first write of the set: nothing applied, a plain refusal (the caller halves the set).
    fake.refuseWhen = refuse('amid-d');
    try {
      const first = await store.applyChanges(change('amid-d', 'amid-e')).then(() => undefined, (e: unknown) => e);
      expect(first).not.toBeInstanceOf(RefusedAmidChanges);
      expect(first).toMatchObject({ reason: 'rejected' });
      expect(outcomeUnknown(first)).toBe(false);
    } finally {
      fake.refuseWhen = undefined;
    }
    // An item refused on its second request (a subscription's overrides, after its row landed): said partly written.
    const sub = { business_id: 'amid-s', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: { has_ai: true } };
    fake.refuseWhen = (_m, p) => (p.startsWith('/rest/v1/business_feature_overrides') ? 'new row for relation "business_feature_overrides" violates check constraint "v"' : undefined);
    try {
      const half = await store.applyChanges({ tenants: change('amid-s').tenants, subscriptions: [{ sub, hash: 'h', expect: null }] }).then(() => undefined, (e: unknown) => e);
      expect(half).toBeInstanceOf(RefusedAmidChanges);
      expect(half).toMatchObject({ refused: { kind: 'subscription', id: 'amid-s' }, partly: true, applied: { written: { tenants: ['amid-s'], subscriptions: [] } } });
    } finally {
      fake.refuseWhen = undefined;
    }
    // The same item first in its set: it is partly written all the same (not a plain refusal, which applies nothing).
    fake.refuseWhen = (_m, p) => (p.startsWith('/rest/v1/business_feature_overrides') ? 'refused' : undefined);
    try {
      const alone = await store.applyChanges({ subscriptions: [{ sub: { ...sub, business_id: 'amid-t' }, hash: 'h', expect: null }] }).then(() => undefined, (e: unknown) => e);
      expect(alone).toMatchObject({ refused: { kind: 'subscription', id: 'amid-t' }, partly: true });
    } finally {
      fake.refuseWhen = undefined;
    }
  });

  it('subscriptions on tiers a catalogue does not have are found by a not-in filter', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const base = { status: 'active' as const, demo_expires_at: null, overrides: {} };
    await store.applyChanges({ subscriptions: ['offa', 'offb', 'offc', 'offd', 'offe', 'offf', 'offg'].map((business_id) => ({ sub: { ...base, business_id, tier: 'gone_tier' }, hash: 'x', expect: null })) });
    const found = await store.subscriptionsOffTiers(['pilot_core', 'pilot_pro', 'core'], 5);
    expect(found.some).toHaveLength(5);
    expect(found.some).toContainEqual({ business_id: 'offa', tier: 'gone_tier' });
    // The total is all of them (the exact count), not the 5 returned.
    expect(found.total).toBeGreaterThanOrEqual(7);
    expect(found.some.every((s) => !['pilot_core', 'pilot_pro', 'core'].includes(s.tier))).toBe(true);
  });

  it('a services\' overrides table without the unique key an upsert needs is still written (delete, then insert)', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    const sub = { business_id: 'nokey', tier: 'pilot_core', status: 'active' as const, demo_expires_at: null, overrides: { has_ai: true, max_devices: 3 } };
    fake.noUniqueKey.add('business_feature_overrides');
    try {
      await store.applyChanges({ subscriptions: [{ sub, hash: 'n1', expect: null }] });
      const planned = subscriptionVersion(await store.getSubscription('nokey'));
      await store.applyChanges({ subscriptions: [{ sub: { ...sub, overrides: { has_payroll: true } }, hash: 'n2', expect: planned }] });
      expect((await store.getSubscription('nokey'))?.overrides).toEqual({ has_payroll: true });
    } finally {
      fake.noUniqueKey.delete('business_feature_overrides');
    }
  });

  it('an update silently filtered by row-level security is reported, not taken as success', async () => {
    const store = await SupabaseRegistryStore.open(fake.url, fake.key);
    await put(store, rowFromConfig('rls', config('rls')));
    fake.rlsHidesUpdates = true;
    await expect(put(store, rowFromConfig('rls', config('rls', 'Changed')))).rejects.toThrow(/row-level security/);
    fake.rlsHidesUpdates = false;
  });

  it('an unreachable project fails fast without supabase-js retry loops', async () => {
    const start = Date.now();
    await expect(SupabaseRegistryStore.open(`http://127.0.0.1:${await freePort()}`, 'k')).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(Date.now() - start).toBeLessThan(3000);
  });
});

describe('PostgreSQL unreachable', () => {
  it('is a BackendUnavailableError with the password masked', async () => {
    const err = await openPostgresStore(`postgres://u:hunter2@127.0.0.1:${await freePort()}/db`).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toContain('u:****@');
    expect(err.message).not.toContain('hunter2');
  });
});
