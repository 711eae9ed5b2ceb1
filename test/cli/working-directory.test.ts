import { realpathSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { BIN, cleanEnv, expectOneLineError, ROOT, runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { pathToFileURL } from 'node:url';

/**
 * Issue 7 §7: the project is found as git finds its repository (walk up to
 * the first directory holding `tenantctl.config.{json,yaml,yml}` or
 * `.tenantctl/`); relative paths in the config file are relative to it; only
 * a command that writes creates the embedded registry; a read that finds none
 * says where it looked; a tenants directory named explicitly that does not
 * exist is a usage error naming the path.
 */

const MARKERS = ['.tenantctl', 'tenantctl.config.json', 'tenantctl.config.yaml', 'tenantctl.config.yml'];

/** Every file and directory under `dir`, relative, sorted (what "creates nothing" is checked against). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory() && e.name !== 'registry') walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

beforeAll(() => {
  // The "unrelated directory" tests need no project above the temp directory.
  for (let d = os.tmpdir(); ; d = path.dirname(d)) {
    for (const m of MARKERS) expect(existsSync(path.join(d, m)), `${path.join(d, m)} exists: remove it to run these tests`).toBe(false);
    if (path.dirname(d) === d) break;
  }
});

describe('run from a subdirectory of a project', () => {
  let ws: Workspace;
  let sub: string;
  beforeAll(() => {
    // A project marked by .tenantctl/ only (no config file), with a ready embedded registry.
    ws = workspace({ acme: tenantYaml('acme', 'Acme'), beta: tenantYaml('beta', 'Beta') });
    sub = path.join(ws.dir, 'src', 'deeper');
    mkdirSync(sub, { recursive: true });
  });
  afterAll(() => ws.cleanup());

  it('.tenantctl/ marks the project: migrate-yaml, get-config and list-tenants use its tenants and registry', async () => {
    const m = await runCli(['migrate-yaml', 'acme', '--json'], { cwd: sub });
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout).items).toEqual([expect.objectContaining({ id: 'acme', action: 'create', written: true })]);
    const get = await runCli(['get-config', 'acme', '--json'], { cwd: sub });
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ source: 'database', config: { client: { name: 'Acme' } } });
    const list = await runCli(['list-tenants', '--json'], { cwd: sub });
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).map((t: { id: string; source: string }) => `${t.id}:${t.source}`)).toEqual(['acme:database', 'beta:yaml']);
    expect(list.stderr).toBe('');
    // Nothing of the tool's in the subdirectory.
    expect(readdirSync(sub)).toEqual([]);
  });
});

describe('a project marked by its config file, with relative paths in it', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-project-'));
    writeFileSync(path.join(root, 'tenantctl.config.yaml'), 'tenants_dir: ./t\n');
    mkdirSync(path.join(root, 't'));
    writeFileSync(path.join(root, 't', 'beta.yaml'), tenantYaml('beta', 'Beta From t'));
    mkdirSync(path.join(root, 'a', 'b'), { recursive: true });
    // A nested project: its own config (JSON) wins inside it.
    mkdirSync(path.join(root, 'inner', 'x'), { recursive: true });
    writeFileSync(path.join(root, 'inner', 'tenantctl.config.json'), JSON.stringify({ tenants_dir: './inner-t' }));
    mkdirSync(path.join(root, 'inner', 'inner-t'));
    writeFileSync(path.join(root, 'inner', 'inner-t', 'gamma.yml'), tenantYaml('gamma', 'Gamma'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('tenants_dir: ./t read from a subdirectory is the project\'s t/; no registry: a note says where it looked, nothing is created', async () => {
    const before = tree(root);
    const cwd = path.join(root, 'a', 'b');
    const get = await runCli(['get-config', 'beta', '--json'], { cwd });
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ source: 'yaml', config: { client: { name: 'Beta From t' } } });
    expect(get.stderr.trim().split('\n')).toHaveLength(1);
    expect(get.stderr).toContain(path.join(root, '.tenantctl', 'registry'));
    const list = await runCli(['list-tenants', '--json'], { cwd });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: 'beta', source: 'yaml' })]);
    expect(tree(root)).toEqual(before);
  });

  it('the first marker walking up wins: a nested project with tenantctl.config.json reads its own tenants', async () => {
    const cwd = path.join(root, 'inner', 'x');
    const gamma = await runCli(['get-config', 'gamma', '--json'], { cwd });
    expect(gamma.code, gamma.stderr).toBe(0);
    expect(JSON.parse(gamma.stdout).config.client.name).toBe('Gamma');
    const beta = await runCli(['get-config', 'beta'], { cwd });
    expect(beta.code).toBe(1);
    expect(beta.stderr).toMatch(/not found/);
  });

  it('a tenants_dir in the config file that does not exist is exit 2 naming the resolved path', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-project-'));
    try {
      writeFileSync(path.join(dir, 'tenantctl.config.yml'), 'tenants_dir: ./nope\n');
      mkdirSync(path.join(dir, 'sub'));
      const r = await runCli(['list-tenants'], { cwd: path.join(dir, 'sub') });
      expect(r.code).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toContain(path.join(dir, 'nope'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('run from an unrelated empty directory', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-elsewhere-'));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  it('get-config: exit 1 (not found), a note saying where it looked, nothing created', async () => {
    const r = await runCli(['get-config', 'acme'], { cwd });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/not found/);
    expect(r.stderr).toMatch(/^note: .*/m);
    expect(r.stderr).toContain(path.join(cwd, '.tenantctl', 'registry'));
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('list-tenants: no tenants, the note and a warning that there was nothing to look in (it looked like an empty project), nothing created', async () => {
    const json = await runCli(['list-tenants', '--json'], { cwd });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([]);
    const said = json.stderr.trim().split('\n');
    expect(said).toHaveLength(2);
    expect(said[0]).toContain(path.join(cwd, '.tenantctl', 'registry'));
    expect(said[1]).toBe(`warning: no tenants listed: there is no tenants directory at ${path.join(cwd, 'tenants')}: run from the project, or give --tenants-dir`);
    const table = await runCli(['list-tenants'], { cwd });
    expect(table.code).toBe(0);
    // At most a header: no tenant row.
    expect(table.stdout).not.toMatch(/\b(yaml|database)\b/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('a file\'s error and another\'s warning name their files one way: relative below the working directory, else absolute (the error was absolute, the warning ../-relative)', async () => {
    const project = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-paths-'));
    try {
      mkdirSync(path.join(project, 'tenants'));
      writeFileSync(path.join(project, 'tenants', 'broken.yaml'), 'client:\n  id: broken\n  name: [x\n');
      writeFileSync(path.join(project, 'tenants', 'warned.yaml'), tenantYaml('warned', 'Warned', 'smtp:\n  password: hunter2\n'));
      const dir = path.join(project, 'tenants');
      for (const [from, tenantsDir, shown] of [[cwd, dir, dir], [project, 'tenants', 'tenants']]) {
        const r = await runCli(['--tenants-dir', tenantsDir, 'migrate-yaml', '--dry-run'], { cwd: from });
        expect(r.stdout + r.stderr).toContain(`${path.join(shown, 'broken.yaml')}:3: `);
        expect(r.stderr).toContain(`warning: ${path.join(shown, 'warned.yaml')}:`);
        expect(r.stdout + r.stderr).not.toContain('../');
      }
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('check-permission / get-permissions: exit 3 saying where it looked and what to do, nothing created', async () => {
    for (const args of [['check-permission', 'acme', 'has_ai'], ['get-permissions', 'acme']]) {
      const r = await runCli(args, { cwd });
      expect(r.code, args[0]).toBe(3);
      expectOneLineError(r);
      expect(r.stderr).toContain(path.join(cwd, '.tenantctl', 'registry'));
      expect(r.stderr).toMatch(/looked from the working directory/);
      expect(r.stderr).toMatch(/migrate-yaml/);
      expect(r.stderr).toMatch(/--registry|DATABASE_URL/);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('dry runs create nothing either', async () => {
    const tenants = workspace({ acme: tenantYaml('acme', 'Acme') }, { registry: false });
    try {
      const r = await runCli(['migrate-yaml', '--dry-run', '--json', '--tenants-dir', tenants.tenantsDir], { cwd });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).items).toEqual([expect.objectContaining({ id: 'acme', action: 'create' })]);
      expect(readdirSync(cwd)).toEqual([]);
    } finally {
      tenants.cleanup();
    }
  });

  it('migrate-yaml with no tenants directory here (a subdirectory of a fresh clone): exit 2, no stray registry created', async () => {
    const r = await runCli(['migrate-yaml'], { cwd });
    expect(r.code).toBe(2);
    expectOneLineError(r);
    expect(r.stderr).toContain(`no tenants directory at ${path.join(cwd, 'tenants')}: nothing to migrate`);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('a writing command creates .tenantctl/registry in the working directory, which later reads use', async () => {
    const tenants = workspace({ acme: tenantYaml('acme', 'Acme Written Here') }, { registry: false });
    try {
      const m = await runCli(['migrate-yaml', '--json', '--tenants-dir', tenants.tenantsDir], { cwd, timeoutMs: 40_000 });
      expect(m.code, m.stderr).toBe(0);
      expect(JSON.parse(m.stdout).counts.create).toBe(1);
      expect(readdirSync(cwd)).toEqual(['.tenantctl']);
      expect(existsSync(path.join(cwd, '.tenantctl', 'registry', 'PG_VERSION'))).toBe(true);
      // Nothing of it in the tenants' directory.
      expect(readdirSync(tenants.dir)).toEqual(['tenants']);
      // This directory is a project now: the registry answers (no tenants directory here).
      const get = await runCli(['get-config', 'acme', '--json'], { cwd });
      expect(get.code, get.stderr).toBe(0);
      expect(JSON.parse(get.stdout)).toMatchObject({ source: 'database', config: { client: { name: 'Acme Written Here' } } });
    } finally {
      tenants.cleanup();
    }
  }, 45_000);
});

describe('a tenants directory in another project, given from elsewhere', () => {
  let cwd: string;
  let other: Workspace;
  beforeAll(() => {
    cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-elsewhere-'));
    // A project of its own (marked by .tenantctl/): its registry and settings are there.
    other = workspace({ acme: tenantYaml('acme', 'Acme') });
  });
  afterAll(() => {
    rmSync(cwd, { recursive: true, force: true });
    other.cleanup();
  });

  it('migrate-yaml (and its dry run) is exit 2 and makes no second, empty registry here (it did: "1 create", exit 0, unseen)', async () => {
    for (const args of [['migrate-yaml'], ['migrate-yaml', '--dry-run']]) {
      const r = await runCli(['--tenants-dir', other.tenantsDir, ...args], { cwd });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toContain(`the tenants directory ${other.tenantsDir} is in the project at ${other.dir}`);
      expect(r.stderr).toMatch(/nothing was created \(run from that project, or give --registry\)$/m);
      expect(readdirSync(cwd)).toEqual([]);
    }
    // Reads from here still work (they create nothing).
    const get = await runCli(['--tenants-dir', other.tenantsDir, 'get-config', 'acme', '--json'], { cwd });
    expect(get.code, get.stderr).toBe(0);
    // From the project itself, its tenants named through a symlink are its own (a review: refused by spelling).
    const link = path.join(cwd, 'link');
    symlinkSync(other.dir, link);
    try {
      const own = await runCli(['--tenants-dir', path.join(link, 'tenants'), 'migrate-yaml', '--dry-run'], { cwd: other.dir });
      expect(own.code, own.stderr).toBe(0);
    } finally {
      rmSync(link);
    }
  });

  it('named through a symlink to its tenants directory (here: tenants -> the other project\'s): the same exit 2, nothing made (it made a second registry here and wrote into it, exit 0)', async () => {
    const linked = path.join(cwd, 'tenants');
    symlinkSync(other.tenantsDir, linked);
    try {
      const r = await runCli(['--tenants-dir', 'tenants', 'migrate-yaml'], { cwd });
      expect(r.code, r.stderr).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toContain(`is in the project at ${realpathSync(other.dir)}`);
      expect(readdirSync(cwd)).toEqual(['tenants']);
    } finally {
      rmSync(linked);
    }
  });
});

describe('a tenants directory given explicitly that does not exist', () => {
  let cwd: string;
  const missing = `/no/such/dir-${uniq('')}`;
  beforeEach(() => {
    cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-elsewhere-'));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  it('--tenants-dir and TENANTS_DIR: exit 2 naming the path (reads)', async () => {
    for (const r of [
      await runCli(['--tenants-dir', missing, 'get-config', 'acme'], { cwd }),
      await runCli(['list-tenants'], { cwd, env: { TENANTS_DIR: missing } }),
      await runCli(['migrate-yaml', '--dry-run'], { cwd, env: { TENANTS_DIR: missing } }),
    ]) {
      expect(r.code, r.stderr).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toContain(missing);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('migrate-yaml --tenants-dir <missing>: exit 2 naming the path, and no registry created', async () => {
    const r = await runCli(['migrate-yaml', '--tenants-dir', missing], { cwd, timeoutMs: 40_000 });
    expect(r.code, r.stderr).toBe(2);
    expectOneLineError(r);
    expect(r.stderr).toContain(missing);
    // A usage error changes nothing: today a 39 MB .tenantctl/registry is created before the directory is checked.
    expect(readdirSync(cwd)).toEqual([]);
  }, 45_000);
});

describe('a working directory removed while in use (the shell still in it)', () => {
  /** The CLI started inside `dir` after the directory is removed: sh cds into it, removes it, and execs node there. */
  const runInRemoved = (args: string[]) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-gone-'));
    const r = spawnSync('/bin/sh', ['-c', 'cd "$1" && rmdir "$1" && shift && exec "$@"', 'sh', dir, process.execPath, BIN, ...args], { env: cleanEnv(), encoding: 'utf8', timeout: 25_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: 0 };
  };

  it('every command says so in one line, exit 2 (it was "internal error: ENOENT ... uv_cwd", exit 70)', () => {
    for (const args of [['test-redis', '--redis-url', 'redis://127.0.0.1:1'], ['get-config', 'acme'], ['migrate-yaml', '--dry-run'], ['config']]) {
      const r = runInRemoved(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/the working directory no longer exists .*: cd to an existing directory and run again$/m);
    }
    // The library's own words give no CLI advice (its callers give `cwd`); the CLI adds it by the reason.
    // (A script file: node's -e needs a working directory of its own.)
    const scriptDir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-gone-lib-'));
    const script = path.join(scriptDir, 'app.mjs');
    writeFileSync(script, `const { Tenantctl } = await import('${pathToFileURL(path.join(ROOT, 'dist', 'index.js')).href}');\ntry { new Tenantctl(); } catch (e) { console.log(JSON.stringify({ reason: e.reason, message: e.message })); }\n`);
    const lib = spawnSync('/bin/sh', ['-c', 'd=$(mktemp -d) && cd "$d" && rmdir "$d" && exec "$@"', 'sh', process.execPath, script], { env: cleanEnv(), encoding: 'utf8', timeout: 25_000 });
    rmSync(scriptDir, { recursive: true, force: true });
    const said = JSON.parse(lib.stdout) as { reason: string; message: string };
    expect(said.reason, lib.stderr).toBe('no-working-directory');
    expect(said.message).not.toMatch(/\bcd\b|run again/);
    // --version and --help need no directory.
    expect(runInRemoved(['--version']).code).toBe(0);
  });
});
