import { closeSync, openSync, readFileSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { BackendUnavailableError } from '../errors.js';

/** What a lock file says about its holder. */
interface Holder {
  pid: number;
  host: string;
  since: string;
}

/** A lock file older than this with no readable holder is a leftover (a crash between create and write). */
const UNREADABLE_STALE_MS = 10_000;
const POLL_MS = 50;
/** A holder touches its lock file this often, so one on another host that stopped touching it is known to be dead. */
const TOUCH_MS = 5_000;
/** A lock from another host not touched for this long is a leftover (its holder touches it every TOUCH_MS). */
const OTHER_HOST_STALE_MS = 60_000;
/**
 * When this module was loaded (wall clock, as a holder's `since` is): every lock this process takes is
 * written after it, so a lock naming this pid from before it is a previous life's.
 */
const LOADED_AT = Date.now();
/** The lock files this process holds: a file naming this pid that is not among them is a previous life's (a container restarted with the same pid). */
const held = new Set<string>();

/**
 * A lock file held while one process uses the embedded registry (PGlite is
 * one process at a time: two at once lose writes and corrupt its indexes).
 * Created exclusively (`wx`); a holder that died (same host, pid gone) is
 * broken under a second exclusive file, so two waiters never both take over.
 * A waiter gives up after `timeoutMs` with "registry in use by pid N".
 */
export async function acquireProcessLock(file: string, timeoutMs: number, what: string, signal?: AbortSignal): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Given up by its owner (closed while it waited): not waited out to the timeout.
    if (signal?.aborted) throw new BackendUnavailableError('registry', `${what}: the wait for its lock was given up`, { reason: 'in-use' });
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies Holder));
      closeSync(fd);
      held.add(file);
      // Alive, for waiters on other hosts sharing the directory (a network volume): they cannot ask the kernel.
      const touch = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(file, now, now);
        } catch {
          /* gone: released or broken */
        }
      }, TOUCH_MS);
      touch.unref();
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        clearInterval(touch);
        held.delete(file);
        process.removeListener('exit', release);
        try {
          unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
      // Also on a plain process.exit (the CLI's own exit path); a kill -9 leaves it for takeover.
      process.once('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new BackendUnavailableError('registry', `cannot create the lock ${file}: ${(err as Error).message}`, { cause: err, reason: 'failed' });
      }
    }
    const holder = readHolder(file);
    if (holder === 'gone') continue;
    if (isStale(file, holder)) {
      breakStaleLock(file, holder);
      continue;
    }
    if (Date.now() >= deadline) {
      // This very process holds it: another open of the same directory here (a second Tenantctl, say), not another run.
      if (holder && holder.pid === process.pid && holder.host === hostname()) {
        throw new BackendUnavailableError('registry', `${what} is already open in this process (since ${holder.since}; waited ${timeoutMs} ms): an embedded registry is opened once per process, so share one Tenantctl (or hand its registry in)`, { reason: 'in-use' });
      }
      const who = holder ? `pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''} since ${holder.since}` : 'another process';
      throw new BackendUnavailableError('registry', `${what} is in use by ${who} (waited ${timeoutMs} ms, the registry timeout); try again when it is done`, { reason: 'in-use' });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function readHolder(file: string): Holder | undefined | 'gone' {
  try {
    const text = readFileSync(file, 'utf8');
    const h = JSON.parse(text) as Holder;
    return typeof h.pid === 'number' ? h : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return undefined; // being written, or garbage
  }
}

function isStale(file: string, holder: Holder | undefined): boolean {
  if (!holder) {
    try {
      return Date.now() - statSync(file).mtimeMs > UNREADABLE_STALE_MS;
    } catch {
      return false;
    }
  }
  if (holder.host !== hostname()) {
    // No kernel to ask: a live holder touches the file every TOUCH_MS.
    try {
      return Date.now() - statSync(file).mtimeMs > OTHER_HOST_STALE_MS;
    } catch {
      return false;
    }
  }
  // This pid, yet not a lock this process took (under any spelling of its path: it was written before this
  // process started): left by an earlier process that had the same pid, a container restarted.
  if (holder.pid === process.pid) return !held.has(file) && Date.parse(holder.since) < LOADED_AT;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  // Alive: but a process started after the lock was taken is not its holder (killed, and its pid reused
  // since: every command said "in use by pid N" for ever).
  const started = processStartedAt(holder.pid);
  return started !== undefined && started > Date.parse(holder.since) + START_SLACK_MS;
}

/** /proc's start times are in whole seconds of boot time plus clock ticks: a margin for rounding. */
const START_SLACK_MS = 2_000;
/** Clock ticks per second of /proc/<pid>/stat's start time (USER_HZ, 100 on Linux whatever the kernel's HZ). */
const USER_HZ = 100;

/** When a process started (ms since the epoch), from /proc on Linux; undefined where it cannot be told. */
function processStartedAt(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime 22.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    return Number.isFinite(ticks) && boot > 0 ? (boot + ticks / USER_HZ) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Removes a dead holder's lock, under a second exclusive file so only one waiter does it, and only if it is still that holder's. */
function breakStaleLock(file: string, seen: Holder | undefined): void {
  const breaker = `${file}.breaking`;
  let fd: number;
  try {
    fd = openSync(breaker, 'wx');
  } catch {
    // Someone else is breaking it; a breaker left by a crash is old and goes too.
    try {
      if (Date.now() - statSync(breaker).mtimeMs > UNREADABLE_STALE_MS) unlinkSync(breaker);
    } catch {
      /* gone already */
    }
    return;
  }
  try {
    const now = readHolder(file);
    const same = now !== 'gone' && JSON.stringify(now) === JSON.stringify(seen);
    if (same) unlinkSync(file);
  } catch {
    /* gone already */
  } finally {
    closeSync(fd);
    unlinkSync(breaker);
  }
}
