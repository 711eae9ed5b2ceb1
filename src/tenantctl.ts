import { resolveConfig, type ConfigFlags, type FlagNaming, type TenantctlConfig } from './config/config.js';
import { Cache, type OpenStore } from './cache/cache.js';
import { KeySpace } from './keys/key-families.js';
import { openRegistry } from './registry/open-registry.js';
import { embeddedRegistryExists, isUnusableRegistry } from './registry/registry-spec.js';
import type { PendingInvalidation, Registry } from './registry/registry-store.js';
import { YamlTenantSource } from './tenants/tenant-source.js';
import { ContentHashCache } from './tenants/content-hash-cache.js';
import { ParseCache } from './tenants/parse-cache.js';
import { CacheAdmin } from './services/cache-admin.js';
import { TenantConfigService, type PopulatePolicy } from './services/tenant-config-service.js';
import { Migration } from './services/migration.js';
import { PermissionService } from './services/permission-service.js';
import { SubscriptionService } from './services/subscription-service.js';
import { InvalidationOutbox, type DrainResult } from './services/invalidation-outbox.js';
import { BackendUnavailableError, InterruptedError, UsageError, describeError, interruption, untilAborted } from './errors.js';

import { REGISTRY_RETRY_MS } from './registry/registry-retry.js';
import { findProjectRoot } from './config/project-root.js';
import { realpathSync } from 'node:fs';
import { workingDirectory } from './working-directory.js';

export interface TenantctlOptions {
  /** Settings as flags would give them (highest precedence). */
  flags?: ConfigFlags;
  /**
   * How messages name a flag: `flags.redisUrl` (this object's), or `--redis-url` for a command line (the
   * CLI). @default 'options'
   */
  flagNames?: FlagNaming;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where `tenantctl.config.*`, `./tenants` and `.tenantctl/` are looked for. @default process.cwd() */
  cwd?: string;
  /** Receives warning lines (Redis down, registry down, literal secrets). @default ignore */
  warn?: (message: string) => void;
  /** Use this registry instead of opening the configured one (the caller keeps owning it: close() leaves it open). */
  registry?: Registry;
  /** The clock for demo expiry. @default () => new Date() */
  now?: () => Date;
  /**
   * What a tenant config read caches on a miss (see PopulatePolicy), given the
   * resolved configuration: by default the services' own entry, or nothing.
   * The CLI caches nothing unless warming is asked for.
   * @default 'resolved'
   */
  populate?: (config: TenantctlConfig) => PopulatePolicy;
  /** Opens the cache store (tests hand in their own). @default the ioredis adapter */
  openCache?: OpenStore;
  /** Receives timing lines (connections, registry opens) for --debug. @default ignore */
  debug?: (message: string) => void;
  /** Receives a line before a long silent step (an embedded registry's creation). @default ignore */
  progress?: (message: string) => void;
  /**
   * After Redis failed, how long it is skipped before it is tried again. The CLI never tries again within
   * a command (Infinity); a service using the library recovers from a blip by itself. @default 5000
   */
  redisRetryMs?: number;
  /**
   * Ends the waits for a connection (Redis's connect, the registry's opening) when it aborts: they reject
   * with InterruptedError at once, not at the timeout. The CLI's run signal (its first SIGINT / SIGTERM).
   */
  signal?: AbortSignal;
  /**
   * The cache invalidations of writes already committed still wait for Redis's connect after `signal`
   * aborted, up to the Redis timeout, so that what was written does not stay cached (else the abort ends that
   * wait too, and they stay owed to the next write). For an owner that stops at once on a second signal:
   * the CLI. @default false
   */
  invalidateWritesPastSignal?: boolean;
}

/** The close, as a call ends with it; `cause`: what the call failed with (a COMMIT whose outcome is unknown, say). */
const closedError = (cause?: unknown) => new UsageError('this Tenantctl was closed (close() was called): open a new one', { reason: 'closed', ...(cause !== undefined && { cause }) });

/**
 * The composition root: configuration, the cache (connected on first use),
 * the registry (opened on first use), the YAML source and the services, built
 * once. The CLI uses exactly this, so an application importing the library
 * gets the same key names, TTLs and JSON format. Call `close()` when done.
 */
export class Tenantctl {
  readonly config: TenantctlConfig;
  readonly env: NodeJS.ProcessEnv;
  readonly cache: Cache;
  readonly keys: KeySpace;
  readonly source: YamlTenantSource;
  readonly admin: CacheAdmin;
  readonly tenants: TenantConfigService;
  readonly migration: Migration;
  readonly permissions: PermissionService;
  readonly subscriptions: SubscriptionService;
  readonly outbox: InvalidationOutbox;
  private readonly warn: (message: string) => void;
  private readonly debug: (message: string) => void;
  private readonly progress: (message: string) => void;
  private registryPromise: Promise<Registry> | undefined;
  private writablePromise: Promise<Registry> | undefined;
  private readonly ownsRegistry: boolean;
  /** options.signal: what ends a wait for a connection. */
  private readonly waitSignal: AbortSignal | undefined;
  /** Aborted by close(): an opening under way gives up (a connect to a silent server), not waited out. */
  private readonly closing = new AbortController();

  constructor(options: TenantctlOptions = {}) {
    const warn = (this.warn = options.warn ?? (() => undefined));
    this.env = options.env ?? process.env;
    const cwd = options.cwd ?? workingDirectory();
    this.config = resolveConfig(options.flags ?? {}, this.env, cwd, options.flagNames ?? 'options');
    this.ownsRegistry = !options.registry;
    if (options.registry) this.registryPromise = Promise.resolve(options.registry);
    for (const n of this.config.notices) warn(n);
    const debug = (this.debug = options.debug ?? (() => undefined));
    this.progress = options.progress ?? (() => undefined);
    this.waitSignal = options.signal;
    this.cache = new Cache(this.config.redis, { warn, debug, open: options.openCache, retryAfterMs: options.redisRetryMs ?? REGISTRY_RETRY_MS, signal: options.signal, connectPastSignal: options.invalidateWritesPastSignal });
    this.keys = new KeySpace(this.config.families);
    this.source = new YamlTenantSource(this.config.tenantsDir, this.config.registryOnlyPrefix, this.config.tenantsDirExplicit, new Set(this.config.yamlOnlyTenants));
    this.admin = new CacheAdmin(this.cache, this.keys);
    this.outbox = new InvalidationOutbox({ cache: this.cache, admin: this.admin, warn });
    // The services' registry: guarded, so that a call the close cuts short ends as the close (see guarded).
    const registry = () => this.registry().then((store) => this.guarded(store));
    const writableRegistry = () => this.writableRegistry().then((store) => this.guarded(store));
    // For the config service: a call made after close() ends at once (one the close cuts short: see guarded).
    const closed = () => {
      if (this.closed) throw closedError();
    };
    this.tenants = new TenantConfigService({
      cache: this.cache, registry, writableRegistry, outbox: this.outbox, source: this.source, keys: this.keys, ttl: this.config.ttl, env: this.env, warn, closed,
      // The services' own entry or nothing (see PopulatePolicy); `stored` only where a caller asks for it.
      populate: options.populate?.(this.config) ?? 'resolved',
    });
    this.migration = new Migration({
      source: this.source,
      registry,
      writableRegistry,
      outbox: this.outbox,
      parseCache: () => ParseCache.open(this.config.tenantsDir, this.env),
      contentHashes: () => ContentHashCache.open(this.env),
      warn,
      cwd,
      checkRegistryPlace: () => this.refuseStrayRegistry(),
    });
    this.permissions = new PermissionService({ cache: this.cache, registry, keys: this.keys, ttl: this.config.permissionsTtl, now: options.now, warn });
    this.subscriptions = new SubscriptionService({ registry: writableRegistry, readRegistry: registry, permissions: this.permissions, outbox: this.outbox, now: options.now, warn });
  }

  /**
   * The registry for reading, opened on first call (PGlite, pg and supabase-js
   * load only then). It changes nothing: no schema, and no embedded registry
   * is created (one that does not exist is a BackendUnavailableError with
   * reason `not-configured`).
   */
  registry(): Promise<Registry> {
    if (this.closed) return Promise.reject(closedError());
    this.forgetIfLost();
    // Stopped already: no opening is started that nobody would wait for (it kept the process up to its timeout).
    if (!this.registryPromise && this.waitSignal?.aborted) return Promise.reject(interruption(this.waitSignal, 'opening the registry'));
    if (!this.registryPromise) {
      const opening = this.timed('registry opened for reading', openRegistry(this.config.registry, { mode: 'read', timeoutMs: this.config.registryTimeoutMs, env: this.env, signal: this.closing.signal }));
      this.registryPromise = opening;
      this.forgetOnFailure(opening);
    }
    return this.unlessClosed(this.waited(this.registryPromise));
  }

  /**
   * An opening close() gave up on (its abort, "PGlite is closing") is the close, not an outage: a call in
   * flight rejected "unreachable" / "in use", or answered from YAML with a warning, at every shutdown. The
   * guarded registry's calls end the same way (see guarded).
   */
  private unlessClosed<T>(work: Promise<T>): Promise<T> {
    return work.catch((err: unknown) => {
      if (this.closed) throw closedError(err);
      throw err;
    });
  }

  /** The guarded form of each store (one per store, so that a service comparing two gets the same object). */
  private readonly guards = new WeakMap<Registry, Registry>();

  /**
   * A store whose calls that fail once close() was called fail as the close (UsageError `closed`), not as
   * the outage the closed connection looks like: every service built here (reads, permissions, subscriptions,
   * migration) ends a call the close cut short that way, where each caught the failure and asked whether it
   * was the close (four places, and never the subscriptions or the migration). The services get it; registry() and
   * writableRegistry() give the store itself (a registry handed in comes back as it was given).
   */
  private guarded(store: Registry): Registry {
    let guard = this.guards.get(store);
    if (!guard) {
      const unlessClosed = <T>(work: Promise<T>) => this.unlessClosed(work);
      // The proxy's own target is an empty object, the store read through the traps: a store handed in frozen
      // (its methods own, read-only data properties) bound a proxy over it to give back those very functions,
      // and every call failed with a TypeError (a review). Methods run on the store itself (its #private fields).
      guard = new Proxy({} as Registry, {
        get(_, prop) {
          const value: unknown = Reflect.get(store, prop, store);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            const result: unknown = Reflect.apply(value, store, args);
            return result instanceof Promise ? unlessClosed(result) : result;
          };
        },
        has: (_, prop) => Reflect.has(store, prop),
        getPrototypeOf: () => Reflect.getPrototypeOf(store),
      });
      this.guards.set(store, guard);
    }
    return guard;
  }

  /** What each opening promise above resolved to (a lost store is let go of, see forgetIfLost). */
  private readonly openedStores = new Map<Promise<Registry>, Registry>();

  /**
   * A store whose connection ended for good (PostgreSQL restarted, the session killed, a failover) is
   * closed and forgotten, so the next call opens a new one: a long-lived program recovers by itself.
   * A registry handed in by the caller is the caller's to replace.
   */
  private forgetIfLost(): void {
    if (!this.ownsRegistry) return;
    const lost = new Set<Registry>();
    for (const [opening, store] of this.openedStores) {
      if (!store.lost) continue;
      lost.add(store);
      this.openedStores.delete(opening);
      // Only the promises that gave this store: a healthy one (opened for writing meanwhile) is kept.
      if (this.registryPromise === opening) this.registryPromise = undefined;
      if (this.writablePromise === opening) this.writablePromise = undefined;
    }
    for (const store of lost) {
      this.warn(`warning: registry (${store.description}) connection lost; opening a new one`);
      void store.close().catch(() => undefined);
    }
  }

  /**
   * A failed open answers every caller at once for a while (no second timeout within one command), then
   * a long-lived program (the library in a service) opens it again: an outage is not for the process's
   * life. For both the read and the write opening.
   */
  private forgetOnFailure(opening: Promise<Registry>): void {
    opening.then((store) => this.openedStores.set(opening, store), () => undefined);
    opening.catch(() => {
      setTimeout(() => {
        if (this.registryPromise === opening) this.registryPromise = undefined;
        if (this.writablePromise === opening) this.writablePromise = undefined;
      }, REGISTRY_RETRY_MS).unref();
    });
  }

  private async timed<T>(what: string, work: Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    try {
      return await work;
    } finally {
      this.debug(`${what} in ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1)} ms`);
    }
  }

  /** The registry for writing: the embedded one is created if needed, the schema made current (only when it is not). */
  writableRegistry(): Promise<Registry> {
    if (this.closed) return Promise.reject(closedError());
    this.forgetIfLost();
    if (this.writablePromise) return this.unlessClosed(this.waited(this.writablePromise));
    if (this.waitSignal?.aborted) return Promise.reject(interruption(this.waitSignal, 'opening the registry'));
    // Every write invalidates afterwards: Redis connects beside the registry's open and the write, so a
    // silent one is found down by then instead of costing its whole timeout after them.
    this.cache.connectSoon();
    const writable = (async () => {
      const opened = await this.registryPromise?.catch((err) => {
        if (err instanceof BackendUnavailableError && err.reason === 'not-configured') return undefined;
        throw err;
      });
      // Closed while the read opening settled: nothing more is opened (close() has let go of it).
      if (this.closed) throw closedError();
      if (opened) {
        await opened.ensureSchema();
        return opened;
      }
      this.refuseStrayRegistry();
      const store = this.timed(
        'registry opened for writing',
        openRegistry(this.config.registry, {
          mode: 'write',
          timeoutMs: this.config.registryTimeoutMs,
          env: this.env,
          signal: this.closing.signal,
          // Said piped too: from the wrong directory, a script's run would otherwise make a new registry unseen.
          onCreate: (dir) => this.warn(`note: creating the embedded registry in ${dir} (first run: a few seconds)`),
        }),
      );
      this.registryPromise = store;
      this.forgetOnFailure(store);
      return store;
    })();
    this.writablePromise = writable;
    this.forgetOnFailure(writable);
    return this.unlessClosed(this.waited(writable));
  }

  /**
   * An opening as a caller waits for it: as it is once it opened (a registry open is no wait, and stays usable
   * after a signal: a review found a run's open registry refused after its first signal), else ended by the
   * signal. A registry handed in by the caller is open already (it never enters openedStores).
   */
  private waited(opening: Promise<Registry>): Promise<Registry> {
    return !this.ownsRegistry || this.openedStores.has(opening) ? opening : untilAborted(opening, this.waitSignal, 'opening the registry');
  }

  /**
   * A new embedded registry, made by default in the working directory's project, while the tenants directory
   * is in another project (`--tenants-dir ../proj/tenants` run from elsewhere): that project's registry and
   * settings are the ones meant, and a second, empty registry would be made here unseen (a fault review:
   * "41 create", exit 0, the project's own registry untouched). A registry given explicitly is used as given.
   */
  private refuseStrayRegistry(): void {
    const spec = this.config.registry;
    const source = (key: string) => this.config.settings.find((s) => s.key === key)?.source;
    if (spec.kind !== 'embedded' || source('registry') !== 'default') return;
    // Run from a project, its own registry is the one made (its tenants may live anywhere, in a nested project
    // too); and a tenants directory from the project's own config file is the project's.
    if (this.config.project.found || !(source('tenants_dir') === 'flag' || source('tenants_dir') === 'env')) return;
    if (embeddedRegistryExists(spec.dir)) return;
    // Where it is named, and where it really is: a link here to another project's tenants directory made a
    // second registry here and wrote into it (a probe).
    for (const dir of new Set([this.config.tenantsDir, realPath(this.config.tenantsDir)])) {
      const owner = findProjectRoot(dir);
      // The same directory by another spelling (a symlink) is this one.
      if (!owner.found || realPath(owner.dir) === realPath(this.config.project.dir)) continue;
      throw new UsageError(`the tenants directory ${this.config.tenantsDir} is in the project at ${owner.dir}, whose registry and settings are there: a new embedded registry would be made in ${spec.dir}`, { reason: 'other-project' });
    }
  }

  /**
   * Does the cache invalidations earlier writes still owe (the registry's
   * outbox): never creates a registry. A Redis failure is a warning and
   * status `failed` (the owed entries stay for the next try); a registry
   * that cannot be read is status `unchecked`, with its error.
   */
  async drainOwedInvalidations(options: { signal?: AbortSignal; onDeleted?: (total: number) => void } = {}): Promise<DrainResult | undefined> {
    this.cache.connectSoon();
    try {
      // The signal stops the drain between batches (a first Ctrl-C was heard only once every page was done).
      const drained = await this.outbox.drain(await this.registry(), { signal: options.signal, onDeleted: options.onDeleted });
      // Stopped while Redis connected: the interruption is the run's error, said once there.
      if (drained.status === 'failed' && !(drained.error?.cause instanceof InterruptedError)) this.warn(`warning: ${drained.pending} invalidation(s) owed by earlier writes are still pending: ${describeError(drained.error)}`);
      return drained;
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      // Not "nothing owed" (exit 0): what is owed is unknown, and saying so is the caller's (--pending: exit 3).
      if (err.reason !== 'not-configured') return { status: 'unchecked', done: 0, pending: 0, error: err };
      // No registry here: nothing can be owed in it. Said, so that a run from the wrong directory is not
      // taken for the owed invalidations done (it printed nothing at all, exit 0).
      this.warn(`note: ${describeError(err)}: no invalidation can be owed there`);
      return { status: 'done', done: 0, pending: 0 };
    }
  }

  /**
   * The cache invalidations earlier writes still owe (up to `limit`), read
   * without doing them; undefined when there is no registry to ask, or (with
   * a warning) when it cannot be read.
   */
  async owedInvalidations(limit = 1000, options: { required?: boolean } = {}): Promise<PendingInvalidation[] | undefined> {
    try {
      return await (await this.registry()).pendingInvalidations(limit);
    } catch (err) {
      // A note only, and the run is stopping (its first signal while the registry opened): not checked, unsaid.
      if (err instanceof InterruptedError && !options.required) return undefined;
      // Asked for as the answer (`invalidate --pending --dry-run`): a registry that cannot be read is the
      // command's failure, not "nothing owed" (it listed none, exit 0, with 15,000 owed).
      // An unusable registry setting (DATABASE_URL=mysql://...) too (a review: exit 0, "nothing owed").
      const unusable = isUnusableRegistry(err);
      if (options.required && (unusable || (err instanceof BackendUnavailableError && err.reason !== 'not-configured'))) throw err;
      // An unusable registry setting is the registry's problem, not the cache command's (invalidate has
      // deleted its keys by now): said, not the run's error.
      if (!unusable && !(err instanceof BackendUnavailableError)) throw err;
      if (unusable || (err as BackendUnavailableError).reason !== 'not-configured') this.warn(`warning: invalidations owed by earlier writes not checked: ${describeError(err)}`);
      return undefined;
    }
  }

  private closed = false;

  /**
   * Closes Redis and the registry it opened, waiting for an opening under way; safe to call more than once.
   * Every later call rejects with a UsageError (reason `closed`): a read in flight when a service shuts
   * down must not open the registry again afterwards (an embedded one would stay locked, and the process
   * alive).
   */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    this.cache.close({ forGood: true });
    if (this.ownsRegistry) {
      const openings = [this.registryPromise, this.writablePromise, ...this.openedStores.keys()].filter((p): p is Promise<Registry> => !!p);
      this.registryPromise = undefined;
      this.writablePromise = undefined;
      const stores = new Set((await Promise.all(openings.map((p) => p.catch(() => undefined)))).filter((s): s is Registry => !!s));
      for (const store of stores) await store.close();
    }
    this.openedStores.clear();
  }
}

/** A path with its symlinks resolved, or as given when it cannot be. */
function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
