// Runs every benchmark area in turn (npm run bench = build, then this), prints
// each area's table, a summary of goals met, and writes bench/results/latest.json.
// Exit code: 0 when every area ran and every result was right, whether or not
// its goals were met; non-zero when an area could not run or found a wrong result.
//
// Knobs for a quick run (defaults in brackets): BENCH_KEYS [2000000] keyspace of
// cache-bulk, BENCH_TENANTS [10000] tenant files of migration, BENCH_ROUNDS [3]
// interleaved rounds of both, BENCH_STARTUP_RUNS [15], BENCH_READS [20000],
// BENCH_DATABASE_URL [postgres://postgres@127.0.0.1:5432/test] where scratch databases are created.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESULTS_DIR, ROOT, median, printTable, resultsFile, round, startRedis } from './lib.js';

const AREAS = [
  ['cache-bulk', 'cache-bulk.js'],
  ['migration', 'migration.js'],
  ['startup', 'startup-time.js'],
  ['cached-reads', 'cached-reads.js'],
  ['watch-latency', 'watch-latency.js'],
  ['secrets-strip', 'secrets-strip.js'],
];

const git = (...args) => {
  try {
    // --no-optional-locks: never take the index lock (another engineer may be committing).
    return execFileSync('git', ['--no-optional-locks', ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
};
const redisVersion = (() => {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
})();

/**
 * The machine's phase when the run starts: its speed changes severalfold over hours (a loopback
 * round trip 21 µs one afternoon, 98 µs the next), and whole-process ratios against an in-process floor
 * move with it. Said with the results, so a reader can tell a slow phase from a slow change.
 */
async function machinePhase() {
  const starts = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    starts.push(performance.now() - t0);
  }
  const server = await startRedis();
  const { Redis } = await import('ioredis');
  const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const pings = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = performance.now();
      await client.ping();
      if (i >= 200) pings.push(performance.now() - t0);
    }
    return { node_e0_ms: round(median(starts), 1), loopback_ping_us: round(median(pings) * 1000, 0) };
  } finally {
    client.disconnect();
    await server.stop();
  }
}

mkdirSync(RESULTS_DIR, { recursive: true });
const phase = await machinePhase().catch(() => undefined);
if (phase) console.log(`machine phase: node -e 0 ${phase.node_e0_ms} ms, a loopback PING ${phase.loopback_ping_us} µs (medians)`);
for (const [name] of AREAS) rmSync(path.join(RESULTS_DIR, `${name}.json`), { force: true });
const started = Date.now();
const areas = [];
for (const [name, file] of AREAS) {
  console.log(`\n=== ${file}`);
  const t0 = Date.now();
  const loadBefore = os.loadavg()[0];
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', file)], { stdio: 'inherit', cwd: ROOT });
  const seconds = (Date.now() - t0) / 1000;
  const result = resultsFile(name) ?? { area: name, status: 'could-not-run', error: `${file} wrote no results (exit ${r.status ?? r.signal})`, goals: { met: 0, not_met: 0 } };
  if (r.status !== 0 && result.status === 'ok') result.status = 'could-not-run';
  // The 1-minute load average around the area: above the core count, other work competed for the CPUs.
  areas.push({ ...result, script: file, exit_code: r.status, seconds, load_average: { before: round(loadBefore), after: round(os.loadavg()[0]) } });
}
const wall = (Date.now() - started) / 1000;

console.log('\n=== summary');
printTable([
  ['area', 'status', 'goals met', 'goals NOT met', 'wall time', 'load avg before / after'],
  ...areas.map((a) => [a.area, a.status, a.goals.met, a.goals.not_met, `${a.seconds.toFixed(0)} s`, `${a.load_average.before.toFixed(1)} / ${a.load_average.after.toFixed(1)}`]),
  ['total', areas.every((a) => a.status === 'ok') ? 'ok' : 'FAILED', areas.reduce((n, a) => n + a.goals.met, 0), areas.reduce((n, a) => n + a.goals.not_met, 0), `${wall.toFixed(0)} s`, ''],
]);
const cores = os.cpus().length;
const busy = areas.filter((a) => Math.max(a.load_average.before, a.load_average.after) > cores);
if (busy.length) {
  console.log(`\nWARNING: the 1-minute load average exceeded the ${cores} cores around ${busy.map((a) => a.area).join(', ')}: other processes competed for the CPUs, ` +
    'so those figures are slower and noisier than on a quiet machine (the ratios, measured side by side, suffer less than the absolute times)');
}
const notMet = areas.flatMap((a) => (a.rows ?? []).filter((r) => r.met === false).map((r) => `${a.area}: ${r.measure}: ${r.value} (goal ${r.goal}${r.ratio ? `, ratio ${r.ratio}` : ''})`));
if (notMet.length) console.log(`\ngoals not met (reported, not a failure):\n  ${notMet.join('\n  ')}`);
for (const a of areas.filter((x) => x.status !== 'ok')) console.log(`\n${a.area}: ${a.status}${a.error ? `: ${a.error}` : ''}${a.problems?.length ? `\n  ${a.problems.join('\n  ')}` : ''}`);

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const dirty = git('status', '--porcelain', '--', 'src', 'bin');
writeFileSync(
  path.join(RESULTS_DIR, 'latest.json'),
  `${JSON.stringify({
    generated_at: new Date(started).toISOString(),
    wall_seconds: Math.round(wall),
    status: areas.every((a) => a.status === 'ok') ? 'ok' : 'failed',
    tenantctl_version: pkg.version,
    git: { commit: git('rev-parse', 'HEAD'), uncommitted_changes_in_src: dirty === undefined ? undefined : dirty.length > 0 },
    machine_busy: busy.length > 0,
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 1e9), node: process.version, redis_server: redisVersion, platform: `${os.platform()} ${os.release()}`, phase },
    settings: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_')).map(([k, v]) => [k, v.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:****@')])),
    areas,
  }, null, 2)}\n`,
);
console.log(`\nwall time ${wall.toFixed(0)} s; results in ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'latest.json'))}`);
process.exitCode = areas.every((a) => a.status === 'ok') ? 0 : 1;
