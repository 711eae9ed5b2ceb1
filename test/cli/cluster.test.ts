import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/setup.js';
import { makeCertificates } from '../helpers/redis-topologies.js';
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

  it('TLS files given (REDIS_CA_CERT) turn TLS on for a Cluster\'s seeds: against a plain Cluster the error says so', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-cluster-tls-'));
    try {
      const { ca } = makeCertificates(dir);
      const r = await runCli(['test-redis', '--redis-cluster', seeds(), '--redis-timeout', '500'], { env: { REDIS_CA_CERT: ca } });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/TLS is on \(TLS files are given: a Cluster's seeds have no scheme\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('one Cluster node given as a plain Redis URL is refused, never walked as one server (its counts were a third of the truth, exit 0)', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `n${i}`);
    for (const id of ids) await client.set(`tenant_config:${id}`, '{}');
    const node = `redis://${cluster.seeds[0]}`;
    const said = /Redis at redis:\/\/127\.0\.0\.1:\d+ is a Cluster node: as one server it holds only its own slots' keys .*: give the Cluster's nodes with --redis-cluster host:port,\.\.\. \(or REDIS_CLUSTER_NODES\)$/m;
    for (const args of [['invalidate-all', '--dry-run'], ['invalidate-all', '--yes'], ['invalidate', 'n1'], ['test-redis']]) {
      const r = await runCli([...args, '--redis-url', node]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toMatch(said);
      expect(r.stderr).not.toMatch(/run again/);
    }
    // cache-info answers "unavailable" (exit 0, as for Redis down) with the reason, not a part of the counts.
    const info = await runCli(['cache-info', '--json', '--redis-url', node]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ available: false, error: expect.stringMatching(/is a Cluster node/), error_reason: 'cluster-node' });
    // Its warning, and doctor's exit-3 line, give the flag (they said only what was wrong).
    const hintSaid = /give the Cluster's nodes with --redis-cluster host:port,\.\.\. \(or REDIS_CLUSTER_NODES\)/;
    expect(info.stderr).toMatch(hintSaid);
    const doctor = await runCli(['doctor', '--redis-url', node]);
    expect(doctor.code, doctor.stderr).toBe(3);
    expect(doctor.stderr).toMatch(hintSaid);
    for (const id of ids) expect(await client.exists(`tenant_config:${id}`)).toBe(1);
  }, 60_000);
});
