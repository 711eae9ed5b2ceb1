import { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import { NotFoundError, TenantFileError, BackendUnavailableError } from '../../src/errors.js';
import { sharedRedisUrl, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';
import { wireServices } from '../helpers/services.js';

describe('TenantConfigService: cache -> registry -> YAML', () => {
  let ws: Workspace;
  let store: SqlRegistryStore;
  let redis: Redis;
  const registry = async () => store;
  beforeAll(async () => {
    ws = workspace({}, { registry: false });
    store = await openPgliteStore(undefined);
    await store.ensureSchema();
    redis = new Redis(sharedRedisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await store.close();
    ws.cleanup();
  });

  /**
   * The store, its first getTenant holding back what it read until `release()` (a slow registry);
   * `firstRead` settles once that read is made.
   */
  const slowFirstRead = () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let readOnce!: () => void;
    const firstRead = new Promise<void>((r) => (readOnce = r));
    let first = true;
    const slow = new Proxy(store, {
      get: (target, prop, receiver) =>
        prop === 'getTenant'
          ? async (tid: string) => {
              const row = await target.getTenant(tid);
              if (first) {
                first = false;
                readOnce();
                await gate;
              }
              return row;
            }
          : Reflect.get(target, prop, receiver),
    });
    return { slow, firstRead, release };
  };

  const secretTenant = (id: string) =>
    tenantYaml(id, 'Secretive', `email:\n  primary: a@b.c\n  smtp:\n    host: "\${SMTP_HOST:-smtp.example}"\n    password: "\${${id.toUpperCase()}_PW}"\ninfrastructure:\n  openai: { api_key: sk-literal-123, model: m }\n`);

  it('a YAML answer given because the registry is unreachable is never cached nor warmed (the registry may hold a newer one)', async () => {
    const id = uniq('fallback');
    ws.writeTenant(id, tenantYaml(id, 'From YAML'));
    const unreachable = async (): Promise<never> => {
      throw new BackendUnavailableError('registry', 'registry at postgres://x unreachable', { reason: 'unreachable' });
    };
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: unreachable, tenantsDir: ws.tenantsDir, env: {} });
    try {
      const got = await s.tenants.get(id);
      expect(got.source).toBe('yaml');
      expect(await redis.exists(`tenant_config:${id}`)).toBe(0);
    } finally {
      s.close();
    }
  });

  it('no cache to warm (none configured, or Redis down): no "not warmed" warning for a secret that does not resolve (one per such tenant, with nothing to warm)', async () => {
    const id = uniq('nowarm');
    ws.writeTenant(id, secretTenant(id));
    const dead = `redis://127.0.0.1:${await freePort()}`;
    for (const redisUrl of [undefined, dead]) {
      const s = wireServices({ redisUrl, registry, tenantsDir: ws.tenantsDir, env: {} });
      for (let i = 0; i < 2; i++) {
        const got = await s.tenants.get(id);
        expect(got.source).toBe('yaml');
        expect(got.warmed).toBeUndefined();
      }
      expect(s.warnings.filter((w) => w.includes('not warmed'))).toEqual([]);
      s.close();
    }
  });

  it('by default a miss caches the services\' own entry (secrets resolved, _meta.source only, json.dumps text), or nothing when a secret does not resolve here (it cached the ${VAR} form, which a service would use as it is)', async () => {
    const id = uniq('lib');
    // Every secret a reference: the services resolve them from their environment, as this one does here.
    ws.writeTenant(id, secretTenant(id).replace('api_key: sk-literal-123', 'api_key: "${OPENAI_API_KEY}"'));
    const env = { [`${id.toUpperCase()}_PW`]: 'pw-from-env', OPENAI_API_KEY: 'sk-shared' };
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir, env });
    const first = await s.tenants.get(id);
    expect(first).toMatchObject({ source: 'yaml', warmed: true });
    const raw = await redis.get(`tenant_config:${id}`);
    expect(JSON.parse(raw!)).toMatchObject({ email: { smtp: { password: 'pw-from-env' } }, infrastructure: { openai: { api_key: 'sk-shared' } }, _meta: { source: 'yaml' } });
    expect(Object.keys(JSON.parse(raw!)._meta)).toEqual(['source']);
    expect(raw).toContain('", "');
    expect((await s.tenants.get(id)).source).toBe('cache');
    s.close();

    // The same tenant in an environment without its password: answered, nothing cached, said once.
    await redis.del(`tenant_config:${id}`);
    const bare = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir, env: { OPENAI_API_KEY: 'sk-shared' } });
    for (let i = 0; i < 3; i++) expect(await bare.tenants.get(id)).toMatchObject({ source: 'yaml', warmed: false });
    expect(await redis.exists(`tenant_config:${id}`)).toBe(0);
    expect(bare.warnings.filter((w) => w.includes('not warmed'))).toHaveLength(1);
    bare.close();

    // A literal secret in the file: the services' entry would hold it, and it is never kept here: nothing
    // cached (it cached the shared OPENAI_API_KEY's value in its place).
    const lit = uniq('lib');
    ws.writeTenant(lit, secretTenant(lit));
    const withLiteral = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir, env: { [`${lit.toUpperCase()}_PW`]: 'pw-from-env', OPENAI_API_KEY: 'sk-shared' } });
    expect(await withLiteral.tenants.get(lit)).toMatchObject({ source: 'yaml', warmed: false });
    expect(await redis.exists(`tenant_config:${lit}`)).toBe(0);
    expect(withLiteral.warnings.join('\n')).toMatch(/not warmed: the literal secret at infrastructure\.openai\.api_key/);
    withLiteral.close();
  });

  it('a registry row whose jsonb holds a whole-valued float (1.0, as a service writing Python floats leaves it) is answered but not warmed: the services cache 1.0, JSON from here 1', async () => {
    const [floaty, plain] = [uniq('floaty'), uniq('plainnum')];
    await store.db.query(
      `INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ($1, 'Floaty', 'database', '{"limits": {"rate": 1.00, "ratio": 1.5}, "note": "v1.0"}'), ($2, 'Plain', 'database', '{"limits": {"rate": 1, "ratio": 1.5}, "note": "v1.0"}')`,
      [floaty, plain],
    );
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir, env: {} });
    try {
      expect(await s.tenants.get(floaty)).toMatchObject({ source: 'database', config: { limits: { rate: 1, ratio: 1.5 } }, warmed: false });
      expect(await redis.exists(`tenant_config:${floaty}`)).toBe(0);
      expect(s.warnings.join('\n')).toContain(`tenant_config:${floaty} not warmed: limits.rate is 1.00 in the registry's jsonb, a float the services cache as 1.0, and JSON from here as 1`);
      // An integer, and "1.0" inside a string, are no such float: warmed.
      expect(await s.tenants.get(plain)).toMatchObject({ source: 'database', warmed: true });
      expect(await redis.get(`tenant_config:${plain}`)).toContain('"limits": {"rate": 1, "ratio": 1.5}');
    } finally {
      s.close();
      await redis.del(`tenant_config:${plain}`);
    }
  });

  it('concurrent gets of one tenant on a miss share one read and one warm (each read the registry twice and wrote the entry), yet each caller gets its own copy', async () => {
    const id = uniq('hot');
    await store.db.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ($1, 'Hot', 'database', '{"limits": {"rate": 2}}')`, [id]);
    let reads = 0;
    const counting = new Proxy(store, {
      get: (target, prop, receiver) => (prop === 'getTenant' ? (tid: string) => (reads++, target.getTenant(tid)) : Reflect.get(target, prop, receiver)),
    });
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: async () => counting, tenantsDir: ws.tenantsDir, env: {} });
    try {
      const all = await Promise.all(Array.from({ length: 50 }, () => s.tenants.get(id)));
      expect(all.every((r) => r.source === 'database' && r.warmed === true)).toBe(true);
      // One read for the answer and one for the warm's check that the row is unchanged.
      expect(reads).toBe(2);
      (all[0].config.limits as Record<string, unknown>).rate = 99;
      expect((all[1].config.limits as Record<string, unknown>).rate).toBe(2);
      // Once settled, the next get reads again (the cache now).
      expect((await s.tenants.get(id)).source).toBe('cache');
      expect(reads).toBe(2);
    } finally {
      s.close();
      await redis.del(`tenant_config:${id}`);
    }
  });

  it('a warm whose check of the registry fails (the second getTenant throws) takes the entry back: cannot tell is changed (it was kept, though a write may have invalidated it meanwhile)', async () => {
    const id = uniq('recheck');
    await store.db.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ($1, 'Rechecked', 'database', '{}')`, [id]);
    // Fault injection on the real store: the first getTenant (the answer) goes through, the second (the warm's check) fails.
    let reads = 0;
    const failsSecondRead = new Proxy(store, {
      get: (target, prop, receiver) =>
        prop === 'getTenant'
          ? async (tid: string) => {
              if (++reads === 2) throw new BackendUnavailableError('registry', 'registry connection lost mid-check', { reason: 'unreachable' });
              return target.getTenant(tid);
            }
          : Reflect.get(target, prop, receiver),
    });
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: async () => failsSecondRead, tenantsDir: ws.tenantsDir, env: {}, populate: 'resolved' });
    try {
      const got = await s.tenants.get(id);
      expect(got).toMatchObject({ source: 'database', config: { client: { name: 'Rechecked' } } });
      expect(reads).toBe(2);
      expect(got.warmed).toBe(false);
      expect(await redis.exists(`tenant_config:${id}`)).toBe(0);
    } finally {
      s.close();
      await redis.del(`tenant_config:${id}`);
    }
  });

  it('a get that begins after a read of its tenant is under way does not share that read: a row replaced meanwhile is answered new (it got the old one)', async () => {
    const id = uniq('fresh');
    await store.db.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ($1, 'V1', 'database', '{}')`, [id]);
    // The first read returns what it read only once the gate opens (a slow registry), after the row changed.
    const { slow, firstRead, release } = slowFirstRead();
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: async () => slow, tenantsDir: ws.tenantsDir, env: {} });
    try {
      const a = s.tenants.get(id);
      await firstRead;
      await store.db.query(`UPDATE tenants SET name = 'V2', updated_at = now() WHERE id = $1`, [id]);
      await redis.del(`tenant_config:${id}`);
      const b = s.tenants.get(id);
      // Its cache read (a miss) done, it has met the read under way (not a timing assertion: ordering only).
      await new Promise((r) => setTimeout(r, 100));
      release();
      expect(((await a).config.client as Record<string, unknown>).name).toBe('V1');
      expect(((await b).config.client as Record<string, unknown>).name).toBe('V2');
    } finally {
      s.close();
      await redis.del(`tenant_config:${id}`);
    }
  });

  it('a shared read takes the tenant file as it is when the read begins, not as the call that set it up saw it', async () => {
    const id = uniq('yamlfresh');
    ws.writeTenant(id, tenantYaml(id, 'File V1'));
    // The registry (no row for this tenant) answers the first read only once the gate opens.
    const { slow, firstRead, release } = slowFirstRead();
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: async () => slow, tenantsDir: ws.tenantsDir, env: {}, populate: 'none' });
    try {
      const a = s.tenants.get(id);
      await firstRead;
      // B begins after A's read: it sets up the next read, having seen the file as V1.
      const b = s.tenants.get(id);
      await new Promise((r) => setTimeout(r, 100));
      // The file changes; a call after it (past the source's one-second look at the file) shares that next read.
      ws.writeTenant(id, tenantYaml(id, 'File V2'));
      await new Promise((r) => setTimeout(r, 1100));
      const c = s.tenants.get(id);
      await new Promise((r) => setTimeout(r, 100));
      release();
      const name = async (p: Promise<{ config: Record<string, unknown> }>) => ((await p).config.client as Record<string, unknown>).name;
      expect(await name(a)).toBe('File V1');
      expect(await name(c)).toBe('File V2');
      await b;
    } finally {
      s.close();
    }
  });

  it('run from where there is no tenants directory: typed reasons, no CLI flag in the library\'s words (the CLI adds "give --tenants-dir")', async () => {
    // The default ./tenants, from a directory that has none (an explicit directory that is missing is refused as such).
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-nowhere-'));
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, cwd, env: {} });
    try {
      const missing = await s.tenants.get(uniq('nowhere')).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(NotFoundError);
      expect(missing).toMatchObject({ reason: 'no-tenants-dir', message: expect.stringMatching(/: there is no tenants directory at .*tenants$/) });
      const migrated = await s.migration.run({}).catch((e: unknown) => e);
      expect(migrated).toMatchObject({ reason: 'no-tenants-dir', message: expect.stringMatching(/^no tenants directory at .*: nothing to migrate; nothing was created$/) });
      for (const err of [missing, migrated]) expect((err as Error).message).not.toMatch(/--/);
    } finally {
      s.close();
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('populate "stored": reads YAML, caches the stored form, then serves the cache; secrets never reach the cache', async () => {
    const id = uniq('yaml');
    ws.writeTenant(id, secretTenant(id));
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir, env: { [`${id.toUpperCase()}_PW`]: 'pw-from-env', OPENAI_API_KEY: 'sk-shared' }, populate: 'stored' });
    const first = await s.tenants.get(id);
    expect(first.source).toBe('yaml');
    expect(first.config).toMatchObject({ email: { smtp: { host: 'smtp.example', password: 'pw-from-env' } }, infrastructure: { openai: { api_key: 'sk-shared' } } });
    const raw = await redis.get(`tenant_config:${id}`);
    expect(raw).not.toBeNull();
    expect(raw).not.toContain('pw-from-env');
    expect(raw).not.toContain('sk-literal-123');
    expect(raw).not.toContain('sk-shared');
    expect(JSON.parse(raw!).email.smtp.password).toBe(`\${${id.toUpperCase()}_PW}`);
    expect(await redis.ttl(`tenant_config:${id}`)).toBeGreaterThan(290);
    const second = await s.tenants.get(id);
    expect(second.source).toBe('cache');
    expect(second.config.email).toEqual(first.config.email);
    s.close();
  });

  it('cache hits share one parse per stored text, yet every caller gets its own copy', async () => {
    const id = uniq('shared');
    const key = `tenant_config:${id}`;
    const stored = (name: string) =>
      `{"client":{"id":"${id}","name":"${name}"},"email":{"smtp":{"host":"\${H:-h1}"}},"list":[{"a":1}],"__proto__":{"p":1},"_meta":{"source":"database"}}`;
    await redis.set(key, stored('A'), 'EX', 300);
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir, env: {} });
    expect(await s.cache.readJsonShared(key)).toBe(await s.cache.readJsonShared(key));
    // A long entry is not kept (a long-lived process's memory stays bounded): parsed on every read.
    const big = `tenant_config:${id}-big`;
    await redis.set(big, JSON.stringify({ blob: 'x'.repeat(300_000) }), 'EX', 300);
    const [b1, b2] = [await s.cache.readJsonShared(big), await s.cache.readJsonShared(big)];
    expect(b1).not.toBe(b2);
    expect(b1).toEqual(b2);

    const first = await s.tenants.get(id);
    expect(first.source).toBe('cache');
    (first.config.client as Record<string, unknown>).name = 'changed';
    (first.config.list as Array<Record<string, unknown>>)[0].a = 2;
    delete first.config._meta;
    const fromStore = await s.tenants.getStored(id);
    (fromStore.config.client as Record<string, unknown>).name = 'changed too';
    (fromStore.config._meta as Record<string, unknown>).source = 'changed too';

    const second = await s.tenants.get(id);
    // JSON.parse makes "__proto__" an own key: it stays one, and never becomes the prototype.
    expect(JSON.stringify(second.config)).toBe(
      `{"client":{"id":"${id}","name":"A"},"email":{"smtp":{"host":"h1"}},"list":[{"a":1}],"__proto__":{"p":1},"_meta":{"source":"cache","origin":"database"}}`,
    );
    expect(Object.getPrototypeOf(second.config)).toBe(Object.prototype);
    expect((await s.tenants.getStored(id)).config).toMatchObject({ client: { name: 'A' }, email: { smtp: { host: '${H:-h1}' } }, _meta: { source: 'cache', origin: 'database' } });

    // A changed entry is parsed again: the shared parse is keyed by the stored text, not the key.
    await redis.set(key, stored('B'), 'EX', 300);
    expect((await s.tenants.get(id)).config.client).toEqual({ id, name: 'B' });
    s.close();
  });

  it('YAML answers share the parsed file, yet every caller gets its own copy (plain and yaml_only tenants)', async () => {
    for (const extra of ['', 'yaml_only: true\n']) {
      const id = uniq('copies');
      ws.writeTenant(id, tenantYaml(id, 'A', `${extra}email:\n  smtp: { host: "\${H:-h1}" }\nlist:\n  - { a: 1 }\n`));
      const s = wireServices({ registry, tenantsDir: ws.tenantsDir, env: {} });
      const first = await s.tenants.get(id, { noCache: true });
      expect(first.source).toBe('yaml');
      (first.config.client as Record<string, unknown>).name = 'changed';
      (first.config.list as Array<Record<string, unknown>>)[0].a = 2;
      (first.config.email as { smtp: Record<string, unknown> }).smtp.host = 'changed';
      const fromStore = await s.tenants.getStored(id, { noCache: true });
      (fromStore.config.list as Array<Record<string, unknown>>)[0].a = 3;
      (fromStore.config._meta as Record<string, unknown>).source = 'changed too';

      const second = await s.tenants.get(id, { noCache: true });
      expect(second.config).toMatchObject({ client: { name: 'A' }, list: [{ a: 1 }], email: { smtp: { host: 'h1' } }, _meta: { source: 'yaml' } });
      expect((await s.tenants.getStored(id, { noCache: true })).config).toMatchObject({ list: [{ a: 1 }], email: { smtp: { host: '${H:-h1}' } }, _meta: { source: 'yaml' } });
      s.close();
    }
  });

  it('prefers the registry over YAML once migrated, and a save invalidates only that tenant', async () => {
    const id = uniq('db');
    const neighbour = `${id}2`;
    ws.writeTenant(id, tenantYaml(id, 'From YAML'));
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir });
    await redis.set(`tenant_config:${neighbour}`, '{"client":{"id":"n"}}');
    await redis.set(`dashboard_kpis:${id}:days:30`, '{}');
    await s.tenants.save(id, { client: { id, name: 'From Registry' }, email: { smtp: { password: 'literal-pw', user: '${U}' } } });
    expect(JSON.stringify(await store.getTenant(id))).not.toContain('literal-pw');
    expect(s.warnings.join()).toMatch(/secret email\.smtp\.password of .* not saved/);
    expect(await redis.exists(`dashboard_kpis:${id}:days:30`)).toBe(0);
    expect(await redis.exists(`tenant_config:${neighbour}`)).toBe(1);
    const got = await s.tenants.get(id);
    expect(got).toMatchObject({ source: 'database', config: { client: { name: 'From Registry' }, _meta: { source: 'database', status: 'active' } } });
    expect((await s.tenants.get(id, { noCache: true })).source).toBe('database');
    s.close();
  });

  it('save refuses a config a tenant file could not hold, and writes nothing (the name "undefined", "[object Object]", a string as {"0":…} were stored)', async () => {
    const id = uniq('sv');
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    const bad: Array<[unknown, RegExp]> = [
      [{ timezone: 'UTC' }, /missing "client" block/],
      [{ client: { timezone: 'UTC' } }, /client\.name must be a non-empty string/],
      [{ client: { name: { first: 'x' } } }, /client\.name must be a non-empty string/],
      [{ client: { id: 'other', name: 'X' } }, /does not match the id given/],
      [{ client: { name: 'X', short_name: ['a'] } }, /client\.short_name fills a registry column/],
      [{ client: { name: 'X' }, note: 'a\u0000b' }, /NUL character/],
      ['str', /must be a mapping/],
    ];
    for (const [config, why] of bad) {
      await expect(s.tenants.save(id, config as Record<string, unknown>)).rejects.toMatchObject({ exitCode: 2, reason: 'bad-config', message: expect.stringMatching(why) });
    }
    expect(await store.getTenant(id)).toBeUndefined();
    // client.id may be left out (it is the id given): saved.
    await s.tenants.save(id, { client: { name: 'No Id Given' } });
    expect(await store.getTenant(id)).toMatchObject({ id, name: 'No Id Given' });
    s.close();
  });

  it('a registry row not migrated (config_source yaml) falls through to YAML', async () => {
    const id = uniq('nm');
    ws.writeTenant(id, tenantYaml(id, 'Yaml Wins'));
    await store.db.query(`INSERT INTO tenants (id, name, config_source) VALUES ($1, 'Stale Row', 'yaml')`, [id]);
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    expect((await s.tenants.get(id)).config.client).toMatchObject({ name: 'Yaml Wins' });
    // Listed by the same name (it showed the row's, with source yaml).
    expect((await s.tenants.list()).find((t) => t.id === id)).toMatchObject({ name: 'Yaml Wins', source: 'yaml' });
    s.close();
  });

  it('listing agrees with get-config: a suspended migrated tenant is not shown as a YAML one; a row not migrated with no file is not listed', async () => {
    const [suspended, orphanRow, plain] = [uniq('susp'), uniq('rowonly'), uniq('plain')];
    ws.writeTenant(suspended, tenantYaml(suspended, 'Suspended'));
    ws.writeTenant(plain, tenantYaml(plain, 'Plain'));
    await store.db.query(`INSERT INTO tenants (id, name, config_source, status) VALUES ($1, 'Suspended', 'database', 'suspended'), ($2, 'Row Only', 'yaml', 'active')`, [suspended, orphanRow]);
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    const listed = new Map((await s.tenants.list()).map((t) => [t.id, t]));
    // Before: suspended listed as "yaml -", and the row-only one listed although get-config finds nothing.
    expect(listed.has(suspended)).toBe(false);
    expect(listed.has(orphanRow)).toBe(false);
    expect(listed.get(plain)).toMatchObject({ source: 'yaml' });
    await expect(s.tenants.get(orphanRow)).rejects.toBeInstanceOf(NotFoundError);
    s.close();
  });

  it('yaml_only tenants skip cache and registry entirely', async () => {
    const id = uniq('yo');
    ws.writeTenant(id, tenantYaml(id, 'Dev', 'yaml_only: true\n'));
    await redis.set(`tenant_config:${id}`, JSON.stringify({ client: { id, name: 'Stale cached' } }));
    let registryOpened = false;
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: async () => ((registryOpened = true), store), tenantsDir: ws.tenantsDir });
    const got = await s.tenants.get(id);
    expect(got).toMatchObject({ source: 'yaml', config: { client: { name: 'Dev' }, _meta: { yaml_only: true } } });
    expect(registryOpened).toBe(false);
    expect(JSON.parse((await redis.get(`tenant_config:${id}`))!).client.name).toBe('Stale cached');
    s.close();
  });

  it('registry-only ids are never read from YAML; unknown tenants are NotFoundError', async () => {
    ws.writeTenant('tn_ghost', tenantYaml('tn_ghost'));
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    await expect(s.tenants.get('tn_ghost')).rejects.toThrow(/registry-only/);
    await expect(s.tenants.get(uniq('none'))).rejects.toBeInstanceOf(NotFoundError);
    s.close();
  });

  it('a cache hit never opens the registry', async () => {
    const id = uniq('hit');
    await redis.set(`tenant_config:${id}`, JSON.stringify({ client: { id, name: 'Cached' }, _meta: { source: 'database' } }), 'EX', 60);
    let opened = false;
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: async () => ((opened = true), store), tenantsDir: ws.tenantsDir });
    expect((await s.tenants.get(id)).source).toBe('cache');
    expect(opened).toBe(false);
    s.close();
  });

  it('Redis down: answers from the registry/YAML with one warning', async () => {
    const id = uniq('down');
    ws.writeTenant(id, tenantYaml(id));
    const s = wireServices({ redisUrl: `redis://127.0.0.1:${await freePort()}`, registry, tenantsDir: ws.tenantsDir, timeoutMs: 300 });
    expect((await s.tenants.get(id)).source).toBe('yaml');
    expect((await s.tenants.get(id)).source).toBe('yaml');
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/ECONNREFUSED.*continuing without the cache/);
    s.close();
  });

  it('registry down: falls back to YAML with a warning; a malformed file only matters when YAML is needed', async () => {
    const id = uniq('regdown');
    ws.writeTenant(id, tenantYaml(id, 'Fallback'));
    const down = async () => {
      throw new BackendUnavailableError('registry', 'registry (postgres x) is unreachable: ECONNREFUSED');
    };
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry: down, tenantsDir: ws.tenantsDir });
    expect((await s.tenants.get(id)).source).toBe('yaml');
    expect(s.warnings.join('\n')).toMatch(/unreachable.*falling back to YAML/);
    // Not cached (the registry may hold a newer config), said once however often it is read (it was said on every read).
    for (let i = 0; i < 3; i++) expect(await s.tenants.get(id)).toMatchObject({ source: 'yaml', warmed: false });
    expect(s.warnings.filter((w) => /not warmed: the registry is unreachable/.test(w))).toHaveLength(1);
    const bad = uniq('bad');
    ws.writeTenant(bad, 'client: [oops\n');
    await expect(s.tenants.get(bad)).rejects.toBeInstanceOf(TenantFileError);
    // Not in YAML with the registry down: unknown, not "not found".
    await expect(s.tenants.get('tn_maybe')).rejects.toBeInstanceOf(BackendUnavailableError);
    s.close();
  });

  it('a registry-only tenant while the registry refuses for rights: the error keeps the refusal\'s reason and cause (it said "unreachable", reason failed, no cause)', async () => {
    const refusal = new BackendUnavailableError('registry', 'reading tenants failed: permission denied for table tenants', { reason: 'no-permission' });
    const s = wireServices({ registry: async () => Promise.reject(refusal), tenantsDir: ws.tenantsDir });
    const err = (await s.tenants.get('tn_refused').catch((e: unknown) => e)) as BackendUnavailableError;
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err).toMatchObject({ backend: 'registry', reason: 'no-permission', cause: refusal });
    // A registry-only id is never looked for in YAML: not said as if it had been (an operator review).
    expect(err.message).toBe('tenant tn_refused is registry-only (ids starting "tn_") and the registry could not be read');
    s.close();
  });
});
