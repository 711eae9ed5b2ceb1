import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, tenantYaml, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';

/**
 * A signal that lands after a write command has finished (its answer written, its audit line appended):
 * the exit code is the one the audit line records. Before, a SIGTERM while the command closed its
 * connections exited 143 (a batched command: "the answer above is complete"; any other: at once), and one
 * during the launcher's last steps (the code cache written) killed the process by the default action,
 * while the audit line said exit 0 (README's "Known and left").
 *
 * The signal is placed exactly where it used to slip through by a --require hook (fault injection, not a
 * mock): the process sends itself the signal right after the audit line's append, or right after the code
 * cache's rename; the signal, the handlers and everything else are real.
 */

const redis = useOwnRedis();
let dir: string;
let hook: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-late-'));
  hook = path.join(dir, 'late-signal.cjs');
  writeFileSync(
    hook,
    `'use strict';
const fs = require('node:fs');
const when = process.env.LATE_SIGNAL_AFTER;
const signal = process.env.LATE_SIGNAL || 'SIGTERM';
const wrap = (name, matches) => {
  const original = fs[name];
  fs[name] = function (...args) {
    const result = original.apply(this, args);
    if (matches(String(args[0]), String(args[1]))) process.kill(process.pid, signal);
    return result;
  };
};
if (when === 'audit') wrap('appendFileSync', (file) => file === process.env.LATE_SIGNAL_FILE);
if (when === 'code-cache') wrap('renameSync', (_from, to) => to.startsWith(process.env.XDG_CACHE_HOME));
if (when === 'stdout') {
  const write = process.stdout.write;
  let sent = false;
  process.stdout.write = function (...args) {
    const result = write.apply(this, args);
    if (!sent) process.kill(process.pid, signal);
    sent = true;
    return result;
  };
}
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const auditLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { exit_code: number; outcome: string; counts?: Record<string, number> });

describe('a signal after a write command finished', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = workspace({ acme: tenantYaml('acme') });
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  pilot_core: { features: [], max_devices: 2 }\n');
    const migrated = await runCli(['migrate-yaml'], { cwd: ws.dir });
    expect(migrated.code, migrated.stderr).toBe(0);
  });
  afterAll(() => ws.cleanup());

  it.each([
    ['invalidate (stops between batches)', 'SIGTERM', ['invalidate', 'acme']],
    ['invalidate-all (stops between batches)', 'SIGINT', ['invalidate-all', '--yes']],
    ['set-subscription (ends at once on a signal)', 'SIGTERM', ['set-subscription', 'acme', '--tier', 'pilot_core']],
  ])('%s: a %s right after its audit line: the exit code is the one the line records, nothing said twice', async (_what, signal, args) => {
    await redis.client.set('tenant_config:acme', '{"client":{"id":"acme"}}');
    const audit = path.join(dir, `audit-${args[0]}.log`);
    const r = await runCli([...args, '--redis-url', redis.server.url, '--audit-log', audit], {
      cwd: ws.dir,
      env: { NODE_OPTIONS: `--require ${hook}`, LATE_SIGNAL_AFTER: 'audit', LATE_SIGNAL_FILE: audit, LATE_SIGNAL: signal },
    });
    const lines = auditLines(audit);
    expect(lines).toHaveLength(1);
    expect(lines[0].outcome, r.stderr).toBe('ok');
    expect(r.code).toBe(lines[0].exit_code);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/answer above is complete|SIGTERM|SIGINT|interrupt/i);
    if (args[0] !== 'set-subscription') expect(await redis.client.exists('tenant_config:acme')).toBe(0);
  });

  it('invalidate --json: a SIGTERM as its answer is written: the answer whole, and the exit code the one the audit line records', async () => {
    await redis.client.set('tenant_config:acme', '{"client":{"id":"acme"}}');
    const audit = path.join(dir, 'audit-stdout.log');
    const r = await runCli(['invalidate', 'acme', '--json', '--redis-url', redis.server.url, '--audit-log', audit], {
      cwd: ws.dir,
      env: { NODE_OPTIONS: `--require ${hook}`, LATE_SIGNAL_AFTER: 'stdout' },
    });
    const lines = auditLines(audit);
    expect(lines).toHaveLength(1);
    expect(r.code, r.stderr).toBe(lines[0].exit_code);
    expect(JSON.parse(r.stdout)).toMatchObject({ dryRun: false, tenants: [{ families: { tenant_config: 1 } }] });
  });

  it('a SIGTERM while the launcher writes its code cache (after the command, its handlers were removed): exit 0 as the audit line says, not killed', async () => {
    const cacheHome = mkdtempSync(path.join(dir, 'cache-'));
    const audit = path.join(dir, 'audit-code-cache.log');
    const r = await runCli(['invalidate', 'acme', '--redis-url', redis.server.url, '--audit-log', audit], {
      cwd: ws.dir,
      env: { NODE_OPTIONS: `--require ${hook}`, LATE_SIGNAL_AFTER: 'code-cache', XDG_CACHE_HOME: cacheHome },
    });
    const lines = auditLines(audit);
    expect(lines).toHaveLength(1);
    expect(r.code).toBe(lines[0].exit_code);
    expect(r.code).toBe(0);
  });
});
