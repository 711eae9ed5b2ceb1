import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/setup.js';
import { sentinelTopology, type RedisTopology } from '../helpers/redis-topologies.js';

/** The CLI through a Sentinel it is told about by flags and environment, as an operator would run it. */
describe('Redis Sentinel from the command line', () => {
  let topo: RedisTopology;
  beforeAll(async () => {
    topo = await sentinelTopology();
  }, 60_000);
  afterAll(() => topo?.stop());

  const env = () => ({ REDIS_URL: 'redis://:datapw@sentinel-master', REDIS_SENTINEL_PASSWORD: 'sentinelpw', REDIS_SENTINEL_MASTER: 'tmaster' });
  const sentinels = () => topo.spec.nodes.map((n) => `${n.host}:${n.port}`).join(',');

  it('test-redis and invalidate-all reach the master the Sentinel names; passwords never show', async () => {
    const smoke = await runCli(['test-redis', '--json', '--redis-sentinel', sentinels()], { env: env() });
    expect(smoke.code, smoke.stderr).toBe(0);
    expect(JSON.parse(smoke.stdout)).toMatchObject({ ok: true, mode: 'sentinel', server: expect.stringContaining('tmaster@') });
    expect(smoke.stdout + smoke.stderr).not.toMatch(/datapw|sentinelpw/);
    await topo.client.set('tenant_config:s1', '{}');
    await topo.client.set('sessions:s1', 'x');
    const all = await runCli(['invalidate-all', '--yes', '--json', '--redis-sentinel', sentinels()], { env: env() });
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout).total).toBe(1);
    expect(await topo.client.exists('sessions:s1')).toBe(1);
  });

  it('the master stalled: the message names the master the Sentinels named, not only the Sentinels', async () => {
    const master = topo.servers[0];
    master.pause();
    try {
      const r = await runCli(['test-redis', '--redis-sentinel', sentinels(), '--redis-timeout', '500'], { env: env() });
      expect(r.code).toBe(3);
      expect(r.stderr.trim()).toMatch(new RegExp(`^error: Redis at .* is unreachable: .*\\(the master tmaster the Sentinels named: 127\\.0\\.0\\.1:${master.port}\\)$`));
      expect(r.stderr).not.toMatch(/datapw|sentinelpw/);
    } finally {
      master.resume();
    }
  });

  it('a Sentinel without a master name is exit 2; a wrong master name or sentinel password is exit 3, fast', async () => {
    const noMaster = await runCli(['test-redis', '--redis-sentinel', sentinels()], { env: { REDIS_SENTINEL_PASSWORD: 'sentinelpw' } });
    expect(noMaster.code).toBe(2);
    const wrong = await runCli(['test-redis', '--redis-sentinel', sentinels(), '--sentinel-master', 'nosuch', '--redis-timeout', '500'], { env: env() });
    expect(wrong.code).toBe(3);
    expect(wrong.ms).toBeLessThan(500 + 3000);
    // Before: "All sentinels are unreachable", with the Sentinel up and answering.
    expect(wrong.stderr).toMatch(/no Sentinel there knows a master named "nosuch"/);
    // The flag to check is the CLI's word, said once; the library's error carries the reason only.
    expect(wrong.stderr.match(/check --sentinel-master \/ REDIS_SENTINEL_MASTER/g)).toHaveLength(1);
    const { openIoredisStore } = await import('../../src/cache/ioredis-store.js');
    const failed = await openIoredisStore({ ...topo.spec, sentinelMaster: 'nosuch', timeoutMs: 500 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toMatchObject({ reason: 'unknown-master', refused: true, message: expect.stringMatching(/no Sentinel there knows a master named "nosuch"/) });
    expect((failed as Error).message).not.toMatch(/--sentinel-master|REDIS_SENTINEL_MASTER/);
    const both = await runCli(['test-redis', '--redis-sentinel', sentinels(), '--redis-cluster', '127.0.0.1:1'], { env: env() });
    expect(both.code).toBe(2);
  });

  it('a Sentinel that refuses the connection: exit 3 at once with one line (before: ioredis\'s own Sentinel client kept the process alive, an "internal" line and ~1 s)', async () => {
    const { freePort } = await import('../helpers/ports.js');
    const r = await runCli(['test-redis', '--redis-sentinel', `127.0.0.1:${await freePort()}`, '--sentinel-master', 'mymaster'], { env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: Redis at sentinel mymaster@.* is unreachable/)]);
    expect(r.stderr).not.toMatch(/internal/);
  });
});
