import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheProvider } from '../../src/cache/cache-provider.js';
import { RedisConnection } from '../../src/cache/redis-connection.js';
import { BackendUnavailableError } from '../../src/errors.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const TIMEOUT = 300;
/** Start-up of a connection attempt plus scheduling noise on a loaded 2-core machine. */
const MARGIN = 700;

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = Date.now();
  try {
    const value = await work();
    return { ms: Date.now() - start, value };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}

describe('Redis connection for a short-lived CLI (PITFALLS: ioredis)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(() => server.stop());

  it('connects, answers, and closes', async () => {
    const conn = await RedisConnection.open({ url: server.url, timeoutMs: TIMEOUT });
    expect(await conn.run('PING', () => conn.client.ping())).toBe('PONG');
    conn.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(conn.client.status).toBe('end');
  });

  it('a refused port fails fast with the real cause (ECONNREFUSED), not "Stream isn\'t writeable"', async () => {
    const port = await freePort();
    const r = await timed(() => RedisConnection.open({ url: `redis://127.0.0.1:${port}`, timeoutMs: TIMEOUT }));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(String((r.error as Error).message)).toMatch(/ECONNREFUSED/);
    expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
  });

  it('a server that accepts but never answers (TLS-only port reached without TLS, black hole) hits the deadline', async () => {
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const port = (hole.address() as net.AddressInfo).port;
    const r = await timed(() => RedisConnection.open({ url: `redis://127.0.0.1:${port}`, timeoutMs: TIMEOUT }));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
    sockets.forEach((s) => s.destroy());
    hole.close();
  });

  it('a paused server makes each command fail within the deadline; no offline queue, no retries', async () => {
    const own = await startRedis();
    const conn = await RedisConnection.open({ url: own.url, timeoutMs: TIMEOUT });
    own.pause();
    try {
      const r = await timed(() => conn.run('GET', () => conn.client.get('k')));
      expect(r.error).toBeInstanceOf(BackendUnavailableError);
      expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
    } finally {
      own.resume();
      conn.close();
      await own.stop();
    }
  });

  it('a server killed mid-run makes the next command fail fast instead of waiting for a reconnect', async () => {
    const own = await startRedis();
    const conn = await RedisConnection.open({ url: own.url, timeoutMs: TIMEOUT });
    await own.stop();
    const r = await timed(() => conn.run('GET', () => conn.client.get('k')));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
    conn.close();
  });

  it('an ACL user without +info connects (no ready check) and authenticates from the URL', async () => {
    await server.command('ACL', 'SETUSER', 'limited', 'on', '>pw', '~*', '+get', '+set', '+ping', '+del', '+unlink', '+scan', '-info');
    const conn = await RedisConnection.open({ url: `redis://limited:pw@127.0.0.1:${server.port}`, timeoutMs: TIMEOUT });
    expect(await conn.run('PING', () => conn.client.ping())).toBe('PONG');
    expect(conn.target).toBe(`redis://limited:****@127.0.0.1:${server.port}`);
    conn.close();
    const wrong = await timed(() => RedisConnection.open({ url: `redis://limited:nope@127.0.0.1:${server.port}`, timeoutMs: TIMEOUT }));
    expect(wrong.error).toBeInstanceOf(BackendUnavailableError);
    expect((wrong.error as Error).message).not.toContain('nope');
  });

  it('CacheProvider tries once, warns once, then skips Redis for the rest of the run', async () => {
    const warnings: string[] = [];
    const provider = new CacheProvider({ url: `redis://127.0.0.1:${await freePort()}`, timeoutMs: TIMEOUT }, (w) => warnings.push(w));
    expect(await provider.attempt((c) => c.getJson('a'), 'fallback')).toBe('fallback');
    const second = await timed(() => provider.attempt((c) => c.getJson('b'), 'fallback'));
    expect(second.value).toBe('fallback');
    expect(second.ms).toBeLessThan(20);
    expect(warnings).toHaveLength(1);
    await expect(provider.required()).rejects.toBeInstanceOf(BackendUnavailableError);
    provider.close();
  });
});
