import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, expectOneLineError, runCli, workspace, type CliRun } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Issue 7 §5: Redis stalls (SIGSTOP) or dies (SIGKILL) in the middle of
 * `invalidate-all --yes` / `invalidate <tenant>`: exit 3 within the Redis
 * timeout plus a margin, "deleted N keys before Redis failed: ...; run again
 * to finish" with the same N in --json, no stack trace, never exit 1 or 70;
 * after the server is back, a rerun finishes and foreign keys are untouched.
 */

const SEEDED = 600_000;
const REDIS_TIMEOUT_MS = 1000;
/** Node start-up, the deadline's own margin (250 ms) and a busy 2-core machine, on top of the Redis timeout. */
const MARGIN_MS = 2500;
/** Keys of another tenant and outside every family: never touched by `invalidate acme`. */
const OTHERS = 1000 /* dashboard_kpis:acme2:* */ + 1000 /* sessions:* */ + 2;
/**
 * After a stall, the batch in flight when the server stopped finishes once it
 * resumes (a script runs to its end): at most one sweep call's worth of keys
 * more than reported are gone (2 ms of work, a few thousand keys).
 */
const IN_FLIGHT_MAX = 20_000;

const int = (reply: string) => Number(/^:(\d+)/.exec(reply)?.[1] ?? NaN);
const FAILED_LINE = /^error: deleted at least (\d+) keys? before Redis failed: (.+); run again to finish$/;

describe('Redis failing in the middle of a deletion', () => {
  let redis: RedisServer;
  let cwd: string;
  const dbsize = async () => int(await redis.command('DBSIZE'));

  beforeAll(async () => {
    redis = await startRedis(['--enable-debug-command', 'yes']);
    cwd = mkdtempSync(`${os.tmpdir()}/tenantctl-mid-deletion-`);
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  async function seed(server: RedisServer): Promise<void> {
    await server.command('FLUSHALL');
    expect(await server.command('DEBUG', 'POPULATE', String(SEEDED), 'dashboard_kpis:acme')).toMatch(/^\+OK/);
    await server.command('DEBUG', 'POPULATE', '1000', 'dashboard_kpis:acme2');
    await server.command('DEBUG', 'POPULATE', '1000', 'sessions');
    await server.command('SET', 'other:acme', 'x');
    await server.command('SET', 'tenant_configx:acme', 'x');
    expect(int(await server.command('DBSIZE'))).toBe(SEEDED + OTHERS);
  }

  /**
   * Runs the CLI against `server`, and once about a third of the seeded keys
   * are gone, does `fault` to the server. Resolves with the run and the time
   * from the fault to the exit.
   */
  async function faultMidway(server: RedisServer, args: string[], fault: () => void): Promise<CliRun & { afterFaultMs: number }> {
    const env = cleanEnv();
    const start = Date.now();
    const child = spawn(process.execPath, [BIN, '--redis-url', server.url, '--redis-timeout', String(REDIS_TIMEOUT_MS), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let exited = false;
    void done.then(() => (exited = true));
    for (;;) {
      if (exited) throw new Error(`the command ended before the fault (seed more keys): ${stderr}`);
      if (int(await server.command('DBSIZE')) < OTHERS + SEEDED * 0.67) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    fault();
    const faultAt = Date.now();
    const code = await done;
    clearTimeout(killer);
    return { code, stdout, stderr, ms: Date.now() - start, afterFaultMs: Date.now() - faultAt };
  }

  /** Exit 3 soon after the fault, one error line saying how many keys were deleted (some, not all): that number. */
  function expectStoppedMidway(r: CliRun & { afterFaultMs: number }): number {
    expect(r.code).toBe(3);
    expect(r.afterFaultMs).toBeLessThan(REDIS_TIMEOUT_MS + MARGIN_MS);
    expectOneLineError(r);
    const n = Number(FAILED_LINE.exec(r.stderr.trim())?.[1] ?? NaN);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(SEEDED);
    return n;
  }

  async function expectOthersUntouched(server: RedisServer) {
    for (const k of ['other:acme', 'tenant_configx:acme', 'sessions:0', 'sessions:999', 'dashboard_kpis:acme2:0', 'dashboard_kpis:acme2:999']) {
      expect(int(await server.command('EXISTS', k)), k).toBe(1);
    }
  }

  it('invalidate-all --yes, server stalled midway: exit 3 within the timeout, N in the line and in --json; a rerun finishes', async () => {
    await seed(redis);
    const r = await faultMidway(redis, ['invalidate-all', '--yes', '--json'], () => redis.pause());
    try {
      const n = expectStoppedMidway(r);
      const report = JSON.parse(r.stdout);
      expect(report).toMatchObject({ dryRun: false, total: n, complete: false });
      expect(report.families.dashboard_kpis).toBe(n);
    } finally {
      redis.resume();
    }
    const n = JSON.parse(r.stdout).total as number;
    // What was reported was really deleted, plus at most the batch that was in flight at the stall.
    const left = (await dbsize()) - OTHERS;
    expect(SEEDED - n - left).toBeGreaterThanOrEqual(0);
    expect(SEEDED - n - left).toBeLessThan(IN_FLIGHT_MAX);

    const again = await runCli(['invalidate-all', '--yes', '--json', '--redis-url', redis.url], { cwd });
    expect(again.code).toBe(0);
    // The rerun deletes acme's leftovers and every acme2 key (also a family key): nothing else.
    expect(JSON.parse(again.stdout)).toMatchObject({ total: left + 1000, complete: true });
    expect(await dbsize()).toBe(OTHERS - 1000);
    expect(int(await redis.command('EXISTS', 'sessions:0'))).toBe(1);
    expect(int(await redis.command('EXISTS', 'other:acme'))).toBe(1);
  });

  it('invalidate <tenant>, server stalled midway: exit 3 within the timeout, N = the keys really deleted, in the line and in --json', async () => {
    await seed(redis);
    const r = await faultMidway(redis, ['invalidate', 'acme', '--json'], () => redis.pause());
    let left: number;
    try {
      expect(r.code).toBe(3);
      expect(r.afterFaultMs).toBeLessThan(REDIS_TIMEOUT_MS + MARGIN_MS);
      expectOneLineError(r);
      expect(r.stderr.trim()).toMatch(FAILED_LINE);
    } finally {
      redis.resume();
      left = (await dbsize()) - OTHERS;
    }
    const n = Number(FAILED_LINE.exec(r.stderr.trim())?.[1] ?? NaN);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ deleted: n });
    // Per tenant and family, as a full run reports them (it was "tenants": [] after a failure).
    expect(report.tenants).toHaveLength(1);
    expect(report.tenants[0]).toMatchObject({ tenant: 'acme', total: n });
    expect(Object.values(report.tenants[0].families as Record<string, number>).reduce((a, x) => a + x, 0)).toBe(n);
    // The count must be what was really deleted (the failing sweep's deletions included), not 0.
    expect(SEEDED - left).toBeGreaterThan(SEEDED / 4);
    expect(SEEDED - n - left).toBeGreaterThanOrEqual(0);
    expect(SEEDED - n - left).toBeLessThan(IN_FLIGHT_MAX);
  });

  it('invalidate <tenant> refused UNLINK by an ACL: exit 3, one line that does not say "run again", nothing on stdout unless --json', async () => {
    await redis.command('FLUSHALL');
    await redis.command('SET', 'tenant_config:acme', '{}');
    await redis.command('SET', 'dashboard_kpis:acme:days:30', '{}');
    expect(await redis.command('ACL', 'SETUSER', 'viewer', 'on', '>viewerpw', '~*', '+@read', '+ping', '+info', '+scan', '+select')).toMatch(/^\+OK/);
    try {
      const url = redis.url.replace('redis://', 'redis://viewer:viewerpw@');
      const plain = await runCli(['invalidate', 'acme', '--redis-url', url], { cwd });
      expect(plain.code).toBe(3);
      // Before: a JSON document on stdout whatever the format, and "run again to finish" for a refusal that a rerun repeats.
      expect(plain.stdout).toBe('');
      expectOneLineError(plain);
      expect(plain.stderr).toMatch(/^error: deleted 0 keys before Redis failed: .*NOPERM.*lacks a right/);
      expect(plain.stderr).not.toMatch(/run again/);
      const json = await runCli(['invalidate', 'acme', '--json', '--redis-url', url], { cwd });
      expect(json.code).toBe(3);
      expect(JSON.parse(json.stdout)).toMatchObject({ deleted: 0 });
      // invalidate-all too: its report said "stopped before the end …: run again to finish" beside the refusal.
      const all = await runCli(['invalidate-all', '--yes', '--redis-url', url], { cwd });
      expect(all.code).toBe(3);
      expect(all.stderr).toMatch(/NOPERM/);
      expect(all.stderr).not.toMatch(/run again/);
      expect(int(await redis.command('DBSIZE'))).toBe(2);
    } finally {
      await redis.command('ACL', 'DELUSER', 'viewer');
    }
  });

  it('a user who may run scripts but not UNLINK (+@all -unlink): a refusal, not a failure, for invalidate, invalidate-all and verify --fix', async () => {
    // Redis says a command a script may not run with ERR and words of its own, not NOPERM: read as a failure,
    // it said "run again to finish", and verify --fix counted the refused deletions "in doubt" (exit 4).
    await redis.command('FLUSHALL');
    await redis.command('SET', 'tenant_config:acme', '{}');
    await redis.command('SET', 'dashboard_kpis:acme:days:30', '{}');
    expect(await redis.command('ACL', 'SETUSER', 'nounlink', 'on', '>nounlinkpw', '~*', '+@all', '-unlink')).toMatch(/^\+OK/);
    try {
      const url = redis.url.replace('redis://', 'redis://nounlink:nounlinkpw@');
      const one = await runCli(['invalidate', 'acme', '--redis-url', url], { cwd });
      expect(one.code).toBe(3);
      expectOneLineError(one);
      // Refused inside the script, then done client-side (another refused command, TIME, may be the script's
      // alone) and refused there too: the server's own words for the right that is missing.
      expect(one.stderr).toMatch(/^error: deleted 0 keys before Redis failed: .*NOPERM this user has no permissions to run the 'unlink' command \(the Redis ACL user lacks a right this command needs\)$/m);
      expect(one.stderr).not.toMatch(/run again/);
      const all = await runCli(['invalidate-all', '--yes', '--redis-url', url], { cwd });
      expect(all.code).toBe(3);
      expect(all.stderr).toMatch(/lacks a right/);
      expect(all.stderr).not.toMatch(/run again/);
      // A project with no tenants (an empty registry): both entries are orphans, which --fix deletes (compare-and-delete, a script).
      const project = workspace();
      const fix = await runCli(['verify', '--fix', '--json', '--redis-url', url], { cwd: project.dir }).finally(() => project.cleanup());
      expect(fix.code, fix.stderr).toBe(3);
      expect(fix.stderr).not.toMatch(/may have been|run again/);
      expect(fix.stderr).toMatch(/lacks a right/);
      expect(int(await redis.command('DBSIZE'))).toBe(2);
    } finally {
      await redis.command('ACL', 'DELUSER', 'nounlink');
    }
  });

  it('a user allowed only some families\' keys (~tenant_config:*): what was deleted is counted, not "deleted 0" (the keys it could delete went, the report said none)', async () => {
    await redis.command('FLUSHALL');
    for (const t of ['acme', 'globex', 'initech']) {
      await redis.command('SET', `tenant_config:${t}`, '{}');
      await redis.command('SET', `dashboard_kpis:${t}:days:30`, '{}');
      await redis.command('SET', `permissions:${t}`, '{}');
    }
    expect(await redis.command('ACL', 'SETUSER', 'famonly', 'on', '>famonlypw', '~tenant_config:*', '+@all')).toMatch(/^\+OK/);
    try {
      const url = redis.url.replace('redis://', 'redis://famonly:famonlypw@');
      // By name (tenant_config:acme may go, permissions:acme may not): one key deleted, and said.
      const one = await runCli(['invalidate', 'acme', '--redis-url', url], { cwd });
      expect(one.code).toBe(3);
      expectOneLineError(one);
      expect(int(await redis.command('EXISTS', 'tenant_config:acme'))).toBe(0);
      expect(one.stderr).toMatch(/^error: deleted 1 key before Redis failed: .*NOPERM.*\(the Redis ACL user lacks a right this command needs\)$/m);
      // The whole keyspace: the server-side sweep deletes what it may, and says how many.
      const before = int(await redis.command('DBSIZE'));
      const all = await runCli(['invalidate-all', '--yes', '--redis-url', url], { cwd });
      expect(all.code).toBe(3);
      const gone = before - int(await redis.command('DBSIZE'));
      expect(gone).toBeGreaterThan(0);
      expect(all.stderr).toMatch(new RegExp(`^error: deleted ${gone} keys? before Redis failed: .*\\(the Redis ACL user lacks a right this command needs\\)$`, 'm'));
    } finally {
      await redis.command('ACL', 'DELUSER', 'famonly');
    }
  });

  it('invalidate <tenant>: after a stall and a resume, a rerun deletes the rest of that tenant only', async () => {
    await seed(redis);
    const r = await faultMidway(redis, ['invalidate', 'acme', '--json'], () => redis.pause());
    redis.resume();
    expect(r.code).toBe(3);
    const left = (await dbsize()) - OTHERS;
    expect(left).toBeGreaterThan(0);
    const again = await runCli(['invalidate', 'acme', '--json', '--redis-url', redis.url], { cwd });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).tenants[0]).toMatchObject({ tenant: 'acme', total: left });
    expect(await dbsize()).toBe(OTHERS);
    await expectOthersUntouched(redis);
  });

  it('invalidate of many tenants (the pass that hands keys back), server stalled midway: exit 3 within the timeout, not one timeout per queued batch', async () => {
    // 200 tenants x 3,000 keys: beyond the exact per-tenant rules, the sweep collects and the client UNLINKs batch by batch.
    const TENANTS = 200;
    await redis.command('FLUSHALL');
    for (let t = 1; t <= TENANTS; t++) await redis.command('DEBUG', 'POPULATE', String(SEEDED / TENANTS), `dashboard_kpis:t${t}`);
    await redis.command('DEBUG', 'POPULATE', '1000', 'dashboard_kpis:acme2');
    await redis.command('DEBUG', 'POPULATE', '1000', 'sessions');
    await redis.command('SET', 'other:acme', 'x');
    await redis.command('SET', 'tenant_configx:acme', 'x');
    expect(await dbsize()).toBe(SEEDED + OTHERS);
    const tenants = Array.from({ length: TENANTS }, (_, i) => `t${i + 1}`);
    const r = await faultMidway(redis, ['invalidate', ...tenants, '--json'], () => redis.pause());
    try {
      // Before: the scan ran ahead of the one-at-a-time UNLINKs, and every queued batch waited out its own
      // timeout on the stalled server (minutes, and the first Ctrl-C did not stop it).
      expect(r.code, r.stderr).toBe(3);
      expect(r.afterFaultMs).toBeLessThan(REDIS_TIMEOUT_MS * 2 + MARGIN_MS);
      expectOneLineError(r);
      expect(r.stderr.trim()).toMatch(FAILED_LINE);
    } finally {
      redis.resume();
    }
    const n = Number(FAILED_LINE.exec(r.stderr.trim())?.[1] ?? NaN);
    const left = (await dbsize()) - OTHERS;
    expect(SEEDED - n - left).toBeGreaterThanOrEqual(0);
    expect(SEEDED - n - left).toBeLessThan(IN_FLIGHT_MAX);
    await expectOthersUntouched(redis);
  });

  it('invalidate-all --yes, server killed midway: exit 3 at once, the same N in the line and in --json, no stack', async () => {
    const doomed = await startRedis(['--enable-debug-command', 'yes']);
    try {
      await seed(doomed);
      const r = await faultMidway(doomed, ['invalidate-all', '--yes', '--json'], () => doomed.proc.kill('SIGKILL'));
      const n = expectStoppedMidway(r);
      expect(JSON.parse(r.stdout)).toMatchObject({ total: n, complete: false });
    } finally {
      await doomed.stop();
    }
  });
});
