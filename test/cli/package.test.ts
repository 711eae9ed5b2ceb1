import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tenantYaml } from '../helpers/setup.js';

/**
 * What `npm pack` ships installs into an empty project and runs from any
 * working directory: nothing it needs is left behind in the repository.
 */
describe('the packed tarball', () => {
  let dir: string;
  let bin: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-pack-'));
    // dist/ is already built by `npm test`; --ignore-scripts packs exactly that.
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
    const tarball = path.join(dir, JSON.parse(out)[0].filename);
    const app = path.join(dir, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // Dependencies come from npm's cache (`npm ci` filled it), the registry only when missing.
    execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, stdio: 'pipe' });
    bin = path.join(app, 'node_modules', '.bin', 'tenantctl');
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[], cwd: string) => {
    const r = spawnSync(bin, args, { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: dir, NO_COLOR: '1' }, timeout: 60_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('runs --version, get-config and doctor from an unrelated working directory', () => {
    const elsewhere = path.join(dir, 'somewhere', 'else');
    mkdirSync(path.join(elsewhere, 'tenants'), { recursive: true });
    writeFileSync(path.join(elsewhere, 'tenants', 'acme.yaml'), tenantYaml('acme', 'Acme Travel'));
    expect(run(['--version'], elsewhere).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const get = run(['get-config', 'acme', '--json'], elsewhere);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ source: 'yaml', config: { client: { id: 'acme', name: 'Acme Travel' } } });
    // A read creates no registry.
    expect(existsSync(path.join(elsewhere, '.tenantctl'))).toBe(false);
    const doctor = run(['doctor', '--json'], elsewhere);
    expect(doctor.code, doctor.stderr).toBe(0);
    expect(JSON.parse(doctor.stdout).checks.some((c: { area: string }) => c.area === 'tenants')).toBe(true);
  });

  it('installs the library too: the package name resolves to the same API', () => {
    const app = path.join(dir, 'app');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "import('tenantctl').then((m) => console.log(typeof m.Tenantctl, typeof m.KeySpace))"], { cwd: app, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('function function');
    // Its package.json is reachable (tools read a dependency's version so), and the source maps' sources are shipped.
    const pkg = spawnSync(process.execPath, ['--input-type=module', '-e', "import { createRequire } from 'node:module'; console.log(createRequire(process.cwd() + '/').resolve('tenantctl/package.json'))"], { cwd: app, encoding: 'utf8' });
    expect(pkg.stderr).toBe('');
    const installed = path.dirname(pkg.stdout.trim());
    const map = JSON.parse(readFileSync(path.join(installed, 'dist', 'index.js.map'), 'utf8')) as { sources: string[] };
    for (const source of map.sources) expect(existsSync(path.resolve(installed, 'dist', source)), source).toBe(true);
    // The PGlite installed with it is the one its packed data directory was made for (a new registry is unpacked, not initdb).
    const pglite = JSON.parse(readFileSync(path.join(app, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8')) as { version: string };
    expect(existsSync(path.join(installed, 'dist', 'pglite-datadir', `${pglite.version}.tar.gz`)), pglite.version).toBe(true);
  });
});
