import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';
import { startCli, waitUntil, type CliProcess } from '../helpers/processes.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const TIERS = 'features: [has_payroll, has_ai]\ntiers:\n  pilot_core: { features: [], max_devices: 2 }\n  pilot_pro: { features: [has_payroll, has_ai], max_devices: null }\n';

/**
 * §3 under faults: a running `watch` loses Redis (the redis-server this test
 * started, killed and restarted on the same port with its append-only file,
 * so cached entries survive as they would in production) and PostgreSQL (a
 * TCP proxy this test owns, cut and restored; the shared server itself is
 * never touched). Registry changes made meanwhile, some bumping updated_at and
 * some not, must all be gone from the cache once both are back.
 */
describe.runIf(TEST_DATABASE_URL)('watch across a PostgreSQL and a Redis outage', () => {
  let ws: Workspace;
  let url: string;
  let drop: () => Promise<void>;
  let db: Client;
  let proxy: TcpProxy;
  let redis: RedisServer;
  let redisPort: number;
  let redisDir: string;
  let keys: import('ioredis').Redis;
  let watch: CliProcess;
  let metricsUrl: string;
  // A: changed while Redis is down; B: subscription changed and C renamed while both are down;
  // D: suspended by a service that does not bump updated_at; E: never changed.
  const [A, B, C, D, E] = ['A', 'B', 'C', 'D', 'E'].map((x) => uniq(`f${x.toLowerCase()}`));
  const tiers: Record<string, string> = { [A]: 'pilot_pro', [B]: 'pilot_pro', [C]: 'pilot_core', [D]: 'pilot_core', [E]: 'pilot_pro' };
  const keysOf = (id: string) => [`tenant_config:${id}`, `permissions:${id}`, `dashboard_kpis:${id}:days:30`];
  const persistentRedis = () => startRedis(['--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'always'], { port: redisPort });
  const metric = async (sample: string) => {
    const text = await (await fetch(metricsUrl)).text();
    return Number(new RegExp(`^${sample.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
  };

  beforeAll(async () => {
    const fresh = await freshPostgresDatabase();
    url = fresh.url;
    drop = fresh.drop;
    ws = workspace(Object.fromEntries([['tiers', TIERS], ...Object.entries(tiers).map(([id, tier]) => [id, tenantYaml(id, `Tenant ${id}`, `subscription: { tier: ${tier} }\n`)])]), { registry: false });
    const direct = (args: string[]) => runCli(['--registry', url, ...args], { cwd: ws.dir, env: { REDIS_URL: `redis://127.0.0.1:${redisPort}` } });
    redisPort = await freePort();
    redisDir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-watch-aof-'));
    redis = await persistentRedis();
    const { Redis } = await import('ioredis');
    keys = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    keys.on('error', () => undefined);
    expect((await direct(['migrate-yaml'])).code).toBe(0);
    expect((await direct(['watch', '--install'])).code).toBe(0);
    const { default: pg } = await import('pg');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    // Nothing changed recently: the start-up reconciliation has nothing to do.
    await db.query("UPDATE tenants SET updated_at = now() - interval '1 hour'");
    await db.query("UPDATE business_subscriptions SET updated_at = now() - interval '1 hour'");

    const target = new URL(url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    watch = startCli(
      ['--registry', proxy.via(url), 'watch', '--heartbeat', '200', '--reconnect-max', '300', '--overlap', '2', '--metrics', '127.0.0.1:0'],
      { cwd: ws.dir, env: { REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '500', REGISTRY_TIMEOUT_MS: '2000' }, timeoutMs: 58_000 },
    );
    expect(await watch.waitForStderr(/watch: watching .*metrics on http:\S+/, 20_000), watch.stderr()).toBe(true);
    metricsUrl = /metrics on (http:\S+)/.exec(watch.stderr())![1];

    // The cache as production has it: configs as the services build them, permission records, endpoint data.
    for (const id of Object.keys(tiers)) {
      const w = await direct(['get-config', id, '--warm']);
      expect(w.code, w.stderr).toBe(0);
      await direct(['check-permission', id, 'has_ai']);
      await keys.set(`dashboard_kpis:${id}:days:30`, '{"kpi":1}');
    }
    expect(await keys.dbsize()).toBe(15);
  });

  afterAll(async () => {
    if (watch && !watch.exited()) await watch.kill();
    keys?.disconnect();
    await proxy?.close();
    await redis?.stop();
    await db?.end();
    ws?.cleanup();
    if (redisDir) rmSync(redisDir, { recursive: true, force: true });
    await drop?.();
  });

  it('no change made during the outages stays stale once both are back; untouched tenants keep their keys', async () => {
    // 1. Redis dies; a change arrives (PostgreSQL is up) and is kept.
    await redis.stop();
    expect(await watch.waitForStderr(/watch: Redis connection lost/, 10_000)).toBe(true);
    await db.query("UPDATE tenants SET name = 'A while Redis was down', updated_at = now() WHERE id = $1", [A]);
    expect(await waitUntil(async () => (await metric('tenantctl_watch_pending_changes')) === 1, 10_000)).toBe(true);
    // A second change of the same tenant is folded into the pending one (one invalidation owed, not two).
    await db.query("UPDATE tenants SET name = 'A again while Redis was down', updated_at = now() WHERE id = $1", [A]);
    await new Promise((r) => setTimeout(r, 500));
    expect(await metric('tenantctl_watch_pending_changes')).toBe(1);
    expect(await metric('tenantctl_watch_up{backend="redis"}')).toBe(0);

    // 2. PostgreSQL goes too: changes now reach nobody.
    await proxy.cut();
    expect(await watch.waitForStderr(/watch: PostgreSQL connection lost/, 10_000)).toBe(true);
    await db.query("UPDATE business_subscriptions SET tier = 'pilot_core', updated_at = now() WHERE business_id = $1", [B]);
    await db.query("UPDATE tenants SET name = 'C while both were down', updated_at = now() WHERE id = $1", [C]);
    await db.query("UPDATE tenants SET status = 'suspended' WHERE id = $1", [D]);
    await db.query(`UPDATE permission_tiers SET features = '["has_ai"]' WHERE name = 'pilot_core'`);

    // 3. Redis is back with its data (the append-only file): what was kept is applied, though PostgreSQL is still away.
    redis = await persistentRedis();
    expect(await watch.waitForStderr(/watch: Redis reconnected/, 15_000)).toBe(true);
    expect(await waitUntil(async () => (await keys.exists(...keysOf(A))) === 0, 10_000)).toBe(true);
    // Nobody could tell watch about these yet: still there, still stale.
    expect(await keys.exists(`permissions:${B}`, ...keysOf(C), ...keysOf(D))).toBe(7);

    // 4. PostgreSQL is back: the rows changed since the high-water mark, then the verify pass.
    await proxy.restore();
    expect(await watch.waitForStderr(/watch: PostgreSQL reconnected/, 15_000), watch.stderr()).toBe(true);
    const gone = [`permissions:${B}`, ...keysOf(C), ...keysOf(D)];
    expect(await waitUntil(async () => (await keys.exists(...gone)) === 0, 20_000), watch.stderr()).toBe(true);
    // Over-deleting is not the fix: what did not change is still cached.
    expect(await keys.exists(`tenant_config:${B}`, `dashboard_kpis:${B}:days:30`, ...keysOf(E))).toBe(5);

    const verify = await runCli(['--registry', url, 'verify', '--json'], { cwd: ws.dir, env: { REDIS_URL: redis.url } });
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout).summary).toMatchObject({ stale: 0, orphan: 0 });

    // Each attempt said so on stderr, and the counters saw one reconnect each.
    expect(watch.stderr()).toMatch(/watch: Redis unreachable \(attempt 1\): .*; retrying in \d+ ms/);
    expect(watch.stderr()).toMatch(/watch: PostgreSQL unreachable \(attempt 1\): .*; retrying in \d+ ms/);
    expect(await metric('tenantctl_watch_reconnects_total{backend="redis"}')).toBe(1);
    expect(await metric('tenantctl_watch_reconnects_total{backend="postgres"}')).toBe(1);
    expect(await metric('tenantctl_watch_pending_changes')).toBe(0);

    // And it goes on working after the outage.
    await keys.set(`tenant_config:${E}`, '{}');
    await db.query("UPDATE tenants SET name = 'E after' WHERE id = $1", [E]);
    expect(await waitUntil(async () => (await keys.exists(...keysOf(E))) === 0, 10_000)).toBe(true);
  });

  it('PostgreSQL back long before Redis: what changed while PostgreSQL was away is still reconciled when Redis returns', async () => {
    // Only endpoint data is cached for E: no verify pass can see it, only the rows changed since the gap began.
    await keys.set(`dashboard_kpis:${E}:days:30`, '{"kpi":2}');
    await redis.stop();
    expect(await watch.waitForStderr(/watch: Redis connection lost(.|\n)*watch: Redis connection lost/, 10_000)).toBe(true);
    await proxy.cut();
    expect(await watch.waitForStderr(/watch: PostgreSQL connection lost(.|\n)*watch: PostgreSQL connection lost/, 10_000)).toBe(true);
    await db.query("UPDATE tenants SET name = 'E while PostgreSQL was away', updated_at = now() WHERE id = $1", [E]);
    await proxy.restore();
    expect(await watch.waitForStderr(/watch: PostgreSQL reconnected(.|\n)*watch: PostgreSQL reconnected/, 15_000)).toBe(true);
    // Heartbeats go on for longer than the overlap (2 s) before Redis is back.
    await new Promise((r) => setTimeout(r, 3000));
    redis = await persistentRedis();
    expect(await waitUntil(async () => (await keys.exists(`dashboard_kpis:${E}:days:30`)) === 0, 15_000), watch.stderr()).toBe(true);
    // It survived the restart and was deleted by the reconciliation (not lost with Redis): watch says so.
    expect(await waitUntil(() => new RegExp(`reconcile tenants changed ${E}: deleted 1 key \\(dashboard_kpis 1\\)`).test(watch.stdout()), 5000), watch.stdout()).toBe(true);

    // The verify pass that follows the reconnect is done too: a SIGTERM in the middle of it would (rightly) report what it left unapplied.
    const afterLastRedisReconnect = () => watch.stderr().split('watch: Redis reconnected').at(-1)!;
    expect(await waitUntil(() => afterLastRedisReconnect().includes('watch: reconcile: verified'), 10_000), watch.stderr()).toBe(true);
    expect(await metric('tenantctl_watch_pending_changes')).toBe(0);

    watch.child.kill('SIGTERM');
    const end = await watch.done;
    expect(end.code).toBe(143);
    expect(end.stderr).toMatch(/watch stopped by SIGTERM: .*4 reconnect\(s\)$/m);
  });
});

/**
 * The reconcile after a reconnect looks back --overlap before the high-water mark: updated_at = now() is the
 * time a transaction *began*, so one that began before a disconnect and committed after it (its NOTIFY sent
 * to nobody) carries a time older than the last moment watch knew it had seen everything.
 */
describe.runIf(TEST_DATABASE_URL)('watch: a transaction that began before a PostgreSQL outage and committed during it', () => {
  let ws: Workspace;
  let url: string;
  let drop: () => Promise<void>;
  let db: Client;
  let tx: Client;
  let proxy: TcpProxy;
  let redis: RedisServer;
  let keys: import('ioredis').Redis;
  let watch: CliProcess;
  // S: changed by the straddling transaction; U: never changed.
  const [S, U] = [uniq('straddle'), uniq('untouched')];
  const kpis = (id: string) => `dashboard_kpis:${id}:days:30`;

  beforeAll(async () => {
    const fresh = await freshPostgresDatabase();
    url = fresh.url;
    drop = fresh.drop;
    ws = workspace({ [S]: tenantYaml(S), [U]: tenantYaml(U) }, { registry: false });
    redis = await startRedis();
    const direct = (args: string[]) => runCli(['--registry', url, ...args], { cwd: ws.dir, env: { REDIS_URL: redis.url } });
    expect((await direct(['migrate-yaml'])).code).toBe(0);
    expect((await direct(['watch', '--install'])).code).toBe(0);
    const { default: pg } = await import('pg');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    tx = new pg.Client({ connectionString: url });
    await tx.connect();
    // Nothing changed recently: the start-up reconciliation has nothing to do.
    await db.query("UPDATE tenants SET updated_at = now() - interval '1 hour'");
    const { Redis } = await import('ioredis');
    keys = new Redis(redis.url);
    const target = new URL(url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    // An overlap far wider than the transaction's head start (~1 s), so the test does not hang on timing.
    watch = startCli(['--registry', proxy.via(url), 'watch', '--heartbeat', '100', '--reconnect-max', '300', '--overlap', '30'], {
      cwd: ws.dir,
      env: { REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '500', REGISTRY_TIMEOUT_MS: '2000' },
      timeoutMs: 40_000,
    });
    expect(await watch.waitForStderr(/watch: watching/, 20_000), watch.stderr()).toBe(true);
  });

  afterAll(async () => {
    if (watch && !watch.exited()) await watch.kill();
    keys?.disconnect();
    await proxy?.close();
    await redis?.stop();
    await tx?.end().catch(() => undefined);
    await db?.end();
    ws?.cleanup();
    await drop?.();
  });

  it('the reconcile after the reconnect still invalidates it: its updated_at is older than the high-water mark, but within the overlap (it looked from the mark itself and the row kept its stale keys)', async () => {
    // Only endpoint data is cached: no verify pass can see it, only the rows reconciled by updated_at.
    await keys.set(kpis(S), '{"kpi":1}');
    await keys.set(kpis(U), '{"kpi":1}');
    // The transaction begins (updated_at = now() is this moment) while watch is connected...
    await tx.query('BEGIN');
    await tx.query("UPDATE tenants SET name = 'S, committed during the outage', updated_at = now() WHERE id = $1", [S]);
    // ... and heartbeats (every 100 ms) carry the high-water mark past its start.
    await new Promise((r) => setTimeout(r, 1500));
    await proxy.cut();
    expect(await watch.waitForStderr(/watch: PostgreSQL connection lost/, 10_000), watch.stderr()).toBe(true);
    // It commits while nobody listens: its notification is lost.
    await tx.query('COMMIT');
    const { rows } = await db.query('SELECT extract(epoch FROM now() - updated_at) AS age FROM tenants WHERE id = $1', [S]);
    expect(Number(rows[0].age)).toBeGreaterThan(1);
    expect(await keys.exists(kpis(S))).toBe(1);

    await proxy.restore();
    expect(await watch.waitForStderr(/watch: PostgreSQL reconnected/, 15_000), watch.stderr()).toBe(true);
    expect(await waitUntil(() => /watch: reconcile: verified/.test(watch.stderr().split('watch: PostgreSQL reconnected').at(-1)!), 15_000), watch.stderr()).toBe(true);
    expect(await keys.exists(kpis(S)), `${kpis(S)} kept after the reconcile:\n${watch.stderr()}`).toBe(0);
    expect(watch.stdout()).toMatch(new RegExp(`reconcile tenants changed ${S}: deleted 1 key \\(dashboard_kpis 1\\)`));
    // The overlap is not "everything": the tenant that did not change keeps its key.
    expect(await keys.exists(kpis(U))).toBe(1);
  });
});
