import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, runCli, sharedRedisUrl, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';

/**
 * Commands run from the wrong place, or pointed at the wrong one: they refuse with exit 2 and change
 * nothing, where before they deleted a whole cache or filled a directory with a database cluster.
 */
describe('run from the wrong directory, or given the wrong path', () => {
  // A database of its own on the shared Redis: a verify --fix that deleted "every orphan" would reach
  // other tests' keys on db 0.
  const url = `${sharedRedisUrl()}/11`;
  let redis: Redis;
  let ws: Workspace;
  let nowhere: string;
  beforeAll(async () => {
    redis = new Redis(url, { lazyConnect: true });
    await redis.connect();
    ws = workspace({}, { registry: false });
    nowhere = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-nowhere-'));
  });
  afterAll(async () => {
    redis.disconnect();
    ws.cleanup();
    rmSync(nowhere, { recursive: true, force: true });
  });

  it('verify --fix with neither a registry nor a tenants directory is exit 2 and deletes nothing (every entry read as an orphan)', async () => {
    const [a, b] = [uniq('vw'), uniq('vw')];
    await redis.set(`tenant_config:${a}`, JSON.stringify({ client: { id: a, name: 'A' } }), 'EX', 600);
    await redis.set(`tenant_config:${b}`, JSON.stringify({ client: { id: b, name: 'B' } }), 'EX', 600);
    for (const args of [['verify', '--fix'], ['verify']]) {
      const r = await runCli(['--redis-url', url, ...args], { cwd: nowhere });
      expect(r.code, r.stderr).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/nothing to compare the cache with: .*no tenants directory at .* \(run from the project, or give --tenants-dir \/ --registry\)$/m);
      expect(await redis.exists(`tenant_config:${a}`, `tenant_config:${b}`)).toBe(2);
    }
    // In the project (a tenants directory, no registry yet) it runs, comparing with YAML.
    ws.writeTenant(a, tenantYaml(a, 'A'));
    const inProject = await runCli(['--redis-url', url, 'verify', a], { cwd: ws.dir });
    expect(inProject.stderr).toMatch(/comparing with YAML only/);
    expect([0, 1]).toContain(inProject.code);
    // A named tenant nobody knows is said (before: "verified 0 cached entries", nothing else).
    const typo = await runCli(['--redis-url', url, 'verify', `${a}x`], { cwd: ws.dir });
    expect(typo.code, typo.stderr).toBe(0);
    expect(typo.stderr).toMatch(new RegExp(`^warning: tenant ${a}x is in neither the registry nor YAML \\(a typo\\?\\)$`, 'm'));
  });

  it('invalidate --pending with no registry here says so: nothing owed, and where it looked (it printed nothing at all, as if the owed invalidations were done)', async () => {
    const r = await runCli(['--redis-url', url, 'invalidate', '--pending'], { cwd: nowhere });
    expect(r.code, r.stderr).toBe(0);
    // Piped, a summary goes to stderr (stdout holds rows only).
    expect(r.stderr).toMatch(/^nothing owed by earlier writes$/m);
    expect(r.stderr).toMatch(/^note: no embedded registry at .*\.tenantctl\/registry: no invalidation can be owed there$/m);
    expect(existsSync(path.join(nowhere, '.tenantctl'))).toBe(false);
  });

  it('get-config from a directory with no project: exit 1 that says there was nothing to look in', async () => {
    const r = await runCli(['get-config', 'acme'], { cwd: nowhere });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: tenant acme not found in the registry or YAML: there is no tenants directory at .* \(run from the project, or give --tenants-dir\)$/m);
  });

  it('migrate-yaml --dry-run with no tenants directory is exit 2, as the real run (it showed an empty plan, exit 0)', async () => {
    for (const args of [['migrate-yaml', '--dry-run'], ['migrate-yaml']]) {
      const r = await runCli(args, { cwd: nowhere });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/no tenants directory at .*: nothing to migrate(; nothing was created)? \(run from the project, or give --tenants-dir\)$/m);
    }
    expect(readdirSync(nowhere)).toEqual([]);
  });

  it('migrate-yaml --registry <a directory holding files> is exit 2 and leaves it as it was (initdb ran in it)', async () => {
    ws.writeTenant('acme', tenantYaml('acme', 'Acme'));
    const before = readdirSync(ws.tenantsDir).sort();
    const r = await runCli(['migrate-yaml', '--registry', 'tenants'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/is not an embedded registry and not empty: refusing to create one there/);
    expect(readdirSync(ws.tenantsDir).sort()).toEqual(before);
    expect(existsSync(path.join(ws.tenantsDir, 'PG_VERSION'))).toBe(false);
    // Reads and the dry run too (before: exit 0, "a command that writes, such as migrate-yaml, creates it").
    for (const args of [['get-config', 'acme'], ['list-tenants'], ['migrate-yaml', '--dry-run']]) {
      const read = await runCli(['--registry', 'tenants', ...args], { cwd: ws.dir });
      expect(read.code, `${args.join(' ')}: ${read.stderr}`).toBe(2);
      expect(read.stderr).toMatch(/is not an embedded registry and not empty/);
    }
  });

  it('a registry path that is a file, or under one, is exit 2 (was "internal error", exit 70)', async () => {
    writeFileSync(path.join(ws.dir, 'reg-file'), 'not a directory\n');
    for (const registry of ['reg-file', 'reg-file/inner']) {
      for (const args of [['migrate-yaml'], ['get-config', 'acme']]) {
        const r = await runCli(['--registry', registry, ...args], { cwd: ws.dir });
        expect(r.code, `${registry} ${args.join(' ')}: ${r.stderr}`).toBe(args[0] === 'get-config' && registry === 'reg-file/inner' ? 0 : 2);
        if (r.code === 2) expectOneLineError(r);
      }
    }
  });

  it('a new or empty directory is still made a registry', async () => {
    const empty = path.join(ws.dir, 'empty-reg');
    mkdirSync(empty);
    const r = await runCli(['migrate-yaml', '--registry', 'empty-reg'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(empty, 'PG_VERSION'))).toBe(true);
  });
});

describe('a registry setting that is not usable fails only the commands that open the registry', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace({ acme: tenantYaml('acme', 'Acme') }, { registry: false });
  });
  afterAll(() => ws.cleanup());

  for (const [label, env] of [
    ['DATABASE_URL=mysql://… (another service\'s)', { DATABASE_URL: 'mysql://app:Pw0rd9@db:3306/app' }],
    ['SUPABASE_URL without its key', { SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_ANON_KEY: 'x' }],
  ] as const) {
    it(`${label}: test-redis, completion, schema and config run; get-config and migrate-yaml are exit 2`, async () => {
      const redis = sharedRedisUrl();
      const smoke = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: { ...env, REDIS_URL: redis } });
      expect(smoke.code, smoke.stderr).toBe(0);
      expect((await runCli(['completion', 'bash'], { cwd: ws.dir, env })).code).toBe(0);
      expect((await runCli(['schema'], { cwd: ws.dir, env })).code).toBe(0);
      const config = await runCli(['config', '--json'], { cwd: ws.dir, env });
      expect(config.code, config.stderr).toBe(0);
      expect(config.stdout).toMatch(/not usable/);
      expect(config.stdout + config.stderr).not.toContain('Pw0rd9');
      for (const args of [['get-config', 'acme'], ['migrate-yaml']]) {
        const r = await runCli(args, { cwd: ws.dir, env });
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
        expectOneLineError(r);
        expect(r.stderr).not.toContain('Pw0rd9');
      }
      // invalidate needs Redis only: it does its work, and the registry's problem is a warning (before: keys
      // deleted, then exit 2 with no report, when it asked the registry what earlier writes still owe).
      const key = `tenant_config:${uniq('inv')}`;
      const id = key.slice('tenant_config:'.length);
      const plain = new Redis(redis, { lazyConnect: true });
      await plain.connect();
      try {
        await plain.set(key, '{}');
        const inv = await runCli(['invalidate', id, '--json'], { cwd: ws.dir, env: { ...env, REDIS_URL: redis } });
        expect(inv.code, inv.stderr).toBe(0);
        expect(JSON.parse(inv.stdout).tenants[0]).toMatchObject({ tenant: id, total: 1 });
        expect(inv.stderr).toMatch(/^warning: invalidations owed by earlier writes not checked: /m);
        expect(await plain.exists(key)).toBe(0);
      } finally {
        plain.disconnect();
      }
      // doctor: a failed registry check (exit 1), not "unreachable" (exit 3).
      const doctor = await runCli(['doctor', '--json'], { cwd: ws.dir, env });
      expect(doctor.code, doctor.stderr).toBe(1);
      expect(JSON.parse(doctor.stdout).checks).toContainEqual(expect.objectContaining({ area: 'registry', status: 'fail' }));
      expect(existsSync(path.join(ws.dir, '.tenantctl'))).toBe(false);
    });
  }
});

describe('migrate-yaml of ids that have no file, the catalogue unchanged', () => {
  it('is bad input alone: exit 2, not a partial run (exit 4: the unchanged tiers.yaml counted as work done)', async () => {
    const ws = workspace({ acme: tenantYaml('acme', 'Acme'), tiers: 'features: [has_ai]\ntiers:\n  pilot_core: { features: [has_ai], max_devices: 3 }\n' });
    try {
      expect((await runCli(['migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
      const r = await runCli(['migrate-yaml', 'nosuch', '--json'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(2);
      expect(JSON.parse(r.stdout).items).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'tiers', action: 'unchanged' }), expect.objectContaining({ id: 'nosuch', action: 'error' })]));
      // A tenant that is unchanged is work done (verified): a bad one beside it is a partial run.
      expect((await runCli(['migrate-yaml', 'acme', 'nosuch'], { cwd: ws.dir })).code).toBe(4);
    } finally {
      ws.cleanup();
    }
  });
});

describe('two first writers to a new embedded registry at once', () => {
  it('both finish: the second waits for the first one\'s initdb under the lock (it read the half-made directory as "not a registry")', async () => {
    const ws = workspace({ acme: tenantYaml('acme', 'Acme'), beta: tenantYaml('beta', 'Beta') }, { registry: false });
    try {
      const first = runCli(['migrate-yaml', 'acme'], { cwd: ws.dir, env: { REGISTRY_TIMEOUT_MS: '60000' } });
      // The second starts once the first's initdb has begun filling the directory.
      const deadline = Date.now() + 20_000;
      while (!(existsSync(ws.registryDir) && readdirSync(ws.registryDir).length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const second = runCli(['migrate-yaml', 'beta'], { cwd: ws.dir, env: { REGISTRY_TIMEOUT_MS: '60000' } });
      const [a, b] = await Promise.all([first, second]);
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      const list = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
      expect(JSON.parse(list.stdout).filter((t: { source: string }) => t.source === 'database').map((t: { id: string }) => t.id).sort()).toEqual(['acme', 'beta']);
    } finally {
      ws.cleanup();
    }
  }, 60_000);
});
