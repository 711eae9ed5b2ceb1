import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { freePort } from '../helpers/ports.js';
import { startCli, sleep, type CliEnd } from '../helpers/processes.js';
import { useOwnRedis } from '../helpers/redis-server.js';
import { TEST_DATABASE_URL, freshPostgresDatabase, runCli, uniq, workspace, type Workspace } from '../helpers/setup.js';

/**
 * Issue 7 §1: after any sequence of interrupted `migrate-yaml` runs followed
 * by one successful run with Redis up, no cached `tenant_config:` or
 * `permissions:` value differs from what the registry holds (a missing key is
 * fine). Played with real processes: each round changes every tenant's YAML
 * (a new version, so every run has the whole workload), starts the built CLI
 * and SIGKILLs it at a different point: at random delays spread over a run's
 * measured duration, right after a progress line (some batches committed),
 * and while its invalidation hangs on a paused (SIGSTOPped) Redis, which is
 * the window between commit and invalidation. One round runs with Redis down
 * throughout (completes, exit 4). Between rounds the "services" play their
 * read path: a key that is missing is filled from the registry (SET NX), a
 * key that is present is used as it is, so a stale entry stays stale until
 * someone deletes it.
 */

const TIERS = 'features: [has_ai, has_payroll]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: 5 }\n';
const tierOf = (version: number) => (version % 2 ? 'core' : 'pro');
const nameOf = (id: string, version: number) => `Tenant ${id} v${version}`;
const tenantFile = (id: string, version: number) =>
  `client:\n  id: ${id}\n  name: ${nameOf(id, version)}\ntimezone: UTC\nnotes: { revision: ${version} }\nsubscription: { tier: ${tierOf(version)}, overrides: { max_devices: ${version} } }\n`;

/** What the registry holds, seen as the services would cache it. */
interface RegistryState {
  names: Map<string, string>;
  /** id -> the value a service would cache under tenant_config:<id> (built from the row). */
  configs: Map<string, string>;
  /** id -> the value a service would cache under permissions:<id> (built from the subscription). */
  permissions: Map<string, string>;
  outbox: Array<{ kind: string; target: string }>;
  /** Rows in `tenants`, and distinct ids among them (equal unless the primary key index is corrupt). */
  rows: { total: number; distinct: number };
}

type Query = (sql: string) => Promise<Array<Record<string, unknown>>>;

async function readState(query: Query): Promise<RegistryState> {
  const state: RegistryState = { names: new Map(), configs: new Map(), permissions: new Map(), outbox: [], rows: { total: 0, distinct: 0 } };
  for (const r of await query('SELECT id, name, tenant_config FROM tenants')) {
    const id = String(r.id);
    state.names.set(id, String(r.name));
    state.configs.set(id, JSON.stringify({ ...(r.tenant_config as object), client: { id, name: r.name } }));
  }
  const devices = new Map((await query("SELECT business_id, value FROM business_feature_overrides WHERE feature = 'max_devices'")).map((r) => [String(r.business_id), Number(r.value)]));
  for (const r of await query('SELECT business_id, tier, status FROM business_subscriptions')) {
    const id = String(r.business_id);
    state.permissions.set(id, JSON.stringify({ business_id: id, tier: r.tier, status: r.status, device_limit: devices.get(id) ?? null }));
  }
  state.outbox = (await query('SELECT kind, target FROM tenantctl_outbox')).map((r) => ({ kind: String(r.kind), target: String(r.target) }));
  const [counts] = await query('SELECT count(*)::int AS total, count(DISTINCT id)::int AS distinct FROM tenants');
  state.rows = { total: Number(counts?.total ?? 0), distinct: Number(counts?.distinct ?? 0) };
  return state;
}

/** The services' read path on a miss: cache what the registry holds, only where nothing is cached (a hit is used as it is). */
async function servicesFillMisses(redis: Redis, state: RegistryState): Promise<void> {
  const p = redis.pipeline();
  for (const [id, value] of state.configs) p.set(`tenant_config:${id}`, value, 'EX', 3600, 'NX');
  for (const [id, value] of state.permissions) p.set(`permissions:${id}`, value, 'EX', 3600, 'NX');
  await p.exec();
}

/** Cached entries that differ from what the registry holds now (absent keys are fine). */
async function staleEntries(redis: Redis, state: RegistryState, ids: string[]): Promise<string[]> {
  const keys = ids.flatMap((id) => [`tenant_config:${id}`, `permissions:${id}`]);
  const values = await redis.mget(...keys);
  const stale: string[] = [];
  ids.forEach((id, i) => {
    const [config, perms] = [values[2 * i], values[2 * i + 1]];
    if (config !== null && config !== state.configs.get(id)) stale.push(`tenant_config:${id}`);
    if (perms !== null && perms !== state.permissions.get(id)) stale.push(`permissions:${id}`);
  });
  return stale;
}

type RoundRedis = 'up' | 'paused' | 'down';
interface Round {
  redis: RoundRedis;
  /** Kill this many ms after the start, or this long after stderr matches; none = let it finish. */
  kill?: { afterMs: number } | { afterStderr: RegExp; thenMs: number };
}

interface RoundResult {
  round: number;
  redis: RoundRedis;
  plan: string;
  ended: string;
  /** Rows (tenant + subscription) at this round's version. */
  written: number;
  /** Invalidations owed for rows this run wrote. */
  owedForThisRun: number;
  outbox: number;
  landed: 'before its first commit' | 'after a commit, invalidations owed' | 'after its invalidations' | 'ran to the end';
}

interface Scenario {
  ws: Workspace;
  ids: string[];
  /** Global flags naming the registry. */
  registryArgs: string[];
  readState(): Promise<RegistryState>;
}

/**
 * Plays the rounds, then one successful run with Redis up, and checks the
 * property; returns what each kill hit (for the report and the coverage check).
 */
async function playRounds(s: Scenario, redisHandle: ReturnType<typeof useOwnRedis>, rounds: (runMs: number) => Round[]): Promise<RoundResult[]> {
  const redis = redisHandle.client;
  const server = redisHandle.server;
  // A generous Redis timeout while Redis is up: these runs must not fail on a CPU-starved machine; the fault rounds set their own.
  const up = ['--redis-url', server.url, '--redis-timeout', '5000'];
  const writeVersion = (v: number) => s.ids.forEach((id) => s.ws.writeTenant(id, tenantFile(id, v)));

  // v1: the timing run (the whole workload, from nothing), then the services cache v1.
  writeVersion(1);
  s.ws.writeTenant('tiers', TIERS);
  const first = await runCli(['migrate-yaml', '--json', ...s.registryArgs, ...up], { cwd: s.ws.dir, timeoutMs: 60_000 });
  expect(first.code, first.stderr).toBe(0);
  const runMs = first.ms;
  console.log(`${s.registryArgs.length ? 'postgres' : 'pglite'}: ${s.ids.length} tenants, timing run ${runMs} ms`);
  let state = await s.readState();
  expect(state.names.size).toBe(s.ids.length);
  await servicesFillMisses(redis, state);
  expect(await redis.exists(`tenant_config:${s.ids[0]}`, `permissions:${s.ids[0]}`)).toBe(2);

  const results: RoundResult[] = [];
  const plan = rounds(runMs);
  for (const [index, round] of plan.entries()) {
    const version = index + 2;
    writeVersion(version);
    const redisArgs =
      round.redis === 'down' ? ['--redis-url', `redis://127.0.0.1:${await freePort()}`, '--redis-timeout', '500']
      : round.redis === 'paused' ? ['--redis-url', server.url, '--redis-timeout', '4000']
      : up;
    if (round.redis === 'paused') server.pause();
    let end: CliEnd;
    try {
      const child = startCli(['migrate-yaml', '--json', ...s.registryArgs, ...redisArgs], { cwd: s.ws.dir });
      const kill = round.kill;
      if (kill && 'afterMs' in kill) await Promise.race([sleep(kill.afterMs), child.done]);
      else if (kill) {
        await child.waitForStderr(kill.afterStderr, 30_000);
        await Promise.race([sleep(kill.thenMs), child.done]);
      }
      end = kill ? await child.kill() : await child.done;
    } finally {
      if (round.redis === 'paused') server.resume();
    }
    state = await s.readState();
    const atVersion = (id: string) => state.names.get(id) === nameOf(id, version);
    const written = s.ids.filter(atVersion).length + [...state.permissions.values()].filter((p) => JSON.parse(p).device_limit === version).length;
    const owedForThisRun = state.outbox.filter((o) => o.kind !== 'permissions-all' && atVersion(o.target)).length;
    results.push({
      round: version,
      redis: round.redis,
      plan: !round.kill ? 'no kill' : 'afterMs' in round.kill ? `kill at ${Math.round(round.kill.afterMs)} ms` : `kill ${Math.round(round.kill.thenMs)} ms after ${round.kill.afterStderr.source}`,
      ended: end.signal ? `${end.signal} at ${end.ms} ms` : `exit ${end.code} at ${end.ms} ms`,
      written,
      owedForThisRun,
      outbox: state.outbox.length,
      landed: end.signal === null ? 'ran to the end' : written === 0 ? 'before its first commit' : owedForThisRun > 0 ? 'after a commit, invalidations owed' : 'after its invalidations',
    });
    const r = results.at(-1)!;
    console.log(`  v${r.round} redis ${r.redis.padEnd(6)} ${r.plan.padEnd(44)} ${r.ended.padEnd(20)} written ${String(r.written).padStart(4)} owed-for-this-run ${String(r.owedForThisRun).padStart(4)} outbox ${String(r.outbox).padStart(4)}: ${r.landed}`);
    if (end.signal === null) expect(end.code, end.stderr).toBe(round.redis === 'up' ? 0 : 4);
    else expect(end.signal).toBe('SIGKILL');
    // A tenant's row and its subscription are written in one transaction: a kill never leaves one without the other.
    const deviceLimit = (id: string) => JSON.parse(state.permissions.get(id) ?? 'null')?.device_limit;
    expect(s.ids.filter((id) => atVersion(id) !== (deviceLimit(id) === version))).toEqual([]);
    await servicesFillMisses(redis, state);
  }

  const staleBefore = await staleEntries(redis, state, s.ids);
  const final = await runCli(['migrate-yaml', '--json', ...s.registryArgs, ...up], { cwd: s.ws.dir, timeoutMs: 60_000 });
  expect(final.code, final.stderr).toBe(0);
  const report = JSON.parse(final.stdout) as { counts: Record<string, number>; earlierInvalidations?: { done: number; pending: number } };
  state = await s.readState();

  console.log(
    `  kills: ${results.filter((r) => r.ended.startsWith('SIGKILL')).length}, landing after a commit with invalidations owed: ${results.filter((r) => r.landed === 'after a commit, invalidations owed').length}` +
      `\n  before the final run: ${staleBefore.length} stale cached entries; final run: ${JSON.stringify(report.counts)}, earlier invalidations ${JSON.stringify(report.earlierInvalidations)}`,
  );

  // The last interrupted round wrote everything but could not invalidate: the
  // final run finds every row unchanged and must still do what is owed.
  expect(staleBefore.length).toBeGreaterThan(0);
  expect(report.counts).toMatchObject({ create: 0, update: 0, conflict: 0, error: 0 });
  expect(report.earlierInvalidations?.done).toBeGreaterThan(0);
  expect(final.stderr).toMatch(/did \d+ cache invalidation\(s\) an earlier run still owed/);

  // The property.
  expect(await staleEntries(redis, state, s.ids)).toEqual([]);
  expect(state.outbox).toEqual([]);
  expect(state.rows).toEqual({ total: s.ids.length, distinct: s.ids.length });
  const lastVersion = plan.length + 1;
  expect(s.ids.filter((id) => state.names.get(id) !== nameOf(id, lastVersion))).toEqual([]);
  expect([...state.permissions.values()].filter((p) => JSON.parse(p).device_limit !== lastVersion)).toEqual([]);
  // The registry's answer, through the tool itself, for a sample.
  for (const id of [s.ids[0], s.ids[s.ids.length - 1]]) {
    const got = await runCli(['get-config', id, '--no-cache', '--json', ...s.registryArgs], { cwd: s.ws.dir });
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ source: 'database', config: { client: { name: nameOf(id, lastVersion) }, subscription: { tier: tierOf(lastVersion), overrides: { max_devices: lastVersion } } } });
  }
  return results;
}

/** A delay spread over [from, to] of the run's duration, with jitter. */
const spread = (runMs: number, from: number, to: number) => runMs * (from + Math.random() * (to - from));

describe.runIf(TEST_DATABASE_URL)('migrate-yaml killed at many points (PostgreSQL): no stale cache after the next successful run', () => {
  const own = useOwnRedis();
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let ws: Workspace;
  let client: import('pg').Client;
  beforeAll(async () => {
    db = await freshPostgresDatabase();
    ws = workspace({}, { registry: false });
    const { default: pg } = await import('pg');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
    ws?.cleanup();
  });

  it('1,200 tenants with subscriptions (3 batches of 500 files), 7 interrupted runs, then one run with Redis up', async () => {
    const prefix = uniq('m');
    const ids = Array.from({ length: 1200 }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);
    const query: Query = async (sql) => {
      try {
        return (await client.query(sql)).rows;
      } catch (err) {
        // Before the first run there is no schema yet.
        if ((err as { code?: string }).code === '42P01') return [];
        throw err;
      }
    };
    const results = await playRounds({ ws, ids, registryArgs: ['--registry', db.url], readState: () => readState(query) }, own, (runMs) => [
      // First, with nothing owed yet (so Redis is not touched before the writes): every batch
      // committed, then the invalidation hangs on the paused Redis (4 s timeout) and the run is killed inside that window.
      { redis: 'paused', kill: { afterStderr: /migrating 1200\/1200/, thenMs: Math.random() * 1500 } },
      { redis: 'up', kill: { afterMs: spread(runMs, 0.3, 0.6) } },
      { redis: 'up', kill: { afterStderr: /migrating 1000\/1200/, thenMs: 0 } },
      // Paused from the start: the invalidations owed by the round before hang first.
      { redis: 'paused', kill: { afterMs: spread(runMs, 0.6, 1.2) } },
      { redis: 'up', kill: { afterMs: spread(runMs, 0.6, 1.2) } },
      { redis: 'up', kill: { afterStderr: /migrating 1000\/1200/, thenMs: Math.random() * 300 } },
      // Down throughout: the registry is written, the invalidations stay owed, exit 4.
      { redis: 'down' },
    ]);
    expect(results[0]).toMatchObject({ landed: 'after a commit, invalidations owed', written: ids.length * 2 });
    expect(results.filter((r) => r.landed === 'after a commit, invalidations owed').length).toBeGreaterThanOrEqual(1);
    expect(results.at(-1)).toMatchObject({ landed: 'ran to the end', written: ids.length * 2, owedForThisRun: ids.length * 2 });
  }, 150_000);
});

describe('migrate-yaml killed at several points (embedded PGlite): the registry survives, no stale cache after the next successful run', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace();
  });
  afterAll(() => ws?.cleanup());

  it('300 tenants with subscriptions (one batch), 4 interrupted runs, then one run with Redis up', async () => {
    const prefix = uniq('p');
    const ids = Array.from({ length: 300 }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
    // Opened only between runs (one process at a time); a lock left by a killed run belongs to a dead pid and is taken over.
    const state = async () => {
      const store = await openPgliteStore(ws.registryDir, { timeoutMs: 10_000 });
      try {
        return await readState(async (sql) => (await store.db.query(sql)).rows);
      } finally {
        await store.close();
      }
    };
    const results = await playRounds({ ws, ids, registryArgs: [], readState: state }, own, (runMs) => [
      { redis: 'paused', kill: { afterStderr: /migrating 300\/300/, thenMs: Math.random() * 1500 } },
      { redis: 'up', kill: { afterMs: spread(runMs, 0.4, 1.0) } },
      { redis: 'up', kill: { afterMs: spread(runMs, 0.6, 1.3) } },
      { redis: 'down' },
    ]);
    expect(results[0]).toMatchObject({ landed: 'after a commit, invalidations owed', written: ids.length * 2 });
  }, 150_000);
});

describe('migrate-yaml rerun while Redis is still down', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace();
  });
  afterAll(() => ws?.cleanup());

  it('does not report success while invalidations an earlier run owes are still not done (exit 4); with Redis up it does them (exit 0)', async () => {
    const id = uniq('owed');
    ws.writeTenant(id, tenantFile(id, 1));
    ws.writeTenant('tiers', TIERS);
    const down = ['--redis-url', `redis://127.0.0.1:${await freePort()}`, '--redis-timeout', '300'];
    expect((await runCli(['migrate-yaml', '--redis-url', own.server.url], { cwd: ws.dir })).code).toBe(0);
    await own.client.set(`tenant_config:${id}`, '{"stale":"v1"}');
    ws.writeTenant(id, tenantFile(id, 2));

    const first = await runCli(['migrate-yaml', '--json', ...down], { cwd: ws.dir });
    expect(first.code, first.stderr).toBe(4);
    // Nothing left to write, but the cache is still stale: the earlier run's invalidations are owed.
    const rerun = await runCli(['migrate-yaml', '--json', ...down], { cwd: ws.dir });
    expect(JSON.parse(rerun.stdout)).toMatchObject({ counts: { unchanged: 3 }, pendingInvalidations: 2 });
    expect.soft(rerun.code, `exit ${rerun.code} with ${JSON.parse(rerun.stdout).pendingInvalidations} invalidations owed and Redis down; stderr: ${rerun.stderr}`).toBe(4);
    expect(await own.client.get(`tenant_config:${id}`)).toBe('{"stale":"v1"}');

    const up = await runCli(['migrate-yaml', '--json', '--redis-url', own.server.url], { cwd: ws.dir });
    expect(up.code, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout).earlierInvalidations).toEqual({ done: 2, pending: 0 });
    expect(await own.client.exists(`tenant_config:${id}`)).toBe(0);
  }, 60_000);
});
