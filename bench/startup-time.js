// Start-up (issue 8 §4): whole-process wall time of the commands people run
// most, next to the floor of starting node itself, median of BENCH_STARTUP_RUNS
// (default 15) interleaved rounds (node -e 0, --version, cache hit, cache miss,
// then again), each process under /usr/bin/time for its peak RSS.
// The project is a copy of the example tenants migrated into the embedded
// registry (.tenantctl/registry); the cache entry of acme is written once
// with `get-config acme --warm` (CLI reads never populate the cache otherwise).
import { cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import {
  BIN, ROOT, childEnv, envInt, fmtMb, fmtMs, fmtRange, median, parseJson, round, runArea, runNodeOk, startRedis, summary, tempDir,
} from './lib.js';

const RUNS = envInt('BENCH_STARTUP_RUNS', 15, 3);
const VERSION = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

await runArea('startup', `start-up: whole-process wall time, median of ${RUNS} interleaved runs each, redis-server on loopback, embedded PGlite registry`, async (area) => {
  const server = await startRedis();
  area.defer(() => server.stop());
  const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  area.defer(() => redis.disconnect());
  const cwd = tempDir('startup');
  area.defer(() => rmSync(cwd, { recursive: true, force: true }));
  cpSync(path.join(ROOT, 'tenants'), path.join(cwd, 'tenants'), { recursive: true });
  // acme's openai block has no api_key: it resolves from the shared OPENAI_API_KEY as the services do,
  // and --warm writes nothing while a secret does not resolve. A dummy value, never used.
  const env = childEnv({ REDIS_URL: server.url, OPENAI_API_KEY: 'bench-dummy-not-a-key' });
  const node = (label, args) => runNodeOk(label, args, { cwd, env, timeoutMs: 60_000 });

  area.progress('migrating the example tenants into a new embedded registry');
  const init = await node('migrate-yaml (new embedded registry)', [BIN, 'migrate-yaml', '--json']);
  const warm = await node('get-config acme --warm', [BIN, 'get-config', 'acme', '--warm', '--json']);
  area.check(parseJson('get-config --warm', warm.stdout).source === 'database', 'get-config acme --warm did not read the migrated registry');
  area.check((await redis.exists('tenant_config:acme')) === 1, 'get-config acme --warm did not write tenant_config:acme');

  const commands = [
    { id: 'node', label: 'node -e 0 (floor)', args: ['-e', '0'], verify: (r) => r.stdout === '' },
    { id: 'version', label: 'tenantctl --version', args: [BIN, '--version'], verify: (r) => r.stdout.trim() === VERSION },
    { id: 'hit', label: 'tenantctl get-config acme (cache hit)', args: [BIN, 'get-config', 'acme', '--json'], verify: (r) => parseJson('get-config', r.stdout).source === 'cache' },
    {
      id: 'miss', label: 'tenantctl get-config acme --no-cache (embedded registry)', args: [BIN, 'get-config', 'acme', '--no-cache', '--json'],
      verify: (r) => parseJson('get-config --no-cache', r.stdout).source === 'database',
    },
  ];
  const M = Object.fromEntries(commands.map((c) => [c.id, { ms: [], rssKb: [] }]));
  for (let round = 0; round <= RUNS; round++) {
    // Round 0 warms the file system cache and is not recorded.
    for (const c of commands) {
      const r = await node(c.label, c.args);
      if (!area.check(c.verify(r), `${c.label}: unexpected output ${JSON.stringify(r.stdout.slice(0, 200))}`)) continue;
      if (round > 0) {
        M[c.id].ms.push(r.ms);
        M[c.id].rssKb.push(r.rssKb);
      }
    }
  }
  area.check((await redis.exists('tenant_config:acme')) === 1, 'tenant_config:acme disappeared during the runs');

  const med = (id) => median(M[id].ms);
  const row = (id, label, extra) => ({ measure: label, value: fmtMs(med(id)), spread: fmtRange(M[id].ms), json: { ms: summary(M[id].ms), rss_kb: M[id].rssKb }, ...extra });
  area.row(row('node', 'node -e 0 (floor)', { goal: '(reference)' }));
  const above = med('version') - med('node');
  area.row(row('version', 'tenantctl --version', {
    baseline: 'node -e 0', baselineValue: fmtMs(med('node')), ratio: `+${fmtMs(above)}`, goal: '< 40 ms above node -e 0', met: above < 40,
  }));
  area.row(row('hit', 'tenantctl get-config acme (cache hit)', {
    baseline: 'node -e 0', baselineValue: fmtMs(med('node')), ratio: `+${fmtMs(med('hit') - med('node'))}`, goal: '< 100 ms', met: med('hit') < 100,
  }));
  area.row(row('miss', 'tenantctl get-config acme --no-cache (embedded registry)', {
    baseline: 'node -e 0', baselineValue: fmtMs(med('node')), ratio: `+${fmtMs(med('miss') - med('node'))}`, goal: '< 400 ms', met: med('miss') < 400,
  }));
  for (const c of commands) {
    area.row({ measure: `peak RSS: ${c.label}`, value: fmtMb(Math.max(...M[c.id].rssKb)), spread: fmtRange(M[c.id].rssKb, fmtMb), goal: '(reported)', json: { rss_kb: M[c.id].rssKb } });
  }
  area.note(`first run of the project (migrate-yaml creating .tenantctl/registry, unpacked from the build's PGlite data directory): ${fmtMs(init.ms)}, ${fmtMb(init.rssKb)} peak; not part of any measure`);
  area.note('the commands run with --json so their answer (source: cache / database) is checked; each child has REDIS_URL and a dummy OPENAI_API_KEY (so --warm can write acme), no DATABASE_URL');
  Object.assign(area.data, { runs: RUNS, medians_ms: Object.fromEntries(commands.map((c) => [c.id, round(med(c.id), 1)])) });
});
