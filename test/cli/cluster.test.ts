import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/setup.js';
import { startRedisCluster, type RedisClusterFixture } from '../helpers/redis-cluster.js';

/**
 * The built CLI against a 3-master Cluster named by a host name: the bundle
 * edits ioredis's Cluster defaults so that `dns` loads only when a host name
 * is looked up (scripts/build-cli.mjs); this is that path, end to end.
 */
describe('Redis Cluster from the command line, seeds named by host name', () => {
  let cluster: RedisClusterFixture;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    client = new Cluster(cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })));
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  const seeds = () => cluster.seeds.map((s) => s.replace('127.0.0.1', 'localhost')).join(',');

  it('test-redis passes and invalidate-all deletes the family keys on every master, nothing else', async () => {
    const smoke = await runCli(['test-redis', '--json', '--redis-cluster', seeds()]);
    expect(smoke.code, smoke.stderr).toBe(0);
    expect(JSON.parse(smoke.stdout)).toMatchObject({ ok: true, mode: 'cluster' });

    const ids = Array.from({ length: 30 }, (_, i) => `c${i}`);
    for (const id of ids) {
      await client.set(`tenant_config:${id}`, '{}');
      await client.set(`sessions:${id}`, 'x');
    }
    const all = await runCli(['invalidate-all', '--yes', '--json', '--redis-cluster', seeds()]);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout).total).toBe(ids.length);
    for (const id of ids) {
      expect(await client.exists(`tenant_config:${id}`)).toBe(0);
      expect(await client.exists(`sessions:${id}`)).toBe(1);
    }
  }, 60_000);
});
