import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';

/** Issue 7 §8: bad input, each with a test: a clear line, the right exit code, nothing else changed. */
describe('bad input', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  const good = uniq('good');
  const env = () => ({ REDIS_URL: own.server.url });

  beforeAll(async () => {
    ws = workspace({ [good]: tenantYaml(good, 'Good', 'subscription: { tier: core }\n') });
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n');
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir, env: env() })).code).toBe(0);
  });
  afterAll(() => ws.cleanup());

  it('a directory that cannot be made under /proc (ENOENT there) is exit 2 or no cache, never a hang (Node 20\'s recursive mkdir looped for ever)', async () => {
    const audit = await runCli(['invalidate', good, '--audit-log', '/proc/nope/audit.log'], { cwd: ws.dir, env: env(), timeoutMs: 15_000 });
    expect(audit.code).toBe(2);
    expectOneLineError(audit);
    expect(audit.stderr).toMatch(/audit log \/proc\/nope\/audit\.log cannot be written \(ENOENT\); nothing was done/);
    const reg = await runCli(['migrate-yaml', '--registry', '/proc/nope/reg'], { cwd: ws.dir, env: env(), timeoutMs: 15_000 });
    expect(reg.code).toBe(2);
    expect(reg.stderr).toMatch(/cannot create the embedded registry \/proc\/nope\/reg/);
    // The user cache (parse cache, V8 code cache) there: the command answers and exits, only slower next time.
    const cache = await runCli(['get-config', good, '--no-cache', '--json'], { cwd: ws.dir, env: { ...env(), XDG_CACHE_HOME: '/proc/nope' }, timeoutMs: 15_000 });
    expect(cache.code, cache.stderr).toBe(0);
    expect(JSON.parse(cache.stdout)).toMatchObject({ id: good });
  });

  it('migrate-yaml of one bad file in a project with tiers.yaml is exit 2, not 4 (the unchanged catalogue is no item done)', async () => {
    const broken = uniq('broken');
    const file = ws.writeTenant(broken, 'client: [unclosed\n');
    try {
      const r = await runCli(['migrate-yaml', broken], { cwd: ws.dir, env: env() });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${broken}\\.yaml:\\d+`));
    } finally {
      rmSync(file);
    }
  });

  it('migrate-yaml of bad files beside a yaml_only tenant (a skip) is exit 2: skipping is nothing done (it was exit 4)', async () => {
    const fresh = workspace({}, { registry: false });
    try {
      fresh.writeTenant('broken', 'client: [unclosed\n');
      fresh.writeTenant('sandboxy', tenantYaml('sandboxy', 'Sandbox', 'yaml_only: true\n'));
      const r = await runCli(['migrate-yaml', '--json'], { cwd: fresh.dir, env: env() });
      expect(r.code, r.stderr).toBe(2);
      expect(JSON.parse(r.stdout).counts).toMatchObject({ skip: 1, error: 1 });
      expect(existsSync(path.join(fresh.dir, '.tenantctl'))).toBe(false);
    } finally {
      fresh.cleanup();
    }
  });

  it('migrate-yaml of bad files only, in a project with no registry yet, creates none (exit 2 said "nothing done", and made .tenantctl/registry)', async () => {
    const fresh = workspace({}, { registry: false });
    try {
      fresh.writeTenant('broken', 'client: [unclosed\n');
      fresh.writeTenant('tiers', 'features: [x\n');
      const r = await runCli(['migrate-yaml'], { cwd: fresh.dir, env: env() });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^done: 0 create, 0 update, 0 unchanged, 0 conflict, 0 skip, 2 error$/m);
      expect(r.stderr).not.toMatch(/embedded registry/);
      expect(existsSync(path.join(fresh.dir, '.tenantctl'))).toBe(false);
      // Nothing at all to migrate (no bad file): the empty registry is made, as before (the benchmark's template is).
      const empty = workspace({}, { registry: false });
      try {
        const e = await runCli(['migrate-yaml'], { cwd: empty.dir, env: env() });
        expect(e.code, e.stderr).toBe(0);
        expect(existsSync(path.join(empty.dir, '.tenantctl', 'registry', 'PG_VERSION'))).toBe(true);
      } finally {
        empty.cleanup();
      }
      // One good file among them: the registry is made, and the good one written.
      fresh.writeTenant(good, tenantYaml(good, 'Good'));
      const m = await runCli(['migrate-yaml', '--json'], { cwd: fresh.dir, env: env() });
      expect(m.code, m.stderr).toBe(4);
      expect(JSON.parse(m.stdout).counts).toMatchObject({ create: 1, error: 2 });
      expect(existsSync(path.join(fresh.dir, '.tenantctl', 'registry', 'PG_VERSION'))).toBe(true);
    } finally {
      fresh.cleanup();
    }
  });

  it.runIf(TEST_DATABASE_URL)('migrate-yaml of bad input only into a PostgreSQL database without the schema changes nothing (it applied schema.sql: seven tables, and a column on the services\' tenants table, then said "nothing done")', async () => {
    const db = await freshPostgresDatabase();
    const { default: pg } = await import('pg');
    const tables = async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        return (await c.query("SELECT table_name || '.' || column_name AS c FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1")).rows.map((r) => String(r.c));
      } finally {
        await c.end();
      }
    };
    const proj = workspace({}, { registry: false });
    try {
      proj.writeTenant('mism', tenantYaml('other', 'Mismatched'));
      // The services' own table, as a deployment has it before tenantctl's first write.
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query(
        `CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, short_name text, timezone text, currency text, primary_email text,
           gcp_project_id text, gcp_dataset text, config_source text NOT NULL DEFAULT 'yaml', tenant_config jsonb NOT NULL DEFAULT '{}'::jsonb,
           status text NOT NULL DEFAULT 'active', plan text, features_enabled jsonb, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
      );
      await c.end();
      const before = await tables();
      for (const args of [['migrate-yaml', 'typo'], ['migrate-yaml']]) {
        const r = await runCli([...args, '--registry', db.url], { cwd: proj.dir, env: env() });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(await tables(), args.join(' ')).toEqual(before);
      }
      // With a good file the schema is applied and the row written.
      proj.writeTenant(good, tenantYaml(good, 'Good'));
      const w = await runCli(['migrate-yaml', '--registry', db.url], { cwd: proj.dir, env: env() });
      expect(w.code, w.stderr).toBe(4);
      expect(await tables()).toContain('tenants.tenantctl_hash');
    } finally {
      proj.cleanup();
      await db.drop();
    }
  });

  it('a FIFO where a file is read (tiers.yaml, the config file) is an error at once, not a hang deaf to SIGTERM', async () => {
    const fifoWs = workspace({ [good]: tenantYaml(good, 'Good') }, { registry: false });
    try {
      execFileSync('mkfifo', [path.join(fifoWs.tenantsDir, 'tiers.yaml')]);
      const plan = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: fifoWs.dir, env: env(), timeoutMs: 15_000 });
      // A bad file in a batch: reported, the rest planned (exit 4, as for any bad file).
      expect(plan.code, plan.stderr).toBe(4);
      expect(JSON.parse(plan.stdout).items).toContainEqual(expect.objectContaining({ kind: 'catalogue', action: 'error', reason: expect.stringMatching(/not a regular file/) }));
      execFileSync('mkfifo', [path.join(fifoWs.dir, 'tenantctl.config.yaml')]);
      const any = await runCli(['get-config', good], { cwd: fifoWs.dir, env: env(), timeoutMs: 15_000 });
      expect(any.code).toBe(2);
      expectOneLineError(any);
      expect(any.stderr).toMatch(/tenantctl\.config\.yaml: cannot be read: not a regular file/);
    } finally {
      fifoWs.cleanup();
    }
  });

  it('a FIFO laid out as a tenant file is an error item and a read error, not skipped ("no file") without a word', async () => {
    const fifoWs = workspace({ [good]: tenantYaml(good, 'Good') }, { registry: false });
    try {
      execFileSync('mkfifo', [path.join(fifoWs.tenantsDir, 'piped.yaml')]);
      const plan = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: fifoWs.dir, env: env(), timeoutMs: 15_000 });
      expect(plan.code, plan.stderr).toBe(4);
      expect(JSON.parse(plan.stdout).items).toContainEqual(expect.objectContaining({ id: 'piped', action: 'error', reason: expect.stringMatching(/not a regular file/) }));
      const get = await runCli(['get-config', 'piped'], { cwd: fifoWs.dir, env: env(), timeoutMs: 15_000 });
      expect(get.code, get.stderr).toBe(2);
      expect(get.stderr).toMatch(/piped\.yaml: cannot read: .*not a regular file/);
      const doctor = await runCli(['doctor', '--json'], { cwd: fifoWs.dir, env: env(), timeoutMs: 15_000 });
      expect(doctor.stdout).toMatch(/not a regular file/);
    } finally {
      fifoWs.cleanup();
    }
  });

  it('a Redis URL naming a database the server does not have is exit 3 with nothing deleted (ioredis had gone on in database 0)', async () => {
    const key = `tenant_config:${good}`;
    await own.client.set(key, '{}');
    for (const args of [['invalidate', good], ['invalidate-all', '--yes'], ['test-redis']]) {
      const r = await runCli(args, { cwd: ws.dir, env: { REDIS_URL: `${own.server.url}/99` } });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/refused database 99: ERR DB index is out of range/);
      expect(await own.client.exists(key)).toBe(1);
    }
    await own.client.del(key);
  });

  it('set-subscription: "none" clears the device limit and the demo expiry', async () => {
    const set = await runCli(['set-subscription', good, '--device-limit', '7', '--demo-expires', '2031-01-01T00:00:00Z', '--json'], { cwd: ws.dir, env: env() });
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout).subscription).toMatchObject({ overrides: { max_devices: 7 }, demo_expires_at: '2031-01-01T00:00:00.000Z' });
    const cleared = await runCli(['set-subscription', good, '--device-limit', 'none', '--demo-expires', 'none', '--json'], { cwd: ws.dir, env: env() });
    expect(cleared.stderr).toBe('');
    expect(cleared.code).toBe(0);
    expect(JSON.parse(cleared.stdout).subscription).toMatchObject({ overrides: {}, demo_expires_at: null });
    expect((await runCli(['set-subscription', good, '--device-limit', 'lots'], { cwd: ws.dir, env: env() })).code).toBe(2);
    // A built-in name of JavaScript objects is no tier (it was taken for one, with unlimited devices).
    for (const tier of ['constructor', 'toString']) {
      const r = await runCli(['set-subscription', good, '--tier', tier], { cwd: ws.dir, env: env() });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`unknown tier "${tier}"`));
    }
    const evil = uniq('evil');
    ws.writeTenant(evil, tenantYaml(evil, 'Evil', 'subscription: { tier: toString }\n'));
    const m = await runCli(['migrate-yaml', evil, '--json'], { cwd: ws.dir, env: env() });
    expect(JSON.parse(m.stdout).items).toContainEqual(expect.objectContaining({ id: evil, action: 'error', reason: expect.stringMatching(/toString/) }));
    // No change asked: exit 2, nothing written (before: the subscription rewritten as it was, and invalidated).
    const record = async () => {
      const { source: _source, ...rest } = JSON.parse((await runCli(['get-permissions', good, '--json'], { cwd: ws.dir, env: env() })).stdout);
      return rest;
    };
    const before = await record();
    const idle = await runCli(['set-subscription', good], { cwd: ws.dir, env: env() });
    expect(idle.code).toBe(2);
    expectOneLineError(idle);
    expect(idle.stderr).toMatch(/nothing to change: give --tier/);
    expect(await record()).toEqual(before);
  });

  it('credentials in URL query strings are masked like user-info passwords, in messages and JSON', async () => {
    const port = await freePort();
    const r = await runCli(['get-config', good, '--json', '--registry', `postgres://u@127.0.0.1:${port}/db?sslpassword=hunter2&password=hunter3&application_name=x`], { cwd: ws.dir });
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).not.toMatch(/hunter[23]/);
    expect(r.stderr).toMatch(/password=\*\*\*\*/);
    const info = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: { REDIS_URL: `redis://127.0.0.1:${port}/0?password=hunter4&apikey=hunter5`, REDIS_TIMEOUT_MS: '300' } });
    expect(info.stdout + info.stderr).not.toMatch(/hunter[45]/);
    const smoke = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: { REDIS_URL: `redis://u:hunter6@127.0.0.1:${port}/?token=hunter7`, REDIS_TIMEOUT_MS: '300' } });
    expect(smoke.code).toBe(3);
    expect(smoke.stdout + smoke.stderr).not.toMatch(/hunter[67]/);
  });

  it('a % that is no escape in a Redis URL\'s password is exit 2, one masked line (it was "internal error: URI malformed", exit 70)', async () => {
    for (const url of ['redis://u:hunter8%C3@127.0.0.1:1', 'redis://%E0%A4%A@127.0.0.1:1']) {
      for (const args of [['test-redis'], ['get-config', good], ['cache-info', '-o', 'prometheus']]) {
        const r = await runCli(args, { cwd: ws.dir, env: { REDIS_URL: url } });
        expect(r.code, `${args.join(' ')} ${url}: ${r.stderr}`).toBe(2);
        expectOneLineError(r);
        expect(r.stderr).toMatch(/has a % that is no escape in its user or password \(write a % as %25\)/);
        expect(r.stderr).not.toMatch(/hunter8|internal/);
      }
    }
  });

  it('flags that contradict each other are exit 2 (one was silently dropped): two output formats, --warm with --no-cache', async () => {
    for (const args of [['--json', '-o', 'yaml', 'list-tenants'], ['list-tenants', '-o', 'plain', '--json'], ['cache-info', '--format', 'prometheus', '-o', 'json'], ['get-config', good, '--no-cache', '--warm']]) {
      const r = await runCli(args, { cwd: ws.dir });
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLineError(r);
      expect(r.stdout).toBe('');
    }
    // The same format twice is no contradiction.
    expect((await runCli(['--json', '-o', 'json', 'list-tenants'], { cwd: ws.dir })).code).toBe(0);
  });

  it('no command at all is a usage error (exit 2, the help on stderr); help asked for is exit 0 on stdout', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/Usage: tenantctl/);
    for (const args of [['--help'], ['help']]) {
      const asked = await runCli(args);
      expect(asked.code, args[0]).toBe(0);
      expect(asked.stdout).toMatch(/Usage: tenantctl/);
    }
    // help of an unknown command is refused as the unknown command is (it printed the whole help, naming nothing).
    const unknown = await runCli(['help', 'invalidat']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe("error: unknown command 'invalidat' (did you mean invalidate?)\n");
    // A typo's suggestion is on the error's one line (it was a second line), for options too; nothing ran.
    const option = await runCli(['get-config', 'acme', '--no-cahce']);
    expect([option.code, option.stdout, option.stderr]).toEqual([2, '', "error: unknown option '--no-cahce' (did you mean --no-cache?)\n"]);
    const named = await runCli(['help', 'invalidate']);
    expect(named.code).toBe(0);
    expect(named.stdout).toMatch(/^Usage: tenantctl invalidate /);
    // help's own help (a review: "unknown command 'help' (Did you mean help?)").
    const itself = await runCli(['help', 'help']);
    expect(itself.code, itself.stderr).toBe(0);
    expect(itself.stdout).toMatch(/^Usage: tenantctl/);
    // A subcommand's help lists the global options too (it showed only the command's own).
    const sub = await runCli(['invalidate', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/Global Options:[\s\S]*--redis-url <url>[\s\S]*--registry <where>[\s\S]*-o, --output <format>/);
  });

  it('a 100,000-character id is cut in the message: exit 2, one short line', async () => {
    const r = await runCli(['get-config', 'x'.repeat(100_000)], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expectOneLineError(r);
    expect(r.stderr.length).toBeLessThan(600);
    expect(r.stderr).toMatch(/100000 characters/);
    // The id's own length (before: 131 with commander's quotes), said once: the check adds the rule, not the value again.
    const near = await runCli(['get-config', 'a'.repeat(129)], { cwd: ws.dir });
    expect(near.code).toBe(2);
    expect(near.stderr.match(/\((\d+) characters\)/g)).toEqual(['(129 characters)']);
    expect(near.stderr).toMatch(/a tenant id is 1-128 letters/);
  });

  it('a password written unquoted with a leading ! or * (a YAML tag or alias) is never quoted by the error, in a tenant file or the config file (it was: "unknown tag !<!Xk9pw>")', async () => {
    const w = workspace({}, { registry: false });
    try {
      w.writeTenant('bang', 'client:\n  id: bang\n  name: Bang\nsmtp:\n  password: !Xk9pwQz\n');
      w.writeTenant('star', 'client:\n  id: star\n  name: Star\nsmtp:\n  password: *Yq7pwZz\n');
      w.writeTenant('handle', 'client:\n  id: handle\n  name: Handle\nsmtp:\n  password: !Hk9!pwZq7\n');
      w.writeTenant('lasttag', 'client:\n  id: lasttag\n  name: Last\npassword: !Lk9!pw');
      w.writeTenant('lastalias', 'client:\n  id: lastalias\n  name: Last\ncors_origin: *');
      const m = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: w.dir });
      expect(m.stdout + m.stderr).not.toMatch(/Xk9pwQz|Yq7pwZz|Hk9|Lk9/);
      // A tag on the last line is said as one, not as something left unclosed.
      expect(m.stdout).toMatch(/lasttag\.yaml:4: undeclared tag handle: /);
      expect(m.stdout).not.toMatch(/lastalias\.yaml:\d+: the file ends inside an unclosed/);
      expect(m.stdout).toMatch(/unknown tag: an unquoted value starting with \\"!\\" is a YAML tag/);
      expect(m.stdout).toMatch(/unidentified alias: an unquoted value starting with \\"\*\\" is a YAML alias/);
      writeFileSync(path.join(w.dir, 'tenantctl.config.yaml'), 'sentinel_password: !Zz8pwQx\n');
      const c = await runCli(['config'], { cwd: w.dir });
      expect(c.code).toBe(2);
      expect(c.stdout + c.stderr).not.toContain('Zz8pwQx');
    } finally {
      w.cleanup();
    }
  });

  it('a client.id holding a line break is shown as \\x0a by get-config as by migrate-yaml (get-config folded it into a space)', async () => {
    const w = workspace({ m: 'client:\n  id: "a\\nb"\n  name: x\n' });
    try {
      const got = await runCli(['get-config', 'm'], { cwd: w.dir });
      expect(got.code).toBe(2);
      expectOneLineError(got);
      expect(got.stderr).toContain('client.id "a\\x0ab" does not match the file name "m"');
      const plan = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: w.dir });
      expect(JSON.parse(plan.stdout).items.find((i: { id: string }) => i.id === 'm').reason).toContain('client.id "a\\x0ab"');
    } finally {
      w.cleanup();
    }
  });

  it('a tenants directory that is a file is exit 2 with one line naming it (not an internal error); doctor fails its check', async () => {
    const file = path.join(ws.dir, 'tenants', `${good}.yaml`);
    for (const cmd of [['list-tenants'], ['migrate-yaml', '--dry-run'], ['get-config', good, '--no-cache']]) {
      const r = await runCli([...cmd, '--tenants-dir', file], { cwd: ws.dir, env: env() });
      expect(r.code, `${cmd[0]}: ${r.stderr}`).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/tenants directory .* is not a directory/);
    }
    const doctor = await runCli(['doctor', '--json', '--tenants-dir', file], { cwd: ws.dir, env: env() });
    expect(JSON.parse(doctor.stdout).checks).toContainEqual(expect.objectContaining({ area: 'tenants', status: 'fail', detail: expect.stringMatching(/is not a directory/) }));
  });

  it('a subscription change in a project with no registry yet is exit 2 and creates none (before: initdb, then "no tiers")', async () => {
    const bare = workspace({}, { registry: false });
    try {
      for (const args of [['set-subscription', 'acme', '--tier', 'pilot_pro'], ['override', 'acme', 'has_ai', '--grant'], ['set-subscription', 'acme', '--status', 'active']]) {
        const r = await runCli(args, { cwd: bare.dir });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expectOneLineError(r);
        // Where it looked is said first (run from the wrong directory, "no tiers (migrate tenants/tiers.yaml
        // first)" sent the operator to migrate there).
        expect(r.stderr.startsWith(`error: no embedded registry at ${path.join(bare.dir, '.tenantctl', 'registry')}: `), r.stderr).toBe(true);
        // The advice is the CLI's (by the error's reason): the library's caller has no --registry.
        expect(r.stderr.endsWith(' (run from the project directory, or give --registry)\n'), r.stderr).toBe(true);
        expect(r.stderr).not.toContain('migrate tenants/tiers.yaml');
      }
      const gone = await runCli(['reactivate', 'acme'], { cwd: bare.dir });
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain('error: no embedded registry at');
      expect(existsSync(path.join(bare.dir, '.tenantctl'))).toBe(false);
    } finally {
      bare.cleanup();
    }
  });

  it('an empty --tenants-dir is exit 2 (it meant the working directory); an empty config file is no settings', async () => {
    const r = await runCli(['list-tenants', '--tenants-dir', ''], { cwd: ws.dir, env: env() });
    expect(r.code).toBe(2);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/--tenants-dir is empty/);
    // `touch tenantctl.config.yaml` marks a project's root (before: "expected a document, but the input is empty", exit 2).
    const bare = workspace({ [good]: tenantYaml(good, 'Good') });
    try {
      writeFileSync(path.join(bare.dir, 'tenantctl.config.yaml'), '# nothing set yet\n\n');
      const list = await runCli(['list-tenants', '--json'], { cwd: bare.dir });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).map((t: { id: string }) => t.id)).toContain(good);
    } finally {
      bare.cleanup();
    }
  });

  it('a file of a registry-only id (tn_...) is a skip in migrate-yaml and a warning in doctor, never read (it was left out without a word)', async () => {
    const bare = workspace({ [good]: tenantYaml(good, 'Good'), tn_foo: tenantYaml('tn_foo', 'Registry Only') });
    try {
      const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: bare.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).items).toContainEqual(expect.objectContaining({ id: 'tn_foo', action: 'skip', file: 'tenants/tn_foo.yaml', reason: expect.stringMatching(/^registry-only \(ids starting "tn_" live in the registry alone\)/) }));
      const doctor = await runCli(['doctor', '--json'], { cwd: bare.dir });
      expect(JSON.parse(doctor.stdout).checks).toContainEqual(expect.objectContaining({ area: 'tenants', status: 'warn', detail: 'tenants/tn_foo.yaml: ids starting "tn_" live in the registry alone, so the file is never read' }));
    } finally {
      bare.cleanup();
    }
  });

  it('the <id>/client.yaml layout: a folder whose name is not UTF-8, and a client.yaml that is a link to nothing, are error items (they were left out without a word)', async () => {
    const bare = workspace({ [good]: tenantYaml(good, 'Good') });
    try {
      const tenants = Buffer.from(path.join(bare.dir, 'tenants') + path.sep);
      // Two folders whose names read alike (dir\uFFFD), only the second holding a file: it is found (the first was looked into alone).
      mkdirSync(Buffer.concat([tenants, Buffer.from([0x64, 0x69, 0x72, 0xfe])]));
      const folder = Buffer.concat([tenants, Buffer.from([0x64, 0x69, 0x72, 0xff])]);
      mkdirSync(folder);
      writeFileSync(Buffer.concat([folder, Buffer.from('/client.yaml')]), 'client:\n  id: x\n  name: X\n');
      mkdirSync(path.join(bare.dir, 'tenants', 'dang'));
      symlinkSync('/nonexistent/client.yaml', path.join(bare.dir, 'tenants', 'dang', 'client.yaml'));
      const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: bare.dir });
      expect(r.code, r.stderr).toBe(4);
      const items = JSON.parse(r.stdout).items;
      expect(items.filter((i: { id: string }) => i.id === 'dir\uFFFD')).toEqual([expect.objectContaining({ action: 'error', reason: expect.stringMatching(/^tenants\/dir\uFFFD\/client\.yaml: the folder name is not a valid tenant id/) })]);
      expect(items).toContainEqual(expect.objectContaining({ id: 'dang', action: 'error', reason: 'tenants/dang/client.yaml is a link to /nonexistent/client.yaml, which does not exist' }));
      const doctor = await runCli(['doctor', '--json'], { cwd: bare.dir });
      const fails = JSON.parse(doctor.stdout).checks.filter((c: { area: string; status: string }) => c.area === 'tenants' && c.status === 'fail');
      expect(fails.map((c: { detail: string }) => c.detail)).toEqual(expect.arrayContaining([expect.stringMatching(/dang\/client\.yaml is a link to/), expect.stringMatching(/dir\uFFFD\/client\.yaml: the folder name is not a valid tenant id/)]));
    } finally {
      bare.cleanup();
    }
  });

  it('a tenant file that is a dangling link is reported by migrate-yaml, not silently left out', async () => {
    const bare = workspace({ [good]: tenantYaml(good, 'Good') });
    try {
      symlinkSync(path.join(bare.dir, 'nowhere.yaml'), path.join(bare.dir, 'tenants', 'dangling.yaml'));
      const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: bare.dir });
      expect(r.code).toBe(4);
      expect(JSON.parse(r.stdout).items).toContainEqual(expect.objectContaining({ id: 'dangling', action: 'error', reason: expect.stringMatching(/dangling\.yaml is a link to .*nowhere\.yaml, which does not exist/) }));
      // doctor fails it too (before: "all files parse").
      const doctor = await runCli(['doctor', '--json'], { cwd: bare.dir });
      expect(JSON.parse(doctor.stdout).checks).toContainEqual(expect.objectContaining({ area: 'tenants', status: 'fail', detail: expect.stringMatching(/dangling\.yaml is a link to/) }));
      // get-config says why too (it said "not found in the registry or YAML" alone); a link to a directory is said as one (it said "which does not exist").
      const got = await runCli(['get-config', 'dangling', '--no-cache'], { cwd: bare.dir });
      expect(got.code).toBe(1);
      expect(got.stderr).toMatch(/^error: tenant dangling not found in the registry or YAML: tenants\/dangling\.yaml is a link to .*nowhere\.yaml, which does not exist$/m);
      mkdirSync(path.join(bare.dir, 'tenants', 'looped'));
      symlinkSync('../looped', path.join(bare.dir, 'tenants', 'looped', 'client.yaml'));
      const dir = await runCli(['migrate-yaml', '--dry-run', '--json', 'looped'], { cwd: bare.dir });
      expect(JSON.parse(dir.stdout).items).toContainEqual(expect.objectContaining({ id: 'looped', action: 'error', reason: 'tenants/looped/client.yaml is a link to ../looped, which is a directory' }));
      // A stale link beside the tenant's real file of the other layout is not a second file: the tenant is read.
      const real = uniq('layout');
      bare.writeTenant(real, tenantYaml(real, 'Real'), `${real}/client.yaml`);
      symlinkSync(path.join(bare.dir, 'gone.yaml'), path.join(bare.dir, 'tenants', `${real}.yaml`));
      const plan = await runCli(['migrate-yaml', real, '--dry-run', '--json'], { cwd: bare.dir });
      expect(JSON.parse(plan.stdout).items).toContainEqual(expect.objectContaining({ id: real, action: 'create' }));
    } finally {
      bare.cleanup();
    }
  });

  it('a YAML file that is not UTF-8 is file:line: not UTF-8, and only that tenant is skipped', async () => {
    const bad = uniq('latin');
    const file = path.join(ws.tenantsDir, `${bad}.yaml`);
    writeFileSync(file, Buffer.concat([Buffer.from(`client:\n  id: ${bad}\n  name: Caf`), Buffer.from([0xe9]), Buffer.from('\n')]));
    const other = uniq('fine');
    ws.writeTenant(other, tenantYaml(other));
    const r = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: env() });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(new RegExp(`${bad}\\.yaml:3: not UTF-8`));
    const items = JSON.parse(r.stdout).items as Array<{ id: string; action: string }>;
    expect(items.find((i) => i.id === bad)?.action).toBe('error');
    expect(items.find((i) => i.id === other)?.action).toBe('create');
    const get = await runCli(['get-config', bad, '--no-cache'], { cwd: ws.dir });
    expect(get.code).toBe(2);
    expect(get.stderr).toMatch(/not UTF-8/);
  });

  it('a file whose name is not a valid id is reported as an error item (exit 4), never skipped silently', async () => {
    ws.writeTenant('bad id!', tenantYaml('bad id!'), 'bad id!.yaml');
    const r = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: env() });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/bad id!\.yaml: the file name is not a valid tenant id/);
    expect((JSON.parse(r.stdout).items as Array<{ id: string; action: string }>).find((i) => i.id === 'bad id!.yaml')?.action).toBe('error');
  });

  it('a cached value that is not JSON is read as a miss with one warning naming the key (it was ignored without a word)', async () => {
    await own.client.set(`tenant_config:${good}`, '{not json');
    const r = await runCli(['get-config', good, '--json'], { cwd: ws.dir, env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).source).not.toBe('cache');
    expect(r.stderr).toMatch(new RegExp(`warning: tenant_config:${good} holds a value that is not JSON: read as a miss`));
    // JSON that is no config (a list): a miss too, said the same way (it was read as a miss without a word).
    for (const [text, what] of [['[1,2]', 'a list'], ['42', 'number'], ['null', 'null']]) {
      await own.client.set(`tenant_config:${good}`, text);
      const list = await runCli(['get-config', good, '--json'], { cwd: ws.dir, env: env() });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).source).not.toBe('cache');
      expect(list.stderr).toMatch(new RegExp(`warning: tenant_config:${good} holds JSON that is not a config object \\(${what}\\): read as a miss`));
    }
    // A config whose _meta is no mapping (the services always write one): a miss, said (a string was shown
    // spread letter by letter: "_meta": {"0": "d", "1": "a", ...}).
    for (const [meta, what] of [['"database"', 'a string'], ['[1]', 'a list']]) {
      await own.client.set(`tenant_config:${good}`, `{"_meta": ${meta}, "client": {"id": "${good}", "name": "X"}}`);
      const r2 = await runCli(['get-config', good, '--json'], { cwd: ws.dir, env: env() });
      expect(r2.code, r2.stderr).toBe(0);
      expect(JSON.parse(r2.stdout).source).not.toBe('cache');
      expect(r2.stderr).toMatch(new RegExp(`warning: tenant_config:${good} holds a config whose _meta is not a mapping \\(${what}\\): read as a miss`));
    }
    await own.client.del(`tenant_config:${good}`);
    // Another type than a string (a hash: the services' GET fails WRONGTYPE): a miss, said (it was silent).
    await own.client.hset(`tenant_config:${good}`, 'client', 'x');
    const hash = await runCli(['get-config', good, '--json'], { cwd: ws.dir, env: env() });
    expect(hash.code, hash.stderr).toBe(0);
    expect(JSON.parse(hash.stdout).source).not.toBe('cache');
    expect(hash.stderr).toMatch(new RegExp(`warning: tenant_config:${good} holds another type than a string \\(a hash: the services' GET fails on it with WRONGTYPE\\): read as a miss`));
    await own.client.del(`tenant_config:${good}`);
    // A plain miss says nothing.
    const miss = await runCli(['get-config', good, '--json'], { cwd: ws.dir, env: env() });
    expect(miss.stderr).not.toMatch(/holds/);
  });

  it('hidden entries are not tenant files (an editor\'s lock link, macOS ._ files); a name with a line break is reported, not skipped', async () => {
    const hiddenWs = workspace({ ok: tenantYaml('ok') });
    try {
      hiddenWs.writeTenant('.hidden', tenantYaml('.hidden'), '.hidden.yaml');
      hiddenWs.writeTenant('._ok', 'binary junk', '._ok.yaml');
      symlinkSync('user@host.1234:1700000000', path.join(hiddenWs.tenantsDir, '.#ok.yaml'));
      // Before: every one of them failed the migration as "not a valid tenant id" (exit 4).
      const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: hiddenWs.dir, env: env() });
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout).items as Array<{ id: string }>).map((i) => i.id)).not.toContainEqual(expect.stringMatching(/^\./));
      hiddenWs.writeTenant('line\nbreak', tenantYaml('x'), 'line\nbreak.yaml');
      const nl = await runCli(['migrate-yaml', '--dry-run'], { cwd: hiddenWs.dir, env: env() });
      expect(nl.code).toBe(4);
      expect(nl.stderr).toMatch(/line\\x0abreak\.yaml: the file name is not a valid tenant id/);
    } finally {
      hiddenWs.cleanup();
    }
  });

  it('a family key whose name is not UTF-8 is counted and deleted by invalidate-all; foreign keys stay', async () => {
    await own.client.flushall();
    const binaryKey = Buffer.concat([Buffer.from('tenant_config:acme'), Buffer.from([0xff])]);
    await own.client.set(binaryKey, '{}');
    await own.client.set('sessions:acme', 'x');
    const dry = await runCli(['invalidate-all', '--dry-run', '--json'], { cwd: ws.dir, env: env() });
    expect(JSON.parse(dry.stdout).families.tenant_config).toBe(1);
    const r = await runCli(['invalidate-all', '--yes', '--json'], { cwd: ws.dir, env: env() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).total).toBe(1);
    expect(await own.client.exists(binaryKey)).toBe(0);
    expect(await own.client.exists('sessions:acme')).toBe(1);
  });
});
