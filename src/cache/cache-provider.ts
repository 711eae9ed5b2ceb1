import { BackendUnavailableError, describeError } from '../errors.js';
import { RedisConnection, type RedisConnectionOptions } from './redis-connection.js';
import { RedisCache } from './redis-cache.js';

/**
 * Opens the Redis connection on first use, once per run, and remembers when
 * Redis is down so a command tries it once, warns once, and falls back
 * (no retry loop, as the services do with `_redis_available = False`).
 */
export class CacheProvider {
  private cache: RedisCache | undefined;
  private opening: Promise<RedisCache> | undefined;
  private downError: BackendUnavailableError | undefined;
  private warned = false;

  constructor(
    private readonly options: Partial<RedisConnectionOptions> & { timeoutMs: number },
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** True when a Redis URL or cluster is configured at all. */
  get configured(): boolean {
    return !!(this.options.url || this.options.clusterNodes?.length);
  }

  get isDown(): boolean {
    return this.downError !== undefined;
  }

  /** The cache, or throws: for commands that need Redis (invalidate, test-redis). */
  async required(): Promise<RedisCache> {
    if (!this.configured) {
      throw new BackendUnavailableError('redis', 'no Redis configured: set REDIS_URL, --redis-url or --redis-cluster');
    }
    if (this.downError) throw this.downError;
    if (this.cache) return this.cache;
    this.opening ??= RedisConnection.open(this.options as RedisConnectionOptions).then((conn) => (this.cache = new RedisCache(conn)));
    try {
      return await this.opening;
    } catch (err) {
      throw this.markDown(err);
    }
  }

  /** The cache, or undefined (after one warning) when it is not configured or down. */
  async optional(): Promise<RedisCache | undefined> {
    if (!this.configured || this.downError) return undefined;
    try {
      return await this.required();
    } catch (err) {
      this.warnOnce(err);
      return undefined;
    }
  }

  /**
   * Runs a cache operation on the fallback path: on failure Redis is marked
   * down, one warning is printed, and `fallback` is returned.
   */
  async attempt<T>(op: (cache: RedisCache) => Promise<T>, fallback: T): Promise<T> {
    const cache = await this.optional();
    if (!cache) return fallback;
    try {
      return await op(cache);
    } catch (err) {
      this.markDown(err);
      this.warnOnce(err);
      return fallback;
    }
  }

  /** Records that Redis failed; later calls skip it. Returns the error to throw. */
  markDown(err: unknown): BackendUnavailableError {
    this.downError =
      err instanceof BackendUnavailableError ? err : new BackendUnavailableError('redis', `Redis failed: ${describeError(err)}`, { cause: err });
    if (this.cache) {
      this.cache.conn.close();
      this.cache = undefined;
    }
    return this.downError;
  }

  private warnOnce(err: unknown): void {
    if (this.warned) return;
    this.warned = true;
    this.warn(`warning: ${describeError(err)}; continuing without the cache`);
  }

  close(): void {
    this.cache?.conn.close();
    this.cache = undefined;
  }
}
