import { keyText } from '../keys/key-text.js';
import { nodeCrypto } from '../node-crypto.js';
import { hostname } from 'node:os';
import { BackendUnavailableError, describeError, InterruptedError, PartialFailureError, stoppedBy, throwIfAborted, UsageError, type BackendReason, type BatchProgress } from '../errors.js';
import { parseIdList } from '../keys/ids.js';
import type { Cache } from '../cache/cache.js';
import { describeSlots, type CacheStore, type SweepBatch, type SweepResult } from '../cache/cache-store.js';
import type { KeySpace, SweepRules } from '../keys/key-families.js';

/** Keys removed (or, on a dry run, found) for one tenant, per family. */
export interface TenantInvalidation {
  tenant: string;
  families: Record<string, number>;
  total: number;
  /** On a dry run: the keys themselves, sorted. */
  keys?: string[];
}

export interface InvalidateAllResult {
  dryRun: boolean;
  families: Record<string, number>;
  total: number;
  /** Keys the rules looked at: those the server's glob let through (their first bytes fit some family's). */
  scanned: number;
  /** False when --max-keys stopped it before the end. */
  complete: boolean;
  /** A count on a Cluster being resharded: the slots that moved meanwhile (their keys may be counted twice or not at all). */
  moving?: number[];
}

/** Progress of a long sweep, for a line on stderr. */
export interface SweepProgress {
  scanned: number;
  done: number;
  /** How far the walk of the keyspace has got, 0-1, where the server's cursors tell (see SweepBatch.walked). */
  walked?: number;
}

/** Up to this many tenants, each gets its own server-side MATCH pass (cheaper than one unfiltered pass). */
const PER_TENANT_PASSES_UP_TO = 2;
/** Tenants whose fixed-name keys go to Redis together. */
const FIXED_KEYS_TENANTS = 250;
/** Up to this many tenants, one pass with exact per-tenant rules; beyond, the pass hands keys back for the client to pick. */
const EXACT_RULES_UP_TO = 64;

/**
 * Whether invalidating this many tenants sweeps the whole keyspace (every
 * family) rather than their wildcard families alone. invalidateTenants
 * (which then skips the UNLINK by name) and sweepTenants (which then runs
 * that pass) both ask this: they must agree, or fixed-name keys are missed.
 */
const sweepsWholeKeyspace = (tenants: number) => tenants > EXACT_RULES_UP_TO;

/**
 * Cache administration over the tool's key families only: a key outside
 * them is never read, counted or deleted.
 */
export class CacheAdmin {
  constructor(
    readonly cache: Cache,
    readonly keys: KeySpace,
  ) {}

  /** A count of 0 for each family, or for each of `families` only (those a run looked at). */
  zeroCounts(families?: readonly string[]): Record<string, number> {
    return Object.fromEntries((families ?? this.keys.families.map((f) => f.name)).map((f) => [f, 0]));
  }

  /**
   * Deletes (UNLINK) every key of these tenants in every family, or on a dry
   * run lists them. Fixed-name keys (`tenant_config:<id>`, `permissions:<id>`,
   * `<resource>:<id>`) are deleted by name; wildcard families take one
   * server-side pass. When that pass is over the whole keyspace anyway (more
   * than EXACT_RULES_UP_TO tenants), it takes the fixed-name keys too, instead
   * of one UNLINK per name (12 names a tenant, most of them absent: 120,000
   * for a 10,000-tenant migration). Needs Redis: throws
   * BackendUnavailableError when it is down, with the keys already deleted in
   * its progress.
   */
  async invalidateTenants(tenants: string[], options: { dryRun?: boolean; signal?: AbortSignal; onDeleted?: (total: number) => void } = {}): Promise<TenantInvalidation[]> {
    const unique = [...new Set(parseIdList(tenants, 'the tenants to invalidate'))];
    // One zero-count object copied per tenant (a spread keeps its shape): building each from entries cost ~40 ms for 10,000 tenants.
    const zero = this.zeroCounts();
    const results = new Map(unique.map((t) => [t, { tenant: t, families: { ...zero }, total: 0, keys: options.dryRun ? new Set<string>() : undefined }]));
    // Keys confirmed deleted so far, for a caller that records them as they come (the audit line of a run ended at once).
    let confirmed = 0;
    const add = (tenant: string, family: string, n: number, key?: string) => {
      const r = results.get(tenant)!;
      if (key !== undefined && r.keys) {
        if (r.keys.has(key)) return;
        r.keys.add(key);
      }
      r.families[family] += n;
      r.total += n;
      if (!options.dryRun && options.onDeleted) options.onDeleted((confirmed += n));
    };
    const done = () => [...results.values()].reduce((a, r) => a + r.total, 0);
    const rows = () => [...results.values()].map((r) => ({ tenant: r.tenant, families: r.families, total: r.total, keys: r.keys && [...r.keys].sort() }));
    let connected = false;
    const wholeKeyspacePass = this.keys.hasWildcards() && sweepsWholeKeyspace(unique.length);
    try {
      await this.cache.need(async (store) => {
        connected = true;
        // Fixed names a few hundred tenants at a time: a migration's 10,000 tenants never hold 120,000 key names at once.
        for (let i = 0; i < unique.length && !wholeKeyspacePass; i += FIXED_KEYS_TENANTS) {
          throwIfAborted(options.signal, () => ({ done: done() }), 'invalidate');
          const fixed = this.keys.fixedKeys(unique.slice(i, i + FIXED_KEYS_TENANTS));
          if (options.dryRun) {
            const exists = await store.exists(fixed.map((f) => f.key));
            fixed.forEach((f, j) => exists[j] && add(f.tenant, f.family, 1, f.key));
          } else {
            const count = (removed: Array<number | null>) => fixed.forEach((f, j) => removed[j] && add(f.tenant, f.family, removed[j]!));
            try {
              count(await store.unlink(fixed.map((f) => f.key)));
            } catch (err) {
              // A Cluster master failing: what the others deleted is counted (the error's per-key answers).
              count(((err as { partial?: unknown }).partial as Array<number | null> | undefined) ?? []);
              throw err;
            }
          }
        }
        // A one-tenant pass counts on the server and adds its total at the end: what its batches confirmed meanwhile.
        const interim = (sofar: number) => options.onDeleted?.(confirmed + sofar);
        if (this.keys.hasWildcards()) await this.sweepTenants(store, unique, !!options.dryRun, add, options.signal, interim);
      });
    } catch (err) {
      // Once deleting has begun, the error says how far it got (a rerun finishes the job): what was
      // deleted and counted, per tenant and family (a one-tenant sweep's server-side deletions
      // included). Not the sweep's own count of a collect pass (keys found, not deleted). A dry run
      // deleted nothing: no progress.
      const deleting = !options.dryRun && connected;
      const progress = deleting ? { done: done() } : undefined;
      const partial = deleting ? rows() : undefined;
      if (err instanceof BackendUnavailableError) throw err.withProgress(progress, partial);
      // Keys out of reach in moving Cluster slots, the rest done: the count is every tenant's, in all.
      if (err instanceof PartialFailureError && progress) {
        throw new PartialFailureError(err.message.replace(/\(\d+ deleted\)/, `(${progress.done} deleted)`), { cause: err.cause, progress, partial });
      }
      if (err instanceof InterruptedError) {
        // Stopped while connecting: its own words ("while connecting to Redis"), not "a dry run deletes nothing".
        if (!connected) throw err;
        const what = progress ? `after ${progress.done} key(s) deleted` : 'before the end (a dry run deletes nothing)';
        throw new InterruptedError(err.signal, `${stoppedBy(err.signal)}: invalidate stopped ${what}`, progress, partial);
      }
      throw err;
    }
    return rows();
  }

  /** The wildcard-family keys of these tenants, in the cheapest number of server-side passes. */
  private async sweepTenants(
    store: CacheStore,
    tenants: string[],
    dryRun: boolean,
    add: (tenant: string, family: string, n: number, key?: string) => void,
    signal: AbortSignal | undefined,
    interim?: (sofar: number) => void,
  ): Promise<void> {
    const collect = (tenantOf: (group: number, tenant: string) => [string, string] | undefined) => (b: SweepBatch) => {
      for (const k of b.keys ?? []) {
        const owner = tenantOf(k.group, k.tenant.toString('latin1'));
        if (owner) add(owner[0], owner[1], 1, keyText(k.key));
      }
    };
    if (!sweepsWholeKeyspace(tenants.length)) {
      const passes = tenants.length <= PER_TENANT_PASSES_UP_TO ? tenants.map((t) => [t]) : [tenants];
      // A pass that could not reach keys of slots moving between Cluster masters (exit 4) does not end the
      // run: the other tenants' passes still run (the first one's failure ended it, their keys left), and the
      // failure is said at the end.
      let unreached: PartialFailureError | undefined;
      for (const pass of passes) {
        try {
          await this.sweepPass(store, pass, dryRun, add, collect, signal, interim);
        } catch (err) {
          if (!(err instanceof PartialFailureError)) throw err;
          unreached ??= err;
        }
      }
      if (unreached) throw unreached;
      return;
    }
    // Many tenants (a large migration): one pass over every family (invalidateTenants skipped the names), the client keeps its tenants' keys.
    const wanted = new Set(tenants);
    const rules = this.keys.rules();
    const pick = (g: number, t: string): [string, string] | undefined => (wanted.has(t) ? [t, rules.groups[g]] : undefined);
    if (dryRun) await store.sweep({ rules, action: 'collect', signal, onBatch: collect(pick) });
    else await this.collectAndUnlink(store, rules, pick, add, signal);
  }

  /** One pass over the keyspace for these tenants' wildcard-family keys (one tenant: its MATCH glob). */
  private async sweepPass(
    store: CacheStore,
    pass: string[],
    dryRun: boolean,
    add: (tenant: string, family: string, n: number, key?: string) => void,
    collect: (tenantOf: (group: number, tenant: string) => [string, string] | undefined) => (b: SweepBatch) => void,
    signal: AbortSignal | undefined,
    interim?: (sofar: number) => void,
  ): Promise<void> {
    const rules = this.keys.rules({ tenants: pass, wildcardOnly: true });
    const match = pass.length === 1 ? this.keys.tenantScanGlob(pass[0]) : undefined;
    const family = (g: number) => rules.groups[g];
    if (dryRun) {
      await store.sweep({ rules, match, action: 'collect', signal, onBatch: collect((g, t) => [t, family(g)]) });
    } else if (pass.length === 1) {
      // One tenant: the server deletes and counts per family; no key crosses the wire.
      let r: SweepResult;
      try {
        let sofar = 0;
        const onBatch = interim && ((b: SweepBatch) => interim((sofar += b.groups.reduce((a, n) => a + n, 0))));
        r = await store.sweep({ rules, match, action: 'unlink', signal, ...(onBatch && { onBatch }) });
      } catch (err) {
        // What the server deleted before it stopped, per family, belongs to this tenant's count.
        const groups = (err as { progress?: BatchProgress }).progress?.groups ?? {};
        for (const [f, n] of Object.entries(groups)) if (n) add(pass[0], f, n);
        throw err;
      }
      r.groups.forEach((n, g) => n && add(pass[0], family(g), n));
    } else {
      // Several tenants: their keys come back so each deletion is counted for its tenant.
      await this.collectAndUnlink(store, rules, (g, t) => [t, family(g)], add, signal);
    }
  }

  /**
   * Collect passes whose chosen keys are UNLINKed batch by batch (UNLINK says which existed, so repeats
   * count once). A Cluster whose slots moved between masters meanwhile (resharding) may have carried keys
   * past the walk: the pass runs again while one finds keys to delete or sees a slot change hands, up to
   * three in all, then the run is partial (it said done with hundreds of keys left: the sweep's own cleanup
   * of moving slots serves its deleting action only). A slot only marked as migrating (a resharding that
   * stopped) ends the passes once one finds nothing: it failed every write command's invalidation (a review).
   */
  private async collectAndUnlink(
    store: CacheStore,
    rules: SweepRules,
    pick: (group: number, tenant: string) => [string, string] | undefined,
    add: (tenant: string, family: string, n: number) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    let deleted = 0;
    const counted = (tenant: string, family: string, n: number) => {
      deleted += n;
      add(tenant, family, n);
    };
    for (let pass = 1; ; pass++) {
      const before = deleted;
      const { moving, handed } = await this.collectAndUnlinkOnce(store, rules, pick, counted, signal);
      if (!moving?.length || (deleted === before && !handed?.length)) return;
      if (pass === 3) {
        throw new PartialFailureError(
          `slot${moving.length === 1 ? '' : 's'} ${describeSlots(moving)} kept moving between Cluster masters during the run: keys moving with them may have been missed (${deleted} deleted); run again once the resharding is done`,
          { progress: { done: deleted } },
        );
      }
    }
  }

  private async collectAndUnlinkOnce(
    store: CacheStore,
    rules: SweepRules,
    pick: (group: number, tenant: string) => [string, string] | undefined,
    add: (tenant: string, family: string, n: number) => void,
    signal?: AbortSignal,
  ): Promise<SweepResult> {
    // Deletes overlap with the next pages of the scan, one batch in flight at a time and at most one
    // waiting: a scan far ahead of its deletes queued hundreds of batches, each of which then waited out
    // its own timeout on a stalled server (a 300 s hang), and held their keys.
    let pending = Promise.resolve();
    let queued = 0;
    let failure: unknown;
    let result: SweepResult;
    try {
      result = await store.sweep({
        rules,
        action: 'collect',
        signal,
        onBatch: (b) => {
          if (failure) throw failure;
          const chosen = (b.keys ?? []).flatMap((k) => {
            const owner = pick(k.group, k.tenant.toString('latin1'));
            return owner ? [{ key: k.key, owner }] : [];
          });
          if (!chosen.length) return;
          const ahead = pending;
          queued++;
          pending = ahead
            .then(async () => {
              // After a failure or a stop, the batches behind it are not sent (the report counts what was deleted).
              if (failure || signal?.aborted) return;
              const removed = await store.unlink(chosen.map((c) => c.key));
              removed.forEach((n, i) => n && add(chosen[i].owner[0], chosen[i].owner[1], n));
            })
            .catch((err) => {
              failure ??= err;
            })
            .finally(() => {
              queued--;
            });
          // The scan waits while a batch is already waiting behind the one in flight.
          return queued > 1 ? ahead : undefined;
        },
      });
    } finally {
      // A sweep stopped (a signal, a failure) still lets the UNLINK in flight finish, so what it deleted is counted.
      await pending;
    }
    if (failure) throw failure;
    return result;
  }

  /**
   * Deletes every key of every family (all tenants), or counts them on a dry
   * run; `families` narrows it, `maxKeys` caps the deletions. One server-side
   * pass per master; on a failure or a signal midway, the error carries what was deleted.
   */
  async invalidateAll(options: {
    dryRun?: boolean;
    families?: string[];
    maxKeys?: number;
    signal?: AbortSignal;
    onProgress?: (p: SweepProgress) => void;
  } = {}): Promise<InvalidateAllResult> {
    // The script takes -1 as "no limit", and a fraction never counts down to 0: both deleted every key.
    const { maxKeys } = options;
    if (maxKeys !== undefined && !(Number.isSafeInteger(maxKeys) && maxKeys >= 1)) throw new UsageError(`maxKeys must be a whole number >= 1, got ${JSON.stringify(String(maxKeys)).slice(0, 40)}`);
    const rules = this.keys.rules({ families: options.families });
    const progress: SweepProgress = { scanned: 0, done: 0 };
    const r = await this.cache.need((store) =>
      store.sweep({
        rules,
        action: options.dryRun ? 'count' : 'unlink',
        limit: options.dryRun ? undefined : options.maxKeys,
        signal: options.signal,
        onBatch: (b) => {
          progress.scanned += b.scanned;
          progress.done += b.groups.reduce((a, n) => a + n, 0);
          if (b.walked !== undefined) progress.walked = b.walked;
          options.onProgress?.(progress);
        },
      }),
    );
    // Only the families looked at: with --family, a 0 for another read as "none there" (a review: 2 were).
    const families = this.zeroCounts(options.families && rules.groups);
    r.groups.forEach((n, g) => (families[rules.groups[g]] += n));
    return { dryRun: !!options.dryRun, families, total: r.groups.reduce((a, b) => a + b, 0), scanned: r.scanned, complete: r.complete, ...(r.moving && { moving: r.moving }) };
  }

  /** Exact key counts per family across the whole keyspace, counted server-side (names never cross the wire). */
  async countFamilies(store: CacheStore, signal?: AbortSignal): Promise<Record<string, number>> {
    return (await this.countFamilyKeys(store, signal)).families;
  }

  /** Keys per family; `moving`: Cluster slots that moved between masters meanwhile (their keys may be counted twice or not at all). */
  async countFamilyKeys(store: CacheStore, signal?: AbortSignal): Promise<{ families: Record<string, number>; moving?: number[]; masters?: number }> {
    const rules = this.keys.rules();
    const r = await store.sweep({ rules, action: 'count', signal });
    const counts = this.zeroCounts();
    r.groups.forEach((n, g) => (counts[rules.groups[g]] += n));
    return { families: counts, ...(r.moving?.length && { moving: r.moving }), ...(r.nodes !== undefined && { masters: r.nodes }) };
  }

  /**
   * The CI smoke test: PING, SET with TTL, GET, DEL on a unique key, each
   * step timed, plus the server version. Throws BackendUnavailableError when
   * Redis is unreachable; a failed step is reported with `ok: false`.
   */
  async testRedis(): Promise<TestRedisResult> {
    return this.cache.need(async (store) => {
      const key = `tenantctl:test-redis:${hostname()}:${process.pid}:${nodeCrypto().randomBytes(6).toString('hex')}`;
      const value = nodeCrypto().randomBytes(8).toString('hex');
      const steps: TestRedisStep[] = [];
      // A step that timed out or lost the connection ends the test: each later call would wait out a whole
      // timeout of its own on the same stuck server (3x the timeout before). The test key expires by itself.
      let stuck = false;
      const step = async (name: string, op: () => Promise<unknown>, check: (r: unknown) => boolean) => {
        const start = process.hrtime.bigint();
        const ms = () => round(Number(process.hrtime.bigint() - start) / 1e6, 3);
        try {
          const reply = await op();
          const ok = check(reply);
          steps.push({ step: name, ok, ms: ms(), detail: ok ? undefined : `unexpected reply ${JSON.stringify(reply)}` });
          return ok;
        } catch (err) {
          // Cut short by close(): the call ends 'closed' (need() says so), not as a Redis step that failed.
          if (this.cache.isClosed) throw err;
          steps.push({ step: name, ok: false, ms: ms(), detail: describeError(err), ...(err instanceof BackendUnavailableError && { reason: err.reason }) });
          // A reply the server gave (OOM at SET with maxmemory reached) is an answer: the connection works,
          // and the version is still asked for (it said "Redis unknown").
          const answered = (err as { cause?: { name?: string } }).cause?.name === 'ReplyError';
          stuck ||= err instanceof BackendUnavailableError && !answered && (err.reason === 'timeout' || err.reason === 'unreachable' || err.reason === 'failed');
          return false;
        }
      };
      try {
        (await step('PING', () => store.ping(), () => true)) &&
          (await step('SET', () => store.set(key, value, 60), () => true)) &&
          (await step('GET', () => store.get(key), (r) => r === value));
      } finally {
        // Always clean up the test key, even after a failed GET.
        if (steps.some((s) => s.step === 'SET' && s.ok) && !stuck) await step('DEL', () => store.unlink([key]), (r) => (r as number[])[0] === 1);
      }
      let version = 'unknown';
      if (!stuck) {
        try {
          version = (await store.info())[0]?.redis_version ?? version;
        } catch (err) {
          // Informative only (an ACL user may lack INFO), unless close() cut it short.
          if (this.cache.isClosed) throw err;
        }
      }
      const ok = steps.length === 4 && steps.every((s) => s.ok);
      return { ok, server: store.target, mode: store.mode, version, key, steps };
    });
  }
}

export interface TestRedisStep {
  step: string;
  ok: boolean;
  ms: number;
  detail?: string;
  /** A failed step's cause, as a type (a replica refusing the SET: 'read-only'). */
  reason?: BackendReason;
}

export interface TestRedisResult {
  ok: boolean;
  server: string;
  mode: string;
  version: string;
  key: string;
  steps: TestRedisStep[];
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
