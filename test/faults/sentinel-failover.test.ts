import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { openIoredisStore } from '../../src/cache/ioredis-store.js';
import { BackendUnavailableError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';
import { sentinelTopology } from '../helpers/redis-topologies.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';
import net from 'node:net';

/**
 * A Sentinel failover while the tool deletes: the client stays on the old
 * master, which keeps accepting UNLINKs until Sentinel demotes it (seconds
 * later), and then resyncs from the new master: the deletions come undone.
 * Measured by a review: `invalidate-all --yes` said complete, exit 0, with
 * most keys back. The deleting operations must say the master changed.
 */
describe('Sentinel: a failover during deletions is reported, not a success', () => {
  let topo: Awaited<ReturnType<typeof sentinelTopology>>;
  beforeAll(async () => {
    topo = await sentinelTopology({ replica: true });
  }, 60_000);
  afterAll(async () => {
    await topo?.stop();
  });

  /** Until the Sentinels see the replica's link up (they count a replica only then; their INFO poll: every 10 s). */
  const sentinelSeesReplica = async () => {
    const sentinel = new Redis({ port: topo.spec.nodes[0].port, password: 'sentinelpw' });
    try {
      for (let i = 0; i < 150; i++) {
        const entries = (await sentinel.call('SENTINEL', 'REPLICAS', 'tmaster')) as string[][];
        if (entries.some((e) => e[e.indexOf('master-link-status') + 1] === 'ok' && !/s_down|disconnected/.test(e[e.indexOf('flags') + 1]))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      sentinel.disconnect();
    }
  };

  it('before the Sentinels name the new master: deletions on a master that lost its replica are reported, not a success (the promoted replica had stopped replicating; the keys stayed on it)', async () => {
    // A promotion the Sentinels have not seen yet: the replica leaves the master; the Sentinels still list it.
    const replica = new Redis({ port: topo.replica!.port, password: 'datapw' });
    await sentinelSeesReplica();
    const store = await openIoredisStore(topo.spec);
    try {
      await topo.client.set('tenant_config:promoted', '{}');
      await replica.call('REPLICAOF', 'NO', 'ONE');
      const unlink = await store.unlink(['tenant_config:promoted']).then(() => undefined, (e: unknown) => e);
      expect(unlink).toBeInstanceOf(BackendUnavailableError);
      expect(unlink).toMatchObject({ reason: 'failed-over' });
      expect((unlink as Error).message).toMatch(/^Redis Sentinel master tmaster \(127\.0\.0\.1:\d+\) had 0 of the 1 replica\(s\) the Sentinels saw replicating acknowledge the deletions within 1400 ms: a failover may be under way.*run again$/);
    } finally {
      store.close();
      // Back as it was, in sync, for the failover below.
      await replica.call('REPLICAOF', '127.0.0.1', String(topo.servers[0].port));
      for (let i = 0; i < 100 && !/master_link_status:up/.test(await replica.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
      replica.disconnect();
    }
    // With the replica in sync, the same deletion is acknowledged and succeeds.
    const healthy = await openIoredisStore(topo.spec);
    try {
      await topo.client.set('tenant_config:promoted', '{}');
      expect(await healthy.unlink(['tenant_config:promoted'])).toEqual([1]);
    } finally {
      healthy.close();
    }
  }, 60_000);

  it('the Sentinels out of reach after the connect, a promotion under way: deletions are reported, not a success (with no Sentinel answering nothing was checked: exit 0, "complete", the keys left on the new master)', async () => {
    const replica = new Redis({ port: topo.replica!.port, password: 'datapw' });
    await sentinelSeesReplica();
    // The tool reaches the Sentinel through a pass-through that is cut after the connect (a partition
    // between the tool and the Sentinels only): from then on it accepts and forwards nothing.
    const held = new Set<net.Socket>();
    let cut = false;
    const proxy = net.createServer((c) => {
      held.add(c);
      c.on('error', () => undefined);
      if (cut) return;
      const up = net.connect(topo.spec.nodes[0].port, '127.0.0.1');
      held.add(up);
      up.on('error', () => undefined);
      c.pipe(up).pipe(c);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const spec = { ...topo.spec, nodes: [{ host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port }] };
    const store = await openIoredisStore(spec);
    try {
      await topo.client.set('tenant_config:nosentinel', '{}');
      cut = true;
      for (const s of held) s.destroy();
      held.clear();
      await replica.call('REPLICAOF', 'NO', 'ONE');
      const unlink = await store.unlink(['tenant_config:nosentinel']).then(() => undefined, (e: unknown) => e);
      expect(unlink).toBeInstanceOf(BackendUnavailableError);
      expect(unlink).toMatchObject({ reason: 'failed-over' });
      expect((unlink as Error).message).toMatch(/^Redis Sentinel master tmaster \(127\.0\.0\.1:\d+\) had 0 of the 1 replica\(s\) it had at the connect acknowledge the deletions within 1400 ms \(no Sentinel answered\): a failover may be under way.*run again$/);
      // Back in sync, the Sentinels still out of reach: the same deletion is acknowledged by the replica, a success.
      await replica.call('REPLICAOF', '127.0.0.1', String(topo.servers[0].port));
      for (let i = 0; i < 100 && !/master_link_status:up/.test(await replica.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
      await topo.client.set('tenant_config:nosentinel', '{}');
      expect(await store.unlink(['tenant_config:nosentinel'])).toEqual([1]);
    } finally {
      store.close();
      if (!/master_link_status:up/.test(await replica.info('replication'))) {
        await replica.call('REPLICAOF', '127.0.0.1', String(topo.servers[0].port));
        for (let i = 0; i < 100 && !/master_link_status:up/.test(await replica.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
      }
      replica.disconnect();
      for (const s of held) s.destroy();
      proxy.close();
      // The tests after this one count on the Sentinels seeing the replica replicating again.
      await sentinelSeesReplica();
    }
  }, 60_000);

  it('a replica still attached that has not applied the deletions (it took REPLICAOF NO ONE first, or stalls): reported, not a success (the attached count said all was well: exit 0, every key on the new master)', async () => {
    const store = await openIoredisStore(topo.spec);
    try {
      await topo.client.set('tenant_config:unacked', '{}');
      // Stopped: its link stays open (the master counts it), and it applies nothing.
      await topo.replica!.pause();
      try {
        const unlink = await store.unlink(['tenant_config:unacked']).then(() => undefined, (e: unknown) => e);
        expect(unlink).toMatchObject({ reason: 'failed-over' });
        expect((unlink as Error).message).toMatch(/had 0 of the 1 replica\(s\) the Sentinels saw replicating acknowledge the deletions within 1400 ms: .*run again$/);
      } finally {
        await topo.replica!.resume();
      }
      // Running again with the replica applying the stream: acknowledged, a success.
      await topo.client.set('tenant_config:unacked', '{}');
      expect(await store.unlink(['tenant_config:unacked'])).toEqual([1]);
    } finally {
      store.close();
    }
  }, 60_000);

  it('a replica the master listed replicating at the connect, which the Sentinels do not count (their view of a former master for ~20 s after a failover): waited for too (a probe: a second failover to it left exit 0, "complete", keys on the new master)', async () => {
    await sentinelSeesReplica();
    const store = await openIoredisStore(topo.spec);
    try {
      // The Sentinels' stale view, made certain: the master named, no replica counted, none held down.
      const watch = (store as unknown as { sentinels: { master: () => Promise<unknown> } }).sentinels;
      const real = watch.master.bind(watch);
      const replicaAt = `127.0.0.1:${topo.replica!.port}`;
      watch.master = async () => ({ ...((await real()) as object), replicas: 0, listed: [replicaAt], down: [] });
      await topo.client.set('tenant_config:uncounted', '{}');
      await topo.replica!.pause();
      try {
        const unlink = await store.unlink(['tenant_config:uncounted']).then(() => undefined, (e: unknown) => e);
        expect(unlink).toMatchObject({ reason: 'failed-over' });
        expect((unlink as Error).message).toMatch(/had 0 of the 1 replica\(s\) it listed replicating at the connect acknowledge the deletions/);
        // With what it deleted (it said "0 keys deleted ... may come back" of a key deleted: a review).
        expect(unlink).toMatchObject({ progress: { done: 1 }, partial: [1] });
        // A replica the Sentinels do not list (replica-announced no) can never be promoted: not waited for.
        watch.master = async () => ({ ...((await real()) as object), replicas: 0, listed: [], down: [] });
        await topo.client.set('tenant_config:uncounted', '{}');
        expect(await store.unlink(['tenant_config:uncounted'])).toEqual([1]);
      } finally {
        await topo.replica!.resume();
      }
      // Held down by the Sentinels: not waited for (a replica that is down is no candidate).
      watch.master = async () => ({ ...((await real()) as object), replicas: 0, listed: [replicaAt], down: [replicaAt] });
      await topo.client.set('tenant_config:uncounted', '{}');
      expect(await store.unlink(['tenant_config:uncounted'])).toEqual([1]);
    } finally {
      store.close();
    }
  }, 60_000);

  it('a WAIT whose reply does not come in time (the master stalls while it waits for a stopped replica): not acknowledged, said as such, not a Redis timeout', async () => {
    const store = await openIoredisStore(topo.spec);
    const master = topo.servers[0];
    try {
      await topo.client.set('tenant_config:waitstall', '{}');
      topo.replica!.pause();
      try {
        const outcome = store.unlink(['tenant_config:waitstall']).then(() => undefined, (e: unknown) => e);
        // The UNLINK is done within milliseconds; the WAIT then waits ~1.4 s for the stopped replica, and the
        // master stops under it: its reply would come only after the store's timeout (1.5 s).
        await new Promise((r) => setTimeout(r, 400));
        master.pause();
        const err = await outcome;
        master.resume();
        expect(err).toMatchObject({ reason: 'failed-over' });
        expect((err as Error).message).toMatch(/had 0 of the 1 replica\(s\) the Sentinels saw replicating acknowledge the deletions within 1400 ms: .*run again$/);
      } finally {
        master.resume();
        topo.replica!.resume();
      }
      // Both running again: acknowledged, a success.
      await topo.client.set('tenant_config:waitstall', '{}');
      expect(await store.unlink(['tenant_config:waitstall'])).toEqual([1]);
    } finally {
      store.close();
    }
  }, 60_000);

  it('after the Sentinels saw the promoted replica report the master role, still naming the old master: deletions there are reported, not a success (it no longer counted among the replicas, so the count matched)', async () => {
    const replica = new Redis({ port: topo.replica!.port, password: 'datapw' });
    const sentinel = new Redis({ port: topo.spec.nodes[0].port, password: 'sentinelpw' });
    const entries = async () => (await sentinel.call('SENTINEL', 'REPLICAS', 'tmaster')) as string[][];
    const field = (e: string[], name: string) => e[e.indexOf(name) + 1];
    const store = await openIoredisStore(topo.spec);
    try {
      await topo.client.set('tenant_config:promoted2', '{}');
      await replica.call('REPLICAOF', 'NO', 'ONE');
      // The Sentinel polls a replica's INFO every 10 s: wait until it has seen the master role.
      let seen = false;
      for (let i = 0; i < 150 && !seen; i++) {
        seen = (await entries()).some((e) => field(e, 'role-reported') === 'master');
        if (!seen) await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen).toBe(true);
      const unlink = await store.unlink(['tenant_config:promoted2']).then((v) => v, (e: unknown) => e);
      expect(unlink).toBeInstanceOf(BackendUnavailableError);
      expect(unlink).toMatchObject({ reason: 'failed-over' });
      expect((unlink as Error).message).toMatch(/^Redis Sentinel master tmaster \(127\.0\.0\.1:\d+\) has a replica that reports itself a master \(127\.0\.0\.1:\d+\): a failover may be under way.*run again$/);
    } finally {
      store.close();
      sentinel.disconnect();
      await replica.call('REPLICAOF', '127.0.0.1', String(topo.servers[0].port));
      for (let i = 0; i < 100 && !/master_link_status:up/.test(await replica.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
      replica.disconnect();
    }
  }, 60_000);

  it('a sweep and an UNLINK on the master the Sentinels no longer name fail, saying so (with what was deleted)', async () => {
    const keys = new KeySpace(buildFamilies({ ttl: 300 }));
    for (let i = 0; i < 200; i++) await topo.client.set(`tenant_config:t${i}`, '{}');
    const store = await openIoredisStore(topo.spec);
    try {
      const newPort = await topo.failover();
      const sweep = await store.sweep({ rules: keys.rules(), action: 'unlink' }).then(() => undefined, (e: unknown) => e);
      expect(sweep).toBeInstanceOf(BackendUnavailableError);
      expect((sweep as Error).message).toMatch(new RegExp(`failed over during this run \\(master tmaster moved from 127\\.0\\.0\\.1:\\d+ to 127\\.0\\.0\\.1:${newPort}\\).*run again`));
      expect((sweep as BackendUnavailableError).progress?.done).toBe(200);
      // The CLI's line: not "deleted at least 200" (they may come back), and "run again" once (it said it twice).
      const said = exitCodeFor(sweep).message!;
      expect(said).toMatch(/^200 keys deleted on a master that was failing over, so they may come back: Redis Sentinel failed over during this run .*; run again$/);
      expect(said).not.toMatch(/run again.*run again/);
      // An UNLINK that deleted nothing has nothing to lose: answered, with no Sentinel round trip (it failed,
      // saying "0 keys deleted on a master that was failing over").
      // (Or READONLY, once the Sentinels have already made the old master a replica.)
      const nothing = await store.unlink(['tenant_config:nothing-here']).then((v) => v, (e: unknown) => e);
      if (Array.isArray(nothing)) expect(nothing).toEqual([0]);
      else expect((nothing as Error).message).toMatch(/READONLY/);
      // The same for verify --fix's unlink-if-unchanged that matched nothing.
      const unchanged = await store.unlinkIfUnchanged!([{ key: 'tenant_config:nothing-here', value: '{}' }]).then((v) => v, (e: unknown) => e);
      if (Array.isArray(unchanged)) expect(unchanged).toEqual([0]);
      else expect((unchanged as Error).message).toMatch(/READONLY/);
    } finally {
      store.close();
    }
    // A new connection follows the Sentinels to the new master, and works.
    const again = await openIoredisStore(topo.spec);
    try {
      expect(await again.unlink(['tenant_config:t1'])).toHaveLength(1);
    } finally {
      again.close();
    }
  }, 60_000);
});

/** A Sentinel with a stale view names a replica: refused at connect with one clear line, not READONLY at the first write. */
describe('Sentinel: one that names a replica as the master', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let fake: net.Server;
  let fakePort: number;
  beforeAll(async () => {
    master = await startRedis();
    replica = await startRedis(['--replicaof', '127.0.0.1', String(master.port)]);
    fakePort = await freePort();
    // Answers get-master-addr-by-name with the replica, as a Sentinel that missed a failover would.
    fake = net.createServer((sock) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        // One reply per whole RESP command (a client may send several in one packet).
        for (;;) {
          const lines = buf.split('\r\n');
          const n = /^\*(\d+)$/.exec(lines[0])?.[1];
          if (n === undefined || lines.length < 1 + 2 * Number(n) + 1) return;
          const args = Array.from({ length: Number(n) }, (_, i) => lines[2 + 2 * i]);
          buf = lines.slice(1 + 2 * Number(n)).join('\r\n');
          const command = args.map((a) => a.toLowerCase()).join(' ');
          if (command.includes('get-master-addr-by-name')) sock.write(`*2\r\n$9\r\n127.0.0.1\r\n$${String(replica.port).length}\r\n${replica.port}\r\n`);
          else if (command.startsWith('sentinel')) sock.write('*0\r\n');
          else sock.write('+OK\r\n');
        }
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => fake.listen(fakePort, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    await new Promise((r) => fake.close(r));
    await replica.stop();
    await master.stop();
  });

  it('connecting says the Sentinels named a replica', async () => {
    const spec = parseRedisSpec({ sentinel: { value: `127.0.0.1:${fakePort}`, where: 'test' }, sentinelMaster: { value: 'mymaster', where: 'test' }, timeoutMs: 1500 })!;
    const err = await openIoredisStore(spec).then((s) => (s.close(), undefined), (e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message, String((err as Error).message)).toMatch(new RegExp(`named 127\\.0\\.0\\.1:${replica.port} as master mymaster, but it is a replica`));
    // The replica itself is untouched and still a replica.
    const c = new Redis({ port: replica.port });
    try {
      expect((await c.call('ROLE')) as unknown[]).toContain('slave');
    } finally {
      c.disconnect();
    }
  });
});

/** Silent Sentinels (accepting, never answering: a stopped process) before a healthy one. */
describe('Sentinel: silent ones listed first', () => {
  let topo: Awaited<ReturnType<typeof sentinelTopology>>;
  const silent: net.Server[] = [];
  const silentPorts: number[] = [];
  beforeAll(async () => {
    topo = await sentinelTopology();
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const server = net.createServer((sock) => sock.on('error', () => undefined));
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
      silent.push(server);
      silentPorts.push(port);
    }
  }, 60_000);
  afterAll(async () => {
    for (const s of silent) {
      s.close();
      (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    }
    await topo?.stop();
  });

  it('the healthy one is still asked within the timeout (each Sentinel gets its share of it)', async () => {
    const spec = { ...topo.spec, nodes: [...silentPorts.map((port) => ({ host: '127.0.0.1', port })), ...topo.spec.nodes] };
    // Before: the first silent Sentinel took the whole timeout, and the command failed "unreachable".
    const store = await openIoredisStore(spec);
    try {
      expect(await store.ping()).toBeGreaterThanOrEqual(0);
    } finally {
      store.close();
    }
  });
});
