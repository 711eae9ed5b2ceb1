import { AsyncLocalStorage } from 'node:async_hooks';
import { performance as loopClock, type EventLoopUtilization } from 'node:perf_hooks';
import { BackendUnavailableError, InterruptedError, UsageError, describeError, interruption, untilAborted } from '../errors.js';
import { unlinkIfUnchangedOn, type CacheStore } from './cache-store.js';
import type { RedisSpec } from './redis-spec.js';
import { servicesJson } from '../json/services-json.js';
import { parseCachedJson } from '../json/bounded-json.js';

/** `cause`: what the call failed with as the close landed (a BackendUnavailableError with the keys deleted so far, say). */
const closedCache = (cause?: unknown) => new UsageError('this Tenantctl was closed: its cache is no longer used', { reason: 'closed', ...(cause !== undefined && { cause }) });

/** Errors of a connect close() gave up on: no Redis failure (nothing is marked down or warned). */
const GIVEN_UP = new WeakSet<object>();

/** Set while the work under way is the cache invalidation of writes already committed (see pastFirstSignal). */
const PAST_FIRST_SIGNAL = new AsyncLocalStorage<true>();

/**
 * Runs `op`, the cache invalidation of writes its command has committed, so that a wait for Redis's connect
 * in it is not ended by the command's first signal (Ctrl-C stops a command between batches: what was written
 * must still lose its cached entries), where the Cache's owner says so (connectPastSignal: the CLI, whose
 * second signal ends the process at once; a library caller's abort has no second). A migration stopped while
 * Redis was still connecting (PGlite's open kept the loop busy) left every tenant it had written stale until
 * the next write command. Bounded by the Redis timeout.
 */
export function pastFirstSignal<T>(op: () => Promise<T>): Promise<T> {
  return PAST_FIRST_SIGNAL.run(true, op);
}

/** How the store is opened (the ioredis adapter by default; tests may hand in another). */
export type OpenStore = (spec: RedisSpec, signal?: AbortSignal) => Promise<CacheStore>;

/**
 * What readJsonShared keeps before it starts over (a long-lived process's
 * memory stays bounded): this many keys, this many characters of stored text
 * in all; a longer entry is parsed on every read, as readJson does.
 */
const SHARED_PARSES = { keys: 512, chars: 4_000_000, entryChars: 256_000 };

/** What a best-effort operation came to. */
export type Attempt<T> =
  | { status: 'done'; value: T }
  | { status: 'not-configured' }
  | { status: 'failed'; error: BackendUnavailableError };

/**
 * The one place that owns Redis's down-state and the three fallback rules:
 * - `need`: a value is needed (invalidate, test-redis): failure throws;
 * - `orElse`: use a fallback (a read on the way to the registry): failure
 *   warns once and returns the fallback;
 * - `attempt`: best effort (invalidation after a registry write): failure is
 *   returned, for the caller to record and report.
 * The connection opens on first use, once; after a failure Redis is marked
 * down and later calls skip it at once (no retry loop, as the services do),
 * for the rest of a command, or for `retryAfterMs` in a long-lived program.
 */
export class Cache {
  private store: CacheStore | undefined;
  private opening: Promise<CacheStore> | undefined;
  /** Gives up the connect under way (close()). */
  private abortOpening: AbortController | undefined;
  private downError: BackendUnavailableError | undefined;
  /**
   * What was warned of once already: Redis down, and each reason a command was answered with (a refusal such
   * as NOPERM, an error reply such as OOM): apart, so that one early in a long-lived service's life silences
   * neither a real outage later nor another kind of refusal (an early NOPERM hid every later OOM: a review).
   */
  private readonly warned = new Set<string>();
  /** readJsonShared's parses, by key: the stored text each came from, so a changed entry is parsed again. */
  private readonly parsed = new Map<string, { text: string; value: unknown }>();
  private parsedChars = 0;

  constructor(
    /** undefined: no Redis configured, the cache is off. */
    readonly spec: RedisSpec | undefined,
    private readonly options: {
      warn?: (message: string) => void;
      debug?: (message: string) => void;
      open?: OpenStore;
      /**
       * How long Redis stays marked down before the next call tries it again. A command never retries
       * (Infinity: no second timeout within one run); a long-lived program (the library in a service)
       * must not stay on its fallback for the rest of its life after one blip. @default Infinity
       */
      retryAfterMs?: number;
      /** Ends a wait for the connect (InterruptedError) when it aborts: a command's first signal. */
      signal?: AbortSignal;
      /** Work run through pastFirstSignal waits for the connect past `signal` (an owner with a second signal: the CLI). */
      connectPastSignal?: boolean;
    } = {},
  ) {}

  /** When Redis was marked down (Date.now()). */
  private downAt = 0;

  /** A call is trying Redis again (retryAfterMs): the others keep the fallback meanwhile, never all waiting on it. */
  private probing = false;

  /**
   * Down, and not yet due for another try (retryAfterMs). When due, this one caller goes through to try
   * Redis (the probe); the down state is cleared only when it connects, and a failed probe starts the wait
   * again without a second warning.
   */
  private stillDown(): boolean {
    if (!this.downError) return false;
    if (this.probing || Date.now() - this.downAt < (this.options.retryAfterMs ?? Infinity)) return true;
    this.probing = true;
    return false;
  }

  get configured(): boolean {
    return this.spec !== undefined;
  }

  /** Where Redis is, credentials masked (without connecting). */
  get target(): string | undefined {
    return this.spec?.display;
  }

  get isDown(): boolean {
    return this.downError !== undefined;
  }

  /** Closed (close()): an operation that fails now failed because of it, not because of Redis. */
  get isClosed(): boolean {
    return this.shut;
  }

  /**
   * Starts connecting now, without waiting, for work that will need Redis after something slow (a
   * registry write): a Redis that does not answer is then known down by the time it is needed. A
   * failure is kept (not warned) for the first use, which reports it as it would have.
   */
  connectSoon(): void {
    if (!this.spec || this.store || this.opening || this.downError || this.shut) return;
    this.connected({ background: true }).catch(() => {
      // Down, and said by no one yet: the next fallback read says it (a need/attempt caller reports its own).
      if (this.downError) this.unsaid = true;
    });
  }

  /** Redis was found down by connectSoon and no caller has reported it yet. */
  private unsaid = false;

  /** The event loop's use when the connect under way began (see connected and openStore). */
  private openingLoad: { at?: EventLoopUtilization } | undefined;
  /** A connect let go of because it failed while this process was busy: its other waiters try again. */
  private busyFailed: Promise<CacheStore> | undefined;

  /**
   * The connected store, or a typed error: not configured, unreachable, or down earlier in this run.
   * `background`: connectSoon's, which nobody waits for yet; `retried`: the one more try (see below).
   */
  private async connected(how: { background?: boolean; retried?: boolean } = {}): Promise<CacheStore> {
    if (this.shut) throw closedCache();
    if (!this.spec) throw new BackendUnavailableError('redis', 'no Redis configured', { reason: 'not-configured' });
    if (this.downError && !this.probing && this.stillDown()) throw this.downError;
    if (this.store) return this.store;
    const started = Date.now();
    // The command's first signal ends a wait for the connect, but for the invalidations of committed writes.
    const signal = this.options.connectPastSignal && PAST_FIRST_SIGNAL.getStore() ? undefined : this.options.signal;
    // Stopped already: no connect is started that nobody would wait for (its failure went unhandled: a review).
    if (!this.opening && signal?.aborted) {
      if (how.background) throw new BackendUnavailableError('redis', 'not connected: the run was stopped', { reason: 'unreachable' });
      throw interruption(signal, 'connecting to Redis');
    }
    if (!this.opening) {
      const abort = new AbortController();
      this.abortOpening = abort;
      const load = {};
      this.openingLoad = load;
      const opening: Promise<CacheStore> = this.openStore(this.spec, abort.signal, load).then((s) => {
        this.options.debug?.(`Redis connected (${s.mode}, ${s.target}) in ${Date.now() - started} ms`);
        // Only if this is still the Cache's connect (close() may have let go of it meanwhile).
        if (this.opening === opening) {
          this.store = s;
          // A probe that connected: Redis is back (a later failure warns again).
          if (this.probing) {
            this.probing = false;
            this.downError = undefined;
            this.warned.delete('down');
          }
        }
        return s;
      });
      this.opening = opening;
      // Its failure is handled by whoever waits; a caller that stopped waiting (the signal) leaves none.
      opening.catch(() => undefined);
    }
    const opening = this.opening;
    // Read when it fails: the connect itself (and its measure) starts once the driver is loaded.
    const load = this.openingLoad;
    try {
      // connectSoon's background connect waits for nobody: only a caller's wait ends on the signal.
      return await (how.background ? opening : untilAborted(opening, signal, 'connecting to Redis'));
    } catch (err) {
      // The caller was stopped, Redis was not found down: the connect goes on for whoever comes next (close() ends it).
      if (err instanceof InterruptedError) throw err;
      // Let go of meanwhile (close(), or another waiter already marked Redis down): nothing more to mark.
      // A connect close() gave up on is no Redis failure: a later use must open a new one, not find it down.
      if (this.opening !== opening) {
        // Closed for good under this wait: the call's end, not an outage (it said "Redis unreachable", exit 3).
        if (this.shut) throw closedCache();
        if (this.downError) throw this.downError;
        // Let go of by another waiter because this process was busy (see below): this caller tries again.
        if (this.busyFailed === opening && !how.retried && !how.background && !this.shut) return this.connected({ retried: true });
        const gaveUp = new BackendUnavailableError('redis', 'the connection to Redis was closed before it was made', { cause: err, reason: 'unreachable' });
        GIVEN_UP.add(gaveUp);
        throw gaveUp;
      }
      // The connect ran while this process kept its own event loop busy for most of the timeout (connectSoon
      // beside parsing files, PGlite's queries): its timers (the driver's too: a Sentinel's, a Cluster's)
      // fired late, so the failure may be this process's, not Redis's (migrate-yaml said Redis was
      // unreachable, exit 4, with it up). Not taken as Redis down: the first caller that waits connects
      // again, once, in the foreground.
      if (!how.retried && load?.at && loopClock.eventLoopUtilization(load.at).active > this.spec.timeoutMs / 2) {
        this.opening = undefined;
        this.busyFailed = opening;
        if (how.background) throw err;
        this.options.debug?.(`Redis connect failed while this process was busy (${describeError(err)}): trying once more`);
        return this.connected({ retried: true });
      }
      throw this.markDown(err);
    }
  }

  /**
   * Opens the store (the adapter's, unless the owner handed in `open`). The event loop's use is taken when
   * the connect itself starts: loading ioredis on a library's first use (~0.3 s on a slow machine) is not
   * this process being busy, and took a silent Redis's first fallback to ~2.7x the timeout (a review).
   */
  private async openStore(spec: RedisSpec, signal: AbortSignal, load: { at?: EventLoopUtilization }): Promise<CacheStore> {
    // The driver loaded first for a handed-in `open` too (openIoredisStore, exported, loads it lazily).
    const adapter = await import('./ioredis-store.js');
    await adapter.loadDriver();
    const open = this.options.open ?? adapter.openIoredisStore;
    load.at = loopClock.eventLoopUtilization();
    return open(spec, signal);
  }

  /** Runs an operation that needs Redis; any failure marks it down and is thrown as BackendUnavailableError. */
  async need<T>(op: (store: CacheStore) => Promise<T>): Promise<T> {
    let store: CacheStore;
    try {
      store = await this.connected();
    } catch (err) {
      // Its caller reports the failure (attempt's too): a connectSoon failure needs no warning after it.
      this.unsaid = false;
      throw err;
    }
    try {
      return await op(store);
    } catch (err) {
      // Closed under the operation (its connection ended: "Stream isn't writeable"): the close, as orElse says,
      // with the failure as its cause (its progress: the keys an invalidation deleted before it).
      if (this.shut) throw closedCache(err);
      this.markDownOn(err);
      throw err;
    }
  }

  /** Marks Redis down on a Redis failure (once: later calls skip it). */
  private markDownOn(err: unknown): void {
    // A refused command (an ACL without a right, a write to a replica, an error reply such as OOM) says nothing
    // about the connection: a replica's refused UNLINK took Redis "down", and the reads after it fell back.
    if (err instanceof BackendUnavailableError && err.backend === 'redis' && !err.answered && !GIVEN_UP.has(err) && (!this.downError || this.probing)) this.markDown(err);
  }

  /** Runs a read on the fallback path: without Redis, or when it fails, one warning and `fallback`. */
  async orElse<T>(op: (store: CacheStore) => Promise<T>, fallback: T): Promise<T> {
    if (!this.shut && (!this.spec || this.stillDown())) {
      // Found down by connectSoon's connect, which nobody reported: said once here.
      if (this.unsaid && this.downError) this.warnOnce(this.downError);
      this.unsaid = false;
      return fallback;
    }
    try {
      // Connected: straight to the operation (a cached read's hot path: need() would add two awaits).
      return await (this.store ? op(this.store) : this.need(op));
    } catch (err) {
      // Closed for good under this call: not an outage to warn about, the call's end.
      if (this.shut) throw closedCache();
      // Its connect was given up by close(): no outage either, this call's fallback only.
      if (GIVEN_UP.has(err as object)) return fallback;
      this.markDownOn(err);
      if (!(err instanceof BackendUnavailableError)) throw err;
      this.warnOnce(err);
      return fallback;
    }
  }

  /** Runs a best-effort operation and says what it came to; never throws a Redis failure. */
  async attempt<T>(op: (store: CacheStore) => Promise<T>): Promise<Attempt<T>> {
    if (!this.spec) return { status: 'not-configured' };
    try {
      return { status: 'done', value: await this.need(op) };
    } catch (err) {
      // Stopped while connecting (InterruptedError) is no Redis failure: thrown as it is (cache-info reported
      // Redis down); the outbox, which must report what was written before, takes it as not done.
      if (!(err instanceof BackendUnavailableError) || err.backend !== 'redis') throw err;
      return { status: 'failed', error: err };
    }
  }

  /** The parsed JSON at `key`; undefined on a miss, a value that is not JSON, or Redis down (fallback rule). */
  async readJson(key: string): Promise<unknown> {
    return (await this.readJsonText(key))?.value;
  }

  /** readJson with the text it was parsed from (for a later change only while the key still holds it). */
  async readJsonText(key: string): Promise<{ value: unknown; text: string } | undefined> {
    const raw = await this.orElse((s) => s.get(key), null);
    if (raw === null) return this.missed(key);
    const parsed = parseCachedJson(raw);
    if ('problem' in parsed) {
      this.malformed(key, parsed.problem);
      return undefined;
    }
    return { value: parsed.value, text: raw };
  }

  private readonly saidMalformed = new Set<string>();

  /**
   * A miss. A key that is there all the same holds another type than a string (a hash): the services' GET
   * fails on it with WRONGTYPE, and it was read as a miss without a word. Said once, like a malformed value.
   * One TYPE: an EXISTS then a GET said it of a string a service wrote and deleted between the two (a probe);
   * a user who may not TYPE is simply not told.
   */
  private async missed(key: string): Promise<undefined> {
    if (!this.options.warn || this.saidMalformed.has(key) || this.saidMalformed.size >= 100 || !this.store) return undefined;
    // A TYPE refused (an ACL without it) is no warning; one that times out or loses the connection is Redis
    // failing (orElse marks it down): swallowed, the next call waited a whole timeout again (a review).
    const type = await this.orElse((s) => s.typeOf(key).catch((err: unknown) => (err instanceof BackendUnavailableError && err.answered ? 'none' : Promise.reject(err))), 'none');
    if (type !== 'none' && type !== 'string') this.malformed(key, `another type than a string (a ${type}: the services' GET fails on it with WRONGTYPE)`);
    return undefined;
  }

  /**
   * A cached value that is not JSON (or nested too deep), or not the shape its reader needs, is read as a
   * miss, said once per key (it was ignored without a word).
   */
  malformed(key: string, problem: string): void {
    if (this.saidMalformed.has(key) || this.saidMalformed.size >= 100) return;
    this.saidMalformed.add(key);
    this.options.warn?.(`warning: ${key} holds ${problem}: read as a miss (\`tenantctl verify --fix\` deletes such entries)`);
  }

  /**
   * Like readJson, but the value is parsed once per distinct stored text and
   * the same object is handed to every read that finds that text again: the
   * caller must not change it (copy what it hands on). A cached read's JSON
   * parse after an I/O wait costs ~15 us here, a quarter of a loopback GET.
   */
  async readJsonShared(key: string): Promise<unknown> {
    const raw = await this.orElse((s) => s.get(key), null);
    if (raw === null) return this.missed(key);
    const seen = this.parsed.get(key);
    if (seen?.text === raw) return seen.value;
    const parsed = parseCachedJson(raw);
    if ('problem' in parsed) {
      this.malformed(key, parsed.problem);
      return undefined;
    }
    const { value } = parsed;
    if (seen) {
      this.parsed.delete(key);
      this.parsedChars -= seen.text.length;
    }
    if (raw.length > SHARED_PARSES.entryChars) return value;
    if (this.parsed.size >= SHARED_PARSES.keys || this.parsedChars + raw.length > SHARED_PARSES.chars) {
      this.parsed.clear();
      this.parsedChars = 0;
    }
    this.parsedChars += raw.length;
    this.parsed.set(key, { text: raw, value });
    return value;
  }

  /**
   * Writes JSON with a TTL, best effort (fallback rule: a failure warns once). True when written.
   * The text is the services' own (servicesJson): a value they would write otherwise throws
   * NotServicesJson before anything is written.
   */
  async writeJson(key: string, value: unknown, ttlSeconds: number): Promise<boolean> {
    const json = servicesJson(value);
    return this.orElse(async (s) => {
      await s.set(key, json, ttlSeconds);
      return true;
    }, false);
  }

  /**
   * writeJson for a value read from a source a writer may change meanwhile:
   * after the write, `stillCurrent` reads the source again, and when it
   * changed (or cannot tell) the entry is taken back, only while it still
   * holds what was written. A writer commits, then invalidates: one whose
   * invalidation ran between this read and this write is caught by the
   * re-read; one that commits after the re-read invalidates after this write.
   * So a read never puts back a value a finished write has invalidated; nor
   * does a SET given up on at the timeout and run later (setUnlessLate, where
   * the store has it). True when written and kept.
   */
  async writeJsonIfCurrent(key: string, value: unknown, ttlSeconds: number, stillCurrent: () => Promise<boolean>): Promise<boolean> {
    const json = servicesJson(value);
    // Unless late: a SET given up on (the server stalled past the timeout) must not land after a write's
    // invalidation, when nothing re-reads (see setUnlessLate).
    const written = await this.orElse(async (s) => (s.setUnlessLate ? s.setUnlessLate(key, json, ttlSeconds) : (await s.set(key, json, ttlSeconds), true)), false);
    if (!written) return false;
    if (await stillCurrent().catch(() => false)) return true;
    await this.orElse((s) => unlinkIfUnchangedOn(s, [{ key, value: json }]), [0]);
    return false;
  }

  private markDown(err: unknown): BackendUnavailableError {
    this.downError = err instanceof BackendUnavailableError
      ? err
      : new BackendUnavailableError('redis', `Redis failed: ${describeError(err)}`, { cause: err });
    this.downAt = Date.now();
    this.probing = false;
    // A connect still under way (a probe) is closed when it lands: nothing else would own it.
    const pending = this.store ? undefined : this.opening;
    this.store?.close();
    this.store = undefined;
    // A later try (retryAfterMs) opens a new connection, not the closed one.
    this.opening = undefined;
    pending?.then(
      (store) => store.close(),
      () => undefined,
    );
    return this.downError;
  }

  private warnOnce(err: BackendUnavailableError): void {
    // An error reply by its code word too (OOM, MISCONF, ERR: all reason 'rejected'; an OOM hid a later MISCONF).
    const word = /^[A-Z]+\b/.exec((err.cause as Error | undefined)?.message ?? '')?.[0] ?? '';
    const kind = err.answered ? `answered:${err.reason}:${word}` : 'down';
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.options.warn?.(`warning: ${describeError(err).replace(/\.$/, '')}; continuing without the cache`);
  }

  /** Set by close({ forGood: true }): every later use is refused (the library's Tenantctl.close). */
  private shut = false;

  close(options: { forGood?: boolean } = {}): void {
    if (options.forGood) this.shut = true;
    // A connect still under way is closed when it lands (else its client would keep the process alive);
    // a later use opens a new one (unless closed for good).
    const pending = this.store ? undefined : this.opening;
    // A connect still waiting (a silent server) is given up on now, not when its timeout ends.
    if (pending) this.abortOpening?.abort();
    this.abortOpening = undefined;
    this.store?.close();
    this.store = undefined;
    this.opening = undefined;
    // A later use starts afresh (a command that failed because of the close marked Redis down).
    this.downError = undefined;
    this.probing = false;
    pending?.then(
      (s) => s.close(),
      () => undefined,
    );
  }
}
