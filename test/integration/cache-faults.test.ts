import { rmSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { openIoredisStore } from '../../src/cache/ioredis-store.js';
import { parseRedisSpec, type RedisSpec } from '../../src/cache/redis-spec.js';
import { sentinelTopology } from '../helpers/redis-topologies.js';
import { BackendUnavailableError, UsageError } from '../../src/errors.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const TIMEOUT = 300;
/** Start-up of a connection attempt plus scheduling noise on a loaded 2-core machine. */
const MARGIN = 700;

const busy = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until) { /* synchronous work */ }
};

const specFor = (url: string, timeoutMs = TIMEOUT) => parseRedisSpec({ url: { value: url, where: 'test' }, timeoutMs })!;
const open = (url: string) => openIoredisStore(specFor(url));

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = Date.now();
  try {
    const value = await work();
    return { ms: Date.now() - start, value };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}

/**
 * connectSoon, then a use, through a pass-through to `upstream` that blocks this process's event loop
 * (3x the timeout) as the first connection arrives: the connect is then in flight, its timers armed, while
 * synchronous work (parsing files, PGlite's queries) runs, once, as a migration's does. Redis must answer,
 * with no warning.
 */
async function connectsQuietlyThrough(upstream: number, specAt: (port: number) => RedisSpec): Promise<void> {
  let blocked = false;
  const proxy = net.createServer((c) => {
    if (!blocked) busy(TIMEOUT * 3);
    blocked = true;
    const up = net.connect(upstream, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const warnings: string[] = [];
    const cache = new Cache(specAt((proxy.address() as net.AddressInfo).port), { warn: (m) => warnings.push(m) });
    cache.connectSoon();
    const r = await timed(() => cache.need((store) => store.ping()));
    expect(r.error).toBeUndefined();
    expect(warnings).toEqual([]);
    cache.close();
  } finally {
    proxy.close();
  }
}

describe('the ioredis store and the Cache facade under faults (PITFALLS: ioredis)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(() => server.stop());

  it('a connect started in the background (connectSoon) while this process blocks its event loop past the timeout is not Redis down (migrate-yaml into PGlite exited 4, "unreachable", with Redis up)', async () => {
    await connectsQuietlyThrough(server.port, (port) => specFor(`redis://127.0.0.1:${port}`));
  });

  it('a background connect that failed while this process was busy is tried once more by the first caller, for every topology (the driver\'s own Sentinel and Cluster timers fired late too); one that failed on a free loop is Redis down', async () => {
    let opens = 0;
    const failsBusy = (busyMs: number) => async (spec: RedisSpec, signal?: AbortSignal) => {
      if (++opens === 1) {
        // The first connect's timers fire late: this process was busy past its timeout (after the connect began).
        await new Promise((r) => setImmediate(r));
        busy(busyMs);
        throw new BackendUnavailableError('redis', 'Redis at x is unreachable: connect ETIMEDOUT (timeout 300 ms)', { reason: 'unreachable' });
      }
      return openIoredisStore(spec, signal);
    };
    const warnings: string[] = [];
    const cache = new Cache(specFor(server.url), { open: failsBusy(TIMEOUT * 2), warn: (m) => warnings.push(m) });
    cache.connectSoon();
    await new Promise((r) => setTimeout(r, 10));
    expect(await cache.need((store) => store.ping())).toBeGreaterThanOrEqual(0);
    expect(opens).toBe(2);
    expect(warnings).toEqual([]);
    cache.close();
    // A failure with the loop free is believed: down, no second try.
    opens = 0;
    const idle = new Cache(specFor(server.url), { open: failsBusy(0) });
    idle.connectSoon();
    await new Promise((r) => setTimeout(r, 10));
    await expect(idle.need((store) => store.ping())).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(opens).toBe(1);
    idle.close();
  });

  it('a Sentinel reached while this process blocks its event loop (a pass-through that blocks as the connection arrives): not Redis down', async () => {
    const topo = await sentinelTopology();
    try {
      await connectsQuietlyThrough(Number(topo.spec.nodes[0].port), (port) => ({ ...topo.spec, timeoutMs: TIMEOUT, nodes: [{ host: '127.0.0.1', port }] }));
    } finally {
      await topo.stop();
    }
  }, 30_000);

  it('a server that never answers still times out within the timeout when the event loop is free', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const cache = new Cache(specFor(`redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`));
      const r = await timed(() => cache.need((store) => store.ping()));
      expect(r.error).toBeInstanceOf(BackendUnavailableError);
      expect((r.error as BackendUnavailableError).message).toMatch(/the connect timed out \(timeout 300 ms\)$/);
      expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
      cache.close();
    } finally {
      silent.close();
    }
  });

  it('close() while the connection is still being opened closes it when it lands (no client left to keep the process alive)', async () => {
    let land!: () => void;
    const gate = new Promise<void>((r) => (land = r));
    let closed = 0;
    const cache = new Cache(specFor(server.url), {
      open: async (spec) => {
        await gate;
        const store = await openIoredisStore(spec);
        const close = store.close.bind(store);
        store.close = () => {
          closed++;
          close();
        };
        return store;
      },
    });
    const asking = cache.attempt((s) => s.ping());
    cache.close();
    land();
    await asking;
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(1);
  });

  it('close() during a connect to a silent server gives it up at once, and a later use opens a new one (it found Redis down)', async () => {
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    let target = `redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    const cache = new Cache(specFor(server.url), { open: (_spec, signal) => openIoredisStore(specFor(target), signal), retryAfterMs: 60_000 });
    try {
      const started = Date.now();
      cache.connectSoon();
      const waiting = cache.attempt((s) => s.ping());
      // A read on the fallback path waiting on the same connect: its fallback, no warning, nothing marked down.
      const reading = cache.readJson('k');
      await new Promise((r) => setTimeout(r, 50));
      cache.close();
      expect((await waiting).status).toBe('failed');
      expect(await reading).toBeUndefined();
      // Given up at once, not at the connect timeout.
      expect(Date.now() - started).toBeLessThan(TIMEOUT);
      // Not marked down by the connect close() gave up on: the next use reaches the (now healthy) server.
      target = server.url;
      await new Promise((r) => setTimeout(r, 20));
      expect(cache.isDown).toBe(false);
      expect(await cache.attempt((s) => s.ping())).toMatchObject({ status: 'done' });
    } finally {
      cache.close();
      sockets.forEach((s) => s.destroy());
      hole.close();
    }
  });

  it('closed for good (the library\'s close()) under calls that need Redis: each ends "closed", not "Redis unreachable" or "Stream isn\'t writeable" (at every service shutdown)', async () => {
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const outcome = (p: Promise<unknown>) => p.then(() => 'done', (e) => (e instanceof UsageError ? `usage:${e.reason}` : `${(e as Error).constructor.name}:${(e as { reason?: string }).reason}`));
    try {
      // Waiting on a connect to a silent server.
      const silent = new Cache(specFor(`redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`));
      const needing = outcome(silent.need((s) => s.ping()));
      const attempting = outcome(silent.attempt((s) => s.ping()));
      await new Promise((r) => setTimeout(r, 30));
      silent.close({ forGood: true });
      expect(await needing).toBe('usage:closed');
      expect(await attempting).toBe('usage:closed');
      // Connected, the operation under way when the connection closes.
      const live = new Cache(specFor(server.url));
      await live.need((s) => s.ping());
      const raw = live.need(async (s) => {
        await new Promise((r) => setTimeout(r, 30));
        return s.get('k');
      });
      const running = outcome(raw);
      const runningError = raw.then(() => undefined, (e: unknown) => e);
      live.close({ forGood: true });
      expect(await running).toBe('usage:closed');
      // What the operation failed with is kept as the cause (an invalidation's progress, say).
      expect(((await runningError) as Error).cause).toBeInstanceOf(Error);
    } finally {
      sockets.forEach((s) => s.destroy());
      hole.close();
    }
  });

  it('a connect started early (connectSoon) that fails is warned once, at the first read that falls back (it fell back silently)', async () => {
    const warnings: string[] = [];
    const cache = new Cache(specFor(`redis://127.0.0.1:${await freePort()}`), { warn: (m) => warnings.push(m) });
    try {
      cache.connectSoon();
      await new Promise((r) => setTimeout(r, TIMEOUT + 100));
      expect(cache.isDown).toBe(true);
      expect(warnings).toEqual([]);
      expect(await cache.readJson('k')).toBeUndefined();
      expect(await cache.readJson('k')).toBeUndefined();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/ECONNREFUSED.*continuing without the cache/);
    } finally {
      cache.close();
    }
  });

  it('connects, answers, and closes', async () => {
    const store = await open(server.url);
    expect(await store.ping()).toBeGreaterThan(0);
    store.close();
    await expect(store.get('k')).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it('a refused port fails fast with the real cause (ECONNREFUSED), not "Stream isn\'t writeable"', async () => {
    const port = await freePort();
    const r = await timed(() => open(`redis://127.0.0.1:${port}`));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(String((r.error as Error).message)).toMatch(/ECONNREFUSED/);
    expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
  });

  it('a server that accepts but never answers (TLS-only port reached without TLS, black hole) hits the deadline', async () => {
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const port = (hole.address() as net.AddressInfo).port;
    const r = await timed(() => open(`redis://127.0.0.1:${port}`));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
    sockets.forEach((s) => s.destroy());
    hole.close();
  });

  it('a paused server makes each command fail within the deadline; no offline queue, no retries', async () => {
    const own = await startRedis();
    const conn = await open(own.url);
    own.pause();
    try {
      const r = await timed(() => conn.get('k'));
      expect(r.error).toBeInstanceOf(BackendUnavailableError);
      // One deadline per command (the driver's commandTimeout is off): it says what timed out.
      expect(r.error).toMatchObject({ reason: 'timeout', message: `Redis GET timed out (timeout ${TIMEOUT} ms)` });
      expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT - 5);
      expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
    } finally {
      own.resume();
      conn.close();
      await own.stop();
    }
  });

  it('a server killed mid-run makes the next command fail fast instead of waiting for a reconnect', async () => {
    const own = await startRedis();
    const conn = await open(own.url);
    await own.stop();
    const r = await timed(() => conn.get('k'));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(r.ms).toBeLessThan(TIMEOUT + MARGIN);
    conn.close();
  });

  it('a database the server does not have (or the user may not SELECT) fails the connect: nothing runs in database 0 instead', async () => {
    // ioredis sends the SELECT of its `db` option in its handshake and, when it fails, only emits 'error' and
    // goes on in database 0: an operator's invalidate of /99 deleted database 0's keys (a review).
    await server.command('SET', 'db0-key', 'x');
    const r = await timed(() => open(`redis://127.0.0.1:${server.port}/99`));
    expect(r.error).toBeInstanceOf(BackendUnavailableError);
    expect(r.error).toMatchObject({ reason: 'failed', message: expect.stringMatching(/refused database 99: ERR DB index is out of range/) });
    await server.command('ACL', 'SETUSER', 'noselect', 'on', '>pw', '~*', '+@all', '-select');
    const denied = await timed(() => open(`redis://noselect:pw@127.0.0.1:${server.port}/2`));
    expect(denied.error).toMatchObject({ reason: 'no-permission', message: expect.stringMatching(/refused database 2: NOPERM/) });
    // Database 0 needs no SELECT: that user still connects to it.
    const zero = await open(`redis://noselect:pw@127.0.0.1:${server.port}/0`);
    expect(await zero.get('db0-key')).toBe('x');
    zero.close();
    // A database the server has is the one worked on.
    const three = await open(`redis://127.0.0.1:${server.port}/3`);
    expect(await three.get('db0-key')).toBeNull();
    three.close();
    await server.command('DEL', 'db0-key');
  });

  it('multi-key reads are one MGET, and a user refused MGET (+get only) still reads, by script or per key (verify was exit 3 for it)', async () => {
    await server.command('SET', 'mget-a', '1');
    await server.command('SET', 'mget-b', '2');
    await server.command('ACL', 'SETUSER', 'nomget', 'on', '>pw', '~*', '+@all', '-mget');
    await server.command('ACL', 'SETUSER', 'nomgetnoscript', 'on', '>pw', '~*', '+@all', '-mget', '-@scripting');
    try {
      for (const user of ['default', 'nomget', 'nomgetnoscript']) {
        const store = await open(user === 'default' ? server.url : `redis://${user}:pw@127.0.0.1:${server.port}`);
        try {
          expect(await store.mget(['mget-a', 'missing', 'mget-b']), user).toEqual(['1', null, '2']);
          expect(await store.mget(['mget-b']), user).toEqual(['2']);
        } finally {
          store.close();
        }
      }
    } finally {
      for (const u of ['nomget', 'nomgetnoscript']) await server.command('ACL', 'DELUSER', u);
      await server.command('DEL', 'mget-a', 'mget-b');
    }
  });

  it('a user refused the read-only script commands (EVAL_RO, EVALSHA_RO) counts and checks by EVAL, server-side still', async () => {
    await server.command('SET', 'tenant_config:ro1', '{}');
    await server.command('SET', 'permissions:ro1', '{}');
    await server.command('ACL', 'SETUSER', 'noevalro', 'on', '>pw', '~*', '+@all', '-eval_ro', '-evalsha_ro');
    const store = await open(`redis://noevalro:pw@127.0.0.1:${server.port}`);
    try {
      const keys = new KeySpace(buildFamilies({ ttl: 300 }));
      const rules = keys.rules({ tenants: ['ro1'] });
      const counted = await store.sweep({ rules, action: 'count' });
      expect(counted.via).toBe('script');
      expect(counted.groups.reduce((a, b) => a + b, 0)).toBe(2);
      expect(await store.exists(['tenant_config:ro1', 'tenant_config:none'])).toEqual([true, false]);
    } finally {
      store.close();
      await server.command('ACL', 'DELUSER', 'noevalro');
      await server.command('DEL', 'tenant_config:ro1', 'permissions:ro1');
    }
  });

  it('an ACL user without +info connects (no ready check) and authenticates from the URL', async () => {
    await server.command('ACL', 'SETUSER', 'limited', 'on', '>pw', '~*', '+get', '+set', '+ping', '+del', '+unlink', '+scan', '-info');
    const conn = await open(`redis://limited:pw@127.0.0.1:${server.port}`);
    expect(await conn.ping()).toBeGreaterThan(0);
    expect(conn.target).toBe(`redis://limited:****@127.0.0.1:${server.port}`);
    const denied = await conn.info().catch((e) => e);
    expect(denied).toBeInstanceOf(BackendUnavailableError);
    expect((denied as BackendUnavailableError).reason).toBe('no-permission');
    conn.close();
    const wrong = await timed(() => open(`redis://limited:nope@127.0.0.1:${server.port}`));
    expect(wrong.error).toBeInstanceOf(BackendUnavailableError);
    expect((wrong.error as Error).message).not.toContain('nope');
    // The server answered and refused: a reason of its own (a retry will not help), not "unreachable".
    expect(wrong.error).toMatchObject({ reason: 'refused-login', message: expect.stringMatching(/refused the login: WRONGPASS/) });
  });

  it('the Cache facade tries once, warns once, then skips Redis for the rest of the run', async () => {
    const warnings: string[] = [];
    const cache = new Cache(specFor(`redis://127.0.0.1:${await freePort()}`), { warn: (w) => warnings.push(w) });
    expect(await cache.orElse((s) => s.get('a'), 'fallback')).toBe('fallback');
    const second = await timed(() => cache.orElse((s) => s.get('b'), 'fallback'));
    expect(second.value).toBe('fallback');
    expect(second.ms, 'it tried Redis again').toBeLessThan(TIMEOUT / 4);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warning: Redis at .* is unreachable: .*ECONNREFUSED.*; continuing without the cache$/);
    const attempt = await cache.attempt((s) => s.unlink(['k']));
    expect(attempt).toMatchObject({ status: 'failed', error: { reason: 'unreachable' } });
    await expect(cache.need((s) => s.ping())).rejects.toBeInstanceOf(BackendUnavailableError);
    cache.close();
  });

  it('a Cluster\'s seeds, or the Sentinels, all refusing the connection: each named with its error (ioredis said only "Connection is closed.": a probe)', async () => {
    const [a, b] = [await freePort(), await freePort()];
    for (const settings of [{ cluster: { value: `127.0.0.1:${a},127.0.0.1:${b}`, where: 'test' } }, { sentinel: { value: `127.0.0.1:${a},127.0.0.1:${b}`, where: 'test' }, sentinelMaster: { value: 'mymaster', where: 'test' } }]) {
      const err = await openIoredisStore(parseRedisSpec({ ...settings, timeoutMs: TIMEOUT })!).then(() => undefined, (e: unknown) => e as Error);
      expect(err, JSON.stringify(settings)).toBeInstanceOf(BackendUnavailableError);
      expect(err!.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${a} ECONNREFUSED, 127\\.0\\.0\\.1:${b} ECONNREFUSED$`));
    }
  });

  it('a server at maxclients: its own words ("max number of clients reached"), not "a TLS-only port?" (a probe: ioredis loses the line to its write\'s EPIPE)', async () => {
    const own = await startRedis(['--maxclients', '1']);
    const held = net.connect(own.port, '127.0.0.1');
    await new Promise((r) => held.once('connect', r));
    held.write('PING\r\n');
    await new Promise((r) => held.once('data', r));
    const cache = new Cache(specFor(own.url), { warn: () => undefined });
    try {
      const err = await cache.need((s) => s.ping()).then(() => undefined, (e: unknown) => e as BackendUnavailableError);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect(err!.message, err!.message).toMatch(/is unreachable: it refuses new connections: ERR max number of clients reached/);
      expect(err!.message).not.toMatch(/TLS/);
    } finally {
      cache.close();
      held.destroy();
      await own.stop();
    }
  });

  /** A fill sent to a paused server is given up on; once it resumes and runs it, no entry is left (before: until its TTL). */
  async function expectLateFillGone(own: RedisServer, cache: Cache, check: { exists(key: string): Promise<number> }) {
    own.pause();
    expect(await cache.writeJsonIfCurrent('permissions:late', { status: 'active' }, 300, async () => true)).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    own.resume();
    await new Promise((r) => setTimeout(r, 300));
    expect(await check.exists('permissions:late')).toBe(0);
  }

  it('a cache fill whose SET the server runs only after the timeout (it was stopped) is not written then (a probe: it put back a value a write had invalidated, until its TTL)', async () => {
    const own = await startRedis();
    const { Redis } = await import('ioredis');
    const check = new Redis(own.url);
    const cache = new Cache(specFor(own.url), { warn: () => undefined });
    try {
      // On time: written, with its TTL, as a plain SET writes it.
      expect(await cache.writeJsonIfCurrent('permissions:ontime', { status: 'active' }, 300, async () => true)).toBe(true);
      expect(await check.get('permissions:ontime')).toBe('{"status": "active"}');
      expect(await check.ttl('permissions:ontime')).toBeGreaterThan(290);
      // Given up on at the timeout; the server still has the command, and runs it when it resumes.
      await expectLateFillGone(own, cache, check);
    } finally {
      own.resume();
      cache.close();
      check.disconnect();
      await own.stop();
    }
  });

  it('a cache fill whose SET runs in time but whose answer is held past the timeout is taken back (it stayed: an entry a write had invalidated, until its TTL)', async () => {
    const own = await startRedis();
    const { Redis } = await import('ioredis');
    const check = new Redis(own.url);
    // A path that delivers every request at once but, once armed, holds the server's answers for HOLD ms.
    const HOLD = TIMEOUT * 4;
    let armed = false;
    const proxy = net.createServer((c) => {
      const up = net.connect(own.port, '127.0.0.1');
      c.on('data', (chunk) => {
        if (chunk.includes('"stale"')) armed = true;
        up.write(chunk);
      });
      up.on('data', (chunk) => (armed ? setTimeout(() => c.destroyed || c.write(chunk), HOLD) : c.write(chunk)));
      c.on('error', () => up.destroy()).on('close', () => up.destroy());
      up.on('error', () => c.destroy()).on('close', () => c.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const cache = new Cache(specFor(`redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`), { warn: () => undefined });
    try {
      expect(await cache.writeJsonIfCurrent('permissions:warm', { status: 'active' }, 300, async () => true)).toBe(true);
      // The fill read the registry, a write then committed and invalidated; the fill's SET runs on time,
      // its answer does not come back in time: given up on, with nothing re-read.
      expect(await cache.writeJsonIfCurrent('permissions:held', { status: 'stale' }, 300, async () => false)).toBe(false);
      await new Promise((r) => setTimeout(r, HOLD + 300));
      expect(await check.exists('permissions:held')).toBe(0);
      expect(await check.get('permissions:warm')).toBe('{"status": "active"}');
    } finally {
      cache.close();
      check.disconnect();
      await new Promise((r) => proxy.close(r));
      await own.stop();
    }
  });

  it('a cache fill by a user who may not run scripts (the plain SET, no deadline) whose SET runs only after the timeout is taken back after it', async () => {
    const own = await startRedis();
    const { Redis } = await import('ioredis');
    const check = new Redis(own.url);
    await check.call('ACL', 'SETUSER', 'noscripts', 'on', '>pw', '~*', '+@all', '-@scripting');
    const cache = new Cache(specFor(`redis://noscripts:pw@127.0.0.1:${own.port}`), { warn: () => undefined });
    try {
      expect(await cache.writeJsonIfCurrent('permissions:plain', { status: 'active' }, 300, async () => true)).toBe(true);
      expect(await check.get('permissions:plain')).toBe('{"status": "active"}');
      // The plain SET, run on resume: taken back after it.
      await expectLateFillGone(own, cache, check);
    } finally {
      own.resume();
      cache.close();
      check.disconnect();
      await own.stop();
    }
  });

  it('a cache fill on a server over maxmemory under noeviction is refused, as a plain SET is (a review: the fill script\'s UNLINK passed the memory check and the SET wrote past the limit)', async () => {
    const own = await startRedis();
    const { Redis } = await import('ioredis');
    const check = new Redis(own.url);
    const warnings: string[] = [];
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w) });
    try {
      await check.config('SET', 'maxmemory-policy', 'noeviction');
      await check.config('SET', 'maxmemory', '1');
      await expect(check.set('plain', 'x')).rejects.toThrow(/^OOM/);
      expect(await cache.writeJsonIfCurrent('permissions:full', { status: 'active' }, 300, async () => true)).toBe(false);
      expect(await check.exists('permissions:full')).toBe(0);
      expect(warnings.join('\n')).toMatch(/OOM/);
      // A key of another type there: the set path (UNLINK, then SET), refused the same way.
      await check.config('SET', 'maxmemory', '0');
      await check.hset('permissions:hash', 'f', 'v');
      expect(await cache.writeJsonIfCurrent('permissions:hash', { status: 'active' }, 300, async () => true)).toBe(true);
      expect(await check.get('permissions:hash')).toBe('{"status": "active"}');
    } finally {
      cache.close();
      check.disconnect();
      await own.stop();
    }
  });

  it('a server lost after the connect: the failing operation marks Redis down, so later reads skip it at once', async () => {
    const own = await startRedis();
    const warnings: string[] = [];
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w) });
    expect(await cache.orElse((s) => s.ping(), 0)).toBeGreaterThan(0);
    own.pause();
    try {
      // A best-effort operation (need() underneath) fails at the deadline...
      expect(await cache.attempt((s) => s.get('a'))).toMatchObject({ status: 'failed', error: { reason: 'timeout' } });
      expect(cache.isDown).toBe(true);
      // ...and the next read does not wait for it again.
      const next = await timed(() => cache.orElse((s) => s.get('b'), 'fallback'));
      expect(next.value).toBe('fallback');
      expect(next.ms, 'it waited for Redis again').toBeLessThan(TIMEOUT / 4);
      // attempt() says its failure to its caller (it reports it); nothing more is warned after.
      expect(warnings).toEqual([]);
    } finally {
      own.resume();
      cache.close();
      await own.stop();
    }
  });

  it('with retryAfterMs (the library), one call probes Redis again when due; the others keep the fallback meanwhile, no second warning', async () => {
    const own = await startRedis();
    const warnings: string[] = [];
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w), retryAfterMs: 200 });
    try {
      await own.command('SET', 'k', '"v"');
      expect(await cache.readJson('k')).toBe('v');
      own.pause();
      expect(await cache.readJson('k')).toBeUndefined(); // waits the timeout once, then down
      await new Promise((r) => setTimeout(r, 250));
      // Due: ten reads at once; one probes (and waits the timeout), nine answer at once.
      const reads = await Promise.all(Array.from({ length: 10 }, () => timed(() => cache.readJson('k'))));
      const slow = reads.filter((r) => r.ms >= TIMEOUT - 5);
      expect(slow).toHaveLength(1);
      expect(reads.filter((r) => r.ms < 50)).toHaveLength(9);
      expect(warnings).toHaveLength(1);
      own.resume();
      await new Promise((r) => setTimeout(r, 250));
      expect(await cache.readJson('k')).toBe('v'); // the probe connects: Redis is back
      expect(cache.isDown).toBe(false);
    } finally {
      own.resume();
      cache.close();
      await own.stop();
    }
  });

  it('a command refused by the ACL user (NOPERM) does not mark Redis down: reads go on, and two refusals warn once', async () => {
    await server.command('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+get', '+ping', '+del', '+unlink', '+scan', '-set');
    await server.command('SET', 'acl:k', '"cached"');
    const warnings: string[] = [];
    const cache = new Cache(specFor(`redis://reader:pw@127.0.0.1:${server.port}`), { warn: (w) => warnings.push(w) });
    try {
      expect(await cache.writeJson('acl:a', { x: 1 }, 60)).toBe(false);
      expect(await cache.writeJson('acl:b', { x: 1 }, 60)).toBe(false);
      expect(cache.isDown).toBe(false);
      expect(await cache.readJson('acl:k')).toBe('cached');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/NOPERM/);
    } finally {
      cache.close();
      await server.command('ACL', 'DELUSER', 'reader');
    }
  });

  it('a refusal warned of does not silence a later outage: Redis down is warned too (a long-lived service never heard of it)', async () => {
    const own = await startRedis();
    await own.command('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+get', '+ping', '+unlink', '+scan', '-set');
    await own.command('SET', 'w:k', '"cached"');
    const warnings: string[] = [];
    const cache = new Cache(specFor(`redis://reader:pw@127.0.0.1:${own.port}`), { warn: (w) => warnings.push(w) });
    try {
      expect(await cache.writeJson('w:a', { x: 1 }, 60)).toBe(false);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/NOPERM/);
      own.pause();
      expect(await cache.readJson('w:k')).toBeUndefined();
      expect(warnings).toHaveLength(2);
      expect(warnings[1]).toMatch(/timed out.*continuing without the cache$/);
    } finally {
      own.resume();
      cache.close();
      await own.stop();
    }
  });

  it('a write refused by a replica (READONLY) does not mark Redis down either: the reads after it still use the cache', async () => {
    // A server that holds the key and then becomes the replica of a master that is not there: it keeps its
    // data (no sync ever succeeds) and refuses writes at once (waiting for a real sync flaked under load).
    const replica = await startRedis();
    await replica.command('SET', 'ro:k', '"cached"');
    await replica.command('REPLICAOF', '127.0.0.1', String(await freePort()));
    const warnings: string[] = [];
    const cache = new Cache(specFor(replica.url), { warn: (w) => warnings.push(w) });
    try {
      const refused = await cache.attempt((s) => s.unlink(['ro:k']));
      expect(refused).toMatchObject({ status: 'failed', error: { reason: 'read-only' } });
      expect(cache.isDown).toBe(false);
      expect(await cache.readJson('ro:k')).toBe('cached');
    } finally {
      cache.close();
      await replica.stop();
    }
  });

  it('a command the server answers with an error (OOM under maxmemory, an invalid expire) is no outage: the UNLINK after it runs, the reads use the cache (a suspension left its permissions: entry granting everything)', async () => {
    const own = await startRedis();
    await own.command('SET', 'oom:keep', '"cached"');
    await own.command('SET', 'oom:gone', '"stale"');
    const warnings: string[] = [];
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w) });
    try {
      await own.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      await own.command('CONFIG', 'SET', 'maxmemory', '1');
      expect(await cache.writeJson('oom:new', { x: 1 }, 60)).toBe(false);
      expect(warnings.join('\n')).toMatch(/OOM/);
      expect(cache.isDown).toBe(false);
      // The invalidation that follows a write is tried, and done: UNLINK is allowed under OOM.
      const tried = await cache.attempt((s) => s.unlink(['oom:gone']));
      expect(tried).toMatchObject({ status: 'done' });
      expect(await own.command('EXISTS', 'oom:gone')).toMatch(/^:0/);
      await own.command('CONFIG', 'SET', 'maxmemory', '0');
      // A reply error of another kind (ERR invalid expire time): no outage either.
      expect(await cache.writeJson('oom:bad-ttl', { x: 1 }, 0)).toBe(false);
      expect(cache.isDown).toBe(false);
      expect(await cache.readJson('oom:keep')).toBe('cached');
      const pinged = await cache.attempt((s) => s.ping());
      expect(pinged.status).toBe('done');
    } finally {
      cache.close();
      await own.stop();
    }
  });

  it('a server refusing writes and PINGs with MISCONF (its RDB save failing) is up for a new connection: reads served, writes refused without an outage (it was "unreachable")', async () => {
    const own = await startRedis();
    await own.command('SET', 'mis:keep', '"cached"');
    // Redis stops writes (and PINGs) after a failed save only where save points are set.
    await own.command('CONFIG', 'SET', 'save', '3600 1');
    rmSync(own.dir, { recursive: true, force: true });
    await own.command('BGSAVE');
    for (let i = 0; i < 100 && !/rdb_last_bgsave_status:err/.test(await own.command('INFO', 'persistence')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await own.command('PING')).toMatch(/^-MISCONF/);
    const warnings: string[] = [];
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w) });
    try {
      expect(await cache.readJson('mis:keep')).toBe('cached');
      expect(cache.isDown).toBe(false);
      expect(await cache.writeJson('mis:new', { x: 1 }, 60)).toBe(false);
      expect(warnings.join('\n')).toMatch(/MISCONF/);
      expect(cache.isDown).toBe(false);
    } finally {
      cache.close();
      await own.stop();
    }
  });

  it('a string written and deleted by a service between two reads of a miss is no "another type" (EXISTS then GET said so, 1 read in ~10,000 under churn): TYPE decides', async () => {
    const own = await startRedis();
    const warnings: string[] = [];
    // The race, made certain: the GET misses, the key is a string at the next look, and gone at the one after.
    const open = async (spec: RedisSpec) => {
      const store = await openIoredisStore(spec);
      store.get = async () => null;
      store.exists = async (keys) => keys.map(() => true);
      return store;
    };
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w), open });
    try {
      expect(await cache.readJson('churn:k')).toBeUndefined();
      expect(warnings).toEqual([]);
      // A hash is still said, with its type.
      await own.command('HSET', 'churn:h', 'f', 'v');
      expect(await cache.readJson('churn:h')).toBeUndefined();
      expect(warnings).toEqual([expect.stringMatching(/^warning: churn:h holds another type than a string \(a hash: /)]);
    } finally {
      cache.close();
      await own.stop();
    }
  });

  it('a TYPE after a miss that times out is Redis failing (marked down: the next call does not wait again); each kind of answered error is warned once, an early NOPERM no longer hides a later OOM (a review)', async () => {
    const own = await startRedis();
    const warnings: string[] = [];
    let typeTimesOut = true;
    let refuseFirstSet = true;
    // Contract-style stand-ins for two replies on a real server: a TYPE that times out, a SET refused by an ACL.
    const open = async (spec: RedisSpec) => {
      const store = await openIoredisStore(spec);
      const typeOf = store.typeOf.bind(store);
      const set = store.set.bind(store);
      store.typeOf = async (key) => (typeTimesOut ? Promise.reject(new BackendUnavailableError('redis', 'Redis TYPE timed out (timeout 300 ms)', { reason: 'timeout' })) : typeOf(key));
      store.set = async (...args: Parameters<typeof set>) => {
        if (!refuseFirstSet) return set(...args);
        refuseFirstSet = false;
        throw new BackendUnavailableError('redis', "Redis SET failed: NOPERM this user has no permissions to run the 'set' command", { reason: 'no-permission' });
      };
      return store;
    };
    const cache = new Cache(specFor(own.url), { warn: (w) => warnings.push(w), open, retryAfterMs: 60_000 });
    try {
      expect(await cache.readJson('type:missing')).toBeUndefined();
      expect(cache.isDown).toBe(true);
      cache.close();
      typeTimesOut = false;
      const again = new Cache(specFor(own.url), { warn: (w) => warnings.push(w), open });
      try {
        warnings.length = 0;
        expect(await again.writeJson('w:1', { x: 1 }, 60)).toBe(false);
        await own.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
        await own.command('CONFIG', 'SET', 'maxmemory', '1');
        expect(await again.writeJson('w:2', { x: 1 }, 60)).toBe(false);
        expect(await again.writeJson('w:3', { x: 1 }, 60)).toBe(false);
        expect(warnings).toEqual([expect.stringMatching(/NOPERM/), expect.stringMatching(/OOM/)]);
        // Another error reply (the same reason, rejected): said too (an OOM hid a later one: a review).
        await own.command('CONFIG', 'SET', 'maxmemory', '0');
        expect(await again.writeJson('w:4', { x: 1 }, 0)).toBe(false);
        expect(warnings).toEqual([expect.stringMatching(/NOPERM/), expect.stringMatching(/OOM/), expect.stringMatching(/invalid expire/)]);
      } finally {
        again.close();
      }
    } finally {
      cache.close();
      await own.stop();
    }
  });

  it('a failure that is not Redis\'s (a bug in the operation) is thrown, not taken for "continuing without the cache"', async () => {
    const warnings: string[] = [];
    const cache = new Cache(specFor(server.url), { warn: (w) => warnings.push(w) });
    try {
      await expect(cache.orElse(() => Promise.reject(new TypeError('a bug')), 'fallback')).rejects.toBeInstanceOf(TypeError);
      expect(warnings).toEqual([]);
      expect(cache.isDown).toBe(false);
    } finally {
      cache.close();
    }
  });

  it('without Redis configured: fallback, "not-configured", and a typed error for what needs it', async () => {
    const cache = new Cache(undefined);
    expect(await cache.readJson('k')).toBeUndefined();
    expect(await cache.attempt((s) => s.ping())).toEqual({ status: 'not-configured' });
    const err = await cache.need((s) => s.ping()).catch((e) => e);
    expect(err).toMatchObject({ reason: 'not-configured', backend: 'redis' });
  });
});
