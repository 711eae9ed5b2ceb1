import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';

/**
 * More invalidations owed than are read at once (a killed 10,000-tenant migration owes 10,000):
 * `invalidate --pending --dry-run` lists the first 1,000 and says "at least" (it said 1000 owed when
 * 2,500 were), as `doctor` does.
 */
describe.runIf(TEST_DATABASE_URL)('owed invalidations past what is listed', () => {
  let ws: Workspace;
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  const id = uniq('owe');
  beforeAll(async () => {
    db = await freshPostgresDatabase();
    ws = workspace({ [id]: tenantYaml(id, 'Owing') }, { registry: false });
    expect((await runCli(['--registry', db.url, 'migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query("INSERT INTO tenantctl_outbox (kind, target) SELECT 'tenant', 'owed' || g FROM generate_series(1, 2500) g ON CONFLICT DO NOTHING");
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    ws?.cleanup();
    await db?.drop();
  });

  it('--pending --dry-run says "at least 1000", and its JSON says there are more', async () => {
    const plain = await runCli(['--registry', db.url, 'invalidate', '--pending', '--dry-run'], { cwd: ws.dir });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/at least 1000 invalidation\(s\) \(the first 1000 listed\) owed by earlier writes/);
    const json = await runCli(['--registry', db.url, 'invalidate', '--pending', '--dry-run', '--json'], { cwd: ws.dir });
    const doc = JSON.parse(json.stdout);
    expect(doc.owed).toHaveLength(1000);
    expect(doc.more).toBe(true);
  });

  it('exactly 1000 owed is 1000, not "at least"', async () => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('DELETE FROM tenantctl_outbox');
      await c.query("INSERT INTO tenantctl_outbox (kind, target) SELECT 'tenant', 'owed' || g FROM generate_series(1, 1000) g");
    } finally {
      await c.end();
    }
    const plain = await runCli(['--registry', db.url, 'invalidate', '--pending', '--dry-run'], { cwd: ws.dir });
    expect(plain.stderr).toMatch(/^1000 invalidation\(s\) owed by earlier writes/m);
    const json = JSON.parse((await runCli(['--registry', db.url, 'invalidate', '--pending', '--dry-run', '--json'], { cwd: ws.dir })).stdout);
    expect(json.owed).toHaveLength(1000);
    expect(json.more).toBeUndefined();
  });

  const sql = async (text: string) => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(text)).rows;
    } finally {
      await c.end();
    }
  };

  it('with Redis down --pending does nothing and clears nothing: every owed row stays for the next try (exit 3)', async () => {
    await sql('DELETE FROM tenantctl_outbox');
    await sql("INSERT INTO tenantctl_outbox (kind, target) VALUES ('tenant', 'keep1'), ('permissions', 'keep2')");
    const r = await runCli(['--registry', db.url, 'invalidate', '--pending', '--redis-url', 'redis://127.0.0.1:1', '--json'], { cwd: ws.dir });
    expect(r.code).toBe(3);
    // The error in the document too (it had none: a probe).
    expect(JSON.parse(r.stdout)).toMatchObject({ owed: { status: 'failed', pending: 2 }, error: expect.stringMatching(/Redis/) });
    expect((await sql('SELECT count(*)::int AS n FROM tenantctl_outbox'))[0].n).toBe(2);
  });

  it('more owed than one page (10,000) with Redis down: migrate-yaml says "at least", in its warning and its JSON (it said 10000 with 15,000 owed)', async () => {
    await sql('DELETE FROM tenantctl_outbox');
    await sql("INSERT INTO tenantctl_outbox (kind, target) SELECT 'tenant', 'owed' || g FROM generate_series(1, 10500) g");
    ws.writeTenant(id, tenantYaml(id, 'Owing, renamed'));
    const r = await runCli(['--registry', db.url, 'migrate-yaml', '--json', '--redis-url', 'redis://127.0.0.1:1'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/; at least 10000 invalidation\(s\) are recorded in the registry/);
    expect(JSON.parse(r.stdout)).toMatchObject({ pendingInvalidations: 10000, pendingAtLeast: true });
    expect((await sql('SELECT count(*)::int AS n FROM tenantctl_outbox'))[0].n).toBe(10501);
  });

  it('three invalidate --pending runs at once: what they say they did adds up to what was owed (each said all of it)', async () => {
    const { startRedis } = await import('../helpers/redis-server.js');
    const server = await startRedis();
    try {
      await sql('DELETE FROM tenantctl_outbox');
      await sql("INSERT INTO tenantctl_outbox (kind, target) SELECT 'tenant', 'drain' || g FROM generate_series(1, 3000) g");
      const runs = await Promise.all([1, 2, 3].map(() => runCli(['--registry', db.url, 'invalidate', '--pending', '--json', '--redis-url', server.url], { cwd: ws.dir })));
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      const done = runs.map((r) => JSON.parse(r.stdout).owed.done as number);
      expect(done.reduce((a, b) => a + b, 0), JSON.stringify(done)).toBe(3000);
      // None of those tenants had a key: none deleted, said so.
      for (const r of runs) expect(JSON.parse(r.stdout).owed.deleted).toBe(0);
      expect((await sql('SELECT count(*)::int AS n FROM tenantctl_outbox'))[0].n).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('an owed row naming no valid target (written by hand: \'acme*\') is dropped with a warning; the valid ones are done (it stopped every drain, exit 2)', async () => {
    const { startRedis } = await import('../helpers/redis-server.js');
    const server = await startRedis();
    try {
      await sql('DELETE FROM tenantctl_outbox');
      await sql("INSERT INTO tenantctl_outbox (kind, target) VALUES ('tenant', 'acme*'), ('tenant', 'good1'), ('bogus', 'x')");
      const { Redis } = await import('ioredis');
      const redis = new Redis(server.url);
      await redis.set('tenant_config:good1', '{}');
      const r = await runCli(['--registry', db.url, 'invalidate', '--pending', '--redis-url', server.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/2 owed invalidation\(s\) name no valid target \(tenant "acme\*", bogus "x"\): dropped/);
      expect(await redis.exists('tenant_config:good1')).toBe(0);
      // The keys it deleted are said (the three rows cleared, one key; it said the invalidations only; piped, an empty table read as nothing deleted).
      expect(r.stderr).toMatch(/^done: 3 invalidation\(s\) owed by earlier writes, 1 key deleted$/m);
      await redis.set('tenant_config:good1', '{}');
      await redis.set('permissions:good1', '{}');
      await sql("INSERT INTO tenantctl_outbox (kind, target) VALUES ('tenant', 'good1'), ('permissions', 'good1')");
      const json = await runCli(['--registry', db.url, 'invalidate', '--pending', '--json', '--redis-url', server.url], { cwd: ws.dir });
      expect(JSON.parse(json.stdout).owed).toEqual({ status: 'done', done: 2, pending: 0, deleted: 2 });
      redis.disconnect();
      expect((await sql('SELECT count(*)::int AS n FROM tenantctl_outbox'))[0].n).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

describe('owed invalidations with the registry out of reach', () => {
  it('invalidate --pending (and its dry run) is exit 3, not "nothing owed" with exit 0: the registry is what it reads', async () => {
    const ws = workspace({}, { registry: false });
    try {
      const registry = ['--registry', 'postgres://postgres@127.0.0.1:1/nowhere', '--registry-timeout', '1000'];
      const run = await runCli([...registry, 'invalidate', '--pending', '--redis-url', 'redis://127.0.0.1:1'], { cwd: ws.dir });
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(/^error: invalidations owed by earlier writes not checked: .*127\.0\.0\.1:1/m);
      expect(run.stderr).not.toMatch(/nothing owed/);
      // Nor on stdout, in any format (a probe: -o json printed {"owed":{"done":0,"pending":0}}, piped an empty table).
      for (const format of [['--json'], ['-o', 'yaml'], ['-o', 'plain']]) {
        const r = await runCli([...registry, 'invalidate', '--pending', '--redis-url', 'redis://127.0.0.1:1', ...format], { cwd: ws.dir });
        expect(r.code, r.stderr).toBe(3);
        expect(r.stdout, format.join(' ')).toBe('');
      }
      for (const format of [[], ['--json']]) {
        const dry = await runCli([...registry, 'invalidate', '--pending', '--dry-run', ...format], { cwd: ws.dir });
        expect(dry.code, dry.stderr).toBe(3);
        expect(dry.stdout).toBe('');
        expect(dry.stderr).not.toMatch(/nothing owed/);
      }
      // An unusable registry setting from the environment too (it was exit 0, "nothing owed").
      const mysql = await runCli(['invalidate', '--pending', '--dry-run'], { cwd: ws.dir, env: { DATABASE_URL: 'mysql://u:p@h/db' } });
      expect(mysql.code, mysql.stderr).toBe(2);
      expect(mysql.stderr).not.toMatch(/nothing owed/);
    } finally {
      ws.cleanup();
    }
  });
});
