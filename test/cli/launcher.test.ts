import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/setup.js';

/**
 * bin/tenantctl.js is CommonJS (src/cli/launch.ts): a failed or unfinished
 * launch must still exit non-zero (70, internal), as the ES module's
 * top-level await did, whatever the process's unhandled-rejection mode.
 * A copy of the launcher runs beside a stand-in for the CLI bundle.
 */
describe('the launcher when the CLI itself fails', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-launcher-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
  mkdirSync(path.join(dir, 'dist', 'cli-bundle'), { recursive: true });
  cpSync(path.join(ROOT, 'dist', 'cli-bundle', 'launcher.cjs'), path.join(dir, 'dist', 'cli-bundle', 'launcher.cjs'));
  const bundle = path.join(dir, 'dist', 'cli-bundle', 'tenantctl.cjs');
  const run = () =>
    spawnSync(process.execPath, [path.join(dir, 'bin', 'tenantctl.js'), 'config'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache'), NODE_OPTIONS: '--unhandled-rejections=warn' },
      timeout: 20_000,
    });

  it('a bundle that cannot be loaded: exit 70 with the cause', () => {
    rmSync(bundle, { force: true });
    const r = run();
    expect(r.status).toBe(70);
    expect(r.stderr).toMatch(/^tenantctl: internal error: .*ENOENT/m);
  });

  it('a command whose promise never settles: exit 70, said, instead of exiting 0 in silence', () => {
    writeFileSync(bundle, 'exports.main = () => new Promise(() => {});\n');
    const r = run();
    expect(r.status).toBe(70);
    expect(r.stderr).toContain('tenantctl: internal: the command never finished');
  });

  it('a command that fails after its output: exit 70, the stack said', () => {
    writeFileSync(bundle, "exports.main = async () => { process.stdout.write('partial\\n'); throw new Error('boom'); };\n");
    const r = run();
    expect([r.status, r.stdout]).toEqual([70, 'partial\n']);
    expect(r.stderr).toMatch(/^tenantctl: internal error: Error: boom/m);
  });
});

/**
 * A large document to a reader that is slow to take it: the pipe holds 64 KB, the rest waits in the process.
 * The launcher's "open handle" exit a second after the command cut it there (valid-looking output, exit 0,
 * "internal: an open handle kept the process alive"): a fault review piping migrate-yaml -o json into a script.
 */
describe('output to a slow reader', () => {
  it('a 400 KB JSON document read 2.5 s late arrives whole, exit 0, nothing said on stderr', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN, workspace } = await import('../helpers/setup.js');
    const ws = workspace({}, { registry: false });
    try {
      writeFileSync(path.join(ws.tenantsDir, 'big.yaml'), `client:\n  id: big\n  name: Big\nnotes: "${'n'.repeat(400_000)}"\n`);
      const child = spawn(process.execPath, [BIN, 'get-config', 'big', '--no-cache', '-o', 'json'], { cwd: ws.dir, env: { PATH: process.env.PATH ?? '', HOME: ws.dir }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      // Not read at first: the child's writes fill the pipe and wait.
      child.stdout.pause();
      await new Promise((r) => setTimeout(r, 2500));
      const chunks: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.stdout.resume();
      const code = await new Promise<number | null>((r) => child.on('close', r));
      const text = Buffer.concat(chunks).toString('utf8');
      expect(stderr).not.toMatch(/internal/);
      expect(code).toBe(0);
      expect(JSON.parse(text).config.notes).toHaveLength(400_000);
    } finally {
      ws.cleanup();
    }
  });
});
