import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_DATABASE_URL, expectOneLineError, freshPostgresDatabase, runCli, tenantYaml, uniq, workspace, type Workspace,
} from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startFakePostgrest, type FakePostgrest } from '../helpers/fake-postgrest.js';
import { freePort } from '../helpers/ports.js';

interface Check {
  area: 'redis' | 'registry' | 'tenants';
  check: string;
  status: 'pass' | 'warn' | 'fail' | 'unknown';
  detail: string;
  unreachable?: boolean;
  data?: Record<string, unknown>;
}
interface Report {
  ok: boolean;
  summary: Record<Check['status'], number>;
  checks: Check[];
}

const TIMEOUT_MS = 500;
/** Node start-up and module loading on a busy 2-core machine, on top of the Redis timeout. */
const STARTUP_MARGIN_MS = 2000;
/** Opening the embedded registry (PGlite) after Redis has failed. */
const PGLITE_OPEN_MS = 1500;

const find = (r: Report, area: Check['area'], check: string) => r.checks.find((c) => c.area === area && c.check === check);
/** Write commands doctor must never send (INFO commandstats after CONFIG RESETSTAT). */
const REDIS_WRITES = /^cmdstat_(set|setex|psetex|setnx|mset|getset|getdel|del|expire|pexpire|expireat|persist|hset|lpush|rpush|sadd|zadd|incr|incrby|decr|append|rename|flushdb|flushall|copy|restore)[:|]/m;

/**
 * `doctor`: Redis, the registry and the tenants directory checked without
 * changing anything; exit 0 when nothing fails (warnings are fine), 3 when a
 * backend is unreachable, 1 when something else fails.
 */
describe('doctor', () => {
  let redis: RedisServer;
  let client: Redis;
  let ws: Workspace;
  /** No registry (a warning, and no PGlite start-up): for the Redis checks alone. */
  let light: Workspace;
  const [acme, beta] = [uniq('acme'), uniq('beta')];
  const up = () => ({ REDIS_URL: redis.url });

  beforeAll(async () => {
    // A cache configured as it should be: bounded memory, an evicting policy.
    redis = await startRedis(['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
    client = new Redis(redis.url);
    ws = workspace({ [acme]: tenantYaml(acme, 'Acme'), [beta]: tenantYaml(beta, 'Beta') });
    light = workspace({ [acme]: tenantYaml(acme, 'Acme') }, { registry: false });
    const m = await runCli(['migrate-yaml'], { cwd: ws.dir, env: up() });
    expect(m.code).toBe(0);
    await client.set(`tenant_config:${acme}`, '{}', 'EX', 300);
    await client.set('sessions:not-ours', 'x');
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    ws?.cleanup();
    light?.cleanup();
  });

  it('all good: every check passes, exit 0, and nothing is written to Redis', async () => {
    const keysBefore = (await client.keys('*')).sort();
    await client.config('RESETSTAT');
    const r = await runCli(['doctor', '--json'], { cwd: ws.dir, env: up() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => `${c.area} ${c.check}`)).toEqual([
      'redis reachable', 'redis version', 'redis memory', 'redis eviction policy', 'redis evictions', 'redis delete', 'redis key families',
      'registry reachable', 'registry schema', 'registry read', 'registry write', 'registry outbox',
      'tenants directory', 'tenants files',
    ]);
    expect(find(report, 'redis', 'key families')?.data).toMatchObject({ tool_keys: 1, total_keys: 2, families: { tenant_config: 1, permissions: 0 } });
    expect(find(report, 'redis', 'eviction policy')?.detail).toBe('allkeys-lru');
    expect(find(report, 'registry', 'read')?.detail).toBe('2 active tenants (2 migrated)');
    expect(find(report, 'registry', 'schema')?.detail).toMatch(/^current \(version \d+\)$/);

    const stats = await client.info('commandstats');
    expect(stats).not.toMatch(REDIS_WRITES);
    // The only deletions: the right to delete, tried on a key that does not exist in each family (nothing deleted, nothing replicated).
    const families = Object.keys((find(report, 'redis', 'key families')?.data as { families: object }).families).length;
    expect(stats).toMatch(new RegExp(`^cmdstat_unlink:calls=${families},`, 'm'));
    expect(find(report, 'redis', 'delete')?.detail).toBe('keys of every family may be deleted (UNLINK tried on absent keys)');
    expect((await client.keys('*')).sort()).toEqual(keysBefore);

    // The people's view: a table of check, status, detail.
    const table = await runCli(['doctor', '-o', 'table'], { cwd: ws.dir, env: up() });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/check\s.*status\s.*detail/);
    expect(table.stdout).toMatch(/redis eviction policy\s*│\s*pass\s*│\s*allkeys-lru/);
  });

  it('warns (exit 0) on eviction risk: unlimited maxmemory, noeviction, evicted keys; keys in Redis but none of the tool\'s', async () => {
    const plain = await startRedis();
    try {
      const r = await runCli(['doctor', '--json'], { cwd: light.dir, env: { REDIS_URL: plain.url } });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.ok).toBe(true);
      expect(find(report, 'redis', 'memory')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/maxmemory unlimited/) });
      expect(find(report, 'redis', 'eviction policy')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^noeviction/) });
      expect(find(report, 'redis', 'key families')).toMatchObject({ status: 'pass', detail: 'no keys yet (an empty cache)' });
    } finally {
      await plain.stop();
    }
    // Keys in Redis, none in the tool's families: the services probably use other names.
    const foreign = await startRedis(['--maxmemory', '1mb', '--maxmemory-policy', 'allkeys-lru']);
    try {
      const c = new Redis(foreign.url);
      // Fill past maxmemory so the server evicts.
      const big = 'x'.repeat(10_000);
      for (let i = 0; i < 300; i++) await c.set(`sessions:${i}`, big);
      // Room again, so that doctor's own connection (a client's buffers) does not evict the few keys left:
      // at 1 MB it could evict them all ("no keys yet"). The evictions stay counted.
      await c.config('SET', 'maxmemory', '64mb');
      c.disconnect();
      const r = await runCli(['doctor', '--json'], { cwd: light.dir, env: { REDIS_URL: foreign.url } });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      expect(find(report, 'redis', 'evictions')).toMatchObject({ status: 'warn' });
      expect((find(report, 'redis', 'evictions')?.data as { evicted_keys: number }).evicted_keys).toBeGreaterThan(0);
      expect(find(report, 'redis', 'key families')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/families/) });
    } finally {
      await foreign.stop();
    }
  });

  it('a server full under noeviction fails (exit 1: every cache write is refused now; it said "close to maxmemory, keys will be evicted", exit 0)', async () => {
    const full = await startRedis();
    try {
      const c = new Redis(full.url);
      await c.eval('for i=1,20000 do redis.call("SET","products:t"..(i%50)..":"..i,"x") end', 0);
      await c.config('SET', 'maxmemory', '1mb');
      await c.config('SET', 'maxmemory-policy', 'noeviction');
      expect(await c.set('probe', 'x').catch((e: Error) => e.message)).toMatch(/^OOM/);
      c.disconnect();
      const r = await runCli(['doctor', '--json'], { cwd: light.dir, env: { REDIS_URL: full.url } });
      expect(r.code, r.stderr).toBe(1);
      expect(find(JSON.parse(r.stdout) as Report, 'redis', 'memory')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/full, and the policy is noeviction: every cache write is refused \(OOM\) now$/) });
      // Under an evicting policy the same fill evicts: a warning, not a failure.
      const lru = new Redis(full.url);
      await lru.config('SET', 'maxmemory-policy', 'allkeys-lru');
      lru.disconnect();
      const evicting = await runCli(['doctor', '--json'], { cwd: light.dir, env: { REDIS_URL: full.url } });
      expect(find(JSON.parse(evicting.stdout) as Report, 'redis', 'memory')).toMatchObject({ status: 'warn', detail: expect.not.stringMatching(/refused/) });
    } finally {
      await full.stop();
    }
  });

  it('an ACL user who may read but not delete (+@all -unlink) fails the delete check (it passed every check, then every invalidation was refused)', async () => {
    expect(await client.call('ACL', 'SETUSER', 'readsonly', 'on', '>readsonlypw', '~*', '+@all', '-unlink')).toBe('OK');
    try {
      const r = await runCli(['doctor', '--json'], { cwd: ws.dir, env: { REDIS_URL: redis.url.replace('redis://', 'redis://readsonly:readsonlypw@') } });
      expect(r.code).toBe(1);
      const report = JSON.parse(r.stdout) as Report;
      expect(find(report, 'redis', 'delete')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/(NOPERM|can't run this command).*'?unlink'?.*: every invalidation will be refused$/i) });
      expect(find(report, 'redis', 'reachable')).toMatchObject({ status: 'pass' });
    } finally {
      await client.call('ACL', 'DELUSER', 'readsonly');
    }
    // A least-privilege user allowed only the families' keys passes: the probe is a tenant_config: key (it
    // was tenantctl:doctor:..., which that user may not touch, while its invalidations work).
    const families = ['tenant_config', 'permissions', 'dashboard_*', 'products', 'pricing_trends', 'sentiment_overview', 'forecast_demand'].map((f) => `~${f.endsWith('*') ? f : `${f}:*`}`);
    expect(await client.call('ACL', 'SETUSER', 'famonly', 'on', '>famonlypw', '+@all', '-@dangerous', ...families)).toBe('OK');
    try {
      const r = await runCli(['doctor', '--json'], { cwd: ws.dir, env: { REDIS_URL: redis.url.replace('redis://', 'redis://famonly:famonlypw@') } });
      expect(find(JSON.parse(r.stdout) as Report, 'redis', 'delete')).toMatchObject({ status: 'pass' });
    } finally {
      await client.call('ACL', 'DELUSER', 'famonly');
    }
    // A user allowed one family's keys only fails it, naming the others (it passed on that family's probe alone).
    expect(await client.call('ACL', 'SETUSER', 'onefam', 'on', '>onefampw', '+@all', '~tenant_config:*')).toBe('OK');
    try {
      const r = await runCli(['doctor', '--json'], { cwd: ws.dir, env: { REDIS_URL: redis.url.replace('redis://', 'redis://onefam:onefampw@') } });
      expect(r.code).toBe(1);
      const check = find(JSON.parse(r.stdout) as Report, 'redis', 'delete');
      expect(check).toMatchObject({ status: 'fail', detail: expect.stringMatching(/NOPERM.*: keys of families permissions, dashboard_kpis, .* may not be deleted, so their invalidations will be refused$/) });
      expect(check?.data?.refused_families).not.toContain('tenant_config');
    } finally {
      await client.call('ACL', 'DELUSER', 'onefam');
    }
  });

  it('Redis down: exit 3 within the timeout plus a margin, the other checks still reported', async () => {
    const refused = `redis://127.0.0.1:${await freePort()}`;
    const hole = net.createServer(() => undefined);
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const blackHole = `redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    try {
      // Refused, with the embedded registry still checked after it; a silent port, without a registry.
      for (const [url, cwd, registryMs] of [[refused, ws.dir, PGLITE_OPEN_MS], [blackHole, light.dir, 0]] as const) {
        const r = await runCli(['doctor', '--json'], { cwd, env: { REDIS_URL: url, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
        expect(r.code, url).toBe(3);
        expect(r.ms).toBeLessThan(TIMEOUT_MS + STARTUP_MARGIN_MS + registryMs);
        expectOneLineError(r);
        expect(r.stderr).toMatch(/^error: doctor: 1 check failed \(redis reachable\): Redis/);
        const report = JSON.parse(r.stdout) as Report;
        expect(report.ok).toBe(false);
        expect(find(report, 'redis', 'reachable')).toMatchObject({ status: 'fail', unreachable: true });
        expect(find(report, 'registry', registryMs ? 'read' : 'reachable')).toMatchObject({ status: registryMs ? 'pass' : 'warn' });
        expect(find(report, 'tenants', 'files')).toMatchObject({ status: 'pass' });
      }
    } finally {
      hole.close();
    }
  });

  it('a bad tenant file: exit 1, named as file:line; a bad file name too', async () => {
    const bad = workspace({ ok: tenantYaml('ok') }, { registry: false });
    try {
      bad.writeTenant('mismatch', 'client:\n  id: other\n  name: X\n');
      bad.writeTenant('broken', 'client:\n  id: broken\n  name: [unclosed\n');
      bad.writeTenant('bad name', tenantYaml('x'), 'bad name.yaml');
      bad.writeTenant('twice', tenantYaml('twice'));
      bad.writeTenant('twice', tenantYaml('twice'), 'twice/client.yaml');
      // A subscription whose tier is not in tiers.yaml: migrate-yaml refuses it, so doctor fails it too (before: passed).
      bad.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n');
      bad.writeTenant('untiered', tenantYaml('untiered', 'Untiered', 'subscription: { tier: platinum }\n'));
      // yaml_only: never migrated, so its subscription is not checked (as migrate-yaml skips it).
      bad.writeTenant('local', tenantYaml('local', 'Local', 'yaml_only: true\nsubscription: { tier: platinum }\n'));
      const r = await runCli(['doctor'], { cwd: bad.dir });
      expect(r.code).toBe(1);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/^doctor: 5 checks failed \(tenants file x5\)/);
      expect(r.stdout).toMatch(/tenants\/untiered\.yaml:\d+: .*platinum/);
      expect(r.stdout).toContain(`tenant twice has 2 files (${path.join('tenants', 'twice.yaml')}, ${path.join('tenants', 'twice', 'client.yaml')}): keep one`);
      expect(r.stdout).toContain(`${path.join('tenants', 'mismatch.yaml')}:2: client.id "other" does not match the file name "mismatch"`);
      expect(r.stdout).toMatch(/tenants\/broken\.yaml:\d+: /);
      expect(r.stdout).toMatch(/tenants\/bad name\.yaml: the file name is not a valid tenant id/);
      // A missing embedded registry is a warning (migrate-yaml creates it), and doctor does not create it.
      expect(r.stdout).toContain(`no registry yet at ${path.join(bad.dir, '.tenantctl', 'registry')}; migrate-yaml creates it`);
      expect(existsSync(path.join(bad.dir, '.tenantctl'))).toBe(false);
    } finally {
      bad.cleanup();
    }
  });

  it('JSON shape: ok, a summary per status, and one entry per check', async () => {
    const fresh = workspace({ [acme]: tenantYaml(acme) }, { registry: false });
    try {
      const r = await runCli(['doctor', '-o', 'json'], { cwd: fresh.dir });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      expect(Object.keys(report)).toEqual(['ok', 'summary', 'checks']);
      expect(Object.keys(report.summary).sort()).toEqual(['fail', 'pass', 'unknown', 'warn']);
      expect(Object.values(report.summary).reduce((a, b) => a + b, 0)).toBe(report.checks.length);
      for (const c of report.checks) {
        expect(['redis', 'registry', 'tenants']).toContain(c.area);
        expect(['pass', 'warn', 'fail', 'unknown']).toContain(c.status);
        expect(typeof c.check).toBe('string');
        expect(typeof c.detail).toBe('string');
      }
      // No Redis configured and no registry yet: warnings, not failures.
      expect(find(report, 'redis', 'configured')).toMatchObject({ status: 'warn' });
      expect(find(report, 'registry', 'reachable')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^no registry yet at /) });
      expect(report).toMatchObject({ ok: true, summary: { fail: 0, warn: 2 } });
      expect(existsSync(path.join(fresh.dir, '.tenantctl'))).toBe(false);
    } finally {
      fresh.cleanup();
    }
  });

  it('invalidations owed by earlier writes (a tenant written while Redis was not there) are a warning naming the fix', async () => {
    // Runs after the checks above: it leaves the workspace's registry owing one invalidation.
    ws.writeTenant(beta, tenantYaml(beta, 'Beta Renamed'));
    expect((await runCli(['migrate-yaml', beta], { cwd: ws.dir })).code).toBe(0);
    const r = await runCli(['doctor', '--json'], { cwd: ws.dir, env: up() });
    expect(r.code).toBe(0);
    expect(find(JSON.parse(r.stdout) as Report, 'registry', 'outbox')).toMatchObject({
      status: 'warn', detail: expect.stringMatching(/^1 cache invalidations owed .*: run `tenantctl invalidate --pending`$/), data: { owed: 1 },
    });
    // With no Redis configured, "run invalidate --pending" alone would fail (exit 3): the fix names Redis first.
    const none = await runCli(['doctor', '--json'], { cwd: ws.dir, env: { REDIS_URL: '' } });
    expect(find(JSON.parse(none.stdout) as Report, 'registry', 'outbox')).toMatchObject({
      status: 'warn', detail: expect.stringMatching(/: configure the services' Redis \(REDIS_URL, a Cluster or a Sentinel\), then run `tenantctl invalidate --pending`$/),
    });
  });

  describe('Supabase (contract test against a local PostgREST double)', () => {
    let fake: FakePostgrest;
    beforeAll(async () => {
      fake = await startFakePostgrest();
    });
    afterAll(() => fake?.close());

    it('a command against Supabase ends when it is done (closing the client left a 10 s timer of realtime-js alive, never used)', async () => {
      const env = { SUPABASE_URL: fake.url, SUPABASE_SERVICE_ROLE_KEY: fake.key };
      for (const args of [['list-tenants', '--json'], ['doctor', '--json']]) {
        const r = await runCli(args, { cwd: ws.dir, env });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/open handle|internal/);
      }
    });

    it('tables probed by reading; write rights unknown (not a failure); a missing table fails the schema check', async () => {
      const env = { SUPABASE_URL: fake.url, SUPABASE_SERVICE_ROLE_KEY: fake.key };
      const r = await runCli(['doctor', '--json'], { cwd: ws.dir, env });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      expect(find(report, 'registry', 'schema')).toMatchObject({ status: 'pass' });
      expect(find(report, 'registry', 'write')).toMatchObject({ status: 'unknown' });
      expect(report.summary.unknown).toBe(1);
      expect(fake.requests.every((q) => q.method === 'GET' || q.method === 'HEAD')).toBe(true);

      // Details wrap so the table fits 80 columns (paths, never cut, are the only thing that may widen it).
      const table = await runCli(['doctor', '-o', 'table'], { cwd: ws.dir, env: { ...env, ...up() } });
      expect(table.code).toBe(0);
      expect(table.stdout.trimEnd().split('\n').filter((l) => l.length > 80)).toEqual([]);

      // tenantctl's column missing (the services' own project): reads work, but a writer would be refused.
      fake.missingColumn = true;
      try {
        const noColumn = await runCli(['doctor', '--json'], { cwd: ws.dir, env });
        expect(noColumn.code).toBe(1);
        const schema = find(JSON.parse(noColumn.stdout) as Report, 'registry', 'schema');
        expect(schema).toMatchObject({ status: 'fail', detail: expect.stringMatching(/tenantctl schema/) });
        // Said once (the store's error said it too, and doctor again after it).
        expect(schema!.detail.match(/tenantctl schema/g)).toHaveLength(1);
        // A writer is told the same, by the CLI: exit 3, one line, the remedy once.
        const write = await runCli(['migrate-yaml'], { cwd: ws.dir, env });
        expect(write.code, write.stderr).toBe(3);
        expect(write.stderr.match(/apply `tenantctl schema` in the SQL editor/g)).toHaveLength(1);
      } finally {
        fake.missingColumn = false;
      }

      fake.tables.delete('tenantctl_outbox');
      const missing = await runCli(['doctor', '--json'], { cwd: ws.dir, env });
      expect(missing.code).toBe(1);
      expect(find(JSON.parse(missing.stdout) as Report, 'registry', 'schema')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/tenantctl schema/) });
    });
  });

  describe.skipIf(!TEST_DATABASE_URL)('PostgreSQL (needs TEST_DATABASE_URL)', () => {
    it('schema not applied is a warning; a read-only role fails the write check (has_table_privilege, nothing written)', async () => {
      const { default: pg } = await import('pg');
      const db = await freshPostgresDatabase();
      const role = uniq('tenantctl_ro_');
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      try {
        const empty = await runCli(['doctor', '--json'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
        expect(empty.code).toBe(0);
        const before = JSON.parse(empty.stdout) as Report;
        expect(find(before, 'registry', 'schema')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^not applied/) });
        expect(find(before, 'registry', 'write')).toMatchObject({ status: 'pass' });
        // Looking applied nothing.
        expect((await admin.query("SELECT to_regclass('tenants') AS t")).rows[0].t).toBeNull();

        expect((await runCli(['migrate-yaml'], { cwd: ws.dir, env: { DATABASE_URL: db.url } })).code).toBe(0);
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'ro-pw'`);
        await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
        const u = new URL(db.url);
        u.username = role;
        u.password = 'ro-pw';
        const ro = await runCli(['doctor', '--json'], { cwd: ws.dir, env: { DATABASE_URL: u.toString() } });
        expect(ro.code).toBe(1);
        const report = JSON.parse(ro.stdout) as Report;
        expect(find(report, 'registry', 'read')).toMatchObject({ status: 'pass' });
        expect(find(report, 'registry', 'write')).toMatchObject({ status: 'fail', detail: expect.stringContaining(`${role} lacks every write right`) });
        expect(ro.stdout).not.toContain('ro-pw');
      } finally {
        await admin.end();
        await db.drop();
        const { default: pg2 } = await import('pg');
        const server = new pg2.Client({ connectionString: TEST_DATABASE_URL });
        await server.connect();
        await server.query(`DROP ROLE IF EXISTS ${role}`);
        await server.end();
      }
    });
  });
});
