import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentHash } from '../../src/registry/content-hash.js';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { normaliseRow } from '../../src/registry/registry-store.js';
import { deadPid, startCli, waitUntil, type CliEnd } from '../helpers/processes.js';
import { useOwnRedis } from '../helpers/redis-server.js';
import { TEST_DATABASE_URL, freshPostgresDatabase, runCli, uniq, workspace, type Workspace } from '../helpers/setup.js';

/**
 * Issue 7 §4: concurrent writers never lose an update. Real processes of the
 * built CLI started at once, against PostgreSQL (advisory migration lock,
 * schema applied under a lock, compare-and-set per row) and against the
 * embedded PGlite registry (one process at a time, through a lock file);
 * rows and versions counted afterwards.
 */

const TIERS = 'features: [has_ai, has_payroll]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: 5 }\n';
const nameOf = (id: string, version: number) => `Tenant ${id} v${version}`;
/** A tenant file; the subscription's device override carries its own version. */
const tenantFile = (id: string, version: number, subscriptionVersion = version) =>
  `client:\n  id: ${id}\n  name: ${nameOf(id, version)}\nsubscription: { tier: core, overrides: { max_devices: ${subscriptionVersion} } }\n`;

interface Report {
  counts: Record<string, number>;
  items: Array<{ kind: string; id: string; action: string; reason?: string; written?: boolean }>;
}
const reportOf = (r: { stdout: string }) => JSON.parse(r.stdout) as Report;

/** An exit no concurrent run may ever have: an internal error, a crash, or a schema race. */
function expectNoCrash(r: CliEnd) {
  expect(r.signal).toBeNull();
  expect(r.code, r.stderr).not.toBe(70);
  expect(r.stderr).not.toMatch(/Aborted\(\)|duplicate key|internal error|^\s+at /m);
}

const tenantIds = (n: number) => {
  const prefix = uniq('c');
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
};

describe.runIf(TEST_DATABASE_URL)('concurrent migrate-yaml on PostgreSQL', () => {
  const dbs: Array<Awaited<ReturnType<typeof freshPostgresDatabase>>> = [];
  const clients: Client[] = [];
  const spaces: Workspace[] = [];
  const own = useOwnRedis();
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    for (const db of dbs) await db.drop();
    for (const ws of spaces) ws.cleanup();
  });
  /** A fresh database (no schema yet), a client on it, and a workspace with these tenants. */
  async function setUp(ids: string[], version = 1) {
    const db = await freshPostgresDatabase();
    dbs.push(db);
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    clients.push(client);
    const ws = workspace({}, { registry: false });
    spaces.push(ws);
    ws.writeTenant('tiers', TIERS);
    for (const id of ids) ws.writeTenant(id, tenantFile(id, version));
    return { db, client, ws, args: ['--registry', db.url, '--registry-timeout', '20000'] };
  }

  it('4 runs started at once on a fresh database serialise: all exit 0, no schema race, one creates and the others find everything unchanged', async () => {
    const ids = tenantIds(200);
    // The issue saw the schema race in 3 of 6 tries: three fresh databases.
    for (let attempt = 0; attempt < 3; attempt++) {
      const { client, ws, args } = await setUp(ids);
      const runs = await Promise.all(Array.from({ length: 4 }, () => startCli(['migrate-yaml', '--json', ...args, '--redis-url', own.server.url], { cwd: ws.dir }).done));
      for (const r of runs) {
        expectNoCrash(r);
        expect(r.code, r.stderr).toBe(0);
      }
      const reports = runs.map(reportOf);
      const creators = reports.filter((r) => r.counts.create > 0);
      expect(creators).toHaveLength(1);
      expect(creators[0].counts).toMatchObject({ create: 401, update: 0, conflict: 0, error: 0 });
      for (const r of reports.filter((x) => x !== creators[0])) expect(r.counts).toMatchObject({ create: 0, update: 0, unchanged: 401, conflict: 0, error: 0 });

      const rows = (await client.query('SELECT * FROM tenants ORDER BY id')).rows;
      expect(rows.map((r) => r.id)).toEqual(ids);
      expect(rows.filter((r) => r.config_source !== 'database')).toEqual([]);
      expect(rows.filter((r) => r.tenantctl_hash !== contentHash(normaliseRow(r))).map((r) => r.id)).toEqual([]);
      expect((await client.query('SELECT count(*)::int AS n FROM business_subscriptions')).rows[0].n).toBe(200);
      expect((await client.query("SELECT value FROM tenantctl_meta WHERE key = 'schema_version'")).rows).toHaveLength(1);
      expect((await client.query('SELECT count(*)::int AS n FROM tenantctl_outbox')).rows[0].n).toBe(0);
    }
  }, 90_000);

  it('a registry edit made by a service between two runs is a conflict and is not overwritten (without --force)', async () => {
    const ids = tenantIds(3);
    const { client, ws, args } = await setUp(ids);
    expect((await runCli(['migrate-yaml', ...args], { cwd: ws.dir })).code).toBe(0);
    await client.query(`UPDATE tenants SET name = 'Edited by a service', tenant_config = tenant_config || '{"edited": true}', updated_at = now() WHERE id = $1`, [ids[0]]);
    for (const id of ids) ws.writeTenant(id, tenantFile(id, 2));

    const r = await runCli(['migrate-yaml', '--json', ...args], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(4);
    const items = reportOf(r).items;
    expect(items.find((i) => i.kind === 'tenant' && i.id === ids[0])).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/edited in the registry.*--force/) });
    expect(items.find((i) => i.kind === 'tenant' && i.id === ids[1])).toMatchObject({ action: 'update', written: true });
    const row = (await client.query('SELECT name, tenant_config FROM tenants WHERE id = $1', [ids[0]])).rows[0];
    expect(row).toMatchObject({ name: 'Edited by a service', tenant_config: expect.objectContaining({ edited: true }) });
    expect((await client.query('SELECT name FROM tenants WHERE id = $1', [ids[1]])).rows[0].name).toBe(nameOf(ids[1], 2));
  }, 30_000);

  it('an edit committed by a service while a run is applying (after its plan, before its write) is a conflict, not overwritten', async () => {
    const ids = tenantIds(50);
    const { db, client, ws, args } = await setUp(ids);
    expect((await runCli(['migrate-yaml', ...args], { cwd: ws.dir })).code).toBe(0);
    for (const id of ids) ws.writeTenant(id, tenantFile(id, 2));
    const [rowVictim, subVictim] = [ids[10], ids[20]];
    // A tenant new in YAML, which a service creates itself meanwhile: the run's insert must not overwrite it either.
    const newcomer = uniq('new');
    ws.writeTenant(newcomer, `client:\n  id: ${newcomer}\n  name: From YAML\n`);

    // The service's transaction holds both rows. The run's plan reads them
    // with a plain SELECT (not blocked); its write locks them (SELECT ... FOR
    // UPDATE) and so waits here: that wait proves the plan has been read.
    const { default: pg } = await import('pg');
    const service = new pg.Client({ connectionString: db.url });
    await service.connect();
    clients.push(service);
    await service.query('BEGIN');
    await service.query('SELECT * FROM tenants WHERE id = $1 FOR UPDATE', [rowVictim]);
    await service.query('SELECT * FROM business_subscriptions WHERE business_id = $1 FOR UPDATE', [subVictim]);
    await service.query(`INSERT INTO tenants (id, name, config_source) VALUES ($1, 'Inserted by a service', 'database')`, [newcomer]);
    const servicePid = (await service.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;

    const run = startCli(['migrate-yaml', '--json', ...args], { cwd: ws.dir });
    const blocked = await waitUntil(async () => (await client.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [servicePid])).rows.length > 0, 15_000);
    expect(blocked, 'the run never waited on the service\'s row lock').toBe(true);
    // In this test's database only (other files' tenantctl processes wait on locks of their own).
    const waiting = (await client.query("SELECT query FROM pg_stat_activity WHERE application_name = 'tenantctl' AND datname = current_database() AND wait_event_type = 'Lock'")).rows;
    expect(waiting.map((w) => w.query).join('\n')).toMatch(/FOR UPDATE/);
    await service.query(`UPDATE tenants SET name = 'Service edit', updated_at = now() WHERE id = $1`, [rowVictim]);
    await service.query(`UPDATE business_subscriptions SET status = 'suspended', updated_at = now() WHERE business_id = $1`, [subVictim]);
    await service.query('COMMIT');

    const r = await run.done;
    expectNoCrash(r);
    expect(r.code, r.stderr).toBe(4);
    const items = reportOf(r).items;
    const reason = expect.stringMatching(/changed in the registry while this run was planning/);
    expect(items.find((i) => i.kind === 'tenant' && i.id === rowVictim)).toMatchObject({ action: 'conflict', written: false, reason });
    expect(items.find((i) => i.kind === 'subscription' && i.id === subVictim)).toMatchObject({ action: 'conflict', written: false, reason });
    expect(items.find((i) => i.kind === 'tenant' && i.id === newcomer)).toMatchObject({ action: 'conflict', written: false, reason });
    expect(items.filter((i) => i.action === 'conflict')).toHaveLength(3);
    expect((await client.query('SELECT name FROM tenants WHERE id = $1', [rowVictim])).rows[0].name).toBe('Service edit');
    expect((await client.query('SELECT name FROM tenants WHERE id = $1', [newcomer])).rows[0].name).toBe('Inserted by a service');
    expect((await client.query('SELECT status FROM business_subscriptions WHERE business_id = $1', [subVictim])).rows[0].status).toBe('suspended');
    // Everything else was written.
    const names = new Map((await client.query('SELECT id, name FROM tenants')).rows.map((x) => [x.id, x.name]));
    expect(ids.filter((id) => id !== rowVictim && names.get(id) !== nameOf(id, 2))).toEqual([]);
    expect(names.size).toBe(ids.length + 1);
    // The next run sees the service's edits as edits (a conflict until --force), never silently overwrites them.
    const again = await runCli(['migrate-yaml', '--json', ...args], { cwd: ws.dir });
    expect(again.code).toBe(4);
    expect(reportOf(again).items.filter((i) => i.action === 'conflict').map((i) => `${i.kind}:${i.id}`).sort()).toEqual([`subscription:${subVictim}`, `tenant:${newcomer}`, `tenant:${rowVictim}`].sort());
  }, 60_000);

  it("a tenant's row and its subscription are written in one transaction: a run killed between two batches leaves no tenant half-written", async () => {
    // 600 tenants: 1,200 items, batches of 500. The first tenant's row changes
    // but not its subscription, so the items after it pair up across the
    // batch boundary unless batches keep a tenant's items together.
    const ids = tenantIds(600);
    const { db, client, ws, args } = await setUp(ids);
    expect((await runCli(['migrate-yaml', ...args], { cwd: ws.dir })).code).toBe(0);
    ws.writeTenant(ids[0], tenantFile(ids[0], 2, 1));
    for (const id of ids.slice(1)) ws.writeTenant(id, tenantFile(id, 2));

    // A service holds the last tenant's row: the run commits its first batch, then waits on that lock in its second.
    const { default: pg } = await import('pg');
    const service = new pg.Client({ connectionString: db.url });
    await service.connect();
    clients.push(service);
    await service.query('BEGIN');
    await service.query('SELECT * FROM tenants WHERE id = $1 FOR UPDATE', [ids.at(-1)]);
    const servicePid = (await service.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const run = startCli(['migrate-yaml', '--json', ...args], { cwd: ws.dir });
    const blocked = await waitUntil(async () => (await client.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [servicePid])).rows.length > 0, 15_000);
    expect(blocked, 'the run never reached the locked row').toBe(true);
    const killed = await run.kill();
    expect(killed.signal).toBe('SIGKILL');
    await service.query('ROLLBACK');

    const rowAtV2 = new Set((await client.query('SELECT id, name FROM tenants')).rows.filter((r) => r.name === nameOf(r.id, 2)).map((r) => r.id));
    const subAtV2 = new Set((await client.query("SELECT business_id FROM business_feature_overrides WHERE feature = 'max_devices' AND value = '2'::jsonb")).rows.map((r) => r.business_id));
    // The kill landed between batches: some, not all, written.
    expect(rowAtV2.size).toBeGreaterThan(1);
    expect(rowAtV2.size).toBeLessThan(ids.length);
    const halfWritten = ids.slice(1).filter((id) => rowAtV2.has(id) !== subAtV2.has(id));
    expect(halfWritten, 'tenants whose row and subscription were written in different transactions').toEqual([]);
  }, 60_000);
});

describe('concurrent processes on the embedded PGlite registry', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace();
    ws.writeTenant('tiers', TIERS);
  });
  afterAll(() => ws?.cleanup());
  const lockFile = () => `${ws.registryDir}.lock`;

  it('4 runs at once, each migrating its own tenants: no crash, all exit 0, every tenant written exactly once', async () => {
    const ids = tenantIds(120);
    for (const id of ids) ws.writeTenant(id, tenantFile(id, 1));
    const shares = [0, 1, 2, 3].map((k) => ids.filter((_, i) => i % 4 === k));
    const runs = await Promise.all(shares.map((share) => startCli(['migrate-yaml', ...share, '--json', '--registry-timeout', '30000'], { cwd: ws.dir }).done));
    runs.forEach((r, k) => {
      expectNoCrash(r);
      expect(r.code, r.stderr).toBe(0);
      const tenants = reportOf(r).items.filter((i) => i.kind === 'tenant');
      expect(tenants.map((i) => i.id).sort()).toEqual(shares[k]);
      expect(tenants.every((i) => i.action === 'create' && i.written)).toBe(true);
    });
    // The catalogue is created by exactly one of them.
    expect(runs.map((r) => reportOf(r).items.find((i) => i.kind === 'catalogue')!.action).sort()).toEqual(['create', 'unchanged', 'unchanged', 'unchanged']);
    expect(existsSync(lockFile())).toBe(false);

    const listed = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
    expect(listed.code, listed.stderr).toBe(0);
    const rows = (JSON.parse(listed.stdout) as Array<{ id: string; source: string }>).filter((r) => ids.includes(r.id));
    expect(rows.map((r) => r.id).sort()).toEqual(ids);
    expect(rows.every((r) => r.source === 'database')).toBe(true);
    const store = await openPgliteStore(ws.registryDir, { timeoutMs: 10_000 });
    try {
      const { rows: counts } = await store.db.query('SELECT count(*)::int AS tenants, count(DISTINCT id)::int AS distinct_ids, (SELECT count(*)::int FROM business_subscriptions) AS subs FROM tenants WHERE id = ANY($1::text[])', [ids]);
      expect(counts[0]).toEqual({ tenants: 120, distinct_ids: 120, subs: 120 });
      const hashes = (await store.db.query('SELECT * FROM tenants WHERE id = ANY($1::text[])', [ids])).rows;
      expect(hashes.filter((r) => r.tenantctl_hash !== contentHash(normaliseRow(r)))).toEqual([]);
    } finally {
      await store.close();
    }
  }, 90_000);

  it('a process that cannot get the registry within its timeout exits 3 "in use by pid N"; a lock left by a dead pid is taken over', async () => {
    const id = uniq('lk');
    ws.writeTenant(id, tenantFile(id, 1));

    // Held by a live process (this one): refused, nothing written.
    writeFileSync(lockFile(), JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }));
    const refused = await runCli(['migrate-yaml', id, '--registry-timeout', '300'], { cwd: ws.dir });
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`in use by pid ${process.pid}\\b`));
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.ms).toBeLessThan(300 + 10_000);
    expect(JSON.parse(readFileSync(lockFile(), 'utf8')).pid).toBe(process.pid);

    // Left by a dead process: taken over, the command succeeds, and lets go.
    const dead = await deadPid();
    writeFileSync(lockFile(), JSON.stringify({ pid: dead, host: os.hostname(), since: new Date().toISOString() }));
    const taken = await runCli(['migrate-yaml', id, '--json', '--registry-timeout', '300'], { cwd: ws.dir });
    expect(taken.code, taken.stderr).toBe(0);
    expect(reportOf(taken).items.find((i) => i.kind === 'tenant')).toMatchObject({ id, action: 'create', written: true });
    expect(existsSync(lockFile())).toBe(false);
  }, 30_000);

  it('a lock left by a dead pid, and 3 processes starting at once: taken over, one at a time, all exit 0 and every write is there', async () => {
    const ids = tenantIds(3);
    for (const id of ids) ws.writeTenant(id, tenantFile(id, 1));
    writeFileSync(lockFile(), JSON.stringify({ pid: await deadPid(), host: os.hostname(), since: new Date().toISOString() }));
    const runs = await Promise.all(ids.map((id) => startCli(['migrate-yaml', id, '--json', '--registry-timeout', '30000'], { cwd: ws.dir }).done));
    runs.forEach((r, k) => {
      expectNoCrash(r);
      expect(r.code, r.stderr).toBe(0);
      expect(reportOf(r).items.find((i) => i.kind === 'tenant')).toMatchObject({ id: ids[k], action: 'create', written: true });
    });
    expect(existsSync(lockFile())).toBe(false);
    expect(existsSync(`${lockFile()}.breaking`)).toBe(false);
    const store = await openPgliteStore(ws.registryDir, { timeoutMs: 10_000 });
    try {
      expect((await store.db.query('SELECT id FROM tenants WHERE id = ANY($1::text[]) ORDER BY id', [ids])).rows.map((r) => r.id)).toEqual(ids);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('while a real run holds the registry, a second process with a short timeout exits 3 naming its pid', async () => {
    const id = uniq('hold');
    ws.writeTenant(id, tenantFile(id, 1));
    // The holder's invalidation waits on a Redis that accepts and never answers: it holds the registry for its Redis timeout.
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    try {
      const holeUrl = `redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
      const holder = startCli(['migrate-yaml', id, '--redis-url', holeUrl, '--redis-timeout', '6000'], { cwd: ws.dir });
      const held = await waitUntil(() => existsSync(lockFile()) && readFileSync(lockFile(), 'utf8').includes(`"pid":${holder.pid}`), 15_000);
      expect(held).toBe(true);
      const second = await runCli(['migrate-yaml', id, '--registry-timeout', '300'], { cwd: ws.dir });
      expect(holder.exited(), 'the holder finished before the second process tried').toBe(false);
      expect(second.code, second.stderr).toBe(3);
      expect(second.stderr).toMatch(new RegExp(`in use by pid ${holder.pid}\\b`));
      const first = await holder.done;
      expectNoCrash(first);
      expect(first.code, first.stderr).toBe(4); // written; the invalidation is owed (Redis never answered)
    } finally {
      sockets.forEach((s) => s.destroy());
      hole.close();
    }
    // And once it is done, the next process gets the registry at once.
    const after = await runCli(['migrate-yaml', id, '--json', '--registry-timeout', '300'], { cwd: ws.dir });
    expect(after.code, after.stderr).toBe(0);
    expect(reportOf(after).items.find((i) => i.kind === 'tenant')!.action).toBe('unchanged');
  }, 60_000);
});
