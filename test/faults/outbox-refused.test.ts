import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * A role that may write tenants but not clear tenantctl's record of owed invalidations (DELETE on
 * tenantctl_outbox revoked): the write commits, its cache is invalidated, and the refusal to clear the
 * record is the run's failure, exit 4, not "cleared next time" (a rerun is refused the same way).
 * Argued from the code until now: this is the real server refusing at that exact point.
 */
describe.runIf(TEST_DATABASE_URL)('migrate-yaml whose role may not clear the outbox (PostgreSQL, DELETE revoked)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let redis: RedisServer;
  let client: Redis;
  let admin: pg.Client;
  let ws: Workspace;
  const role = uniq('tenantctl_noclear_');
  let roleUrl: string;

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    redis = await startRedis();
    client = new Redis(redis.url);
    ws = workspace({ oc1: tenantYaml('oc1', 'Name one'), oc2: tenantYaml('oc2', 'Name two') }, { registry: false });
    // With Redis, so that the first run owes nothing (the role's run starts from an empty outbox).
    expect((await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'noclear-pw'`);
    await admin.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
    await admin.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    await admin.query(`REVOKE DELETE ON tenantctl_outbox FROM ${role}`);
    const u = new URL(db.url);
    u.username = role;
    u.password = 'noclear-pw';
    roleUrl = u.toString();
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    ws?.cleanup();
    await admin?.end();
    await db?.drop();
    const server = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await server.connect();
    await server.query(`DROP ROLE IF EXISTS ${role}`);
    await server.end();
  });

  it('exit 4: the row is written and its cache invalidated; the record stays, and the refusal is said; a rerun: exit 3 naming the write rights', async () => {
    await client.set('tenant_config:oc1', '{"stale":true}');
    await client.set('tenant_config:oc2', '{"cached":true}');
    ws.writeTenant('oc1', tenantYaml('oc1', 'Name one, renamed'));
    const r = await runCli(['--registry', roleUrl, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/the cache of the 1 written item\(s\) was invalidated, but the registry refused to clear its record of those invalidations/);
    expect(r.stderr).not.toContain('noclear-pw');
    const report = JSON.parse(r.stdout);
    expect(report.items.find((i: { id: string }) => i.id === 'oc1')).toMatchObject({ action: 'update', written: true });
    expect(report.items.find((i: { id: string }) => i.id === 'oc2')).toMatchObject({ action: 'unchanged' });
    // Written, invalidated; the unchanged tenant's entry is left alone.
    expect((await admin.query("SELECT name FROM tenants WHERE id = 'oc1'")).rows[0].name).toBe('Name one, renamed');
    expect(await client.exists('tenant_config:oc1')).toBe(0);
    expect(await client.get('tenant_config:oc2')).toBe('{"cached":true}');
    // The record the role could not clear is still there (the next drain by a role that may clears it).
    expect((await admin.query("SELECT count(*)::int AS n FROM tenantctl_outbox WHERE kind = 'tenant' AND target = 'oc1'")).rows[0].n).toBeGreaterThan(0);

    // A rerun does the owed invalidation again and is refused at its clearing, before it writes anything: exit 3,
    // naming the table and the write rights (the hint named the read rights only).
    await client.set('tenant_config:oc1', '{"cached":true}');
    const again = await runCli(['--registry', roleUrl, '--redis-url', redis.url, 'migrate-yaml'], { cwd: ws.dir });
    expect(again.code, again.stderr).toBe(3);
    expect(again.stderr).toMatch(/^error: .*clearing done invalidations: permission denied for table tenantctl_outbox \(the registry role lacks a right: .*a command that writes needs INSERT, UPDATE and DELETE on them too/m);
    expect(await client.exists('tenant_config:oc1')).toBe(0);

    // doctor says so before any run: the write check names the one right missing.
    const doctor = await runCli(['--registry', roleUrl, '--redis-url', redis.url, 'doctor'], { cwd: ws.dir });
    expect(doctor.code, doctor.stdout).toBe(1);
    expect(doctor.stdout).toContain(`${role} lacks DELETE on tenantctl_outbox: commands that write will fail`);

    // A role that may clears it: the next write command's drain.
    const owner = await runCli(['--registry', db.url, '--redis-url', redis.url, 'invalidate', '--pending'], { cwd: ws.dir });
    expect(owner.code, owner.stderr).toBe(0);
    expect((await admin.query('SELECT count(*)::int AS n FROM tenantctl_outbox')).rows[0].n).toBe(0);
  });
});
