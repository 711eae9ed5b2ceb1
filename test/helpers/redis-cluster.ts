import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRedis, type RedisServer } from './redis-server.js';

const run = promisify(execFile);

export interface RedisClusterFixture {
  nodes: RedisServer[];
  seeds: string[];
  stop(): Promise<void>;
}

/** Starts `size` cluster-enabled redis-servers on loopback and joins them (no replicas). */
export async function startRedisCluster(size = 3): Promise<RedisClusterFixture> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']));
  }
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
  await run('redis-cli', ['--cluster', 'create', ...seeds, '--cluster-replicas', '0', '--cluster-yes']);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const infos = await Promise.all(nodes.map((n) => n.command('CLUSTER', 'INFO')));
    if (infos.every((i) => i.includes('cluster_state:ok'))) break;
    if (Date.now() > deadline) throw new Error('cluster did not become ok');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { nodes, seeds, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}
