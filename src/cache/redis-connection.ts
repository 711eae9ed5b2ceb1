import { readFileSync } from 'node:fs';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../config/registry-spec.js';
import { withDeadline } from './deadline.js';

export interface RedisConnectionOptions {
  url?: string;
  clusterNodes?: string[];
  /** Connect and per-command timeout, ms. */
  timeoutMs: number;
  /** PEM file of a CA to trust for rediss:// (env REDIS_CA_CERT). */
  caFile?: string;
}

export type RedisMode = 'standalone' | 'cluster';

/**
 * One Redis (or Redis Cluster) connection that a short-lived CLI can trust:
 * no offline queue, no reconnect loop, bounded connect and command time, an
 * `error` listener (so ioredis never prints "Unhandled error event"), and a
 * deadline around every operation. Always `close()` it in `finally`.
 */
export class RedisConnection {
  private lastError: Error | undefined;
  private closed = false;

  private constructor(
    readonly client: Redis | Cluster,
    readonly mode: RedisMode,
    readonly timeoutMs: number,
    /** Where it points, credentials masked, for messages. */
    readonly target: string,
  ) {
    client.on('error', (err: Error) => {
      this.lastError = err;
    });
  }

  /** Connects within the timeout or throws BackendUnavailableError naming the real cause. */
  static async open(options: RedisConnectionOptions): Promise<RedisConnection> {
    const { Redis: IORedis, Cluster } = await import('ioredis');
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: options.timeoutMs,
      commandTimeout: options.timeoutMs,
      // An ACL user without +info would fail the ready check (ioredis#1097).
      enableReadyCheck: false,
      // RESP2 works on every server version and managed service.
      protocol: 2,
      // On close ioredis waits this long for a socket that never finished
      // connecting (refused, black hole) before destroying it, and that timer
      // keeps the process alive: 2 s by default. Nothing is in flight at close.
      disconnectTimeout: 50,
    } as RedisOptions;
    if (options.caFile) base.tls = { ca: readFileSync(options.caFile) };

    let conn: RedisConnection;
    if (options.clusterNodes?.length) {
      const nodes = options.clusterNodes.map((n) => {
        const i = n.lastIndexOf(':');
        return { host: n.slice(0, i), port: Number(n.slice(i + 1)) };
      });
      const auth = options.url ? credentialsOf(options.url) : {};
      const tls = options.url?.startsWith('rediss://') ? { tls: base.tls ?? {} } : {};
      const { retryStrategy: _r, enableOfflineQueue: _q, ...redisOptions } = base;
      const cluster = new Cluster(nodes, {
        lazyConnect: true,
        // The cluster's offline queue is needed for its slot refresh (ioredis#581);
        // every operation still runs under a deadline because that queue ignores
        // commandTimeout (ioredis#1604).
        enableOfflineQueue: true,
        clusterRetryStrategy: () => null,
        slotsRefreshTimeout: options.timeoutMs,
        maxRedirections: 4,
        redisOptions: { ...redisOptions, ...auth, ...tls },
      });
      conn = new RedisConnection(cluster, 'cluster', options.timeoutMs, `cluster ${options.clusterNodes.join(',')}`);
    } else {
      const url = options.url!;
      const client = new IORedis(url, { ...base, ...(url.startsWith('rediss://') ? { tls: base.tls ?? {} } : {}) });
      conn = new RedisConnection(client, 'standalone', options.timeoutMs, maskUrl(url));
    }
    try {
      // One deadline over connect + PING: a TCP connect alone proves nothing (a
      // TLS port reached without TLS accepts and then stays silent), and on a
      // cluster the PING also waits for the slot map needed for fan-out (ioredis#1884).
      await withDeadline(
        (async () => {
          await conn.client.connect();
          await conn.client.ping();
        })(),
        options.timeoutMs + 250,
        `connecting to Redis at ${conn.target}`,
      );
      return conn;
    } catch (err) {
      const cause = conn.lastError ?? err;
      conn.close();
      throw new BackendUnavailableError('redis', `Redis at ${conn.target} is unreachable: ${describeError(cause)}`, { cause });
    }
  }

  /** Runs one operation under the deadline, turning any failure into BackendUnavailableError. */
  async run<T>(what: string, op: () => Promise<T>, ms = this.timeoutMs + 250): Promise<T> {
    try {
      return await withDeadline(op(), ms, `Redis ${what}`);
    } catch (err) {
      if (err instanceof BackendUnavailableError) throw err;
      throw new BackendUnavailableError('redis', `Redis ${what} failed: ${describeError(this.lastError && /closed|writeable/i.test(String(err)) ? this.lastError : err)}`, { cause: err });
    }
  }

  /** The nodes that hold keys: every master of a cluster, or the one server. */
  masters(): Redis[] {
    if (this.mode === 'cluster') return (this.client as Cluster).nodes('master');
    return [this.client as Redis];
  }

  /** Disconnects at once; the process must never stay alive because of Redis (ioredis#335). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.disconnect();
  }
}

function credentialsOf(url: string): { username?: string; password?: string } {
  const u = new URL(url);
  return {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}
