/**
 * The one module that owns every test default: where the shared Redis is,
 * the PostgreSQL to use, fresh workspaces and databases, and running the CLI.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { expect, inject } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'tenantctl.js');

/** The redis-server the global setup started (shared: use fresh tenant ids per test). */
export const sharedRedisUrl = () => inject('redisUrl');

/** The PostgreSQL server for tests, when there is one (CI sets TEST_DATABASE_URL). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;

/** A unique suffix for ids, prefixes and database names. */
export const uniq = (prefix = 't') => `${prefix}${randomBytes(4).toString('hex')}`;

export interface Workspace {
  dir: string;
  tenantsDir: string;
  registryDir: string;
  writeTenant(id: string, yaml: string, file?: string): string;
  cleanup(): void;
}

/**
 * A temp working directory with a `tenants/` folder and a ready embedded
 * registry (a copy of the pre-initialised PGlite template).
 */
export function workspace(tenants: Record<string, string> = {}, options: { registry?: boolean } = {}): Workspace {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-ws-'));
  const tenantsDir = path.join(dir, 'tenants');
  const registryDir = path.join(dir, '.tenantctl', 'registry');
  mkdirSync(tenantsDir, { recursive: true });
  if (options.registry !== false) cpSync(inject('pgliteTemplate'), registryDir, { recursive: true });
  const ws: Workspace = {
    dir,
    tenantsDir,
    registryDir,
    writeTenant(id, yaml, file = `${id}.yaml`) {
      const p = path.join(tenantsDir, file);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, yaml);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (const [id, yaml] of Object.entries(tenants)) ws.writeTenant(id, yaml);
  return ws;
}

/**
 * The environment of a CLI child process: nothing inherited but PATH and HOME
 * (no REDIS_URL or DATABASE_URL surprises), no colour, and the tool's caches
 * in the run's own directory (never the user's ~/.cache).
 */
export function cleanEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), NO_COLOR: '1', XDG_CACHE_HOME: inject('cacheHome') };
}

/** A minimal valid tenant file. */
export const tenantYaml = (id: string, name = `Tenant ${id}`, extra = '') => `client:\n  id: ${id}\n  name: ${name}\n${extra}`;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the built CLI in a child process with a clean environment (nothing
 * leaks in from the machine's REDIS_URL or DATABASE_URL).
 */
export function runCli(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  const env: Record<string, string> = cleanEnv();
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - start });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh PostgreSQL database on the test server, dropped by the returned cleanup. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
  const { default: pg } = await import('pg');
  const name = uniq('tenantctl_test_');
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(TEST_DATABASE_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A failed run printed exactly one line on stderr, and no stack trace. */
export function expectOneLineError(r: CliRun): void {
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`), answering `answer`
 * once `prompt` appears, as a person at a terminal would (or calling it: to
 * signal the process, say).
 */
export function runCliOnTerminal(args: string[], prompt: RegExp, answer: string | (() => void), env: Record<string, string> = {}, options: { cwd?: string } = {}): Promise<CliRun> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', quoted, '/dev/null'], { cwd: options.cwd, env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), NO_COLOR: '1', TERM: 'dumb', XDG_CACHE_HOME: inject('cacheHome'), ...env } });
    let out = '';
    let answered = false;
    child.stdout.on('data', (d) => {
      out += d;
      if (!answered && prompt.test(out)) {
        answered = true;
        if (typeof answer === 'string') child.stdin.write(answer);
        else answer();
      }
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout: out, stderr: '', ms: Date.now() - start });
    });
  });
}
