// Shared helpers for the benchmarks: an own redis-server on a free loopback
// port, whole-process runs under /usr/bin/time (wall time and peak RSS),
// medians and percentiles, and one results table per area with goal rows.
//
// Exit codes of an area script (read by run-all.js):
//   0  ran; every result was right (goals may or may not be met: a missed goal is reported, not a failure)
//   1  a result was wrong (wrong counts, keys left that should be gone, foreign keys deleted, ...)
//   2  it could not run (a server did not start, a command crashed, a timeout)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'tenantctl.js');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
export const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Reads a whole-number setting from the environment (a bad value is a usage error, not a silent default). */
export function envInt(name, fallback, min = 1) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

// ---------------------------------------------------------------- processes

const started = new Set();
process.on('exit', () => {
  // Last resort: never leave a redis-server of ours behind (each is killed by its own pid).
  for (const p of started) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts a throw-away redis-server on loopback (DEBUG enabled for fast seeding); stop() kills it. */
export async function startRedis(extraArgs = []) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-bench-redis-'));
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--enable-debug-command', 'yes', '--slowlog-max-len', '4096', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.add(proc);
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s: ${log}`)), 10_000);
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${log}`));
    };
    proc.on('exit', onExit);
    const onData = (d) => {
      log += d;
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
  });
  proc.stdout.resume();
  proc.stderr.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    stop: () => {
      proc.kill('SIGKILL');
      started.delete(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `node <args>` as a whole process under `/usr/bin/time -f %M`, so the
 * peak RSS of the node process is known. Returns wall time (ms, measured
 * around the spawn), peak RSS (KB), exit code, stdout and stderr. A run over
 * `timeoutMs` is killed (its whole process group) and reported with `timedOut`.
 */
export async function runNode(args, { cwd, env, timeoutMs = 180_000 } = {}) {
  const rssFile = path.join(os.tmpdir(), `tenantctl-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const start = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, ...args], {
    cwd,
    env: env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out = [];
  const err = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, timeoutMs);
  const [code, signal] = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  clearTimeout(timer);
  let rssKb = NaN;
  try {
    // The last line holds %M; a line before it may say "Command exited with non-zero status N".
    const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
    rssKb = Number(lines[lines.length - 1]);
  } catch {
    /* killed before time wrote it */
  }
  rmSync(rssFile, { force: true });
  return { ms, rssKb, code, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** Thrown when a benchmark cannot run at all (exit code 2). */
export class CouldNotRun extends Error {}

/** runNode, then insists on exit code 0 (anything else: the benchmark could not run). */
export async function runNodeOk(label, args, options) {
  const r = await runNode(args, options);
  if (r.timedOut) throw new CouldNotRun(`${label}: timed out after ${options?.timeoutMs ?? 180_000} ms`);
  if (r.code !== 0) {
    throw new CouldNotRun(`${label}: exited ${r.code ?? r.signal}\n  stderr: ${r.stderr.trim().split('\n').slice(-8).join('\n  ')}`);
  }
  return r;
}

/** Parses a command's JSON stdout, or throws CouldNotRun saying what came out instead. */
export function parseJson(label, text) {
  try {
    return JSON.parse(text);
  } catch {
    throw new CouldNotRun(`${label}: stdout is not JSON: ${text.slice(0, 300)}`);
  }
}

/** A minimal environment for a child process (no inherited REDIS_URL / DATABASE_URL surprises). */
export function childEnv(extra = {}) {
  return { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...extra };
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), `tenantctl-bench-${prefix}-`));
}

// ---------------------------------------------------------------- statistics

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summary(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.map((v) => round(v, 3)) };
}

export const round = (n, d = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : n);

export async function time(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

// ---------------------------------------------------------------- formatting

export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** KB (as /usr/bin/time reports, 1024 bytes) to decimal MB. */
export const kbToMb = (kb) => (kb * 1024) / 1e6;
export const fmtMb = (kb) => (Number.isFinite(kb) ? `${kbToMb(kb).toFixed(0)} MB` : '-');
export const fmtRange = (values, f = fmtMs) => (values.length > 1 ? `${f(Math.min(...values))} – ${f(Math.max(...values))}` : '');
export const fmtInt = (n) => Number(n).toLocaleString('en-US');

// ---------------------------------------------------------------- one area's results

/**
 * One area's results: rows of (measure, value, baseline measured in the same
 * run, ratio, goal, met / NOT met), the wrong results found, and notes.
 * Printed as one table and saved to bench/results/<name>.json for run-all.
 */
export class Area {
  constructor(name, title) {
    this.name = name;
    this.title = title;
    this.rows = [];
    this.problems = [];
    this.notes = [];
    this.data = {};
    this.cleanups = [];
    this.error = undefined;
    this.startedAt = Date.now();
  }

  /**
   * A table row. `met`: true / false for a goal, undefined for a reference row.
   * Strings are shown as given; `json` is what goes into the summary file.
   */
  row({ measure, value, spread = '', baseline = '', baselineValue = '', ratio = '', goal = '', met, json }) {
    this.rows.push({ measure, value, spread, baseline, baselineValue, ratio, goal, met, json });
  }

  /** A wrong result: the run goes on (so every problem is found), the script exits 1. */
  problem(message) {
    this.problems.push(message);
    process.stderr.write(`WRONG RESULT [${this.name}]: ${message}\n`);
  }

  check(ok, message) {
    if (!ok) this.problem(message);
    return ok;
  }

  note(message) {
    this.notes.push(message);
  }

  /** Registers a cleanup, run in reverse order at the end (even after a failure). */
  defer(fn) {
    this.cleanups.push(fn);
  }

  progress(message) {
    process.stderr.write(`[${this.name} ${((Date.now() - this.startedAt) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);
  }

  print() {
    console.log(`\n${this.title}`);
    const head = ['measure', 'median', 'runs (min – max)', 'baseline (same run)', 'baseline median', 'ratio', 'goal', 'result'];
    const body = this.rows.map((r) => [r.measure, r.value, r.spread, r.baseline, r.baselineValue, r.ratio, r.goal, r.met === undefined ? '-' : r.met ? 'met' : 'NOT met']);
    printTable([head, ...body]);
    for (const n of this.notes) console.log(`  note: ${n}`);
    for (const p of this.problems) console.log(`  WRONG RESULT: ${p}`);
    if (this.error) console.log(`  COULD NOT RUN: ${this.error}`);
  }

  toJson() {
    return {
      area: this.name,
      title: this.title,
      status: this.error ? 'could-not-run' : this.problems.length ? 'wrong-result' : 'ok',
      wall_seconds: round((Date.now() - this.startedAt) / 1000, 1),
      goals: {
        met: this.rows.filter((r) => r.met === true).length,
        not_met: this.rows.filter((r) => r.met === false).length,
      },
      rows: this.rows.map((r) => ({
        ...r.json, measure: r.measure, value: r.value, baseline: r.baseline || undefined, baseline_value: r.baselineValue || undefined,
        ratio: r.ratio || undefined, goal: r.goal || undefined, met: r.met,
      })),
      problems: this.problems,
      error: this.error,
      notes: this.notes,
      data: this.data,
    };
  }
}

export function printTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const [j, r] of rows.entries()) {
    console.log(r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd());
    if (j === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

/**
 * Runs one area: `fn(area)` measures and fills the rows; then the table is
 * printed, the JSON written, cleanups run, and the exit code set
 * (0 ran fine, 1 a wrong result, 2 could not run).
 */
export async function runArea(name, title, fn) {
  const area = new Area(name, title);
  let interrupted = false;
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    area.error = `interrupted by ${sig}`;
    cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  const cleanup = async () => {
    while (area.cleanups.length) {
      const c = area.cleanups.pop();
      try {
        await c();
      } catch (err) {
        process.stderr.write(`[${name}] cleanup failed: ${err.message}\n`);
      }
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await fn(area);
  } catch (err) {
    area.error = err instanceof CouldNotRun ? err.message : err.stack ?? String(err);
  }
  await cleanup();
  area.print();
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(path.join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(area.toJson(), null, 2)}\n`);
  process.exitCode = area.error ? 2 : area.problems.length ? 1 : 0;
  return area;
}

export function resultsFile(name) {
  const f = path.join(RESULTS_DIR, `${name}.json`);
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
}

/** ratio a / b as "1.23x". */
export const x = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-');

// ---------------------------------------------------------------- PostgreSQL scratch databases

/** Creates a scratch database `bench_<random>` and returns its URL plus drop(). */
export async function createScratchDb(pg, label = 'bench') {
  const name = `${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`.replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    drop: async () => {
      const a = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
