// Secret stripping (issue 7 §8): a tenant file with 40,000 secret values took
// 91 s to read (each stripped secret's line was found by scanning the file from
// the top: quadratic). Measured here whole-process, next to the same file with
// 40,000 plain (non-secret) values in the same run: the work a file of that size
// costs anyway. Median of BENCH_SECRETS_RUNS (default 5) interleaved rounds.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, childEnv, envInt, fmtMb, fmtMs, fmtRange, median, parseJson, round, runArea, runNodeOk, summary, tempDir, x } from './lib.js';

const RUNS = envInt('BENCH_SECRETS_RUNS', 5, 3);
const VALUES = 40_000;

await runArea('secrets-strip', `secret stripping: get-config --no-cache of a tenant file with ${VALUES.toLocaleString('en-US')} values, whole process, median of ${RUNS} interleaved rounds`, async (area) => {
  const cwd = tempDir('secrets');
  area.defer(() => rmSync(cwd, { recursive: true, force: true }));
  mkdirSync(path.join(cwd, 'tenants'));
  // The same shape and size: one value per line under `svc`, a secret key or a plain one.
  const file = (id, key) => ['client:', `  id: ${id}`, `  name: ${id}`, 'svc:', ...Array.from({ length: VALUES }, (_, i) => `  s${i}: {${key}: x}`)].join('\n');
  writeFileSync(path.join(cwd, 'tenants', 'secrets.yaml'), file('secrets', 'token'));
  writeFileSync(path.join(cwd, 'tenants', 'plain.yaml'), file('plain', 'color'));
  const env = childEnv({});
  const M = { secrets: { ms: [], rssKb: [] }, plain: { ms: [], rssKb: [] } };
  for (let round = 0; round <= RUNS; round++) {
    for (const id of ['plain', 'secrets']) {
      const r = await runNodeOk(`get-config ${id}`, [BIN, 'get-config', id, '--no-cache', '--json'], { cwd, env, timeoutMs: 120_000 });
      const svc = parseJson(`get-config ${id}`, r.stdout).config?.svc ?? {};
      // Every secret value is stripped (the key is gone from its block); every plain value is kept.
      const kept = Object.values(svc).filter((v) => v && typeof v === 'object' && Object.keys(v).length === 1).length;
      area.check(id === 'plain' ? kept === VALUES : kept === 0, `get-config ${id}: ${kept} of ${VALUES} values kept`);
      if (round > 0) {
        M[id].ms.push(r.ms);
        M[id].rssKb.push(r.rssKb);
      }
    }
  }
  const s = median(M.secrets.ms);
  const p = median(M.plain.ms);
  area.row({ measure: `the same file with ${VALUES.toLocaleString('en-US')} plain values (baseline)`, value: fmtMs(p), spread: fmtRange(M.plain.ms), goal: '(reference)', json: { ms: summary(M.plain.ms) } });
  area.row({
    measure: `${VALUES.toLocaleString('en-US')} secret values, each stripped with its file:line`, value: fmtMs(s), spread: fmtRange(M.secrets.ms),
    baseline: 'plain values', baselineValue: fmtMs(p), ratio: x(s, p), goal: '< 1 s (was 91 s)', met: s < 1000, json: { ms: summary(M.secrets.ms) },
  });
  area.row({ measure: 'peak RSS: secret values', value: fmtMb(Math.max(...M.secrets.rssKb)), goal: '(reported)', json: { rss_kb: M.secrets.rssKb } });
  Object.assign(area.data, { values: VALUES, runs: RUNS, medians_ms: { secrets: round(s, 1), plain: round(p, 1) } });
});
