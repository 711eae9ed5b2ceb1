import os from 'node:os';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { newPgClient, pgSettings } from '../../src/registry/pg-settings.js';
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
      expect(pgSettings('postgres://h/d?sslmode=disable', process.env)).toEqual({ connectionString: `postgres://h/d?sslmode=disable&user=${me}` });
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
