import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { newPgClient, pgSettings } from '../../src/registry/pg-settings.js';
import { tlsOf, triesNext } from '../../src/registry/pg-tls.js';
import { loadPg } from '../../src/registry/load-pg.js';

/** pg's own reading of a client config (what it would connect with). */
const ConnectionParameters = createRequire(import.meta.url)('pg/lib/connection-parameters') as new (config: unknown) => Record<string, unknown>;

const HOSTILE = { PGUSER: 'proc_user', PGPASSWORD: 'proc_pw', PGDATABASE: 'proc_db', PGHOST: 'proc.invalid', PGPORT: '6000', PGSSLMODE: 'require', PGOPTIONS: '-c search_path=nowhere', PGCLIENT_ENCODING: 'LATIN1', PGSSLNEGOTIATION: 'direct', PGAPPNAME: 'proc_app', PGREPLICATION: 'database' };

describe('pgSettings: a PostgreSQL URL\'s missing parts come from the env given, never from process.env', () => {
  const saved = Object.fromEntries(Object.keys(HOSTILE).map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('with another env, pg reads none of the process\'s PG* variables', async () => {
    Object.assign(process.env, HOSTILE);
    const p = new ConnectionParameters(pgSettings('postgres://127.0.0.1/', { USER: 'given' }));
    expect(p).toMatchObject({ user: 'given', database: 'given', host: '127.0.0.1', port: 5432, ssl: false, client_encoding: 'UTF8', sslnegotiation: 'postgres' });
    expect(String(p.options).trim()).toBe('');
    // The password: a function pg calls at the login; none given.
    expect(await (p.password as () => unknown)()).toBeUndefined();
  });

  it('the env given fills what the URL leaves out, as libpq takes PG* variables; the URL wins', async () => {
    const env = { PGUSER: 'u', PGPASSWORD: 'pw', PGDATABASE: 'd', PGHOST: 'h', PGPORT: '5433', PGSSLMODE: 'no-verify', PGOPTIONS: '-c work_mem=4MB' };
    const p = new ConnectionParameters(pgSettings('postgres:///', env));
    expect(p).toMatchObject({ user: 'u', database: 'd', host: 'h', port: 5433, ssl: { rejectUnauthorized: false }, options: '-c work_mem=4MB' });
    expect(await (p.password as () => unknown)()).toBe('pw');
    const url = new ConnectionParameters(pgSettings('postgres://a:b@x:1/y?sslmode=disable', env));
    expect(url).toMatchObject({ user: 'a', database: 'y', host: 'x', port: 1, ssl: false });
    expect(await (url.password as () => unknown)()).toBe('b');
  });

  it('a client made with another env starts no replication connection and names itself as told, whatever PGREPLICATION / PGAPPNAME say', () => {
    Object.assign(process.env, HOSTILE);
    const client = newPgClient(loadPg().Client, 'postgres://127.0.0.1/d', { USER: 'given' }, { application_name: 'tenantctl' }) as unknown as { getStartupConf(): Record<string, unknown> };
    const startup = client.getStartupConf();
    expect(startup).toMatchObject({ user: 'given', database: 'd', application_name: 'tenantctl' });
    expect(startup.replication).toBeUndefined();
    expect(startup.options).not.toMatch(/search_path/);
  });

  it('given process.env itself (the CLI), pg reads it as it always did (~/.pgpass included)', () => {
    const saved = { USER: process.env.USER, PGUSER: process.env.PGUSER };
    try {
      process.env.USER = 'someone';
      expect(pgSettings('postgres://h/d', process.env)).toEqual({ connectionString: 'postgres://h/d' });
      // No user anywhere (cron, a minimal container): the OS user's, as libpq takes it (pg sent none, and the
      // server refused the login: "no PostgreSQL user name specified").
      delete process.env.USER;
      delete process.env.PGUSER;
      const me = encodeURIComponent(os.userInfo().username);
      expect(pgSettings('postgres://h/d', process.env)).toEqual({ connectionString: `postgres://h/d?user=${me}` });
      // The TLS parameters are read here, not by pg (see pg-tls): taken out of the URL, given as ssl.
      expect(pgSettings('postgres://h/d?sslmode=disable', process.env)).toEqual({ connectionString: `postgres://h/d?user=${me}`, ssl: false });
      // A user in the URL (or its parameters) stays the one.
      expect(pgSettings('postgres://alice@h/d', process.env)).toEqual({ connectionString: 'postgres://alice@h/d' });
      expect(pgSettings('postgres:///d?host=/run/pg&user=bob', process.env)).toEqual({ connectionString: 'postgres:///d?host=/run/pg&user=bob' });
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('tlsOf: PostgreSQL TLS as libpq reads it (node-postgres took prefer and require for full verification, ssl=false for TLS on)', () => {
  const none = { rejectUnauthorized: false };
  it('maps each sslmode (and ssl=, as Python drivers write it) to the ways to connect, in order', () => {
    const cases: Array<[string, NodeJS.ProcessEnv, unknown]> = [
      ['postgres://h/d', {}, undefined],
      ['postgres://h/d?sslmode=disable', {}, [false]],
      ['postgres://h/d?sslmode=allow', {}, [false, none]],
      ['postgres://h/d?sslmode=prefer', {}, [none, false]],
      ['postgres://h/d?sslmode=require', {}, [none]],
      ['postgres://h/d?sslmode=verify-full', {}, [{}]],
      ['postgres://h/d?sslmode=no-verify', {}, [none]],
      ['postgres://h/d?ssl=false', {}, [false]],
      ['postgres://h/d?ssl=0', {}, [false]],
      ['postgres://h/d?ssl=disable', {}, [false]],
      ['postgres://h/d?ssl=require', {}, [none]],
      ['postgres://h/d?ssl=true', {}, [{}]],
      ['postgres://h/d', { PGSSLMODE: 'prefer' }, [none, false]],
      // The URL outranks PGSSLMODE.
      ['postgres://h/d?sslmode=disable', { PGSSLMODE: 'require' }, [false]],
    ];
    for (const [url, env, attempts] of cases) expect(tlsOf(url, env).attempts, `${url} ${JSON.stringify(env)}`).toEqual(attempts);
  });

  it('takes the TLS parameters out of the URL (pg must not read them again), keeping every other one', () => {
    expect(tlsOf('postgres://u@h/d?application_name=x&sslmode=require&sslrootcert=&options=-c%20a%3Db', {}).url).toBe('postgres://u@h/d?application_name=x&options=-c%20a%3Db');
    expect(tlsOf('postgres://u@h/d?ssl=false', {}).url).toBe('postgres://u@h/d');
  });

  it('verify-ca checks the chain, not the host name; require with a root certificate is verify-ca (libpq)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-pgtls-'));
    try {
      const ca = path.join(dir, 'root.crt');
      writeFileSync(ca, 'CA PEM');
      for (const mode of ['verify-ca', 'require']) {
        const [tls] = tlsOf(`postgres://h/d?sslmode=${mode}&sslrootcert=${ca}`, {}).attempts as Array<Record<string, unknown>>;
        expect(tls.ca).toBe('CA PEM');
        expect(tls.rejectUnauthorized).toBeUndefined();
        expect(typeof tls.checkServerIdentity).toBe('function');
      }
      expect(tlsOf('postgres://h/d?sslmode=verify-full', { PGSSLROOTCERT: ca }).attempts).toEqual([{ ca: 'CA PEM' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('verify-ca without a root certificate is refused, as libpq refuses it (it took the system roots and checked no name: any public certificate for any host passed)', () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-pghome-'));
    try {
      expect(() => tlsOf('postgres://h/d?sslmode=verify-ca', { HOME: home })).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/sslmode=verify-ca needs a root certificate/) }));
      // sslrootcert=system: the system's roots, and the name is checked (libpq 16).
      expect(tlsOf('postgres://h/d?sslmode=verify-ca&sslrootcert=system', { HOME: home }).attempts).toEqual([{}]);
      expect(tlsOf('postgres://h/d?sslmode=require&sslrootcert=system', { HOME: home }).attempts).toEqual([{}]);
      // ~/.postgresql/root.crt, where libpq looks by default: require and verify-ca check the chain against it.
      mkdirSync(path.join(home, '.postgresql'));
      writeFileSync(path.join(home, '.postgresql', 'root.crt'), 'HOME CA');
      for (const mode of ['verify-ca', 'require']) {
        const [tls] = tlsOf(`postgres://h/d?sslmode=${mode}`, { HOME: home }).attempts as Array<Record<string, unknown>>;
        expect(tls).toMatchObject({ ca: 'HOME CA' });
        expect(tls.rejectUnauthorized).toBeUndefined();
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('an unknown mode or an unreadable certificate file is a usage error naming it', () => {
    expect(() => tlsOf('postgres://h/d?sslmode=maybe', {})).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/TLS mode "maybe" is not one libpq knows/) }));
    expect(() => tlsOf('postgres://h/d?sslmode=verify-full&sslrootcert=/nonexistent/root.crt', {})).toThrow(/cannot read the PostgreSQL root certificate \(sslrootcert\) file \/nonexistent\/root\.crt: ENOENT/);
  });

  it('goes on to the next way only on the answer that calls for it', () => {
    expect(triesNext(new Error('The server does not support SSL connections'), { rejectUnauthorized: false })).toBe(true);
    expect(triesNext(new Error('no pg_hba.conf entry for host "1.2.3.4", user "u", database "d", no encryption'), false)).toBe(true);
    expect(triesNext(new Error('password authentication failed for user "u"'), false)).toBe(false);
    expect(triesNext(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), { rejectUnauthorized: false })).toBe(false);
    expect(triesNext(new Error('timeout expired'), { rejectUnauthorized: false })).toBe(false);
    // prefer, as libpq: a TLS session the server refuses (pg_hba hostnossl) is tried again in plain.
    expect(triesNext(Object.assign(new Error('no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", SSL encryption'), { code: '28000' }), { rejectUnauthorized: false })).toBe(true);
  });
});
