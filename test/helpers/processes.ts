/**
 * The built CLI as a process a fault test can watch and kill: started in the
 * background (runCli waits for the end), its stderr followed as it arrives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { BIN, cleanEnv, ROOT, type CliRun } from './setup.js';

export interface CliEnd extends CliRun {
  /** The signal that ended it (SIGKILL when the test killed it), else null. */
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited and its pipes are closed. */
  done: Promise<CliEnd>;
  /** Whether it has exited (on its own or killed). */
  exited(): boolean;
  /** stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves true once stderr matches, false if the process ends first or the wait runs out. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<boolean>;
  /** SIGKILL (no clean-up of any kind), then the end. */
  kill(): Promise<CliEnd>;
}

/** Starts the built CLI with the same clean environment as runCli, without waiting for it. */
export function startCli(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): CliProcess {
  const env: Record<string, string> = cleanEnv();
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const start = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let ended = false;
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => {
    err += d;
    for (const w of watchers) w();
  });
  // A hung child never outlives its test.
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const done = new Promise<CliEnd>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      ended = true;
      clearTimeout(killer);
      for (const w of watchers) w();
      resolve({ code, signal, stdout: out, stderr: err, ms: Date.now() - start });
    });
  });
  return {
    child,
    pid: child.pid!,
    done,
    exited: () => ended || child.exitCode !== null || child.signalCode !== null || isZombie(child.pid!),
    stdout: () => out,
    stderr: () => err,
    waitForStderr(pattern, timeoutMs = 30_000) {
      return new Promise((resolve) => {
        const finish = (value: boolean) => {
          watchers.delete(check);
          clearTimeout(timer);
          resolve(value);
        };
        const check = () => {
          if (pattern.test(err)) finish(true);
          else if (ended) finish(false);
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        watchers.add(check);
        check();
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return done;
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it is true (returns true) or `timeoutMs` runs out (returns false). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** The pid of a process that has exited (for a lock file left by a dead holder). */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

/**
 * Whether a child has exited already, though this process has not heard yet (it learns of an exit in a later
 * turn of its event loop): a zombie in /proc (Linux; elsewhere, unknown: false). A signal sent to it then
 * lands on a process that finished (a review of a CI failure: exit 0 "after the signal", the child a zombie
 * when it was sent, 2 times in 143 under load; the tool had answered and exited before it).
 */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
