import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';
import { startCli, waitUntil, type CliProcess } from '../helpers/processes.js';

const TIERS = 'features: [has_payroll, has_ai]\ntiers:\n  pilot_core: { features: [], max_devices: 2 }\n  pilot_pro: { features: [has_payroll, has_ai], max_devices: null }\n';
const WATCHED = ['tenants', 'business_subscriptions', 'business_feature_overrides', 'permission_features', 'permission_tiers'];

describe('watch refuses registries it cannot LISTEN to', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace({ x: tenantYaml('x') });
  });
  afterAll(() => ws.cleanup());

  it('the embedded registry and an https Supabase: exit 2 saying why, before touching anything', async () => {
    for (const args of [['watch'], ['watch', '--install'], ['watch', '--registry', 'memory:']]) {
      const r = await runCli(args, { cwd: ws.dir, env: { REDIS_URL: 'redis://127.0.0.1:1' } });
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/^error: watch needs a PostgreSQL registry \(LISTEN\/NOTIFY\) and is not supported here: .*(embedded|in-memory)/);
      expect(r.stderr).toMatch(/; use --registry postgres:\/\/… or DATABASE_URL$/m);
    }
    const supabase = await runCli(['watch', '--registry', 'https://abc.supabase.co'], { cwd: ws.dir, env: { SUPABASE_SERVICE_ROLE_KEY: 'k' } });
    expect(supabase.code).toBe(2);
    expect(supabase.stderr).toMatch(/not supported here: a Supabase registry given as https:\/\/ .*Postgres connection string/);
    // A bad --metrics is bad input (exit 2) even with no Redis configured (before: exit 3, "no Redis").
    const metrics = await runCli(['watch', '--registry', 'postgres://u@127.0.0.1:1/db', '--metrics', 'nohostport'], { cwd: ws.dir });
    expect(metrics.code, metrics.stderr).toBe(2);
    expect(metrics.stderr).toMatch(/metrics address "nohostport": expected host:port .* \(--metrics\)$/m);
  });

  it('a heartbeat, reconnect wait or overlap past what timers and timestamps hold: exit 2 (a heartbeat of 3e9 ms PINGed Redis every 1 ms after a TimeoutOverflowWarning; a huge overlap looped on "timestamp out of range")', async () => {
    for (const [flag, value, max] of [['--heartbeat', '3000000000', '86400000'], ['--reconnect-max', '2147483648', '86400000'], ['--overlap', '9007199254740991', '31536000']]) {
      const r = await runCli(['watch', '--registry', 'postgres://u@127.0.0.1:1/db', flag, value], { cwd: ws.dir, env: { REDIS_URL: 'redis://127.0.0.1:1' } });
      expect(r.code, `${flag}: ${r.stderr}`).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toContain(`${flag} must be at most ${max}`);
    }
    // An overlap of 0 is accepted, as the library's overlapMs: 0 is (it was "must be a whole number >= 1").
    const zero = await runCli(['watch', '--registry', 'postgres://u@127.0.0.1:1/db', '--overlap', '0', '--print-sql'], { cwd: ws.dir });
    expect(zero.stderr).not.toMatch(/--overlap/);
  });

  it('--print-sql prints the install script without connecting anywhere', async () => {
    const r = await runCli(['watch', '--print-sql'], { cwd: ws.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/CREATE OR REPLACE FUNCTION tenantctl_notify_change\(\)/);
    expect(r.stdout).toMatch(/pg_notify\('tenantctl_changes'/);
    const un = await runCli(['watch', '--print-sql', '--uninstall'], { cwd: ws.dir });
    expect(un.stdout).toMatch(/^DROP FUNCTION IF EXISTS tenantctl_notify_change\(\);$/m);
  });
});

describe.runIf(TEST_DATABASE_URL)('watch on PostgreSQL', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  let url: string;
  let drop: () => Promise<void>;
  let db: Client;
  const [a, b, c] = [uniq('wa'), uniq('wb'), uniq('wc')];
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(['--registry', url, ...args], { cwd: ws.dir, env: { REDIS_URL: own.server.url, ...env } });
  const triggers = async () =>
    (await db.query(`SELECT c.relname || '.' || t.tgname AS name, t.oid::text AS oid FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE 'tenantctl_watch%' ORDER BY 1`)).rows as Array<{ name: string; oid: string }>;
  const columns = async () =>
    (await db.query('SELECT table_name, column_name, data_type, column_default FROM information_schema.columns WHERE table_name = ANY($1::text[]) ORDER BY 1, 2', [WATCHED])).rows;

  beforeAll(async () => {
    const fresh = await freshPostgresDatabase();
    url = fresh.url;
    drop = fresh.drop;
    ws = workspace({
      tiers: TIERS,
      [a]: tenantYaml(a, 'Alpha', 'subscription: { tier: pilot_pro }\n'),
      [b]: tenantYaml(b, 'Beta', 'subscription: { tier: pilot_pro }\n'),
      [c]: tenantYaml(c, 'Gamma', 'subscription: { tier: pilot_core }\n'),
    }, { registry: false });
    const { default: pg } = await import('pg');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    const m = await cli(['migrate-yaml']);
    expect(m.code, m.stderr).toBe(0);
  });
  afterAll(async () => {
    await db?.end();
    ws?.cleanup();
    await drop?.();
  });

  it('install: refused to run before it; idempotent; changes no column; one transaction; uninstall removes exactly it', async () => {
    const notInstalled = await cli(['watch']);
    expect(notInstalled.code).toBe(2);
    expect(notInstalled.stderr).toMatch(/change triggers are not installed .*run `tenantctl watch --install` first/);

    const cols = await columns();
    const first = await cli(['watch', '--install', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: 'installed', triggers: expect.arrayContaining(['tenants.tenantctl_watch', 'permission_tiers.tenantctl_watch_truncate']) });
    const installed = await triggers();
    expect(installed.map((t) => t.name)).toEqual(WATCHED.flatMap((t) => [`${t}.tenantctl_watch`, `${t}.tenantctl_watch_truncate`]).sort());
    expect(await columns()).toEqual(cols);

    // Again: nothing is recreated (the same trigger objects).
    const second = await cli(['watch', '--install']);
    expect(second.code).toBe(0);
    // Piped, the rows come alone under their header; the status line goes to stderr (it came before the header).
    expect(second.stderr).toMatch(/^watch triggers already installed \(nothing changed\)/);
    expect(second.stdout).toMatch(/^table\ttrigger\n/);
    expect(await triggers()).toEqual(installed);

    // A service's UPDATE: the row is exactly as it wrote it (the triggers change nothing), and a notification goes out at commit.
    const { default: pg } = await import('pg');
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.payload ?? ''));
    await listener.query('LISTEN tenantctl_changes');
    const before = (await db.query('SELECT * FROM tenants WHERE id = $1', [c])).rows[0];
    await db.query("UPDATE tenants SET plan = 'gold' WHERE id = $1", [c]);
    const after = (await db.query('SELECT * FROM tenants WHERE id = $1', [c])).rows[0];
    expect(after).toEqual({ ...before, plan: 'gold' });
    expect(await waitUntil(() => heard.length > 0, 10_000)).toBe(true);
    expect(JSON.parse(heard[0])).toMatchObject({ t: 'tenants', op: 'UPDATE', id: c });

    // One transaction: a table locked by someone else makes the install fail whole (nothing half-installed).
    expect((await cli(['watch', '--uninstall'])).stderr).toMatch(/^watch triggers removed/);
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE permission_tiers IN ACCESS EXCLUSIVE MODE');
    const blocked = await cli(['watch', '--install', '--registry-timeout', '500']);
    await locker.query('ROLLBACK');
    await locker.end();
    expect(blocked.code).toBe(3);
    expect(await triggers()).toEqual([]);
    expect((await db.query("SELECT to_regprocedure('tenantctl_notify_change()') AS f")).rows[0].f).toBeNull();

    // Uninstalled: no more notifications.
    heard.length = 0;
    await db.query("UPDATE tenants SET plan = 'silver' WHERE id = $1", [c]);
    await listener.query('SELECT 1');
    expect(heard).toEqual([]);
    expect((await cli(['watch', '--uninstall'])).stderr).toMatch(/^watch triggers not installed \(nothing to remove\)/);
    await listener.end();
    expect(await columns()).toEqual(cols);
  });

  it('the reconcile at start: a changed tenant loses every family; an orphan loses only its entry (a wrong, empty registry wiped every cached tenant)', async () => {
    expect((await cli(['watch', '--install'])).code).toBe(0);
    const ghost = uniq('ghost');
    await own.client.set(`tenant_config:${b}`, JSON.stringify({ client: { id: b, name: 'Beta (old name)' } }));
    await own.client.set(`dashboard_kpis:${b}:days:30`, '{}');
    await own.client.set(`tenant_config:${ghost}`, JSON.stringify({ client: { id: ghost, name: 'Ghost' } }));
    await own.client.set(`dashboard_kpis:${ghost}:days:30`, '{}');
    const run = startCli(['--registry', url, 'watch', '-o', 'json'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
    try {
      expect(await run.waitForStderr(/reconcile: verified \d+ cached entries: \d+ stale and 1 orphan deleted/, 20_000), run.stderr()).toBe(true);
      expect(await waitUntil(async () => (await own.client.exists(`tenant_config:${b}`, `dashboard_kpis:${b}:days:30`)) === 0, 10_000)).toBe(true);
      expect(await own.client.exists(`tenant_config:${ghost}`)).toBe(0);
      expect(await own.client.exists(`dashboard_kpis:${ghost}:days:30`)).toBe(1);
      // Every key deleted is said and counted, the stale entry the verify pass deleted itself included
      // (before: b's line said 1 key, the dashboard one; the ghost's deletion had no line).
      const events = () => run.stdout().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { tenant?: string; deleted: number; families: Record<string, number> });
      expect(await waitUntil(() => events().some((e) => e.tenant === b), 10_000), run.stdout()).toBe(true);
      expect(events().find((e) => e.tenant === b)).toMatchObject({ deleted: 2, families: { tenant_config: 1, dashboard_kpis: 1 } });
      expect(events().find((e) => e.tenant === ghost)).toMatchObject({ deleted: 1, families: { tenant_config: 1 } });
    } finally {
      await run.kill();
      await own.client.del(`dashboard_kpis:${ghost}:days:30`);
    }
  });

  describe('running', () => {
    let watch: CliProcess;
    let metricsUrl: string;
    const linesAbout = (id: string) => watch.stdout().split('\n').filter((l) => l.includes(` ${id}:`));

    beforeAll(async () => {
      expect((await cli(['watch', '--install'])).code).toBe(0);
      watch = startCli(['--registry', url, 'watch', '--metrics', '127.0.0.1:0', '--heartbeat', '200'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      expect(await watch.waitForStderr(/watch: watching .*metrics on (http:\S+)/, 20_000), watch.stderr()).toBe(true);
      metricsUrl = /metrics on (http:\S+)/.exec(watch.stderr())![1];
    });
    afterAll(async () => {
      if (!watch.exited()) await watch.kill();
    });

    it('a tenants row change: every key of that tenant gone, its neighbours untouched, one log line', async () => {
      const keys = [`tenant_config:${a}`, `permissions:${a}`, `dashboard_kpis:${a}:days:30`];
      const neighbours = [`tenant_config:${a}2`, `dashboard_kpis:${a}-eu:days:30`, `sessions:${a}`];
      for (const k of [...keys, ...neighbours]) await own.client.set(k, '{}');
      await db.query("UPDATE tenants SET name = 'Alpha 2' WHERE id = $1", [a]);
      expect(await waitUntil(async () => (await own.client.exists(...keys)) === 0, 10_000)).toBe(true);
      expect(await own.client.exists(...neighbours)).toBe(3);
      expect(await waitUntil(() => linesAbout(a).length > 0, 5000)).toBe(true);
      const lines = linesAbout(a);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^\\S+Z notify tenants UPDATE ${a}: deleted 3 keys \\((?=.*tenant_config 1)(?=.*permissions 1)(?=.*dashboard_kpis 1).*\\), lag \\d+ ms$`));
    });

    it('a subscription change: only permissions:<business>; an override too', async () => {
      await own.client.set(`permissions:${b}`, '{}');
      await own.client.set(`tenant_config:${b}`, '{}');
      await db.query("UPDATE business_subscriptions SET tier = 'pilot_core' WHERE business_id = $1", [b]);
      expect(await waitUntil(async () => (await own.client.exists(`permissions:${b}`)) === 0, 10_000)).toBe(true);
      expect(await own.client.exists(`tenant_config:${b}`)).toBe(1);
      await own.client.set(`permissions:${b}`, '{}');
      await db.query("INSERT INTO business_feature_overrides (business_id, feature, value) VALUES ($1, 'has_ai', 'true')", [b]);
      expect(await waitUntil(async () => (await own.client.exists(`permissions:${b}`)) === 0, 10_000)).toBe(true);
      expect(await own.client.exists(`tenant_config:${b}`)).toBe(1);
      expect(await waitUntil(() => linesAbout(b).length === 2, 5000)).toBe(true);
      expect(linesAbout(b)[0]).toMatch(new RegExp(`notify business_subscriptions UPDATE ${b}: deleted 1 key \\(permissions 1\\)`));
      expect(linesAbout(b)[1]).toMatch(new RegExp(`notify business_feature_overrides INSERT ${b}: deleted 1 key`));
    });

    it('a catalogue change: every permissions: entry, nothing else', async () => {
      const perms = [`permissions:${a}`, `permissions:${b}`, `permissions:${c}`, 'permissions:someone'];
      for (const k of perms) await own.client.set(k, '{}');
      await own.client.set(`tenant_config:${c}`, '{}');
      await db.query("INSERT INTO permission_features (name) VALUES ('has_new'), ('has_newer')");
      expect(await waitUntil(async () => (await own.client.exists(...perms)) === 0, 10_000)).toBe(true);
      expect(await own.client.exists(`tenant_config:${c}`)).toBe(1);
      expect(await waitUntil(() => /notify permission_features CHANGE \*: deleted 4 keys \(permissions 4\)/.test(watch.stdout()), 5000)).toBe(true);
      // Two rows in one transaction: one notification, one line.
      expect(watch.stdout().split('\n').filter((l) => l.includes('permission_features'))).toHaveLength(1);
    });

    it('serves its counters as Prometheus text', async () => {
      const text = await (await fetch(metricsUrl)).text();
      const value = (sample: string) => Number(new RegExp(`^${sample.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(value('tenantctl_watch_changes_total{source="notify"}')).toBeGreaterThanOrEqual(4);
      expect(value('tenantctl_watch_keys_deleted_total')).toBeGreaterThanOrEqual(9);
      expect(value('tenantctl_watch_up{backend="postgres"}')).toBe(1);
      expect(value('tenantctl_watch_up{backend="redis"}')).toBe(1);
      expect(value('tenantctl_watch_reconnects_total{backend="redis"}')).toBe(0);
      expect(value('tenantctl_watch_last_lag_seconds')).toBeGreaterThanOrEqual(0);
      expect((await fetch(metricsUrl.replace('/metrics', '/other'))).status).toBe(404);
    });

    it('triggers removed while it runs: it says so at the next heartbeat, polls the changed rows once each, and goes back to notifications when they return', async () => {
      expect((await cli(['watch', '--uninstall'])).code).toBe(0);
      expect(await watch.waitForStderr(/watch: warning: the change triggers were removed from .*reconciling the changed rows at every heartbeat/, 10_000), watch.stderr()).toBe(true);
      const keys = [`tenant_config:${c}`, `dashboard_kpis:${c}:days:7`];
      for (const k of keys) await own.client.set(k, '{}');
      // No trigger, no notification: only the poll (by updated_at) can see this.
      await db.query("UPDATE tenants SET name = 'Gamma 2', updated_at = now() WHERE id = $1", [c]);
      expect(await waitUntil(async () => (await own.client.exists(...keys)) === 0, 10_000), watch.stderr()).toBe(true);
      // Polled again at the next heartbeats (the row stays in the overlap), but applied once: a key set again stays.
      await own.client.set(`tenant_config:${c}`, '{"rebuilt":true}');
      await new Promise((r) => setTimeout(r, 1000));
      expect(await own.client.exists(`tenant_config:${c}`), watch.stdout() + watch.stderr()).toBe(1);
      expect(watch.stderr()).toMatch(/watch: polling \(no triggers\): \d+ changed row\(s\) invalidated/);
      const text = await (await fetch(metricsUrl)).text();
      expect(text).toMatch(/^tenantctl_watch_triggers_installed 0$/m);
      expect((await cli(['watch', '--install'])).code).toBe(0);
      expect(await watch.waitForStderr(/watch: the change triggers are installed again; back to notifications/, 10_000), watch.stderr()).toBe(true);
      await db.query("UPDATE tenants SET name = 'Gamma 3' WHERE id = $1", [c]);
      expect(await waitUntil(async () => (await own.client.exists(`tenant_config:${c}`)) === 0, 10_000)).toBe(true);
      expect(await waitUntil(() => new RegExp(`notify tenants UPDATE ${c}:`).test(watch.stdout()), 5000)).toBe(true);
      expect(await (await fetch(metricsUrl)).text()).toMatch(/^tenantctl_watch_triggers_installed 1$/m);
    });

    it('a trigger disabled while it runs (a bulk load\'s DISABLE TRIGGER) is a missing one: said, polled, metric 0; --install enables it again (a probe: no word, no polling, the gauge 1, and --install "nothing changed")', async () => {
      const trigger = async () => (await db.query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'tenantctl_watch' AND tgrelid = 'tenants'::regclass")).rows[0]?.tgenabled;
      await db.query('ALTER TABLE tenants DISABLE TRIGGER tenantctl_watch');
      expect(await watch.waitForStderr(/watch: warning: the change triggers were disabled in .* \(missing 1 of 10; disabled: tenants\.tenantctl_watch\).*reconciling the changed rows at every heartbeat/, 10_000), watch.stderr()).toBe(true);
      expect(await (await fetch(metricsUrl)).text()).toMatch(/^tenantctl_watch_triggers_installed 0$/m);
      // No notification: the poll sees it.
      await own.client.set(`dashboard_kpis:${a}:days:7`, '{}');
      await db.query("UPDATE tenants SET plan = 'disabled-trigger', updated_at = now() WHERE id = $1", [a]);
      expect(await waitUntil(async () => (await own.client.exists(`dashboard_kpis:${a}:days:7`)) === 0, 10_000), watch.stderr()).toBe(true);
      const install = await cli(['watch', '--install', '--json']);
      expect(install.code, install.stderr).toBe(0);
      expect(JSON.parse(install.stdout)).toMatchObject({ status: 'updated' });
      expect(await trigger()).toBe('O');
      // --uninstall names a disabled one among those it removed (a review: left out of its report and audit count).
      await db.query('ALTER TABLE tenants DISABLE TRIGGER tenantctl_watch');
      const removed = await cli(['watch', '--uninstall', '--json']);
      expect(JSON.parse(removed.stdout).triggers, removed.stderr).toHaveLength(10);
      expect(JSON.parse((await cli(['watch', '--install', '--json'])).stdout)).toMatchObject({ status: 'installed' });
      expect(await watch.waitForStderr(/watch: the change triggers are installed again; back to notifications[\s\S]*watch: the change triggers are installed again; back to notifications/, 10_000), watch.stderr()).toBe(true);
    });

    it('SIGTERM: closes both connections and exits 143 saying what it did', async () => {
      watch.child.kill('SIGTERM');
      const end = await watch.done;
      expect(end.code).toBe(143);
      expect(end.stderr).toMatch(/watch stopped by SIGTERM: \d+ change\(s\) seen, \d+ key\(s\) deleted, 0 reconnect\(s\)/);
      expect(await waitUntil(async () => (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tenantctl watch' AND datname = current_database()")).rows[0].n === 0, 5000)).toBe(true);
    });

    it('-o json: one JSON object per line; SIGINT exits 130', async () => {
      const run = startCli(['--registry', url, 'watch', '-o', 'json'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      try {
        expect(await run.waitForStderr(/watch: watching/, 20_000), run.stderr()).toBe(true);
        await own.client.set(`tenant_config:${c}`, '{}');
        await db.query("UPDATE tenants SET name = 'Gamma 2' WHERE id = $1", [c]);
        expect(await waitUntil(() => run.stdout().includes(`"source":"notify","kind":"tenant","tenant":"${c}"`), 10_000)).toBe(true);
        run.child.kill('SIGINT');
        const end = await run.done;
        expect(end.code).toBe(130);
        const events = end.stdout.trim().split('\n').map((l) => JSON.parse(l));
        expect(events.filter((e) => e.tenant === c && e.source === 'notify')).toEqual([
          expect.objectContaining({ kind: 'tenant', table: 'tenants', op: 'UPDATE', changes: 1, deleted: 1, families: { tenant_config: 1 }, lag_ms: expect.any(Number) }),
        ]);
      } finally {
        if (!run.exited()) await run.kill();
      }
    });

    it('its reader gone (watch | head -1): stops saying so, exit 0 (it said "stopped by SIGTERM", exit 143, with no signal sent)', async () => {
      const run = startCli(['--registry', url, 'watch'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      try {
        expect(await run.waitForStderr(/watch: watching/, 20_000), run.stderr()).toBe(true);
        run.child.stdout!.destroy();
        await own.client.set(`tenant_config:${c}`, '{}');
        await db.query("UPDATE tenants SET name = 'Gamma 4' WHERE id = $1", [c]);
        const end = await run.done;
        expect(end.code, end.stderr).toBe(0);
        expect(end.stderr).toMatch(/watch stopped: its output was closed: \d+ change\(s\) seen/);
        expect(end.stderr).not.toMatch(/SIGTERM/);
      } finally {
        if (!run.exited()) await run.kill();
      }
    });

    it('--audit-log: one line for the run, with the changes seen and keys deleted, however it ends; an unwritable log is exit 2 before it starts (a probe: no line, and no refusal)', async () => {
      const audit = path.join(ws.dir, `watch-audit-${uniq('a')}.log`);
      const run = startCli(['--registry', url, 'watch', '--audit-log', audit], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      try {
        expect(await run.waitForStderr(/watch: watching/, 20_000), run.stderr()).toBe(true);
        await own.client.set(`tenant_config:${c}`, '{}');
        await db.query("UPDATE tenants SET name = 'Gamma audited' WHERE id = $1", [c]);
        // (The suite's other watch may delete the key first: this one's line may say 0 keys.)
        expect(await waitUntil(() => run.stdout().includes(`notify tenants UPDATE ${c}: deleted`), 10_000), run.stdout() + run.stderr()).toBe(true);
        run.child.kill('SIGTERM');
        const end = await run.done;
        expect(end.code, end.stderr).toBe(143);
        const lines = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        expect(lines).toEqual([expect.objectContaining({ command: 'watch', outcome: 'interrupted', exit_code: 143, counts: expect.objectContaining({ keys_deleted: expect.any(Number) }) })]);
        expect(lines[0].counts.done).toBeGreaterThanOrEqual(1);
      } finally {
        if (!run.exited()) await run.kill();
      }
      // A path under a file: no directory can be made there.
      writeFileSync(path.join(ws.dir, 'a-file'), '');
      const refused = await runCli(['--registry', url, 'watch', '--audit-log', path.join(ws.dir, 'a-file', 'audit.log')], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      expect(refused.code, refused.stderr).toBe(2);
      expectOneLineError(refused);
    });

    it('-o yaml: one YAML document per event, so the stream loads as YAML (it wrote JSON lines)', async () => {
      const run = startCli(['--registry', url, 'watch', '-o', 'yaml'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      try {
        expect(await run.waitForStderr(/watch: watching/, 20_000), run.stderr()).toBe(true);
        await own.client.set(`tenant_config:${c}`, '{}');
        await db.query("UPDATE tenants SET name = 'Gamma 3' WHERE id = $1", [c]);
        expect(await waitUntil(() => run.stdout().includes(`tenant: ${c}`), 10_000)).toBe(true);
        run.child.kill('SIGINT');
        const end = await run.done;
        expect(end.code).toBe(130);
        const { loadAll } = await import('js-yaml');
        const events = loadAll(end.stdout) as Array<Record<string, unknown>>;
        expect(events.filter((e) => e.tenant === c && e.source === 'notify')).toEqual([expect.objectContaining({ kind: 'tenant', op: 'UPDATE', deleted: 1 })]);
      } finally {
        if (!run.exited()) await run.kill();
      }
    });
  });

  it('stopped by a signal in the middle of a batch: the changes it had received are applied before it ends, and counted (a probe: 4,946 tenants of 5,000 left cached; it said 1,413 deleted of 7,712)', async () => {
    expect((await cli(['watch', '--install'])).code).toBe(0);
    const N = 4000;
    // Changed a day ago: no reconcile at start picks them up (their deletions would race the baseline below).
    await db.query("INSERT INTO tenants (id, name, config_source, tenant_config, updated_at) SELECT 'bulk' || g, 'Bulk', 'database', '{}', now() - interval '1 day' FROM generate_series(1, $1::int) g ON CONFLICT DO NOTHING", [N]);
    const run = startCli(['--registry', url, 'watch', '--metrics', '127.0.0.1:0'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
    try {
      expect(await run.waitForStderr(/watch: watching .*metrics on (http:\S+)/, 20_000), run.stderr()).toBe(true);
      const metricsAt = /metrics on (http:\S+)/.exec(run.stderr())![1];
      // Other applications' keys make each tenant batch's pattern pass a real sweep.
      await own.client.eval("for i = 1, 300000 do redis.call('SET', 'sessions:' .. i, 'x') end", 0);
      for (let i = 1; i <= N; i += 1000) {
        const p = own.client.pipeline();
        for (let n = i; n < i + 1000; n++) p.set(`tenant_config:bulk${n}`, '{}').set(`dashboard_kpis:bulk${n}:days:30`, '{}');
        await p.exec();
      }
      // Idle (nothing pending) before the baseline is read.
      const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(metricsAt)).text())?.[1] ?? NaN);
      expect(await waitUntil(async () => (await metric('tenantctl_watch_pending_changes')) === 0, 10_000)).toBe(true);
      const before = await metric('tenantctl_watch_keys_deleted_total');
      await db.query("UPDATE tenants SET name = 'Bulk 2' WHERE id LIKE 'bulk%'");
      const left = async () => {
        let n = 0;
        for (let i = 1; i <= N; i += 1000) n += await own.client.exists(...Array.from({ length: 1000 }, (_, k) => [`tenant_config:bulk${i + k}`, `dashboard_kpis:bulk${i + k}:days:30`]).flat());
        return n;
      };
      await waitUntil(async () => (await left()) < 2 * N, 10_000, 5);
      run.child.kill('SIGTERM');
      const end = await run.done;
      expect(end.code, end.stderr).toBe(143);
      expect(end.stderr).toMatch(/^watch: stopping: applying the \d+ change\(s\) already received$/m);
      expect(await left(), end.stderr).toBe(0);
      const reported = Number(/(\d+) key\(s\) deleted/.exec(end.stderr)![1]);
      expect(reported - before, end.stderr).toBe(2 * N);
      expect(end.stderr).not.toMatch(/not applied/);
      // The lines add up to it too: a change applied again after the cut says what the cut attempt deleted
      // (a review: "deleted 0 keys" lines, 39,928 of 40,000 in all).
      const perLine = end.stdout.split('\n').filter((l) => / bulk\d+: deleted /.test(l)).reduce((n, l) => n + Number(/: deleted (\d+) key/.exec(l)![1]), 0);
      expect(perLine, end.stdout.slice(0, 2000)).toBe(2 * N);

      // A second signal during that: stopped at once, naming what was received and not applied (a review: "a
      // rerun finishes the job", which a watch's rerun does not).
      for (let i = 1; i <= N; i += 1000) {
        const p = own.client.pipeline();
        for (let n = i; n < i + 1000; n++) p.set(`tenant_config:bulk${n}`, '{}').set(`dashboard_kpis:bulk${n}:days:30`, '{}');
        await p.exec();
      }
      const again = startCli(['--registry', url, 'watch'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      try {
        expect(await again.waitForStderr(/watch: watching/, 20_000), again.stderr()).toBe(true);
        await db.query("UPDATE tenants SET name = 'Bulk 3' WHERE id LIKE 'bulk%'");
        await waitUntil(async () => (await left()) < 2 * N, 10_000, 5);
        again.child.kill('SIGTERM');
        expect(await again.waitForStderr(/stopping: applying the/, 10_000), again.stderr()).toBe(true);
        again.child.kill('SIGTERM');
        const cut = await again.done;
        expect(cut.code, cut.stderr).toBe(143);
        if ((await left()) > 0) {
          expect(cut.stderr).toMatch(/^terminated again: stopped at once, without applying the changes received: not applied \(their keys may still be cached\): bulk\d+/m);
          expect(cut.stderr).not.toMatch(/a rerun finishes the job/);
        }
      } finally {
        if (!again.exited()) await again.kill();
      }
    } finally {
      if (!run.exited()) await run.kill();
      await own.client.call('FLUSHALL');
      await db.query("DELETE FROM tenants WHERE id LIKE 'bulk%'");
    }
  }, 60_000);
  it('stopped during its verify pass at start: every tenant whose stale entry it deleted loses its other families too (a probe: the stop dropped them, and a restart could no longer find them)', async () => {
    expect((await cli(['watch', '--install'])).code).toBe(0);
    const N = 3000;
    await db.query("INSERT INTO tenants (id, name, config_source, tenant_config, updated_at) SELECT 'vbulk' || g, 'VBulk', 'database', '{}', now() - interval '1 day' FROM generate_series(1, $1::int) g ON CONFLICT DO NOTHING", [N]);
    try {
      // Other applications' keys make the pass take a while; each tenant's cached entry is stale (another name).
      await own.client.eval("for i = 1, 300000 do redis.call('SET', 'sessions:' .. i, 'x') end", 0);
      for (let i = 1; i <= N; i += 1000) {
        const p = own.client.pipeline();
        for (let n = i; n < i + 1000; n++) p.set(`tenant_config:vbulk${n}`, JSON.stringify({ client: { id: `vbulk${n}`, name: 'OLD' } })).set(`dashboard_kpis:vbulk${n}:days:30`, '{}');
        await p.exec();
      }
      const configsLeft = async () => {
        let n = 0;
        for (let i = 1; i <= N; i += 1000) n += await own.client.exists(...Array.from({ length: 1000 }, (_, k) => `tenant_config:vbulk${i + k}`));
        return n;
      };
      const run = startCli(['--registry', url, 'watch'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      try {
        // Stopped once the pass has deleted some stale entries, not all.
        expect(await waitUntil(async () => (await configsLeft()) < N, 20_000, 5), run.stderr()).toBe(true);
        run.child.kill('SIGTERM');
        const end = await run.done;
        expect(end.code, end.stderr).toBe(143);
        // Every tenant without its entry now has no dashboard either (before: thousands kept theirs, for good).
        const stranded: string[] = [];
        for (let n = 1; n <= N; n++) {
          if (!(await own.client.exists(`tenant_config:vbulk${n}`)) && (await own.client.exists(`dashboard_kpis:vbulk${n}:days:30`))) stranded.push(`vbulk${n}`);
        }
        expect(stranded.length, `${stranded.slice(0, 5).join(', ')}\n${end.stderr}`).toBe(0);
      } finally {
        if (!run.exited()) await run.kill();
      }
    } finally {
      await own.client.call('FLUSHALL');
      await db.query("DELETE FROM tenants WHERE id LIKE 'vbulk%'");
    }
  }, 60_000);
});
