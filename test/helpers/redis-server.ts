import { afterAll, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export interface RedisServer {
  port: number;
  url: string;
  proc: ChildProcess;
  dir: string;
  /** Runs a command with redis-cli semantics over a raw socket (no ioredis involved). */
  command(...args: string[]): Promise<string>;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** Starts `redis-server` from PATH on a free loopback port, nothing persisted. */
export async function startRedis(extraArgs: string[] = [], options: { port?: number; tlsPort?: boolean } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-redis-'));
  const portArgs = options.tlsPort ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
  const proc = spawn(
    'redis-server',
    [...portArgs, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`redis-server did not start:\n${log}`)), 10_000);
    const check = () => {
      if (/Ready to accept connections/.test(log)) {
        clearTimeout(deadline);
        resolve();
      } else if (proc.exitCode !== null) {
        clearTimeout(deadline);
        reject(new Error(`redis-server exited:\n${log}`));
      } else setTimeout(check, 20);
    };
    check();
  });
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc,
    dir,
    command: (...args) => rawCommand(port, args),
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGCONT');
        proc.kill('SIGKILL');
        await new Promise((r) => proc.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** One RESP command over a plain socket; returns the raw reply text. */
export function rawCommand(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.setTimeout(5000, () => {
      sock.destroy();
      reject(new Error('raw command timed out'));
    });
    sock.on('data', (d) => {
      buf += d;
      sock.end();
    });
    sock.on('end', () => resolve(buf));
    sock.on('error', reject);
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/**
 * A redis-server of the suite's own (for tests that delete every tenant's
 * keys, or flush), started before its tests and stopped after, with a plain
 * ioredis client for arranging and checking keys. Read the fields inside tests.
 */
export function useOwnRedis(): { server: RedisServer; client: import('ioredis').Redis } {
  const handle = {} as { server: RedisServer; client: import('ioredis').Redis };
  beforeAll(async () => {
    const { Redis } = await import('ioredis');
    handle.server = await startRedis();
    handle.client = new Redis(handle.server.url);
  });
  afterAll(async () => {
    handle.client?.disconnect();
    await handle.server?.stop();
  });
  return handle;
}
