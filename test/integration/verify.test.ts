import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import type { Registry } from '../../src/registry/registry-store.js';
import { Tenantctl } from '../../src/tenantctl.js';
import type { PopulatePolicy } from '../../src/services/tenant-config-service.js';
import { catalogueHash } from '../../src/services/migration.js';
import { CacheVerifier, type VerifyEntry } from '../../src/services/verify.js';
import { tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';
import { Cache } from '../../src/cache/cache.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';
import { openIoredisStore } from '../../src/cache/ioredis-store.js';
import { BackendUnavailableError, PartialFailureError } from '../../src/errors.js';

const catalogue = {
  features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'],
  tiers: {
    pilot_core: { name: 'pilot_core', features: [], max_devices: 2 },
    pilot_pro: { name: 'pilot_pro', features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'], max_devices: null },
  },
};

/**
 * §2 verify, in process, on an own redis-server (it sweeps every cached
 * entry, so no other test's keys may be there) and an in-memory PGlite
 * registry: entries equal to the rebuild `get-config --no-cache` does are ok,
 * changed ones stale with their fields (secrets never compared nor shown),
 * gone or inactive tenants orphan; --fix deletes exactly those; batches are bounded.
 */
describe('CacheVerifier on real Redis and PGlite', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  let store: SqlRegistryStore;
  /** The services' environment: their secrets. This process (the verifier) has none of them. */
  const servicesEnv = { OPENAI_API_KEY: 'sk-services-only', SMTP_HOST: 'smtp.services.example' };

  const tool = (env: NodeJS.ProcessEnv = {}, registry: Registry = store, populate?: PopulatePolicy) =>
    new Tenantctl({ flags: { redisUrl: own.server.url, tenantsDir: ws.tenantsDir, registry: 'memory:' }, env, cwd: ws.dir, registry, ...(populate && { populate: () => populate }) });
  const verifier = (t: Tenantctl, registry: () => Promise<Registry> = () => t.registry()) =>
    new CacheVerifier({ cache: t.cache, keys: t.keys, registry, source: t.source, env: t.env });

  /** What a service caches on a miss: the config it builds, secrets resolved from its environment, `_meta.source` only. */
  async function cacheAsServices(id: string) {
    const t = tool(servicesEnv);
    const { config } = await t.tenants.get(id, { noCache: true });
    const { _meta, ...rest } = config as { _meta: { source: string } };
    await own.client.set(`tenant_config:${id}`, JSON.stringify({ ...rest, _meta: { source: _meta.source } }), 'EX', 300);
    await t.close();
    return rest;
  }

  async function migrated(id: string, extra = '') {
    ws.writeTenant(id, tenantYaml(id, `Tenant ${id}`, extra));
    const t = tool();
    await t.tenants.save(id, t.source.load(id)!.config);
    await t.close();
  }

  async function subscribe(id: string, tier = 'pilot_pro', overrides: Record<string, boolean | number> = {}) {
    const current = await store.getSubscription(id);
    const { subscriptionVersion } = await import('../../src/registry/content-hash.js');
    await store.applyChanges({ subscriptions: [{ sub: { business_id: id, tier, status: 'active', demo_expires_at: null, overrides }, hash: null, expect: subscriptionVersion(current) }] });
  }

  const byKey = (entries: VerifyEntry[]) => Object.fromEntries(entries.map((e) => [e.key, e]));

  beforeAll(async () => {
    ws = workspace({}, { registry: false });
    store = await openPgliteStore(undefined);
    await store.ensureSchema();
    await store.applyChanges({ catalogue: { catalogue, hash: catalogueHash(catalogue), expect: null } });
  });
  afterAll(async () => {
    await store.close();
    ws.cleanup();
  });
  afterEach(async () => {
    await own.client.flushall();
  });

  const secretive = 'email:\n  primary: ops@x.example\n  smtp:\n    host: "${SMTP_HOST:-smtp.default.example}"\n    password: "${X_SMTP_PASSWORD}"\ninfrastructure:\n  openai: { model: gpt-4o-mini }\nbranding: { color: "#0a5" }\n';

  it('a cached value where the registry holds a ${VAR} is stale unless it is the reference or its resolution; a list that grew since is stale', async () => {
    const [host, list] = [uniq('vh'), uniq('vl')];
    await migrated(host, secretive);
    await migrated(list, 'features:\n  formats: [csv, xlsx]\n');
    const built = (await cacheAsServices(host)) as { email: { smtp: Record<string, unknown> } };
    await own.client.set(`tenant_config:${host}`, JSON.stringify({ ...built, email: { ...built.email, smtp: { ...built.email.smtp, host: 'evil.example' } }, _meta: { source: 'database' } }), 'EX', 300);
    const listed = (await cacheAsServices(list)) as { features: Record<string, unknown> };
    await own.client.set(`tenant_config:${list}`, JSON.stringify({ ...listed, features: { formats: ['csv'] }, _meta: { source: 'database' } }), 'EX', 300);
    const t = tool({ SMTP_HOST: 'smtp.services.example' });
    const report = await verifier(t).verify({ tenants: [host, list] });
    await t.close();
    const found = byKey(report.entries);
    expect(found[`tenant_config:${host}`]).toMatchObject({ status: 'stale', fields: [expect.objectContaining({ field: 'email.smtp.host', cached: 'evil.example' })] });
    expect(found[`tenant_config:${list}`]).toMatchObject({ status: 'stale', fields: [expect.objectContaining({ field: expect.stringMatching(/^features\.formats/) })] });
  });

  it('a YAML tenant\'s entry built by the services\' YAML 1.1 reader (yes -> true, 0755 -> 493) is ok; another value is stale', async () => {
    const [right, wrong] = [uniq('y11'), uniq('y11w')];
    // Keys too: `on:` is the key true to PyYAML, written "true" by json.dumps (a value under it differs as well).
    for (const id of [right, wrong]) ws.writeTenant(id, tenantYaml(id, 'Eleven', 'flags:\n  beta: yes\n  mode: 0755\n  name: plain\n  on:\n    email: no\n'));
    const t = tool();
    const { config } = await t.tenants.get(right, { noCache: true });
    expect(config).toMatchObject({ flags: { beta: 'yes', mode: 755, on: { email: 'no' } } });
    const services = (id: string, flags: Record<string, unknown>) =>
      own.client.set(`tenant_config:${id}`, JSON.stringify({ client: { id, name: 'Eleven' }, flags, _meta: { source: 'yaml' } }), 'EX', 300);
    await services(right, { beta: true, mode: 493, name: 'plain', true: { email: false } });
    await services(wrong, { beta: false, mode: 493, name: 'plain', true: { email: false } });
    const report = await verifier(t).verify({ tenants: [right, wrong] });
    await t.close();
    const found = byKey(report.entries);
    expect(found[`tenant_config:${right}`]).toBeUndefined();
    expect(found[`tenant_config:${wrong}`]).toMatchObject({ status: 'stale' });
    expect(report.summary).toMatchObject({ ok: 1, stale: 1 });
  });

  it('an entry nested thousands deep (anyone with access to the shared Redis can write one) is a miss to reads and stale to verify; --fix deletes it (a stack overflow ended both, exit 70)', async () => {
    const id = uniq('deep');
    await migrated(id);
    const deep = `{"client": {"id": "${id}", "name": "x"}, "deep": ${'['.repeat(5000)}1${']'.repeat(5000)}}`;
    await own.client.set(`tenant_config:${id}`, deep, 'EX', 300);
    const warnings: string[] = [];
    const t = new Tenantctl({ flags: { redisUrl: own.server.url, tenantsDir: ws.tenantsDir, registry: 'memory:' }, env: {}, cwd: ws.dir, registry: store, warn: (m) => warnings.push(m) });
    try {
      expect(await t.tenants.get(id)).toMatchObject({ source: 'database' });
      expect(warnings.join('\n')).toMatch(/holds a value nested deeper than 64 levels: read as a miss/);
      // The library filled the miss (its rule): the deep entry again, for verify.
      await own.client.set(`tenant_config:${id}`, deep, 'EX', 300);
      const report = await verifier(t).verify({ tenants: [id], fix: true });
      expect(byKey(report.entries)[`tenant_config:${id}`]).toMatchObject({ status: 'stale', fixed: true });
      expect(await own.client.exists(`tenant_config:${id}`)).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('a demo expiry is compared to the second: the services\' whole-second form is ok beside a registry fraction; another second is stale', async () => {
    const [whole, millis, other] = [uniq('dw'), uniq('dm'), uniq('do')];
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000);
    const fraction = new Date(at.getTime() + 750).toISOString();
    for (const id of [whole, millis, other]) {
      await store.applyChanges({ subscriptions: [{ sub: { business_id: id, tier: 'demo', status: 'active', demo_expires_at: fraction, overrides: {} }, hash: null, expect: null }] });
    }
    const { computePermissions } = await import('../../src/permissions/rules.js');
    const { servicesJson } = await import('../../src/json/services-json.js');
    const live = computePermissions({ business_id: whole, tier: 'demo', status: 'active', demo_expires_at: fraction, overrides: {} }, catalogue, new Date()).record;
    expect(live.granted_features.length).toBeGreaterThan(0);
    const record = (expiry: string) => servicesJson({ ...live, demo_expires_at: expiry });
    const secs = at.toISOString().slice(0, 19);
    await own.client.set(`permissions:${whole}`, record(`${secs}Z`), 'EX', 300);
    await own.client.set(`permissions:${millis}`, record(fraction), 'EX', 300);
    await own.client.set(`permissions:${other}`, record(`${new Date(at.getTime() + 1000).toISOString().slice(0, 19)}Z`), 'EX', 300);
    const t = tool();
    const report = await verifier(t).verify({ tenants: [whole, millis, other] });
    await t.close();
    const found = byKey(report.entries);
    expect(found[`permissions:${whole}`]).toBeUndefined();
    expect(found[`permissions:${millis}`]).toBeUndefined();
    expect(found[`permissions:${other}`]).toMatchObject({ status: 'stale', fields: [{ field: 'demo_expires_at' }] });
  });

  it('an entry equal to the get-config --no-cache rebuild is ok, however its secrets resolved, in the services\' form or the library\'s', async () => {
    const [db, yamlOnly, plain] = [uniq('db'), uniq('yo'), uniq('yaml')];
    await migrated(db, secretive);
    ws.writeTenant(yamlOnly, tenantYaml(yamlOnly, 'Only YAML', 'yaml_only: true\nfeatures: { x: 1 }\n'));
    ws.writeTenant(plain, tenantYaml(plain, 'Plain YAML', secretive));
    // The services resolved SMTP_HOST and OPENAI_API_KEY from their environment; the verifier has neither.
    const built = await cacheAsServices(db);
    expect(built).toMatchObject({ email: { smtp: { host: 'smtp.services.example' } }, infrastructure: { openai: { api_key: 'sk-services-only' } } });
    await cacheAsServices(yamlOnly);
    // The library asked to cache the stored form (references unresolved; its default before): also ok.
    const lib = tool(servicesEnv, store, 'stored');
    await lib.tenants.get(plain);
    await lib.close();
    expect(await own.client.get(`tenant_config:${plain}`)).toContain('${SMTP_HOST');

    const t = tool({ SMTP_HOST: 'smtp.services.example' });
    const report = await verifier(t).verify();
    await t.close();
    expect(report.entries).toEqual([]);
    expect(report.summary).toMatchObject({ checked: 3, ok: 3, stale: 0, orphan: 0, error: 0 });
  });

  it('a changed registry row is stale with the fields that differ; secrets are never compared nor shown', async () => {
    const id = uniq('chg');
    await migrated(id, secretive);
    await cacheAsServices(id);
    // Changed behind every cache: a name, a nested value, and a secret reference.
    await store.db.query(
      `UPDATE tenants SET name = 'Renamed', tenant_config = jsonb_set(jsonb_set(tenant_config, '{branding,color}', '"#fff"'), '{email,smtp,password}', '"\${OTHER_PW}"') WHERE id = $1`,
      [id],
    );
    const t = tool({ SMTP_HOST: 'smtp.services.example' });
    const report = await verifier(t).verify();
    await t.close();
    expect(report.summary).toMatchObject({ checked: 1, stale: 1 });
    const entry = byKey(report.entries)[`tenant_config:${id}`];
    expect(entry.status).toBe('stale');
    expect(entry.fields).toEqual([
      { field: 'client.name', cached: `Tenant ${id}`, current: 'Renamed' },
      { field: 'branding.color', cached: '#0a5', current: '#fff' },
    ]);
    expect(JSON.stringify(report)).not.toContain('sk-services-only');
    expect(JSON.stringify(report)).not.toMatch(/password|OTHER_PW/);
  });

  it('a changed URL value is shown with its credentials masked, on both sides', async () => {
    const id = uniq('url');
    await migrated(id, 'webhook: { url: "https://bot:hook-pw-1@hooks.example/in" }\n');
    await cacheAsServices(id);
    await store.db.query(`UPDATE tenants SET tenant_config = jsonb_set(tenant_config, '{webhook,url}', '"https://bot:hook-pw-2@hooks2.example/in"') WHERE id = $1`, [id]);
    const t = tool();
    const report = await verifier(t).verify();
    await t.close();
    expect(byKey(report.entries)[`tenant_config:${id}`].fields).toEqual([
      { field: 'webhook.url', cached: 'https://bot:****@hooks.example/in', current: 'https://bot:****@hooks2.example/in' },
    ]);
    expect(JSON.stringify(report)).not.toMatch(/hook-pw/);
  });

  it('orphans: a tenant in neither the registry nor YAML, and one whose registry status is not active', async () => {
    const [ghost, suspended, ok] = [uniq('ghost'), uniq('susp'), uniq('ok')];
    await migrated(suspended);
    await migrated(ok);
    await cacheAsServices(suspended);
    await cacheAsServices(ok);
    await own.client.set(`tenant_config:${ghost}`, JSON.stringify({ client: { id: ghost, name: 'Ghost' } }));
    await store.db.query("UPDATE tenants SET status = 'suspended' WHERE id = $1", [suspended]);
    const t = tool();
    const report = await verifier(t).verify();
    await t.close();
    const entries = byKey(report.entries);
    expect(entries[`tenant_config:${ghost}`]).toMatchObject({ status: 'orphan', reason: 'in neither the registry nor YAML' });
    expect(entries[`tenant_config:${suspended}`]).toMatchObject({ status: 'orphan', reason: 'registry status is suspended' });
    expect(entries[`tenant_config:${ok}`]).toBeUndefined();
    expect(report.summary).toMatchObject({ checked: 3, ok: 1, orphan: 2, stale: 0 });
  });

  it('entries are listed by key, not in SCAN order (which differs between a Cluster and one server for the same data)', async () => {
    const ghosts = Array.from({ length: 40 }, (_, i) => `zz${uniq('g')}${i}`);
    for (const g of ghosts) await own.client.set(`tenant_config:${g}`, JSON.stringify({ client: { id: g, name: 'Ghost' } }));
    const t = tool();
    const report = await verifier(t).verify();
    await t.close();
    const keys = report.entries.map((e) => e.key);
    expect(keys.filter((k) => ghosts.some((g) => k.endsWith(g)))).toHaveLength(ghosts.length);
    expect(keys).toEqual([...keys].sort());
    for (const g of ghosts) await own.client.del(`tenant_config:${g}`);
  });

  it('permissions: the computation check-permission does; a subscription change is stale, a business known only by its subscription is not an orphan', async () => {
    const [changed, same, subOnly, nobody] = [uniq('pchg'), uniq('psame'), uniq('psub'), uniq('pnone')];
    await migrated(changed);
    await migrated(same);
    for (const id of [changed, same, subOnly]) await subscribe(id, 'pilot_pro', { has_ai: false });
    const warm = tool();
    for (const id of [changed, same, subOnly, nobody]) await warm.permissions.get(id);
    await warm.close();
    expect(await own.client.exists(`permissions:${nobody}`)).toBe(1);
    await subscribe(changed, 'pilot_core');
    const t = tool();
    const report = await verifier(t).verify();
    await t.close();
    const entries = byKey(report.entries);
    expect(entries[`permissions:${changed}`]).toMatchObject({ status: 'stale' });
    expect(entries[`permissions:${changed}`].fields?.map((f) => f.field)).toEqual(['granted_features', 'tier', 'device_limit']);
    // A business known nowhere whose cached answer is "no subscription" (a typo checked): right, so ok (before: an orphan failing cron's verify).
    expect(entries[`permissions:${nobody}`]).toBeUndefined();
    expect(entries[`permissions:${same}`]).toBeUndefined();
    expect(entries[`permissions:${subOnly}`]).toBeUndefined();
    expect(report.summary).toMatchObject({ checked: 4, ok: 3, stale: 1, orphan: 0 });
    // One known nowhere that the cache says has features: an orphan.
    await own.client.set(`permissions:${nobody}`, JSON.stringify({ granted_features: ['has_ai'], tier: 'pilot_pro', status: 'active', demo_expires_at: null, device_limit: 5 }));
    const again = tool();
    const second = byKey((await verifier(again).verify({ tenants: [nobody] })).entries);
    await again.close();
    expect(second[`permissions:${nobody}`]).toMatchObject({ status: 'orphan', reason: 'in neither the registry nor YAML' });
  });

  it('fix deletes the stale and orphan entries and nothing else', async () => {
    const [stale, ok] = [uniq('fs'), uniq('fo')];
    const ghost = uniq('fg');
    await migrated(stale);
    await migrated(ok);
    await cacheAsServices(stale);
    await cacheAsServices(ok);
    await own.client.set(`tenant_config:${ghost}`, '{"client":{"id":"x"}}');
    await own.client.set(`dashboard_kpis:${stale}:days:30`, '{}');
    await own.client.set(`sessions:${stale}`, 'x');
    await store.db.query("UPDATE tenants SET name = 'New' WHERE id = $1", [stale]);
    const t = tool();
    const report = await verifier(t).verify({ fix: true });
    await t.close();
    expect(report.summary).toMatchObject({ stale: 1, orphan: 1, fixed: 2 });
    expect(report.entries.every((e) => e.fixed)).toBe(true);
    expect(await own.client.exists(`tenant_config:${stale}`, `tenant_config:${ghost}`)).toBe(0);
    expect(await own.client.exists(`tenant_config:${ok}`, `dashboard_kpis:${stale}:days:30`, `sessions:${stale}`)).toBe(3);
  });

  it('fix leaves an entry a service rewrote after it was judged (compare-and-delete), and does not report it', async () => {
    const id = uniq('rw');
    await migrated(id);
    await cacheAsServices(id);
    await store.db.query("UPDATE tenants SET name = 'Renamed' WHERE id = $1", [id]);
    const fresh = JSON.stringify({ rebuilt: 'by a service, just now' });
    let reads = 0;
    // The confirming read (the second) is where a service rebuilds the entry: after the verdict, before the delete.
    const rewriting = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getTenants') {
          return async (list: string[]) => {
            if (++reads === 2) await own.client.set(`tenant_config:${id}`, fresh);
            return target.getTenants(list);
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
    const t = tool({}, rewriting);
    const report = await verifier(t).verify({ fix: true });
    await t.close();
    expect(reads).toBe(2);
    expect(await own.client.get(`tenant_config:${id}`)).toBe(fresh);
    expect(report.summary).toMatchObject({ fixed: 0, stale: 0 });
    expect(report.entries).toEqual([]);
  });

  it('fix with a store of one\'s own that has no unlinkIfUnchanged (optional in the port): a GET then an UNLINK', async () => {
    const ghost = uniq('own');
    await own.client.set(`tenant_config:${ghost}`, '{"client":{"id":"x"}}');
    const t = tool();
    const plain = new Cache(parseRedisSpec({ url: { value: own.server.url, where: 'test' }, timeoutMs: 1000 }), {
      open: async (spec) => {
        const real = await openIoredisStore(spec);
        return new Proxy(real, {
          get(target, prop, receiver) {
            if (prop === 'unlinkIfUnchanged') return undefined;
            const v = Reflect.get(target, prop, receiver);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        });
      },
    });
    try {
      const report = await new CacheVerifier({ cache: plain, keys: t.keys, registry: () => t.registry(), source: t.source, env: t.env }).verify({ fix: true, tenants: [ghost] });
      expect(report.summary).toMatchObject({ orphan: 1, fixed: 1 });
      expect(await own.client.exists(`tenant_config:${ghost}`)).toBe(0);
    } finally {
      plain.close();
      await t.close();
    }
  });

  it('fix: Redis failing after entries were deleted is a partial failure carrying the report (what was deleted)', async () => {
    const ghosts = [uniq('pg1'), uniq('pg2'), uniq('pg3')];
    for (const g of ghosts) await own.client.set(`tenant_config:${g}`, '{"client":{"id":"x"}}');
    const t = tool();
    let mgets = 0;
    // Each batch of one key reads twice (MGET, then the confirming MGET): the third MGET is the second batch's first.
    const failing = new Cache(parseRedisSpec({ url: { value: own.server.url, where: 'test' }, timeoutMs: 1000 }), {
      open: async (spec) => {
        const real = await openIoredisStore(spec);
        return new Proxy(real, {
          get(target, prop, receiver) {
            if (prop === 'mget') {
              return async (list: string[]) => {
                if (++mgets === 3) throw new BackendUnavailableError('redis', 'Redis MGET failed: connection lost', { reason: 'failed' });
                return target.mget(list);
              };
            }
            const v = Reflect.get(target, prop, receiver);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        });
      },
    });
    try {
      const err = await new CacheVerifier({ cache: failing, keys: t.keys, registry: () => t.registry(), source: t.source, env: t.env })
        .verify({ fix: true, tenants: ghosts, batchSize: 1 })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(PartialFailureError);
      expect((err as PartialFailureError).message).toMatch(/after 1 stale or orphan entry was deleted \(run again to finish\): Redis MGET failed/);
      const partial = (err as PartialFailureError).partial as { summary: { fixed: number; orphan: number }; entries: VerifyEntry[] };
      expect(partial.summary).toMatchObject({ fixed: 1, orphan: 1 });
      expect(partial.entries.map((e) => e.key)).toEqual([`tenant_config:${ghosts[0]}`]);
      expect(await own.client.exists(`tenant_config:${ghosts[0]}`)).toBe(0);
      expect(await own.client.exists(`tenant_config:${ghosts[1]}`)).toBe(1);
    } finally {
      failing.close();
      await t.close();
    }
  });

  it('a key whose tenant part is not a valid id (tenant_config:café, 129 characters): an orphan unless the registry or the services\' YAML knows that id; --fix deletes the orphans only (they were never judged: never removed)', async () => {
    const cafe = Buffer.from('café', 'utf8');
    // And one the sweep's slot pattern lets through: 129 id characters (ids have at most 128).
    const long = 'l'.repeat(129);
    const keysOf = [Buffer.concat([Buffer.from('tenant_config:'), cafe]), Buffer.concat([Buffer.from('permissions:'), cafe]), Buffer.from(`tenant_config:${long}`), Buffer.from(`permissions:${long}`)];
    // Known ones: a registry row by a non-ASCII id, and a services' YAML file the tool does not read itself.
    const known = [Buffer.from('tenant_config:zürich'), Buffer.from('tenant_config:münchen')];
    await store.db.query(`INSERT INTO tenants (id, name, config_source) VALUES ('zürich', 'Zürich', 'database')`);
    writeFileSync(path.join(ws.tenantsDir, 'münchen.yaml'), 'client: { id: münchen, name: München }\n');
    for (const k of [...keysOf, ...known]) await own.client.set(k, '{"client":{"id":"x"}}');
    try {
      const t = tool();
      const report = await verifier(t).verify({ fix: true });
      await t.close();
      const foreign = report.entries.filter((e) => /caf|ü|^.{0,20}l{129}/.test(e.key) || e.key.includes(long));
      expect(foreign.map((e) => e.status)).toEqual(['orphan', 'orphan', 'orphan', 'orphan']);
      expect(foreign.every((e) => e.fixed)).toBe(true);
      expect(await own.client.exists(...keysOf)).toBe(0);
      expect(await own.client.exists(...known)).toBe(2);
    } finally {
      await own.client.del(...keysOf, ...known);
      await store.db.query(`DELETE FROM tenants WHERE id = 'zürich'`);
      rmSync(path.join(ws.tenantsDir, 'münchen.yaml'), { force: true });
    }
  });

  it('an entry of another type than a string (a hash, a list: the services\' GET fails WRONGTYPE) is stale, and --fix deletes it; it was "not cached" and left', async () => {
    const [h, l] = [uniq('wth'), uniq('wtl')];
    await own.client.hset(`tenant_config:${h}`, 'client', 'x');
    await own.client.rpush(`permissions:${l}`, 'a');
    await own.client.hset(`tenant_config:${h}x`, 'client', 'x');
    try {
      for (const tenants of [undefined, [h, l]]) {
        const t = tool();
        const report = await verifier(t).verify({ tenants });
        await t.close();
        const entries = byKey(report.entries);
        for (const key of [`tenant_config:${h}`, `permissions:${l}`]) {
          expect(entries[key], key).toMatchObject({ status: 'stale', reason: expect.stringMatching(/another type than a string.*WRONGTYPE/) });
        }
        if (tenants) expect(report.summary.not_cached).toBe(2);
      }
      const t = tool();
      const fixed = await verifier(t).verify({ tenants: [h, l], fix: true });
      await t.close();
      expect(fixed.summary).toMatchObject({ stale: 2, fixed: 2 });
      expect(await own.client.exists(`tenant_config:${h}`, `permissions:${l}`)).toBe(0);
      // Named tenants only: the neighbour's entry is not touched.
      expect(await own.client.type(`tenant_config:${h}x`)).toBe('hash');
    } finally {
      await own.client.del(`tenant_config:${h}`, `permissions:${l}`, `tenant_config:${h}x`);
    }
  });

  it('named tenants: only their keys are read; the ones not cached are counted', async () => {
    const [a, b, other] = [uniq('na'), uniq('nb'), uniq('nother')];
    await own.client.set(`tenant_config:${a}`, '{"client":{"id":"a"}}');
    await own.client.set(`tenant_config:${other}`, '{"client":{"id":"o"}}');
    const t = tool();
    const report = await verifier(t).verify({ tenants: [a, b] });
    await t.close();
    expect(report.entries.map((e) => e.key)).toEqual([`tenant_config:${a}`]);
    expect(report.summary).toMatchObject({ checked: 1, orphan: 1, not_cached: 3 });
  });

  it('bounded: every entry is checked in MGET batches, the registry read once per batch with at most a batch of ids', async () => {
    const n = 1234;
    const ids = Array.from({ length: n }, (_, i) => `bulk${i}`);
    const tx = own.client.multi();
    // Half of them exist in YAML and are cached as "no subscription" (ok); the other half, known nowhere, are cached with features (orphans).
    const none = JSON.stringify({ granted_features: [], tier: 'none', status: 'inactive', demo_expires_at: null, device_limit: 0 });
    const granted = JSON.stringify({ granted_features: ['has_ai'], tier: 'pilot_pro', status: 'active', demo_expires_at: null, device_limit: 5 });
    ids.forEach((id, i) => tx.set(`permissions:${id}`, i < n / 2 ? none : granted));
    await tx.exec();
    for (const id of ids.slice(0, n / 2)) ws.writeTenant(id, tenantYaml(id));
    const calls: number[] = [];
    const counting = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getTenants') return (list: string[]) => (calls.push(list.length), target.getTenants(list));
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
    const t = tool({}, counting);
    const report = await verifier(t).verify({ batchSize: 100 });
    await t.close();
    expect(report.summary).toMatchObject({ checked: n, ok: n / 2, orphan: n / 2, stale: 0 });
    expect(Math.max(...calls)).toBeLessThanOrEqual(100);
    // One read per batch, plus one per batch for confirming the orphans found in it.
    expect(calls.length).toBeLessThanOrEqual(2 * Math.ceil(n / 100) + 2);
  });

  it('an entry that looked stale only because the registry changed while it was read is confirmed, not reported', async () => {
    const id = uniq('race');
    await migrated(id);
    await cacheAsServices(id);
    let first = true;
    // The first read sees the row as a concurrent writer had it for a moment; the confirming read sees it settled.
    const racing = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getTenants') {
          return async (list: string[]) => {
            const rows = await target.getTenants(list);
            if (first && rows.has(id)) {
              first = false;
              rows.set(id, { ...rows.get(id)!, name: 'Mid-write' });
            }
            return rows;
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Registry;
    const t = tool({}, racing);
    const report = await verifier(t).verify();
    await t.close();
    expect(first).toBe(false);
    expect(report.summary).toMatchObject({ checked: 1, ok: 1, stale: 0 });
  });

  it('a malformed entry of a known tenant is stale, of a tenant known nowhere an orphan; a malformed tenant file leaves its entry undecided (error)', async () => {
    const [badJson, nowhere, badFile] = [uniq('bj'), uniq('nw'), uniq('bf')];
    await migrated(badJson);
    for (const id of [badJson, nowhere]) {
      await own.client.set(`tenant_config:${id}`, '{not json');
      await own.client.set(`permissions:${id}`, '{"granted_features": "all"}');
    }
    ws.writeTenant(badFile, 'client:\n  id: someone-else\n  name: X\n');
    await own.client.set(`tenant_config:${badFile}`, '{"client":{}}');
    const t = tool();
    const report = await verifier(t).verify();
    await t.close();
    const entries = byKey(report.entries);
    expect(entries[`tenant_config:${badJson}`]).toMatchObject({ status: 'stale', reason: 'not a JSON object' });
    expect(entries[`permissions:${badJson}`]).toMatchObject({ status: 'stale', reason: 'not a permission record' });
    // DESIGN's orphan is a tenant in neither the registry nor YAML, whatever its entry holds (an operator's probe: they were stale).
    expect(entries[`tenant_config:${nowhere}`]).toMatchObject({ status: 'orphan', reason: expect.stringMatching(/^in neither the registry nor YAML/) });
    expect(entries[`permissions:${nowhere}`]).toMatchObject({ status: 'orphan', reason: expect.stringMatching(/^in neither the registry nor YAML/) });
    expect(entries[`tenant_config:${badFile}`]).toMatchObject({ status: 'error', reason: expect.stringMatching(/does not match the file name/) });
    expect(report.summary.error).toBe(1);
  });

  it('fix deletes a malformed entry whose bytes are not UTF-8 (read with U+FFFD, it never equalled what the key holds: it was left, unreported, exit 0)', async () => {
    const id = uniq('nu');
    await migrated(id);
    const key = `tenant_config:${id}`;
    await own.client.set(key, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6e, 0x6f, 0x74, 0x20, 0x6a, 0x73, 0x6f, 0x6e]));
    const t = tool();
    const report = await verifier(t).verify({ fix: true, tenants: [id] });
    await t.close();
    expect(byKey(report.entries)[key]).toMatchObject({ status: 'stale', fixed: true });
    expect(report.summary).toMatchObject({ stale: 1, fixed: 1 });
    expect(await own.client.exists(key)).toBe(0);
  });
});
