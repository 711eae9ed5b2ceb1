import path from 'node:path';
import { BackendUnavailableError, closedByOwner, InterruptedError, PartialFailureError, TenantFileError, UsageError, describeError, stoppedBy, throwIfAborted, untilAborted, type TenantctlError } from '../errors.js';
import { parseId, parseIdList } from '../keys/ids.js';
import { invalidationsFor, type ChangeItem, type ContentHashMemo, type Registry, type StoredSubscription, type TenantVersionInfo } from '../registry/registry-store.js';
import { layoutName, manyFilesReason, type YamlTenantSource } from '../tenants/tenant-source.js';
import { rowFromConfig } from '../tenants/registry-mapping.js';
import { catalogueHash, catalogueVersion, subscriptionHash, subscriptionVersion, tenantVersion } from '../registry/content-hash.js';
import { hasCatalogue, tierOf, type Catalogue, type Subscription } from '../permissions/model.js';
import { loadTiersFile, tiersFilePath } from '../permissions/tiers-file.js';
import { subscriptionFromConfig } from '../permissions/subscription-block.js';
import type { DrainResult, InvalidationOutbox } from './invalidation-outbox.js';
import { BatchPipeline, type Pending } from './batch-pipeline.js';
import type { ParseCache } from '../tenants/parse-cache.js';

export { catalogueHash, subscriptionHash } from '../registry/content-hash.js';

export type MigrationAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'skip' | 'error';
/** What an item writes: a tenant's config row, its subscription, or the catalogue (tiers.yaml). */
export type MigrationKind = ChangeItem['kind'];

export interface MigrationItem {
  kind: MigrationKind;
  id: string;
  file?: string;
  action: MigrationAction;
  /** Why (conflict, skip, error), or "forced: …" on an update that overrode a conflict. */
  reason?: string;
  /** A conflict that a forced run overwrites (the CLI says `use --force`). */
  forceable?: true;
  /** For an error: bad input (the file), the registry failing, or a signal stopping the run first. */
  failure?: 'bad-input' | 'backend' | 'interrupted' | 'refused';
  /** When applied: whether it was written, and whether the cache of what it affects was invalidated. */
  written?: boolean;
  /** Its write got no confirmation (the connection lost at COMMIT): it may be in the registry; `written` is false. */
  unconfirmed?: true;
  cacheInvalidated?: boolean | 'not-configured';
  warnings: string[];
}

export interface MigrationReport {
  dryRun: boolean;
  items: MigrationItem[];
  counts: Record<MigrationAction, number>;
  /** Invalidations owed by earlier runs (killed, or Redis down) that this run did first. */
  earlierInvalidations?: { done: number; pending: number };
  /** Invalidations still owed when this run ended (Redis down or not configured): the next write command does them. */
  pendingInvalidations?: number;
  /** pendingInvalidations is a lower bound (the registry's record was read one page at a time). */
  pendingAtLeast?: boolean;
  /** The cache failure that left invalidations pending, once (not per tenant). */
  cacheError?: string;
  /** Active tenants migrated earlier whose files are gone (removed or renamed): left as they are; the first 10 named. */
  migratedWithoutFile?: { total: number; some: string[] };
}

export interface MigrationOptions {
  ids?: string[];
  dryRun?: boolean;
  force?: boolean;
  /** Called after each written batch with the tenant files done so far and in all (for progress on stderr). */
  progress?: (done: number, total: number) => void;
  /** Checked between batches: the run stops there, reports what it did, and throws InterruptedError. */
  signal?: AbortSignal;
}

/**
 * Tenant files per batch: read, planned (one query per table) and written
 * (one transaction, with their subscriptions) together. Big enough for
 * multi-row statements to pay, small enough to stop promptly on a signal.
 */
export const MIGRATION_BATCH = 500;

/** The reads a plan needs, from an empty registry (a dry run before the embedded registry exists). */
type RegistryReads = Pick<Registry, 'getTenantVersions' | 'getSubscriptions' | 'getCatalogue' | 'subscriptionsOffTiers' | 'migratedTenantIds'>;
const EMPTY_REGISTRY_READS: RegistryReads = {
  getTenantVersions: async () => new Map(),
  getSubscriptions: async () => new Map(),
  getCatalogue: async () => ({ features: [], tiers: {}, tenantctl_hash: null }),
  subscriptionsOffTiers: async () => ({ total: 0, some: [] }),
  migratedTenantIds: async () => [],
};

/**
 * YAML -> registry: tenant configs, their subscriptions and the catalogue
 * (`tiers.yaml`). The plan per item is create / update / unchanged / conflict
 * (edited in the registry since tenantctl last wrote it: its content no
 * longer matches the hash tenantctl stored) / skip (`yaml_only`) / error (a
 * bad file: nothing of that tenant is written). Idempotent: a second run
 * finds everything unchanged.
 *
 * Applying: migrations serialise (a lock on the registry). The files go in
 * batches of MIGRATION_BATCH: each is read, planned (one query per table)
 * and written in one transaction that re-checks every item against the
 * version it was planned on (so a change made meanwhile is a conflict, never
 * overwritten) and records the cache invalidations it owes; the next batch's
 * files are read while that transaction runs. The invalidations are done at
 * the end, and any an earlier run left owed (killed, or Redis down) are done
 * first. A run stopped midway (a signal, the registry failing) names every
 * tenant in its report: written, not written, or not read.
 */
export class Migration {
  constructor(
    private readonly deps: {
      source: YamlTenantSource;
      /** The registry for reading (a dry run never creates or changes it). */
      registry: () => Promise<Registry>;
      /** The registry for writing (created if embedded, schema made current). */
      writableRegistry: () => Promise<Registry>;
      outbox: InvalidationOutbox;
      /** Parsed files kept between runs (a rerun over unchanged files stats them instead of parsing them). */
      parseCache?: () => ParseCache;
      /** Content hashes of registry rows kept between runs (a rerun's plan hashes no unchanged row). */
      contentHashes?: () => ContentHashMemo & { save(): void };
      /** Notes on stderr (a dry run planned against a registry that does not exist yet). */
      warn?: (message: string) => void;
      /** What the report's file names are relative to (the library's `cwd` option). @default process.cwd() */
      cwd?: string;
      /** Throws when the run would make a registry in the wrong place (a dry run is refused as the run would be). */
      checkRegistryPlace?: () => void;
    },
  ) {}

  async run(options: MigrationOptions = {}): Promise<MigrationReport> {
    return this.runOnce(options);
  }

  private async runOnce(options: MigrationOptions, pass: { planFirst?: boolean } = {}): Promise<MigrationReport> {
    const { source } = this.deps;
    // Ids named are checked before anything is looked at or opened (an empty list: every tenant).
    const named = options.ids !== undefined && parseIdList(options.ids, 'ids').length ? [...new Set(options.ids)] : undefined;
    // A tenants directory named explicitly that does not exist is a usage error, said before anything is created or locked.
    // The default one missing too: there is nothing to migrate, and opening the registry would create an
    // embedded one here (run from a subdirectory of a fresh clone: a stray project shadowing the real one).
    // A dry run says so too (it showed an empty plan, exit 0, where the real run is exit 2).
    if (!source.checkDir()) {
      throw new UsageError(`no tenants directory at ${source.dir}: nothing to migrate${options.dryRun ? '' : '; nothing was created'}`, { reason: 'no-tenants-dir' });
    }
    this.deps.checkRegistryPlace?.();
    // No registry yet (the embedded one, made by the first write): planned first, and not made when the plan
    // writes nothing because of bad input. A run of bad files only made it all the same (a review: exit 2
    // "nothing done", and a new .tenantctl/registry). A run with nothing at all to do still makes it, empty, as
    // before (the benchmark's template is made so). The plan's reading fills the parse cache, so the run reads
    // each file once more as a stat. Only a project's first run pays for it.
    if (!options.dryRun && !pass.planFirst && (await this.writeWouldCreate())) {
      const plan = await this.runOnce({ ...options, dryRun: true }, { planFirst: true }).catch((err: unknown) => {
        throw err instanceof InterruptedError ? stoppedBeforeWriting(err) : err;
      });
      const writes = plan.items.some((i) => i.action === 'create' || i.action === 'update');
      if (!writes && plan.items.some((i) => i.action === 'error')) return { ...plan, dryRun: false };
    }
    if (this.deps.parseCache) source.useParseCache(this.deps.parseCache());
    const registry = options.dryRun ? await this.readRegistryOrEmpty(!pass.planFirst) : await this.deps.writableRegistry();
    const release = options.dryRun ? undefined : await lockUnlessStopped(registry as Registry, options.signal);
    let pipeline: BatchPipeline | undefined;
    let memo: (ContentHashMemo & { save(): void }) | undefined;
    // Kept outside the work, for the close (see closedWithReport).
    let report: MigrationReport | undefined;
    let ids: string[] = [];
    try {
      // Listed under the lock: a run that waited for another one sees the directory as it is now.
      const listing = named ? undefined : source.listing();
      // Named ids are checked for a second file too (a full run's listing finds them in passing).
      const ambiguous = listing?.ambiguous ?? (named ?? []).map((id) => ({ id, files: source.filesOf(id) })).filter((a) => a.files.length > 1);
      ids = named ? named.filter((id) => !ambiguous.some((a) => a.id === id)) : listing!.ids;
      memo = this.deps.contentHashes?.();
      const items: MigrationItem[] = [];
      report = { dryRun: !!options.dryRun, items, counts: countActions(items) };
      const currentCatalogue = await registry.getCatalogue();
      if (!options.dryRun) {
        const earlier = await this.deps.outbox.drain(registry as Registry, { signal: options.signal });
        report.earlierInvalidations = { done: earlier.done, pending: earlier.pending };
      }
      // Set by the first plan when tiers.yaml is not written (a conflict), or by the pipeline when the registry
      // refuses it: the registry keeps its catalogue.
      const kept: { catalogue?: Catalogue; why?: string } = {};
      const onCatalogueRefused = () => {
        kept.catalogue = currentCatalogue;
        kept.why = 'the registry refused it';
        return (sub: Subscription) => !tierOf(currentCatalogue, sub.tier);
      };
      const batches = (pipeline = new BatchPipeline(options.dryRun ? undefined : (registry as Registry), options, ids.length, memo, onCatalogueRefused));
      // The catalogue (subscriptions are checked against it) and misnamed files go with the first batch.
      const first = new Map<MigrationItem, Pending>();
      const catalogue = this.readCatalogue(listing?.invalidFiles ?? [], items, first, currentCatalogue);
      // A tenant with two files is an error of its own (which one do the services read?), never written twice.
      for (const a of ambiguous) {
        items.push(markBad({ kind: 'tenant', id: a.id, file: this.rel(a.files[0]), action: 'error', warnings: [] }, manyFilesReason(a.id, a.files.map((f) => this.rel(f)))));
      }
      // A file of a registry-only id is never read: a skip, said, not left out without a word.
      for (const f of listing?.registryOnlyFiles ?? []) {
        items.push({ kind: 'tenant', id: layoutName(f).name.replace(/\.ya?ml$/, ''), file: this.rel(f), action: 'skip', reason: `registry-only (ids starting "${source.registryOnlyPrefix}" live in the registry alone): the file is not read`, warnings: [] });
      }
      for (let at = 0; at === 0 || at < ids.length; at += MIGRATION_BATCH) {
        const chunk = ids.slice(at, at + MIGRATION_BATCH);
        // A turn of the event loop between batches: a signal is delivered there (a dry run, reading and planning
        // only, never waited on anything else, so Ctrl-C was seen only after the whole plan).
        if (at > 0) await new Promise((resolve) => setImmediate(resolve));
        const stop = batches.stopReason();
        if (stop) {
          // Stopped before the first plan: the catalogue read with the first batch is not written either.
          if (at === 0) batches.notWritten(first.keys(), { planned: false });
          // Files never read are said too, so that the report names every tenant.
          for (const id of ids.slice(at)) items.push({ kind: 'tenant', id, action: 'error', reason: `not read: ${stop.reason}`, failure: stop.failure, ...(!options.dryRun && { written: false }), warnings: [] });
          break;
        }
        const pending = at === 0 ? first : new Map<MigrationItem, Pending>();
        // Read while the previous batch is being written: its transaction runs on the server meanwhile.
        await this.readTenants(chunk, catalogue, items, pending, () => batches.inFlight());
        await batches.settled();
        if (!(await this.plan(registry, pending, currentCatalogue, { force: !!options.force, named: !!named }, memo, batches, kept))) continue;
        this.buildRows(pending);
        batches.write(pending, chunk.length);
      }
      await batches.settled();
      if (batches.closedBy) throw batches.closedBy;
      if (!options.dryRun) {
        // The invalidations owed for what was written, even when stopped midway.
        // After Ctrl-C too: what is committed gets its invalidations (an aborted signal made them throw at once,
        // the report lost; then a Redis still connecting when it came left them owed); a second signal stops at once.
        this.recordInvalidation(report, await this.drainAfterWrites(registry as Registry, items));
        await this.invalidateUnconfirmed(batches.unconfirmed);
      }
      await this.warnOfStrandedSubscriptions(registry, items, catalogue, !!options.dryRun);
      if (listing && !batches.stopReason()) report.migratedWithoutFile = await this.migratedWithoutFile(registry, listing);
      report.counts = countActions(items);
      // A dry run writes nothing: what it got done is the items it planned (it said "stopped after 0 done").
      const planned = () => items.filter((i) => i.action !== 'error').length;
      throwIfAborted(options.signal, () => ({ done: options.dryRun ? planned() : batches.done }), options.dryRun ? 'the migration plan' : 'migrate-yaml', report);
      return report;
    } catch (err) {
      throw closedByOwner(err) && report ? closedWithReport(err as UsageError, report, ids, !!options.dryRun) : err;
    } finally {
      // A batch still in flight (reading a file failed unexpectedly meanwhile) ends before the lock is let go.
      await pipeline?.settled().catch(() => undefined);
      memo?.save();
      source.saveParseCache();
      await release?.();
    }
  }

  /**
   * A new catalogue that drops a tier some subscriptions are still on leaves them granting nothing and
   * 0 devices (a paying business cut off, silently): said on the catalogue's item, with who. Not refused:
   * the same run may be moving them (their files are batches away), and the registry has the last word.
   */
  private async warnOfStrandedSubscriptions(registry: Pick<Registry, 'subscriptionsOffTiers'>, items: MigrationItem[], checks: CatalogueForChecks, dryRun: boolean): Promise<void> {
    const item = items.find((i) => i.kind === 'catalogue');
    if (!item || !checks.catalogue || !(item.action === 'create' || item.action === 'update') || (!dryRun && !item.written)) return;
    let found: { total: number; some: Array<{ business_id: string; tier: string }> };
    try {
      found = await registry.subscriptionsOffTiers(Object.keys(checks.catalogue.tiers), 5);
    } catch (err) {
      // A check after the work: never the run's failure (nor a close landing on it: the writes are done).
      if (err instanceof BackendUnavailableError || closedByOwner(err)) return;
      throw err;
    }
    const { total, some } = found;
    if (!total) return;
    const who = some.map((s) => `${s.business_id}: ${s.tier}`).join(', ');
    item.warnings.push(
      `${item.file}: ${total} subscription(s) ${dryRun ? 'in the registry now are' : 'are'} on tiers it does not have (${who}${total > some.length ? ', …' : ''}): they grant nothing and 0 devices until moved to another tier, but for their overrides (or keep the tier)`,
    );
  }

  /**
   * Tenants tenantctl migrated, still active, whose files are gone from the directory (removed, or renamed:
   * the new name is a new tenant). Left as they are (the services may still serve them), but said: a
   * whole run of the directory was silent about them. Undefined when there are none, or the registry
   * cannot say.
   */
  private async migratedWithoutFile(
    registry: Pick<Registry, 'migratedTenantIds'>,
    listing: { ids: string[]; ambiguous: Array<{ id: string }> },
  ): Promise<MigrationReport['migratedWithoutFile']> {
    let migrated: string[];
    try {
      migrated = await registry.migratedTenantIds();
    } catch (err) {
      // A note only: a close landing on it leaves the report of the writes done (it was lost, 'closed').
      if (err instanceof BackendUnavailableError || closedByOwner(err)) return undefined;
      throw err;
    }
    const have = new Set([...listing.ids, ...listing.ambiguous.map((a) => a.id)]);
    const gone = migrated.filter((id) => !have.has(id) && this.deps.source.allows(id));
    return gone.length ? { total: gone.length, some: gone.slice(0, 10) } : undefined;
  }

  /** The registry to plan against without creating it: an embedded registry that does not exist yet is empty. */
  private async readRegistryOrEmpty(say = true): Promise<RegistryReads> {
    try {
      return await this.deps.registry();
    } catch (err) {
      if (!(err instanceof BackendUnavailableError) || err.reason !== 'not-configured') throw err;
      // Said: run from the wrong directory, the plan of "all create" is against a registry the run would create.
      if (say) this.deps.warn?.(`note: ${describeError(err)}: planned against an empty one, which the run would create`);
      return EMPTY_REGISTRY_READS;
    }
  }

  /**
   * Whether opening the registry for writing would change it before anything is written: there is none to
   * read yet (an embedded one not created), or its schema is not current (a new PostgreSQL database, the
   * services' own tenants table): writing applies schema.sql. A run of bad input alone created seven
   * tables and altered the services' table, then said "nothing done" (exit 2; a probe).
   */
  private async writeWouldCreate(): Promise<boolean> {
    const reads = await this.readRegistryOrEmpty(false);
    if (reads === EMPTY_REGISTRY_READS) return true;
    const state = await (reads as Registry).schemaState?.();
    return state !== undefined && !state.current;
  }

  /** The catalogue (tiers.yaml) and the files whose names are not ids, as items; returns the catalogue subscriptions are checked against. */
  private readCatalogue(invalidFiles: string[], items: MigrationItem[], pending: Map<MigrationItem, Pending>, registryCatalogue: Catalogue): CatalogueForChecks {
    const { source } = this.deps;
    let checks: CatalogueForChecks = { catalogue: registryCatalogue };
    const tiersFile = tiersFilePath(source.dir);
    if (tiersFile) {
      const catalogueItem: MigrationItem = { kind: 'catalogue', id: 'tiers', file: this.rel(tiersFile), action: 'error', warnings: [] };
      items.push(catalogueItem);
      try {
        const catalogue = loadTiersFile(tiersFile);
        pending.set(catalogueItem, { kind: 'catalogue', catalogue, hash: catalogueHash(catalogue) });
        checks = { catalogue };
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        markBad(catalogueItem, err.message);
        checks = { error: err.message };
      }
    }
    // Files that look like tenants but whose names are not ids: said, never silently skipped.
    for (const f of invalidFiles) {
      // `<id>/client.yaml`: the folder's name is the id.
      const { name: id, folder } = layoutName(f);
      items.push(markBad({ kind: 'tenant', id, file: this.rel(f), action: 'error', warnings: [] }, `${this.rel(f)}: the ${folder ? 'folder' : 'file'} name is not a valid tenant id (letters, digits, _ - . only)`));
    }
    return checks;
  }

  /** A file named from the working directory (most sit under it: a prefix cut, not path.relative for each of 10,000). */
  private rel(f: string): string {
    const cwd = this.deps.cwd ?? process.cwd();
    return f.startsWith(cwd + path.sep) ? f.slice(cwd.length + 1) : path.relative(cwd, f) || f;
  }

  /**
   * Loads and validates tenants' files: an item per tenant and subscription.
   * While `busy()` (a batch being written), it yields now and then, so that
   * the write's round trips go on while files are read.
   */
  private async readTenants(ids: string[], checks: CatalogueForChecks, items: MigrationItem[], pending: Map<MigrationItem, Pending>, busy: () => boolean) {
    const { source } = this.deps;
    let n = 0;
    for (const id of ids) {
      if (++n % YIELD_EVERY === 0 && busy()) await new Promise((resolve) => setImmediate(resolve));
      // The file is named once read (one stat per tenant, not two); a bad file's error names it too.
      const item: MigrationItem = { kind: 'tenant', id, file: undefined, action: 'error', warnings: [] };
      items.push(item);
      if (!source.allows(id)) {
        markBad(item, `ids starting "${source.registryOnlyPrefix}" are registry-only and never read from YAML`);
        continue;
      }
      try {
        const doc = source.read(id);
        if (!doc) {
          markBad(item, source.whyNoFile(id));
          continue;
        }
        item.file = this.rel(doc.file);
        item.warnings = doc.warnings;
        if (doc.yamlOnly) {
          item.action = 'skip';
          item.reason = 'yaml_only';
          continue;
        }
        // Validate the whole file before anything of it is planned: a bad
        // subscription block means nothing of this tenant is written.
        let sub: Subscription | undefined;
        if (doc.hasSubscription) {
          if (!checks.catalogue) throw new TenantFileError(doc.file, undefined, `has a subscription, but tiers.yaml is invalid (${checks.error})`);
          sub = subscriptionFromConfig(id, doc.config, checks.catalogue, doc);
        }
        const hash = doc.rowHash ?? rowFromConfig(id, doc.config).tenantctl_hash!;
        pending.set(item, { kind: 'tenant', id, hash, build: () => rowFromConfig(id, doc.config, hash) });
        if (sub) {
          const subItem: MigrationItem = { kind: 'subscription', id, file: item.file, action: 'error', warnings: [] };
          items.push(subItem);
          pending.set(subItem, { kind: 'subscription', sub, hash: subscriptionHash(sub) });
        }
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        item.file ??= this.rel(err.file);
        markBad(item, err.message);
      }
    }
  }

  /**
   * Decides a batch's items from one read per table, remembering the version
   * each was decided on; false when the batch is not to be written (the
   * writing stopped: its items say why). A registry that fails here after
   * batches were written ends the writing like a failed write (the report
   * says what was written); before any, it is the run's error.
   */
  private async plan(
    registry: Pick<Registry, 'getTenantVersions' | 'getSubscriptions'>,
    pending: Map<MigrationItem, Pending>,
    currentCatalogue: Catalogue & { tenantctl_hash: string | null },
    { force, named }: { force: boolean; named: boolean },
    memo: ContentHashMemo | undefined,
    batches: BatchPipeline,
    kept: { catalogue?: Catalogue; why?: string },
  ): Promise<boolean> {
    if (batches.stopReason()) {
      batches.notWritten(pending.keys(), { planned: false });
      return false;
    }
    const tenantIds = [...pending.values()].flatMap((p) => (p.kind === 'tenant' ? [p.id] : []));
    const subIds = [...pending.values()].flatMap((p) => (p.kind === 'subscription' ? [p.sub.business_id] : []));
    let rows: Map<string, TenantVersionInfo>;
    let subs: Map<string, StoredSubscription>;
    try {
      [rows, subs] = await Promise.all([registry.getTenantVersions(tenantIds, memo), registry.getSubscriptions(subIds)]);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError) || batches.done === 0) throw err;
      batches.fail(err);
      batches.notWritten(pending.keys(), { planned: false });
      return false;
    }
    for (const [item, p] of pending) {
      let decision: { action: MigrationAction; reason?: string; forceable?: true };
      if (p.kind === 'tenant') {
        const current = rows.get(p.id);
        decision = decide(p.hash, current, force);
        p.expect = tenantVersion(current);
      } else if (p.kind === 'subscription') {
        const current = subs.get(p.sub.business_id);
        decision = decideSubscription(p.hash, current, force);
        p.expect = subscriptionVersion(current);
        // tiers.yaml not written: a subscription moved onto a tier only it defines would grant nothing and
        // 0 devices in the registry (a paying business cut off, without a word). Not written either.
        const writes = decision.action === 'create' || decision.action === 'update';
        if (writes && kept.catalogue && !tierOf(kept.catalogue, p.sub.tier)) {
          decision = { action: 'conflict', reason: `tier ${p.sub.tier} is not in the registry's catalogue, and tiers.yaml was not written (${kept.why}): not written, or it would grant nothing` };
        }
      } else {
        decision = decideByHash(p.hash, hasCatalogue(currentCatalogue) ? catalogueHash(currentCatalogue) : undefined, currentCatalogue.tenantctl_hash, force && !named, 'tiers');
        p.expect = catalogueVersion(currentCatalogue);
        // The catalogue is every business's: a run that names tenants creates it where there is none, and
        // never changes one (`migrate-yaml acme --force` overwrote a service's edit of the tiers, and an edited
        // tiers.yaml rewrote it and dropped every business's permissions: entry).
        if (named && (decision.action === 'update' || decision.action === 'conflict')) {
          const edited = decision.action === 'conflict' ? `; it was ${decision.reason}` : '';
          decision = { action: 'skip', reason: `tiers.yaml differs from the registry's catalogue${edited}: shared by every business, it is changed only by a run that names no tenant` };
          kept.catalogue = currentCatalogue;
          kept.why = 'tenants were named';
        } else if (decision.action === 'conflict') {
          kept.catalogue = currentCatalogue;
          kept.why = 'its catalogue conflict';
        }
      }
      item.action = decision.action;
      item.reason = decision.reason;
      if (decision.forceable) item.forceable = true;
    }
    return true;
  }

  /**
   * Builds the row of each tenant the plan writes, before anything of the
   * batch is written: a file that changed while it was being read (its config
   * no longer what its parse-cache entry described) is that tenant's error, not the run's.
   */
  private buildRows(pending: Map<MigrationItem, Pending>) {
    for (const [item, p] of pending) {
      if (p.kind !== 'tenant' || (item.action !== 'create' && item.action !== 'update')) continue;
      try {
        p.row = p.build();
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        // (A tenant with a subscription had its config read with its file, so this is never one of those.)
        markBad(item, err.message);
      }
    }
  }

  /**
   * Does the invalidations this run owes. A registry lost midway (the
   * invalidations to do are read from it) leaves them owed, recorded with the
   * rows they are for: the report still says what was written, and the next
   * run does them.
   */
  private async drainAfterWrites(registry: Registry, items: MigrationItem[]): Promise<DrainResult> {
    try {
      // Past the first signal only for what this run wrote: with nothing written, a stop is not held up by
      // a silent Redis for what earlier runs owe (a review: Ctrl-C before the first batch waited the whole timeout).
      return await this.deps.outbox.drain(registry, { afterWrite: items.some((i) => i.written) });
    } catch (err) {
      const written = items.filter((i) => i.written).length;
      if (!(err instanceof BackendUnavailableError) || err.backend !== 'registry') throw err;
      // Nothing written because the registry failed during the run: the report says so (exit 3), not this
      // error. Lost only now (everything unchanged), it is still the run's failure.
      if (written === 0 && items.some((i) => i.failure === 'backend')) return { status: 'done', done: 0, pending: 0 };
      if (written === 0) throw err;
      if (!this.deps.outbox.cacheConfigured) return { status: 'not-configured', done: 0, pending: written };
      // The registry failed, Redis may well not have: what this run wrote is known here, so its cache goes
      // now, as the unconfirmed batch's does (a review: batches committed before PostgreSQL dropped were left
      // stale with Redis healthy, and deletions done before the outbox could be cleared were reported not done).
      // Their outbox entries stay: the next write command does them again, which costs a cache miss.
      const done = await this.deps.outbox.invalidateUnconfirmed(owedFor(items.filter((i) => i.written)));
      // A refusal (no right to clear the outbox) comes back at every drain: not "cleared next time", the run's failure.
      if (done && !err.refused) {
        this.deps.warn?.(`warning: the registry failed after the writes (${describeError(err)}): the cache of the ${written} written item(s) was invalidated without it; the record of those invalidations it keeps is cleared by the next write command`);
        return { status: 'done', done: written, pending: 0 };
      }
      if (done) this.deps.warn?.(`warning: the cache of the ${written} written item(s) was invalidated, but the registry refused to clear its record of those invalidations: ${describeError(err)}`);
      // Owed at least for what this run wrote (the outbox may hold more).
      return { status: 'failed', done: 0, pending: written, error: err };
    }
  }

  /** The batch in flight when the registry failed may be in (a lost COMMIT acknowledgement): its cache goes anyway. */
  private async invalidateUnconfirmed(items: MigrationItem[]): Promise<void> {
    if (!items.length) return;
    if (await this.deps.outbox.invalidateUnconfirmed(owedFor(items))) for (const i of items) i.reason = `${i.reason} (its cache invalidated in case it was)`;
  }

  /** Marks written items with whether their invalidation is done; a Redis failure is said once, with the count left owed. */
  private recordInvalidation(report: MigrationReport, drained: DrainResult) {
    const state = drained.status === 'done' ? true : drained.status === 'not-configured' ? 'not-configured' : false;
    for (const i of report.items) if (i.written) i.cacheInvalidated = state;
    // Owed: at least what was read of the record, and at least every write of this run not invalidated.
    const owed = Math.max(drained.pending, state === true ? 0 : report.items.filter((i) => i.written).length);
    if (owed) report.pendingInvalidations = owed;
    if (owed && drained.more) report.pendingAtLeast = true;
    if (drained.error) report.cacheError = describeError(drained.error);
  }
}

/** What subscriptions are checked against: the catalogue, or why there is none (tiers.yaml is invalid). */
type CatalogueForChecks = { catalogue: Catalogue; error?: undefined } | { catalogue?: undefined; error: string };

/**
 * A run stopped by a signal while it planned (before the registry was made): said as the run it is, nothing
 * written, every item not written (it was said as a dry run, "stopped after 500 done").
 */
/**
 * The library's owner closed it midway (between batches, or on a batch's read or write): the close, with
 * the report of what was written before it, every tenant named (it was lost: "closed" alone, with
 * hundreds of tenants written). Their invalidations are in the outbox; the next write command does them.
 */
function closedWithReport(err: UsageError, report: MigrationReport, ids: string[], dryRun: boolean): UsageError {
  const what = dryRun ? 'not planned' : 'not written';
  const reason = 'closed (close() was called) first';
  for (const i of report.items) {
    // Planned and not written, or read and not yet planned (an item is an error without a reason until planned).
    // (A dry run writes nothing: its planned items stay as planned.)
    const cut = (!dryRun && (i.action === 'create' || i.action === 'update') && !i.written && !i.unconfirmed) || (i.action === 'error' && !i.reason);
    if (cut) Object.assign(i, { action: 'error', reason: `${what}: ${reason}`, failure: 'interrupted' }, !dryRun && { written: false });
  }
  const seen = new Set(report.items.filter((i) => i.kind === 'tenant').map((i) => i.id));
  for (const id of ids) if (!seen.has(id)) report.items.push({ kind: 'tenant', id, action: 'error', reason: `not read: ${reason}`, failure: 'interrupted', ...(!dryRun && { written: false }), warnings: [] });
  report.counts = countActions(report.items);
  return new UsageError(err.message, { reason: 'closed', cause: err.cause, partial: report });
}

/**
 * The migration lock, or InterruptedError at the first signal while another run holds it (Ctrl-C waited out
 * the registry timeout, then exit 3 "in use"; a probe). Nothing was read or written yet. A lock the abandoned
 * wait gets later is given back at once (the session is shared: a library's next migration would find it held).
 */
async function lockUnlessStopped(registry: Registry, signal: AbortSignal | undefined): Promise<() => Promise<void>> {
  const locking = registry.lockMigrations();
  // Stopped already: the lock is taken as usual (at once, unless held) and the run stops before its first
  // batch with its report of every item.
  if (signal?.aborted) return locking;
  try {
    return await untilAborted(locking, signal, 'waiting for the migration lock');
  } catch (err) {
    if (err instanceof InterruptedError) {
      locking.then(
        (release) => release(),
        () => undefined,
      );
    }
    throw err;
  }
}

function stoppedBeforeWriting(err: InterruptedError): InterruptedError {
  const plan = err.partial as MigrationReport | undefined;
  const why = `${stoppedBy(err.signal)} first`;
  const items = (plan?.items ?? []).map((i): MigrationItem => {
    if (i.action === 'create' || i.action === 'update') return { ...i, action: 'error', reason: `not written: ${why}`, failure: 'interrupted', written: false };
    // Stopped items of the plan ("not planned: ...", "not read: ..."): not written either.
    if (i.failure === 'interrupted') return { ...i, reason: i.reason?.replace(/^not planned: /, 'not written: '), written: false };
    return i;
  });
  const report = plan && { ...plan, dryRun: false, items, counts: countActions(items) };
  return new InterruptedError(err.signal, `${stoppedBy(err.signal)}: migrate-yaml stopped after 0 done`, { done: 0 }, report);
}

/** The invalidations the writes of these items owe (as the registry records them in its outbox). */
function owedFor(items: MigrationItem[]) {
  const of = (kind: MigrationItem['kind']) => items.filter((i) => i.kind === kind).map((i) => i.id);
  return invalidationsFor({ tenants: of('tenant'), subscriptions: of('subscription'), catalogue: of('catalogue').length > 0 });
}

const markBad = (item: MigrationItem, reason: string): MigrationItem => Object.assign(item, { action: 'error' as const, reason, failure: 'bad-input' as const });

/** While a batch is being written, files are read in runs of this many between yields to its I/O (~1-2 ms each). */
const YIELD_EVERY = 16;


/**
 * The plan for one record from three hashes: what the YAML wants, what the
 * registry holds now (undefined = nothing), and what tenantctl last wrote.
 */
export function decideByHash(desired: string, current: string | undefined, stored: string | null, force: boolean, what = 'row'): { action: MigrationAction; reason?: string; forceable?: true } {
  if (current === undefined) return { action: 'create' };
  if (current === desired) return stored === current ? { action: 'unchanged' } : { action: 'update', reason: 'adopting existing content (same as YAML)' };
  if (stored === current) return { action: 'update' };
  const why = stored ? 'edited in the registry since the last migration' : `registry ${what} was not written by tenantctl`;
  return force ? { action: 'update', reason: `forced: ${why}` } : { action: 'conflict', reason: why, forceable: true };
}

/** The plan for a tenant row (the content hash of what YAML wants) given the version of its current registry row. */
export function decide(desired: string, current: TenantVersionInfo | undefined, force: boolean): { action: MigrationAction; reason?: string } {
  if (current && current.config_source !== 'database') return { action: 'update', reason: 'registry row was not migrated yet' };
  return decideByHash(desired, current?.content_hash, current?.tenantctl_hash ?? null, force);
}

function decideSubscription(desired: string, current: StoredSubscription | undefined, force: boolean) {
  return decideByHash(desired, current && subscriptionHash(current), current?.tenantctl_hash ?? null, force, 'subscription');
}

function countActions(items: MigrationItem[]): Record<MigrationAction, number> {
  const counts: Record<MigrationAction, number> = { create: 0, update: 0, unchanged: 0, conflict: 0, skip: 0, error: 0 };
  for (const i of items) counts[i.action]++;
  return counts;
}

/**
 * What went wrong in a migration, as the error that sets the exit code
 * (DESIGN.md table): none when all is good; a UsageError (2) when there was
 * only bad input and nothing was done; else a PartialFailureError (4).
 */
export function migrationFailure(report: MigrationReport): TenantctlError | undefined {
  const failed = report.items.filter((i) => i.action === 'error' || i.action === 'conflict' || i.cacheInvalidated === false);
  // Invalidations still owed because Redis failed (an earlier run's, say): the cache is stale, the job is not done.
  const owed = report.cacheError !== undefined && (report.pendingInvalidations ?? 0) > 0;
  if (failed.length === 0 && !owed) return undefined;
  const c = report.counts;
  // The registry failed (unreachable, locked past the timeout) before anything was written: nothing changed, exit 3.
  const lost = report.dryRun || report.items.some((i) => i.written) ? undefined : failed.find((i) => i.failure === 'backend');
  if (lost) {
    // A batch cut off mid-transaction may have committed (its acknowledgement lost): not "nothing was written".
    const unsure = failed.find((i) => i.unconfirmed);
    return new BackendUnavailableError('registry', unsure ? `no write was confirmed: ${unsure.reason!.replace(/^not confirmed written: /, '')}; a rerun finishes` : `nothing was written: ${lost.reason ?? 'the registry failed'}`);
  }
  const stale = owed || report.items.some((i) => i.cacheInvalidated === false);
  // What went wrong, and only that ("0 item(s) failed, 0 conflict(s), cache not invalidated" said one thing in three parts).
  const summary = [c.error && `${c.error} item(s) failed`, c.conflict && `${c.conflict} conflict(s)`, stale && 'cache not invalidated'].filter(Boolean).join(', ');
  const onlyBadInput = !owed && failed.every((i) => i.action === 'error' && i.failure === 'bad-input');
  // An unchanged catalogue (tiers.yaml, read on every run) is not work the operator asked for: `migrate-yaml
  // nosuch` is bad input alone (exit 2), not a partial run (exit 4); nor is a skipped yaml_only tenant (it was).
  const anyDone = report.items.some(
    (i) => i.written || (i.action === 'unchanged' && i.kind !== 'catalogue') || (report.dryRun && (i.action === 'create' || i.action === 'update')),
  );
  return onlyBadInput && !anyDone ? new UsageError(summary) : new PartialFailureError(summary);
}

/** The exit code a migration report maps to (0, 2, 3 or 4). */
export const migrationExitCode = (report: MigrationReport): number => migrationFailure(report)?.exitCode ?? 0;
