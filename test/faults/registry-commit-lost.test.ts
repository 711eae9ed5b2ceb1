import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The connection to PostgreSQL lost right after a COMMIT was sent: the server commits, the client never
 * hears. The command cannot know whether it wrote; it must not say "nothing was written", must print its
 * report, and must invalidate the cache of what it may have written (before: exit 3, no report, the
 * cache left stale until the next write command).
 */
describe.runIf(TEST_DATABASE_URL)('a COMMIT whose acknowledgement is lost (PostgreSQL through a proxy)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let proxy: TcpProxy;
  let redis: RedisServer;
  let client: Redis;
  let ws: Workspace;
  const ids = ['lost1', 'lost2', 'lost3'];
  const TIERS = 'features: [has_ai]\ntiers:\n  pilot_core: { features: [has_ai], max_devices: 3 }\n  pilot_pro: { features: [has_ai], max_devices: null }\n';

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    const u = new URL(db.url);
    proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    redis = await startRedis();
    client = new Redis(redis.url);
    ws = workspace({ tiers: TIERS, ...Object.fromEntries(ids.map((id) => [id, tenantYaml(id, `Name ${id}`, 'subscription: { tier: pilot_core }\n')])) }, { registry: false });
    // The schema and the catalogue first, directly: the proxy's trap is for the tenants' batch.
    const empty = workspace({ tiers: TIERS }, { registry: false });
    try {
      expect((await runCli(['--registry', db.url, 'migrate-yaml'], { cwd: empty.dir })).code).toBe(0);
    } finally {
      empty.cleanup();
    }
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    await proxy?.close();
    ws?.cleanup();
    await db?.drop();
  });

  it('migrate-yaml: exit 3 "no write was confirmed" with its report; the rows are in, and their cache is invalidated anyway', async () => {
    for (const id of ids) await client.set(`tenant_config:${id}`, '{"stale":true}');
    proxy.cutAfter(/INSERT INTO tenants/, /COMMIT/);
    const r = await runCli(['--registry', proxy.via(db.url), '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^error: no write was confirmed: .*a rerun finishes$/m);
    const report = JSON.parse(r.stdout);
    expect(report.items.filter((i: { kind: string }) => i.kind === 'tenant').map((i: { reason: string }) => i.reason)).toEqual(
      ids.map(() => expect.stringMatching(/^not confirmed written: .*\(its cache invalidated in case it was\)$/)),
    );
    // Marked by a field of its own, not only by its reason's words.
    expect(report.items.filter((i: { kind: string }) => i.kind === 'tenant')).toEqual(ids.map(() => expect.objectContaining({ written: false, unconfirmed: true })));
    // The server did commit: the rows are there, and no stale entry is left for them.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      expect((await c.query('SELECT count(*)::int AS n FROM tenants WHERE id = ANY($1)', [ids])).rows[0].n).toBe(ids.length);
    } finally {
      await c.end();
    }
    expect(await client.exists(...ids.map((id) => `tenant_config:${id}`))).toBe(0);
    // A rerun finds them written.
    const again = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(again.code, again.stderr).toBe(0);
  });

  it('set-subscription: exit 3 saying the change may have landed; permissions:<business> invalidated anyway', async () => {
    await client.set(`permissions:${ids[0]}`, '{"stale":true}');
    proxy.cutAfter(/business_subscriptions/, /COMMIT/);
    const r = await runCli(['--registry', proxy.via(db.url), '--redis-url', redis.url, 'set-subscription', ids[0], '--tier', 'pilot_pro'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`may or may not have been written \\(permissions:${ids[0]} invalidated in case\\)`));
    expect(await client.exists(`permissions:${ids[0]}`)).toBe(0);
  });
});
