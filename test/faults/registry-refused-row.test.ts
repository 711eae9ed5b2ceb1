import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { BIN, cleanEnv, freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startFakePostgrest, type FakePostgrest } from '../helpers/fake-postgrest.js';

/**
 * A services' tenants table with a rule of its own (a CHECK constraint, a trigger that RAISEs) refusing one
 * tenant's row: that tenant is the one error item, with the server's words, and every other tenant (of its
 * batch too, and of the batches after it) is written and has its cache invalidated. Before, the whole batch
 * of 500 failed with one message naming no tenant, the run stopped there, and a rerun stopped at the same
 * place; where the bad row was in the first batch, exit 3 "nothing was written" (a probe).
 */
describe.runIf(TEST_DATABASE_URL)('migrate-yaml into a registry that refuses one row (PostgreSQL: a CHECK constraint, a trigger)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let redis: RedisServer;
  let client: Redis;
  let admin: pg.Client;
  let ws: Workspace;
  const N = 1200;
  const id = (n: number) => `rr${String(n).padStart(4, '0')}`;

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    redis = await startRedis();
    client = new Redis(redis.url);
    ws = workspace({}, { registry: false });
    // The schema first (no tenants), then the services' own rules on it.
    expect((await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('ALTER TABLE tenants ADD CONSTRAINT currency_iso CHECK (currency IS NULL OR char_length(currency) = 3)');
    await admin.query(`CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = '${id(1100)}' THEN RAISE EXCEPTION 'policy: % is on hold', NEW.id; END IF; RETURN NEW; END $$`);
    await admin.query('CREATE TRIGGER refuse_one BEFORE INSERT OR UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION refuse_one()');
    for (let n = 1; n <= N; n++) {
      // Bad: one in the first batch, one in the second (the CHECK), one in the third (the trigger).
      const currency = n === 7 || n === 700 ? 'EURO' : 'EUR';
      ws.writeTenant(id(n), tenantYaml(id(n), `Tenant ${n}`, `  currency: ${currency}\n`));
    }
    const keys = Array.from({ length: N }, (_, i) => `tenant_config:${id(i + 1)}`);
    await client.mset(Object.fromEntries(keys.map((k) => [k, '{}'])));
  });
  afterAll(async () => {
    await admin?.end();
    client?.disconnect();
    await redis?.stop();
    ws?.cleanup();
    await db?.drop();
  });

  it('the refused tenants are the error items, named with the server\'s reason; the rest written and invalidated (exit 4); a rerun refuses them alone', async () => {
    const r = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout) as { items: Array<{ id: string; action: string; reason?: string; written?: boolean }>; counts: Record<string, number> };
    const errors = report.items.filter((i) => i.action === 'error');
    expect(errors.map((i) => i.id).sort()).toEqual([id(7), id(700), id(1100)]);
    expect(errors.find((i) => i.id === id(7))!.reason).toMatch(/^refused by the registry: .*violates check constraint "currency_iso"/);
    expect(errors.find((i) => i.id === id(1100))!.reason).toMatch(/^refused by the registry: .*policy: rr1100 is on hold/);
    expect(report.counts).toMatchObject({ create: N - 3, error: 3 });
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM tenants');
    expect(rows[0].n).toBe(N - 3);
    // Every written tenant's entry is gone; the refused ones' stay (nothing of theirs changed).
    expect(await client.dbsize()).toBe(3);
    expect(await client.exists(`tenant_config:${id(7)}`, `tenant_config:${id(700)}`, `tenant_config:${id(1100)}`)).toBe(3);
    const again = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(again.code, again.stderr).toBe(4);
    expect(JSON.parse(again.stdout).counts).toMatchObject({ unchanged: N - 3, error: 3 });
  });
});

/**
 * A review of the halving: the catalogue refused must hold back the subscriptions moved onto a tier only it
 * defines (they were written, granting nothing), a tenant refused must not have its subscription written
 * without it (they were split apart), and a run whose only failures are refusals is exit 4, not 2.
 */
describe.runIf(TEST_DATABASE_URL)('migrate-yaml: a refused catalogue or tenant row, with subscriptions (PostgreSQL)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let redis: RedisServer;
  let admin: pg.Client;
  let ws: Workspace;
  const TIERS = 'features: [has_ai, has_payroll]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: 5 }\n';
  const tenant = (id: string, tier: string, currency = 'EUR') => tenantYaml(id, `Tenant ${id}`, `  currency: ${currency}\nsubscription: { tier: ${tier}, status: active }\n`);

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    redis = await startRedis();
    ws = workspace({ tiers: TIERS, rc1: tenant('rc1', 'core'), rc2: tenant('rc2', 'core'), rc3: tenant('rc3', 'core') }, { registry: false });
    const first = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml'], { cwd: ws.dir });
    expect(first.code, first.stderr).toBe(0);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('ALTER TABLE permission_tiers ADD CONSTRAINT few_devices CHECK (max_devices IS NULL OR max_devices < 100)');
    await admin.query('ALTER TABLE tenants ADD CONSTRAINT currency_iso CHECK (currency IS NULL OR char_length(currency) = 3)');
  });
  afterAll(async () => {
    await admin?.end();
    await redis?.stop();
    ws?.cleanup();
    await db?.drop();
  });

  it('the refused catalogue holds back the subscription on its new tier; a refused tenant keeps its subscription unwritten; the rest written; exit 4 with each named', async () => {
    ws.writeTenant('tiers', `${TIERS}  enterprise: { features: [has_ai, has_payroll], max_devices: 500 }\n`);
    ws.writeTenant('rc1', tenant('rc1', 'enterprise'));
    ws.writeTenant('rc2', tenantYaml('rc2', 'Renamed', '  currency: EUR\nsubscription: { tier: pro, status: active }\n'));
    ws.writeTenant('rc3', tenant('rc3', 'pro', 'EURO'));
    const r = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(4);
    const items = JSON.parse(r.stdout).items as Array<{ kind: string; id: string; action: string; reason?: string; written?: boolean }>;
    const item = (kind: string, id: string) => items.find((i) => i.kind === kind && i.id === id);
    expect(item('catalogue', 'tiers')).toMatchObject({ action: 'error', reason: expect.stringMatching(/^refused by the registry: .*few_devices/), written: false });
    expect(item('subscription', 'rc1')).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/tiers\.yaml was refused by the registry/), written: false });
    expect(item('tenant', 'rc2')).toMatchObject({ action: 'update', written: true });
    expect(item('subscription', 'rc2')).toMatchObject({ action: 'update', written: true });
    expect(item('tenant', 'rc3')).toMatchObject({ action: 'error', reason: expect.stringMatching(/currency_iso/), written: false });
    expect(item('subscription', 'rc3')).toMatchObject({ action: 'error', written: false });
    const { rows } = await admin.query('SELECT business_id, tier FROM business_subscriptions ORDER BY business_id');
    expect(rows).toEqual([{ business_id: 'rc1', tier: 'core' }, { business_id: 'rc2', tier: 'pro' }, { business_id: 'rc3', tier: 'core' }]);
    expect((await admin.query("SELECT name FROM tenants WHERE id = 'rc2'")).rows[0].name).toBe('Renamed');
    // Each refused item named on stderr (one merged line named none).
    expect(r.stderr).toMatch(/^tenant rc3: refused by the registry: /m);
    expect(r.stderr).toMatch(/^catalogue tiers: refused by the registry: /m);
    // Only refusals left to fail: exit 4 (it was 2, a usage error), the rest unchanged.
    const again = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(again.code, again.stderr).toBe(4);
  });
});

/** A stop in the middle of the halving (a review: the tenants never written were reported as created). */
describe.runIf(TEST_DATABASE_URL)('migrate-yaml: SIGINT while a refused batch is being halved (PostgreSQL, a slow trigger)', () => {
  it('every item is written (its row is there) or says it was not; exit 130', async () => {
    const db = await freshPostgresDatabase();
    const redis = await startRedis();
    const ws = workspace({}, { registry: false });
    const admin = new pg.Client({ connectionString: db.url });
    try {
      expect((await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
      await admin.connect();
      await admin.query('ALTER TABLE tenants ADD CONSTRAINT currency_iso CHECK (currency IS NULL OR char_length(currency) = 3)');
      await admin.query("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$");
      await admin.query('CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION slow()');
      const n = 300;
      for (let i = 1; i <= n; i++) ws.writeTenant(`rs${String(i).padStart(3, '0')}`, tenantYaml(`rs${String(i).padStart(3, '0')}`, 'S', `  currency: ${i === 1 ? 'EURO' : 'EUR'}\n`));
      const child = spawn(process.execPath, [BIN, '--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout!.on('data', (d) => (stdout += d));
      const code = new Promise<number | null>((resolve) => child.on('close', resolve));
      // Once the halving has written something (the first whole batch was refused, then parts are tried).
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && Number((await admin.query('SELECT count(*)::int AS c FROM tenants')).rows[0].c) === 0) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGINT');
      expect(await code).toBe(130);
      const report = JSON.parse(stdout) as { items: Array<{ id: string; action: string; written?: boolean }> };
      const stored = new Set((await admin.query('SELECT id FROM tenants')).rows.map((r) => String(r.id)));
      expect(stored.size).toBeGreaterThan(0);
      expect(stored.size, 'the halving was not stopped midway').toBeLessThan(n - 1);
      for (const item of report.items.filter((i) => i.id.startsWith('rs'))) {
        if (stored.has(item.id)) expect(item, item.id).toMatchObject({ action: 'create', written: true });
        else expect(item.written, `${item.id} ${item.action}`).not.toBe(true);
        if (!stored.has(item.id)) expect(item.action, item.id).toBe('error');
      }
    } finally {
      await admin.end().catch(() => undefined);
      await redis.stop();
      ws.cleanup();
      await db.drop();
    }
  });
});

/**
 * Supabase has no transaction: a row refused after other writes of its batch had landed made the whole
 * batch "not confirmed written" (exit 3, its cache invalidated), and a rerun stopped at the same row every
 * time; a refused tiers.yaml (written last) stopped every rerun so. Now the store says what landed and which
 * item was refused, and the rest of the batch is written without it (a contract test: a local server
 * answering as PostgREST does, refusing as PostgreSQL's CHECK constraints would).
 */
describe('migrate-yaml into Supabase refusing one row amid a batch (no transaction)', () => {
  let fake: FakePostgrest;
  let redis: RedisServer;
  let client: Redis;
  let ws: Workspace;
  const TIERS = 'features: [has_ai, has_payroll]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: 5 }\n';
  const ids = Array.from({ length: 12 }, (_, i) => `sa${String(i + 1).padStart(2, '0')}`);
  const tenant = (id: string, currency = 'EUR') => tenantYaml(id, `Tenant ${id}`, `  currency: ${currency}\nsubscription: { tier: core, status: active }\n`);

  beforeAll(async () => {
    fake = await startFakePostgrest();
    redis = await startRedis();
    client = new Redis(redis.url);
    ws = workspace({ tiers: TIERS, ...Object.fromEntries(ids.map((id) => [id, tenant(id, id === 'sa05' ? 'EURO' : 'EUR')])) }, { registry: false });
    // The services' rules: a currency of 3 letters, at most 99 devices per tier.
    fake.refuseWhen = (_method, p, body) => {
      const text = JSON.stringify(body ?? null);
      if (p.startsWith('/rest/v1/tenants') && text.includes('"currency":"EURO"')) return 'new row for relation "tenants" violates check constraint "currency_iso"';
      if (p.startsWith('/rest/v1/permission_tiers') && /"max_devices":\d{3,}/.test(text)) return 'new row for relation "permission_tiers" violates check constraint "few_devices"';
      return undefined;
    };
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    await fake?.close();
    ws?.cleanup();
  });

  const migrate = () => runCli(['--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir, env: { SUPABASE_URL: fake.url, SUPABASE_SERVICE_ROLE_KEY: fake.key } });
  type Item = { kind: string; id: string; action: string; reason?: string; written?: boolean; unconfirmed?: boolean };

  it('the refused tenant is the error item with the server\'s words; the rest of its batch is written and invalidated (exit 4, was 3); a rerun refuses it alone', async () => {
    await client.mset(Object.fromEntries(ids.map((id) => [`tenant_config:${id}`, '{}'])));
    const r = await migrate();
    expect(r.code, r.stderr).toBe(4);
    const items = JSON.parse(r.stdout).items as Item[];
    const item = (kind: string, id: string) => items.find((i) => i.kind === kind && i.id === id);
    expect(item('tenant', 'sa05')).toMatchObject({ action: 'error', reason: expect.stringMatching(/^refused by the registry: .*currency_iso/), written: false });
    expect(item('subscription', 'sa05')).toMatchObject({ action: 'error', written: false });
    expect(items.filter((i) => i.unconfirmed)).toEqual([]);
    for (const id of ids.filter((i) => i !== 'sa05')) {
      expect(item('tenant', id), id).toMatchObject({ action: 'create', written: true });
      expect(item('subscription', id), id).toMatchObject({ action: 'create', written: true });
    }
    expect(item('catalogue', 'tiers')).toMatchObject({ action: 'create', written: true });
    expect([...fake.rows.keys()].sort()).toEqual(ids.filter((i) => i !== 'sa05'));
    expect([...fake.tables.get('business_subscriptions')!.keys()].sort()).toEqual(ids.filter((i) => i !== 'sa05'));
    expect(r.stderr).toMatch(/^tenant sa05: refused by the registry: /m);
    // Every written tenant's entry is gone. The refused one's may be too: with no transaction, what a batch owes
    // the cache is recorded before its writes, for each of its items (a miss: the services read its row again).
    expect((await client.keys('tenant_config:*')).filter((k) => k !== 'tenant_config:sa05')).toEqual([]);
    const again = await migrate();
    expect(again.code, again.stderr).toBe(4);
    expect(JSON.parse(again.stdout).counts).toMatchObject({ unchanged: 2 * 11 + 1, error: 2 });
  });

  it('a refused tiers.yaml is its error item, the rest written; every rerun gets past it (it stopped each one, exit 3)', async () => {
    ws.writeTenant('tiers', `${TIERS}  enterprise: { features: [has_ai, has_payroll], max_devices: 500 }\n`);
    ws.writeTenant('sa02', tenantYaml('sa02', 'Renamed', '  currency: EUR\nsubscription: { tier: pro, status: active }\n'));
    for (let run = 0; run < 2; run++) {
      const r = await migrate();
      expect(r.code, r.stderr).toBe(4);
      const items = JSON.parse(r.stdout).items as Item[];
      const item = (kind: string, id: string) => items.find((i) => i.kind === kind && i.id === id);
      // Its features were written before its tiers were refused (no transaction): unconfirmed, its cache invalidated.
      expect(item('catalogue', 'tiers')).toMatchObject({ action: 'error', reason: expect.stringMatching(/^refused by the registry: .*few_devices.*\(after part of it was written\) \(its cache invalidated in case it was\)$/), written: false, unconfirmed: true });
      expect(items.filter((i) => i.unconfirmed).map((i) => i.kind)).toEqual(['catalogue']);
      expect(item('tenant', 'sa02')).toMatchObject({ action: run === 0 ? 'update' : 'unchanged' });
      expect(item('subscription', 'sa02')).toMatchObject({ action: run === 0 ? 'update' : 'unchanged' });
      expect(r.stderr).toMatch(/^catalogue tiers: refused by the registry: /m);
    }
    expect(fake.rows.get('sa02')).toMatchObject({ name: 'Renamed' });
    expect(fake.tables.get('business_subscriptions')!.get('sa02')).toMatchObject({ tier: 'pro' });
    expect([...fake.tables.get('permission_tiers')!.keys()].sort()).toEqual(['core', 'pro']);
  });
});

describe('migrate-yaml into Supabase: a tenant changed meanwhile whose subscription is refused', () => {
  it('the tenant stays the conflict it is, not "refused by the registry" with its subscription\'s words (a review)', async () => {
    const fake = await startFakePostgrest();
    const redis = await startRedis();
    const ids = ['cu01', 'cu02', 'cu03', 'cu04', 'cu05'];
    const TIERS = 'features: [has_ai, has_payroll]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: 5 }\n';
    const tenant = (id: string, name: string, sub: string) => tenantYaml(id, name, `  currency: EUR\nsubscription: ${sub}\n`);
    const ws = workspace({ tiers: TIERS, ...Object.fromEntries(ids.map((id) => [id, tenant(id, `Tenant ${id}`, '{ tier: core, status: active }')])) }, { registry: false });
    const migrate = () => runCli(['--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir, env: { SUPABASE_URL: fake.url, SUPABASE_SERVICE_ROLE_KEY: fake.key } });
    try {
      expect((await migrate()).code).toBe(0);
      for (const id of ids) ws.writeTenant(id, tenant(id, `Renamed ${id}`, `{ tier: pro, status: ${id === 'cu03' ? 'suspended' : 'active'} }`));
      // The services refuse a suspended subscription; someone else changes cu03's row just before this run's update.
      fake.refuseWhen = (_m, p, body) => (p.startsWith('/rest/v1/business_subscriptions') && JSON.stringify(body ?? null).includes('"status":"suspended"') ? 'new row for relation "business_subscriptions" violates check constraint "status_ok"' : undefined);
      let bumped = false;
      fake.failWhen = (method, p) => {
        if (!bumped && method === 'PATCH' && p.startsWith('/rest/v1/tenants') && p.includes('eq.cu03')) {
          bumped = true;
          Object.assign(fake.rows.get('cu03')!, { updated_at: new Date(Date.now() + 5000).toISOString(), name: 'someone else' });
        }
        return false;
      };
      const r = await migrate();
      expect(r.code, r.stderr).toBe(4);
      const items = JSON.parse(r.stdout).items as Array<{ kind: string; id: string; action: string; reason?: string; written?: boolean }>;
      const item = (kind: string, id: string) => items.find((i) => i.kind === kind && i.id === id);
      expect(item('tenant', 'cu03')).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/^changed in the registry while this run was planning/), written: false });
      expect(item('subscription', 'cu03')).toMatchObject({ action: 'error', reason: expect.stringMatching(/status_ok/), written: false });
      expect(r.stderr).not.toMatch(/^tenant cu03: refused/m);
      expect(fake.rows.get('cu03')).toMatchObject({ name: 'someone else' });
      for (const id of ['cu01', 'cu02', 'cu04', 'cu05']) expect(item('tenant', id)).toMatchObject({ action: 'update', written: true });
    } finally {
      await fake.close();
      await redis.stop();
      ws.cleanup();
    }
  });
});
