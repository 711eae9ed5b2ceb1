import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import type { Registry } from '../../src/registry/registry-store.js';
import { Tenantctl } from '../../src/tenantctl.js';
import { BackendUnavailableError, NotFoundError, UsageError } from '../../src/errors.js';
import { catalogueHash } from '../../src/services/migration.js';
import { catalogueVersion, subscriptionVersion } from '../../src/registry/content-hash.js';
import { sharedRedisUrl, uniq } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';

const catalogue = {
  features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'],
  tiers: {
    demo: { name: 'demo', features: ['has_advanced_reporting'], max_devices: 1 },
    pilot_core: { name: 'pilot_core', features: [], max_devices: 2 },
    pilot_pro: { name: 'pilot_pro', features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'], max_devices: null },
  },
};

describe('PermissionService and the change commands on real Redis and PGlite', () => {
  let store: SqlRegistryStore;
  let redis: Redis;
  let clock = new Date('2026-06-01T12:00:00.000Z');
  let reads = 0;
  /** The store, counting registry reads of subscriptions. */
  let counted: Registry;

  const tool = (options: { redisUrl?: string; registry?: Registry; warn?: (m: string) => void } = {}) =>
    new Tenantctl({
      flags: { redisUrl: 'redisUrl' in options ? options.redisUrl : sharedRedisUrl(), registry: 'memory:' },
      env: { XDG_CACHE_HOME: inject('cacheHome') },
      registry: options.registry ?? counted,
      now: () => clock,
      warn: options.warn,
    });

  beforeAll(async () => {
    store = await openPgliteStore(undefined);
    await store.ensureSchema();
    await store.applyChanges({ catalogue: { catalogue, hash: catalogueHash(catalogue), expect: null } });
    counted = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getSubscription') return (...a: [string]) => ((reads++), target.getSubscription(...a));
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
    redis = new Redis(sharedRedisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await store.close();
  });

  const business = async (sub: Partial<{ tier: string; status: 'active' | 'suspended' | 'cancelled' | 'expired'; demo_expires_at: string | null; overrides: Record<string, boolean | number> }> = {}) => {
    const id = uniq('biz');
    await store.applyChanges({ subscriptions: [{ sub: { business_id: id, tier: 'pilot_core', status: 'active', demo_expires_at: null, overrides: {}, ...sub }, hash: null, expect: null }] });
    // Set-up, not a change under test: nothing is owed to the cache for it.
    await store.clearInvalidations(await store.pendingInvalidations());
    return id;
  };

  it('a record whose re-read of the registry fails after the SET (the second getSubscription throws) is taken back: cannot tell is changed (it was kept for the whole TTL)', async () => {
    const id = await business({ tier: 'pilot_pro' });
    // Fault injection on the real store: the computation's read goes through, the re-read after the SET fails, later ones go through.
    let subReads = 0;
    const failsSecondRead = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getSubscription') {
          return async (b: string) => {
            if (++subReads === 2) throw new BackendUnavailableError('registry', 'registry connection lost mid-check', { reason: 'unreachable' });
            return target.getSubscription(b);
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
    const t = tool({ registry: failsSecondRead });
    try {
      expect(await t.permissions.check(id, 'has_payroll')).toMatchObject({ granted: true, source: 'registry' });
      expect(subReads).toBeGreaterThanOrEqual(2);
      expect(await redis.exists(`permissions:${id}`)).toBe(0);
    } finally {
      await t.close();
      await redis.del(`permissions:${id}`);
    }
  });

  it('computes from the registry, caches the services\' exact record, then answers from the cache', async () => {
    const id = await business({ tier: 'pilot_pro', overrides: { has_ai: false, max_devices: 4 } });
    const t = tool();
    const first = await t.permissions.check(id, 'has_payroll');
    expect(first).toMatchObject({ granted: true, source: 'registry' });
    // Byte for byte what the services' json.dumps writes: ", " and ": " separators, their field order.
    expect(await redis.get(`permissions:${id}`)).toBe(
      '{"granted_features": ["has_advanced_reporting", "has_api_access", "has_payroll"], "tier": "pilot_pro", "status": "active", "demo_expires_at": null, "device_limit": 4}',
    );
    expect(await redis.ttl(`permissions:${id}`)).toBeGreaterThan(290);
    const second = await t.permissions.check(id, 'has_ai');
    expect(second).toMatchObject({ granted: false, source: 'cache' });
    await t.close();
  });

  it('a business with no subscription gets the "none" record and is denied', async () => {
    const t = tool();
    const id = uniq('nosub');
    expect((await t.permissions.get(id)).record).toEqual({ granted_features: [], tier: 'none', status: 'inactive', demo_expires_at: null, device_limit: 0 });
    const explained = await t.permissions.explain(id, 'has_ai');
    expect(explained).toMatchObject({ granted: false, reason: `business ${id} has no subscription` });
    await t.close();
  });

  it('concurrent misses for one business make one registry load (single flight: its read, and the read after the SET that checks nothing changed)', async () => {
    const id = await business({ tier: 'pilot_pro' });
    const t = tool();
    reads = 0;
    const answers = await Promise.all(Array.from({ length: 25 }, () => t.permissions.check(id, 'has_ai')));
    expect(answers.every((a) => a.granted)).toBe(true);
    expect(reads).toBe(2);
    // Each caller its own copy: one changing its answer changes no other's (they shared one record object).
    expect(answers[0].record).not.toBe(answers[1].record);
    answers[0].record.granted_features.push('has_everything');
    expect(answers[1].record.granted_features).not.toContain('has_everything');
    await t.close();
  });

  it('a check that begins after a load of its business is under way does not share it: a revocation committed meanwhile is denied (it was granted)', async () => {
    const id = await business({ tier: 'pilot_pro' });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let readOnce!: () => void;
    const firstRead = new Promise<void>((r) => (readOnce = r));
    let n = 0;
    // The first load's second subscription read (the one that confirms the record it cached) answers only
    // once the gate opens (a slow registry), after the change: that load's two reads agree on the old record.
    const slow = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getSubscription') {
          return async (b: string) => {
            const sub = await target.getSubscription(b);
            if (++n === 2) {
              readOnce();
              await gate;
            }
            return sub;
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
    const t = tool({ registry: slow });
    try {
      const before = t.permissions.check(id, 'has_ai');
      await firstRead;
      await store.applyChanges({ subscriptions: [{ sub: { business_id: id, tier: 'pilot_pro', status: 'suspended', demo_expires_at: null, overrides: {} }, hash: null, expect: subscriptionVersion(await store.getSubscription(id)) }] });
      await redis.del(`permissions:${id}`);
      const after = t.permissions.check(id, 'has_ai');
      // Its cache read (a miss) done, it has met the load under way (not a timing assertion: ordering only).
      await new Promise((r) => setTimeout(r, 100));
      release();
      const [b, a] = await Promise.all([before, after]);
      expect(b.granted).toBe(true);
      expect(a).toMatchObject({ granted: false });
    } finally {
      await t.close();
      await redis.del(`permissions:${id}`);
    }
  });

  it('a record the services cached for an inactive business with features (their suspended-live-demo bug) is answered by the tool\'s rule: nothing granted; the entry stays', async () => {
    const id = await business({ tier: 'demo', status: 'suspended', demo_expires_at: '2030-02-01T00:00:00.000Z' });
    const theirs = JSON.stringify({ granted_features: ['has_ai', 'has_payroll'], tier: 'demo', status: 'suspended', demo_expires_at: '2030-02-01T00:00:00Z', device_limit: 1 });
    await redis.set(`permissions:${id}`, theirs, 'EX', 300);
    const t = tool();
    // Before: granted (the cached record as it was), with the reason "status is suspended: nothing is granted".
    expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: false, source: 'cache', record: { granted_features: [], device_limit: 0 } });
    expect(await redis.get(`permissions:${id}`)).toBe(theirs);
    await t.close();
  });

  it('--explain of a cache hit says when the registry would answer otherwise (an invalidation owed), and not for the services\' own format of the same record', async () => {
    const id = await business({ tier: 'pilot_pro', demo_expires_at: null });
    const t = tool();
    expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: true, source: 'registry' });
    // The same record as the services write it (no milliseconds, features in another order): no note.
    const cached = JSON.parse((await redis.get(`permissions:${id}`))!);
    await redis.set(`permissions:${id}`, JSON.stringify({ ...cached, granted_features: [...cached.granted_features].reverse() }), 'EX', 300);
    expect((await t.permissions.explain(id, 'has_ai')).registryDiffers).toBeUndefined();
    // The registry changed without an invalidation (Redis was down for the writer): the answer is the cache's, and it says so.
    const current = await store.getSubscription(id);
    const { tenantctl_hash: _h, ...sub } = current!;
    await store.applyChanges({ subscriptions: [{ sub: { ...sub, overrides: { has_ai: false } }, hash: null, expect: subscriptionVersion(current) }] });
    const explained = await t.permissions.explain(id, 'has_ai');
    expect(explained).toMatchObject({ granted: true, source: 'cache', registryDiffers: { granted: false } });
    await t.close();
  });

  it('an override action that is none of grant, deny, clear is a usage error, nothing written (a plain-JS caller\'s "maybe" was written as a deny)', async () => {
    const id = await business({ tier: 'pilot_core' });
    const t = tool();
    try {
      for (const action of ['maybe', '', undefined, 'GRANT']) {
        await expect(t.subscriptions.override(id, 'has_ai', action as never)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/is none of grant, deny, clear/) });
      }
      expect((await store.getSubscription(id))?.overrides).toEqual({});
    } finally {
      await t.close();
    }
  });

  it('an override left on a feature tiers.yaml dropped since can be cleared (it was "unknown feature", exit 2: SQL only)', async () => {
    const id = await business({ tier: 'pilot_core' });
    const t = tool();
    await t.subscriptions.override(id, 'has_ai', 'grant');
    const dropped = { ...catalogue, features: catalogue.features.filter((f) => f !== 'has_ai') };
    await store.applyChanges({ catalogue: { catalogue: dropped, hash: catalogueHash(dropped), expect: catalogueVersion(await store.getCatalogue()) } });
    try {
      await t.subscriptions.override(id, 'has_ai', 'clear');
      expect((await store.getSubscription(id))?.overrides).toEqual({});
      // Granting it is still refused: the catalogue does not have it.
      await expect(t.subscriptions.override(id, 'has_ai', 'grant')).rejects.toThrow(UsageError);
    } finally {
      await store.applyChanges({ catalogue: { catalogue, hash: catalogueHash(catalogue), expect: catalogueVersion(await store.getCatalogue()) } });
      await t.close();
    }
  });

  it('a record the services would write as other text (a device limit past 2^53) is answered, not cached (it was an internal error, exit 70)', async () => {
    const id = await business({ tier: 'pilot_pro', overrides: { max_devices: 1e20 } });
    const t = tool();
    try {
      expect(await t.permissions.check(id, 'has_payroll')).toMatchObject({ granted: true, source: 'registry' });
      expect(await redis.exists(`permissions:${id}`)).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('a demo expiry is cached as the services write it: whole seconds and Z, the fraction cut (seed 002)', async () => {
    const expiry = new Date(Math.floor(clock.getTime() / 1000) * 1000 + 3_600_000 + 750);
    const id = await business({ tier: 'demo', demo_expires_at: expiry.toISOString() });
    const t = tool();
    try {
      expect(await t.permissions.check(id, 'has_payroll')).toMatchObject({ granted: true, source: 'registry' });
      const whole = `${expiry.toISOString().slice(0, 19)}Z`;
      expect(JSON.parse((await redis.get(`permissions:${id}`))!).demo_expires_at).toBe(whole);
    } finally {
      await t.close();
    }
  });

  it('an expired demo is never served from the cache, and its entry lives no longer than the demo', async () => {
    const expiry = new Date(clock.getTime() + 60_000).toISOString();
    const id = await business({ tier: 'demo', demo_expires_at: expiry });
    const t = tool();
    expect(await t.permissions.check(id, 'has_payroll')).toMatchObject({ granted: true, source: 'registry' });
    expect(await redis.ttl(`permissions:${id}`)).toBeLessThanOrEqual(60);
    const saved = clock;
    try {
      clock = new Date(Date.parse(expiry) - 1000);
      expect(await t.permissions.check(id, 'has_payroll')).toMatchObject({ granted: true, source: 'cache' });
      clock = new Date(Date.parse(expiry) + 1000);
      const after = await t.permissions.check(id, 'has_payroll');
      expect(after).toMatchObject({ granted: false, source: 'cache' });
      // The entry goes (only while it holds what was read): the services rebuild it from the registry.
      expect(await redis.exists(`permissions:${id}`)).toBe(0);
    } finally {
      clock = saved;
    }
    await t.close();
  });

  it('each change command writes the registry and deletes permissions:<business> only: the next check sees it', async () => {
    const id = await business();
    const neighbour = `${id}2`;
    await redis.set(`permissions:${neighbour}`, '{"granted_features":[],"tier":"x","status":"active","demo_expires_at":null,"device_limit":0}');
    await redis.set(`tenant_config:${id}`, '{}');
    const t = tool();
    const check = () => t.permissions.check(id, 'has_ai');
    expect((await check()).granted).toBe(false);

    expect((await t.subscriptions.override(id, 'has_ai', 'grant')).cacheInvalidated).toBe(true);
    expect(await check()).toMatchObject({ granted: true, source: 'registry' });
    await t.subscriptions.setSubscription(id, { status: 'suspended' });
    expect((await check()).granted).toBe(false);
    await t.subscriptions.reactivate(id);
    expect((await check()).granted).toBe(true);
    await t.subscriptions.override(id, 'has_ai', 'clear');
    expect((await check()).granted).toBe(false);
    await t.subscriptions.setSubscription(id, { tier: 'pilot_pro', deviceLimit: 9 });
    expect((await t.permissions.get(id)).record).toMatchObject({ tier: 'pilot_pro', device_limit: 9, granted_features: catalogue.features });

    expect(await redis.exists(`permissions:${neighbour}`)).toBe(1);
    expect(await redis.exists(`tenant_config:${id}`)).toBe(1);
    await t.close();
  });

  it('reactivate clears an expired demo expiry and keeps a live one', async () => {
    const expired = await business({ tier: 'demo', status: 'expired', demo_expires_at: '2026-01-01T00:00:00.000Z' });
    const live = await business({ tier: 'demo', status: 'suspended', demo_expires_at: '2027-01-01T00:00:00.000Z' });
    const t = tool();
    expect((await t.subscriptions.reactivate(expired)).subscription).toMatchObject({ status: 'active', demo_expires_at: null });
    expect((await t.subscriptions.reactivate(live)).subscription).toMatchObject({ status: 'active', demo_expires_at: '2027-01-01T00:00:00.000Z' });
    expect((await t.permissions.check(live, 'has_payroll')).granted).toBe(true);
    await t.close();
  });

  it('bad input changes nothing: unknown tier, status, feature, bad date, missing business', async () => {
    const id = await business({ tier: 'pilot_pro' });
    const before = await store.getSubscription(id);
    const t = tool();
    await expect(t.subscriptions.setSubscription(id, { tier: 'gold' })).rejects.toThrow(UsageError);
    await expect(t.subscriptions.setSubscription(id, { status: 'paused' })).rejects.toThrow(UsageError);
    await expect(t.subscriptions.setSubscription(id, { demoExpires: 'next week' })).rejects.toThrow(UsageError);
    await expect(t.subscriptions.setSubscription(id, { deviceLimit: -1 })).rejects.toThrow(UsageError);
    await expect(t.subscriptions.override(id, 'has_teleport', 'grant')).rejects.toThrow(UsageError);
    await expect(t.subscriptions.override(id, 'bad feature', 'grant')).rejects.toThrow(UsageError);
    await expect(t.subscriptions.setSubscription(uniq('new'), { status: 'active' })).rejects.toMatchObject({ reason: 'needs-tier' });
    await expect(t.subscriptions.reactivate(uniq('ghost'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.permissions.check(id, 'nope')).rejects.toThrow(UsageError);
    expect(await store.getSubscription(id)).toEqual(before);
    await t.close();
  });

  it('an unknown feature is denied and --explain says so', async () => {
    const id = await business({ tier: 'pilot_pro' });
    const t = tool();
    expect(await t.permissions.explain(id, 'has_teleport')).toMatchObject({ granted: false, knownFeature: false, reason: 'has_teleport is not in the feature catalogue: no tier grants it' });
    // A live demo too (before: "live demo ...: every catalogue feature is granted", and denied).
    const demo = await business({ tier: 'demo', demo_expires_at: '2099-01-01T00:00:00.000Z' });
    expect(await t.permissions.explain(demo, 'has_teleport')).toMatchObject({ granted: false, reason: expect.stringMatching(/^has_teleport is not in the feature catalogue/) });
    await t.close();
  });

  it('a cached live-demo record made before a feature joined the catalogue: --explain says the record lacks it, not that the catalogue does', async () => {
    const demo = await business({ tier: 'demo', demo_expires_at: '2099-01-01T00:00:00.000Z' });
    // The record as it was cached before has_payroll was in the catalogue.
    await redis.set(`permissions:${demo}`, JSON.stringify({ granted_features: ['has_ai'], tier: 'demo', status: 'active', demo_expires_at: '2099-01-01T00:00:00Z', device_limit: 5 }), 'EX', 300);
    const t = tool();
    const explained = await t.permissions.explain(demo, 'has_payroll');
    expect(explained).toMatchObject({ granted: false, source: 'cache', knownFeature: true });
    // (A review: "has_payroll is not in the feature catalogue" beside "feature in catalogue: yes".)
    expect(explained.reason).toBe('live demo until 2099-01-01T00:00:00Z: this record does not grant has_payroll, which the catalogue has (the record was made before it was added)');
    // Without --explain (no catalogue read): what the record shows, nothing said of the catalogue.
    expect((await t.permissions.check(demo, 'has_payroll')).reason).toBe('live demo until 2099-01-01T00:00:00Z: has_payroll is not among the catalogue features this record grants');
    // The mirror: a granted feature the catalogue no longer has (it said "every catalogue feature is granted" beside "in catalogue: no").
    await redis.set(`permissions:${demo}`, JSON.stringify({ granted_features: ['has_ai', 'has_retired'], tier: 'demo', status: 'active', demo_expires_at: '2099-01-01T00:00:00Z', device_limit: 5 }), 'EX', 300);
    expect(await t.permissions.explain(demo, 'has_retired')).toMatchObject({
      granted: true,
      knownFeature: false,
      reason: 'live demo until 2099-01-01T00:00:00Z: this record grants has_retired, which the catalogue no longer has (the record was made before it was removed)',
    });
    await t.close();
  });

  it('--explain names an override that is set but did not decide (a deny on a live demo, one equal to the tier\'s own)', async () => {
    const demo = await business({ tier: 'demo', demo_expires_at: '2099-01-01T00:00:00.000Z', overrides: { has_ai: false } });
    const t = tool();
    expect(await t.permissions.explain(demo, 'has_ai')).toMatchObject({ granted: true, override: undefined, unusedOverride: { feature: 'has_ai', value: false, why: 'a live demo grants every catalogue feature' } });
    const same = await business({ tier: 'pilot_pro', overrides: { has_payroll: true } });
    expect(await t.permissions.explain(same, 'has_payroll')).toMatchObject({ granted: true, unusedOverride: { value: true, why: 'the tier already grants it' } });
    await t.close();
  });

  it('a subscription on a tier the catalogue no longer has: the reason says so (before: as if the tier existed)', async () => {
    const id = await business({ tier: 'retired_tier' });
    const t = tool();
    expect(await t.permissions.explain(id, 'has_ai')).toMatchObject({ granted: false, reason: expect.stringMatching(/^tier retired_tier is not in the catalogue \(removed from tiers\.yaml\?\): it grants nothing and 0 devices/) });
    await t.close();
  });

  it('Redis down: answers from the registry with one warning; the change commands report the cache as not invalidated', async () => {
    const id = await business({ tier: 'pilot_pro' });
    const warnings: string[] = [];
    const t = tool({ redisUrl: `redis://127.0.0.1:${await freePort()}`, warn: (m) => warnings.push(m) });
    expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: true, source: 'registry' });
    expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: true, source: 'registry' });
    expect(warnings).toHaveLength(1);
    expect((await t.subscriptions.override(id, 'has_ai', 'deny')).cacheInvalidated).toBe(false);
    await t.close();
  });

  it('registry down with a warm cache: answers from the cache; both down: BackendUnavailableError', async () => {
    const id = await business({ tier: 'pilot_pro' });
    const warm = tool();
    await warm.permissions.check(id, 'has_ai');
    await warm.close();
    const downRegistry = new Proxy(store, {
      get: (target, prop) => (typeof Reflect.get(target, prop) === 'function'
        ? async () => { throw new BackendUnavailableError('registry', 'registry unreachable'); }
        : Reflect.get(target, prop)),
    }) as Registry;
    const t = tool({ registry: downRegistry });
    expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: true, source: 'cache' });
    expect(await t.permissions.explain(id, 'has_ai')).toMatchObject({ granted: true, source: 'cache', knownFeature: true });
    await expect(t.permissions.check(uniq('cold'), 'has_ai')).rejects.toBeInstanceOf(BackendUnavailableError);
    await t.close();
    const both = tool({ registry: downRegistry, redisUrl: `redis://127.0.0.1:${await freePort()}` });
    await expect(both.permissions.check(id, 'has_ai')).rejects.toBeInstanceOf(BackendUnavailableError);
    await both.close();
  });

  it('a malformed cached value is treated as a miss, not trusted', async () => {
    const id = await business({ tier: 'pilot_pro' });
    await redis.set(`permissions:${id}`, '{"granted_features":"everything"}');
    const t = tool();
    expect(await t.permissions.check(id, 'has_ai')).toMatchObject({ granted: true, source: 'registry' });
    await t.close();
  });

  it('the same answer has the same words from the registry and from the cache', async () => {
    const id = await business({ tier: 'pilot_core', overrides: { has_ai: true } });
    await redis.del(`permissions:${id}`);
    const t = tool();
    for (const feature of ['has_ai', 'has_payroll']) {
      await redis.del(`permissions:${id}`);
      const fromRegistry = await t.permissions.check(id, feature);
      const fromCache = await t.permissions.check(id, feature);
      expect([fromRegistry.source, fromCache.source]).toEqual(['registry', 'cache']);
      expect(fromCache.reason).toBe(fromRegistry.reason);
    }
    // A live demo's denial (a feature not in the catalogue): from the cache it said "every catalogue feature is
    // granted". The registry, its catalogue at hand, names the feature as missing from it (the README's exception);
    // the cache says what the record shows (a cached record may predate the catalogue: a review).
    const demo = await business({ tier: 'demo', demo_expires_at: '2099-01-01T00:00:00.000Z' });
    await redis.del(`permissions:${demo}`);
    const fromRegistry = await t.permissions.check(demo, 'has_teleport');
    const fromCache = await t.permissions.check(demo, 'has_teleport');
    expect([fromRegistry.source, fromCache.source, fromCache.granted]).toEqual(['registry', 'cache', false]);
    expect(fromRegistry.reason).toBe('has_teleport is not in the feature catalogue (a live demo grants every catalogue feature)');
    expect(fromCache.reason).toBe('live demo until 2099-01-01T00:00:00Z: has_teleport is not among the catalogue features this record grants');
    await t.close();
  });
});
