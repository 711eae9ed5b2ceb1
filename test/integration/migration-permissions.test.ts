import type { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import { migrationExitCode } from '../../src/services/migration.js';
import { Tenantctl } from '../../src/tenantctl.js';
import { tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';

const TIERS = 'features: [has_payroll, has_ai]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: null }\n';

describe('migrate-yaml with tiers.yaml and subscription blocks', () => {
  let ws: Workspace;
  let store: SqlRegistryStore;
  // Its own server: a catalogue change invalidates every permissions:* key.
  const own = useOwnRedis();
  let redis: Redis;
  beforeEach(async () => {
    redis = own.client;
    ws?.cleanup();
    await store?.close();
    ws = workspace({}, { registry: false });
    store = await openPgliteStore(undefined);
    await store.ensureSchema();
  });
  // The last test's workspace and store too (each run left a directory in the temporary folder).
  afterAll(async () => {
    ws?.cleanup();
    await store?.close();
  });
  const tool = () => new Tenantctl({ flags: { redisUrl: own.server.url, tenantsDir: ws.tenantsDir }, env: { XDG_CACHE_HOME: inject('cacheHome') }, registry: store });

  it('plans and loads the catalogue and subscriptions, idempotently, invalidating permissions', async () => {
    const id = uniq('sub');
    ws.writeTenant('tiers', TIERS);
    ws.writeTenant(id, tenantYaml(id, 'S', 'subscription: { tier: core, status: active, overrides: { has_payroll: true, max_devices: 3 } }\n'));
    await redis.set(`permissions:${id}`, JSON.stringify({ granted_features: [], tier: 'stale', status: 'active', demo_expires_at: null, device_limit: 0 }));
    const t = tool();
    const plan = await t.migration.run({ dryRun: true });
    expect(plan.items.map((i) => `${i.kind}:${i.id}:${i.action}`)).toEqual(['catalogue:tiers:create', `tenant:${id}:create`, `subscription:${id}:create`]);
    expect(await store.getSubscription(id)).toBeUndefined();
    // Files named from the instance's cwd (they were named from the process's: ../../tmp/...).
    const here = new Tenantctl({ cwd: ws.dir, flags: { redisUrl: own.server.url }, env: { XDG_CACHE_HOME: inject('cacheHome') }, registry: store });
    try {
      expect((await here.migration.run({ dryRun: true })).items.find((i) => i.id === id)?.file).toBe(`tenants/${id}.yaml`);
    } finally {
      await here.close();
    }

    const applied = await t.migration.run();
    expect(migrationExitCode(applied)).toBe(0);
    expect((await store.getCatalogue()).tiers.pro).toEqual({ name: 'pro', features: ['has_ai', 'has_payroll'], max_devices: null });
    expect(await store.getSubscription(id)).toMatchObject({ tier: 'core', status: 'active', overrides: { has_payroll: true, max_devices: 3 } });
    expect(await redis.exists(`permissions:${id}`)).toBe(0);
    expect((await t.permissions.get(id)).record).toMatchObject({ granted_features: ['has_ai', 'has_payroll'], device_limit: 3 });

    expect((await t.migration.run()).counts).toMatchObject({ create: 0, update: 0, unchanged: 3 });
    await t.close();
  });

  it('a tiers.yaml that drops a tier subscriptions are still on says so on the catalogue item, naming them (before: silently 0 devices)', async () => {
    const [kept, stranded] = [uniq('kept'), uniq('strand')];
    ws.writeTenant('tiers', TIERS);
    ws.writeTenant(kept, tenantYaml(kept, 'K', 'subscription: { tier: pro }\n'));
    const t = tool();
    expect(migrationExitCode(await t.migration.run())).toBe(0);
    // A subscription made in the registry alone (set-subscription), on the tier about to go.
    await t.subscriptions.setSubscription(stranded, { tier: 'core' });
    ws.writeTenant('tiers', 'features: [has_payroll, has_ai]\ntiers:\n  pro: { features: [has_ai, has_payroll], max_devices: null }\n');
    const plan = await t.migration.run({ dryRun: true });
    expect(plan.items.find((i) => i.kind === 'catalogue')!.warnings).toEqual([expect.stringMatching(new RegExp(`1 subscription\\(s\\) in the registry now are on tiers it does not have \\(${stranded}: core\\)`))]);
    const applied = await t.migration.run();
    const cat = applied.items.find((i) => i.kind === 'catalogue')!;
    expect(cat).toMatchObject({ action: 'update', written: true });
    expect(cat.warnings).toEqual([expect.stringMatching(new RegExp(`tiers\\.yaml: 1 subscription\\(s\\) are on tiers it does not have \\(${stranded}: core\\): they grant nothing and 0 devices until moved`))]);
    expect(await store.subscriptionsOffTiers(['pro'], 5)).toEqual({ total: 1, some: [{ business_id: stranded, tier: 'core' }] });
    await t.close();
  });

  it('tiers.yaml in conflict (a service changed the catalogue): a subscription moved onto a tier only the file defines is a conflict, not written onto a tier the registry lacks', async () => {
    const [moved, stays] = [uniq('moved'), uniq('stays')];
    ws.writeTenant('tiers', TIERS);
    ws.writeTenant(moved, tenantYaml(moved, 'M', 'subscription: { tier: pro }\n'));
    ws.writeTenant(stays, tenantYaml(stays, 'S', 'subscription: { tier: core }\n'));
    const t = tool();
    expect(migrationExitCode(await t.migration.run())).toBe(0);
    // A service edits the catalogue; the file adds a tier and moves a business onto it.
    await store.db.query("INSERT INTO permission_features (name) VALUES ('has_svc_feature')");
    ws.writeTenant('tiers', `${TIERS}  gold: { features: [has_ai, has_payroll], max_devices: 50 }\n`);
    ws.writeTenant(moved, tenantYaml(moved, 'M', 'subscription: { tier: gold }\n'));
    ws.writeTenant(stays, tenantYaml(stays, 'S', 'subscription: { tier: pro }\n'));
    for (const dryRun of [true, false]) {
      const r = await t.migration.run({ dryRun });
      const action = (kind: string, id: string) => r.items.find((i) => i.kind === kind && i.id === id);
      expect(action('catalogue', 'tiers')).toMatchObject({ action: 'conflict' });
      // Before: written (tier gold, which the registry lacks: nothing granted), no word.
      expect(action('subscription', moved)).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/tier gold is not in the registry's catalogue, and tiers.yaml was not written/) });
      // A tier the registry has is still written.
      expect(action('subscription', stays)?.action).toBe(dryRun ? 'update' : 'update');
      expect(migrationExitCode(r)).toBe(4);
    }
    expect(await store.getSubscription(moved)).toMatchObject({ tier: 'pro' });
    expect(await store.getSubscription(stays)).toMatchObject({ tier: 'pro' });
    await t.close();
  });

  it('a run that names tenants never changes the catalogue every business shares (--force overwrote a service\'s edit; an edited tiers.yaml dropped every permissions: entry)', async () => {
    const [named, other] = [uniq('named'), uniq('other')];
    ws.writeTenant('tiers', TIERS);
    ws.writeTenant(named, tenantYaml(named, 'N', 'subscription: { tier: core }\n'));
    ws.writeTenant(other, tenantYaml(other, 'O', 'subscription: { tier: core }\n'));
    const t = tool();
    // No catalogue yet: a named run creates it (nothing of anyone's is changed).
    const first = await t.migration.run({ ids: [named] });
    expect(first.items.find((i) => i.kind === 'catalogue')).toMatchObject({ action: 'create' });
    expect(migrationExitCode(await t.migration.run())).toBe(0);
    await t.permissions.get(other);
    expect(await redis.exists(`permissions:${other}`)).toBe(1);
    // A service edits a tier; tiers.yaml changes another and adds one, onto which the named tenant moves.
    await store.db.query("UPDATE permission_tiers SET max_devices = 10 WHERE name = 'pro'");
    ws.writeTenant('tiers', `${TIERS.replace('max_devices: 2', 'max_devices: 3')}  gold: { features: [has_ai], max_devices: 5 }\n`);
    ws.writeTenant(named, tenantYaml(named, 'N2', 'subscription: { tier: gold }\n'));
    for (const force of [false, true]) {
      const r = await t.migration.run({ ids: [named], force });
      const item = (kind: string) => r.items.find((i) => i.kind === kind);
      expect(item('catalogue')).toMatchObject({ action: 'skip', reason: expect.stringMatching(/shared by every business, it is changed only by a run that names no tenant/) });
      expect(item('tenant')).toMatchObject({ action: force ? 'unchanged' : 'update' });
      // Onto a tier the registry lacks: not written (it would grant nothing).
      expect(item('subscription')).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/tier gold is not in the registry's catalogue, and tiers.yaml was not written \(tenants were named\)/) });
      expect(migrationExitCode(r)).toBe(4);
    }
    expect((await store.getCatalogue()).tiers).toMatchObject({ pro: { max_devices: 10 }, core: { max_devices: 2 } });
    expect((await store.getCatalogue()).tiers.gold).toBeUndefined();
    expect(await redis.exists(`permissions:${other}`)).toBe(1);
    // A run naming none: the service's edit is a conflict; --force overwrites it.
    expect((await t.migration.run()).items.find((i) => i.kind === 'catalogue')).toMatchObject({ action: 'conflict' });
    expect((await t.migration.run({ force: true })).items.find((i) => i.kind === 'catalogue')).toMatchObject({ action: 'update' });
    expect((await store.getCatalogue()).tiers).toMatchObject({ pro: { max_devices: null }, gold: { max_devices: 5 } });
    await t.close();
  });

  it('a subscription changed with set-subscription since the last migration is a conflict unless --force', async () => {
    const id = uniq('edit');
    ws.writeTenant('tiers', TIERS);
    ws.writeTenant(id, tenantYaml(id, 'E', 'subscription: { tier: core }\n'));
    const t = tool();
    await t.migration.run();
    await t.subscriptions.setSubscription(id, { status: 'suspended' });
    const again = await t.migration.run();
    expect(again.items.find((i) => i.kind === 'subscription')).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/edited in the registry/), forceable: true });
    // The library's words name no CLI flag (the CLI adds "use --force to overwrite").
    expect(again.items.find((i) => i.kind === 'subscription')?.reason).not.toMatch(/--force/);
    expect((await store.getSubscription(id))!.status).toBe('suspended');
    expect(migrationExitCode(again)).toBe(4);
    await t.migration.run({ force: true });
    expect((await store.getSubscription(id))!.status).toBe('active');
    await t.close();
  });

  const demoTenant = (id: string, expiry: string) => tenantYaml(id, 'D', `subscription: { tier: demo, demo_expires_at: '${expiry}' }\n`);
  const DEMO_TIERS = `${TIERS}  demo: { features: [has_ai], max_devices: 1 }\n`;

  it('a changed subscription.demo_expires_at in the YAML is planned as an update and written (before: planned unchanged and never written, the hash left the expiry out)', async () => {
    const id = uniq('demo');
    ws.writeTenant('tiers', DEMO_TIERS);
    ws.writeTenant(id, demoTenant(id, '2031-01-01T00:00:00Z'));
    const t = tool();
    expect(migrationExitCode(await t.migration.run())).toBe(0);
    expect((await store.getSubscription(id))!.demo_expires_at).toBe('2031-01-01T00:00:00.000Z');

    ws.writeTenant(id, demoTenant(id, '2032-06-30T12:00:00Z'));
    const plan = await t.migration.run({ dryRun: true });
    expect(plan.items.find((i) => i.kind === 'subscription' && i.id === id)).toMatchObject({ action: 'update' });
    expect((await store.getSubscription(id))!.demo_expires_at).toBe('2031-01-01T00:00:00.000Z');
    const applied = await t.migration.run();
    expect(applied.items.find((i) => i.kind === 'subscription' && i.id === id)).toMatchObject({ action: 'update', written: true });
    expect((await store.getSubscription(id))!.demo_expires_at).toBe('2032-06-30T12:00:00.000Z');
    expect(Date.parse((await t.permissions.get(id)).record.demo_expires_at!)).toBe(Date.parse('2032-06-30T12:00:00Z'));
    expect((await t.migration.run()).counts).toMatchObject({ create: 0, update: 0, conflict: 0 });
    await t.close();
  });

  it('a demo_expires_at changed in the registry since the last migration is a conflict, and the expiry is kept (before: unchanged, the edit unseen)', async () => {
    const id = uniq('demoedit');
    ws.writeTenant('tiers', DEMO_TIERS);
    ws.writeTenant(id, demoTenant(id, '2031-01-01T00:00:00Z'));
    const t = tool();
    expect(migrationExitCode(await t.migration.run())).toBe(0);
    // A service extends the demo in the registry alone.
    await store.db.query("UPDATE business_subscriptions SET demo_expires_at = '2033-01-01T00:00:00Z' WHERE business_id = $1", [id]);
    const again = await t.migration.run();
    expect(again.items.find((i) => i.kind === 'subscription' && i.id === id)).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/edited in the registry/) });
    expect(migrationExitCode(again)).toBe(4);
    expect((await store.getSubscription(id))!.demo_expires_at).toBe('2033-01-01T00:00:00.000Z');
    await t.close();
  });

  it('changing tiers.yaml updates the catalogue and invalidates every cached permission record', async () => {
    ws.writeTenant('tiers', TIERS);
    const id = uniq('cat');
    ws.writeTenant(id, tenantYaml(id, 'C', 'subscription: { tier: core }\n'));
    const t = tool();
    await t.migration.run();
    await t.permissions.get(id);
    const other = uniq('other');
    await redis.set(`permissions:${other}`, '{}');
    ws.writeTenant('tiers', TIERS.replace('core: { features: [has_ai]', 'core: { features: [has_ai, has_payroll]'));
    const r = await t.migration.run();
    expect(r.items[0]).toMatchObject({ kind: 'catalogue', action: 'update', cacheInvalidated: true });
    expect(await redis.exists(`permissions:${id}`, `permissions:${other}`)).toBe(0);
    expect((await t.permissions.get(id)).record.granted_features).toEqual(['has_ai', 'has_payroll']);
    await t.close();
  });

  it('a bad subscription block or tier is file:line and nothing of that tenant is written', async () => {
    ws.writeTenant('tiers', TIERS);
    const [bad, good] = [uniq('bad'), uniq('good')];
    ws.writeTenant(bad, tenantYaml(bad, 'B', 'subscription:\n  tier: platinum\n'));
    ws.writeTenant(good, tenantYaml(good, 'G', 'subscription: { tier: pro }\n'));
    const t = tool();
    const r = await t.migration.run();
    expect(r.items.find((i) => i.id === bad)).toMatchObject({ kind: 'tenant', action: 'error', reason: expect.stringMatching(new RegExp(`${bad}\\.yaml:5: subscription\\.tier "platinum"`)) });
    expect(await store.getTenant(bad)).toBeUndefined();
    expect(await store.getSubscription(bad)).toBeUndefined();
    expect(await store.getSubscription(good)).toBeDefined();
    expect(migrationExitCode(r)).toBe(4);

    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  core: { features: [has_teleport] }\n');
    const broken = await t.migration.run({ ids: [good] });
    expect(broken.items[0]).toMatchObject({ kind: 'catalogue', action: 'error', reason: expect.stringMatching(/tiers\.yaml:3: tier core names feature "has_teleport"/) });
    expect(broken.items[1]).toMatchObject({ kind: 'tenant', action: 'error', reason: expect.stringMatching(/tiers\.yaml is invalid/) });
    await t.close();
  });
});

describe('a registry handed in that implements clearInvalidations as before (resolving to nothing)', () => {
  const own = useOwnRedis();
  it('counts the page it cleared (the drain said NaN)', async () => {
    const ws = workspace({}, { registry: false });
    const store = await openPgliteStore(undefined);
    try {
      await store.ensureSchema();
      await store.db.query("INSERT INTO tenantctl_outbox (kind, target) VALUES ('tenant', 'old1'), ('tenant', 'old2')");
      const clear = store.clearInvalidations.bind(store);
      // The interface as it was: Promise<void>.
      (store as { clearInvalidations: (d: Parameters<typeof clear>[0]) => Promise<unknown> }).clearInvalidations = async (done) => void (await clear(done));
      const t = new Tenantctl({ flags: { redisUrl: own.server.url, tenantsDir: ws.tenantsDir }, env: {}, registry: store });
      try {
        expect(await t.drainOwedInvalidations()).toMatchObject({ status: 'done', done: 2, pending: 0 });
      } finally {
        await t.close();
      }
    } finally {
      ws.cleanup();
      await store.close();
    }
  });
});
