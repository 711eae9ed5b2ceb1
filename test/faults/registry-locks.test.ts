import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, expectOneLineError, freshPostgresDatabase, runCli, TEST_DATABASE_URL, tenantYaml, uniq, workspace, type CliRun, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Issue 7 §2: no lock on the services' table from a read. Read commands
 * issue plain SELECTs only (no DDL, no ALTER, so no AccessExclusiveLock on
 * `tenants`, and nothing queues behind them); writers apply schema.sql only
 * when the catalog says it is missing or old, under an advisory lock, and a
 * lock they cannot get within the registry timeout ends in exit 3 with a
 * clear line, without holding up a service's SELECT for longer than that.
 * Played against a real PostgreSQL, with "service" connections of our own.
 */

/** Node start-up, loading pg, connecting, on a busy 2-core machine. */
const STARTUP_MARGIN_MS = 2500;
/** How long the "service" read transaction stays open at most: every read must finish well inside it. */
const SERVICE_TX_MS = 4000;

const TIERS = `features: [has_payroll, has_ai]
tiers:
  pilot_core: { features: [], max_devices: 2 }
  pilot_pro:  { features: [has_payroll, has_ai], max_devices: null }
`;

async function connect(url: string): Promise<Client> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url, application_name: 'service' });
  await c.connect();
  return c;
}

/** What pg_locks and pg_stat_activity showed about `tenants` and tenantctl's queries while something ran. */
interface Observed {
  /** Locks on `tenants` other than a granted AccessShareLock (a plain SELECT's). */
  strongOrWaiting: string[];
  /** Every distinct query text tenantctl's connections were seen running. */
  toolQueries: Set<string>;
  polls: number;
}

/** Polls the catalog every few ms until stopped. */
function watchLocks(watcher: Client): { stop: () => Promise<Observed> } {
  const seen: Observed = { strongOrWaiting: [], toolQueries: new Set(), polls: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const locks = await watcher.query(
        `SELECT l.mode, l.granted, coalesce(a.application_name, '') AS app FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'relation' AND l.relation = to_regclass('tenants') AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      for (const l of locks.rows) if (l.mode !== 'AccessShareLock' || !l.granted) seen.strongOrWaiting.push(`${l.app}: ${l.mode}${l.granted ? '' : ' (waiting)'}`);
      const queries = await watcher.query("SELECT query FROM pg_stat_activity WHERE application_name = 'tenantctl' AND datname = current_database()");
      for (const q of queries.rows) seen.toolQueries.add(String(q.query));
      seen.polls++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** A service's plain `SELECT count(*) FROM tenants`, over and over, each allowed to wait 1.5 s for a lock at most. */
function serviceCounts(client: Client): { stop: () => Promise<{ ok: number; failures: string[] }> } {
  const out = { ok: 0, failures: [] as string[] };
  let running = true;
  const loop = (async () => {
    await client.query("SET lock_timeout = '1500ms'");
    while (running) {
      try {
        await client.query('SELECT count(*) FROM tenants');
        out.ok++;
      } catch (err) {
        out.failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return out;
    },
  };
}

/** The built CLI in a child process (so a test can watch the server while it waits), with runCli's clean environment. */
function startCli(args: string[], cwd: string, env: Record<string, string>): { done: Promise<CliRun>; exited: () => boolean } {
  const start = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      exited = true;
      resolve({ code, stdout, stderr, ms: Date.now() - start });
    }),
  );
  return { done, exited: () => exited };
}

const DDL = /\b(ALTER|CREATE|DROP|TRUNCATE|INSERT|UPDATE|DELETE|GRANT|pg_advisory)/i;

describe.runIf(TEST_DATABASE_URL)('registry locks: the schema is current', () => {
  let db: { url: string; drop: () => Promise<void> };
  let ws: Workspace;
  let watcher: Client;
  const acme = uniq('acme');

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    ws = workspace({ [acme]: tenantYaml(acme, 'Acme', 'subscription: { tier: pilot_pro, status: active }\n') }, { registry: false });
    ws.writeTenant('tiers', TIERS, 'tiers.yaml');
    const m = await runCli(['migrate-yaml'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
    expect(m.code, m.stderr).toBe(0);
    watcher = await connect(db.url);
  });
  afterAll(async () => {
    await watcher?.end();
    ws?.cleanup();
    await db?.drop();
  });

  it('reads behind a service\'s open read transaction: quick, no AccessExclusiveLock, no DDL, never block a service SELECT', async () => {
    const service = await connect(db.url);
    const other = await connect(db.url);
    try {
      await service.query('BEGIN');
      await service.query('SELECT * FROM tenants');
      const txOpenedAt = Date.now();
      const locks = watchLocks(watcher);
      const counts = serviceCounts(other);
      const env = { DATABASE_URL: db.url };
      const runs = await Promise.all([
        runCli(['get-config', acme, '--no-cache', '--json'], { cwd: ws.dir, env }),
        runCli(['check-permission', acme, 'has_ai', '--json'], { cwd: ws.dir, env }),
        runCli(['list-tenants', '--json'], { cwd: ws.dir, env }),
        runCli(['get-permissions', acme, '--json'], { cwd: ws.dir, env }),
      ]);
      const finishedAt = Date.now();
      const seen = await locks.stop();
      const c = await counts.stop();
      await service.query('COMMIT');

      const [getConfig, check, list, perms] = runs;
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(getConfig.stdout)).toMatchObject({ id: acme, source: 'database' });
      expect(JSON.parse(check.stdout)).toMatchObject({ business: acme, feature: 'has_ai', granted: true });
      expect(JSON.parse(list.stdout).map((t: { id: string }) => t.id)).toContain(acme);
      expect(JSON.parse(perms.stdout)).toMatchObject({ business: acme, tier: 'pilot_pro' });
      // All done while the service's transaction was still open, well inside its 4 s.
      expect(finishedAt - txOpenedAt).toBeLessThan(SERVICE_TX_MS);
      expect(seen.polls).toBeGreaterThan(3);
      expect(seen.strongOrWaiting).toEqual([]);
      expect([...seen.toolQueries].filter((q) => DDL.test(q))).toEqual([]);
      expect(c.failures).toEqual([]);
      expect(c.ok).toBeGreaterThan(3);
    } finally {
      await service.end();
      await other.end();
    }
  });

  it('reads run on a database where every transaction is read-only (they issue only reads)', async () => {
    const admin = await connect(TEST_DATABASE_URL!);
    const dbName = new URL(db.url).pathname.slice(1);
    await admin.query(`ALTER DATABASE ${dbName} SET default_transaction_read_only = on`);
    try {
      const env = { DATABASE_URL: db.url };
      for (const args of [['get-config', acme, '--no-cache'], ['list-tenants'], ['check-permission', acme, 'has_ai'], ['get-permissions', acme]]) {
        const r = await runCli([...args, '--json'], { cwd: ws.dir, env });
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
        expect(r.stderr).toBe('');
      }
    } finally {
      await admin.query(`ALTER DATABASE ${dbName} RESET default_transaction_read_only`);
      await admin.end();
    }
  });

  it('a writer with the schema current applies no schema: migrate-yaml behind the service\'s read finishes, no AccessExclusiveLock', async () => {
    ws.writeTenant(acme, tenantYaml(acme, 'Acme Renamed', 'subscription: { tier: pilot_pro, status: active }\n'));
    const service = await connect(db.url);
    const other = await connect(db.url);
    try {
      await service.query('BEGIN');
      await service.query('SELECT * FROM tenants');
      const locks = watchLocks(watcher);
      const counts = serviceCounts(other);
      const r = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
      const seen = await locks.stop();
      const c = await counts.stop();
      await service.query('COMMIT');
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).items.find((i: { id: string; kind: string }) => i.id === acme && i.kind === 'tenant')).toMatchObject({ action: 'update', written: true });
      expect(r.ms).toBeLessThan(SERVICE_TX_MS);
      expect(seen.strongOrWaiting.filter((l) => /AccessExclusive|waiting/.test(l))).toEqual([]);
      expect([...seen.toolQueries].filter((q) => /\b(ALTER|CREATE)\b/i.test(q))).toEqual([]);
      expect(c.failures).toEqual([]);
      const row = await watcher.query('SELECT name FROM tenants WHERE id = $1', [acme]);
      expect(row.rows[0].name).toBe('Acme Renamed');
    } finally {
      await service.end();
      await other.end();
    }
  });

  it('migrate-yaml behind a service\'s row lock (an UPDATE in an open transaction): exit 3 after the timeout, nothing written; a rerun applies', async () => {
    ws.writeTenant(acme, tenantYaml(acme, 'Acme Held', 'subscription: { tier: pilot_pro, status: active }\n'));
    const service = await connect(db.url);
    try {
      await service.query('BEGIN');
      await service.query('UPDATE tenants SET name = name WHERE id = $1', [acme]);
      const r = await runCli(['migrate-yaml', acme, '--registry-timeout', '1000'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
      // Before: exit 4 (partial), though nothing at all was written.
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/^error: nothing was written: .*timeout/m);
      expect(r.ms).toBeLessThan(1000 + STARTUP_MARGIN_MS);
    } finally {
      await service.query('COMMIT');
      await service.end();
    }
    expect((await watcher.query('SELECT name FROM tenants WHERE id = $1', [acme])).rows[0].name).not.toBe('Acme Held');
    const again = await runCli(['migrate-yaml', acme], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
    expect(again.code, again.stderr).toBe(0);
    expect((await watcher.query('SELECT name FROM tenants WHERE id = $1', [acme])).rows[0].name).toBe('Acme Held');
  });
});

/**
 * A fresh database, a project with acme (pilot_pro) and tiers.yaml, an admin connection, and a login role
 * with CONNECT and USAGE on public plus `grants` (`ROLE` stands for its name); cleanup drops them all.
 */
async function roleFixture(prefix: string) {
  const db = await freshPostgresDatabase();
  const ws = workspace({ acme: tenantYaml('acme', 'Acme', 'subscription: { tier: pilot_pro, status: active }\n') }, { registry: false });
  ws.writeTenant('tiers', TIERS, 'tiers.yaml');
  const role = uniq(prefix);
  const admin = await connect(db.url);
  return {
    db,
    ws,
    admin,
    async login(grants: string[]): Promise<{ DATABASE_URL: string }> {
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`GRANT CONNECT ON DATABASE ${new URL(db.url).pathname.slice(1)} TO ${role}`);
      await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      for (const g of grants) await admin.query(g.replaceAll('ROLE', role));
      const u = new URL(db.url);
      u.username = role;
      return { DATABASE_URL: u.toString() };
    },
    async cleanup(): Promise<void> {
      await admin.end();
      ws.cleanup();
      await db.drop();
      const c = await connect(TEST_DATABASE_URL!);
      await c.query(`DROP ROLE IF EXISTS ${role}`);
      await c.end();
    },
  };
}

describe.runIf(TEST_DATABASE_URL)('registry locks: a role with SELECT on tenants only', () => {
  it('get-config and list-tenants work; check-permission / get-permissions answer or exit 3 with one clear line', async () => {
    const f = await roleFixture('tenantctl_reader_');
    const { db, ws } = f;
    try {
      const m = await runCli(['migrate-yaml'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
      expect(m.code, m.stderr).toBe(0);
      const env = await f.login(['GRANT SELECT ON tenants TO ROLE']);
      // An empty working directory: the answers can only come from the registry.
      const empty = workspace({}, { registry: false });
      try {
        const get = await runCli(['get-config', 'acme', '--no-cache', '--json'], { cwd: empty.dir, env });
        expect(get.code, get.stderr).toBe(0);
        expect(JSON.parse(get.stdout)).toMatchObject({ id: 'acme', source: 'database', config: { client: { name: 'Acme' } } });
        const list = await runCli(['list-tenants', '--json'], { cwd: empty.dir, env });
        expect(list.code, list.stderr).toBe(0);
        expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: 'acme', source: 'database' })]);
        for (const args of [['check-permission', 'acme', 'has_ai'], ['get-permissions', 'acme']]) {
          const r = await runCli(args, { cwd: empty.dir, env });
          expect([0, 1, 3], `${args[0]}: ${r.stderr}`).toContain(r.code);
          expect(r.ms).toBeLessThan(5000 + STARTUP_MARGIN_MS);
          if (r.code === 3) {
            // Which one it is, for the report: today "permission denied for table permission_features".
            expectOneLineError(r);
            expect(r.stderr).toMatch(/^error: registry .*permission denied/);
            expect(r.stderr).not.toMatch(/\/\/[^@\s]*:[^*@\s]+@/);
          }
        }
        expect(readdirSync(empty.dir).sort()).toEqual(['tenants']);
      } finally {
        empty.cleanup();
      }
    } finally {
      await f.cleanup();
    }
  });
});

describe.runIf(TEST_DATABASE_URL)('registry locks: a services\' database with only its own tenants table', () => {
  let db: { url: string; drop: () => Promise<void> };
  let ws: Workspace;
  let watcher: Client;

  /** Every relation in public and every column of tenants: what "changed nothing" means. */
  const catalog = async () => ({
    relations: (await watcher.query("SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname")).rows,
    columns: (await watcher.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'tenants' ORDER BY column_name")).rows.map((r) => r.column_name),
  });

  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedis();
    db = await freshPostgresDatabase();
    watcher = await connect(db.url);
    await watcher.query(`CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, short_name text, timezone text, currency text, primary_email text,
      gcp_project_id text, gcp_dataset text, config_source text DEFAULT 'yaml', tenant_config jsonb DEFAULT '{}', status text DEFAULT 'active',
      plan text, features_enabled jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now())`);
    await watcher.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ('legacy', 'Legacy', 'database', '{"x": 1}')`);
    ws = workspace({ fresh: tenantYaml('fresh', 'Fresh') }, { registry: false });
  });
  afterAll(async () => {
    await watcher?.end();
    ws?.cleanup();
    await db?.drop();
    await redis?.stop();
  });

  it('reads work and change nothing in the catalog', async () => {
    const before = await catalog();
    expect(before.columns).not.toContain('tenantctl_hash');
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url };
    const get = await runCli(['get-config', 'legacy', '--no-cache', '--json'], { cwd: ws.dir, env });
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ source: 'database', config: { x: 1, client: { name: 'Legacy' } } });
    const list = await runCli(['list-tenants', '--json'], { cwd: ws.dir, env });
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).map((t: { id: string }) => t.id).sort()).toEqual(['fresh', 'legacy']);
    // No permission tables yet: a negative answer (no subscription / not in the catalogue), not a failure.
    const check = await runCli(['check-permission', 'legacy', 'has_ai'], { cwd: ws.dir, env });
    expect(check.code, check.stderr).toBe(1);
    expect(check.stderr).toMatch(/denied/);
    const perms = await runCli(['get-permissions', 'legacy', '--json'], { cwd: ws.dir, env });
    // No subscription: the record is printed, and the answer is a negative one, as check-permission's.
    expect(perms.code, perms.stderr).toBe(1);
    expect(JSON.parse(perms.stdout)).toMatchObject({ tier: 'none', status: 'inactive' });
    // Computed without a catalogue: never written to the cache the services read as it is (a deny-all for 300 s).
    for (const r of [check, perms]) expect(r.stderr).toMatch(/no feature catalogue .*not cached/);
    expect(await redis.command('EXISTS', 'permissions:legacy')).toBe(':0\r\n');
    expect(await catalog()).toEqual(before);
  });

  it('migrate-yaml behind a service\'s lock: exit 3 within the registry timeout; the service\'s SELECT is not held up longer; nothing changed; a rerun applies', async () => {
    const before = await catalog();
    const service = await connect(db.url);
    const late = await connect(db.url);
    try {
      await service.query('BEGIN');
      await service.query('SELECT * FROM tenants');
      const ways: Array<{ args: string[]; env: Record<string, string> }> = [{ args: ['--registry-timeout', '1000'], env: {} }, { args: [], env: { REGISTRY_TIMEOUT_MS: '1000' } }];
      for (const how of ways) {
        const run = startCli([...how.args, 'migrate-yaml'], ws.dir, { DATABASE_URL: db.url, ...how.env });
        // Wait until the tool is queued for its exclusive lock on tenants (applying the schema)...
        for (;;) {
          if (run.exited()) break;
          const { rows } = await watcher.query(
            "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'tenantctl' AND a.datname = current_database() AND NOT l.granted AND l.relation = to_regclass('tenants')",
          );
          if (rows[0].n > 0) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        expect(run.exited(), 'migrate-yaml ended before it waited for the lock').toBe(false);
        // ...then a service's plain SELECT, issued behind it, must finish once the tool gives up (1 s), not later.
        const selectStart = Date.now();
        await late.query('SELECT count(*) FROM tenants');
        const selectMs = Date.now() - selectStart;
        const r = await run.done;
        expect(r.code).toBe(3);
        expectOneLineError(r);
        // "waited 1000 ms (the registry timeout): canceling statement due to statement (or lock) timeout"
        expect(r.stderr).toMatch(/^error: registry .* while applying the schema: waiting for a lock on tenants.*nothing was changed; waited 1000 ms \(the registry timeout\)/);
        expect(r.ms).toBeLessThan(1000 + STARTUP_MARGIN_MS);
        expect(selectMs).toBeLessThan(1000 + 1000);
      }
      // Rolled back: the schema is exactly as the services left it.
      expect(await catalog()).toEqual(before);
      await service.query('COMMIT');
      const again = await runCli(['migrate-yaml', '--json', '--registry-timeout', '1000'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
      expect(again.code, again.stderr).toBe(0);
      expect((await catalog()).columns).toContain('tenantctl_hash');
      const legacy = await watcher.query("SELECT name, tenant_config FROM tenants WHERE id = 'legacy'");
      expect(legacy.rows[0]).toEqual({ name: 'Legacy', tenant_config: { x: 1 } });
    } finally {
      await service.end();
      await late.end();
    }
  });
});

describe.runIf(TEST_DATABASE_URL)('a schema applied by a DBA from `tenantctl schema`, a role with data rights only', () => {
  it('the printed script records its version: doctor finds the schema current and migrate-yaml writes without any DDL (before: exit 3, "permission denied for schema public")', async () => {
    const f = await roleFixture('tenantctl_writer_');
    const { ws, admin } = f;
    try {
      const printed = await runCli(['schema'], { cwd: ws.dir });
      expect(printed.code, printed.stderr).toBe(0);
      await admin.query(printed.stdout);
      await admin.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
      const env = await f.login(['GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ROLE', 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ROLE']);
      const doctor = await runCli(['doctor', '--json'], { cwd: ws.dir, env });
      expect(JSON.parse(doctor.stdout).checks).toContainEqual(expect.objectContaining({ area: 'registry', check: 'schema', status: 'pass' }));
      const m = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env });
      expect(m.code, m.stderr).toBe(0);
      expect(JSON.parse(m.stdout).counts).toMatchObject({ create: 3, error: 0 });
    } finally {
      await f.cleanup();
    }
  });
});

describe.runIf(TEST_DATABASE_URL)('bad input on a PostgreSQL registry without tenantctl\'s tables', () => {
  it('set-subscription with a tier, override with a feature: exit 2 and no DDL sent (before: the schema applied, then "no tiers")', async () => {
    const db = await freshPostgresDatabase();
    const ws = workspace({}, { registry: false });
    const admin = await connect(db.url);
    try {
      const env = { DATABASE_URL: db.url };
      for (const args of [['set-subscription', 'acme', '--tier', 'pilot_pro'], ['override', 'acme', 'has_ai', '--grant']]) {
        const r = await runCli(args, { cwd: ws.dir, env });
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
        expectOneLineError(r);
      }
      const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
      expect(rows[0].n).toBe(0);
    } finally {
      await admin.end();
      ws.cleanup();
      await db.drop();
    }
  });
});
