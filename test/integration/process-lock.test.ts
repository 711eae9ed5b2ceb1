import { mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireProcessLock } from '../../src/registry/process-lock.js';
import { BackendUnavailableError } from '../../src/errors.js';

/**
 * The embedded registry's lock file (one process at a time), for the cases a
 * kernel cannot settle: a lock naming this very pid that this process did not
 * take (a container restarted with the same pid), and a lock from another
 * host on a shared volume (its holder touches it while alive).
 */
describe('the embedded registry lock file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const holder = (pid: number, host = os.hostname()) => JSON.stringify({ pid, host, since: new Date().toISOString() });

  it('a lock naming this pid that this process never took is a previous life\'s: taken over', async () => {
    const file = path.join(dir, 'same-pid.lock');
    // Written before this process started (a container restarted with the same pid).
    writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date(Date.now() - process.uptime() * 1000 - 60_000).toISOString() }));
    const release = await acquireProcessLock(file, 300, 'the registry');
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    // One this process does hold is not taken twice: a second opener waits and gives up.
    const again = await acquireProcessLock(file, 200, 'the registry').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(BackendUnavailableError);
    // Said as what it is (it named this process's own pid as "in use by pid N": a second Tenantctl on the same directory).
    expect((again as Error).message).toMatch(/^the registry is already open in this process \(since .*; waited 200 ms\): an embedded registry is opened once per process/);
    // Nor under another spelling of its path (the library opening the registry by a relative path or a link).
    symlinkSync(dir, path.join(dir, 'link'));
    const other = await acquireProcessLock(path.join(dir, 'link', 'same-pid.lock'), 200, 'the registry').catch((e: unknown) => e);
    expect(other).toBeInstanceOf(BackendUnavailableError);
    expect((other as Error).message).toMatch(/already open in this process/);
    release();
  });

  it('a lock naming a pid of this host that is not running (its holder was killed) is taken over at once', async () => {
    const file = path.join(dir, 'dead-pid.lock');
    const { spawnSync } = await import('node:child_process');
    // A pid that was just alive and is gone now.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(file, holder(dead));
    const started = Date.now();
    const release = await acquireProcessLock(file, 5_000, 'the registry');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    release();
  });

  it('a lock naming a pid now held by a process started after the lock was taken (the holder was killed, its pid reused) is taken over at once; a live holder\'s is not', async () => {
    const file = path.join(dir, 'reused-pid.lock');
    const { spawn } = await import('node:child_process');
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      // Taken in 2020 by a process long gone; the pid is now this sleep's (it said "in use by pid N" for ever).
      writeFileSync(file, JSON.stringify({ pid: other.pid, host: os.hostname(), since: '2020-01-01T00:00:00.000Z' }));
      const started = Date.now();
      const release = await acquireProcessLock(file, 5_000, 'the registry');
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
      release();
      // The same pid with a lock taken after it started is its own: waited for, then "in use".
      writeFileSync(file, holder(other.pid!));
      const busy = await acquireProcessLock(file, 300, 'the registry').catch((e: unknown) => e);
      expect(busy).toBeInstanceOf(BackendUnavailableError);
      expect((busy as Error).message).toMatch(new RegExp(`in use by pid ${other.pid}`));
    } finally {
      other.kill();
      rmSync(file, { force: true });
    }
  });

  it('a lock from another host is waited for while it is touched, taken over once it has not been for a minute', async () => {
    const file = path.join(dir, 'other-host.lock');
    writeFileSync(file, holder(1, 'another-host.example'));
    const waited = await acquireProcessLock(file, 200, 'the registry').catch((e: unknown) => e);
    expect((waited as Error).message).toMatch(/in use by pid 1 on another-host\.example/);
    const old = new Date(Date.now() - 2 * 60_000);
    utimesSync(file, old, old);
    const release = await acquireProcessLock(file, 300, 'the registry');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, host: os.hostname() });
    release();
  });
});
