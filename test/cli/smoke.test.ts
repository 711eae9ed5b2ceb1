import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli, runCliOnTerminal, sharedRedisUrl, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';

describe('the CLI end to end on the embedded registry', () => {
  let ws: Workspace;
  const id = uniq('smoke');
  beforeAll(() => {
    ws = workspace({ [id]: tenantYaml(id, 'Smoke Test Co') });
  });
  afterAll(() => ws.cleanup());

  it('migrates a tenant and reads it back from the registry, then from the cache', async () => {
    const env = { REDIS_URL: sharedRedisUrl() };
    const migrate = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env });
    expect(migrate.stderr).toBe('');
    expect(migrate.code).toBe(0);
    expect(JSON.parse(migrate.stdout).items).toEqual([expect.objectContaining({ id, action: 'create', written: true, cacheInvalidated: true })]);

    const first = await runCli(['get-config', id, '--json'], { cwd: ws.dir, env });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ source: 'database', config: { client: { id, name: 'Smoke Test Co' } } });

    // Warming is opt-in; the next plain read is then a cache hit.
    const warm = await runCli(['get-config', id, '--json', '--warm'], { cwd: ws.dir, env });
    expect(JSON.parse(warm.stdout)).toMatchObject({ source: 'database' });
    const second = await runCli(['get-config', id, '--json'], { cwd: ws.dir, env });
    expect(JSON.parse(second.stdout)).toMatchObject({ source: 'cache', config: { _meta: { source: 'cache', origin: 'database' } } });
  });

  it('piped too, the first write says it is creating the embedded registry, and a dry run that there is none yet (run from the wrong directory, a script made a new registry unseen)', async () => {
    const id = uniq('piped');
    const fresh = workspace({ [id]: tenantYaml(id, 'Piped Co') }, { registry: false });
    try {
      const where = path.join(fresh.dir, '.tenantctl', 'registry');
      const plan = await runCli(['migrate-yaml', '--dry-run'], { cwd: fresh.dir });
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stderr).toContain(`note: no embedded registry at ${where}: planned against an empty one, which the run would create`);
      const first = await runCli(['migrate-yaml'], { cwd: fresh.dir });
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain(`note: creating the embedded registry in ${where} (first run: a few seconds)`);
      const again = await runCli(['migrate-yaml'], { cwd: fresh.dir });
      expect(again.stderr).not.toContain('embedded registry');
    } finally {
      fresh.cleanup();
    }
  });

  it('on a terminal, the first write says it is creating the embedded registry (initdb: seconds of silence before); later runs do not', async () => {
    const first1 = uniq('first');
    const fresh = workspace({ [first1]: tenantYaml(first1, 'First Co') }, { registry: false });
    try {
      const first = await runCliOnTerminal(['migrate-yaml'], /never-asked/, '', {}, { cwd: fresh.dir });
      expect(first.code, first.stdout).toBe(0);
      expect(first.stdout).toContain(`creating the embedded registry in ${path.join(fresh.dir, '.tenantctl', 'registry')} (first run: a few seconds)`);
      const again = await runCliOnTerminal(['migrate-yaml'], /never-asked/, '', {}, { cwd: fresh.dir });
      expect(again.code, again.stdout).toBe(0);
      expect(again.stdout).not.toContain('creating the embedded registry');
    } finally {
      fresh.cleanup();
    }
  });

  it('the embedded registry directory is the owner\'s alone (0700, as PostgreSQL keeps its data directory): PGlite writes its files 0666', async () => {
    // An existing one with the umask's accidental access (0755: group and world read) is set back to 0700 when
    // opened; a team's group access set up on purpose (setgid, 2770) stays.
    chmodSync(ws.registryDir, 0o755);
    expect((await runCli(['list-tenants'], { cwd: ws.dir })).code).toBe(0);
    expect(statSync(ws.registryDir).mode & 0o777).toBe(0o700);
    chmodSync(ws.registryDir, 0o2770);
    expect((await runCli(['list-tenants'], { cwd: ws.dir })).code).toBe(0);
    expect(statSync(ws.registryDir).mode & 0o7777).toBe(0o2770);
    // A new one is made so.
    const fresh = workspace({ [id]: tenantYaml(id, 'Fresh') }, { registry: false });
    try {
      expect((await runCli(['migrate-yaml'], { cwd: fresh.dir })).code).toBe(0);
      expect(statSync(fresh.registryDir).mode & 0o777).toBe(0o700);
    } finally {
      fresh.cleanup();
    }
  });

  it('--help and --version exit 0; an unknown command or flag exits 2 with one line', async () => {
    expect((await runCli(['--help'])).code).toBe(0);
    // --version alone is answered by the launcher; with another flag, by commander: the same line, package.json's version.
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-V'], ['-o', 'json', '--version']]) {
      const r = await runCli(args);
      expect([r.code, r.stdout, r.stderr], args.join(' ')).toEqual([0, `${version}\n`, '']);
    }
    // A reader that has gone (`tenantctl --version | true`): the output ends there, exit 0, nothing on stderr.
    for (const args of [['--version'], ['-o', 'json', '--version'], ['completion', 'bash']]) {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect([code, stderr], args.join(' ')).toEqual([0, '']);
    }
    const unknownFlag = await runCli(['get-config', 'acme', '--bogus']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr.trim().split('\n')).toHaveLength(1);
    const unknownCmd = await runCli(['frobnicate']);
    expect(unknownCmd.code).toBe(2);
    const missingArg = await runCli(['get-config']);
    expect(missingArg.code).toBe(2);
    expect(missingArg.stderr).toMatch(/missing required argument/);
  });
});
