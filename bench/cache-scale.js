// Scale benchmark: cache-info counts, invalidate (one tenant) and invalidate-all
// over a large keyspace, each next to a baseline measured in the same run:
//   - the raw SCAN floor: walking the keyspace with nothing done per key;
//   - the naive approaches: one SCAN MATCH pass per key pattern, DEL one key per call.
// BENCH_KEYS (default 1,000,000) sets the keyspace size; 10% are the tool's keys.
import { Redis } from 'ioredis';
import { Tenantctl } from '../dist/index.js';
import { best, fmt, printTable, ratio, startRedis, time } from './lib.js';

const TOTAL = Number(process.env.BENCH_KEYS ?? 1_000_000);
const TOOL = Math.round(TOTAL / 10);
const server = await startRedis();
const redis = new Redis(server.url);
const t = new Tenantctl({ flags: { redisUrl: server.url, redisTimeout: 10_000 }, env: {}, cwd: process.cwd() });

async function seed() {
  await redis.flushall();
  // DEBUG POPULATE n prefix -> keys prefix:0 .. prefix:n-1 (fast server-side seeding).
  await redis.call('DEBUG', 'POPULATE', String(TOTAL - TOOL), 'sessions');
  await redis.call('DEBUG', 'POPULATE', String(TOOL / 2), 'tenant_config');
  await redis.call('DEBUG', 'POPULATE', String(TOOL / 4), 'permissions');
  await redis.call('DEBUG', 'POPULATE', String(TOOL / 4), 'dashboard_kpis');
}

/** The floor: a full SCAN (optionally MATCH) that does nothing with the keys. */
async function rawScan(match) {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = match ? await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000) : await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

/** Naive per-tenant invalidation: one MATCH pass per family pattern, one DEL per key (what the services do). */
async function naiveInvalidate(tenant) {
  let n = 0;
  for (const f of t.keys.families) {
    for (const p of f.patterns) {
      let cursor = '0';
      const match = p.replace('{tenant}', tenant);
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        for (const k of keys) n += await redis.del(k);
      } while (cursor !== '0');
    }
  }
  return n;
}

await seed();
console.log(`keyspace: ${TOTAL.toLocaleString()} keys, ${TOOL.toLocaleString()} of them in the tool's families; redis-server on loopback`);
const cache = await t.cache.required();

const floor = await best(3, () => rawScan());
const counts = await best(3, () => t.admin.countFamilies(cache));
const floorMatch = await best(3, () => rawScan('*12345*'));
const one = await best(3, async () => {
  await redis.set('tenant_config:12345', '{}');
  return t.admin.invalidateTenants(['12345']);
});
const naiveOne = await time(async () => {
  await redis.set('tenant_config:12345', '{}');
  return naiveInvalidate('12345');
});
const dryAll = await best(2, () => t.admin.invalidateAll({ dryRun: true }));
const all = await time(() => t.admin.invalidateAll());
const verified = await t.admin.countFamilies(cache);
const left = await redis.dbsize();

printTable('results (best of several runs where repeatable)', [
  ['operation', 'time', 'baseline', 'baseline time', 'ratio'],
  ['cache-info exact family counts', fmt(counts.ms), 'raw SCAN floor', fmt(floor.ms), ratio(counts.ms, floor.ms)],
  ['invalidate one tenant (all 12 families)', fmt(one.ms), 'one raw SCAN MATCH pass', fmt(floorMatch.ms), ratio(one.ms, floorMatch.ms)],
  ['invalidate one tenant (all 12 families)', fmt(one.ms), 'naive: a pass per pattern, DEL per key', fmt(naiveOne.ms), `${(naiveOne.ms / one.ms).toFixed(1)}x faster`],
  ['invalidate-all --dry-run (count)', fmt(dryAll.ms), 'raw SCAN floor', fmt(floor.ms), ratio(dryAll.ms, floor.ms)],
  [`invalidate-all (UNLINK ${all.value.total.toLocaleString()} keys)`, fmt(all.ms), 'raw SCAN floor', fmt(floor.ms), ratio(all.ms, floor.ms)],
]);
const remainingTool = Object.values(verified).reduce((a, b) => a + b, 0);
console.log(`\nchecks: counted ${Object.values(counts.value).reduce((a, b) => a + b, 0)} tool keys (expected ${TOOL}); invalidate-all removed ${all.value.total} (dry run counted ${dryAll.value.total}); left ${remainingTool} tool keys and ${left} keys in all (expected ${TOTAL - TOOL})`);
if (all.value.total !== dryAll.value.total || remainingTool !== 0 || left !== TOTAL - TOOL) process.exitCode = 1;

await t.close();
redis.disconnect();
server.stop();
