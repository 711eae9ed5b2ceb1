import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tenantctl } from '../../src/tenantctl.js';
import { REGISTRY_RETRY_MS } from '../../src/registry/registry-retry.js';
import { freshPostgresDatabase, runCli, sharedRedisUrl, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { openPostgresStore } from '../../src/registry/postgres-store.js';

/**
 * The library inside a long-lived program: one registry outage must not leave
 * it on the YAML fallback for the rest of its life. Within REGISTRY_RETRY_MS a
 * failure answers for itself (no second timeout in one command); after it,
 * the registry is tried again. PostgreSQL through a TCP proxy this test owns.
 */
describe.runIf(TEST_DATABASE_URL)('a registry outage in a long-lived program', () => {
  let ws: Workspace;
  let proxy: TcpProxy;
  let drop: () => Promise<void>;
  let url: string;
  let dbUrl: string;
  const id = uniq('outage');

  beforeAll(async () => {
    const db = await freshPostgresDatabase();
    drop = db.drop;
    ws = workspace({ [id]: tenantYaml(id, 'In the registry') }, { registry: false });
    expect((await runCli(['--registry', db.url, 'migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    // YAML says something else now: an answer from YAML is told apart from one from the registry.
    ws.writeTenant(id, tenantYaml(id, 'Only in YAML'));
    dbUrl = db.url;
    const target = new URL(db.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    url = proxy.via(db.url);
  });
  afterAll(async () => {
    await proxy?.close();
    ws?.cleanup();
    await drop?.();
  });

  it('falls back while the registry is away, and answers from it again once it is back', async () => {
    await proxy.cut();
    const t = new Tenantctl({ flags: { registry: url, registryTimeout: 500, redisUrl: sharedRedisUrl(), tenantsDir: ws.tenantsDir }, cwd: ws.dir, env: {}, warn: () => undefined });
    try {
      const during = await t.tenants.get(id);
      expect([during.source, (during.config.client as { name: string }).name]).toEqual(['yaml', 'Only in YAML']);
      await proxy.restore();
      await new Promise((r) => setTimeout(r, REGISTRY_RETRY_MS + 300));
      const after = await t.tenants.get(id);
      expect([after.source, (after.config.client as { name: string }).name]).toEqual(['database', 'In the registry']);
    } finally {
      await t.close();
    }
  }, 30_000);

  it('a write open that failed in the outage is forgotten too, and does not keep reads failing', async () => {
    await proxy.cut();
    const t = new Tenantctl({ flags: { registry: url, registryTimeout: 500, redisUrl: sharedRedisUrl(), tenantsDir: ws.tenantsDir }, cwd: ws.dir, env: {}, warn: () => undefined });
    try {
      await expect(t.writableRegistry()).rejects.toThrow(/unreachable|timed out|ECONNREFUSED/);
      await proxy.restore();
      await new Promise((r) => setTimeout(r, REGISTRY_RETRY_MS + 300));
      await expect(t.writableRegistry()).resolves.toBeDefined();
      expect((await t.tenants.get(id, { noCache: true })).source).toBe('database');
    } finally {
      await t.close();
    }
  }, 30_000);

  it('PostgreSQL silent mid-session: one read waits for its statement once (it then opened a new session and waited again), and says timeout', async () => {
    const t = new Tenantctl({ flags: { registry: url, registryTimeout: 1000, tenantsDir: ws.tenantsDir }, cwd: ws.dir, env: {}, warn: () => undefined });
    try {
      expect((await t.tenants.get(id, { noCache: true })).source).toBe('database');
      proxy.stall();
      const started = Date.now();
      expect((await t.tenants.get(id, { noCache: true })).source).toBe('yaml');
      // The statement's read timeout (1000 + 1000 ms) and the fallback; before, a new session's connect timeout
      // (1000 ms) came on top of it.
      expect(Date.now() - started).toBeLessThan(2600);
    } finally {
      // Un-stalled: every connection dropped, listening again.
      await proxy.cut();
      await proxy.restore();
      await t.close();
    }
    // A statement nobody answered is a timeout (it was reason 'failed': "failed while reading ...: Query read timeout").
    const store = await openPostgresStore(url, 500, {});
    try {
      proxy.stall();
      await expect(store.getTenant(id)).rejects.toMatchObject({ reason: 'timeout', message: expect.stringMatching(/no answer within 1500 ms \(the registry timeout and a second\)$/) });
    } finally {
      await proxy.cut();
      await proxy.restore();
      await store.close().catch(() => undefined);
    }
    // Silent while waiting for the migration lock: not "another migration holds its lock" (reason in-use).
    const locking = await openPostgresStore(url, 500, {});
    try {
      proxy.stall();
      await expect(locking.lockMigrations()).rejects.toMatchObject({ reason: 'timeout', message: expect.stringMatching(/no answer within 1500 ms/) });
    } finally {
      await proxy.cut();
      await proxy.restore();
      await locking.close().catch(() => undefined);
    }
  }, 30_000);

  it('a read that timed out (the table locked by another session) puts the next reads on YAML at once for the retry window, with one warning', async () => {
    const warnings: string[] = [];
    const t = new Tenantctl({ flags: { registry: dbUrl, registryTimeout: 500, tenantsDir: ws.tenantsDir }, cwd: ws.dir, env: {}, warn: (m) => warnings.push(m) });
    const { default: pg } = await import('pg');
    const locker = new pg.Client({ connectionString: dbUrl });
    await locker.connect();
    try {
      expect((await t.tenants.get(id, { noCache: true })).source).toBe('database');
      await locker.query('BEGIN; LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE');
      expect((await t.tenants.get(id, { noCache: true })).source).toBe('yaml');
      // Within the window: no second wait on the lock (it waited the whole timeout again).
      const started = Date.now();
      expect((await t.tenants.get(id, { noCache: true })).source).toBe('yaml');
      expect(Date.now() - started).toBeLessThan(250);
      expect(warnings.filter((w) => /registry/.test(w))).toHaveLength(1);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await t.close();
    }
  }, 30_000);
});
