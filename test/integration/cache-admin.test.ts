import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';
import { CacheAdmin } from '../../src/services/cache-admin.js';
import { collectCacheInfo, toPrometheus } from '../../src/services/cache-info.js';
import { BackendUnavailableError, InterruptedError } from '../../src/errors.js';
import { openIoredisStore } from '../../src/cache/ioredis-store.js';
import type { CacheStore } from '../../src/cache/cache-store.js';
import { useOwnRedis } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';
import type { Redis } from 'ioredis';

const families = buildFamilies({ ttl: 300, extra: [{ name: 'app_cache', patterns: ['fastapi_template:tenant-{tenant}:*'], ttl: 1800 }] });
const keys = new KeySpace(families);
const cacheAt = (url?: string, timeoutMs = 1000) => new Cache(url ? parseRedisSpec({ url: { value: url, where: 'test' }, timeoutMs }) : undefined);

/** Every key shape of one tenant that the tool owns (one per family pattern). */
const ownedKeys = (t: string) => [
  `tenant_config:${t}`,
  `permissions:${t}`,
  `dashboard_kpis:${t}`,
  `dashboard_trends:${t}:days:30`,
  `forecast_demand:${t}:sku:1:horizon:7`,
  `fastapi_template:tenant-${t}:user:1:v1`,
];
/** Keys that are never the tool's, whatever tenant they mention. */
const FOREIGN = ['sessions:acme', 'other:acme', 'acme', 'tenant_config', 'tenant_configs:acme', 'fastapi_template:acme:x', 'queue:acme:jobs'];

describe('CacheAdmin on a real redis-server', () => {
  const own = useOwnRedis();
  let redis: Redis;
  let admin: CacheAdmin;
  let provider: Cache;

  beforeEach(async () => {
    redis = own.client;
    await redis.flushdb();
    provider?.close();
    provider = cacheAt(own.server.url);
    admin = new CacheAdmin(provider, keys);
  });

  const seed = async (list: string[]) => {
    const p = redis.pipeline();
    for (const k of list) p.set(k, '{"v":1}');
    await p.exec();
  };
  const remaining = async () => (await redis.keys('*')).sort();

  it('invalidating acme never touches acme2, acme-eu, ac or foreign keys', async () => {
    const neighbours = ['acme2', 'acme-eu', 'ac', 'acme.eu', 'xacme'];
    await seed([...ownedKeys('acme'), ...neighbours.flatMap(ownedKeys), ...FOREIGN]);
    const [result] = await admin.invalidateTenants(['acme']);
    expect(result.total).toBe(6);
    expect(result.families).toMatchObject({ tenant_config: 1, permissions: 1, dashboard_kpis: 1, dashboard_trends: 1, forecast_demand: 1, app_cache: 1 });
    expect(await remaining()).toEqual([...neighbours.flatMap(ownedKeys), ...FOREIGN].sort());
  });

  it('a family with non-ASCII text next to {tenant}: its keys are matched by their UTF-8 bytes (one tenant, dry run or not)', async () => {
    const accented = new CacheAdmin(provider, new KeySpace(buildFamilies({ ttl: 300, resources: {}, extra: [{ name: 'donnees', patterns: ['données:{tenant}:*'] }] })));
    await seed(['données:acme:1', 'données:acme:2', 'données:acme2:1', 'donnees:acme:1', 'tenant_config:acme']);
    const dry = await accented.invalidateTenants(['acme'], { dryRun: true });
    expect(dry[0].keys).toEqual(['données:acme:1', 'données:acme:2', 'tenant_config:acme']);
    const [done] = await accented.invalidateTenants(['acme']);
    expect(done.families).toMatchObject({ donnees: 2, tenant_config: 1 });
    expect(await remaining()).toEqual(['donnees:acme:1', 'données:acme2:1'].sort());
  });

  it('ids with glob characters are rejected; ids with . - _ are matched literally', async () => {
    await expect(admin.invalidateTenants(['ac*'])).rejects.toThrow(/invalid tenant id/);
    await seed([...ownedKeys('a.c'), ...ownedKeys('abc'), ...ownedKeys('a-c')]);
    await admin.invalidateTenants(['a.c']);
    expect(await remaining()).toEqual([...ownedKeys('abc'), ...ownedKeys('a-c')].sort());
  });

  it('property: for random tenant pairs, invalidating one leaves every key of the other', async () => {
    const id = fc.string({ unit: fc.constantFrom(...'ab-_.1'.split('')), minLength: 1, maxLength: 5 });
    await fc.assert(
      fc.asyncProperty(id, id, async (a, b) => {
        fc.pre(a !== b);
        await redis.flushdb();
        await seed([...ownedKeys(a), ...ownedKeys(b)]);
        await admin.invalidateTenants([a]);
        expect(await remaining()).toEqual(ownedKeys(b).sort());
      }),
      { numRuns: 40 },
    );
  });

  it('tenants whose ids contain each other are each counted once, dry run or not', async () => {
    await seed([...ownedKeys('a'), ...ownedKeys('ab'), ...ownedKeys('b.a')]);
    const dry = await admin.invalidateTenants(['a', 'ab', 'b.a'], { dryRun: true });
    expect(dry.map((r) => [r.tenant, r.total])).toEqual([['a', 6], ['ab', 6], ['b.a', 6]]);
    const done = await admin.invalidateTenants(['a', 'ab', 'b.a']);
    expect(done.map((r) => r.total)).toEqual([6, 6, 6]);
    expect(await redis.dbsize()).toBe(0);
  });

  it('a dry run lists the keys and deletes nothing; many tenants use one pass', async () => {
    const tenants = ['t1', 't2', 't3', 't4', 't5', 't6'];
    await seed([...tenants.flatMap(ownedKeys), ...FOREIGN]);
    const dry = await admin.invalidateTenants(['t1'], { dryRun: true });
    expect(dry[0].keys).toEqual(ownedKeys('t1').sort());
    expect(await redis.dbsize()).toBe(tenants.length * 6 + FOREIGN.length);
    const results = await admin.invalidateTenants(tenants);
    expect(results.map((r) => r.total)).toEqual(tenants.map(() => 6));
    expect(await remaining()).toEqual([...FOREIGN].sort());
  });

  it('many tenants (a migration): one pass takes their fixed-name keys too, exact per tenant, no UNLINK per absent name', async () => {
    const tenants = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const cached = tenants.filter((_, i) => i % 3 === 0);
    const others = ['m', 'm1x', 'x1', 'm300'];
    const decoys = ['tenant_config:m1:extra', 'permissions:m2:x', 'tenant_config:m3 ', 'tenant_configm3', 'fastapi_template:m3:x'];
    await seed([...cached.flatMap(ownedKeys), ...others.flatMap(ownedKeys), ...decoys, ...FOREIGN]);
    const dry = await admin.invalidateTenants(tenants, { dryRun: true });
    expect(dry.filter((r) => r.total).map((r) => r.tenant)).toEqual(cached);
    expect(dry.find((r) => r.tenant === 'm3')!.keys).toEqual(ownedKeys('m3').sort());
    await redis.config('RESETSTAT');
    const done = await admin.invalidateTenants(tenants);
    expect(done.map((r) => r.total)).toEqual(tenants.map((t) => (cached.includes(t) ? 6 : 0)));
    expect(done.find((r) => r.tenant === 'm0')!.families).toMatchObject({ tenant_config: 1, permissions: 1, dashboard_kpis: 1, app_cache: 1 });
    expect(await remaining()).toEqual([...others.flatMap(ownedKeys), ...decoys, ...FOREIGN].sort());
    // The keys deleted were named once each (600), not the 300 x 12 fixed names of every tenant.
    const stats = await redis.info('commandstats');
    const unlinks = Number(/cmdstat_unlink:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    expect(unlinks).toBe(cached.length * 6);
  });

  describe('stopped by a signal: the error counts exactly the keys deleted', () => {
    /** A Cache whose store aborts `ctrl` after its first UNLINK (the next batch boundary then stops the work). */
    const stoppingAfterFirstUnlink = (ctrl: AbortController) =>
      new Cache(parseRedisSpec({ url: { value: own.server.url, where: 'test' }, timeoutMs: 1000 }), {
        open: async (spec) => {
          const store = await openIoredisStore(spec);
          return new Proxy(store, {
            get(target, prop, receiver) {
              if (prop === 'unlink') {
                return async (keysToGo: Parameters<CacheStore['unlink']>[0]) => {
                  const r = await target.unlink(keysToGo);
                  ctrl.abort('SIGINT');
                  return r;
                };
              }
              const v = Reflect.get(target, prop, receiver);
              return typeof v === 'function' ? v.bind(target) : v;
            },
          });
        },
      });
    const caught = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
    const bulk = (t: string, n: number) => Array.from({ length: n }, (_, i) => `dashboard_trends:${t}:days:${i}`);

    it('a signal already given deletes nothing, not even the fixed-name keys', async () => {
      await seed(ownedKeys('acme'));
      const ctrl = new AbortController();
      ctrl.abort('SIGINT');
      const err = await caught(admin.invalidateTenants(['acme'], { signal: ctrl.signal }));
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as InterruptedError).progress).toEqual({ done: 0 });
      expect(await redis.exists(...ownedKeys('acme'))).toBe(ownedKeys('acme').length);
    });

    it("a program's own abort is said as one, not as SIGINT (the library's caller sent no signal)", async () => {
      await seed(ownedKeys('acme'));
      for (const reason of [undefined, new Error('shutting down')]) {
        const ctrl = new AbortController();
        ctrl.abort(reason);
        for (const op of [admin.invalidateTenants(['acme'], { signal: ctrl.signal }), admin.invalidateAll({ signal: ctrl.signal })]) {
          const err = await caught(op);
          expect(err).toBeInstanceOf(InterruptedError);
          expect(err).toMatchObject({ signal: 'abort', message: expect.stringMatching(/^aborted: /) });
          expect((err as Error).message).not.toMatch(/SIG/);
        }
      }
      expect(await redis.exists(...ownedKeys('acme'))).toBe(ownedKeys('acme').length);
    });

    it('several tenants (keys collected, then UNLINKed): the count is what is gone, the UNLINK in flight included', async () => {
      const tenants = ['s1', 's2', 's3'];
      const all = tenants.flatMap((t) => [...ownedKeys(t), ...bulk(t, 4000)]);
      await seed([...all, ...FOREIGN]);
      const ctrl = new AbortController();
      const stopping = stoppingAfterFirstUnlink(ctrl);
      try {
        const err = await caught(new CacheAdmin(stopping, keys).invalidateTenants(tenants, { signal: ctrl.signal }));
        expect(err).toBeInstanceOf(InterruptedError);
        const left = await redis.exists(...all);
        expect(left, 'the sweep finished before the signal: seed more keys').toBeGreaterThan(0);
        expect((err as InterruptedError).progress).toEqual({ done: all.length - left });
        expect((err as InterruptedError).message).toMatch(new RegExp(`after ${all.length - left} key\\(s\\) deleted`));
        expect(await redis.exists(...FOREIGN)).toBe(FOREIGN.length);
      } finally {
        stopping.close();
      }
    });

    it('one tenant (deleted server-side): the count includes what the sweep deleted before it stopped', async () => {
      const all = [...ownedKeys('solo'), ...bulk('solo', 30_000)];
      await seed(all);
      const ctrl = new AbortController();
      const stopping = stoppingAfterFirstUnlink(ctrl);
      try {
        const err = await caught(new CacheAdmin(stopping, keys).invalidateTenants(['solo'], { signal: ctrl.signal }));
        expect(err).toBeInstanceOf(InterruptedError);
        const left = await redis.exists(...all);
        expect((err as InterruptedError).progress).toEqual({ done: all.length - left });
      } finally {
        stopping.close();
      }
    });

    it('a dry run stopped reports no deletion', async () => {
      await seed([...ownedKeys('s1'), ...bulk('s1', 3000), ...ownedKeys('s2'), ...ownedKeys('s3')]);
      const ctrl = new AbortController();
      ctrl.abort('SIGINT');
      const err = await caught(admin.invalidateTenants(['s1', 's2', 's3'], { dryRun: true, signal: ctrl.signal }));
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as InterruptedError).progress).toBeUndefined();
      expect((err as InterruptedError).message).toMatch(/a dry run deletes nothing/);
    });
  });

  it('invalidate-all removes every family key of every tenant and nothing else, with exact counts', async () => {
    const tenants = Array.from({ length: 500 }, (_, i) => `tenant${i}`);
    await seed([...tenants.flatMap(ownedKeys), ...FOREIGN]);
    const dry = await admin.invalidateAll({ dryRun: true });
    expect(dry.total).toBe(3000);
    expect(dry.families.tenant_config).toBe(500);
    expect(await redis.dbsize()).toBe(3000 + FOREIGN.length);
    await redis.config('RESETSTAT');
    const done = await admin.invalidateAll();
    expect(done.total).toBe(3000);
    expect(done.families).toEqual(dry.families);
    expect(await remaining()).toEqual([...FOREIGN].sort());
    // One UNLINK per SCAN page the script took (every family's keys in it), not one per family and page:
    // 80,000 calls of ~12 keys for 1M keys were ~4% of the server's time.
    const stats = await redis.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('unlink')).toBeGreaterThan(0);
    expect(calls('unlink')).toBeLessThanOrEqual(calls('scan'));
  });

  it('counts exactly even when the keyspace is rehashing (SCAN may return a key twice)', async () => {
    // Grow the table while scanning: Redis guarantees every key is returned, possibly twice.
    await seed(Array.from({ length: 5000 }, (_, i) => `tenant_config:t${i}`));
    const counting = admin.invalidateAll({ dryRun: true });
    await seed(Array.from({ length: 20000 }, (_, i) => `noise:${i}`));
    const r = await counting;
    expect(r.families.tenant_config).toBe(5000);
  });

  it('cache-info reports exact family counts, memory, hits and misses, in JSON and Prometheus form', async () => {
    await redis.config('RESETSTAT');
    await seed([...ownedKeys('acme'), ...ownedKeys('beta'), ...FOREIGN]);
    await redis.get('tenant_config:acme');
    await redis.get('tenant_config:nobody');
    const info = await collectCacheInfo(provider, admin, 300);
    expect(info).toMatchObject({ backend: 'redis', available: true, ttl_seconds: 300, cached_tenants: 2, hits: 1, misses: 1, total_requests: 2, hit_rate_percent: 50, redis_evicted_keys: 0 });
    expect(info.families).toMatchObject({ tenant_config: 2, permissions: 2, app_cache: 2, products: 0 });
    expect(info.tool_keys).toBe(12);
    expect(info.total_keys).toBe(12 + FOREIGN.length);
    expect(info.used_memory_mb).toBeGreaterThan(0);
    expect(info.server).toMatchObject({ mode: 'standalone', masters: 1, version: expect.stringMatching(/^\d+\./) });
    const prom = toPrometheus(info);
    expect(prom).toContain('tenantctl_redis_up 1');
    expect(prom).toContain('tenantctl_cache_keys{family="tenant_config"} 2');
    expect(prom).toMatch(/^tenantctl_redis_keyspace_hits_total 1$/m);
  });

  it('cache-info counts total_keys in its own database (the URL\'s /N), as the families are, not every database', async () => {
    await seed(['sessions:a', 'sessions:b', 'other:c']); // db 0: the services' own keys
    const db1 = redis.duplicate();
    await db1.select(1);
    try {
      await db1.flushdb();
      await db1.set('tenant_config:acme', '{}');
      const inDb1 = cacheAt(`${own.server.url}/1`);
      try {
        const info = await collectCacheInfo(inDb1, new CacheAdmin(inDb1, keys), 300);
        expect(info).toMatchObject({ total_keys: 1, families: expect.objectContaining({ tenant_config: 1 }) });
      } finally {
        inDb1.close();
      }
    } finally {
      await db1.flushdb();
      db1.disconnect();
    }
  });

  it('with Redis down: invalidate throws BackendUnavailableError, cache-info reports unavailable', async () => {
    const down = cacheAt(`redis://127.0.0.1:${await freePort()}`, 300);
    const downAdmin = new CacheAdmin(down, keys);
    await expect(downAdmin.invalidateTenants(['acme'])).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(downAdmin.invalidateAll()).rejects.toBeInstanceOf(BackendUnavailableError);
    // As the services' endpoint says it (seed 000: backend 'none' when Redis is unavailable); error says why.
    expect(await collectCacheInfo(down, downAdmin, 300)).toMatchObject({ backend: 'none', available: false, error: expect.stringMatching(/refused|closed|connect/i) });
    expect(toPrometheus({ backend: 'redis', available: false, ttl_seconds: 300 })).toContain('tenantctl_redis_up 0');
    const none = cacheAt();
    expect(await collectCacheInfo(none, new CacheAdmin(none, keys), 300)).toEqual({ backend: 'none', available: false, ttl_seconds: 300 });
  });

  it('test-redis runs PING, SET with TTL, GET, DEL and leaves no key behind', async () => {
    const r = await admin.testRedis();
    expect(r.ok).toBe(true);
    expect(r.steps.map((s) => s.step)).toEqual(['PING', 'SET', 'GET', 'DEL']);
    expect(r.version).toMatch(/^\d+\./);
    expect(await redis.dbsize()).toBe(0);
  });
});
