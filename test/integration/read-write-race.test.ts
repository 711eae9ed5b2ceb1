import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import type { Registry, StoredSubscription, TenantRow } from '../../src/registry/registry-store.js';
import { Tenantctl } from '../../src/tenantctl.js';
import { catalogueHash } from '../../src/services/migration.js';
import { subscriptionVersion, tenantVersion } from '../../src/registry/content-hash.js';
import { rowFromConfig } from '../../src/tenants/registry-mapping.js';
import { sharedRedisUrl, uniq } from '../helpers/setup.js';

const catalogue = {
  features: ['has_ai', 'has_payroll'],
  tiers: {
    pilot_core: { name: 'pilot_core', features: [], max_devices: 2 },
    pilot_pro: { name: 'pilot_pro', features: ['has_ai', 'has_payroll'], max_devices: null },
  },
};

/**
 * A read that fills the cache races a write that commits and then
 * invalidates (set-subscription, migrate-yaml, a service, watch): the write
 * lands between the read's registry query and its SET. Whatever the timing,
 * once both are done the cache must not hold the old value, and an answer
 * must never be a mix of two versions (the catalogue and a subscription are
 * several statements). Driven deterministically: the registry below runs the
 * writer inside the read, after the rows were read.
 */
describe('a cache-filling read racing a write (in process, real Redis and PGlite)', () => {
  let store: SqlRegistryStore;
  let redis: Redis;

  /** The store, with `hook` run once after the first read of `method`, before that read returns. */
  const racing = <K extends 'getSubscription' | 'getTenant'>(method: K, hook: (read: Awaited<ReturnType<Registry[K]>>) => Promise<Awaited<ReturnType<Registry[K]>> | void>) => {
    let done = false;
    return new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === method) {
          return async (id: string) => {
            const read = await (target[method] as (id: string) => Promise<Awaited<ReturnType<Registry[K]>>>).call(target, id);
            if (done) return read;
            done = true;
            return (await hook(read)) ?? read;
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
  };
  const tool = (registry: Registry) =>
    new Tenantctl({ flags: { redisUrl: sharedRedisUrl(), registry: 'memory:' }, env: { XDG_CACHE_HOME: inject('cacheHome') }, registry });

  const business = async (sub: Partial<StoredSubscription> = {}) => {
    const id = uniq('race');
    await store.applyChanges({ subscriptions: [{ sub: { business_id: id, tier: 'pilot_pro', status: 'active', demo_expires_at: null, overrides: {}, ...sub }, hash: null, expect: null }] });
    await store.clearInvalidations(await store.pendingInvalidations());
    return id;
  };
  /** A writer: the subscription changed and committed, then its cache entry invalidated (what every writer does). */
  const suspend = async (read: StoredSubscription | undefined, extra: Partial<StoredSubscription> = {}) => {
    const { tenantctl_hash: _h, ...sub } = read!;
    await store.applyChanges({ subscriptions: [{ sub: { ...sub, status: 'suspended', ...extra }, hash: null, expect: subscriptionVersion(read) }] });
    await redis.del(`permissions:${read!.business_id}`);
  };

  beforeAll(async () => {
    store = await openPgliteStore(undefined);
    await store.ensureSchema();
    await store.applyChanges({ catalogue: { catalogue, hash: catalogueHash(catalogue), expect: null } });
    redis = new Redis(sharedRedisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await store.close();
  });

  it('check-permission: a write between the registry read and the SET does not find the old record cached', async () => {
    const id = await business();
    const t = tool(racing('getSubscription', (read) => suspend(read as StoredSubscription)));
    try {
      const answer = await t.permissions.check(id, 'has_ai');
      // Before: the old record (active, everything granted) was SET after the write's invalidation, for 300 s.
      const cached = await redis.get(`permissions:${id}`);
      expect(cached === null || JSON.parse(cached).status === 'suspended', String(cached)).toBe(true);
      // The answer is the version that settled: the write's.
      expect(answer).toMatchObject({ granted: false, record: { status: 'suspended' } });
    } finally {
      await t.close();
    }
  });

  it('check-permission: a read that mixed two versions is neither answered nor cached', async () => {
    const id = await business();
    // The registry holds the new version (suspended, device limit 7); the read saw the old status with the new override.
    const current = await store.getSubscription(id);
    await suspend(current, { overrides: { max_devices: 7 } });
    const t = tool(racing('getSubscription', async (read) => ({ ...(read as StoredSubscription), status: 'active' as const })));
    try {
      const answer = await t.permissions.check(id, 'has_ai');
      expect(answer.record).toMatchObject({ status: 'suspended', device_limit: 0 });
      const cached = await redis.get(`permissions:${id}`);
      expect(cached === null || JSON.parse(cached).status === 'suspended', String(cached)).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('a demo that ran out while cached: the entry goes only if it still holds what was read (a writer that extended the demo meanwhile keeps its change)', async () => {
    const id = await business({ tier: 'demo', demo_expires_at: '2020-01-01T00:00:00.000Z' });
    const key = `permissions:${id}`;
    const expired = { granted_features: ['has_ai'], tier: 'demo', status: 'active', demo_expires_at: '2020-01-01T00:00:00.000Z', device_limit: 1 };
    // Plain: the expired entry is not served, and goes (the services rebuild it from the registry).
    await redis.set(key, JSON.stringify(expired), 'EX', 300);
    const t = tool(store);
    try {
      expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: false, source: 'cache' });
      expect(await redis.exists(key)).toBe(0);
      // Raced: between the read and the rewrite, a writer extended the demo and a service cached the new record.
      const fresh = { ...expired, demo_expires_at: '2099-01-01T00:00:00.000Z' };
      await redis.set(key, JSON.stringify(expired), 'EX', 300);
      const text = JSON.stringify(fresh);
      const readThenWrite = t.permissions.check(id, 'has_ai');
      await redis.set(key, text, 'EX', 300);
      await readThenWrite;
      // Whichever came first, the fresh record is never replaced by an "expired" one.
      const now = await redis.get(key);
      expect(now === null || now === text, String(now)).toBe(true);
      if (now === null) expect(JSON.parse(text).demo_expires_at).toBe('2099-01-01T00:00:00.000Z');
    } finally {
      await t.close();
    }
  });

  it('tenant config (the library fills tenant_config:): a write between the registry read and the SET does not find the old config cached', async () => {
    const id = uniq('racet');
    const config = (name: string) => ({ client: { id, name, timezone: 'UTC' } });
    await store.applyChanges({ tenants: [{ row: rowFromConfig(id, config('Old Name')), expect: null }] });
    const t = tool(racing('getTenant', async (read) => {
      // migrate-yaml: the row rewritten and committed, then tenant_config: invalidated.
      await store.applyChanges({ tenants: [{ row: rowFromConfig(id, config('New Name')), expect: tenantVersion(read as TenantRow) }] });
      await redis.del(`tenant_config:${id}`);
    }));
    try {
      await t.tenants.get(id);
      const cached = await redis.get(`tenant_config:${id}`);
      expect(cached === null || JSON.parse(cached).client.name === 'New Name', String(cached)).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('tenant config: a status-only change (a service suspends the tenant) between the read and the SET is caught too', async () => {
    const id = uniq('races');
    await store.applyChanges({ tenants: [{ row: rowFromConfig(id, { client: { id, name: 'Status', timezone: 'UTC' } }), expect: null }] });
    const t = tool(racing('getTenant', async () => {
      await store.db.query("UPDATE tenants SET status = 'suspended' WHERE id = $1", [id]);
      await redis.del(`tenant_config:${id}`);
    }));
    try {
      await t.tenants.get(id);
      const cached = await redis.get(`tenant_config:${id}`);
      // The content hash does not cover the status: the re-read compares the row's _meta fields too.
      expect(cached === null || JSON.parse(cached)._meta?.status !== 'active', String(cached)).toBe(true);
    } finally {
      await t.close();
    }
  });
});
