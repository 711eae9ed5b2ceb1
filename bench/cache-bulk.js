// Bulk cache operations at scale (issue 8 §2): BENCH_KEYS keys (default
// 2,000,000), half of them in the tool's default key families (10 keys for
// each of BENCH_KEYS/20 tenants t1..tN over 10 families), the other half
// foreign (`sessions:N`, `other:N`, plus decoys that look like the tool's but
// are not). Each round, interleaved, re-seeding before every destructive run:
//   floor        a bare SCAN COUNT 1000 pass over the keyspace (ioredis, in-process)
//   dry-run      tenantctl invalidate-all --dry-run --json      (whole process)
//   cache-info   tenantctl cache-info --json                    (whole process)
//   invalidate   tenantctl invalidate t1 --json                 (whole process)
//   simple loop  per family: SCAN MATCH <family>:* COUNT 100, DEL each page (in-process)
//   [re-seed]
//   all          tenantctl invalidate-all --yes --json          (whole process)
// Every run is checked (counts equal what was seeded, exactly the keys that
// should go are gone, every foreign key is still there) and SLOWLOG at 5 ms
// is read around it. Peak RSS of each tenantctl process comes from /usr/bin/time.
import { Redis } from 'ioredis';
import {
  BIN, CouldNotRun, childEnv, envInt, fmtInt, fmtMb, fmtMs, fmtRange, kbToMb, median, parseJson, round, runArea, runNodeOk, startRedis, summary, tempDir, time, x,
} from './lib.js';
import { rmSync } from 'node:fs';

const TOTAL = envInt('BENCH_KEYS', 2_000_000, 20_000);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const SLOW_US = 5000;

/** The per-tenant key layout: 10 keys over 10 of the 12 default families ({t} = tenant id). */
const LAYOUT = [
  'tenant_config:{t}',
  'permissions:{t}',
  'dashboard_kpis:{t}',
  'dashboard_trends:{t}:days:30',
  'dashboard_alerts:{t}',
  'dashboard_stats:{t}:range:week',
  'products:{t}:page:1',
  'pricing_trends:{t}:days:7',
  'sentiment_overview:{t}',
  'forecast_demand:{t}:sku:1:horizon:7',
];
const familyOf = (tpl) => tpl.slice(0, tpl.indexOf(':'));
/** The families the services' own "invalidate all" loop walks: every default one (DESIGN.md). */
const SERVICE_FAMILIES = ['tenant_config', 'permissions', 'dashboard_kpis', 'dashboard_trends', 'dashboard_alerts', 'dashboard_insights',
  'dashboard_stats', 'dashboard_activity', 'products', 'pricing_trends', 'sentiment_overview', 'forecast_demand'];

const TENANTS = Math.floor(TOTAL / 2 / LAYOUT.length);
const FAMILY_KEYS = TENANTS * LAYOUT.length;
/**
 * Foreign keys that look like the tool's but are not (wrong prefix, an ASCII
 * character no id may hold, or a shape the family does not have). Non-ASCII
 * bytes in the tenant slot are left out on purpose: src/keys/key-patterns.ts
 * counts them as a family's (a service may have written such an id).
 */
const DECOYS = [
  'sessions:t1', 'other:tenant_config:t1', 'tenant_configs:t1', 'xtenant_config:t1', 'dashboard_kpis_v2:t1', 'tenant_config:t1:extra',
  'permissions:t1:x', 'tenant_config:', 'tenant_config:t[1]', 'tenant_config:t 1', 'tenant_config:t1*', 'products', 'products:', 'products::page:1',
];
const FOREIGN = TOTAL - FAMILY_KEYS;
const SESSIONS = Math.floor((FOREIGN - DECOYS.length) / 2);
const OTHER = FOREIGN - DECOYS.length - SESSIONS;
const TARGET = 't1';
const NEIGHBOURS = ['t10', 't11', 't100', 't1000', 't2', 't12'].filter((t) => Number(t.slice(1)) <= TENANTS);

const luaKey = (tpl) => tpl.split('{t}').map((s) => `'${s}'`).join(' .. t .. ');
/** Seeds tenants ARGV[1]..ARGV[2]: one MSET of the 10 layout keys each. */
const SEED_LUA = `
local v = ARGV[3]
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local t = 't' .. i
  redis.call('MSET', ${LAYOUT.map((tpl) => `${luaKey(tpl)}, v`).join(', ')})
end
return (tonumber(ARGV[2]) - tonumber(ARGV[1]) + 1) * ${LAYOUT.length}`;
/** How many layout keys of tenants ARGV[1]..ARGV[2] exist. */
const COUNT_LUA = `
local n = 0
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local t = 't' .. i
  n = n + redis.call('EXISTS', ${LAYOUT.map(luaKey).join(', ')})
end
return n`;
/** How many of ARGV[1]:0 .. ARGV[1]:(ARGV[2]-1) exist (the DEBUG POPULATE keys). */
const COUNT_POPULATED_LUA = `
local n = 0
for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do n = n + redis.call('EXISTS', ARGV[1] .. ':' .. i) end
return n`;
const VALUE = JSON.stringify({ cached_at: '2026-01-01T00:00:00Z', payload: { a: 1, b: [1, 2, 3], c: 'x'.repeat(40) } });
const CHUNK = 10_000;

/** A SLOWLOG entry's command, grouped: `EVALSHA (unlink)`, `SCAN MATCH COUNT 250`, `DEL`. */
function commandKind(args) {
  const name = args[0].toUpperCase();
  if (name === 'EVALSHA' || name === 'EVAL') return `${name} (${args[3] ?? '?'})`;
  if (name === 'SCAN') {
    const at = args.findIndex((a) => a.toUpperCase() === 'COUNT');
    return `SCAN${args.some((a) => a.toUpperCase() === 'MATCH') ? ' MATCH' : ''}${at > 0 ? ` COUNT ${args[at + 1]}` : ''}`;
  }
  return name;
}

await runArea(
  'cache-bulk',
  `Redis bulk operations: ${fmtInt(TOTAL)} keys, ${fmtInt(FAMILY_KEYS)} of them the tool's (${LAYOUT.length} families x ${fmtInt(TENANTS)} tenants); ` +
    `median of ${ROUNDS} interleaved rounds; whole-process tenantctl vs in-process baselines, redis-server 7 on loopback`,
  async (area) => {
    const server = await startRedis();
    area.defer(() => server.stop());
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    await admin.connect();
    area.defer(() => admin.disconnect());
    const bare = new Redis(server.url, { lazyConnect: true });
    await bare.connect();
    area.defer(() => bare.disconnect());
    const cwd = tempDir('bulk');
    area.defer(() => rmSync(cwd, { recursive: true, force: true }));
    const env = childEnv({ REDIS_URL: server.url });
    const tenantctl = (label, ...args) => runNodeOk(label, [BIN, '--redis-timeout', '20000', ...args], { cwd, env, timeoutMs: 180_000 });

    const countTenants = async (from, to) => {
      let n = 0;
      for (let a = from; a <= to; a += CHUNK) n += Number(await admin.eval(COUNT_LUA, 0, a, Math.min(to, a + CHUNK - 1)));
      return n;
    };
    const countPopulated = async (prefix, n) => {
      let found = 0;
      for (let a = 0; a < n; a += 200_000) found += Number(await admin.eval(COUNT_POPULATED_LUA, 0, prefix, a, Math.min(n, a + 200_000) - 1));
      return found;
    };
    const decoysLeft = async () => (await Promise.all(DECOYS.map((k) => admin.exists(k)))).reduce((a, b) => a + b, 0);
    const seedTenants = async (from, to) => {
      let n = 0;
      for (let a = from; a <= to; a += CHUNK) n += Number(await admin.eval(SEED_LUA, 0, a, Math.min(to, a + CHUNK - 1), VALUE));
      return n;
    };

    /** FLUSHALL (synchronous, so no background freeing competes with the next run) and seed everything; checked. */
    const seed = async () => {
      const t = await time(async () => {
        await admin.flushall('SYNC');
        await admin.call('DEBUG', 'POPULATE', String(SESSIONS), 'sessions', '16');
        await admin.call('DEBUG', 'POPULATE', String(OTHER), 'other', '16');
        for (const k of DECOYS) await admin.set(k, 'not the tool\'s');
        await seedTenants(1, TENANTS);
      });
      const size = await admin.dbsize();
      if (size !== TOTAL) throw new CouldNotRun(`seeding produced ${size} keys, expected ${TOTAL}`);
      seedTimes.push(t.ms);
    };
    const seedTimes = [];

    /** SLOWLOG around one run: threshold 5 ms, reset before, read after. */
    const slowlogReset = async () => {
      await admin.config('SET', 'slowlog-log-slower-than', String(SLOW_US));
      await admin.call('SLOWLOG', 'RESET');
      await admin.config('RESETSTAT'); // last, so the command counts below hold the measured run only
    };
    /**
     * Calls per command since RESETSTAT (INFO commandstats, which also counts
     * the calls a script makes; the INFO call itself is not in it yet).
     */
    const commandStats = async () => {
      const out = {};
      for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)) {
        if (m[1] !== 'config|resetstat') out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
      }
      return out;
    };
    /** CPU seconds of the server's main thread so far (user + sys). */
    const serverCpu = async () => {
      const info = await admin.info('cpu');
      const get = (k) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
      const main = get('used_cpu_user_main_thread') + get('used_cpu_sys_main_thread');
      return Number.isFinite(main) ? main : get('used_cpu_user') + get('used_cpu_sys');
    };
    const slowlogRead = async () => {
      const entries = await admin.call('SLOWLOG', 'GET', '4096');
      return entries.map((e) => ({ us: Number(e[2]), kind: commandKind(e[3].map(String)), command: e[3].slice(0, 8).map((a) => String(a).slice(0, 24)).join(' ') }));
    };

    // What each measure collects per round.
    const M = {};
    const measures = ['floor', 'loop', 'all', 'dry', 'info', 'by', 'one'];
    for (const m of measures) M[m] = { ms: [], rssKb: [], slow: [], calls: [], cpuMs: [] };
    const measured = async (m, fn) => {
      const cpu0 = await serverCpu();
      await slowlogReset();
      const r = await fn();
      M[m].calls.push(await commandStats());
      M[m].cpuMs.push(((await serverCpu()) - cpu0) * 1000);
      M[m].slow.push(await slowlogRead());
      M[m].ms.push(r.ms);
      if (r.rssKb !== undefined) M[m].rssKb.push(r.rssKb);
      return r;
    };
    const expectFamilies = (label, families, what) => {
      for (const tpl of LAYOUT) area.check(families?.[familyOf(tpl)] === TENANTS, `${label}: ${what} ${familyOf(tpl)} = ${families?.[familyOf(tpl)]}, expected ${TENANTS}`);
      for (const f of SERVICE_FAMILIES.filter((f) => !LAYOUT.some((tpl) => familyOf(tpl) === f))) {
        area.check((families?.[f] ?? 0) === 0, `${label}: ${what} ${f} = ${families?.[f]}, expected 0`);
      }
    };

    area.progress(`seeding ${fmtInt(TOTAL)} keys`);
    await seed();
    area.progress(`seeded in ${fmtMs(seedTimes[0])}`);
    let loopForeignDeleted = 0;

    for (let round = 1; round <= ROUNDS; round++) {
      if (round > 1) await seed();
      area.progress(`round ${round}/${ROUNDS}`);

      // The floor: a bare SCAN COUNT 1000 pass, in-process.
      const floor = await measured('floor', () =>
        time(async () => {
          let cursor = '0';
          let n = 0;
          do {
            const [next, keys] = await bare.scan(cursor, 'COUNT', 1000);
            cursor = next;
            n += keys.length;
          } while (cursor !== '0');
          return n;
        }),
      );
      area.check(floor.value >= TOTAL, `floor SCAN pass returned ${floor.value} keys, fewer than the ${TOTAL} present`);

      // invalidate-all --dry-run --json: exact counts, nothing deleted.
      const dry = await measured('dry', () => tenantctl('invalidate-all --dry-run', 'invalidate-all', '--dry-run', '--json'));
      const dryJson = parseJson('invalidate-all --dry-run', dry.stdout);
      area.check(dryJson.total === FAMILY_KEYS, `invalidate-all --dry-run counted ${dryJson.total} keys, seeded ${FAMILY_KEYS}`);
      expectFamilies('invalidate-all --dry-run', dryJson.families, 'counted');
      area.check((await admin.dbsize()) === TOTAL, 'invalidate-all --dry-run changed the keyspace');

      // cache-info --json: exact counts per family.
      const info = await measured('info', () => tenantctl('cache-info', 'cache-info', '--json'));
      const infoJson = parseJson('cache-info', info.stdout);
      area.check(infoJson.available === true, `cache-info says available=${infoJson.available}`);
      area.check(infoJson.tool_keys === FAMILY_KEYS, `cache-info tool_keys = ${infoJson.tool_keys}, seeded ${FAMILY_KEYS}`);
      area.check(infoJson.total_keys === TOTAL, `cache-info total_keys = ${infoJson.total_keys}, expected ${TOTAL}`);
      area.check(infoJson.cached_tenants === TENANTS, `cache-info cached_tenants = ${infoJson.cached_tenants}, expected ${TENANTS}`);
      expectFamilies('cache-info', infoJson.families, 'families.');

      // cache-info --by tenant: every key's memory and TTL, aggregated server-side per batch (issue 10: <= 2x the floor).
      const by = await measured('by', () => tenantctl('cache-info --by tenant', 'cache-info', '--by', 'tenant', '--json'));
      const byJson = parseJson('cache-info --by tenant', by.stdout);
      area.check(byJson.total?.keys === FAMILY_KEYS, `cache-info --by tenant: ${byJson.total?.keys} keys, seeded ${FAMILY_KEYS}`);
      area.check(byJson.tenant_count === TENANTS, `cache-info --by tenant: ${byJson.tenant_count} tenants, seeded ${TENANTS}`);
      area.check(byJson.total?.no_ttl === FAMILY_KEYS, `cache-info --by tenant: ${byJson.total?.no_ttl} keys without TTL, every seeded key has none`);
      area.check((await admin.dbsize()) === TOTAL, 'cache-info --by tenant changed the keyspace');

      // invalidate t1: exactly its 10 keys go; t10, t100, ... and the decoys stay.
      const one = await measured('one', () => tenantctl(`invalidate ${TARGET}`, 'invalidate', TARGET, '--json'));
      const oneJson = parseJson(`invalidate ${TARGET}`, one.stdout);
      const oneTotal = oneJson.tenants?.find((t) => t.tenant === TARGET)?.total;
      area.check(oneTotal === LAYOUT.length, `invalidate ${TARGET} reported ${oneTotal} keys deleted, expected ${LAYOUT.length}`);
      area.check((await countTenants(1, 1)) === 0, `invalidate ${TARGET} left some of ${TARGET}'s keys`);
      for (const nb of NEIGHBOURS) {
        const n = Number(nb.slice(1));
        area.check((await countTenants(n, n)) === LAYOUT.length, `invalidate ${TARGET} deleted keys of ${nb}`);
      }
      area.check((await decoysLeft()) === DECOYS.length, `invalidate ${TARGET} deleted a foreign decoy key`);
      area.check((await admin.dbsize()) === TOTAL - LAYOUT.length, `after invalidate ${TARGET}: ${await admin.dbsize()} keys, expected ${TOTAL - LAYOUT.length}`);
      await seedTenants(1, 1); // back to the seeded keyspace
      area.check((await admin.dbsize()) === TOTAL, 're-seeding t1 did not restore the keyspace');

      // The simple loop the services ship: one SCAN MATCH pass per family, DEL of each page.
      const loop = await measured('loop', () =>
        time(async () => {
          let deleted = 0;
          for (const family of SERVICE_FAMILIES) {
            let cursor = '0';
            do {
              const [next, keys] = await bare.scan(cursor, 'MATCH', `${family}:*`, 'COUNT', 100);
              cursor = next;
              if (keys.length) deleted += await bare.del(...keys);
            } while (cursor !== '0');
          }
          return deleted;
        }),
      );
      area.check((await countTenants(1, TENANTS)) === 0, 'the simple loop left family keys behind (benchmark bug)');
      loopForeignDeleted = DECOYS.length - (await decoysLeft());

      // invalidate-all --yes on a freshly seeded keyspace.
      await seed();
      const all = await measured('all', () => tenantctl('invalidate-all --yes', 'invalidate-all', '--yes', '--json'));
      const allJson = parseJson('invalidate-all --yes', all.stdout);
      area.check(allJson.total === FAMILY_KEYS, `invalidate-all reported ${allJson.total} keys deleted, seeded ${FAMILY_KEYS}`);
      area.check(allJson.complete !== false, 'invalidate-all reported complete=false');
      expectFamilies('invalidate-all', allJson.families, 'deleted');
      const familyLeft = await countTenants(1, TENANTS);
      area.check(familyLeft === 0, `invalidate-all left ${familyLeft} family keys`);
      const foreignLeft = (await countPopulated('sessions', SESSIONS)) + (await countPopulated('other', OTHER)) + (await decoysLeft());
      area.check(foreignLeft === FOREIGN, `invalidate-all deleted ${FOREIGN - foreignLeft} foreign keys`);
      const left = await admin.dbsize();
      area.check(left === FOREIGN, `after invalidate-all: ${left} keys, expected the ${FOREIGN} foreign ones`);
    }

    // ------------------------------------------------------------ the table
    const med = Object.fromEntries(measures.map((m) => [m, median(M[m].ms)]));
    const timeRow = (m, measure, extra) => ({ measure, value: fmtMs(med[m]), spread: fmtRange(M[m].ms), json: { ms: summary(M[m].ms), ...extra } });
    area.row({ ...timeRow('floor', 'floor: bare SCAN COUNT 1000 pass (in-process)'), goal: '(reference)' });
    area.row({ ...timeRow('loop', `simple loop: SCAN MATCH <family>:* COUNT 100 + DEL per page, ${SERVICE_FAMILIES.length} passes (in-process)`), goal: '(reference)' });
    const vsFloor = (m, measure, limit) => {
      const r = med[m] / med.floor;
      area.row({ ...timeRow(m, measure, { ratio_to_floor: round(r, 3) }), baseline: 'floor', baselineValue: fmtMs(med.floor), ratio: x(med[m], med.floor), goal: `<= ${limit.toFixed(2)}x floor`, met: r <= limit });
    };
    vsFloor('all', 'invalidate-all --yes (whole process)', 1.0);
    const speedup = med.loop / med.all;
    area.row({
      measure: 'invalidate-all --yes vs the simple loop', value: fmtMs(med.all), baseline: 'simple loop', baselineValue: fmtMs(med.loop),
      ratio: `${speedup.toFixed(2)}x faster`, goal: '>= 2.50x faster', met: speedup >= 2.5, json: { speedup: round(speedup, 3) },
    });
    vsFloor('dry', 'invalidate-all --dry-run --json (whole process)', 0.9);
    vsFloor('info', 'cache-info --json (whole process)', 0.9);
    vsFloor('by', 'cache-info --by tenant --json (whole process; MEMORY USAGE and TTL of every key)', 2.0);
    vsFloor('one', `invalidate ${TARGET} (${LAYOUT.length} keys among ${fmtInt(TOTAL)}; whole process)`, 0.5);

    const names = { all: 'invalidate-all --yes', dry: 'invalidate-all --dry-run', info: 'cache-info', by: 'cache-info --by tenant', one: `invalidate ${TARGET}`, floor: 'floor', loop: 'simple loop' };
    for (const m of ['all', 'dry', 'info', 'by', 'one']) {
      const peak = Math.max(...M[m].rssKb);
      area.row({ measure: `peak RSS: ${names[m]}`, value: fmtMb(peak), spread: fmtRange(M[m].rssKb, fmtMb), goal: '< 100 MB', met: kbToMb(peak) < 100, json: { rss_kb: M[m].rssKb } });
    }
    const slowStats = (m) => {
      const all = M[m].slow.flat();
      const max = all.length ? Math.max(...all.map((e) => e.us)) / 1000 : 0;
      const kinds = {};
      for (const e of all) {
        kinds[e.kind] ??= { entries: 0, max_ms: 0 };
        kinds[e.kind].entries++;
        kinds[e.kind].max_ms = Math.max(kinds[e.kind].max_ms, e.us / 1000);
      }
      return { entries: all.length, perRun: M[m].slow.map((r) => r.length), max, kinds };
    };
    const floorPerRun = slowStats('floor').perRun;
    const quietRounds = floorPerRun.map((n, i) => (n === 0 ? i : -1)).filter((i) => i >= 0);
    for (const m of ['all', 'dry', 'info', 'by', 'one', 'floor', 'loop']) {
      const s = slowStats(m);
      const isGoal = !['floor', 'loop'].includes(m);
      const inQuiet = quietRounds.reduce((a, i) => a + s.perRun[i], 0);
      area.row({
        measure: `SLOWLOG > 5 ms: ${names[m]}`,
        value: `${s.entries} in ${ROUNDS} runs${s.entries ? ` (max ${s.max.toFixed(1)} ms)` : ''}`,
        spread: s.entries ? `per run ${s.perRun.join('/')}` : '',
        baseline: isGoal ? 'floor pass, same rounds' : '',
        baselineValue: isGoal ? `per run ${floorPerRun.join('/')}` : '',
        goal: isGoal ? '0 entries' : '(reference)',
        met: isGoal ? s.entries === 0 : undefined,
        json: { slowlog: { ...s, entries_in_rounds_where_floor_logged_none: inQuiet } },
      });
      if (s.entries && isGoal) {
        const kinds = Object.entries(s.kinds).sort((a, b) => b[1].entries - a[1].entries).map(([k, v]) => `${k} x${v.entries} (max ${v.max_ms.toFixed(1)} ms)`).join(', ');
        area.note(`SLOWLOG, ${names[m]}: ${s.entries} entr${s.entries === 1 ? 'y' : 'ies'} over 5 ms in ${ROUNDS} runs, per run ${s.perRun.join('/')}, max ${s.max.toFixed(1)} ms: ${kinds}. ` +
          `${quietRounds.length ? `In the ${quietRounds.length} round(s) where the floor's own SCAN pass logged nothing: ${inQuiet}.` : 'The floor\'s own SCAN pass logged entries in every round (the machine stalled).'}` +
          `${s.entries === 1 ? ' A single entry is most likely a VM stall (intrinsic latency spikes up to ~100 ms were measured on this machine), not the tool.' : ''}`);
      }
    }
    if (slowStats('floor').entries) {
      area.note(`SLOWLOG, floor: plain SCAN COUNT 1000 calls (normally ~1 ms) logged ${slowStats('floor').entries} entries over 5 ms (per round ${floorPerRun.join('/')}, max ${slowStats('floor').max.toFixed(1)} ms): the machine stalled during those rounds; read the tool's entries of those rounds as partly noise`);
    }
    for (const m of ['all', 'dry', 'info', 'by', 'one', 'floor', 'loop']) {
      // Calls per command in the last round (those made inside a script included), and the server's main-thread CPU (median).
      const last = M[m].calls[M[m].calls.length - 1];
      const cpuMs = median(M[m].cpuMs);
      const calls = Object.entries(last).sort((a, b) => b[1].calls - a[1].calls).map(([c, s]) => `${fmtInt(s.calls)} ${c}`).join(', ');
      area.row({
        measure: `Redis calls (script-internal included): ${names[m]}`, value: calls || '-', spread: `server CPU ${fmtMs(cpuMs)}`, goal: '(reported)',
        json: { commandstats: M[m].calls, server_cpu_ms: M[m].cpuMs.map((v) => round(v, 1)) },
      });
    }
    if (loopForeignDeleted) area.note(`the simple loop (MATCH <family>:*) also deleted ${loopForeignDeleted} of the ${DECOYS.length} decoy keys that are not the tool's (e.g. tenant_config:t1:extra); tenantctl deleted none`);
    area.note(`seeding ${fmtInt(TOTAL)} keys (DEBUG POPULATE for sessions:/other:, a server-side Lua MSET loop for the tenants' keys) took ${fmtMs(median(seedTimes))} (median of ${seedTimes.length}); not part of any measure`);
    area.note('whole-process times include node start-up and module loading (~0.1-0.2 s); the floor and the simple loop run in this process on an open connection');
    Object.assign(area.data, {
      total_keys: TOTAL, family_keys: FAMILY_KEYS, tenants: TENANTS, foreign_keys: FOREIGN, decoys: DECOYS.length, rounds: ROUNDS,
      layout: LAYOUT, medians_ms: Object.fromEntries(measures.map((m) => [m, round(med[m], 1)])),
    });
  },
);
