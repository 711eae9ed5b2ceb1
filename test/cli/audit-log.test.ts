import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, expectOneLineError, runCli, tenantYaml, uniq, workspace, type CliRun, type Workspace } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import type { AuditRecord } from '../../src/cli/audit-log.js';

/**
 * Issue 7 §9: every command that deletes or writes appends exactly one JSON
 * line (time, OS user, host, command, scope, counts, outcome) to
 * `--audit-log FILE` / `TENANTCTL_AUDIT_LOG` (or `audit_log` in the config
 * file, relative to the project), also on failure and on interruption;
 * read-only commands and dry runs append nothing; credentials are masked.
 */

/** A line as written (the record's type), its scope read as an object. */
type AuditLine = AuditRecord & { scope: Record<string, unknown> };

const TIERS = `features: [has_payroll, has_ai]
tiers:
  pilot_core: { features: [], max_devices: 2 }
  pilot_pro:  { features: [has_payroll, has_ai], max_devices: null }
`;

function lines(file: string): AuditLine[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

/** Runs a command and returns it with the audit lines it appended. */
async function audited(file: string, run: () => Promise<CliRun>): Promise<{ r: CliRun; added: AuditLine[] }> {
  const before = lines(file).length;
  const startedAt = Date.now();
  const r = await run();
  const added = lines(file).slice(before);
  for (const a of added) {
    const t = Date.parse(a.time);
    expect(t).toBeGreaterThanOrEqual(startedAt - 1000);
    expect(t).toBeLessThanOrEqual(Date.now() + 1000);
    expect(a.user).toBe(os.userInfo().username);
    expect(a.host).toBe(os.hostname());
  }
  return { r, added };
}

const int = (reply: string) => Number(/^:(\d+)/.exec(reply)?.[1] ?? NaN);

describe('audit log: cache deletions', () => {
  let redis: RedisServer;
  let cwd: string;
  let log: string;

  beforeAll(async () => {
    redis = await startRedis(['--enable-debug-command', 'yes']);
    cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-audit-'));
    log = path.join(cwd, 'logs', 'audit.jsonl');
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  const seedAcme = async () => {
    await redis.command('SET', 'tenant_config:acme', '{}');
    await redis.command('SET', 'permissions:acme', '{}');
    await redis.command('SET', 'dashboard_kpis:acme:days:30', '{}');
    await redis.command('SET', 'sessions:acme', 'x');
  };

  it('invalidate: one line with scope, counts and outcome ok; --dry-run appends nothing', async () => {
    await seedAcme();
    const dry = await audited(log, () => runCli(['--audit-log', log, '--redis-url', redis.url, 'invalidate', 'acme', '--dry-run'], { cwd }));
    expect(dry.r.code).toBe(0);
    expect(dry.added).toEqual([]);
    const { r, added } = await audited(log, () => runCli(['--audit-log', log, '--redis-url', redis.url, 'invalidate', 'acme'], { cwd }));
    expect(r.code, r.stderr).toBe(0);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ command: 'invalidate', scope: { tenants: ['acme'] }, counts: { deleted: 3 }, outcome: 'ok', exit_code: 0 });
    expect(int(await redis.command('EXISTS', 'sessions:acme'))).toBe(1);
  });

  it('an audit log that cannot be written stops a write before it changes anything: exit 2, one line, nothing deleted', async () => {
    await seedAcme();
    // A log whose directory would have to be inside a regular file (ENOTDIR, whoever runs the test).
    const blocker = path.join(cwd, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const bad = path.join(blocker, 'audit.jsonl');
    for (const args of [['invalidate', 'acme'], ['invalidate-all', '--yes']]) {
      const r = await runCli(['--audit-log', bad, '--redis-url', redis.url, ...args], { cwd });
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/audit log .*not-a-dir\/audit\.jsonl cannot be written \((ENOTDIR|EEXIST)\); nothing was done/);
      expect(int(await redis.command('EXISTS', 'tenant_config:acme'))).toBe(1);
    }
    // One that opens but takes no line (Linux's /dev/full: ENOSPC on every write): it deleted the keys, exit 0, and warned.
    if (process.platform === 'linux') {
      const r = await runCli(['--audit-log', '/dev/full', '--redis-url', redis.url, 'invalidate', 'acme'], { cwd });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/audit log \/dev\/full cannot be written \(not a regular file\); nothing was done/);
      expect(int(await redis.command('EXISTS', 'tenant_config:acme'))).toBe(1);
      // A FIFO nobody reads: refused at once (open() waited for a reader, deaf to SIGTERM).
      const fifo = path.join(cwd, 'audit.fifo');
      execFileSync('mkfifo', [fifo]);
      const f = await runCli(['--audit-log', fifo, '--redis-url', redis.url, 'invalidate', 'acme'], { cwd, timeoutMs: 15_000 });
      expect(f.code, f.stderr).toBe(2);
      expect(f.stderr).toMatch(/cannot be written \(nothing reads it: a FIFO or a socket\); nothing was done/);
      // A descriptor the shell opened on a regular file (/dev/fd/3 is procfs, which says 0 blocks free): used.
      const viaFd = path.join(cwd, 'via-fd.jsonl');
      const shell = spawnSync('bash', ['-c', `node ${JSON.stringify(BIN)} --audit-log /dev/fd/3 --redis-url ${redis.url} invalidate acme 3>>${JSON.stringify(viaFd)}`], { cwd, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
      expect(shell.status, shell.stderr).toBe(0);
      expect(readFileSync(viaFd, 'utf8')).toMatch(/"command":"invalidate"/);
    }
  });

  it('invalidate-all --yes: one line (TENANTCTL_AUDIT_LOG); --dry-run appends nothing', async () => {
    await seedAcme();
    await redis.command('SET', 'tenant_config:beta', '{}');
    const env = { TENANTCTL_AUDIT_LOG: log };
    const dry = await audited(log, () => runCli(['--redis-url', redis.url, 'invalidate-all', '--dry-run'], { cwd, env }));
    expect(dry.r.code).toBe(0);
    expect(dry.added).toEqual([]);
    const { r, added } = await audited(log, () => runCli(['--redis-url', redis.url, 'invalidate-all', '--yes'], { cwd, env }));
    expect(r.code, r.stderr).toBe(0);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ command: 'invalidate-all', scope: { families: 'all' }, counts: { deleted: 4 }, outcome: 'ok', exit_code: 0 });
  });

  it('Redis down: the line says failed with exit_code 3 (invalidate and invalidate-all)', async () => {
    const down = `redis://127.0.0.1:${await freePort()}`;
    for (const args of [['invalidate', 'acme'], ['invalidate-all', '--yes']]) {
      const { r, added } = await audited(log, () => runCli(['--audit-log', log, '--redis-url', down, '--redis-timeout', '500', ...args], { cwd }));
      expect(r.code, args[0]).toBe(3);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ command: args[0], outcome: 'failed', exit_code: 3 });
      expect(added[0].error).toMatch(/Redis/);
    }
  });

  it('credentials in argv (and in the error) are masked', async () => {
    const url = `redis://default:s3cretpw@127.0.0.1:${redis.port}`;
    const downUrl = `redis://default:s3cretpw@127.0.0.1:${await freePort()}`;
    const ok = await audited(log, () => runCli(['--audit-log', log, '--redis-url', url, 'invalidate', 'acme'], { cwd }));
    expect(ok.r.code, ok.r.stderr).toBe(0);
    const failed = await audited(log, () => runCli(['--audit-log', log, `--redis-url=${downUrl}`, '--redis-timeout', '500', 'invalidate', 'acme'], { cwd }));
    expect(failed.r.code).toBe(3);
    for (const { added } of [ok, failed]) {
      expect(added).toHaveLength(1);
      expect(added[0].argv.join(' ')).toContain('default:****@127.0.0.1');
    }
    expect(readFileSync(log, 'utf8')).not.toContain('s3cretpw');
  });

  it('interrupted by SIGINT: the line says interrupted, exit_code 130, with what was deleted', async () => {
    await redis.command('FLUSHALL');
    await redis.command('DEBUG', 'POPULATE', '600000', 'dashboard_kpis:acme');
    const before = lines(log).length;
    const child = spawn(process.execPath, [BIN, '--audit-log', log, '--redis-url', redis.url, 'invalidate-all', '--yes', '--json'], {
      cwd,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let exited = false;
    void done.then(() => (exited = true));
    while (!exited && int(await redis.command('DBSIZE')) > 480_000) await new Promise((r) => setTimeout(r, 2));
    expect(exited, 'the sweep finished before it could be interrupted').toBe(false);
    child.kill('SIGINT');
    const code = await done;
    clearTimeout(killer);
    expect(code).toBe(130);
    const added = lines(log).slice(before);
    expect(added).toHaveLength(1);
    const total = JSON.parse(stdout).total as number;
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThan(600_000);
    expect(added[0]).toMatchObject({ command: 'invalidate-all', outcome: 'interrupted', exit_code: 130, counts: { deleted: total } });
  });

  it('read-only commands append nothing', async () => {
    const before = lines(log).length;
    for (const args of [['get-config', 'acme'], ['list-tenants'], ['check-permission', 'acme', 'has_ai'], ['get-permissions', 'acme'], ['cache-info']]) {
      const r = await runCli(['--audit-log', log, '--redis-url', redis.url, ...args], { cwd });
      expect([0, 1, 3], `${args[0]}: ${r.stderr}`).toContain(r.code);
    }
    expect(lines(log)).toHaveLength(before);
  });
});

describe('audit log: registry writes (embedded registry)', () => {
  let ws: Workspace;
  let log: string;
  beforeAll(() => {
    ws = workspace({ acme: tenantYaml('acme', 'Acme', 'subscription: { tier: pilot_pro, status: active }\n') });
    ws.writeTenant('tiers', TIERS, 'tiers.yaml');
    log = path.join(ws.dir, 'audit.jsonl');
  });
  afterAll(() => ws.cleanup());

  it('migrate-yaml: --dry-run appends nothing; a run appends one line with the items written', async () => {
    const dry = await audited(log, () => runCli(['--audit-log', log, 'migrate-yaml', '--dry-run'], { cwd: ws.dir }));
    expect(dry.r.code, dry.r.stderr).toBe(0);
    expect(dry.added).toEqual([]);
    const { r, added } = await audited(log, () => runCli(['--audit-log', log, 'migrate-yaml'], { cwd: ws.dir }));
    expect(r.code, r.stderr).toBe(0);
    expect(added).toHaveLength(1);
    // tiers, the tenant and its subscription.
    expect(added[0]).toMatchObject({ command: 'migrate-yaml', scope: { ids: 'all' }, counts: { written: 3, create: 3 }, outcome: 'ok', exit_code: 0 });
  });

  it('migrate-yaml with one bad file among good ones: the line says partial (exit 4) with what was written, not failed', async () => {
    const good = uniq('goodone');
    ws.writeTenant(good, tenantYaml(good, 'Good One'));
    ws.writeTenant('brokenone', 'client:\n  id: brokenone\n  name: [unclosed\n');
    try {
      const { r, added } = await audited(log, () => runCli(['--audit-log', log, 'migrate-yaml', good, 'brokenone'], { cwd: ws.dir }));
      expect(r.code, r.stderr).toBe(4);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ command: 'migrate-yaml', outcome: 'partial', exit_code: 4, counts: { error: 1 } });
      expect(Number(added[0].counts?.written)).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(path.join(ws.tenantsDir, 'brokenone.yaml'), { force: true });
    }
  });

  it('set-subscription, override and reactivate: one line each, with scope, counts and outcome', async () => {
    const runs: Array<[string[], string, Record<string, unknown>]> = [
      [['set-subscription', 'acme', '--tier', 'pilot_core'], 'set-subscription', { business: 'acme', tier: 'pilot_core' }],
      [['override', 'acme', 'has_ai', '--grant'], 'override', { business: 'acme', feature: 'has_ai', action: 'grant' }],
      [['reactivate', 'acme'], 'reactivate', { business: 'acme' }],
    ];
    const found: AuditLine[] = [];
    for (const [args, command, scope] of runs) {
      const { r, added } = await audited(log, () => runCli(['--audit-log', log, ...args], { cwd: ws.dir }));
      expect(r.code, `${command}: ${r.stderr}`).toBe(0);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ command, scope, outcome: 'ok', exit_code: 0 });
      found.push(added[0]);
    }
    // What each did, as for every other write (the issue: "counts").
    for (const a of found) expect(a.counts, a.command).toEqual(expect.any(Object));
  });

  it('a registry write that fails: outcome failed, exit_code 3, the registry password masked', async () => {
    const { r, added } = await audited(log, () =>
      runCli(['--audit-log', log, '--registry', 'postgres://u:s3cretpw@127.0.0.1:1/db', '--registry-timeout', '1000', 'set-subscription', 'acme', '--tier', 'pilot_pro'], { cwd: ws.dir }),
    );
    expect(r.code, r.stderr).toBe(3);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ command: 'set-subscription', outcome: 'failed', exit_code: 3 });
    expect(JSON.stringify(added[0])).not.toContain('s3cretpw');
  });

  it('audit_log in the config file is relative to the project, also run from a subdirectory', async () => {
    writeFileSync(path.join(ws.dir, 'tenantctl.config.yaml'), 'audit_log: ./var/audit.jsonl\n');
    const sub = path.join(ws.dir, 'deep', 'er');
    mkdirSync(sub, { recursive: true });
    try {
      const projectLog = path.join(ws.dir, 'var', 'audit.jsonl');
      const { r, added } = await audited(projectLog, () => runCli(['reactivate', 'acme'], { cwd: sub }));
      expect(r.code, r.stderr).toBe(0);
      expect(added).toEqual([expect.objectContaining({ command: 'reactivate', outcome: 'ok' })]);
      expect(existsSync(path.join(sub, 'var'))).toBe(false);
    } finally {
      rmSync(path.join(ws.dir, 'tenantctl.config.yaml'));
    }
  });
});
