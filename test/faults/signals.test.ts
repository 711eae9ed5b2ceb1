import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, freshPostgresDatabase, runCli, runCliOnTerminal, TEST_DATABASE_URL, workspace, type CliRun } from '../helpers/setup.js';
import { startRedis, useOwnRedis, type RedisServer } from '../helpers/redis-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { isZombie } from '../helpers/processes.js';

/**
 * Issue 7 §6: SIGINT / SIGTERM stop a long command between batches, report
 * what was done and exit 130 / 143 with nothing half-done; Ctrl-C at the
 * confirmation prompt says "aborted" and exits 130 (never "internal error", 70).
 * The processes are real: the built CLI, an own redis-server, PostgreSQL.
 */

/** Family keys seeded for a sweep: enough that a deleting pass takes about a second here. */
const SEEDED = 600_000;
/** Keys outside every family (`sessions:*` and near-misses): never touched. */
const FOREIGN = ['other:acme', 'tenant_configx:acme', 'sessions'];
const FOREIGN_COUNT = 1000 + 2;

interface Running {
  child: ChildProcess;
  stderr: () => string;
  done: Promise<CliRun>;
}

/** The built CLI in a child process we can signal (runCli waits for the exit), with runCli's clean environment. */
function spawnCli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Running {
  const env = { ...cleanEnv(), ...options.env };
  const start = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - start });
    });
  });
  return { child, stderr: () => stderr, done };
}

const int = (reply: string) => Number(/^:(\d+)/.exec(reply)?.[1] ?? NaN);

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Waits until the tenantctl process waits on a row lock in this test's
 * database (other test files run tenantctl processes that wait on their own
 * locks); false when it exited first.
 */
async function waitForLockWait(run: Running, watcher: { query(sql: string): Promise<{ rows: Array<{ n: number }> }> }): Promise<boolean> {
  let exited = false;
  void run.done.then(() => (exited = true));
  await waitFor('migrate-yaml to wait on the held row', async () => {
    if (exited) return true;
    const { rows } = await watcher.query("SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'tenantctl' AND a.datname = current_database() AND NOT l.granted");
    return rows[0].n > 0;
  });
  return !exited;
}

describe('signals during invalidate-all and at its prompt', () => {
  let redis: RedisServer;
  const dbsize = async () => int(await redis.command('DBSIZE'));

  beforeAll(async () => {
    redis = await startRedis(['--enable-debug-command', 'yes']);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** SEEDED keys of the dashboard_kpis family (tenant acme, one key per params suffix) plus foreign keys. */
  async function seed(): Promise<void> {
    await redis.command('FLUSHALL');
    expect(await redis.command('DEBUG', 'POPULATE', String(SEEDED), 'dashboard_kpis:acme')).toMatch(/^\+OK/);
    expect(await redis.command('DEBUG', 'POPULATE', '1000', 'sessions')).toMatch(/^\+OK/);
    await redis.command('SET', 'other:acme', 'x');
    await redis.command('SET', 'tenant_configx:acme', 'x');
    expect(await dbsize()).toBe(SEEDED + FOREIGN_COUNT);
  }

  /** Starts invalidate-all and sends `signal` once the deletion is well under way (a fifth of the keys gone). */
  async function interruptSweep(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP', extra: string[]): Promise<CliRun> {
    await seed();
    const run = spawnCli(['invalidate-all', '--yes', '--redis-url', redis.url, ...extra]);
    let exited = false;
    void run.done.then(() => (exited = true));
    await waitFor('the sweep to start deleting', async () => exited || (await dbsize()) < FOREIGN_COUNT + SEEDED * 0.8);
    expect(exited, 'the sweep finished before it could be interrupted: seed more keys').toBe(false);
    run.child.kill(signal);
    return run.done;
  }

  /**
   * Once the run has deleted down to `below` keys, pauses Redis's writes (a batch hangs) and sends SIGINT twice:
   * the second ends it at once. The caller unpauses.
   */
  async function stopTwiceWhilePaused(run: Running, below: number): Promise<CliRun> {
    let exited = false;
    void run.done.then(() => (exited = true));
    await waitFor('the run to start deleting', async () => exited || (await dbsize()) < below);
    expect(exited, 'the run finished before it could be interrupted').toBe(false);
    await redis.command('CLIENT', 'PAUSE', '3000', 'WRITE');
    await new Promise((r) => setTimeout(r, 300));
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    run.child.kill('SIGINT');
    return run.done;
  }

  async function expectForeignKeysUntouched() {
    expect(int(await redis.command('EXISTS', 'other:acme'))).toBe(1);
    expect(int(await redis.command('EXISTS', 'tenant_configx:acme'))).toBe(1);
    expect(int(await redis.command('EXISTS', 'sessions:0'))).toBe(1);
    expect(int(await redis.command('EXISTS', 'sessions:999'))).toBe(1);
  }

  it('SIGINT: exits 130, --json reports the keys deleted, and exactly those are gone', async () => {
    const r = await interruptSweep('SIGINT', ['--json']);
    expect(r.code).toBe(130);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ dryRun: false, complete: false });
    expect(report.total).toBeGreaterThan(0);
    // What the sweep had looked at when it stopped (at least the keys it deleted).
    expect(report.scanned).toBeGreaterThanOrEqual(report.total);
    expect(report.total).toBeLessThan(SEEDED);
    expect(report.families.dashboard_kpis).toBe(report.total);
    // Stopped between batches: nothing in flight, so what is left is exactly what was not reported.
    expect(await dbsize()).toBe(FOREIGN_COUNT + SEEDED - report.total);
    expect(r.stderr).toMatch(/interrupted/);
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    await expectForeignKeysUntouched();
    // A rerun finishes the job.
    const again = await runCli(['invalidate-all', '--yes', '--json', '--redis-url', redis.url]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ total: SEEDED - report.total, complete: true });
    expect(await dbsize()).toBe(FOREIGN_COUNT);
    await expectForeignKeysUntouched();
  });

  it.runIf(TEST_DATABASE_URL)('invalidate --pending draining an owed permissions-all: SIGINT stops it between batches, exit 130, the entry still owed (it deleted every key, cleared the outbox, then exit 130: a probe)', async () => {
    await redis.command('FLUSHALL');
    expect(await redis.command('DEBUG', 'POPULATE', String(SEEDED), 'permissions')).toMatch(/^\+OK/);
    const db = await freshPostgresDatabase();
    const ws = workspace({}, { registry: false });
    try {
      expect((await runCli(['--registry', db.url, 'migrate-yaml', '--redis-url', redis.url], { cwd: ws.dir })).code).toBe(0);
      const { default: pg } = await import('pg');
      const sql = async (text: string) => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        try {
          return (await c.query(text)).rows as Array<{ n: number }>;
        } finally {
          await c.end();
        }
      };
      await sql("INSERT INTO tenantctl_outbox (kind, target) VALUES ('permissions-all', '*')");
      const run = spawnCli(['--registry', db.url, 'invalidate', '--pending', '--json', '--redis-url', redis.url], { cwd: ws.dir });
      let exited = false;
      void run.done.then(() => (exited = true));
      await waitFor('the drain to start deleting', async () => exited || (await dbsize()) < SEEDED * 0.8);
      expect(exited, 'the drain finished before it could be interrupted').toBe(false);
      run.child.kill('SIGINT');
      const r = await run.done;
      expect(r.code, r.stderr).toBe(130);
      const left = await dbsize();
      expect(left, 'it went on to the end').toBeGreaterThan(0);
      // Stopped between batches: what it says it deleted is what is gone.
      expect(JSON.parse(r.stdout).owed).toMatchObject({ done: 0, pending: 1, deleted: SEEDED - left });
      // The error in the document, as invalidate-all's (it had none).
      expect(JSON.parse(r.stdout).error).toMatch(/interrupted/);
      // Not done: still owed, for the next drain.
      expect((await sql('SELECT count(*)::int AS n FROM tenantctl_outbox'))[0].n).toBe(1);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
      const again = await runCli(['--registry', db.url, 'invalidate', '--pending', '--redis-url', redis.url], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
      expect(await dbsize()).toBe(0);
      expect((await sql('SELECT count(*)::int AS n FROM tenantctl_outbox'))[0].n).toBe(0);
    } finally {
      ws.cleanup();
      await db.drop();
    }
  });

  it.runIf(TEST_DATABASE_URL)('invalidate --pending ended at once by a second signal (writes paused): the audit line carries the owed keys confirmed deleted (it had none)', async () => {
    await redis.command('FLUSHALL');
    expect(await redis.command('DEBUG', 'POPULATE', String(SEEDED), 'permissions')).toMatch(/^\+OK/);
    const db = await freshPostgresDatabase();
    const ws = workspace({}, { registry: false });
    const audit = path.join(mkdtempSync(path.join(os.tmpdir(), 'tenantctl-owed-')), 'audit.log');
    try {
      expect((await runCli(['--registry', db.url, 'migrate-yaml', '--redis-url', redis.url], { cwd: ws.dir })).code).toBe(0);
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query("INSERT INTO tenantctl_outbox (kind, target) VALUES ('permissions-all', '*')");
      await c.end();
      const run = spawnCli(['--registry', db.url, 'invalidate', '--pending', '--redis-url', redis.url, '--redis-timeout', '8000', '--audit-log', audit], { cwd: ws.dir });
      const r = await stopTwiceWhilePaused(run, SEEDED * 0.8);
      expect(r.code).toBe(130);
      const line = JSON.parse(readFileSync(audit, 'utf8').trim().split('\n').pop()!);
      expect(line).toMatchObject({ command: 'invalidate', outcome: 'interrupted', exit_code: 130, error: expect.stringMatching(/the counts are what was confirmed done/) });
      await redis.command('CLIENT', 'UNPAUSE');
      expect(line.counts.owed_deleted).toBeGreaterThan(0);
      expect(line.counts.owed_deleted).toBeLessThanOrEqual(SEEDED - (await dbsize()));
    } finally {
      await redis.command('CLIENT', 'UNPAUSE');
      rmSync(path.dirname(audit), { recursive: true, force: true });
      ws.cleanup();
      await db.drop();
    }
  });

  it.each([['invalidate-all', '--yes'], ['invalidate', 'acme']])('%s: a second signal while a batch hangs (writes paused): exit 130 at once, and the audit line carries the keys confirmed deleted (it had no counts: a probe, a review)', async (command, arg) => {
    const audit = path.join(mkdtempSync(path.join(os.tmpdir(), 'tenantctl-twice-')), 'audit.log');
    try {
      await seed();
      const run = spawnCli([command, arg, '--redis-url', redis.url, '--redis-timeout', '8000', '--audit-log', audit]);
      const r = await stopTwiceWhilePaused(run, FOREIGN_COUNT + SEEDED * 0.8);
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/again: stopped at once/);
      const line = JSON.parse(readFileSync(audit, 'utf8').trim().split('\n').pop()!);
      expect(line).toMatchObject({ command, outcome: 'interrupted', exit_code: 130, error: expect.stringMatching(/the counts are what was confirmed done/) });
      await redis.command('CLIENT', 'UNPAUSE');
      const gone = SEEDED + FOREIGN_COUNT - (await dbsize());
      expect(line.counts.deleted).toBeGreaterThan(0);
      // At least those: the batch in flight when it stopped may have landed after.
      expect(line.counts.deleted).toBeLessThanOrEqual(gone);
    } finally {
      await redis.command('CLIENT', 'UNPAUSE');
      rmSync(path.dirname(audit), { recursive: true, force: true });
    }
  });

  it('verify --fix: a second signal while a deletion hangs (writes paused): exit 130 at once, and the audit line carries the entries checked and confirmed deleted (it had no counts: README\'s known-and-left; then no entries checked)', async () => {
    // An empty project (its tenants directory and registry hold nobody): every cached tenant_config: entry is an orphan.
    const ws = workspace();
    const audit = path.join(ws.dir, 'audit.log');
    const cached = 6_000;
    try {
      await redis.command('FLUSHALL');
      await redis.command('EVAL', `for i = 1, ${cached} do redis.call('SET', 'tenant_config:t' .. i, '{"client":{"id":"t' .. i .. '"}}') end`, '0');
      expect(await dbsize()).toBe(cached);
      const run = spawnCli(['verify', '--fix', '--batch-size', '50', '--redis-url', redis.url, '--redis-timeout', '8000', '--audit-log', audit], { cwd: ws.dir });
      const r = await stopTwiceWhilePaused(run, cached * 0.9);
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(/again: stopped at once/);
      const line = JSON.parse(readFileSync(audit, 'utf8').trim().split('\n').pop()!);
      expect(line).toMatchObject({ command: 'verify --fix', outcome: 'interrupted', exit_code: 130, error: expect.stringMatching(/the counts are what was confirmed done/) });
      await redis.command('CLIENT', 'UNPAUSE');
      const gone = cached - (await dbsize());
      expect(line.counts.deleted).toBeGreaterThan(0);
      expect(line.counts.orphan).toBeGreaterThanOrEqual(line.counts.deleted);
      // And the entries checked so far (the line had none): every one judged, the orphans among them.
      expect(line.counts.checked).toBeGreaterThanOrEqual(line.counts.orphan);
      // At least those: the batch in flight when it stopped may have landed after.
      expect(line.counts.deleted).toBeLessThanOrEqual(gone);
    } finally {
      await redis.command('CLIENT', 'UNPAUSE');
      ws.cleanup();
    }
  });

  it('SIGTERM: exits 143, the table reports the keys deleted, and exactly those are gone', async () => {
    const r = await interruptSweep('SIGTERM', []);
    expect(r.code).toBe(143);
    // The people's view: a boxed table on a terminal, tab-separated rows when piped.
    const total = Number(/^[│|\s]*total[\s│|]+(\d+)/m.exec(r.stdout)?.[1] ?? NaN);
    expect(total, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBeGreaterThan(0);
    expect(total).toBeLessThan(SEEDED);
    // Piped: the "stopped before the end" summary is on stderr, the rows alone on stdout.
    expect(r.stderr).toMatch(/run again to finish/);
    expect(await dbsize()).toBe(FOREIGN_COUNT + SEEDED - total);
    expect(r.stderr).toMatch(/terminated|SIGTERM/);
    // Piped, no stray empty line before the note (it is there on a terminal only, off the ^C echo).
    expect(r.stderr.startsWith('\n')).toBe(false);
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    await expectForeignKeysUntouched();
  });

  it('SIGHUP (an ssh session or terminal gone): exits 129 between batches with the report and its audit line, as SIGTERM does (it killed the sweep: nothing reported, no audit line)', async () => {
    const audit = path.join(mkdtempSync(path.join(os.tmpdir(), 'tenantctl-hup-')), 'audit.log');
    try {
      const r = await interruptSweep('SIGHUP', ['--json', '--audit-log', audit]);
      expect(r.code, r.stderr).toBe(129);
      const report = JSON.parse(r.stdout);
      expect(report).toMatchObject({ complete: false });
      expect(await dbsize()).toBe(FOREIGN_COUNT + SEEDED - report.total);
      expect(r.stderr).toMatch(/hung up/);
      const line = JSON.parse(readFileSync(audit, 'utf8').trim().split('\n').pop()!);
      expect(line).toMatchObject({ outcome: 'interrupted', counts: { deleted: report.total } });
      await expectForeignKeysUntouched();
    } finally {
      rmSync(path.dirname(audit), { recursive: true, force: true });
    }
  });

  it('a hang-up of a real terminal (its pty closed) ends the process by SIGHUP, not by an abort in Node\'s terminal reset (SIGABRT and a native stack: a review)', async () => {
    // A pseudo-terminal whose master end closes while the command waits on a paused Redis (python3's pty).
    const harness = 'import os, pty, sys, time\npid, fd = pty.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\ntime.sleep(1.5)\nos.close(fd)\n_, st = os.waitpid(pid, 0)\nprint("signal %d" % os.WTERMSIG(st) if os.WIFSIGNALED(st) else "exit %d" % os.WEXITSTATUS(st))\n';
    const paused = await startRedis();
    paused.pause();
    try {
      const r = spawnSync('python3', ['-c', harness, process.execPath, BIN, 'test-redis', '--redis-url', paused.url, '--redis-timeout', '8000'], { env: cleanEnv(), encoding: 'utf8', timeout: 20_000 });
      expect(r.stdout.trim(), r.stderr).toBe('signal 1');
    } finally {
      paused.resume();
      await paused.stop();
    }
  });

  it('cache-info: the first SIGINT stops the count between batches (exit 130), it does not run on to the end', async () => {
    await seed();
    await redis.command('CONFIG', 'RESETSTAT');
    const run = spawnCli(['cache-info', '--json', '--redis-url', redis.url]);
    let exited = false;
    void run.done.then(() => (exited = true));
    const scripts = async () => Number(/cmdstat_evalsha(?:_ro)?:calls=(\d+)/.exec(await redis.command('INFO', 'commandstats'))?.[1] ?? 0);
    await waitFor('the count to start', async () => exited || (await scripts()) > 0);
    expect(exited, 'cache-info finished before it could be interrupted: seed more keys').toBe(false);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    // No report: a count that ran on to the end would have printed every family's total.
    expect(r.stdout).not.toMatch(/dashboard_kpis/);
    expect(r.stderr).toMatch(/interrupted/);
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    expect(await dbsize()).toBe(SEEDED + FOREIGN_COUNT);
  });

  it('Ctrl-C at the confirmation prompt: "aborted", exit 130, nothing deleted', async () => {
    await redis.command('FLUSHALL');
    await redis.command('DEBUG', 'POPULATE', '50', 'tenant_config');
    await redis.command('SET', 'permissions:acme', '{}');
    await redis.command('SET', 'other:acme', 'x');
    const before = await dbsize();
    const r = await runCliOnTerminal(['invalidate-all', '--redis-url', redis.url], /\[y\/N\]/, '\x03');
    expect(r.stdout).toMatch(/Delete 51 keys/);
    expect(r.stdout).toMatch(/aborted/);
    expect(r.stdout).not.toMatch(/internal error|^\s+at /m);
    expect(r.code).toBe(130);
    expect(await dbsize()).toBe(before);
  });
});

describe.runIf(TEST_DATABASE_URL)('SIGTERM during migrate-yaml (PostgreSQL registry)', () => {
  const TENANTS = 2000;
  const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(4, '0')}`);
  /** A tenant in the second batch of 500: a service's row lock on it holds that batch in flight. */
  const HELD = 't0700';

  function writeTenants(dir: string, version: 'v1' | 'v2') {
    for (const id of ids) {
      writeFileSync(path.join(dir, `${id}.yaml`), `client:\n  id: ${id}\n  name: Tenant ${id} ${version}\nmarker: ${version}\nnested: { a: ${version}, b: [${version}, ${version}] }\n`);
    }
  }

  /**
   * Tenants migrated as v1, their files now v2, and a migration running whose second batch waits on a
   * service's row lock (in flight); `fn` runs then, and everything is closed and dropped after.
   */
  async function whileSecondBatchWaits(
    fn: (ctx: { run: ReturnType<typeof spawnCli>; service: import('pg').Client; watcher: import('pg').Client; ws: ReturnType<typeof workspace>; env: Record<string, string> }) => Promise<void>,
    options: { env?: Record<string, string>; beforeRun?: () => Promise<void> } = {},
  ) {
    const { default: pg } = await import('pg');
    const db = await freshPostgresDatabase();
    const ws = workspace({}, { registry: false });
    const service = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    try {
      const env = { DATABASE_URL: db.url, ...options.env };
      writeTenants(ws.tenantsDir, 'v1');
      const first = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env });
      expect(first.code, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout).counts.create).toBe(TENANTS);

      writeTenants(ws.tenantsDir, 'v2');
      await service.connect();
      await watcher.connect();
      // A service holds a row of the second batch: that batch waits (in flight) while the signal arrives.
      await service.query('BEGIN');
      await service.query('SELECT id FROM tenants WHERE id = $1 FOR UPDATE', [HELD]);

      await options.beforeRun?.();
      const run = spawnCli(['migrate-yaml', '--json', '--registry-timeout', '20000'], { cwd: ws.dir, env });
      expect(await waitForLockWait(run, watcher), 'migrate-yaml ended before it reached the second batch').toBe(true);
      await fn({ run, service, watcher, ws, env });
    } finally {
      await service.end().catch(() => undefined);
      await watcher.end().catch(() => undefined);
      ws.cleanup();
      await db.drop();
    }
  }

  it('waiting for another migration\'s lock: the first SIGINT is exit 130 at once, nothing written (it waited out the registry timeout, then exit 3 "in use")', async () => {
    const { default: pg } = await import('pg');
    const db = await freshPostgresDatabase();
    const ws = workspace({ solo: 'client:\n  id: solo\n  name: Solo\n' }, { registry: false });
    const holder = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    try {
      const env = { DATABASE_URL: db.url };
      expect((await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env })).code).toBe(0);
      await holder.connect();
      await watcher.connect();
      // Another run's lock (the same advisory lock a migration takes).
      await holder.query('SELECT pg_advisory_lock(7346110002)');
      ws.writeTenant('solo', 'client:\n  id: solo\n  name: Solo 2\n');
      const run = spawnCli(['migrate-yaml', '--json', '--registry-timeout', '20000'], { cwd: ws.dir, env });
      expect(await waitForLockWait(run, watcher), 'migrate-yaml ended before it waited for the lock').toBe(true);
      const sent = Date.now();
      run.child.kill('SIGINT');
      const r = await run.done;
      expect(r.code, r.stderr).toBe(130);
      expect(Date.now() - sent).toBeLessThan(5000);
      expect(r.stderr).toMatch(/waiting for the migration lock/);
      expect((await watcher.query("SELECT name FROM tenants WHERE id = 'solo'")).rows[0].name).toBe('Solo');
    } finally {
      await holder.end().catch(() => undefined);
      await watcher.end().catch(() => undefined);
      ws.cleanup();
      await db.drop();
    }
  });

  it('exits 143 after the batch in flight, reports what it wrote; every row is wholly v1 or v2; a rerun finishes', async () => {
    await whileSecondBatchWaits(async ({ run, service, watcher, ws, env }) => {
      run.child.kill('SIGTERM');
      await waitFor('the signal to be acknowledged', () => /terminated/.test(run.stderr()));
      await service.query('ROLLBACK');
      const r = await run.done;
      expect(r.code).toBe(143);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
      const report = JSON.parse(r.stdout) as { items: Array<{ id: string; kind: string; action: string; written?: boolean; reason?: string }> };
      const written = new Set(report.items.filter((i) => i.written).map((i) => i.id));
      // The first batch, and the one in flight when the signal came, were written; nothing after.
      expect(written.size).toBe(1000);
      expect(written.has('t0000') && written.has('t0499') && written.has(HELD) && written.has('t0999')).toBe(true);
      expect(written.has('t1000')).toBe(false);
      const notWritten = report.items.filter((i) => !i.written);
      expect(notWritten).toHaveLength(TENANTS - 1000);
      for (const i of notWritten) expect(i.reason).toMatch(/interrupted by SIGTERM/);
      // Every tenant is named: the batch read while the held one was in flight as not written, the files after it as not read.
      expect(report.items.map((i) => i.id)).toEqual(ids);
      const reasonOf = (id: string) => report.items.find((i) => i.id === id)!.reason;
      expect(ids.slice(1000, 1500).map(reasonOf).every((r) => r === 'not written: interrupted by SIGTERM first')).toBe(true);
      expect(ids.slice(1500).map(reasonOf).every((r) => r === 'not read: interrupted by SIGTERM first')).toBe(true);

      // No half-written tenant: each row is wholly v1 or wholly v2, and v2 exactly where the report says.
      const { rows } = await watcher.query('SELECT id, name, tenant_config FROM tenants ORDER BY id');
      expect(rows).toHaveLength(TENANTS);
      for (const row of rows) {
        const version = written.has(row.id) ? 'v2' : 'v1';
        expect(row.name).toBe(`Tenant ${row.id} ${version}`);
        expect(row.tenant_config).toMatchObject({ marker: version, nested: { a: version, b: [version, version] } });
      }

      const again = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env });
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).counts).toMatchObject({ update: TENANTS - 1000, unchanged: 1000, error: 0, conflict: 0 });
      const after = await watcher.query("SELECT count(*)::int AS n FROM tenants WHERE name LIKE '% v2' AND tenant_config->>'marker' = 'v2'");
      expect(after.rows[0].n).toBe(TENANTS);
      expect(readdirSync(ws.dir).sort()).toEqual(['tenants']);
    });
  }, 40_000);

  it('SIGINT while Redis is still connecting: the tenants written lose their cached entries before exit 130 (they were left stale, "cache not invalidated: interrupted by SIGINT while connecting to Redis")', async () => {
    const { Redis } = await import('ioredis');
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    try {
      await whileSecondBatchWaits(
        async ({ run, service }) => {
          run.child.kill('SIGINT');
          await waitFor('the signal to be acknowledged', () => /interrupted: stopping after the current batch/.test(run.stderr()));
          await service.query('ROLLBACK');
          const r = await run.done;
          expect(r.code).toBe(130);
          expect(r.stderr).not.toMatch(/cache not invalidated|while connecting to Redis/);
          const report = JSON.parse(r.stdout) as { items: Array<{ id: string; written?: boolean }> };
          const written = report.items.filter((i) => i.written).map((i) => i.id);
          expect(written).toHaveLength(1000);
          // Redis answered once its pause ended: every written tenant's entry is gone, the others' are kept.
          expect(await admin.exists(...written.map((id) => `tenant_config:${id}`))).toBe(0);
          expect(await admin.exists(...ids.filter((id) => !written.includes(id)).map((id) => `tenant_config:${id}`))).toBe(TENANTS - 1000);
        },
        {
          env: { REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '20000' },
          beforeRun: async () => {
            // Every tenant cached, then Redis answers nothing for a while: the run's connect is under way when the signal comes.
            await admin.mset(...ids.flatMap((id) => [`tenant_config:${id}`, '{"cached":true}']));
            await admin.call('CLIENT', 'PAUSE', '6000', 'ALL');
          },
        },
      );
    } finally {
      admin.disconnect();
      await redis.stop();
    }
  }, 40_000);

  it('a second signal stops at once and says so: no report follows (it exited 143 without a word)', async () => {
    await whileSecondBatchWaits(async ({ run, service, watcher, ws, env }) => {
      run.child.kill('SIGTERM');
      await waitFor('the signal to be acknowledged', () => /terminated: stopping after the current batch/.test(run.stderr()));
      run.child.kill('SIGTERM');
      const r = await run.done;
      expect(r.code).toBe(143);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^terminated again: stopped at once, without the report of what was done; the batch in flight may or may not have been done \(a rerun finishes the job\)$/m);
      await service.query('ROLLBACK');
      // The rerun finishes it.
      const again = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env });
      expect(again.code, again.stderr).toBe(0);
      const after = await watcher.query("SELECT count(*)::int AS n FROM tenants WHERE tenant_config->>'marker' = 'v2'");
      expect(after.rows[0].n).toBe(TENANTS);
    });
  }, 40_000);
});

describe.runIf(TEST_DATABASE_URL)('PostgreSQL lost during migrate-yaml (through a proxy the test owns and cuts)', () => {
  const TENANTS = 2500;
  const ids = Array.from({ length: TENANTS }, (_, i) => `r${String(i).padStart(4, '0')}`);
  /** In the third batch of 500: a service's row lock on it holds that batch in flight while the proxy is cut. */
  const HELD = 'r1200';
  const writeTenants = (dir: string, version: string) => {
    for (const id of ids) writeFileSync(path.join(dir, `${id}.yaml`), `client:\n  id: ${id}\n  name: Tenant ${id} ${version}\nmarker: ${version}\n`);
  };

  const redis = useOwnRedis();

  // signalFirst: Ctrl-C while the batch waits, then the registry lost: the committed batches' invalidations still
  // run (with the run's aborted signal they threw at once, and the report was lost).
  it.each([{ signalFirst: false }, { signalFirst: true }])('exit 4: the batches before are written and said, their cache invalidated; the report names every tenant (written, not written, not read); a rerun finishes (%o)', async ({ signalFirst }) => {
    const { default: pg } = await import('pg');
    const db = await freshPostgresDatabase();
    const target = new URL(db.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const ws = workspace({}, { registry: false });
    const service = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    try {
      writeTenants(ws.tenantsDir, 'v1');
      const first = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
      expect(first.code, first.stderr).toBe(0);

      writeTenants(ws.tenantsDir, 'v2');
      // The services' cache of every tenant (v1): what the run writes must not stay cached, Redis being up.
      const cached = redis.client.pipeline();
      for (const id of ids) cached.set(`tenant_config:${id}`, '{"v": 1}');
      await cached.exec();
      await service.connect();
      await watcher.connect();
      await service.query('BEGIN');
      await service.query('SELECT id FROM tenants WHERE id = $1 FOR UPDATE', [HELD]);
      const run = spawnCli(['migrate-yaml', '--json', '--registry-timeout', '20000'], { cwd: ws.dir, env: { DATABASE_URL: proxy.via(db.url), REDIS_URL: redis.server.url } });
      expect(await waitForLockWait(run, watcher), 'migrate-yaml ended before it reached the third batch').toBe(true);
      if (signalFirst) {
        run.child.kill('SIGINT');
        await waitFor('the stop to be said', () => /stopping after the current batch/.test(run.stderr()));
      }
      await proxy.cut();
      const r = await run.done;
      await service.query('ROLLBACK');

      expect(r.code, r.stderr).toBe(signalFirst ? 130 : 4);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
      const report = JSON.parse(r.stdout) as { items: Array<{ id: string; written?: boolean; reason?: string; failure?: string; cacheInvalidated?: unknown }> };
      expect(report.items.map((i) => i.id)).toEqual(ids);
      const written = report.items.filter((i) => i.written).map((i) => i.id);
      expect(written).toEqual(ids.slice(0, 1000));
      // Their cache went without the registry (it was left stale, said "not invalidated", Redis up all along).
      expect(report.items.filter((i) => i.written && i.cacheInvalidated !== true)).toEqual([]);
      expect(await redis.client.exists(...written.map((id) => `tenant_config:${id}`))).toBe(0);
      expect(r.stderr).toMatch(/the cache of the 1000 written item\(s\) was invalidated without it/);
      // The held batch and the one read meanwhile: not written; the rest: never read. All say the registry's failure.
      const notWritten = report.items.filter((i) => i.reason?.startsWith('not written: '));
      expect(notWritten.map((i) => i.id)).toEqual(ids.slice(1000, 2000));
      const notRead = report.items.filter((i) => i.reason?.startsWith('not read: '));
      expect(notRead.map((i) => i.id)).toEqual(ids.slice(2000));
      if (!signalFirst) {
        for (const i of [...notWritten, ...notRead]) expect(i.failure).toBe('backend');
        expect(notRead[0].reason).toMatch(/registry/i);
      }

      // What the report says is what the registry holds: v2 exactly for the written batches.
      const { rows } = await watcher.query('SELECT id, name FROM tenants ORDER BY id');
      expect(rows.filter((row) => row.name.endsWith(' v2')).map((row) => row.id)).toEqual(written);

      await proxy.restore();
      const again = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: { DATABASE_URL: proxy.via(db.url) } });
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).counts).toMatchObject({ update: TENANTS - 1000, unchanged: 1000, error: 0, conflict: 0 });
    } finally {
      await service.end().catch(() => undefined);
      await watcher.end().catch(() => undefined);
      await proxy.close();
      ws.cleanup();
      await db.drop();
    }
  }, 60_000);
});

describe('migrate-yaml --dry-run and signals', () => {
  it('SIGINT during a dry run stops it between batches: exit 130 with the plan so far (before: the whole plan, exit 0)', async () => {
    // Files big enough that reading them all takes well over a second.
    const ws = workspace({}, { registry: false });
    const filler = Array.from({ length: 120 }, (_, i) => `  k${i}: value number ${i} of a long enough line`).join('\n');
    for (let n = 0; n < 4000; n++) writeFileSync(path.join(ws.tenantsDir, `d${n}.yaml`), `client:\n  id: d${n}\n  name: D${n}\nextra:\n${filler}\n`);
    try {
      const { startCli } = await import('../helpers/processes.js');
      const run = startCli(['migrate-yaml', '--dry-run', '--json'], { cwd: ws.dir, env: { XDG_CACHE_HOME: path.join(ws.dir, 'xdg') } });
      await new Promise((r) => setTimeout(r, 700));
      expect(run.exited(), 'the dry run ended before the signal: make the files bigger').toBe(false);
      run.child.kill('SIGINT');
      const end = await run.done;
      expect(end.code, end.stderr).toBe(130);
      const report = JSON.parse(end.stdout) as { dryRun: boolean; items: Array<{ action: string; reason?: string }> };
      expect(report.dryRun).toBe(true);
      const planned = report.items.filter((i) => i.action === 'create').length;
      expect(planned).toBeGreaterThan(0);
      expect(report.items.some((i) => /interrupted by SIGINT/.test(i.reason ?? ''))).toBe(true);
      // What it got done is the items it planned (it said "stopped after 0 done").
      expect(end.stderr).toContain(`interrupted by SIGINT: the migration plan stopped after ${planned} done`);
      // As a table: the items not reached are counted apart from bad files (it read "4000 error").
      const table = startCli(['migrate-yaml', '--dry-run'], { cwd: ws.dir, env: { XDG_CACHE_HOME: path.join(ws.dir, 'xdg2') } });
      await new Promise((r) => setTimeout(r, 700));
      table.child.kill('SIGINT');
      const shown = await table.done;
      expect(shown.code, shown.stderr).toBe(130);
      expect(shown.stderr).toMatch(/^plan: \d+ create, 0 update, 0 unchanged, 0 conflict, 0 skip, \d+ error \(all not planned: stopped\)$/m);
      // A real run with no registry yet plans first: stopped there, it is the run that stopped, nothing written
      // (it was reported as a dry run, "the migration plan stopped after 500 done").
      const real = startCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: { XDG_CACHE_HOME: path.join(ws.dir, 'xdg3') } });
      await new Promise((r) => setTimeout(r, 700));
      real.child.kill('SIGINT');
      const stopped = await real.done;
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toContain('interrupted by SIGINT: migrate-yaml stopped after 0 done');
      const realReport = JSON.parse(stopped.stdout) as { dryRun: boolean; items: Array<{ action: string; written?: boolean }> };
      expect(realReport.dryRun).toBe(false);
      expect(realReport.items.filter((i) => i.action === 'create' || i.written !== false)).toEqual([]);
      expect(existsSync(path.join(ws.dir, '.tenantctl'))).toBe(false);
    } finally {
      ws.cleanup();
    }
  }, 60_000);
});

describe('a command that does not work in batches stops at once on the first signal', () => {
  // A server that accepts and never answers: every Redis call waits for the whole --redis-timeout.
  let hole: net.Server;
  let port: number;
  let connections = 0;
  let ws: ReturnType<typeof workspace>;
  /** An embedded registry that exists (the outbox --pending reads), so only Redis is silent. */
  let embedded: string;
  /** Runs the CLI and, once it has reached the silent server (and waits on it), sends `signal`: how the run ended. */
  const signalledOnceConnected = async (argv: string[], signal: NodeJS.Signals, what: string): Promise<CliRun> => {
    const before = connections;
    const run = spawnCli(argv, { cwd: ws.dir });
    await waitFor(what, () => connections > before);
    await new Promise((r) => setTimeout(r, 200));
    run.child.kill(signal);
    return run.done;
  };
  beforeAll(async () => {
    hole = net.createServer((socket) => {
      connections++;
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    port = (hole.address() as net.AddressInfo).port;
    ws = workspace({}, { registry: false });
    writeFileSync(path.join(ws.tenantsDir, 'acme.yaml'), 'client:\n  id: acme\n  name: Acme\n');
    embedded = path.join(ws.dir, 'embedded-registry');
    const made = await runCli(['--registry', embedded, 'migrate-yaml'], { cwd: ws.dir });
    expect(made.code, made.stderr).toBe(0);
  }, 60_000);
  afterAll(() => {
    hole.close();
    ws.cleanup();
  });

  for (const [args, signal, code] of [
    [['get-config', 'acme'], 'SIGTERM', 143],
    [['test-redis'], 'SIGINT', 130],
    [['check-permission', 'acme', 'has_ai'], 'SIGTERM', 143],
  ] as const) {
    it(`${args[0]} waiting on a stalled Redis: ${signal} is exit ${code} now (it waited out the 8 s timeout, then exit ${args[0] === 'test-redis' ? 3 : 0})`, async () => {
      const r = await signalledOnceConnected(['--redis-url', `redis://127.0.0.1:${port}`, '--redis-timeout', '8000', ...args], signal, 'tenantctl to connect to the stalled server');
      expect(r.code, r.stderr).toBe(code);
      expect(r.ms, 'it waited for the Redis timeout').toBeLessThan(7000);
      expect(r.stderr).toMatch(signal === 'SIGINT' ? /^interrupted$/m : /^terminated$/m);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    });
  }

  it('migrate-yaml with earlier runs\' invalidations owed, stopped while Redis is silent and before it wrote anything: exit 130 at once (it waited out the Redis timeout for what earlier runs owe)', async () => {
    const registry = path.join(ws.dir, 'owed-registry');
    // A first run with Redis refused: the tenant is written, its invalidation owed.
    const first = await runCli(['--registry', registry, '--redis-url', 'redis://127.0.0.1:1', 'migrate-yaml'], { cwd: ws.dir });
    expect(first.stderr).toMatch(/owed|recorded/);
    const run = spawnCli(['--debug', '--registry', registry, '--redis-url', `redis://127.0.0.1:${port}`, '--redis-timeout', '15000', 'migrate-yaml'], { cwd: ws.dir });
    // The registry open: the run is now waiting for Redis to do what the first run owes.
    await waitFor('the registry to open', () => /registry opened for/.test(run.stderr()));
    await new Promise((r) => setTimeout(r, 300));
    const signalled = Date.now();
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(Date.now() - signalled, 'it waited for the Redis timeout').toBeLessThan(5000);
    // (--debug prints the full error: no stack check here.)
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stderr).toMatch(/^interrupted by SIGINT: migrate-yaml stopped after 0 done$/m);
  }, 40_000);

  // A command that works in batches, still connecting when its first signal comes: nothing is under way, so it
  // stops now with 130 / 143. It waited out the whole timeout, then exited 3 (a fault review: 13.7 s after the
  // signal with a 15 s registry timeout; watch overran a systemd unit's TimeoutStopSec).
  const silentRegistry = () => ['--registry', `postgres://postgres@127.0.0.1:${port}/silent`, '--registry-timeout', '8000'];
  for (const [label, args, signal, code, said] of [
    ['invalidate-all --yes, Redis silent', ['--redis-url', `redis://127.0.0.1:PORT`, '--redis-timeout', '8000', 'invalidate-all', '--yes'], 'SIGINT', 130, /^interrupted by SIGINT while connecting to Redis$/m],
    ['migrate-yaml, PostgreSQL silent', ['REGISTRY', 'migrate-yaml'], 'SIGTERM', 143, /^interrupted by SIGTERM while opening the registry$/m],
    ['verify, PostgreSQL silent', ['REGISTRY', 'verify'], 'SIGINT', 130, /^interrupted by SIGINT while opening the registry$/m],
    // Both said Redis unavailable: --pending exit 3, cache-info `available no` (a Prometheus file would say redis_up 0).
    // It opens the embedded registry beside the connect: on a loaded machine the signal may find PGlite still opening.
    ['invalidate --pending, Redis silent', ['--redis-url', `redis://127.0.0.1:PORT`, '--redis-timeout', '8000', 'REGISTRY_EMBEDDED', 'invalidate', '--pending'], 'SIGINT', 130, /^interrupted by SIGINT while (connecting to Redis|opening the registry)$/m],
    // It said "invalidate stopped before the end (a dry run deletes nothing)" for a real run.
    ['invalidate <tenant>, Redis silent', ['--redis-url', `redis://127.0.0.1:PORT`, '--redis-timeout', '8000', 'invalidate', 'acme'], 'SIGINT', 130, /^interrupted by SIGINT while connecting to Redis$/m],
    ['cache-info, Redis silent', ['--redis-url', `redis://127.0.0.1:PORT`, '--redis-timeout', '8000', 'cache-info', '--json'], 'SIGINT', 130, /^interrupted by SIGINT while connecting to Redis$/m],
  ] as const) {
    it(`${label}: the first ${signal} is exit ${code} at once, not exit 3 at the timeout`, async () => {
      const argv = args.flatMap((a) => (a === 'REGISTRY' ? silentRegistry() : a === 'REGISTRY_EMBEDDED' ? ['--registry', embedded] : [a.replace('PORT', String(port))]));
      const r = await signalledOnceConnected(argv, signal, 'tenantctl to connect to the silent server');
      expect(r.code, r.stderr).toBe(code);
      expect(r.ms, 'it waited for the timeout').toBeLessThan(6000);
      expect(r.stderr).toMatch(said);
      expect(r.stdout).not.toMatch(/"available": false|Redis not connected/);
      expect(r.stderr).not.toMatch(/internal|^\s+at /m);
    });
  }

  it('a signal while an embedded registry keeps the event loop busy is never dropped: 130 (it was exit 0 with no word, 3 times in 3)', async () => {
    // PGlite's open and queries hold the event loop: the signal is delivered to the handlers only after the
    // command, which then removed them. Whatever the moment, a run that was signalled does not exit 0.
    for (const delay of [200, 300, 400, 500, 650]) {
      const run = spawnCli(['--registry', embedded, 'get-config', 'acme', '--no-cache', '-o', 'json'], { cwd: ws.dir });
      await new Promise((r) => setTimeout(r, delay));
      // Ended before the signal (a zombie this process has not heard of yet, too): nothing to say.
      if (run.child.exitCode !== null || isZombie(run.child.pid!)) continue;
      run.child.kill('SIGINT');
      const r = await run.done;
      expect(r.code === 130 || (r.code === null && run.child.signalCode === 'SIGINT'), `after ${delay} ms: exit ${r.code} ${r.stderr}`).toBe(true);
    }
  });

  it('invalidate <tenant> --pending that deleted its keys, then opens a silent registry for what is owed: the first SIGINT is exit 130 with the keys it deleted in its JSON (they were lost)', async () => {
    const redis = await startRedis();
    try {
      await redis.command('SET', 'tenant_config:acme', '{}');
      const r = await signalledOnceConnected(['--redis-url', redis.url, ...silentRegistry(), 'invalidate', 'acme', '--pending', '--json'], 'SIGINT', 'tenantctl to reach the silent registry');
      expect(r.code, r.stderr).toBe(130);
      expect(r.ms).toBeLessThan(6000);
      expect(JSON.parse(r.stdout)).toMatchObject({ tenants: [{ tenant: 'acme', total: 1 }], deleted: 1 });
      expect(r.stderr).toMatch(/interrupted by SIGINT while opening the registry/);
    } finally {
      await redis.stop();
    }
  });

  it('invalidate <tenant> that deleted its keys, then waits on a silent registry (its warnings\' lookups): the first SIGINT is exit 130 with the report of what it deleted', async () => {
    const redis = await startRedis();
    try {
      await redis.command('SET', 'tenant_config:acme', '{}');
      await redis.command('SET', 'dashboard_kpis:acme:days:30', '{}');
      const r = await signalledOnceConnected(['--redis-url', redis.url, ...silentRegistry(), 'invalidate', 'acme', '--json'], 'SIGINT', 'tenantctl to reach the silent registry');
      expect(r.code, r.stderr).toBe(130);
      expect(r.ms).toBeLessThan(6000);
      expect(JSON.parse(r.stdout)).toMatchObject({ tenants: [{ tenant: 'acme', total: 2 }] });
      expect(r.stderr).toMatch(/^interrupted \(the answer above is complete\)$/m);
      expect(await redis.command('DBSIZE')).toMatch(/^:0/);
    } finally {
      await redis.stop();
    }
  });

  it('watch with PostgreSQL silent: SIGTERM stops it at once, with its summary (it waited out the connect)', async () => {
    const redis = await startRedis();
    try {
      const r = await signalledOnceConnected(['--redis-url', redis.url, '--registry', `postgres://postgres@127.0.0.1:${port}/silent`, '--registry-timeout', '8000', 'watch'], 'SIGTERM', 'watch to connect to the silent registry');
      expect(r.code, r.stderr).toBe(143);
      expect(r.ms).toBeLessThan(6000);
      expect(r.stderr).toMatch(/^watch stopped by SIGTERM: 0 change\(s\) seen/m);
    } finally {
      await redis.stop();
    }
  });

  it('cache-info (it stops between batches) waiting on a stalled Redis: the signal is still exit 143 once the call gives up (was exit 0 with the answer)', async () => {
    const before = connections;
    const run = spawnCli(['--redis-url', `redis://127.0.0.1:${port}`, '--redis-timeout', '1500', 'cache-info', '--json'], { cwd: ws.dir });
    await waitFor('tenantctl to connect to the stalled server', () => connections > before);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/terminated/);
  });
});

describe.runIf(TEST_DATABASE_URL)('a write stopped at once by a signal', () => {
  it('set-subscription waiting on a silent PostgreSQL: SIGTERM is exit 143 at once, and the audit log says it was interrupted', async () => {
    const db = await freshPostgresDatabase();
    const target = new URL(db.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const ws = workspace({}, { registry: false });
    try {
      writeFileSync(path.join(ws.tenantsDir, 'tiers.yaml'), 'features: [has_ai]\ntiers:\n  pilot_core: { features: [has_ai], max_devices: 3 }\n');
      expect((await runCli(['migrate-yaml'], { cwd: ws.dir, env: { DATABASE_URL: db.url } })).code).toBe(0);
      proxy.stall();
      const audit = path.join(ws.dir, 'audit.log');
      const run = spawnCli(['set-subscription', 'acme', '--tier', 'pilot_core', '--audit-log', audit, '--registry-timeout', '20000'], { cwd: ws.dir, env: { DATABASE_URL: proxy.via(db.url) } });
      await new Promise((r) => setTimeout(r, 1500));
      run.child.kill('SIGTERM');
      const r = await run.done;
      expect(r.code, r.stderr).toBe(143);
      expect(r.ms).toBeLessThan(15_000);
      const lines = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines).toEqual([expect.objectContaining({ command: 'set-subscription', outcome: 'interrupted', exit_code: 143 })]);
    } finally {
      await proxy.close();
      ws.cleanup();
      await db.drop();
    }
  }, 60_000);
});
