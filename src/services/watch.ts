import { BackendUnavailableError, InterruptedError, PartialFailureError, UsageError, describeError } from '../errors.js';
import { PERMISSIONS_FAMILY, type KeySpace } from '../keys/key-families.js';
import { Cache, type OpenStore } from '../cache/cache.js';
import type { RedisSpec } from '../cache/redis-spec.js';
import { unusableRegistry, type RegistrySpec } from '../registry/registry-spec.js';
import type { ChangeFeed, ChangeKind, RegistryChange } from '../registry/change-feed.js';
import { missingTriggers, type TriggerChange } from '../registry/watch-triggers.js';
import type { YamlTenantSource } from '../tenants/tenant-source.js';
import { CacheAdmin, type TenantInvalidation } from './cache-admin.js';
import { CacheVerifier, type VerifyEntry } from './verify.js';
import { WatchMetrics, type ChangeSource } from './watch-metrics.js';
import { MAX_OVERLAP_MS, MAX_TIMEOUT_MS, parsePositiveInt } from '../config/positive-int.js';

/** One line of watch's log: a change applied (keys deleted), however it was found. */
export interface WatchEvent {
  /** When it was applied. */
  time: string;
  source: ChangeSource;
  kind: ChangeKind;
  /** The tenant or business; absent for the all-* kinds. */
  tenant?: string;
  /** The table changed, or the cache family found stale (verify). */
  table: string;
  /** INSERT / UPDATE / DELETE / TRUNCATE / CHANGE; `changed` (reconcile); `stale` / `orphan` (verify). */
  op: string;
  /** Notifications folded into this line (the same target changed again before it was applied). */
  changes: number;
  /** Keys deleted, and per family (non-zero only). */
  deleted: number;
  families: Record<string, number>;
  /** From the trigger (database clock) to the keys being gone, ms (notifications only). */
  lag_ms?: number;
}

/** The registry a watch can listen to: PostgreSQL (Supabase through its Postgres connection string), nothing else. */
export function watchableUrl(spec: RegistrySpec): string {
  if (spec.kind === 'postgres') return spec.url;
  if (spec.kind === 'invalid') throw unusableRegistry(spec);
  const why = {
    embedded: 'the embedded registry (PGlite in-process) has no server to LISTEN to',
    memory: 'an in-memory registry has no server to LISTEN to',
    supabase: 'a Supabase registry given as https:// has no Postgres session to LISTEN on; give its Postgres connection string instead (Project Settings > Database: the direct or session-pooler URL, not the transaction pooler on port 6543)',
  }[spec.kind];
  throw new UsageError(`watch needs a PostgreSQL registry (LISTEN/NOTIFY) and is not supported here: ${why}`, { reason: 'watch-unsupported' });
}

/** Creates the change triggers (after making tenantctl's schema current, as every writer does); idempotent. */
export async function installWatch(url: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<TriggerChange> {
  const { openPostgresStore } = await import('../registry/postgres-store.js');
  const { installWatchTriggers } = await import('../registry/watch-triggers.js');
  const store = await openPostgresStore(url, timeoutMs, env);
  try {
    await store.ensureSchema();
    return await installWatchTriggers(store);
  } finally {
    await store.close();
  }
}

/** Drops the change triggers and their function; nothing else. */
export async function uninstallWatch(url: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<TriggerChange> {
  const { openPostgresStore } = await import('../registry/postgres-store.js');
  const { uninstallWatchTriggers } = await import('../registry/watch-triggers.js');
  const store = await openPostgresStore(url, timeoutMs, env);
  try {
    return await uninstallWatchTriggers(store);
  } finally {
    await store.close();
  }
}

export interface WatchDeps {
  /** The PostgreSQL registry (see watchableUrl). */
  url: string;
  registryTimeoutMs: number;
  redis: RedisSpec;
  keys: KeySpace;
  source: YamlTenantSource;
  /** For the verify pass (the same resolution as get-config --no-cache). */
  env: NodeJS.ProcessEnv;
  /** Opens the cache store (tests hand in their own). @default the ioredis adapter */
  openCache?: OpenStore;
}

export interface WatchOptions {
  /**
   * Stops the watch: it stops listening, applies the changes already received (bounded by them and the Redis
   * timeout), closes both connections; run() then resolves.
   */
  signal: AbortSignal;
  /** One call per change applied. */
  onEvent: (event: WatchEvent) => void;
  /** Connection, reconnection and reconciliation messages (stderr). */
  onNotice: (line: string) => void;
  /** Called once, when the first reconciliation is done and changes are being applied as they come. */
  onReady?: () => void;
  metrics?: WatchMetrics;
  /**
   * After a reconnect, rows changed since this long before the last moment
   * watch knew it had seen everything are invalidated again: updated_at is set
   * at a transaction's *start* (now()), so a transaction that began before a
   * disconnect and committed after it carries an older time; and a service
   * that sets updated_at from its own clock may be behind. @default 300000 (5 min)
   */
  overlapMs?: number;
  /**
   * At start nothing is known of the past: rows changed this long ago or less
   * are invalidated. An entry cached before a change is gone by itself one TTL
   * after the change at the latest, so the longest TTL is enough. @default the longest family TTL
   */
  startupLookbackMs?: number;
  /** A round trip to both backends this often, so a silent loss is found. @default 5000 */
  heartbeatMs?: number;
  /** Backoff between connection attempts: doubling from `initialMs` up to `maxMs`, with ±20% jitter (never past `maxMs`). @default 100, 5000 */
  reconnect?: { initialMs: number; maxMs: number };
  /** Keys per MGET of the verify pass and rows per page of a reconcile query. @default 500 */
  batchSize?: number;
}

/** Targets applied together at most (several tenants share one pass over the wildcard families). */
const APPLY_BATCH = 5000;

interface Pending {
  kind: ChangeKind;
  id?: string;
  table: string;
  op: string;
  source: ChangeSource;
  count: number;
  /** The earliest trigger time folded in, ms. */
  ts?: number;
  /** Keys the verify pass deleted itself before this was applied (its stale entry), per family: counted and said with it. */
  predeleted?: Record<string, number>;
}

/** One backend's reconnection state. */
interface Backoff {
  attempt: number;
  delayMs: number;
  retryAt: number;
  /**
   * Whether the connection has done real work since it opened (a step went
   * through with it up). Only then does the backoff start again from its
   * initial delay: a server that accepts the connection and the PING but
   * refuses the work (a replica refusing UNLINK, a role without SELECT) would
   * otherwise be reconnected at once, forever.
   */
  proven: boolean;
}

/**
 * Event-driven invalidation: LISTENs on the registry's change channel and
 * deletes the changed tenant's keys (every family for a `tenants` row,
 * `permissions:<business>` for a subscription, every `permissions:` entry
 * for the catalogue), in batches. NOTIFY is at most once (nothing is kept
 * while no session listens), so after every (re)connection of either backend
 * it reconciles: the rows whose updated_at is after the high-water mark
 * (minus an overlap), then the verify pass over every cached
 * `tenant_config:` / `permissions:` entry. Changes received while Redis is
 * down are kept (one per target) and applied once it is back.
 */
export class Watcher {
  readonly metrics: WatchMetrics;
  private feed: ChangeFeed | undefined;
  private cache: Cache | undefined;
  private admin: CacheAdmin | undefined;
  private readonly pending = new Map<string, Pending>();
  /**
   * The database server's clock (ms) at the last round trip on the listening
   * session: every change committed before it has been received. Not the
   * largest updated_at seen: a service may set updated_at from its own clock,
   * and one clock running ahead would hide later changes from a reconcile.
   */
  private highWater: number | undefined;
  private rowsOwed = true;
  /**
   * The change triggers are missing (found at connect or at a heartbeat: a
   * DBA ran --uninstall, or recreated a table): no notification comes, so
   * every heartbeat reconciles rows instead, until they are back.
   */
  private triggersMissing = false;
  /** While polling: the updated_at each row was last invalidated for, so a change is applied once, not once per heartbeat of the overlap. */
  private readonly polled = new Map<string, number>();
  private verifyOwed = true;
  private ready = false;
  private heartbeatDue = false;
  private readonly pg: Backoff;
  private readonly redis: Backoff;
  private everConnected = { postgres: false, redis: false };
  private woken = false;
  private waiter: (() => void) | undefined;
  private readonly overlapMs: number;
  private readonly startupLookbackMs: number;
  private readonly batchSize: number;
  private readonly backoff: { initialMs: number; maxMs: number };

  constructor(
    private readonly deps: WatchDeps,
    private readonly options: WatchOptions,
  ) {
    this.metrics = options.metrics ?? new WatchMetrics();
    // Timers overflow past 2^31-1 ms (Node fires them at once: a heartbeat of 3e9 ms PINGed every 1 ms), and an
    // overlap of 2^53 ms reached PostgreSQL as a timestamp out of range on every reconnect: refused here.
    for (const [name, value, max] of [['heartbeatMs', options.heartbeatMs, MAX_TIMEOUT_MS], ['reconnect.initialMs', options.reconnect?.initialMs, MAX_TIMEOUT_MS], ['reconnect.maxMs', options.reconnect?.maxMs, MAX_TIMEOUT_MS], ['overlapMs', options.overlapMs, MAX_OVERLAP_MS], ['startupLookbackMs', options.startupLookbackMs, MAX_OVERLAP_MS]] as const) {
      if (value !== undefined) parsePositiveInt(value, name, name === 'overlapMs' || name === 'startupLookbackMs' ? 0 : 1, max);
    }
    this.overlapMs = options.overlapMs ?? 300_000;
    const longestTtl = Math.max(...deps.keys.families.map((f) => f.ttl ?? 0), 0);
    // Capped as an explicit one is: a family TTL of 1e13 s looped on "timestamp out of range" (a review).
    this.startupLookbackMs = options.startupLookbackMs ?? Math.min(longestTtl * 1000, MAX_OVERLAP_MS);
    this.batchSize = options.batchSize ?? 500;
    this.backoff = options.reconnect ?? { initialMs: 100, maxMs: 5000 };
    this.pg = { attempt: 0, delayMs: this.backoff.initialMs, retryAt: 0, proven: false };
    this.redis = { attempt: 0, delayMs: this.backoff.initialMs, retryAt: 0, proven: false };
  }

  /**
   * Runs until the signal: connects (retrying with backoff), reconciles,
   * applies changes as they arrive. Resolves after closing both connections.
   * Throws UsageError when the triggers are not installed at start, and any
   * unexpected error.
   */
  async run(): Promise<void> {
    const { signal } = this.options;
    const onAbort = () => this.wake();
    signal.addEventListener('abort', onAbort, { once: true });
    const beat = setInterval(() => {
      this.heartbeatDue = true;
      this.wake();
    }, this.options.heartbeatMs ?? 5000);
    try {
      while (!signal.aborted) {
        if (!this.feed && Date.now() >= this.pg.retryAt) await this.connectPostgres();
        if (!this.cache && Date.now() >= this.redis.retryAt) await this.connectRedis();
        try {
          await this.step();
        } catch (err) {
          this.fail(err);
          continue;
        }
        if (this.feed) this.proven(this.pg);
        if (this.cache) this.proven(this.redis);
        await this.idle(this.nextRetryIn());
      }
    } finally {
      clearInterval(beat);
      signal.removeEventListener('abort', onAbort);
      try {
        await this.finishReceived();
      } finally {
        await this.closeAll();
      }
    }
  }

  /**
   * Stopped: the changes already received (notified, or found by a reconcile or the verify pass) are applied
   * before it ends, past the stop. A probe: a SIGTERM 200 ms after a 5,000-row UPDATE cut the batch being
   * applied (4,946 tenants' keys left cached, "5000 change(s) not applied"), and a stop during the verify pass
   * dropped the invalidations of the tenants whose stale entries it had already deleted, so a restart could no
   * longer find them. The feed is closed first: what commits after the stop is the next run's to reconcile.
   * Bounded by what was received and the Redis timeout (the CLI's second signal ends the process at once);
   * Redis failing here leaves them not applied, named by notAppliedNotice.
   */
  private async finishReceived(): Promise<void> {
    if (!this.options.signal.aborted || !this.cache || !this.pending.size) return;
    const feed = this.feed;
    this.feed = undefined;
    this.metrics.up.postgres = 0;
    await feed?.close();
    this.options.onNotice(`watch: stopping: applying the ${this.pending.size} change(s) already received`);
    try {
      await this.drain(null);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      this.options.onNotice(`watch: Redis failed while applying them: ${describeError(err)}`);
    }
  }

  /**
   * The targets of the changes not applied (Redis down at the stop), said by their ids: a few, and how many
   * more; `inFlight`: with the batch being applied (a stop at once cuts it: a review found 44,354 tenants left
   * cached, not named, after "a rerun finishes the job", which a watch's rerun does not).
   */
  notAppliedNotice(inFlight = false): string | undefined {
    const all = [...(inFlight ? this.applying : []), ...this.pending.values()];
    if (!all.length) return undefined;
    const targets = all.map((p) => (p.id === undefined ? (p.kind === 'all-permissions' ? 'every permissions: entry' : 'every tenant') : `${p.kind === 'permissions' ? 'permissions ' : ''}${p.id}`));
    const shown = targets.slice(0, 10).join(', ');
    return `watch: not applied (their keys may still be cached): ${shown}${targets.length > 10 ? `, and ${targets.length - 10} more` : ''}; \`tenantctl invalidate <tenant...>\` deletes a tenant's keys`;
  }

  /** The batch being applied, out of `pending` meanwhile. */
  private applying: Pending[] = [];

  /** Whatever can be done with the backends that are up. */
  private async step(): Promise<void> {
    if (this.cache) await this.drain();
    // Each reconcile checks both again: a loss during the one before drops a backend without throwing.
    if (this.feed && this.cache && this.rowsOwed) await this.reconcileRows();
    if (this.feed && this.cache && this.verifyOwed) await this.reconcileCache();
    if (this.feed && this.cache) {
      if (!this.ready) {
        this.ready = true;
        this.options.onReady?.();
      }
    }
    if (this.heartbeatDue) {
      this.heartbeatDue = false;
      const feed = this.feed;
      if (feed) {
        const serverNow = await feed.heartbeat();
        // While a reconcile is owed the mark stays where the gap began (Redis may come back long after PostgreSQL).
        if (!this.rowsOwed) this.noteHighWater(serverNow);
        // The feed read before the await: a loss meanwhile drops this.feed, and this one then fails as a registry error.
        await this.checkTriggers(feed);
      }
      if (this.cache) await this.cache.need((s) => s.ping());
    }
  }

  // ------------------------------------------------------------ connections

  private async connectPostgres(): Promise<void> {
    const { openChangeFeed } = await import('../registry/change-feed.js');
    this.pg.attempt++;
    try {
      const feed = await openChangeFeed(this.deps.url, {
        timeoutMs: this.deps.registryTimeoutMs,
        env: this.deps.env,
        onChange: (c) => this.enqueue(c, 'notify'),
        onIgnored: (why, part) => {
          // A notification handled in part (its valid id invalidated) is no ignored one for the metric (a review).
          if (!part) this.metrics.ignored++;
          this.options.onNotice(`watch: ${part ? 'part of a notification' : 'notification'} ignored: ${why}`);
        },
        onLost: (err) => this.dropPostgres(err),
        // SIGTERM while PostgreSQL is silent: the connect is given up now (it was waited out: 18 s with a 20 s
        // timeout, past a systemd unit's TimeoutStopSec).
        signal: this.options.signal,
      });
      const status = await feed.triggerStatus().catch(async (err) => {
        await feed.close();
        throw err;
      });
      if (!status.installed) {
        const missing = `the change triggers are not installed in ${feed.description} (${missingTriggers(status)})`;
        if (!this.everConnected.postgres) {
          await feed.close();
          throw new UsageError(missing, { reason: 'watch-not-installed' });
        }
        this.triggersGone(missing);
      } else if (!status.current) {
        this.options.onNotice('watch: note: the change triggers were installed by another version of tenantctl; `tenantctl watch --install` updates them');
      }
      this.feed = feed;
      this.connected('postgres', this.pg, `PostgreSQL reconnected (${feed.description})`);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      this.retryLater(this.pg, 'PostgreSQL', err);
    }
  }

  private async connectRedis(): Promise<void> {
    this.redis.attempt++;
    // The signal ends a wait for a silent Redis at once (the loop then sees it and stops).
    const cache = new Cache(this.deps.redis, { open: this.deps.openCache, signal: this.options.signal });
    try {
      await cache.need((s) => s.ping());
    } catch (err) {
      cache.close();
      if (err instanceof InterruptedError) return;
      if (!(err instanceof BackendUnavailableError)) throw err;
      this.retryLater(this.redis, 'Redis', err);
      return;
    }
    this.cache = cache;
    this.admin = new CacheAdmin(cache, this.deps.keys);
    this.connected('redis', this.redis, `Redis reconnected (${cache.target})`);
  }

  /** A backend is (back) up: count a reconnection, reset its backoff, and owe a reconcile. */
  private connected(which: 'postgres' | 'redis', b: Backoff, reconnected: string): void {
    this.metrics.up[which] = 1;
    if (this.everConnected[which]) {
      this.metrics.reconnects[which]++;
      this.options.onNotice(`watch: ${reconnected} after ${b.attempt} attempt(s); reconciling`);
    }
    this.everConnected[which] = true;
    b.attempt = 0;
    b.proven = false;
    // What happened while nobody listened: the rows since the high-water mark, then the cache itself.
    this.rowsOwed = true;
    this.verifyOwed = true;
  }

  /** A step went through with this backend up: its next loss reconnects at once, then backs off from the start. */
  private proven(b: Backoff): void {
    if (b.proven) return;
    b.proven = true;
    b.delayMs = this.backoff.initialMs;
  }

  /** When to try again: after the current delay (+-20%, never past the maximum), which doubles up to the maximum. */
  private schedule(b: Backoff): number {
    // Capped after the jitter: --reconnect-max is the longest wait (5000 gave "retrying in 5849 ms").
    const delay = Math.min(this.backoff.maxMs, Math.round(b.delayMs * (0.8 + Math.random() * 0.4)));
    b.retryAt = Date.now() + delay;
    b.delayMs = Math.min(this.backoff.maxMs, b.delayMs * 2);
    return delay;
  }

  private retryLater(b: Backoff, what: string, err: unknown): void {
    const delay = this.schedule(b);
    // Stopping (SIGINT/SIGTERM): a connect cut short by the stop is no news, nor is there a retry.
    if (this.options.signal.aborted) return;
    // A server that answered and refused (the login, or the rights) is not "unreachable": said as what it is.
    const state = err instanceof BackendUnavailableError && err.refused ? 'connect refused' : 'unreachable';
    this.options.onNotice(`watch: ${what} ${state} (attempt ${b.attempt}): ${describeError(err)}; retrying in ${delay} ms`);
  }

  /** After a loss: at once when the connection had worked, else after the backoff (it failed its first work). */
  private lost(b: Backoff, what: string, err: unknown, kept = ''): void {
    if (this.options.signal.aborted) return;
    if (b.proven) {
      b.retryAt = 0;
      this.options.onNotice(`watch: ${what} connection lost (${describeError(err)}); reconnecting${kept}`);
    } else {
      const delay = this.schedule(b);
      this.options.onNotice(`watch: ${what} failed before doing any work (${describeError(err)}); retrying in ${delay} ms${kept}`);
    }
  }

  private nextRetryIn(): number | undefined {
    const waits = [!this.feed ? this.pg.retryAt : undefined, !this.cache ? this.redis.retryAt : undefined].filter((t): t is number => t !== undefined);
    return waits.length ? Math.max(0, Math.min(...waits) - Date.now()) : undefined;
  }

  private dropPostgres(err: unknown): void {
    if (!this.feed) return;
    const feed = this.feed;
    this.feed = undefined;
    this.metrics.up.postgres = 0;
    this.lost(this.pg, 'PostgreSQL', err);
    void feed.close();
    this.wake();
  }

  private dropRedis(err: unknown): void {
    if (!this.cache) return;
    this.cache.close();
    this.cache = undefined;
    this.admin = undefined;
    this.metrics.up.redis = 0;
    this.lost(this.redis, 'Redis', err, ' (changes received meanwhile are kept)');
    this.wake();
  }

  /** A backend failure drops that backend (its work stays owed); anything else is not ours to absorb. */
  private fail(err: unknown): void {
    if (err instanceof BackendUnavailableError && err.backend === 'redis') return this.dropRedis(err);
    if (err instanceof BackendUnavailableError && err.backend === 'registry') return this.dropPostgres(err);
    if (err instanceof InterruptedError && this.options.signal.aborted) return;
    throw err;
  }

  private async closeAll(): Promise<void> {
    const feed = this.feed;
    this.feed = undefined;
    this.cache?.close();
    this.cache = undefined;
    this.metrics.up.postgres = 0;
    this.metrics.up.redis = 0;
    await feed?.close();
  }

  /** At every heartbeat: triggers that went (or came back) while connected change how changes arrive. */
  private async checkTriggers(feed: ChangeFeed): Promise<void> {
    const status = await feed.triggerStatus();
    this.metrics.triggersInstalled = status.installed ? 1 : 0;
    if (!status.installed) {
      if (!this.triggersMissing) this.triggersGone(`the change triggers were ${status.disabled.length === status.missing.length ? 'disabled in' : 'removed from'} ${feed.description} (${missingTriggers(status)})`);
      // Polling: the rows changed since the mark (minus the overlap), at every heartbeat.
      this.rowsOwed = true;
    } else if (this.triggersMissing) {
      this.triggersMissing = false;
      this.polled.clear();
      // One more pass: a row changed between the last poll and the triggers' return sent no notification.
      this.rowsOwed = true;
      this.options.onNotice('watch: the change triggers are installed again; back to notifications');
    }
  }

  private triggersGone(why: string): void {
    this.triggersMissing = true;
    this.metrics.triggersInstalled = 0;
    // (Said of some of them too: the others still notify; it said "no notification arrives" of 1 missing in 10.)
    this.options.onNotice(`watch: warning: ${why}: changes where a trigger is missing send no notification; reconciling the changed rows at every heartbeat until \`tenantctl watch --install\` runs`);
  }

  // ------------------------------------------------------------ waiting

  private wake(): void {
    this.woken = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Until something happens (a change, a heartbeat, a loss, the signal) or `timeoutMs`. */
  private async idle(timeoutMs?: number): Promise<void> {
    if (!this.woken) {
      await new Promise<void>((resolve) => {
        const timer = timeoutMs === undefined ? undefined : setTimeout(resolve, timeoutMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.waiter = undefined;
    this.woken = false;
  }

  // ------------------------------------------------------------ changes

  private noteHighWater(ms: number | undefined): void {
    if (ms !== undefined && Number.isFinite(ms) && (this.highWater === undefined || ms > this.highWater)) this.highWater = ms;
  }

  /** Keeps one entry per target: a tenant changed twice before it is applied is invalidated once. */
  private enqueue(c: Pick<RegistryChange, 'kind' | 'id' | 'table' | 'op' | 'ts' | 'at'>, source: ChangeSource, predeleted?: Record<string, number>): void {
    this.metrics.changes[source]++;
    const key = `${c.kind}:${c.id ?? '*'}`;
    const had = this.pending.get(key);
    if (had) {
      foldInto(had, { count: 1, ts: c.ts, predeleted });
    } else {
      this.pending.set(key, { kind: c.kind, id: c.id, table: c.table, op: c.op, source, count: 1, ts: c.ts, ...(predeleted && { predeleted }) });
    }
    this.metrics.pending = this.pending.size;
    this.wake();
  }

  /**
   * Applies what is pending, a batch at a time; a batch that fails goes back, to be applied after the reconnect.
   * `stop`: what ends it between (and within) batches; null for the changes received before a stop.
   */
  private async drain(stop: AbortSignal | null = this.options.signal): Promise<void> {
    while (this.pending.size && this.cache && !stop?.aborted) {
      // Large batches: a burst (a migration of thousands of tenants) costs one keyspace pass per batch.
      const batch: Pending[] = [];
      for (const [key, p] of this.pending) {
        batch.push(p);
        this.pending.delete(key);
        if (batch.length >= APPLY_BATCH) break;
      }
      this.applying = batch;
      try {
        await this.apply(batch, stop ?? undefined);
      } catch (err) {
        for (const p of batch) {
          const key = `${p.kind}:${p.id ?? '*'}`;
          const had = this.pending.get(key);
          if (had) foldInto(had, p);
          else this.pending.set(key, p);
        }
        throw err;
      } finally {
        this.applying = [];
        this.metrics.pending = this.pending.size;
      }
    }
  }

  private async apply(batch: Pending[], signal: AbortSignal | undefined): Promise<void> {
    const admin = this.admin!;
    const cache = this.cache!;
    const done = new Map<Pending, { deleted: number; families: Record<string, number> }>();
    const nonZero = (f: Record<string, number>) => Object.fromEntries(Object.entries(f).filter(([, n]) => n > 0));
    try {
      for (const p of batch.filter((x) => x.kind === 'all-tenants' || x.kind === 'all-permissions')) {
        const r = await admin.invalidateAll({ families: p.kind === 'all-permissions' ? [PERMISSIONS_FAMILY] : undefined, signal });
        done.set(p, { deleted: r.total, families: nonZero(r.families) });
      }
      const tenants = batch.filter((x) => x.kind === 'tenant');
      if (tenants.length) {
        const results = new Map((await admin.invalidateTenants(tenants.map((t) => t.id!), { signal })).map((r) => [r.tenant, r]));
        for (const t of tenants) {
          const r = results.get(t.id!);
          done.set(t, { deleted: r?.total ?? 0, families: nonZero(r?.families ?? {}) });
        }
      }
      const perms = batch.filter((x) => x.kind === 'permissions');
      if (perms.length) {
        const removed = await cache.need((s) => s.unlink(perms.map((p) => this.deps.keys.key(PERMISSIONS_FAMILY, p.id!))));
        perms.forEach((p, i) => done.set(p, { deleted: removed[i], families: removed[i] ? { [PERMISSIONS_FAMILY]: removed[i] } : {} }));
      }
    } catch (err) {
      // The batch goes back to pending (its changes are not applied), but the keys deleted before it stopped
      // (a signal, Redis failing) are deleted: counted (a stopped watch said 1,413 keys of the 7,712 it deleted),
      // and kept with their changes, so the line of a change applied again says them (a review: "deleted 0 keys"
      // for tenants whose keys the cut attempt had deleted).
      this.metrics.keysDeleted += [...done.values()].reduce((n, d) => n + d.deleted, 0) + deletedBefore(err);
      for (const [p, d] of done) if (d.deleted) p.predeleted = addCounts(p.predeleted, d.families);
      const rows = (err as { partial?: unknown } | null)?.partial;
      if (Array.isArray(rows)) {
        const byTenant = new Map(batch.filter((p) => p.kind === 'tenant').map((p) => [p.id!, p]));
        for (const r of rows as Array<Partial<TenantInvalidation> | null>) {
          const p = r?.tenant === undefined ? undefined : byTenant.get(r.tenant);
          if (p && r?.families) p.predeleted = addCounts(p.predeleted, nonZero(r.families));
        }
      }
      throw err;
    }
    const now = Date.now();
    for (const p of batch) {
      const applied = done.get(p)!;
      // What the verify pass deleted itself (the stale entry) is part of this change's count and line.
      const pre = p.predeleted ?? {};
      const r = { deleted: applied.deleted + Object.values(pre).reduce((a, n) => a + n, 0), families: addCounts(applied.families, pre) };
      // (The verify pass's own deletions were counted when it made them: a change never applied keeps them.)
      this.metrics.keysDeleted += applied.deleted;
      const lag = p.source === 'notify' && p.ts !== undefined ? Math.max(0, now - p.ts) : undefined;
      if (lag !== undefined) this.metrics.lastLagMs = lag;
      // A notification is always a line; a reconciliation's finding only when it deleted something (its notice counts the rest).
      if (p.source !== 'notify' && r.deleted === 0) continue;
      this.options.onEvent({
        time: new Date(now).toISOString(),
        source: p.source,
        kind: p.kind,
        ...(p.id !== undefined ? { tenant: p.id } : {}),
        table: p.table,
        op: p.op,
        changes: p.count,
        deleted: r.deleted,
        families: r.families,
        ...(lag !== undefined ? { lag_ms: lag } : {}),
      });
    }
  }

  // ------------------------------------------------------------ reconciliation

  /** Rows changed since the high-water mark minus the overlap (at start: within the longest TTL), page by page. */
  private async reconcileRows(): Promise<void> {
    const feed = this.feed!;
    const since = this.highWater !== undefined ? this.highWater - this.overlapMs : (await feed.heartbeat()) - this.startupLookbackMs;
    const polling = this.triggersMissing;
    let applied = 0;
    const { serverNow, found } = await feed.changedSince(since, this.batchSize, async (changes) => {
      for (const c of changes) {
        // Polling sees a change at every heartbeat of the overlap: applied once per updated_at.
        const key = `${c.kind}:${c.id ?? '*'}`;
        if (polling && c.at !== undefined && this.polled.get(key) === c.at) continue;
        if (polling && c.at !== undefined) this.polled.set(key, c.at);
        this.enqueue(c, 'reconcile');
        applied++;
      }
      await this.drain();
    });
    this.noteHighWater(serverNow);
    this.rowsOwed = false;
    if (polling) {
      // What left the window cannot come back: forget it.
      for (const [key, at] of this.polled) if (at < since) this.polled.delete(key);
      if (applied) this.options.onNotice(`watch: polling (no triggers): ${applied} changed row(s) invalidated`);
      return;
    }
    this.metrics.reconciles++;
    this.options.onNotice(`watch: reconcile: ${found} row(s) changed since ${new Date(since).toISOString()} invalidated`);
  }

  /**
   * verify with fix, whose failure after some deletions is a PartialFailureError (exit 4 for the CLI's
   * verify --fix): for watch it is the backend failing, retried with backoff like any other.
   */
  private async verifyOrBackendError(verifier: CacheVerifier, options: Parameters<CacheVerifier['verify']>[0]) {
    try {
      return await verifier.verify(options);
    } catch (err) {
      if (err instanceof PartialFailureError && err.cause instanceof BackendUnavailableError) throw err.cause;
      throw err;
    }
  }

  /** The verify pass: every cached tenant_config: / permissions: entry compared with the registry now; the wrong ones invalidated. */
  private async reconcileCache(): Promise<void> {
    const feed = this.feed!;
    const verifier = new CacheVerifier({ cache: this.cache!, keys: this.deps.keys, registry: async () => feed.registry, source: this.deps.source, env: this.deps.env });
    const report = await this.verifyOrBackendError(verifier, {
      batchSize: this.batchSize,
      signal: this.options.signal,
      // The wrong entries themselves go (as verify --fix: each only while it still holds what was judged).
      fix: true,
      onEntry: (e: VerifyEntry) => {
        // A stale config, or a tenant suspended or deleted in the registry, means its row changed unseen:
        // every family of that tenant goes, as for a notification. A tenant the registry does not know at all
        // loses only that entry: a watch pointed at the wrong (empty) registry deleted every key of every
        // cached tenant at start-up.
        const deleted = e.fixed ? { [e.family]: 1 } : undefined;
        const kind = e.family === PERMISSIONS_FAMILY ? 'permissions' : 'tenant';
        if (e.status === 'stale' || (e.status === 'orphan' && e.rowExists)) {
          if (deleted) this.metrics.keysDeleted++;
          this.enqueue({ kind, id: e.tenant, table: e.family, op: e.status }, 'verify', deleted);
        } else if (deleted) {
          // That entry only, deleted by the verify pass: counted and said as every deletion is.
          this.metrics.changes.verify++;
          this.metrics.keysDeleted++;
          this.options.onEvent({ time: new Date().toISOString(), source: 'verify', kind, tenant: e.tenant, table: e.family, op: e.status, changes: 1, deleted: 1, families: deleted });
        }
      },
    });
    await this.drain();
    this.verifyOwed = false;
    const s = report.summary;
    this.options.onNotice(`watch: reconcile: verified ${s.checked} cached entries: ${s.stale} stale and ${s.orphan} orphan deleted (the tenants changed unseen invalidated in every family; one the registry does not know, that entry only) (${(s.ms / 1000).toFixed(1)} s)`);
  }
}

/** One more change to a target already pending: its count, what the verify pass deleted, the earliest trigger time. */
function foldInto(had: Pending, more: Pick<Pending, 'count' | 'ts' | 'predeleted'>): void {
  had.count += more.count;
  if (more.predeleted) had.predeleted = addCounts(had.predeleted, more.predeleted);
  if (more.ts !== undefined && (had.ts === undefined || more.ts < had.ts)) had.ts = more.ts;
}

/** Two per-family counts added (either may be absent). */
function addCounts(a: Record<string, number> | undefined, b: Record<string, number>): Record<string, number> {
  const out = { ...(a ?? {}) };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** What a stopped or failed invalidation had deleted: its partial rows (per tenant, or per key), else its progress. */
function deletedBefore(err: unknown): number {
  const { partial, progress } = (err ?? {}) as { partial?: unknown; progress?: { done?: number } };
  if (Array.isArray(partial)) return partial.reduce((n: number, r: unknown) => n + (typeof r === 'number' ? r : Number((r as { total?: number } | null)?.total ?? 0)), 0);
  return progress?.done ?? 0;
}
