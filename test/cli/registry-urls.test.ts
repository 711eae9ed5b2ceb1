import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { expectOneLineError, freshPostgresDatabase, runCli, TEST_DATABASE_URL, tenantYaml, workspace, type Workspace } from '../helpers/setup.js';

/**
 * Issue 7 §3: registry URLs are parsed strictly. `postgres`, `postgresql` and
 * `postgresql+<driver>` (driver dropped, said once on stderr) are PostgreSQL;
 * `https` is Supabase (needs a key); every other scheme and every malformed
 * URL is a usage error (exit 2, one line, password masked) that creates
 * nothing; a directory is a plain path or `file:PATH`.
 */

/** A working directory of its own per test: nothing may appear in it. */
let cwd: string;
beforeEach(() => {
  cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-urls-'));
});
afterEach(() => rmSync(cwd, { recursive: true, force: true }));

describe('registry URLs that are not registries, or not URLs', () => {
  let tenants: Workspace;
  beforeAll(() => {
    tenants = workspace({ acme: tenantYaml('acme', 'Acme') }, { registry: false });
  });
  afterAll(() => tenants.cleanup());

  const BAD: Array<[string, RegExp]> = [
    ['postgress://u:secret@h/db', /is not a registry URL/],
    ['mysql://u:secret@h/db', /is not a registry URL/],
    ['redis://u:secret@127.0.0.1:6399/0', /is not a registry URL/],
    ['postgres://u:secret@host:99999/db', /is not a valid URL/],
    ['postgres://u:secret@ho st/db', /is not a valid URL/],
    ['postgresql+asyncpg://u:secret@[::1/db', /is not a valid URL/],
    // pg refuses a port with no host as well: said as what it lacks.
    ['postgres://u:secret@:5432/db', /has no host \(a port alone is no host\)/],
    // pg decodes the password: a % that is no escape was "unreachable: URI malformed", exit 3 (or YAML, exit 0).
    ['postgres://u:secret%C3@127.0.0.1/db', /has a % that is no escape in its user, password or database/],
  ];

  for (const [url, why] of BAD) {
    it(`${url}: exit 2, one line, password masked, nothing created (env and flag, read and write)`, async () => {
      const runs = [
        await runCli(['get-config', 'acme'], { cwd, env: { DATABASE_URL: url } }),
        await runCli(['--registry', url, 'list-tenants'], { cwd }),
        await runCli(['migrate-yaml', '--tenants-dir', tenants.tenantsDir], { cwd, env: { DATABASE_URL: url } }),
        await runCli(['--registry', url, 'set-subscription', 'acme', '--tier', 'pilot_pro'], { cwd }),
        // Typed on the command line, it is a mistake in this command even where the registry is not needed:
        // invalidate and invalidate-all --yes went on and deleted keys, exit 0.
        await runCli(['invalidate', 'acme', '--registry', url, '--redis-url', 'redis://127.0.0.1:1'], { cwd }),
        await runCli(['invalidate-all', '--yes', '--registry', url, '--redis-url', 'redis://127.0.0.1:1'], { cwd }),
      ];
      // `config` shows it (it is the command to diagnose it with): exit 0, the problem in its table, masked.
      const shown = await runCli(['--registry', url, 'config', '--json'], { cwd });
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toMatch(/not usable/);
      expect(shown.stdout).not.toContain('secret');
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(2);
        expectOneLineError(r);
        expect(r.stderr).toMatch(why);
        expect(r.stderr).toContain(':****@');
        expect(r.stdout + r.stderr).not.toContain('secret');
      }
      // Nothing created: no .tenantctl, no directory named after the URL, nothing at all.
      expect(readdirSync(cwd)).toEqual([]);
      expect(readdirSync(tenants.dir).sort()).toEqual(['tenants']);
    });
  }

  it('malformed URLs whose password holds "/", "#" or which lack "//" still never show the password', async () => {
    const cases: Array<[string, string]> = [
      ['postgres:u:hunter2pw@h/db', 'hunter2pw'],
      ['postgress:/u:hunter2pw@h/db', 'hunter2pw'],
      ['postgres://u:hun/ter2pw@h/db', 'ter2pw'],
      ['postgres://u:hunter2#pw@h/db', 'hunter2'],
    ];
    for (const [url, password] of cases) {
      const r = await runCli(['get-config', 'acme'], { cwd, env: { DATABASE_URL: url } });
      expect(r.code, url).toBe(2);
      expectOneLineError(r);
      expect(r.stdout + r.stderr, url).not.toContain(password);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('a URL missing the colon after its scheme, or a Supabase URL with a password: exit 2, masked, nothing created (the first migrated into a new local registry named after the URL, exit 0; the second printed the password)', async () => {
    for (const [env, args] of [
      [{ DATABASE_URL: 'postgresql//app:hunter2pw@db.internal:5432/app' }, ['migrate-yaml']],
      [{}, ['--registry', 'postgres//u:hunter2pw@h/db', 'migrate-yaml']],
      [{ SUPABASE_SERVICE_ROLE_KEY: 'k' }, ['--registry', 'https://svc:hunter2pw@proj.supabase.co', 'get-config', 'acme']],
    ] as const) {
      const r = await runCli([...args, '--tenants-dir', tenants.tenantsDir], { cwd, env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expectOneLineError(r);
      expect(r.stdout + r.stderr).not.toContain('hunter2pw');
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('commander\'s own error lines and an id that is a URL, and a Redis URL with its credentials in the path, never show the password (they quoted it whole)', async () => {
    for (const args of [
      ['--redis_url=redis://u:hunter2pw@h:1', 'test-redis'],
      ['--redis-urll=redis://u:hunter2pw@h:1', 'test-redis'],
      ['invalidate', 'redis://u:hunter2pw@h:1'],
      ['-o', 'redis://u:hunter2pw@h:1', 'test-redis'],
      ['--redis-url', 'redis:/u:hunter2pw@h:1', 'test-redis'],
      ['--redis-url', 'redis:///:hunter2pw@h', 'test-redis'],
      ['--redis-url', 'redis//u:hunter2pw@h:1', 'test-redis'],
      ['--redis-url', 'redis://127.0.0.1:1?sentinelPassword=hunter2pw', 'config'],
      // A password with a quote or a blank in it (a review).
      ["--redis_url=redis://u:hunt'er2pw@h:1", 'cache-info'],
      ['--redis_url=redis://u:hunter2pw x@h:1', 'cache-info'],
      ['--redis-timeout=redis://u:hunter2pw x@h:1', 'config'],
      ['-oredis://u:hunter2pw x@h:1', 'config'],
      ['-o=redis://u:hunter2pw x@h:1', 'config'],
      ['--redis-timeout', 'redis://u:hunter2pw"x@h:1', 'config'],
    ]) {
      const r = await runCli(args, { cwd });
      expect(r.stdout + r.stderr, args.join(' ')).not.toMatch(/hunter2pw|hunt'er2pw/);
    }
  });

  it('a password holding an unencoded "@" is masked whole when the registry is unreachable', async () => {
    // WHATWG URL (and pg) take the last "@" as the end of the user-info.
    const r = await runCli(['get-config', 'acme', '--tenants-dir', tenants.tenantsDir], { cwd, env: { DATABASE_URL: 'postgres://u:hunter@2pw@127.0.0.1:1/db' } });
    expect(r.stdout + r.stderr).not.toContain('2pw');
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('https:// without a Supabase key is exit 2 naming the variable; plain http:// off loopback too', async () => {
    const https = await runCli(['get-config', 'acme'], { cwd, env: { DATABASE_URL: 'https://abc.supabase.co' } });
    expect(https.code).toBe(2);
    expectOneLineError(https);
    expect(https.stderr).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
    const viaFlag = await runCli(['--registry', 'https://abc.supabase.co', 'list-tenants'], { cwd });
    expect(viaFlag.code).toBe(2);
    const http = await runCli(['--registry', 'http://abc.supabase.co', 'list-tenants'], { cwd, env: { SUPABASE_SERVICE_ROLE_KEY: 'k' } });
    expect(http.code).toBe(2);
    expectOneLineError(http);
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('registry directories: file:PATH and a plain path are the embedded registry', () => {
  it('file:./reg and ./reg name the same embedded registry; nothing lands in .tenantctl', async () => {
    // A ready registry (a copy of the pre-initialised one: initdb costs ~4 s and ~1 GB).
    cpSync(inject('pgliteTemplate'), path.join(cwd, 'reg'), { recursive: true });
    const tenants = workspace({ acme: tenantYaml('acme', 'Acme') }, { registry: false });
    try {
      const m = await runCli(['--registry', 'file:./reg', 'migrate-yaml', '--tenants-dir', tenants.tenantsDir, '--json'], { cwd });
      expect(m.code, m.stderr).toBe(0);
      expect(JSON.parse(m.stdout).counts.create).toBe(1);
      // No tenants directory here: the answer can only come from ./reg.
      for (const registry of ['./reg', `file:${path.join(cwd, 'reg')}`]) {
        const r = await runCli(['list-tenants', '--json'], { cwd, env: { DATABASE_URL: registry } });
        expect(r.code, `${registry}: ${r.stderr}`).toBe(0);
        expect(JSON.parse(r.stdout), registry).toEqual([expect.objectContaining({ id: 'acme', source: 'database' })]);
      }
      expect(readdirSync(cwd).sort()).toEqual(['reg']);
    } finally {
      tenants.cleanup();
    }
  });

  it('a read with file: naming a registry that does not exist creates nothing', async () => {
    const r = await runCli(['--registry', 'file:./missing', 'get-config', 'acme'], { cwd });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing/);
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe.runIf(TEST_DATABASE_URL)('postgresql+<driver>:// URLs (Python services\' env files)', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await freshPostgresDatabase();
    const ws = workspace({ acme: tenantYaml('acme', 'Acme From Postgres') }, { registry: false });
    const m = await runCli(['migrate-yaml'], { cwd: ws.dir, env: { DATABASE_URL: db.url } });
    ws.cleanup();
    expect(m.code, m.stderr).toBe(0);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('a URL with no host takes PGHOST (and PGPORT, PGUSER) as libpq does; it was refused as "has no host"', async () => {
    const u = new URL(db.url);
    const env = { DATABASE_URL: `postgres://${u.pathname}`, PGHOST: u.hostname, PGPORT: u.port || '5432', PGUSER: u.username || 'postgres' };
    const r = await runCli(['get-config', 'acme', '--json'], { cwd, env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ source: 'database' });
    // Without PGHOST it is still refused, naming the ways to give one.
    const none = await runCli(['get-config', 'acme', '--json'], { cwd, env: { ...env, PGHOST: '' } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/has no host \(give one, a \?host= parameter, or PGHOST\)/);
  });

  it('TLS modes as libpq reads them, against a server without TLS: prefer and allow connect, ssl=false is plain, require fails as libpq does; never pg\'s SECURITY WARNING', async () => {
    const u = new URL(db.url);
    const base = `postgres://${u.username || 'postgres'}@${u.host}${u.pathname}`;
    const works: Array<[string, Record<string, string>]> = [
      [`${base}?sslmode=prefer`, {}],
      [`${base}?sslmode=allow`, {}],
      [base, { PGSSLMODE: 'prefer' }],
      [`${base}?ssl=false`, {}],
      [`${base}?ssl=disable`, {}],
      [`postgresql+asyncpg://${u.username || 'postgres'}@${u.host}${u.pathname}?ssl=disable`, {}],
    ];
    for (const [url, env] of works) {
      const r = await runCli(['get-config', 'acme', '--json'], { cwd, env: { DATABASE_URL: url, ...env } });
      expect(r.code, `${url} ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout), url).toMatchObject({ source: 'database' });
      expect(r.stderr, url).not.toMatch(/SECURITY WARNING|warning: registry/);
    }
    // require: TLS or nothing (psql says the same); a writer stops, exit 3, one line.
    const required = await runCli(['migrate-yaml', '--tenants-dir', cwd], { cwd, env: { DATABASE_URL: `${base}?sslmode=require` } });
    expect(required.code, required.stderr).toBe(3);
    expect(required.stderr).toMatch(/does not support SSL/);
    expect(required.stderr).not.toMatch(/SECURITY WARNING/);
    const bogus = await runCli(['get-config', 'acme'], { cwd, env: { DATABASE_URL: `${base}?sslmode=sometimes` } });
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/TLS mode "sometimes" is not one libpq knows/);
  });

  it('a URL naming a user and no host (postgresql://user@/db) is what pg and libpq take it for, the host from PGHOST; it was "not a valid URL"', async () => {
    const u = new URL(db.url);
    const env = { DATABASE_URL: `postgresql://${u.username || 'postgres'}@${u.pathname}`, PGHOST: u.hostname, PGPORT: u.port || '5432' };
    const r = await runCli(['get-config', 'acme', '--json'], { cwd, env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ source: 'database' });
    const none = await runCli(['get-config', 'acme', '--json'], { cwd, env: { ...env, PGHOST: '' } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/has no host \(give one/);
  });

  it('a URL with no user, and neither PGUSER nor USER set (cron): the OS user, as libpq takes it (the server refused "no PostgreSQL user name specified")', async () => {
    const u = new URL(db.url);
    const me = os.userInfo().username;
    const r = await runCli(['list-tenants', '--json'], { cwd, env: { DATABASE_URL: `postgres://${u.host}${u.pathname}`, USER: '', PGUSER: '', LOGNAME: '' } });
    expect(r.stderr).not.toMatch(/no PostgreSQL user name/);
    // This machine's OS user is a PostgreSQL role (root): the registry answers; elsewhere the server names that role.
    if (r.code === 0 && !/refused the login/.test(r.stderr)) expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ id: 'acme', source: 'database' })]);
    else expect(r.stderr).toMatch(new RegExp(`role "${me}" does not exist`));
  });

  for (const driver of ['asyncpg', 'psycopg2']) {
    it(`postgresql+${driver}:// reads the PostgreSQL registry, with one notice line, and creates nothing`, async () => {
      const u = new URL(db.url);
      // trust authentication: the password is ignored by the server, but must never be shown.
      const url = `postgresql+${driver}://${u.username || 'postgres'}:pw-${driver}-xyz@${u.host}${u.pathname}`;
      for (const r of [
        await runCli(['get-config', 'acme', '--json'], { cwd, env: { DATABASE_URL: url } }),
        await runCli(['--registry', url, 'get-config', 'acme', '--json'], { cwd }),
      ]) {
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ source: 'database', config: { client: { name: 'Acme From Postgres' } } });
        const lines = r.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`driver "\\+${driver}" dropped`));
        expect(r.stderr).not.toContain(`pw-${driver}-xyz`);
      }
      const list = await runCli(['list-tenants', '--json'], { cwd, env: { DATABASE_URL: url } });
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: 'acme', source: 'database' })]);
      expect(readdirSync(cwd)).toEqual([]);
      expect(existsSync(path.join(cwd, '.tenantctl'))).toBe(false);
    });
  }
});

describe('a PostgreSQL registry that never answers', () => {
  it('the message says the timeout, as Redis\'s do (pg says only "timeout expired")', async () => {
    const net = await import('node:net');
    const hole = net.createServer(() => undefined);
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const port = (hole.address() as import('node:net').AddressInfo).port;
    const ws = workspace({ acme: tenantYaml('acme') }, { registry: false });
    try {
      const r = await runCli(['list-tenants', '--registry-timeout', '400'], { cwd: ws.dir, env: { DATABASE_URL: `postgres://u@127.0.0.1:${port}/x` } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/is unreachable: timeout expired \(timeout 400 ms\)/);
    } finally {
      hole.close();
      ws.cleanup();
    }
  });
});
