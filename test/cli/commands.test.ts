import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, expectOneLineError, runCli, runCliOnTerminal, sharedRedisUrl, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, useOwnRedis } from '../helpers/redis-server.js';

/**
 * Every command in the three situations: Redis up, Redis down (clean fallback
 * or exit 3, fast), and bad input (one line on stderr, exit 2, nothing changed).
 */
const TIMEOUT_MS = 500;
/** Node start-up and module loading on a busy 2-core machine, on top of the Redis timeout. */
const STARTUP_MARGIN_MS = 2000;


describe('CLI commands', () => {
  let ws: Workspace;
  let redis: Redis;
  let downUrl: string;
  let blackHole: net.Server;
  let blackHoleUrl: string;
  const [acme, beta, dev] = [uniq('acme'), uniq('beta'), uniq('dev')];
  const up = () => ({ REDIS_URL: sharedRedisUrl() });
  const down = () => ({ REDIS_URL: downUrl, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) });

  beforeAll(async () => {
    ws = workspace({
      [acme]: tenantYaml(acme, 'Acme', 'email:\n  primary: ops@acme.example\n  smtp: { host: h, password: "${SMTP_PW}" }\nwebhook: { url: "https://bot:hook-pw-1@hooks.example/in?token=tok-2" }\n'),
      [beta]: tenantYaml(beta, 'Beta'),
      [dev]: tenantYaml(dev, 'Dev', 'yaml_only: true\n'),
    });
    redis = new Redis(sharedRedisUrl());
    downUrl = `redis://127.0.0.1:${await freePort()}`;
    blackHole = net.createServer(() => undefined);
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', () => r()));
    blackHoleUrl = `redis://127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`;
    const m = await runCli(['migrate-yaml'], { cwd: ws.dir, env: up() });
    expect(m.code).toBe(0);
  });
  afterAll(() => {
    redis.disconnect();
    blackHole.close();
    ws.cleanup();
  });

  describe('get-config', () => {
    it('up: registry then cache, secrets masked unless --show-secrets, table shows the source', async () => {
      await redis.del(`tenant_config:${acme}`);
      const table = await runCli(['get-config', acme], { cwd: ws.dir, env: { ...up(), SMTP_PW: 'pw-123' } });
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/source database/);
      expect(table.stdout).toContain('password: \'****\'');
      expect(table.stdout).not.toContain('pw-123');
      // Credentials in a URL inside any value are masked too (DESIGN: always).
      expect(table.stdout).toContain('https://bot:****@hooks.example/in?token=****');
      expect(table.stdout).not.toMatch(/hook-pw-1|tok-2/);
      // A CLI read never populates tenant_config: (the services would use the entry as it is).
      expect(await redis.exists(`tenant_config:${acme}`)).toBe(0);
      const shown = await runCli(['get-config', acme, '--json', '--show-secrets'], { cwd: ws.dir, env: { ...up(), SMTP_PW: 'pw-123' } });
      expect(JSON.parse(shown.stdout)).toMatchObject({ source: 'database', config: { email: { smtp: { password: 'pw-123' } }, webhook: { url: 'https://bot:hook-pw-1@hooks.example/in?token=tok-2' } } });
      const noCache = await runCli(['get-config', acme, '--json', '--no-cache'], { cwd: ws.dir, env: up() });
      expect(JSON.parse(noCache.stdout).source).toBe('database');
    });

    it('a yaml_only tenant comes from YAML and is never cached', async () => {
      const r = await runCli(['get-config', dev, '--json'], { cwd: ws.dir, env: up() });
      expect(JSON.parse(r.stdout).source).toBe('yaml');
      expect(await redis.exists(`tenant_config:${dev}`)).toBe(0);
    });

    it('down: answers from the registry with one warning line, exit 0, quickly', async () => {
      for (const env of [down(), { REDIS_URL: blackHoleUrl, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) }]) {
        const r = await runCli(['get-config', beta, '--json'], { cwd: ws.dir, env });
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout).source).toBe('database');
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/^warning: .*continuing without the cache/);
        expect(r.ms).toBeLessThan(TIMEOUT_MS + STARTUP_MARGIN_MS + 1500 /* PGlite open */);
      }
    });

    it('registry unreachable: falls back to YAML with a warning', async () => {
      const r = await runCli(['get-config', beta, '--json', '--registry', `postgres://u:secretpw@127.0.0.1:${await freePort()}/db`], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).source).toBe('yaml');
      expect(r.stderr).toMatch(/warning: .*u:\*\*\*\*@.*falling back to YAML/);
      expect(r.stderr).not.toContain('secretpw');
    });

    it('bad input: invalid id exits 2 with one line; an unknown tenant exits 1', async () => {
      const bad = await runCli(['get-config', 'ac*me'], { cwd: ws.dir, env: up() });
      expect(bad.code).toBe(2);
      expectOneLineError(bad);
      // The value named once, by commander; then the rule.
      expect(bad.stderr).toBe("error: command-argument value 'ac*me' is invalid for argument 'tenant'. a tenant id is 1-128 letters, digits, '_', '-' or '.'\n");
      const missing = await runCli(['get-config', uniq('nobody')], { cwd: ws.dir, env: up() });
      expect(missing.code).toBe(1);
      expectOneLineError(missing);
    });

    it('a value filled from a secret-named variable is masked whatever its key (before: printed), shown with --show-secrets', async () => {
      const id = uniq('subst');
      ws.writeTenant(id, `client:\n  id: ${id}\n  name: S\nslack:\n  webhook: \${SLACK_BOT_TOKEN}\n  region: \${SLACK_REGION}\n`);
      const env = { SLACK_BOT_TOKEN: 'xoxb-cli-secret', SLACK_REGION: 'eu-west-1' };
      for (const args of [['--json'], []]) {
        const r = await runCli(['get-config', id, '--no-cache', ...args], { cwd: ws.dir, env });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).not.toContain('xoxb-cli-secret');
        expect(r.stdout).toContain('eu-west-1');
      }
      const shown = await runCli(['get-config', id, '--no-cache', '--json', '--show-secrets'], { cwd: ws.dir, env });
      expect(JSON.parse(shown.stdout).config.slack).toEqual({ webhook: 'xoxb-cli-secret', region: 'eu-west-1' });
      const masked = await runCli(['get-config', id, '--no-cache', '--json'], { cwd: ws.dir, env });
      expect(JSON.parse(masked.stdout).config.slack).toEqual({ webhook: '****', region: 'eu-west-1' });
    });

    it('a cache hit the services wrote (secrets resolved) is masked where the file references a secret variable (before: printed); other values are shown whatever this environment holds', async () => {
      const id = uniq('hit');
      ws.writeTenant(id, `client:\n  id: ${id}\n  name: H\nslack:\n  webhook: \${SLACK_BOT_TOKEN}\n  region: eu\npin: \${SMS_PIN_SECRET}\ndb:\n  user: postgres\n`);
      const entry = { client: { id, name: 'H' }, slack: { webhook: 'xoxb-services-side', region: 'eu' }, pin: 98765432, db: { user: 'postgres' } };
      await redis.set(`tenant_config:${id}`, JSON.stringify(entry), 'EX', 60);
      try {
        // This process has no SLACK_BOT_TOKEN (the services had it); it has secret-named variables of its own.
        const env = { ...up(), POSTGRES_PASSWORD: 'postgres', GITHUB_TOKEN: 'ghp_unrelated_1234' };
        for (const args of [['--json'], []]) {
          const r = await runCli(['get-config', id, ...args], { cwd: ws.dir, env });
          expect(r.code, r.stderr).toBe(0);
          expect(r.stdout).toMatch(/cache/);
          expect(r.stdout).not.toMatch(/xoxb-services-side|98765432/);
        }
        const masked = JSON.parse((await runCli(['get-config', id, '--json'], { cwd: ws.dir, env })).stdout);
        expect(masked).toMatchObject({ source: 'cache', config: { slack: { webhook: '****', region: 'eu' }, pin: '****', db: { user: 'postgres' } } });
        const shown = JSON.parse((await runCli(['get-config', id, '--json', '--show-secrets'], { cwd: ws.dir, env })).stdout);
        expect(shown.config).toMatchObject(entry);
        // A file that cannot be read: said, and the entry masked by its key names only.
        ws.writeTenant(id, `client:\n  id: ${id}\n  name: [x\n`);
        const broken = await runCli(['get-config', id, '--json'], { cwd: ws.dir, env });
        expect(broken.code, broken.stderr).toBe(0);
        expect(broken.stderr).toMatch(new RegExp(`^note: .*${id}\\.yaml.*: the cached entry is masked by its key names only$`, 'm'));
      } finally {
        await redis.del(`tenant_config:${id}`);
      }
    });

    it('a YAML answer says what its file lost: a literal secret stripped is a file:line warning (before: silently gone)', async () => {
      const id = uniq('literal');
      ws.writeTenant(id, `client:\n  id: ${id}\n  name: L\nsmtp:\n  host: mail.example\n  password: hunter2\n`);
      const r = await runCli(['get-config', id, '--no-cache', '--show-secrets', '--json'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ source: 'yaml', config: { smtp: { host: 'mail.example' } } });
      expect(r.stdout).not.toContain('hunter2');
      expect(r.stderr).toMatch(new RegExp(`^warning: tenants/${id}\\.yaml:6: literal secret smtp\\.password stripped`, 'm'));
    });

    it('a malformed tenant file is file:line: reason, exit 2', async () => {
      const id = uniq('broken');
      ws.writeTenant(id, `client:\n  id: ${id}\n  name: [x\n`);
      const r = await runCli(['get-config', id, '--no-cache'], { cwd: ws.dir });
      expect(r.code).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(new RegExp(`${id}\\.yaml:\\d+: `));
    });
  });

  describe('migrate-yaml', () => {
    it('up: --dry-run prints the plan and writes nothing; a second run is all unchanged', async () => {
      const id = uniq('new');
      ws.writeTenant(id, tenantYaml(id));
      const plan = await runCli(['migrate-yaml', id, acme, '--dry-run', '--json'], { cwd: ws.dir, env: up() });
      expect(plan.code).toBe(0);
      const items = JSON.parse(plan.stdout).items as Array<{ id: string; action: string }>;
      expect(items.find((i) => i.id === id)?.action).toBe('create');
      expect(items.find((i) => i.id === acme)?.action).toBe('unchanged');
      const getBefore = await runCli(['get-config', id, '--json', '--no-cache'], { cwd: ws.dir });
      expect(JSON.parse(getBefore.stdout).source).toBe('yaml');
      // Piped output is plain tab-separated rows with a header; -o table draws the box.
      const plain = await runCli(['migrate-yaml', id, '--dry-run'], { cwd: ws.dir, env: up() });
      expect(plain.stdout.split('\n')[0]).toBe('item\tkind\tplan\tdetail');
      expect(plain.stdout).toMatch(new RegExp(`^${id}\ttenant\tcreate\t$`, 'm'));
      // Only the header and rows: every line has the header's columns; the summary is on stderr.
      expect(plain.stdout.replace(/\n$/, "").split("\n").filter((l) => l.split("\t").length !== 4)).toEqual([]);
      expect(plain.stderr).toMatch(/^plan: 1 create, 0 update/m);
      const table = await runCli(['migrate-yaml', id, '-o', 'table'], { cwd: ws.dir, env: up() });
      expect(table.stdout).toMatch(new RegExp(`${id}\\s*│\\s*tenant\\s*│\\s*create`));
      expect(table.stdout).toMatch(/done: 1 create/);
    });

    it('down: the registry is written, the cache not invalidated: exit 4 with the reason', async () => {
      const id = uniq('down');
      ws.writeTenant(id, tenantYaml(id));
      const r = await runCli(['migrate-yaml', id, '--json'], { cwd: ws.dir, env: down() });
      expect(r.code, r.stderr).toBe(4);
      expect(JSON.parse(r.stdout).items[0]).toMatchObject({ written: true, cacheInvalidated: false });
      // Only what went wrong (it said "0 item(s) failed, 0 conflict(s), cache not invalidated").
      expect(r.stderr).toMatch(/^error: cache not invalidated$/m);
    });

    it('no Redis configured: written, exit 0, and a note says the cache was not invalidated and what is owed', async () => {
      const id = uniq('noredis');
      ws.writeTenant(id, tenantYaml(id));
      const r = await runCli(['migrate-yaml', id, '--json'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).items[0]).toMatchObject({ written: true, cacheInvalidated: 'not-configured' });
      expect(r.stderr).toMatch(/^note: no Redis configured: the cache of 1 written item\(s\) was not invalidated; \d+ invalidation\(s\) are recorded in the registry \(`tenantctl invalidate --pending`/m);
      // --pending with no Redis configured: exit 3 saying so (before: exit 0, silent, nothing done).
      const noRedis = await runCli(['invalidate', '--pending'], { cwd: ws.dir });
      expect(noRedis.code, noRedis.stderr).toBe(3);
      expectOneLineError(noRedis);
      // The fix said once (the command's message and the CLI's hint both named the settings).
      expect(noRedis.stderr.trim()).toMatch(/^error: no Redis configured: \d+ owed invalidation\(s\) not done: set REDIS_URL, --redis-url, --redis-cluster or --redis-sentinel$/);
      const done = await runCli(['invalidate', '--pending', '--json'], { cwd: ws.dir, env: up() });
      expect(done.code, done.stderr).toBe(0);
      expect(JSON.parse(done.stdout).owed).toMatchObject({ pending: 0 });
    });

    it('piped, test-redis, invalidate --dry-run and cache-info print a header and rows of its columns only (summaries on stderr)', async () => {
      const id = uniq('piped');
      await redis.set(`tenant_config:${id}`, '{}');
      await redis.set(`dashboard_kpis:${id}:days:30`, '{}');
      const shape = (stdout: string) => {
        const lines = stdout.replace(/\n$/, '').split('\n');
        const columns = lines[0].split('\t').length;
        return lines.filter((l) => l.split('\t').length !== columns || l.startsWith('('));
      };
      const smoke = await runCli(['test-redis'], { cwd: ws.dir, env: up() });
      expect(smoke.code, smoke.stderr).toBe(0);
      expect(shape(smoke.stdout)).toEqual([]);
      expect(smoke.stderr).toMatch(/standalone {2}Redis \d/);
      const dry = await runCli(['invalidate', id, '--dry-run'], { cwd: ws.dir, env: up() });
      expect(dry.code, dry.stderr).toBe(0);
      // The keys themselves, one row each (before: a counts table, then a bare key list).
      expect(dry.stdout).toBe(`tenant\tkey\n${id}\tdashboard_kpis:${id}:days:30\n${id}\ttenant_config:${id}\n`);
      expect(dry.stderr).toMatch(new RegExp(`^${id}: would delete 2$`, 'm'));
      const info = await runCli(['cache-info'], { cwd: ws.dir, env: up() });
      expect(info.code, info.stderr).toBe(0);
      const familyTable = info.stdout.slice(info.stdout.indexOf('family\tkeys\tshare'));
      // Every family a row (zeros too), no "(9 more with no keys)" line.
      expect(shape(familyTable)).toEqual([]);
      expect(familyTable).toMatch(/^forecast_demand\t\d+\t/m);
    });

    it('a port that is not Redis (an HTTP server) is exit 3 with a line that says so, not the parser\'s "Please report this"', async () => {
      const http = await import('node:http');
      const server = http.createServer((_req, res) => res.end('hello'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      try {
        const port = (server.address() as { port: number }).port;
        const r = await runCli(['test-redis'], { cwd: ws.dir, env: { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_TIMEOUT_MS: '1000' } });
        expect(r.code).toBe(3);
        expectOneLineError(r);
        expect(r.stderr).toMatch(/does not answer as Redis \(an HTTP or a TLS port\?/);
        expect(r.stderr).not.toMatch(/report this/i);
      } finally {
        server.close();
      }
    });

    it('a driver\'s own note (a password given to a server that needs none) is one warning line of this tool, not ioredis\'s "[WARN]"', async () => {
      const r = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: { REDIS_URL: sharedRedisUrl().replace('redis://', 'redis://:unneeded@') } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^warning: .*does not require a password, but a password was supplied$/m);
      expect(r.stderr).not.toContain('[WARN]');
    });

    it('invalidate <tenant> touches that tenant\'s keys only: what earlier writes owe is a note, listed by --pending --dry-run, done by --pending', async () => {
      const a = uniq('mine');
      const b = uniq('theirs');
      ws.writeTenant(a, tenantYaml(a));
      ws.writeTenant(b, tenantYaml(b));
      // Written with no Redis configured: both tenants owe an invalidation.
      expect((await runCli(['migrate-yaml', a, b], { cwd: ws.dir })).code).toBe(0);
      await redis.set(`tenant_config:${a}`, '{}');
      await redis.set(`tenant_config:${b}`, '{}');
      const r = await runCli(['invalidate', a], { cwd: ws.dir, env: up() });
      expect(r.code, r.stderr).toBe(0);
      expect(await redis.exists(`tenant_config:${a}`)).toBe(0);
      // Before: the owed drain deleted the other tenant's key too, and the table said nothing of it.
      expect(await redis.exists(`tenant_config:${b}`)).toBe(1);
      expect(r.stderr).toMatch(/^note: \d+ cache invalidation\(s\) owed by earlier writes .*: `tenantctl invalidate --pending` does them$/m);
      // With a tenant named too, --pending --dry-run says what --pending would also do (before: silently ignored).
      const both = await runCli(['invalidate', a, '--pending', '--dry-run'], { cwd: ws.dir, env: up() });
      expect(both.code, both.stderr).toBe(0);
      expect(both.stderr).toMatch(new RegExp(`^--pending would also do \\d+ invalidation\\(s\\) owed by earlier writes: .*tenant ${b}`, 'm'));
      const list = await runCli(['invalidate', '--pending', '--dry-run', '--json'], { cwd: ws.dir, env: up() });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).owed).toEqual(expect.arrayContaining([{ kind: 'tenant', target: b }]));
      expect(await redis.exists(`tenant_config:${b}`)).toBe(1);
      const done = await runCli(['invalidate', '--pending', '--json'], { cwd: ws.dir, env: up() });
      expect(done.code, done.stderr).toBe(0);
      expect(await redis.exists(`tenant_config:${b}`)).toBe(0);
      const none = await runCli(['invalidate', '--pending', '--dry-run'], { cwd: ws.dir, env: up() });
      expect(none.stdout).toBe('owed invalidation\ttarget\n');
      expect(none.stderr).toBe('nothing owed by earlier writes\n');
      // And the real run with nothing owed says so too (it printed nothing at all).
      const nothing = await runCli(['invalidate', '--pending'], { cwd: ws.dir, env: up() });
      expect(nothing.code, nothing.stderr).toBe(0);
      expect(nothing.stderr).toMatch(/nothing owed by earlier writes\n$/);
      // Piped, its table's header line, as the dry run's (it wrote nothing on stdout).
      expect(nothing.stdout).toBe('tenant\tdeleted\tby family\n');
    });

    it('bad input: an invalid id exits 2 and writes nothing', async () => {
      const r = await runCli(['migrate-yaml', 'ok', 'bad id'], { cwd: ws.dir, env: up() });
      expect(r.code).toBe(2);
      expectOneLineError(r);
    });
  });

  describe('list-tenants', () => {
    it('lists registry and YAML tenants with their source', async () => {
      const r = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      const list = JSON.parse(r.stdout) as Array<{ id: string; source: string; status: string | null; yaml_only: boolean }>;
      expect(list.find((t) => t.id === acme)).toEqual({ id: acme, name: expect.any(String), source: 'database', status: 'active', yaml_only: false });
      // A YAML tenant has no registry status: null in JSON (the table shows '-').
      expect(list.find((t) => t.id === dev)).toEqual({ id: dev, name: expect.any(String), source: 'yaml', status: null, yaml_only: true });
      const table = await runCli(['list-tenants'], { cwd: ws.dir, env: down() });
      expect(table.code).toBe(0);
      expect(table.stdout).toContain(acme);
    });

    it('a name holding ${VAR} is listed substituted, as get-config reads it, before and after migration (it showed the reference)', async () => {
      const w = workspace({ envt: 'client:\n  id: envt\n  name: "${ENVT_NAME:-Env Tenant}"\n' });
      try {
        const name = async (env: Record<string, string>) => {
          const r = await runCli(['list-tenants', '--json'], { cwd: w.dir, env });
          expect(r.code, r.stderr).toBe(0);
          return (JSON.parse(r.stdout) as Array<{ id: string; name: string }>).find((t) => t.id === 'envt')?.name;
        };
        expect(await name({ ENVT_NAME: 'Hello' })).toBe('Hello');
        expect(await name({})).toBe('Env Tenant');
        expect((await runCli(['migrate-yaml'], { cwd: w.dir })).code).toBe(0);
        expect(await name({ ENVT_NAME: 'Hello' })).toBe('Hello');
        const got = await runCli(['get-config', 'envt', '--json'], { cwd: w.dir, env: { ENVT_NAME: 'Hello' } });
        expect(JSON.parse(got.stdout).config.client.name).toBe('Hello');
      } finally {
        w.cleanup();
      }
    });

    it('registry down: lists the YAML tenants with one warning', async () => {
      const r = await runCli(['list-tenants', '--json', '--registry', `postgres://127.0.0.1:${await freePort()}/x`], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^warning: .*listing YAML tenants only$/m);
      expect(JSON.parse(r.stdout).map((t: { id: string }) => t.id)).toEqual(expect.arrayContaining([acme, beta, dev]));
    });

    it('bad input: a bad --ttl exits 2', async () => {
      const r = await runCli(['list-tenants', '--ttl', 'forever'], { cwd: ws.dir });
      expect(r.code).toBe(2);
      expectOneLineError(r);
    });
  });

  describe('invalidate', () => {
    it('--strict with an unknown tenant (a typo) deletes nothing, not even the known tenants\' keys: exit 1 (it deleted, then exit 1)', async () => {
      const typo = uniq('typo');
      await redis.mset(`tenant_config:${typo}`, '{}', `dashboard_kpis:${typo}:days:30`, '{}', `tenant_config:${acme}`, '{}');
      const r = await runCli(['invalidate', acme, typo, '--strict'], { cwd: ws.dir, env: up() });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`unknown tenant\\(s\\): ${typo}; --strict: nothing deleted`));
      // Said once, by the error (a warning said it first).
      expect(r.stderr).not.toMatch(/in neither the registry nor YAML/);
      expect(await redis.exists(`tenant_config:${typo}`, `dashboard_kpis:${typo}:days:30`, `tenant_config:${acme}`)).toBe(3);
      // Without --strict: a warning, and the keys go.
      const loose = await runCli(['invalidate', typo], { cwd: ws.dir, env: up() });
      expect(loose.code, loose.stderr).toBe(0);
      expect(loose.stderr).toMatch(/in neither the registry nor YAML/);
      expect(await redis.exists(`tenant_config:${typo}`, `dashboard_kpis:${typo}:days:30`)).toBe(0);
      // Known tenants only: --strict deletes.
      const known = await runCli(['invalidate', acme, '--strict'], { cwd: ws.dir, env: up() });
      expect(known.code, known.stderr).toBe(0);
      expect(await redis.exists(`tenant_config:${acme}`)).toBe(0);
    });

    it('--dry-run shows a key that is not UTF-8 by its bytes (\\xNN), and one holding the text \\xff with its backslash doubled: never alike', async () => {
      const t = uniq('bytes');
      const binary = Buffer.concat([Buffer.from(`products:${t}:`), Buffer.from([0xff, 0xfe])]);
      await redis.set(binary, '{}');
      await redis.set(`products:${t}:\\xff\\xfe`, '{}');
      try {
        const json = await runCli(['invalidate', t, '--dry-run', '--json'], { cwd: ws.dir, env: up() });
        expect(json.code, json.stderr).toBe(0);
        expect(JSON.parse(json.stdout).tenants[0].keys.sort()).toEqual([`products:${t}:\\\\xff\\\\xfe`, `products:${t}:\\xff\\xfe`].sort());
        const plain = await runCli(['invalidate', t, '--dry-run'], { cwd: ws.dir, env: up() });
        expect(plain.stdout.trim().split('\n').slice(1).sort()).toEqual([`${t}\tproducts:${t}:\\\\xff\\\\xfe`, `${t}\tproducts:${t}:\\xff\\xfe`].sort());
        expect(plain.stdout).not.toContain('\uFFFD');
      } finally {
        await redis.del(binary, `products:${t}:\\xff\\xfe`);
      }
    });

    it('up: deletes every family key of the tenant only; --dry-run lists them', async () => {
      const t = uniq('inv');
      await redis.mset(`tenant_config:${t}`, '{}', `dashboard_kpis:${t}:days:30`, '{}', `tenant_config:${t}2`, '{}', `sessions:${t}`, '{}');
      const dry = await runCli(['invalidate', t, '--dry-run', '--json'], { cwd: ws.dir, env: up() });
      expect(JSON.parse(dry.stdout).tenants[0].keys).toEqual([`dashboard_kpis:${t}:days:30`, `tenant_config:${t}`]);
      expect(await redis.exists(`tenant_config:${t}`)).toBe(1);
      const r = await runCli(['invalidate', t], { cwd: ws.dir, env: up() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/dashboard_kpis: 1, tenant_config: 1|tenant_config: 1, dashboard_kpis: 1/);
      expect(await redis.exists(`tenant_config:${t}`, `dashboard_kpis:${t}:days:30`)).toBe(0);
      expect(await redis.exists(`tenant_config:${t}2`, `sessions:${t}`)).toBe(2);
    });

    it('down: exit 3 within the timeout', async () => {
      for (const url of [downUrl, blackHoleUrl]) {
        const r = await runCli(['invalidate', acme], { cwd: ws.dir, env: { REDIS_URL: url, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
        expect(r.code).toBe(3);
        expectOneLineError(r);
        expect(r.ms).toBeLessThan(TIMEOUT_MS + STARTUP_MARGIN_MS);
      }
      const none = await runCli(['invalidate', acme], { cwd: ws.dir });
      expect(none.code).toBe(3);
      expect(none.stderr).toMatch(/no Redis configured/);
    });

    it('bad input: a glob id exits 2 and deletes nothing', async () => {
      const t = uniq('glob');
      await redis.set(`tenant_config:${t}`, '{}');
      const r = await runCli(['invalidate', `${t.slice(0, 3)}*`], { cwd: ws.dir, env: up() });
      expect(r.code).toBe(2);
      expectOneLineError(r);
      expect(await redis.exists(`tenant_config:${t}`)).toBe(1);
      await redis.del(`tenant_config:${t}`);
      // The id is checked before Redis is asked: with Redis unreachable still exit 2, not 3 (invalidate and verify).
      for (const args of [['invalidate', 'ac*'], ['verify', 'ac*']]) {
        const down = await runCli(args, { cwd: ws.dir, env: { REDIS_URL: downUrl, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
        expect(down.code, args.join(' ')).toBe(2);
        expectOneLineError(down);
        expect(down.stderr).toMatch(/is invalid for argument 'tenant'\. a tenant id is 1-128 letters/);
      }
    });

    it('a tenant named twice that nobody knows is warned once (warnings are said once each)', async () => {
      const typo = uniq('typo');
      const r = await runCli(['invalidate', typo, typo], { cwd: ws.dir, env: up() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.split(`tenant ${typo} is in neither the registry nor YAML`)).toHaveLength(2);
    });
  });

  describe('invalidate-all (own redis-server: it deletes every tenant\'s keys)', () => {
    const own = useOwnRedis();
    let ownRedis: Redis;
    beforeAll(() => {
      ownRedis = own.client;
    });

    it('bad input: without --yes and no terminal it exits 2 and deletes nothing', async () => {
      await ownRedis.mset('tenant_config:a', '{}', 'permissions:b', '{}', 'sessions:x', '{}');
      const r = await runCli(['invalidate-all'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      expect(r.code).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/--yes/);
      expect(await ownRedis.dbsize()).toBe(3);
    });

    it('up: --dry-run counts, --yes deletes only the families\' keys', async () => {
      const dry = await runCli(['invalidate-all', '--dry-run', '--json'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, total: 2, families: { tenant_config: 1, permissions: 1 } });
      const r = await runCli(['invalidate-all', '--yes'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^total\t2$/m);
      expect(await ownRedis.keys('*')).toEqual(['sessions:x']);
    });

    it('--family and --max-keys: the dry run says how many of them a run deletes; the run deletes exactly that many of that family', async () => {
      await ownRedis.flushall();
      const seed = ownRedis.pipeline();
      for (let i = 0; i < 40; i++) seed.set(`products:t${i}`, '{}');
      seed.set('tenant_config:keep', '{}');
      await seed.exec();
      const env = { REDIS_URL: own.server.url };
      const dry = await runCli(['invalidate-all', '--family', 'products', '--max-keys', '10', '--dry-run'], { cwd: ws.dir, env });
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/^total\t40$/m);
      // Before: the dry run said 40 and nothing of the 10 the run stops at.
      expect(dry.stderr).toMatch(/^with --max-keys 10, a run deletes at most 10 of these 40$/m);
      const json = await runCli(['invalidate-all', '--family', 'products', '--max-keys', '10', '--dry-run', '--json'], { cwd: ws.dir, env });
      expect(JSON.parse(json.stdout)).toMatchObject({ total: 40, at_most: 10 });
      // Only the family looked at (a 0 for tenant_config read as "none there": one was).
      expect(JSON.parse(json.stdout).families).toEqual({ products: 40 });
      const run = await runCli(['invalidate-all', '--family', 'products', '--max-keys', '10', '--yes', '--json'], { cwd: ws.dir, env });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ total: 10, complete: false, families: { products: 10 } });
      expect(Object.keys(JSON.parse(run.stdout).families)).toEqual(['products']);
      expect(await ownRedis.dbsize()).toBe(31);
      expect(await ownRedis.exists('tenant_config:keep')).toBe(1);
      await ownRedis.flushall();
    });

    it('on a terminal it shows the count and asks; anything but y deletes nothing', async () => {
      await ownRedis.mset('tenant_config:a', '{}', 'permissions:b', '{}', 'sessions:x', '{}');
      const prompt = /Delete 2 keys of the tool's key families on redis:\/\/127\.0\.0\.1:\d+\? \[y\/N\]/;
      const no = await runCliOnTerminal(['invalidate-all', '--redis-url', own.server.url], prompt, 'n\n');
      expect(no.code).toBe(2);
      expect(no.stdout).toMatch(/not confirmed; nothing deleted/);
      expect(await ownRedis.dbsize()).toBe(3);
      // A SIGTERM / SIGINT sent to the process (a supervisor, `timeout`) ends the prompt: it waited on, "stopping
      // after the current batch", until a second signal or an answer.
      for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
        const signalled = await runCliOnTerminal(['invalidate-all', '--redis-url', own.server.url], prompt, () => {
          const pid = execFileSync('pgrep', ['-f', `^${process.execPath} ${BIN} invalidate-all --redis-url ${own.server.url}$`], { encoding: 'utf8' }).trim();
          process.kill(Number(pid), signal);
        });
        expect(signalled.code, signalled.stdout).toBe(code);
        expect(signalled.stdout).toMatch(/aborted at the prompt: nothing deleted/);
        expect(await ownRedis.dbsize()).toBe(3);
      }
      // Ctrl-D (end of input) is a no too (it was "internal error: Aborted with Ctrl+D", exit 70).
      const eof = await runCliOnTerminal(['invalidate-all', '--redis-url', own.server.url], prompt, '\x04');
      expect(eof.code, eof.stdout).toBe(2);
      expect(eof.stdout).toMatch(/not confirmed; nothing deleted/);
      expect(eof.stdout).not.toMatch(/internal/);
      expect(await ownRedis.dbsize()).toBe(3);
      const yes = await runCliOnTerminal(['invalidate-all', '--redis-url', own.server.url], prompt, 'y\n');
      expect(yes.code).toBe(0);
      expect(await ownRedis.keys('*')).toEqual(['sessions:x']);
    });

    it('down: exit 3 within the timeout', async () => {
      const r = await runCli(['invalidate-all', '--yes'], { cwd: ws.dir, env: down() });
      expect(r.code).toBe(3);
      expectOneLineError(r);
      expect(r.ms).toBeLessThan(TIMEOUT_MS + STARTUP_MARGIN_MS);
    });
  });

  describe('cache-info', () => {
    it('up: table, JSON with the services\' fields, and Prometheus', async () => {
      const json = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: up() });
      expect(json.code).toBe(0);
      const info = JSON.parse(json.stdout);
      for (const f of ['backend', 'available', 'ttl_seconds', 'cached_tenants', 'hits', 'misses', 'total_requests', 'hit_rate_percent', 'used_memory_mb', 'max_memory_mb', 'memory_usage_percent', 'redis_evicted_keys']) {
        expect(info).toHaveProperty(f);
      }
      expect(info).toMatchObject({ backend: 'redis', available: true });
      const table = await runCli(['cache-info'], { cwd: ws.dir, env: up() });
      expect(table.stdout).toMatch(/hit rate/);
      const prom = await runCli(['cache-info', '--format', 'prometheus'], { cwd: ws.dir, env: up() });
      expect(prom.stdout).toMatch(/^tenantctl_redis_up 1$/m);
    });

    it('down: reports available false with one warning, exit 0, quickly', async () => {
      const r = await runCli(['cache-info', '--format', 'prometheus'], { cwd: ws.dir, env: down() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^tenantctl_redis_up 0$/m);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.ms).toBeLessThan(TIMEOUT_MS + STARTUP_MARGIN_MS);
      const json = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: down() });
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ backend: 'none', available: false, ttl_seconds: 300, error: expect.any(String) });
      expect(json.stderr.trim().split('\n')).toHaveLength(1);
      const none = await runCli(['cache-info', '--json'], { cwd: ws.dir });
      expect(JSON.parse(none.stdout)).toEqual({ backend: 'none', available: false, ttl_seconds: 300 });
    });

    it('bad input: an unknown --format exits 2', async () => {
      const r = await runCli(['cache-info', '--format', 'xml'], { cwd: ws.dir, env: up() });
      expect(r.code).toBe(2);
      expectOneLineError(r);
    });
  });

  describe('test-redis', () => {
    it('up: every step ok with latencies and the server version', async () => {
      const r = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: up() });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.steps.map((s: { step: string; ok: boolean }) => `${s.step}:${s.ok}`)).toEqual(['PING:true', 'SET:true', 'GET:true', 'DEL:true']);
      expect(out.version).toMatch(/^\d+\./);
      expect(await redis.exists(out.key)).toBe(0);
    });

    it('a server full (maxmemory reached, noeviction): exit 3 at SET with OOM in its words, and the version still said (it said "Redis unknown")', async () => {
      const full = await startRedis();
      try {
        await full.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
        await full.command('CONFIG', 'SET', 'maxmemory', '1');
        const r = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: { REDIS_URL: full.url } });
        expect(r.code).toBe(3);
        const out = JSON.parse(r.stdout);
        expect(out.steps).toContainEqual(expect.objectContaining({ step: 'SET', ok: false, detail: expect.stringMatching(/OOM/) }));
        expect(out.version).toMatch(/^\d+\./);
      } finally {
        await full.stop();
      }
    });

    it('down (refused, black hole, bad password): exit 3 within the timeout, password masked', async () => {
      for (const url of [downUrl, blackHoleUrl, sharedRedisUrl().replace('redis://', 'redis://nobody:wrongpass@')]) {
        const r = await runCli(['test-redis'], { cwd: ws.dir, env: { REDIS_URL: url, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
        expect(r.code).toBe(3);
        expectOneLineError(r);
        expect(r.stderr).not.toContain('wrongpass');
        expect(r.ms).toBeLessThan(TIMEOUT_MS + STARTUP_MARGIN_MS);
      }
      // A wrong password is the server refusing the login, not a network problem (it said "unreachable").
      const login = await runCli(['test-redis'], { cwd: ws.dir, env: { REDIS_URL: sharedRedisUrl().replace('redis://', 'redis://nobody:wrongpass@'), REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
      expect(login.stderr).toMatch(/^error: Redis at redis:\/\/nobody:\*\*\*\*@.* refused the login: WRONGPASS/);
      // cache-info reports it as unavailable in one clean line (it read "…or user is disabled.; reporting…").
      const info = await runCli(['cache-info'], { cwd: ws.dir, env: { REDIS_URL: sharedRedisUrl().replace('redis://', 'redis://nobody:wrongpass@'), REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
      expect(info.stderr).toMatch(/^warning: Redis at .* refused the login: WRONGPASS [^\n]*[^.]; reporting Redis as unavailable$/m);
      // Cluster seeds that are a plain server: said as such (it was "unreachable: Failed to refresh slots cache.").
      const seeds = await runCli(['test-redis'], { cwd: ws.dir, env: { REDIS_CLUSTER_NODES: sharedRedisUrl().replace('redis://', ''), REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
      expect(seeds.code).toBe(3);
      expect(seeds.stderr.trim()).toMatch(/^error: Redis at cluster .* is not a Cluster: Failed to refresh slots cache\. \(.*cluster support disabled: the server is not in Cluster mode\)$/);
      // -o json: a document even when it never connected (before: nothing on stdout), the same shape as a failed step's.
      const json = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: { REDIS_URL: downUrl, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
      expect(json.code).toBe(3);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, server: expect.stringContaining('redis://'), error: expect.stringMatching(/unreachable/), steps: [] });
    });

    it('a server that answers PING and then stalls: the test stops at the step that timed out (no DEL, no INFO each waiting a timeout of its own)', async () => {
      // A RESP server that answers the client's hello (CLIENT SETINFO), the connect's CLUSTER MYID and every
      // PING, and nothing from the first SET on: what it is sent is recorded.
      let received = '';
      const stall = net.createServer((socket) => {
        let stalled = false;
        socket.on('data', (d) => {
          const text = d.toString('latin1');
          received += text;
          stalled ||= /\$3\r\nSET\r\n/i.test(text);
          if (stalled) return;
          for (const _ of text.matchAll(/SETINFO/gi)) socket.write('+OK\r\n');
          // The connect asks whether it is a Cluster node (with its PING), as a real server answers it.
          for (const _ of text.matchAll(/\$7\r\nCLUSTER\r\n/gi)) socket.write('-ERR This instance has cluster support disabled\r\n');
          for (const _ of text.matchAll(/PING/gi)) socket.write('+PONG\r\n');
        });
        socket.on('error', () => undefined);
      });
      await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
      try {
        const port = (stall.address() as net.AddressInfo).port;
        const r = await runCli(['test-redis', '--json'], { cwd: ws.dir, env: { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } });
        expect(r.code, r.stderr).toBe(3);
        const out = JSON.parse(r.stdout);
        expect(out.steps.map((s: { step: string; ok: boolean }) => `${s.step}:${s.ok}`)).toEqual(['PING:true', 'SET:false']);
        expect(out.version).toBe('unknown');
        // Before: DEL was skipped, but INFO was sent and waited out a second timeout.
        expect(received).toMatch(/\$3\r\nSET\r\n/i);
        // Nothing after the SET (its step sends UNLINK with it, in the same write: see IoredisStore.set).
        const afterSet = received.slice(received.search(/\$3\r\nSET\r\n/i));
        expect(afterSet.replace(/SETINFO/gi, '')).not.toMatch(/INFO|UNLINK|DEL/i);
      } finally {
        stall.close();
      }
    });

    it('bad input: a bad --redis-timeout or a non-redis URL exits 2', async () => {
      const r = await runCli(['test-redis', '--redis-timeout', '-5'], { cwd: ws.dir, env: up() });
      expect(r.code).toBe(2);
      expectOneLineError(r);
      const url = await runCli(['test-redis', '--redis-url', 'http://127.0.0.1:6379'], { cwd: ws.dir });
      expect(url.code).toBe(2);
      expectOneLineError(url);
    });
  });

  describe('schema', () => {
    it('prints the SQL, needs neither Redis nor a registry; extra arguments exit 2', async () => {
      const r = await runCli(['schema'], { cwd: ws.dir, env: down() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/CREATE TABLE IF NOT EXISTS tenants/);
      expect(r.stdout).toMatch(/tenantctl_hash/);
      expect(JSON.parse((await runCli(['schema', '--json'], { cwd: ws.dir })).stdout).sql).toMatch(/CREATE TABLE/);
      const bad = await runCli(['schema', 'extra'], { cwd: ws.dir });
      expect(bad.code).toBe(2);
    });
  });

  it('a long migration reports progress on stderr, not stdout', async () => {
    const many = workspace(Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`bulk${i}`, tenantYaml(`bulk${i}`)])));
    try {
      const r = await runCli(['migrate-yaml', '--json'], { cwd: many.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/migrating 25\/25/);
      expect(JSON.parse(r.stdout).counts.create).toBe(25);
    } finally {
      many.cleanup();
    }
  });

  it('a batch with a bad file reports it and exits 4; the rest is done', async () => {
    const bad = uniq('broken');
    ws.writeTenant(bad, `client:\n  id: ${bad}\n  name: [x\n`);
    const r = await runCli(['migrate-yaml', bad, acme, '--json'], { cwd: ws.dir, env: up() });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(new RegExp(`${bad}\\.yaml:\\d+: `));
    expect(JSON.parse(r.stdout).items.map((i: { action: string }) => i.action)).toEqual(['error', 'unchanged']);
  });

  it('honours NO_COLOR and FORCE_COLOR', async () => {
    const plain = await runCli(['list-tenants', '-o', 'table'], { cwd: ws.dir, env: { NO_COLOR: '1', FORCE_COLOR: '1' } });
    expect(plain.stdout).not.toMatch(/\x1b\[/);
    const coloured = await runCli(['list-tenants', '-o', 'table'], { cwd: ws.dir, env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(coloured.stdout).toMatch(/\x1b\[/);
  });
});
