import { isIP } from 'node:net';
import { BackendUnavailableError } from '../errors.js';
import type { RedisSpec } from './redis-spec.js';
import { withDeadline } from './deadline.js';

/** What this needs of a client (the ioredis adapter hands in its own; nothing here imports ioredis). */
export interface SentinelClient {
  readonly status: string;
  connect(): Promise<void>;
  call(...args: string[]): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** Connection options as the adapter builds them (its base options for every client). */
type ClientOptions = Record<string, unknown>;

export interface MasterAddress {
  host: string;
  port: number;
}

/**
 * Asks the Sentinels which server is the master now, on one connection kept
 * open for the store's life (moving to the next Sentinel when one fails or
 * does not know the master). ioredis asks them once, at connect; with its
 * failover detector off, nothing else notices a failover under way.
 */
export class SentinelWatch {
  private client: SentinelClient | undefined;
  private at = 0;

  constructor(
    private readonly open: (options: ClientOptions) => SentinelClient,
    private readonly spec: RedisSpec,
    private readonly base: ClientOptions,
  ) {}

  /** The master the first Sentinel that answers names; undefined when none does. */
  async master(): Promise<MasterAddress | undefined> {
    for (let tried = 0; tried < this.spec.nodes.length; tried++) {
      try {
        const client = (this.client ??= this.connect());
        const named = (await withDeadline(
          (async () => {
            if (client.status === 'wait') await client.connect();
            return client.call('SENTINEL', 'get-master-addr-by-name', this.spec.sentinelMaster!);
          })(),
          this.spec.timeoutMs,
          'asking a Sentinel for the master',
        )) as [string, string] | null;
        if (named) return { host: named[0], port: Number(named[1]) };
      } catch {
        // This one failed: the next.
      }
      this.client?.disconnect();
      this.client = undefined;
      this.at = (this.at + 1) % this.spec.nodes.length;
    }
    return undefined;
  }

  private connect(): SentinelClient {
    const node = this.spec.nodes[this.at];
    const client = this.open({ ...this.base, host: node.host, port: node.port, username: undefined, password: this.spec.sentinelPassword, db: undefined });
    client.on('error', () => undefined);
    return client;
  }

  close(): void {
    this.client?.disconnect();
    this.client = undefined;
  }
}

/** Whether the socket's peer is the master the Sentinels name (a hostname they give is matched by port). */
export function isNamedMaster(named: MasterAddress, peer: { address?: string; port?: number }): boolean {
  const address = peer.address?.replace(/^::ffff:/, '');
  return named.port === peer.port && (isIP(named.host) === 0 || named.host === address);
}

/** Deleted on a master that was failed over meanwhile: the work may come undone when it rejoins as a replica. */
export function failedOverError(name: string, was: string, now: MasterAddress): BackendUnavailableError {
  return new BackendUnavailableError(
    'redis',
    `Redis Sentinel failed over during this run (master ${name} moved from ${was} to ${now.host}:${now.port}): keys deleted on the old master may come back when it rejoins as a replica; run again`,
    { reason: 'failed' },
  );
}
