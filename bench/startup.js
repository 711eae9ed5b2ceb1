// Start-up benchmark: how long a whole `tenantctl` process takes for the
// commands people run most, next to the floor of starting node itself.
// A cache hit must never pay for the registry (PGlite / pg are loaded lazily).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, printTable, ratio, startRedis } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'tenantctl.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const server = await startRedis();
const cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-bench-startup-'));
cpSync(path.join(root, 'tenants'), path.join(cwd, 'tenants'), { recursive: true });
const env = { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: server.url };

const run = (args) => {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
};
const median = (args) => {
  const times = Array.from({ length: RUNS }, () => run(args)).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};

run([bin, 'migrate-yaml']); // creates the embedded registry (first open runs initdb)
run([bin, 'get-config', 'acme']); // warms the cache entry
const floor = median(['-e', '0']);
const rows = [['command', 'median', 'vs node -e 0']];
for (const args of [['--help'], ['get-config', 'acme'], ['get-config', 'acme', '--no-cache'], ['test-redis'], ['invalidate', 'acme', '--dry-run']]) {
  const ms = median([bin, ...args]);
  rows.push([`tenantctl ${args.join(' ')}`, fmt(ms), ratio(ms, floor)]);
}
rows.push(['node -e 0 (floor)', fmt(floor), '1.00x']);
printTable(`whole-process wall time, median of ${RUNS} runs`, rows);
rmSync(cwd, { recursive: true, force: true });
server.stop();
