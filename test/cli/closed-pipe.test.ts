import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, tenantYaml, workspace, type Workspace } from '../helpers/setup.js';

/**
 * `tenantctl ... | head`: the reader goes away early. That ends the output,
 * it is not an error: the exit code stays the command's own (what `set -o
 * pipefail` sees), for stdout and for stderr (`2>&1 | head`), never a crash.
 */
describe('a pipe closed by its reader', () => {
  let ws: Workspace;
  beforeAll(() => {
    // Enough output to fill a pipe many times over: a plan line per tenant, a warning per stripped secret.
    const files: Record<string, string> = {};
    for (let i = 0; i < 1500; i++) files[`s${i}`] = tenantYaml(`s${i}`, `S ${i}`, `email:\n  smtp: { password: literal-${i} }\n`);
    ws = workspace(files, { registry: false });
    ws.writeTenant('broken', 'client:\n  id: broken\n  name: [unclosed\n');
  });
  afterAll(() => ws.cleanup());

  const piped = (redirect: string) =>
    spawnSync('bash', ['-c', `set -o pipefail; node ${JSON.stringify(BIN)} migrate-yaml --dry-run -o plain ${redirect} | head -c 100 > /dev/null`], {
      cwd: ws.dir,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('keeps the command\'s exit code (4: a bad file) whether stdout, stderr or both go to the closed pipe', () => {
    const whole = spawnSync('node', [BIN, 'migrate-yaml', '--dry-run', '-o', 'plain'], { cwd: ws.dir, env: cleanEnv(), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(whole.status).toBe(4);
    for (const redirect of ['2>/dev/null', '2>&1', '2>&1 >/dev/null']) {
      const r = piped(redirect);
      expect(r.status, `${redirect}: ${r.stderr}`).toBe(4);
      expect(r.stderr).not.toMatch(/EPIPE|internal error|Unhandled/);
    }
  });

  // Linux's /dev/full: every write fails with ENOSPC (a full disk under `> out.prom` or a cron's `2>>log`).
  it.runIf(process.platform === 'linux')('a stream that cannot be written (a full disk): stdout failing is one line and exit 74, stderr failing loses nothing of stdout (it was a stack trace, exit 1)', () => {
    const run = (redirect: string) => spawnSync('bash', ['-c', `node ${JSON.stringify(BIN)} ${redirect}`], { cwd: ws.dir, env: cleanEnv(), encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
    for (const command of ['list-tenants', 'list-tenants -o json']) {
      const r = run(`${command} > /dev/full`);
      expect(r.status, r.stderr).toBe(74);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'))).toEqual(['error: the output could not be written to stdout (ENOSPC: no space left on device, write)']);
      expect(r.stderr).not.toMatch(/\n\s+at |internal error|Unhandled/);
    }
    // Outside a command's action too: the completion script, --help, --version (they exited 0, the file empty).
    for (const command of ['completion bash', '--help', '--version']) {
      const r = run(`${command} > /dev/full`);
      expect(r.status, `${command}: ${r.stderr}`).toBe(74);
      expect(r.stderr).toMatch(/^error: the output could not be written to stdout \(ENOSPC/m);
    }
    // The command's own failure keeps its code (a bad file: 4), the lost output said beside it.
    const failed = run('migrate-yaml --dry-run > /dev/full');
    expect(failed.status).toBe(4);
    expect(failed.stderr).toMatch(/^warning: the output could not be written to stdout/m);
    const quiet = run('list-tenants -o json 2>/dev/full');
    expect(quiet.status).toBe(0);
    expect(JSON.parse(quiet.stdout)).toHaveLength(1500);
  });
});
