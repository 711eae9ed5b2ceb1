import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisSpec, type RedisSpec } from '../../src/cache/redis-spec.js';
import { freePort } from './ports.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedis, type RedisServer } from './redis-server.js';

/**
 * A Redis deployment the tests start themselves, in one of the topologies the
 * tool supports, with the spec the tool would build for it and a plain ioredis
 * client (admin rights) for arranging and checking keys.
 */
export interface RedisTopology {
  name: string;
  spec: RedisSpec;
  /** An independent client for arranging and checking keys. */
  client: Redis | Cluster;
  /** The processes holding data (to pause or kill). */
  servers: RedisServer[];
  /** Deletes every key (FLUSHALL on each master: only ever on the tests' own servers). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

const TIMEOUT_MS = 1500;

/** The arranging client of a server a test kills must not print "Unhandled error event". */
const quiet = <T extends Redis | Cluster>(client: T): T => client.on('error', () => undefined) as T;

const spec = (settings: Parameters<typeof parseRedisSpec>[0]) => parseRedisSpec(settings)!;

export async function standaloneTopology(): Promise<RedisTopology> {
  const server = await startRedis();
  const client = quiet(new Redis(server.url));
  return {
    name: 'standalone',
    spec: spec({ url: { value: server.url, where: 'test' }, timeoutMs: TIMEOUT_MS }),
    client,
    servers: [server],
    flush: async () => void (await client.flushall()),
    stop: async () => {
      client.disconnect();
      await server.stop();
    },
  };
}

export async function clusterTopology(): Promise<RedisTopology> {
  const cluster = await startRedisCluster(3);
  const client = quiet(new Cluster(cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }))));
  return {
    name: 'cluster (3 masters)',
    spec: spec({ cluster: { value: cluster.seeds[0], where: 'test' }, timeoutMs: TIMEOUT_MS }),
    client,
    servers: cluster.nodes,
    flush: async () => void (await Promise.all(client.nodes('master').map((n) => n.flushall()))),
    stop: async () => {
      client.disconnect();
      await cluster.stop();
    },
  };
}

/**
 * One redis-server and one `redis-server --sentinel` monitoring it as `tmaster`; with `replica`, a
 * replica too, and `failover()` (SENTINEL FAILOVER, resolved once the Sentinel names the replica).
 */
export async function sentinelTopology(options: { replica?: boolean } = {}): Promise<RedisTopology & { failover(): Promise<number>; replica?: RedisServer }> {
  const master = await startRedis(['--requirepass', 'datapw', '--masterauth', 'datapw']);
  const replica = options.replica ? await startRedis(['--requirepass', 'datapw', '--masterauth', 'datapw', '--replicaof', '127.0.0.1', String(master.port)]) : undefined;
  const replicaClient = replica && quiet(new Redis({ port: replica.port, password: 'datapw' }));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-sentinel-'));
  const port = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(conf, [
    `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor tmaster 127.0.0.1 ${master.port} 1`,
    'sentinel auth-pass tmaster datapw',
    'sentinel down-after-milliseconds tmaster 60000',
    'requirepass sentinelpw',
    '',
  ].join('\n'));
  const proc = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  // Quiet: it is refused until the sentinel listens.
  const admin = quiet(new Redis({ port, password: 'sentinelpw', lazyConnect: true, retryStrategy: (n) => (n > 50 ? null : 100) }));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (admin.status === 'wait') await admin.connect();
      const addr = (await admin.call('SENTINEL', 'get-master-addr-by-name', 'tmaster')) as string[] | null;
      // With a replica: also known to the Sentinel and in sync (a failover needs one).
      const known = !replica || ((await admin.call('SENTINEL', 'replicas', 'tmaster')) as unknown[]).length > 0;
      const synced = !replica || /master_link_status:up/.test(await replicaClient!.info('replication'));
      if (addr && Number(addr[1]) === master.port && known && synced) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error('sentinel did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const failover = async () => {
    await admin.call('SENTINEL', 'FAILOVER', 'tmaster');
    const until = Date.now() + 20_000;
    for (;;) {
      const addr = (await admin.call('SENTINEL', 'get-master-addr-by-name', 'tmaster')) as string[];
      if (Number(addr[1]) !== master.port) return Number(addr[1]);
      if (Date.now() > until) throw new Error('the failover did not happen');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  if (!replica) admin.disconnect();
  const client = quiet(new Redis({ port: master.port, password: 'datapw' }));
  const server: RedisServer = { ...master, stop: async () => master.stop() };
  return {
    name: 'sentinel',
    spec: spec({
      url: { value: 'redis://:datapw@placeholder', where: 'test' },
      sentinel: { value: `127.0.0.1:${port}`, where: 'test' },
      sentinelMaster: { value: 'tmaster', where: 'test' },
      sentinelPassword: 'sentinelpw',
      timeoutMs: TIMEOUT_MS,
    }),
    client,
    servers: [server],
    flush: async () => void (await client.flushall()),
    failover,
    replica,
    stop: async () => {
      client.disconnect();
      admin.disconnect();
      replicaClient?.disconnect();
      proc.kill('SIGKILL');
      await master.stop();
      await replica?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A throw-away CA and a server certificate for 127.0.0.1, made with openssl. */
export function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=tenantctl-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  o('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'server.crt');
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

/**
 * A TLS-only redis-server and an ACL user `tenantctl` limited to what the tool
 * needs; `scripting: false` also denies EVAL (the store then sweeps client-side).
 */
export async function tlsAclTopology(options: { scripting?: boolean } = {}): Promise<RedisTopology & { certs: ReturnType<typeof makeCertificates> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-tls-'));
  const certs = makeCertificates(dir);
  const server = await startRedis(
    ['--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no', '--requirepass', 'adminpw'],
    { tlsPort: true },
  );
  const tls: RedisOptions['tls'] = { ca: execFileSync('cat', [certs.ca]) };
  const client = quiet(new Redis({ host: '127.0.0.1', port: server.port, password: 'adminpw', tls }));
  const rights = ['+@read', '+@write', '+@keyspace', '+ping', '+info', '+memory', '+time', '-flushall', '-flushdb', '-keys'];
  if (options.scripting !== false) rights.push('+@scripting');
  await client.call('ACL', 'SETUSER', 'tenantctl', 'reset', 'on', '>userpw', '~*', ...rights);
  return {
    name: options.scripting === false ? 'TLS + ACL user without scripting' : 'TLS + ACL user',
    spec: spec({ url: { value: `rediss://tenantctl:userpw@127.0.0.1:${server.port}`, where: 'test' }, tls: { ca: certs.ca }, timeoutMs: TIMEOUT_MS }),
    client,
    servers: [server],
    certs,
    flush: async () => void (await client.flushall()),
    stop: async () => {
      client.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
