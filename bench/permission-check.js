// Permission check latency: in-process PermissionService.check() on a cached
// business, next to the raw GET round trip of the same ioredis client measured
// in the same run (alternating blocks, so drift hits both alike). Goal: p99
// under 1 ms and under 1.5x the raw GET. Also the uncached path (cache miss ->
// registry -> compute -> cache) against PGlite and against PostgreSQL.
import pg from 'pg';
import { Tenantctl, catalogueHash, openRegistry } from '../dist/index.js';
import { fmt, printTable, startRedis } from './lib.js';

const CHECKS = Number(process.env.BENCH_CHECKS ?? 20_000);
const BLOCK = 1000;
const UNCACHED = Number(process.env.BENCH_UNCACHED ?? 300);
const PG_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const catalogue = {
  features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'],
  tiers: { pilot_pro: { name: 'pilot_pro', features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'], max_devices: null } },
};
const sub = { business_id: 'bench-biz', tier: 'pilot_pro', status: 'active', demo_expires_at: null, overrides: { has_ai: false, max_devices: 5 } };

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const us = (ms) => `${(ms * 1000).toFixed(1)} µs`;
const lap = async (fn) => {
  const s = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - s) / 1e6;
};

async function uncachedPath(t, label) {
  const times = [];
  for (let i = 0; i < UNCACHED; i++) {
    await t.permissions.invalidate(sub.business_id);
    times.push(await lap(() => t.permissions.check(sub.business_id, 'has_payroll')));
  }
  times.sort((a, b) => a - b);
  return [label, fmt(pct(times, 50)), fmt(pct(times, 99))];
}

const server = await startRedis();
const registry = await openRegistry({ kind: 'memory' });
await registry.replaceCatalogue(catalogue, catalogueHash(catalogue));
await registry.putSubscription(sub, null);
const t = new Tenantctl({ flags: { redisUrl: server.url }, env: {}, registry });

// Warm up: connection, JIT, the cache entry.
for (let i = 0; i < 2000; i++) await t.permissions.check(sub.business_id, 'has_payroll');
const client = (await t.cache.required()).conn.client;
const key = t.permissions.key(sub.business_id);

const checks = [];
const gets = [];
for (let done = 0; done < CHECKS; done += BLOCK) {
  for (let i = 0; i < BLOCK; i++) checks.push(await lap(() => t.permissions.check(sub.business_id, 'has_payroll')));
  for (let i = 0; i < BLOCK; i++) gets.push(await lap(() => client.get(key)));
}
checks.sort((a, b) => a - b);
gets.sort((a, b) => a - b);
const [c50, c99, g50, g99] = [pct(checks, 50), pct(checks, 99), pct(gets, 50), pct(gets, 99)];
printTable(`cached check() vs raw GET, ${CHECKS.toLocaleString()} each, same client, redis-server on loopback`, [
  ['', 'p50', 'p99', 'mean'],
  ['PermissionService.check() (cached)', us(c50), us(c99), us(checks.reduce((a, b) => a + b, 0) / checks.length)],
  ['raw GET of the same key', us(g50), us(g99), us(gets.reduce((a, b) => a + b, 0) / gets.length)],
  ['ratio check / GET', `${(c50 / g50).toFixed(2)}x`, `${(c99 / g99).toFixed(2)}x`, ''],
]);
const goal = c99 < 1 && c99 / g99 < 1.5;
console.log(`goal (p99 < 1 ms and < 1.5x raw GET p99): ${goal ? 'met' : 'NOT met'}`);

const rows = [['uncached check (miss -> registry -> compute -> cache)', 'p50', 'p99']];
rows.push(await uncachedPath(t, 'embedded PGlite (in memory)'));
await t.close();
await registry.close();

let dbName;
try {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await admin.connect();
  dbName = `tenantctl_bench_${process.pid}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const u = new URL(PG_URL);
  u.pathname = `/${dbName}`;
  const pgRegistry = await openRegistry({ kind: 'postgres', url: u.toString() });
  await pgRegistry.replaceCatalogue(catalogue, catalogueHash(catalogue));
  await pgRegistry.putSubscription(sub, null);
  const tp = new Tenantctl({ flags: { redisUrl: server.url }, env: {}, registry: pgRegistry });
  rows.push(await uncachedPath(tp, 'PostgreSQL on loopback (pg)'));
  await tp.close();
  await pgRegistry.close();
} catch (err) {
  rows.push([`PostgreSQL: skipped (${err.message})`, '-', '-']);
} finally {
  if (dbName) {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect().then(() => admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}
printTable(`uncached path, ${UNCACHED} checks each`, rows);
server.stop();
if (!goal) process.exitCode = 1;
