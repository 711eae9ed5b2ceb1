import { BackendUnavailableError, InterruptedError, PartialFailureError } from '../errors.js';
import { pastFirstSignal, type Attempt, type Cache } from '../cache/cache.js';
import { PERMISSIONS_FAMILY } from '../keys/key-families.js';
import type { PendingInvalidation, RegistryStore } from '../registry/registry-store.js';
import type { CacheAdmin } from './cache-admin.js';
import { isValidId } from '../keys/ids.js';

/** What draining the outbox came to. */
export interface DrainResult {
  /**
   * `done`: nothing is owed any more; `not-configured`: no Redis to do it with; `failed`: Redis failed (what
   * was not done stays owed); `unchecked`: the registry could not be read, so what is owed is unknown.
   */
  status: 'done' | 'not-configured' | 'failed' | 'unchecked';
  /** Invalidations done (and cleared) in this drain. */
  done: number;
  /** Invalidations still owed afterwards (at least; counted up to one page: see `more`). */
  pending: number;
  /** Cache keys the invalidations done deleted (a drain of the outbox; an entry's keys may be gone already: 0). */
  deleted?: number;
  /** `pending` is one whole page read: more may be owed. */
  more?: boolean;
  error?: BackendUnavailableError;
}

/** Invalidations read per round. */
const PAGE = 10_000;

/**
 * Does the invalidations the registry's outbox says are owed: every write
 * records them in its own transaction, so a run killed (or cut off from
 * Redis) between its write and its invalidation leaves them for the next
 * write command, or `invalidate --pending`, to finish here. An entry is
 * cleared only after its keys are gone.
 */
export class InvalidationOutbox {
  constructor(private readonly deps: { cache: Cache; admin: CacheAdmin; warn?: (message: string) => void }) {}

  /** A write is about to start: Redis connects beside it (see Cache.connectSoon). */
  prepare(): void {
    this.deps.cache.connectSoon();
  }

  /** Whether there is a Redis to do invalidations with at all. */
  get cacheConfigured(): boolean {
    return this.deps.cache.configured;
  }

  /**
   * Does what is owed, page by page. `afterWrite`: these are the invalidations of writes this command has
   * committed, done even after its first signal (see pastFirstSignal); otherwise the signal stops a wait for Redis.
   */
  drain(registry: RegistryStore, options: { signal?: AbortSignal; afterWrite?: boolean; onDeleted?: (total: number) => void } = {}): Promise<DrainResult> {
    const pages = () => this.drainPages(registry, options.signal, options.onDeleted);
    return options.afterWrite ? pastFirstSignal(pages) : pages();
  }

  private async drainPages(registry: RegistryStore, signal: AbortSignal | undefined, onDeleted?: (total: number) => void): Promise<DrainResult> {
    let done = 0;
    let deleted = 0;
    for (;;) {
      const page = await registry.pendingInvalidations(PAGE);
      if (page.length === 0) return { status: 'done', done, pending: 0, deleted };
      // A whole page: more may be owed (15,000 owed were said to be 10,000).
      const more = page.length === PAGE ? { more: true } : {};
      if (!this.deps.cache.configured) return { status: 'not-configured', done, pending: page.length, ...more };
      // Keys confirmed deleted as they come (the audit line of a run ended at once), the earlier pages' included.
      const base = deleted;
      const r = await this.attempt(page, signal, onDeleted && ((n: number) => onDeleted(base + n)));
      // The keys the failed page deleted before Redis failed count too (a review: "deleted": 0 beside "deleted at
      // least 531 keys before Redis failed"); at least, as its error says.
      if (r.status !== 'done') return { status: 'failed', done, pending: page.length, ...more, deleted: deleted + deletedBy(r.status === 'failed' ? r.error : undefined), error: r.status === 'failed' ? r.error : undefined };
      deleted += r.value;
      // Counted as this run's when it cleared them: two runs draining at once each said all of them.
      // (A registry handed in by a library user may resolve to nothing, as the interface did: all of the page.)
      done += (await registry.clearInvalidations(page)) ?? page.length;
      if (page.length < PAGE) return { status: 'done', done, pending: 0, deleted };
    }
  }

  /**
   * Does invalidations without the registry (it failed): those of a write whose outcome is unknown (the
   * connection lost at COMMIT: the rows, and their outbox entries, may be in). Deleting cache entries of
   * rows that did not change costs a cache miss; leaving those of rows that did is a stale cache until the
   * next write command. Best effort: a Redis failure here is the same "owed" the outbox already holds. Done
   * even after the command's first signal, as drain's afterWrite.
   */
  async invalidateUnconfirmed(owed: Array<Pick<PendingInvalidation, 'kind' | 'target'>>): Promise<boolean> {
    if (!owed.length || !this.deps.cache.configured) return false;
    const r = await pastFirstSignal(() => this.attempt(owed));
    return r.status === 'done';
  }

  /**
   * The invalidations, best effort. A run stopped while Redis connected (its first signal) has not done them:
   * they stay owed like a Redis failure's, so the write before them is still reported (the InterruptedError
   * lost a migration's report), with the interruption as the error's cause.
   */
  private async attempt(page: Array<Pick<PendingInvalidation, 'kind' | 'target'>>, signal?: AbortSignal, onDeleted?: (total: number) => void): Promise<Attempt<number>> {
    try {
      return await this.deps.cache.attempt(() => this.perform(page, signal, onDeleted));
    } catch (err) {
      // Keys out of reach (Cluster slots that kept moving): not done, so still owed, as a Redis failure is.
      // Thrown, it lost the report of the writes before it (migrate-yaml --json: exit 4, nothing on stdout).
      if (err instanceof PartialFailureError) return { status: 'failed', error: new BackendUnavailableError('redis', `not done: ${err.message}`, { cause: err, reason: 'failed' }) };
      if (!(err instanceof InterruptedError)) throw err;
      return { status: 'failed', error: new BackendUnavailableError('redis', `not done: ${err.message}`, { cause: err, reason: 'unreachable' }) };
    }
  }

  /** Does a page's invalidations; the keys deleted. */
  private async perform(all: Array<Pick<PendingInvalidation, 'kind' | 'target'>>, signal?: AbortSignal, onDeleted?: (total: number) => void): Promise<number> {
    // A row no key can answer to (written by hand or another tool: an invalid id, an unknown kind) is
    // dropped with its page, and said: refused as bad input, it stopped every drain for good (exit 2).
    const page = all.filter((p) => (p.kind === 'permissions-all' ? p.target === '*' : (p.kind === 'tenant' || p.kind === 'permissions') && isValidId(p.target)));
    if (page.length < all.length) {
      const kept = new Set(page);
      const bad = all.filter((p) => !kept.has(p));
      this.deps.warn?.(`warning: ${bad.length} owed invalidation(s) name no valid target (${bad.slice(0, 3).map((p) => `${String(p.kind).slice(0, 20)} ${JSON.stringify(String(p.target).slice(0, 40))}`).join(', ')}${bad.length > 3 ? ', …' : ''}): dropped`);
    }
    const tenants = page.filter((p) => p.kind === 'tenant').map((p) => p.target);
    const businesses = page.filter((p) => p.kind === 'permissions').map((p) => p.target);
    let deleted = 0;
    if (page.some((p) => p.kind === 'permissions-all')) {
      deleted += (await this.deps.admin.invalidateAll({ families: [PERMISSIONS_FAMILY], signal, ...(onDeleted && { onProgress: (p) => onDeleted(p.done) }) })).total;
    }
    const before = deleted;
    if (tenants.length) for (const t of await this.deps.admin.invalidateTenants(tenants, { signal, ...(onDeleted && { onDeleted: (n: number) => onDeleted(before + n) }) })) deleted += t.total;
    if (businesses.length) {
      const keys = this.deps.admin.keys.fixedKeys(businesses, [PERMISSIONS_FAMILY]).map((k) => k.key);
      for (const n of await this.deps.cache.need((s) => s.unlink(keys))) deleted += n;
    }
    return deleted;
  }
}

/** The keys a failed page's invalidations had deleted, as its error carries them (its own, or its cause's). */
function deletedBy(err: BackendUnavailableError | undefined): number {
  const progress = err?.progress ?? (err?.cause as { progress?: { done?: number } } | undefined)?.progress;
  return progress?.done ?? 0;
}
