// `tenantctl watch` (issue 10 §3): commit-to-delete latency, next to the stale
// window without it, measured in the same run.
//
// A scratch PostgreSQL database holds BENCH_WATCH_TENANTS (default 200)
// tenants and their subscriptions; an own redis-server holds their cached
// entries plus BENCH_WATCH_BACKGROUND (default 10,000) other family keys (a
// tenant's wildcard families are found by a SCAN pass over all of them).
// With the built `tenantctl watch` running, BENCH_WATCH_CHANGES (default
// 1,000) tenants-row UPDATEs and as many subscription UPDATEs are committed
// one after the other; the time from sending the (autocommit) UPDATE to the
// key's deletion is taken from Redis keyspace notifications (no polling). Then,
// with watch stopped, the same changes leave the entries in place: the stale
// window is the entry's remaining TTL at the commit, for entries cached at a
// uniformly random moment within the TTL (300 s) before the change.
//
// Exit: 0 ran and every result was right (the goal may be missed: reported);
// 1 a result was wrong (a key not deleted with watch, or deleted without it);
// 2 it could not run (no PostgreSQL, a process failed).
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { BIN, CouldNotRun, childEnv, createScratchDb, envInt, fmtMs, percentile, round, runArea, startRedis, tempDir } from './lib.js';

const TENANTS = envInt('BENCH_WATCH_TENANTS', 200);
const CHANGES = envInt('BENCH_WATCH_CHANGES', 1000, 10);
const BACKGROUND = envInt('BENCH_WATCH_BACKGROUND', 10_000, 0);
const TTL = 300;
const GOAL_MS = 100;
/** A change whose key is not gone by then is a wrong result. */
const DEADLINE_MS = 5000;

const stats = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1], n: s.length };
};

await runArea('watch-latency', `watch: commit-to-delete latency vs the stale window without it (${CHANGES.toLocaleString('en-US')} changes each, ${TENANTS} tenants, ${BACKGROUND.toLocaleString('en-US')} other family keys, redis-server and PostgreSQL on loopback)`, async (area) => {
  const server = await startRedis();
  area.defer(() => server.stop());
  let db;
  try {
    db = await createScratchDb(pg, 'bench_watch');
  } catch (err) {
    throw new CouldNotRun(`no PostgreSQL to measure on (BENCH_DATABASE_URL): ${err.message}`);
  }
  area.defer(() => db.drop());
  const cwd = tempDir('watch');
  area.defer(() => rmSync(cwd, { recursive: true, force: true }));
  const env = childEnv({ REDIS_URL: server.url, DATABASE_URL: db.url });

  // The schema and the triggers, by the CLI itself.
  const install = spawn(process.execPath, [BIN, 'watch', '--install', '--json'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let installErr = '';
  install.stderr.on('data', (d) => (installErr += d));
  const installCode = await new Promise((r) => install.on('close', r));
  if (installCode !== 0) throw new CouldNotRun(`watch --install exited ${installCode}: ${installErr.trim()}`);

  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  area.defer(() => sql.end());
  const ids = Array.from({ length: TENANTS }, (_, i) => `bench${String(i).padStart(5, '0')}`);
  await sql.query(
    `INSERT INTO tenants (id, name, config_source, tenant_config, updated_at)
     SELECT id, 'Tenant ' || id, 'database', '{"branding":{"color":"blue"}}', now() - interval '1 day' FROM unnest($1::text[]) AS id`,
    [ids],
  );
  await sql.query("INSERT INTO permission_tiers (name, features, max_devices) VALUES ('pilot_core', '[]', 2), ('pilot_pro', '[]', null)");
  await sql.query(
    "INSERT INTO business_subscriptions (business_id, tier, status, updated_at) SELECT id, 'pilot_core', 'active', now() - interval '1 day' FROM unnest($1::text[]) AS id",
    [ids],
  );

  const redis = new Redis(server.url);
  area.defer(() => redis.disconnect());
  if (BACKGROUND) await redis.call('DEBUG', 'POPULATE', String(BACKGROUND), 'dashboard_kpis:background');
  await redis.config('SET', 'notify-keyspace-events', 'Kg');
  const sub = new Redis(server.url);
  area.defer(() => sub.disconnect());
  /** key -> when its deletion was seen (ms, this process's clock). */
  const deletedAt = new Map();
  const waiters = new Map();
  sub.on('pmessage', (_p, channel, event) => {
    if (event !== 'del') return;
    const key = channel.slice(channel.indexOf(':') + 1);
    const at = performance.now();
    deletedAt.set(key, at);
    waiters.get(key)?.(at);
  });
  await sub.psubscribe('__keyspace@0__:tenant_config:*', '__keyspace@0__:permissions:*', '__keyspace@0__:dashboard_kpis:bench*');
  const deletion = (key) =>
    new Promise((resolve) => {
      if (deletedAt.has(key)) return resolve(deletedAt.get(key));
      const timer = setTimeout(() => {
        waiters.delete(key);
        resolve(undefined);
      }, DEADLINE_MS);
      waiters.set(key, (at) => {
        clearTimeout(timer);
        waiters.delete(key);
        resolve(at);
      });
    });

  // ---------------------------------------------------------------- with watch
  const watch = spawn(process.execPath, [BIN, 'watch', '-o', 'json', '--heartbeat', '1000'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let watchErr = '';
  let watchOut = '';
  watch.stdout.on('data', (d) => (watchOut += d));
  const ready = new Promise((resolve) => {
    watch.stderr.on('data', (d) => {
      watchErr += d;
      if (/watch: watching/.test(watchErr)) resolve(true);
    });
    watch.on('close', () => resolve(false));
    setTimeout(() => resolve(false), 30_000);
  });
  const exited = new Promise((r) => watch.on('close', (code, signal) => r({ code, signal })));
  area.defer(() => watch.exitCode === null && watch.kill('SIGKILL'));
  if (!(await ready)) throw new CouldNotRun(`watch did not start: ${watchErr.trim().split('\n').slice(-3).join(' / ')}`);
  area.progress('watch is running');

  const tenantLatency = [];
  const allKeysLatency = [];
  const subscriptionLatency = [];
  let missed = 0;
  for (let i = 0; i < CHANGES; i++) {
    const id = ids[i % TENANTS];
    const config = `tenant_config:${id}`;
    const pattern = `dashboard_kpis:${id}:days:30`;
    deletedAt.delete(config);
    deletedAt.delete(pattern);
    await redis.set(config, '{"client":{}}', 'EX', TTL);
    await redis.set(pattern, '{}', 'EX', TTL);
    const gone = [deletion(config), deletion(pattern)];
    // From the moment the (autocommit) UPDATE is sent: an upper bound that includes the commit itself
    // (the deletion often arrives before the acknowledgement does).
    const committed = performance.now();
    await sql.query('UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1', [id, `Tenant ${id} #${i}`]);
    const [at, allAt] = await Promise.all(gone);
    if (at === undefined || allAt === undefined) {
      missed++;
      continue;
    }
    tenantLatency.push(at - committed);
    allKeysLatency.push(Math.max(at, allAt) - committed);
  }
  area.check(missed === 0, `with watch, ${missed} of ${CHANGES} tenant changes left their keys in place for ${DEADLINE_MS} ms`);
  area.progress('tenant changes done');
  missed = 0;
  for (let i = 0; i < CHANGES; i++) {
    const id = ids[i % TENANTS];
    const key = `permissions:${id}`;
    deletedAt.delete(key);
    await redis.set(key, '{}', 'EX', TTL);
    const gone = deletion(key);
    const committed = performance.now();
    await sql.query('UPDATE business_subscriptions SET tier = $2, updated_at = now() WHERE business_id = $1', [id, i % 2 ? 'pilot_core' : 'pilot_pro']);
    const at = await gone;
    if (at === undefined) missed++;
    else subscriptionLatency.push(at - committed);
  }
  area.check(missed === 0, `with watch, ${missed} of ${CHANGES} subscription changes left permissions:<id> in place for ${DEADLINE_MS} ms`);
  // Stopped first, so every line it wrote has arrived (a line follows its deletion by a moment).
  watch.kill('SIGTERM');
  const end = await exited;
  area.check(end.code === 143, `watch exited ${end.code ?? end.signal} on SIGTERM, expected 143`);
  const lines = watchOut.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.source === 'notify');
  const logged = lines.reduce((n, e) => n + e.changes, 0);
  area.check(logged === 2 * CHANGES, `watch logged ${logged} notifications (${lines.length} lines) for ${2 * CHANGES} changes`);
  const lagByWatch = lines.filter((e) => e.table === 'tenants').map((e) => e.lag_ms);
  area.progress('watch stopped');

  // ------------------------------------------------------------- without watch
  const staleWindow = [];
  let invalidated = 0;
  for (let i = 0; i < CHANGES; i++) {
    const id = ids[i % TENANTS];
    const key = `tenant_config:${id}`;
    // Cached at a uniformly random moment within the TTL before the change: this much of it is left.
    await redis.set(key, '{"client":{}}', 'EX', 1 + Math.floor(Math.random() * TTL));
    await sql.query('UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1', [id, `Tenant ${id} without #${i}`]);
    const pttl = await redis.pttl(key);
    if (pttl < 0) invalidated++;
    else staleWindow.push(pttl);
  }
  // A sample waits a little longer: nothing deletes the stale entries without watch.
  await new Promise((r) => setTimeout(r, 200));
  const sample = ids.slice(0, Math.min(50, TENANTS)).map((id) => `tenant_config:${id}`);
  const stillThere = await redis.exists(...sample);
  area.check(invalidated === 0 && stillThere === sample.length, `without watch ${invalidated} entries were gone at the commit and ${sample.length - stillThere} of ${sample.length} 200 ms later`);

  const t = stats(tenantLatency);
  const all = stats(allKeysLatency);
  const s = stats(subscriptionLatency);
  const w = stats(staleWindow);
  const lag = stats(lagByWatch);
  const ratio = (a, b) => (b > 0 ? `${Math.round(a / b).toLocaleString('en-US')}x shorter` : '-');
  const row = (measure, st, extra = {}) =>
    area.row({
      measure,
      value: `p50 ${fmtMs(st.p50)}`,
      spread: `p99 ${fmtMs(st.p99)}, max ${fmtMs(st.max)}`,
      baseline: 'without watch (remaining TTL at commit)',
      baselineValue: `p50 ${fmtMs(w.p50)}, p99 ${fmtMs(w.p99)}`,
      ratio: ratio(w.p50, st.p50),
      goal: `p99 < ${GOAL_MS} ms`,
      met: st.p99 < GOAL_MS,
      json: { p50_ms: round(st.p50, 3), p99_ms: round(st.p99, 3), max_ms: round(st.max, 3), n: st.n, stale_p50_ms: round(w.p50), stale_p99_ms: round(w.p99) },
      ...extra,
    });
  row('tenants UPDATE commit -> tenant_config:<id> deleted', t);
  row(`tenants UPDATE commit -> every key of the tenant deleted (a wildcard family: SCAN over ${(BACKGROUND + 2 * TENANTS).toLocaleString('en-US')} keys)`, all);
  row('subscription UPDATE commit -> permissions:<id> deleted', s);
  area.row({ measure: "watch's own lag (trigger clock -> keys deleted, tenants)", value: `p50 ${fmtMs(lag.p50)}`, spread: `p99 ${fmtMs(lag.p99)}, max ${fmtMs(lag.max)}`, json: { p50_ms: lag.p50, p99_ms: lag.p99 } });
  area.row({ measure: `stale window without watch (TTL ${TTL} s, entries cached uniformly within it)`, value: `p50 ${fmtMs(w.p50)}`, spread: `p99 ${fmtMs(w.p99)}, max ${fmtMs(w.max)}`, json: { p50_ms: w.p50, p99_ms: w.p99, max_ms: w.max } });
  area.note('latency is from sending the UPDATE (autocommit: it includes the commit) to the Redis keyspace event of the deletion, both seen by this process; changes are committed one at a time');
  area.note(`worst case without watch: an entry cached just before the change stays stale for the whole TTL (${TTL} s)`);
  area.data = { tenants: TENANTS, changes: CHANGES, background_keys: BACKGROUND, ttl_s: TTL, tenant: t, all_keys: all, subscription: s, stale_window: w, watch_lag: lag };
});
