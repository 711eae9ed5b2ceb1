import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { CacheStore } from '../../src/cache/cache-store.js';
import { openIoredisStore } from '../../src/cache/ioredis-store.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';
import { BackendUnavailableError, InterruptedError } from '../../src/errors.js';
import {
  clusterTopology, sentinelTopology, standaloneTopology, tlsAclTopology, type RedisTopology,
} from '../helpers/redis-topologies.js';

/**
 * The one contract every cache store must keep, run against each topology the
 * tool supports (as the registry's suite runs on PGlite, PostgreSQL and
 * Supabase): a standalone server, a 3-master Cluster, a Sentinel-managed
 * master, TLS with an ACL user, and an ACL user that may not run scripts
 * (the store then sweeps client-side, with the same results).
 */
const keys = new KeySpace(buildFamilies({ ttl: 300, extra: [{ name: 'app_cache', patterns: ['fastapi_template:tenant-{tenant}:*'], ttl: 1800 }] }));

const owned = (t: string) => [
  `tenant_config:${t}`, `permissions:${t}`, `dashboard_kpis:${t}`, `dashboard_trends:${t}:days:30`,
  `forecast_demand:${t}:sku:1:horizon:7`, `fastapi_template:tenant-${t}:user:1:v1`,
];
const FOREIGN = ['sessions:acme', 'other:acme', 'acme', 'tenant_config', 'tenant_config:', 'tenant_configx:acme', 'fastapi_template:acme:x', 'queue:acme:jobs', 'permissions:a*b', 'tenant_config:a:b'];
/** A family key whose name is not UTF-8. */
const BINARY_KEY = Buffer.concat([Buffer.from('tenant_config:acme'), Buffer.from([0xff])]);

/** HSET of 5,000 fields into KEYS[1] in one server-side loop: a value freed in the background by UNLINK. */
const FILL_HASH_5000 = `for i = 1, 5000, 500 do local a = {} for j = i, i + 499 do a[#a + 1] = 'f' .. j a[#a + 1] = 'v' end redis.call('HSET', KEYS[1], unpack(a)) end return 1`;

/** A counter read until it moves past `before` (the lazy-free thread counts once it is done), 2 s at most. */
async function movedPast(read: () => Promise<number>, before: number): Promise<number> {
  let now = await read();
  for (let i = 0; i < 100 && now === before; i++) {
    await new Promise((r) => setTimeout(r, 20));
    now = await read();
  }
  return now;
}

/** An ACL user of a standalone server with these rules, and a store logged in as it. */
async function storeAs(topo: RedisTopology, user: string, ...rules: string[]): Promise<CacheStore> {
  await topo.client.call('ACL', 'SETUSER', user, 'on', `>${user}pw`, ...rules);
  return openIoredisStore(parseRedisSpec({ url: { value: `redis://${user}:${user}pw@127.0.0.1:${topo.servers[0].port}`, where: 'test' }, timeoutMs: 1500 })!);
}

const TOPOLOGIES: Array<[string, () => Promise<RedisTopology>]> = [
  ['standalone', standaloneTopology],
  ['cluster', clusterTopology],
  ['sentinel', sentinelTopology],
  ['tls-acl', () => tlsAclTopology()],
  ['tls-acl-no-scripting', () => tlsAclTopology({ scripting: false })],
];

describe.each(TOPOLOGIES)('CacheStore contract: %s', (name, start) => {
  let topo: RedisTopology;
  let store: CacheStore;

  beforeAll(async () => {
    topo = await start();
    store = await openIoredisStore(topo.spec);
  }, 60_000);
  afterAll(async () => {
    store?.close();
    await topo?.stop();
  });
  beforeEach(async () => {
    await topo.flush();
  });

  const seed = async (list: Array<string | Buffer>, ttl?: number) => {
    for (let i = 0; i < list.length; i += 500) {
      await Promise.all(list.slice(i, i + 500).map((k) => (ttl ? topo.client.set(k, '{"v":1}', 'EX', ttl) : topo.client.set(k, '{"v":1}'))));
    }
  };
  /** An INFO field summed over the masters (one server, or a Cluster's). */
  const infoSum = async (section: string, field: string) => {
    const c = topo.client;
    let n = 0;
    for (const m of 'nodes' in c ? c.nodes('master') : [c]) n += Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(await m.info(section))?.[1] ?? 0);
    return n;
  };
  const dbsize = async () => {
    const c = topo.client;
    if ('nodes' in c) return (await Promise.all(c.nodes('master').map((n) => n.dbsize()))).reduce((a, b) => a + b, 0);
    return c.dbsize();
  };

  it('reads, writes with a TTL, checks and unlinks keys of many slots (no CROSSSLOT)', async () => {
    const list = Array.from({ length: 50 }, (_, i) => `tenant_config:t${i}`);
    for (const k of list) await store.set(k, `v-${k}`, 60);
    expect(await store.get('tenant_config:t3')).toBe('v-tenant_config:t3');
    expect(await store.get('tenant_config:none')).toBeNull();
    expect(await topo.client.ttl('tenant_config:t3')).toBeGreaterThan(50);
    expect(await store.mget([...list.slice(0, 3), 'nope'])).toEqual(['v-tenant_config:t0', 'v-tenant_config:t1', 'v-tenant_config:t2', null]);
    expect(await store.exists(['tenant_config:t1', 'nope'])).toEqual([true, false]);
    expect([await store.typeOf('tenant_config:t1'), await store.typeOf('nope')]).toEqual(['string', 'none']);
    expect(await store.unlink([...list, 'nope'])).toEqual([...list.map(() => 1), 0]);
    expect(await dbsize()).toBe(0);
  });

  it('writes over a key of another type by freeing it in the background (SET over a big hash freed it inside the call)', async () => {
    const c = topo.client;
    const lazyfreed = () => infoSum('memory', 'lazyfreed_objects');
    await c.eval(FILL_HASH_5000, 1, 'tenant_config:ahash');
    const before = await lazyfreed();
    await store.set('tenant_config:ahash', '{"v":2}', 60);
    expect(await store.get('tenant_config:ahash')).toBe('{"v":2}');
    expect(await c.ttl('tenant_config:ahash')).toBeGreaterThan(50);
    // Freed by the lazy-free thread (UNLINK), not inside the write: counted once that thread is done.
    expect(await movedPast(lazyfreed, before)).toBe(before + 1);
  });

  it('a cache fill (setUnlessLate) writes with its TTL when run on time, keys of many slots, over a key of another type too', async () => {
    const list = Array.from({ length: 20 }, (_, i) => `permissions:f${i}`);
    for (const k of list) expect(await store.setUnlessLate!(k, `{"v": "${k}"}`, 60)).toBe(true);
    expect(await store.mget(list.slice(0, 2))).toEqual(['{"v": "permissions:f0"}', '{"v": "permissions:f1"}']);
    expect(await topo.client.ttl(list[5])).toBeGreaterThan(50);
    await topo.client.eval(FILL_HASH_5000, 1, 'tenant_config:fhash');
    expect(await store.setUnlessLate!('tenant_config:fhash', '{"v":3}', 60)).toBe(true);
    expect(await store.get('tenant_config:fhash')).toBe('{"v":3}');
    expect(await store.unlink([...list, 'tenant_config:fhash'])).toEqual([...list.map(() => 1), 1]);
  });

  it('reads a key of another type as a miss, alone and among others (a healthy server is not a failing one)', async () => {
    await topo.client.hset('tenant_config:ahash', 'a', 'b');
    await topo.client.set('tenant_config:plain', 'v');
    // Before: WRONGTYPE failed the read, and the Cache marked Redis down for every tenant; verify exited 3.
    expect(await store.get('tenant_config:ahash')).toBeNull();
    expect(await store.mget(['tenant_config:plain', 'tenant_config:ahash', 'tenant_config:none'])).toEqual(['v', null, null]);
    const many = Array.from({ length: 1200 }, (_, i) => (i === 700 ? 'tenant_config:ahash' : `tenant_config:plain`));
    expect((await store.mget(many)).filter((v) => v === null)).toHaveLength(1);
  });

  it('checks and unlinks thousands of keys in batches, answering per key in order (a binary name too)', async () => {
    // More keys than one batch (1,000), every third missing, one name that is not UTF-8.
    const present = Array.from({ length: 2500 }, (_, i) => `dashboard_kpis:t${i}`).filter((_, i) => i % 3 !== 0);
    await seed([...present, BINARY_KEY]);
    const asked: Array<string | Buffer> = [...Array.from({ length: 2500 }, (_, i) => `dashboard_kpis:t${i}`), BINARY_KEY];
    const want = asked.map((k) => (typeof k !== 'string' || present.includes(k) ? 1 : 0));
    expect((await store.exists(asked.slice(0, 2500) as string[])).map(Number)).toEqual(want.slice(0, 2500));
    expect(await store.unlink(asked)).toEqual(want);
    expect(await dbsize()).toBe(0);
    expect(await store.unlink(asked)).toEqual(asked.map(() => 0));
  });

  it('unlinks a key only while it still holds the value read (keys of many slots, a rewritten one, a missing one, another type)', async () => {
    const list = Array.from({ length: 30 }, (_, i) => `tenant_config:u${i}`);
    for (const k of list) await topo.client.set(k, `old-${k}`);
    await topo.client.set(list[1], 'rewritten by a service');
    await topo.client.del(list[2]);
    await topo.client.rpush('permissions:alist', 'x');
    const asked = [...list.map((k) => ({ key: k, value: `old-${k}` })), { key: 'permissions:alist', value: 'x' }];
    const want = [...list.map((_, i) => (i === 1 || i === 2 ? 0 : 1)), 0];
    expect(await store.unlinkIfUnchanged!(asked)).toEqual(want);
    expect(await topo.client.get(list[1])).toBe('rewritten by a service');
    for (const k of [list[0], list[3], list[29]]) expect(await topo.client.exists(k)).toBe(0);
    expect(await topo.client.exists('permissions:alist')).toBe(1);
  });

  it('unlinks a value of 1 MB still as read without sending it back whole (a 10 MB value took 51 ms of server in one call); a changed length, head or tail is left', async () => {
    const c = topo.client;
    const netIn = () => infoSum('stats', 'total_net_input_bytes');
    const big = `{"a":"${'é'.repeat(300_000)}${'x'.repeat(400_000)}"}`;
    const keysOf = ['tenant_config:big1', 'tenant_config:big2', 'tenant_config:big3', 'tenant_config:big4'];
    await c.set(keysOf[0], big);
    await c.set(keysOf[1], big.slice(0, -3) + 'y"}');
    await c.set(keysOf[2], 'z' + big.slice(1));
    await c.set(keysOf[3], big + ' ');
    const before = await netIn();
    expect(await store.unlinkIfUnchanged!(keysOf.map((key) => ({ key, value: big })))).toEqual([1, 0, 0, 0]);
    // Four values of 1 MB compared: a few KB each on the wire, not 4 MB (the no-scripting user reads them: MGET).
    if (!name.includes('no-scripting')) expect((await netIn()) - before).toBeLessThan(100_000);
    expect(await c.exists(keysOf[0])).toBe(0);
    for (const k of keysOf.slice(1)) expect(await c.exists(k)).toBe(1);
  });

  it('counts every family key exactly, and nothing outside the families', async () => {
    const tenants = Array.from({ length: 300 }, (_, i) => `tenant${i}`);
    await seed([...tenants.flatMap(owned), ...FOREIGN, BINARY_KEY]);
    const rules = keys.rules();
    const r = await store.sweep({ rules, action: 'count' });
    const by = Object.fromEntries(rules.groups.map((g, i) => [g, r.groups[i]]));
    expect(by).toMatchObject({ tenant_config: 301, permissions: 300, dashboard_kpis: 300, dashboard_trends: 300, forecast_demand: 300, app_cache: 300, products: 0 });
    expect(r.complete).toBe(true);
    // What the rules looked at: every family key, not the foreign keys the server's prefilter dropped (sessions:, other:, queue:).
    expect(r.scanned).toBeGreaterThanOrEqual(300 * 6 + 1);
    expect(r.scanned).toBeLessThan(300 * 6 + 1 + FOREIGN.length);
    expect(r.via).toBe(name === 'tls-acl-no-scripting' ? 'client' : 'script');
  });

  it('counts exactly at every keyspace size: two cursor lanes on one server meet without a gap or an overlap', async () => {
    const rules = keys.rules({ families: ['dashboard_kpis'] });
    let had = 0;
    for (const n of [...Array.from({ length: 301 }, (_, i) => i), 1000, 4097, 30_000]) {
      await seed(Array.from({ length: n - had }, (_, i) => `dashboard_kpis:n${had + i}`));
      had = n;
      const r = await store.sweep({ rules, action: 'count' });
      expect(r.groups[0], `${n} keys`).toBe(n);
    }
    expect(await dbsize()).toBe(30_000);
  });

  it('says how far through the keyspace each batch is, where the cursors tell (not on Cluster)', async () => {
    await seed([...Array.from({ length: 20_000 }, (_, i) => `tenant_config:p${i}`), ...Array.from({ length: 20_000 }, (_, i) => `other:${i}`)]);
    const walked: Array<number | undefined> = [];
    await store.sweep({ rules: keys.rules(), action: 'count', onBatch: (b) => void walked.push(b.walked) });
    expect(walked.length).toBeGreaterThan(2);
    if (name === 'cluster') {
      expect(walked.every((w) => w === undefined)).toBe(true);
      return;
    }
    const w = walked as number[];
    expect(w.every((x) => x >= 0 && x <= 1)).toBe(true);
    expect(w.every((x, i) => i === 0 || x >= w[i - 1])).toBe(true);
    expect(w.at(-1)).toBe(1);
    // Something in between: the walk is reported as it goes, not only at the end.
    expect(w.some((x) => x > 0.05 && x < 0.95)).toBe(true);
  });

  it('sweeps every key that is there throughout while the table grows and rehashes under the sweep', async () => {
    await seed(Array.from({ length: 20_000 }, (_, i) => `tenant_config:g${i}`));
    let batches = 0;
    // Foreign keys added from the second batch on: the table doubles (and rehashes) twice midway.
    const r = await store.sweep({
      rules: keys.rules(),
      action: 'unlink',
      onBatch: async () => {
        if (++batches > 1 && batches <= 11) await seed(Array.from({ length: 6000 }, (_, i) => `grow:${batches}:${i}`));
      },
    });
    expect(batches).toBeGreaterThan(11);
    expect(r.groups.reduce((a, b) => a + b, 0)).toBe(20_000);
    expect(await dbsize()).toBe(60_000);
  });

  it('collects every key that is there throughout, once, while another client keeps adding keys (the table grows mid-sweep)', async () => {
    const before = Array.from({ length: 3000 }, (_, i) => `tenant_config:b${i}`);
    await seed(before);
    let added = 0;
    const seen = new Map<string, number>();
    await store.sweep({
      rules: keys.rules(),
      action: 'collect',
      onBatch: async (b) => {
        for (const k of b.keys ?? []) seen.set(k.key.toString(), (seen.get(k.key.toString()) ?? 0) + 1);
        // Family keys too, so the table doubles and rehashes while both lanes walk it.
        if (added < 40_000) await seed(Array.from({ length: 4000 }, (_, i) => `tenant_config:a${added + i}`)), (added += 4000);
      },
    });
    expect(added).toBeGreaterThan(0);
    for (const k of before) expect(seen.get(k), k).toBe(1);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });

  it('lets the server drop foreign keys before the rules see them (a prefilter glob built from odd literal starts)', async () => {
    const odd = new KeySpace(buildFamilies({ ttl: 300, resources: {}, extra: [
      { name: 'dash', patterns: ['a-b^c:{tenant}'], ttl: 60 },
      { name: 'accent', patterns: ['\u00e9t\u00e9:{tenant}:*'], ttl: 60 },
    ] }));
    const mine = ['tenant_config:x', 'permissions:x', 'a-b^c:x', 'a-b^c:y', '\u00e9t\u00e9:x:1', '\u00e9t\u00e9:y:2'];
    const others = Array.from({ length: 500 }, (_, i) => `zz:${i}`);
    await seed([...mine, ...others, 'a-b^c', 'abc:x']);
    const r = await store.sweep({ rules: odd.rules(), action: 'count' });
    expect(Object.fromEntries(odd.rules().groups.map((g, i) => [g, r.groups[i]]))).toMatchObject({ tenant_config: 1, permissions: 1, dash: 2, accent: 2 });
    // What the rules looked at: far fewer keys than the server holds.
    expect(r.scanned).toBeLessThan(100);
  });

  it('unlinks the claimed keys (a non-UTF-8 one too) and leaves every foreign key', async () => {
    await seed([...owned('acme'), ...owned('acme2'), ...FOREIGN, BINARY_KEY]);
    const r = await store.sweep({ rules: keys.rules(), action: 'unlink' });
    expect(r.groups.reduce((a, b) => a + b, 0)).toBe(13);
    expect(await dbsize()).toBe(FOREIGN.length);
    for (const k of FOREIGN) expect(await topo.client.exists(k)).toBe(1);
  });

  it('stops after exactly `limit` deletions', async () => {
    await seed(Array.from({ length: 200 }, (_, i) => `tenant_config:l${i}`));
    const r = await store.sweep({ rules: keys.rules(), action: 'unlink', limit: 37 });
    expect(r.groups.reduce((a, b) => a + b, 0)).toBe(37);
    expect(r.complete).toBe(false);
    expect(await dbsize()).toBe(163);
  });

  it('collects one tenant\'s wildcard keys through a MATCH glob, never a neighbour\'s', async () => {
    await seed([...owned('acme'), ...owned('acme-eu'), ...owned('ac'), ...owned('xacme'), ...FOREIGN]);
    const got: string[] = [];
    await store.sweep({
      rules: keys.rules({ tenants: ['acme'], wildcardOnly: true }),
      match: keys.tenantScanGlob('acme'),
      action: 'collect',
      onBatch: (b) => {
        got.push(...(b.keys ?? []).map((k) => `${k.key.toString()}|${k.tenant.toString()}`));
      },
    });
    expect([...new Set(got)].sort()).toEqual(['dashboard_trends:acme:days:30|acme', 'fastapi_template:tenant-acme:user:1:v1|acme', 'forecast_demand:acme:sku:1:horizon:7|acme']);
  });

  it('profiles keys, bytes and TTL spread per family and tenant, and finds keys without a TTL', async () => {
    await seed(['tenant_config:p1', 'dashboard_kpis:p1'], 30);
    await seed(['dashboard_trends:p1:days:7'], 1800);
    await seed(['products:p1:page:1'], 7200);
    await seed(['permissions:p1', 'tenant_config:p2']);
    // A tenant id that is not UTF-8 stays its own bytes (latin1 binary string).
    await seed([Buffer.from([...Buffer.from('tenant_config:p'), 0xff, 0xfe])], 30);
    const rules = keys.rules();
    const rows = new Map<string, { keys: number; bytes: number; m: number; h: number; later: number; none: number }>();
    await store.sweep({
      rules,
      action: 'profile',
      onBatch: (b) => {
        b.profile?.forEach((group, tenant, start, end, bytes, ttl) => {
          const id = `${rules.groups[group]}/${tenant.toString('latin1', start, end)}`;
          const row = rows.get(id) ?? { keys: 0, bytes: 0, m: 0, h: 0, later: 0, none: 0 };
          row.keys += 1;
          row.bytes += bytes;
          if (ttl === 1) row.m++;
          if (ttl === 2) row.h++;
          if (ttl === 3) row.later++;
          if (ttl === 4) row.none++;
          rows.set(id, row);
        });
      },
    });
    expect(rows.get('tenant_config/p1')).toMatchObject({ keys: 1, m: 1, none: 0 });
    expect(rows.get('dashboard_trends/p1')).toMatchObject({ keys: 1, h: 1 });
    expect(rows.get('products/p1')).toMatchObject({ keys: 1, later: 1 });
    expect(rows.get('permissions/p1')).toMatchObject({ keys: 1, none: 1 });
    expect(rows.get('tenant_config/p2')).toMatchObject({ keys: 1, none: 1 });
    expect(rows.get('tenant_config/p\xff\xfe')).toMatchObject({ keys: 1, m: 1 });
    expect(rows.size).toBe(7);
    for (const r of rows.values()) expect(r.bytes).toBeGreaterThan(0);
  });

  it('profiles an aggregate of 100,000 elements from a bounded sample (no call walks it whole) and smaller ones exactly', async () => {
    // Before: every key was measured with MEMORY USAGE SAMPLES 0, which walks all of a key's elements:
    // one such call on a hash of a million fields blocked the server for 130-180 ms.
    const c = topo.client;
    const fill = `local n = tonumber(ARGV[1]) for i = 1, n, 1000 do local a = {} for j = i, math.min(n, i + 999) do a[#a + 1] = 'f' .. j a[#a + 1] = string.rep('v', j % 200) end redis.call('HSET', KEYS[1], unpack(a)) end return n`;
    await c.eval(fill, 1, 'dashboard_kpis:big1', 100_000);
    await c.hset('dashboard_alerts:big1', 'a', 'x'.repeat(100), 'b', 'y', 'c', 'z');
    await c.sadd('dashboard_stats:big1', ...Array.from({ length: 40 }, (_, i) => `member-${i}`));
    await c.rpush('products:big1', ...Array.from({ length: 50 }, (_, i) => 'e'.repeat(i * 20)));
    await c.zadd('pricing_trends:big1', ...Array.from({ length: 200 }, (_, i) => [i, `m${i}`]).flat());
    const rules = keys.rules();
    const bytes = new Map<string, number>();
    await store.sweep({
      rules,
      action: 'profile',
      onBatch: (b) => b.profile?.forEach((group, _tenant, _s, _e, n) => void bytes.set(rules.groups[group], (bytes.get(rules.groups[group]) ?? 0) + n)),
    });
    const exact = async (key: string) => Number(await c.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    for (const [family, key] of [['dashboard_alerts', 'dashboard_alerts:big1'], ['dashboard_stats', 'dashboard_stats:big1'], ['products', 'products:big1'], ['pricing_trends', 'pricing_trends:big1']]) {
      expect([family, bytes.get(family)]).toEqual([family, await exact(key)]);
    }
    const whole = await exact('dashboard_kpis:big1');
    const sampled = bytes.get('dashboard_kpis')!;
    expect(Math.abs(sampled - whole) / whole).toBeLessThan(0.05);
    // Values of 200 sizes: an estimate from a sample cannot land on the exact total; a walk of every field would.
    expect(sampled).not.toBe(whole);
  }, 60_000);

  it('counts, collects, profiles and reads while writes are paused (CLIENT PAUSE WRITE, as a failover does)', async () => {
    await seed([...['p1', 'p2', 'p3'].flatMap(owned), ...FOREIGN]);
    const masters = 'nodes' in topo.client ? topo.client.nodes('master') : [topo.client];
    // Longer than the store's deadline: a call held by the pause fails (scripts were held: they may write).
    await Promise.all(masters.map((m) => m.call('CLIENT', 'PAUSE', '4000', 'WRITE')));
    try {
      const rules = keys.rules();
      const count = await store.sweep({ rules, action: 'count' });
      expect(Object.fromEntries(rules.groups.map((g, i) => [g, count.groups[i]]))).toMatchObject({ tenant_config: 3, permissions: 3, app_cache: 3 });
      const got: string[] = [];
      await store.sweep({
        rules: keys.rules({ tenants: ['p2'], wildcardOnly: true }),
        match: keys.tenantScanGlob('p2'),
        action: 'collect',
        onBatch: (b) => void got.push(...(b.keys ?? []).map((k) => k.key.toString())),
      });
      expect(got.sort()).toEqual(['dashboard_trends:p2:days:30', 'fastapi_template:tenant-p2:user:1:v1', 'forecast_demand:p2:sku:1:horizon:7']);
      let profiled = 0;
      await store.sweep({ rules, action: 'profile', onBatch: (b) => b.profile?.forEach(() => void profiled++) });
      expect(profiled).toBe(18);
      expect(await store.exists(['tenant_config:p1', 'permissions:p3', 'tenant_config:none'])).toEqual([true, true, false]);
      expect(await store.mget(['tenant_config:p1', 'tenant_config:none'])).toEqual(['{"v":1}', null]);
    } finally {
      await Promise.all(masters.map((m) => m.call('CLIENT', 'UNPAUSE')));
    }
  });

  it('an aborted sweep stops between batches and says what it had done', async () => {
    await seed(Array.from({ length: 20000 }, (_, i) => `tenant_config:s${i}`));
    const controller = new AbortController();
    let batches = 0;
    const err = await store
      .sweep({
        rules: keys.rules(),
        action: 'unlink',
        signal: controller.signal,
        onBatch: () => {
          if (++batches === 1) controller.abort('SIGTERM');
        },
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(143);
    const done = (err as InterruptedError).progress!.done;
    expect(done).toBeGreaterThan(0);
    expect(await dbsize()).toBe(20000 - done);
  });

  it('reports the server: INFO per master, a PING round trip', async () => {
    const infos = await store.info();
    expect(infos.length).toBe(name === 'cluster' ? 3 : 1);
    expect(infos[0].redis_version).toMatch(/^\d+\./);
    expect(await store.ping()).toBeGreaterThan(0);
    expect(store.target).not.toMatch(/userpw|datapw|sentinelpw/);
  });
});

describe('CacheStore on one Redis server', () => {
  it('walks one server in two lanes: one chain of calls from cursor 0, one from cursor 1', async () => {
    const topo = await standaloneTopology();
    const store = await openIoredisStore(topo.spec);
    const seed = (list: string[]) => Promise.all(list.map((k) => topo.client.set(k, '{"v":1}')));
    await seed(Array.from({ length: 5000 }, (_, i) => `tenant_config:w${i}`));
    const c = topo.client as import('ioredis').Redis;
    await c.config('SET', 'slowlog-log-slower-than', '0');
    await c.config('SET', 'slowlog-max-len', '100000');
    await c.slowlog('RESET');
    try {
      expect((await store.sweep({ rules: keys.rules(), action: 'count' })).groups[0]).toBe(5000);
      const entries = (await c.slowlog('GET', 100000)) as Array<[number, number, number, Buffer[] | string[]]>;
      const starts = entries.map((e) => e[3].map(String)).filter((a) => /^EVAL/i.test(a[0]) && a[3] === 'count').map((a) => a[4]);
      expect(starts).toContain('0');
      expect(starts).toContain('1');
    } finally {
      store.close();
      await topo.stop();
    }
  });
});

describe('CacheStore faults', () => {
  it('a server killed in the middle of a sweep: BackendUnavailableError carrying what was deleted', async () => {
    const topo = await standaloneTopology();
    try {
      await topo.client.eval(`for i = 1, 200000 do redis.call('SET', 'tenant_config:k' .. i, 'x') end`, 0);
      const store = await openIoredisStore({ ...topo.spec, timeoutMs: 500 });
      let batches = 0;
      const err = await store
        .sweep({ rules: keys.rules(), action: 'unlink', onBatch: () => void (++batches === 3 && topo.servers[0].proc.kill('SIGKILL')) })
        .catch((e) => e);
      store.close();
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as BackendUnavailableError).progress?.done).toBeGreaterThan(0);
    } finally {
      await topo.stop();
    }
  });
});

describe('CacheStore profile for a user who may not run OBJECT', () => {
  it('sizes big aggregates by TYPE and length instead (it handed every key of 1 KB or more to the client), exactly as for a user who may', async () => {
    const topo = await standaloneTopology();
    try {
      const c = topo.client;

      await c.set('tenant_config:big', JSON.stringify({ a: 'x'.repeat(3000) }));
      await c.sadd('dashboard_stats:big', ...Array.from({ length: 40 }, (_, i) => `member-${i}`));
      await c.sadd('products:big', ...Array.from({ length: 300 }, (_, i) => `member-${i}`));
      const profile = async (store: CacheStore) => {
        const rules = keys.rules();
        const bytes: Record<string, number> = {};
        await store.sweep({ rules, action: 'profile', onBatch: (b) => b.profile?.forEach((g, _t, _s, _e, n) => void (bytes[rules.groups[g]] = (bytes[rules.groups[g]] ?? 0) + n)) });
        return bytes;
      };
      const admin = await openIoredisStore(topo.spec);
      const limited = await storeAs(topo, 'noobject', '~*', '+@all', '-object');
      const exactString = Number(await c.call('MEMORY', 'USAGE', 'tenant_config:big', 'SAMPLES', '0'));
      // What the client itself sends (not the script's own calls, which MONITOR tags "lua").
      const monitor = await (c as Redis).monitor();
      const sent: string[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        if (!/lua/i.test(source) && /^memory$/i.test(args[0] ?? '')) sent.push(args[2]);
      });
      try {
        const mine = await profile(limited);
        expect(mine).toEqual(await profile(admin));
        expect(mine).toMatchObject({ tenant_config: exactString });
        // Only the aggregate past the inline sample is measured from the client, by either user (the limited
        // one handed the string and the small set over too).
        expect([...new Set(sent)].sort()).toEqual(['products:big']);
      } finally {
        monitor.disconnect();
        admin.close();
        limited.close();
      }
    } finally {
      await topo.stop();
    }
  });
});

describe('CacheStore writes for a user limited to some keys', () => {
  it('a sweep page whose one UNLINK the ACL refuses: stops at the refusal, what it deleted counted exactly, the refused families at 0', async () => {
    const topo = await standaloneTopology();
    try {
      const c = topo.client;
      // Pages mixing the families: tenant_config may be deleted, permissions and products may only be read.
      const names = Array.from({ length: 300 }, (_, i) => [`tenant_config:t${i}`, `permissions:t${i}`, `products:t${i}:page:1`]).flat();
      await c.mset(...names.flatMap((k) => [k, '1']));
      const store = await storeAs(topo, 'configonly', '%RW~tenant_config:*', '%R~*', '+@all');
      try {
        const err = await store.sweep({ rules: keys.rules(), action: 'unlink' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        // The refusal, in the server's words (the client's own UNLINK of a refused key, after the script handed it over) ...
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect(err).toMatchObject({ reason: 'no-permission', message: expect.stringMatching(/NOPERM/) });
        // ... with what was done before it: the tenant_config keys deleted, counted one for one; no other family's.
        const configLeft = await c.exists(...names.filter((k) => k.startsWith('tenant_config:')));
        expect(configLeft).toBeLessThan(300);
        expect(await c.exists(...names.filter((k) => !k.startsWith('tenant_config:')))).toBe(600);
        const progress = (err as BackendUnavailableError).progress as { done: number; groups: Record<string, number> };
        expect(progress.groups).toMatchObject({ tenant_config: 300 - configLeft, permissions: 0, products: 0 });
        expect(progress.done).toBe(300 - configLeft);
      } finally {
        store.close();
      }
    } finally {
      await topo.stop();
    }
  });

  it('a cache fill for a user who may not run scripts, or TIME: a plain SET, written', async () => {
    const topo = await standaloneTopology();
    try {
      for (const [user, rules] of [['noscripts', ['~*', '+@all', '-@scripting']], ['notime', ['~*', '+@all', '-time']]] as const) {
        const store = await storeAs(topo, user, ...rules);
        try {
          expect(await store.setUnlessLate!('permissions:x', '{"v":1}', 60), user).toBe(true);
          expect(await topo.client.get('permissions:x'), user).toBe('{"v":1}');
          expect(await topo.client.ttl('permissions:x')).toBeGreaterThan(50);
          await topo.client.del('permissions:x');
        } finally {
          store.close();
        }
      }
    } finally {
      await topo.stop();
    }
  });

  it('a key it may not touch refuses that write only: later writes still free a big value in the background (one refusal turned UNLINK off for good)', async () => {
    const topo = await standaloneTopology();
    try {
      const c = topo.client;
      const store = await storeAs(topo, 'onlyconfig', '~tenant_config:*', '+@all');
      try {
        await expect(store.set('other:x', '{}', 60)).rejects.toThrow(/NOPERM/);
        await c.eval(FILL_HASH_5000, 1, 'tenant_config:ahash');
        const lazyfreed = async () => Number(/lazyfreed_objects:(\d+)/.exec(await c.info('memory'))?.[1] ?? 0);
        const before = await lazyfreed();
        await store.set('tenant_config:ahash', '{"v":2}', 60);
        expect(await c.get('tenant_config:ahash')).toBe('{"v":2}');
        expect(await movedPast(lazyfreed, before)).toBe(before + 1);
      } finally {
        store.close();
      }
    } finally {
      await topo.stop();
    }
  });
});
