import { describe, expect, it } from 'vitest';
import { healthyReplicas, isNamedMaster, promotedReplica, SentinelWatch, type SentinelClient } from '../../src/cache/sentinel-check.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';

const spec = (timeoutMs = 600) =>
  parseRedisSpec({ sentinel: { value: '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3', where: 'test' }, sentinelMaster: { value: 'm', where: 'test' }, timeoutMs })!;

/** A Sentinel client double (contract test: the real one is driven in test/faults/sentinel-failover.test.ts). */
function fakeSentinels(answer: (port: number, args: string[]) => Promise<unknown>) {
  const opened: number[] = [];
  const open = (o: Record<string, unknown>): SentinelClient => {
    const port = o.port as number;
    opened.push(port);
    return { status: 'ready', connect: async () => undefined, call: (...args: string[]) => answer(port, args), disconnect: () => undefined, on: () => undefined };
  };
  return { opened, open };
}

describe('Sentinel master check', () => {
  it('matches by IP address and port; a hostname by run id, never during a failover, else by port', () => {
    const peer = { address: '::ffff:10.0.0.5', port: 6379, runId: 'aaa' };
    expect(isNamedMaster({ host: '10.0.0.5', port: 6379 }, peer)).toBe(true);
    expect(isNamedMaster({ host: '10.0.0.6', port: 6379 }, peer)).toBe(false);
    // The same host, another port: another server (two instances on one machine).
    expect(isNamedMaster({ host: '10.0.0.5', port: 6380 }, peer)).toBe(false);
    expect(isNamedMaster({ host: 'redis-1.redis', port: 6379, runId: 'aaa' }, peer)).toBe(true);
    // All nodes on 6379 (Kubernetes): the port alone would never see a failover.
    expect(isNamedMaster({ host: 'redis-2.redis', port: 6379, runId: 'bbb' }, peer)).toBe(false);
    expect(isNamedMaster({ host: 'redis-1.redis', port: 6379, runId: 'aaa', failingOver: true }, peer)).toBe(false);
    expect(isNamedMaster({ host: 'redis-1.redis', port: 6379 }, { port: 6379 })).toBe(true);
  });

  it('silent Sentinels: each is tried once, then none is asked for a while; closed, none is asked or opened again', async () => {
    const f = fakeSentinels(() => new Promise(() => undefined));
    const watch = new SentinelWatch(f.open, spec(600), {});
    expect(await watch.master()).toBeUndefined();
    expect(f.opened).toEqual([1, 2, 3]);
    expect(await watch.master()).toBeUndefined();
    expect(f.opened).toHaveLength(3);
    watch.close();
    expect(await watch.master()).toBeUndefined();
    expect(f.opened).toHaveLength(3);
  });

  it('closed while a check is under way: it opens no further Sentinel (a deletion in flight at close() kept the process alive)', async () => {
    let answerFirst: (v: unknown) => void = () => undefined;
    const f = fakeSentinels((port) => (port === 1 ? new Promise((r) => (answerFirst = r)) : Promise.resolve(['10.0.0.7', '6380'])));
    const watch = new SentinelWatch(f.open, spec(60_000), {});
    const checking = watch.master();
    await new Promise((r) => setImmediate(r));
    watch.close();
    answerFirst(null);
    expect(await checking).toBeUndefined();
    expect(f.opened).toEqual([1]);
  });

  it('moves past a Sentinel that does not know the master to one that does', async () => {
    const f = fakeSentinels(async (port) => (port === 1 ? null : ['10.0.0.7', '6380']));
    const watch = new SentinelWatch(f.open, spec(), {});
    expect(await watch.master()).toEqual({ host: '10.0.0.7', port: 6380, replicas: 0, listed: [], down: [] });
    watch.close();
  });

  it('counts the replicas the Sentinel saw replicating lately: up, replica role, link up, INFO under 20 s old', () => {
    const entry = (o: Record<string, string>) => Object.entries({ flags: 'slave', 'role-reported': 'slave', 'master-link-status': 'ok', 'info-refresh': '900', ...o }).flat();
    expect(healthyReplicas([entry({}), entry({})])).toBe(2);
    // A former master just turned replica: no INFO of it yet (link "ok" is the Sentinel's default).
    expect(healthyReplicas([entry({ 'info-refresh': String(Date.now()) })])).toBe(0);
    expect(healthyReplicas([entry({ 'master-link-status': 'err' })])).toBe(0);
    expect(healthyReplicas([entry({ flags: 'slave,s_down' }), entry({ flags: 'slave,disconnected' })])).toBe(0);
    expect(healthyReplicas([entry({ 'role-reported': 'master' })])).toBe(0);
    expect(healthyReplicas('not a list')).toBe(0);
  });

  it('names a listed replica last seen replicating from this master that reports itself a master lately (promoted); not one held down, disconnected, not polled for 20 s, or never a replica of it', () => {
    const entry = (o: Record<string, string>) => Object.entries({ ip: '10.0.0.8', port: '6379', flags: 'slave', 'role-reported': 'slave', 'master-link-status': 'ok', 'master-host': '10.0.0.1', 'master-port': '6379', 'info-refresh': '900', ...o }).flat();
    const master = '10.0.0.1:6379';
    // The old master of a failover just done, listed under the new one, still reporting the master role: it
    // never replicated from this master (the Sentinel has no master for it yet).
    expect(promotedReplica([entry({ ip: '10.0.0.7', 'role-reported': 'master', 'master-host': '?', 'master-port': '0' })], master)).toBeUndefined();
    expect(promotedReplica([entry({}), entry({ ip: '10.0.0.9', 'role-reported': 'master' })], master)).toBe('10.0.0.9:6379');
    expect(promotedReplica([entry({})], master)).toBeUndefined();
    expect(promotedReplica([entry({ 'role-reported': 'master', flags: 'slave,s_down' })], master)).toBeUndefined();
    expect(promotedReplica([entry({ 'role-reported': 'master', flags: 'slave,disconnected' })], master)).toBeUndefined();
    expect(promotedReplica([entry({ 'role-reported': 'master', 'info-refresh': String(Date.now()) })], master)).toBeUndefined();
    // Just after a failover, the new master itself may still be listed among its own replicas: not another one.
    expect(promotedReplica([entry({ ip: '10.0.0.1', 'role-reported': 'master' })], master)).toBeUndefined();
    expect(promotedReplica('not a list', master)).toBeUndefined();
  });
});
