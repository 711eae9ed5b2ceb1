import { BackendUnavailableError, closedByOwner, describeError, stopCause, stoppedBy, type UsageError } from '../errors.js';
import type { Catalogue, Subscription } from '../permissions/model.js';
import { outcomeUnknown, RefusedAmidChanges, type CatalogueChange, type ChangeItem, type ChangeOutcome, type ContentHashMemo, type Registry, type SubscriptionChange, type TenantChange, type TenantWrite } from '../registry/registry-store.js';
import type { MigrationItem, MigrationOptions } from './migration.js';

/** What an item would write once decided. */
export type Pending =
  /** The row is built (by buildRows) only for an item to write: an unchanged tenant's config is never even read (see ParseCache). */
  | { kind: 'tenant'; id: string; hash: string; build: () => TenantWrite; row?: TenantWrite; expect?: string | null }
  | { kind: 'subscription'; sub: Subscription; hash: string; expect?: string | null }
  | { kind: 'catalogue'; catalogue: Catalogue; hash: string; expect?: string | null };

/**
 * The writing side of a migration: one batch in flight at a time (the
 * registry is one connection), started without waiting so that the next
 * batch's files are read meanwhile. Each batch is one transaction that
 * re-checks every item against the version it was planned on (a change made
 * meanwhile is a conflict, never overwritten). It stops writing on a signal
 * (between batches) or when the registry fails; the items it did not write
 * say why. Without a registry (a dry run) it writes nothing.
 */
export class BatchPipeline {
  /** Set when the registry refused the catalogue: the subscriptions held back (see onCatalogueRefused). */
  private heldBack: ((sub: Subscription) => boolean) | undefined;
  /** Items written so far (the interrupted error's progress). */
  done = 0;
  /** The batch in flight when the registry failed: its outcome is unknown (the COMMIT may have landed). */
  unconfirmed: MigrationItem[] = [];
  private files = 0;
  private current: Promise<void> | undefined;
  private failure: BackendUnavailableError | undefined;
  /** The library's owner closed it while a batch was written (UsageError `closed`): nothing more is written. */
  closedBy: UsageError | undefined;
  /** A write that failed other than by the registry (a bug): the run's error, thrown by settled(). */
  private broken: { error: unknown } | undefined;

  constructor(
    private readonly registry: Registry | undefined,
    private readonly options: MigrationOptions,
    private readonly totalFiles: number,
    /** Learns the fingerprints of the rows written (see Registry.applyChanges). */
    private readonly memo?: ContentHashMemo,
    /**
     * The catalogue was refused by the registry: the registry keeps its own, and the migration holds back, from
     * then on, subscriptions on a tier only the refused one defines; returns which (for this batch's).
     */
    private readonly onCatalogueRefused?: () => (sub: Subscription) => boolean,
  ) {}

  inFlight(): boolean {
    return this.current !== undefined;
  }

  /** Resolves when no batch is in flight (the registry's connection is free); throws what broke a write. */
  async settled(): Promise<void> {
    await this.current;
    if (this.broken) throw this.broken.error;
  }

  /** Why nothing more is written, if so: a signal, or the registry failing. */
  stopReason(): { reason: string; failure: MigrationItem['failure'] } | undefined {
    if (this.failure) return { reason: describeError(this.failure), failure: 'backend' };
    if (this.closedBy) return { reason: 'closed (close() was called) first', failure: 'interrupted' };
    const { signal } = this.options;
    if (signal?.aborted) return { reason: `${stoppedBy(stopCause(signal))} first`, failure: 'interrupted' };
    return undefined;
  }

  fail(err: BackendUnavailableError): void {
    this.failure ??= err;
  }

  /**
   * Marks items as not written, with the stop reason: those the plan would
   * write, or (`planned: false`, a batch read but never planned) all of them.
   */
  notWritten(items: Iterable<MigrationItem>, { planned = true } = {}): void {
    const stop = this.stopReason();
    if (!stop) return;
    // A dry run writes nothing anyway: what it did not get to is not planned.
    const what = this.registry ? 'not written' : 'not planned';
    for (const i of items) {
      if (!planned || i.action === 'create' || i.action === 'update') Object.assign(i, { action: 'error', reason: `${what}: ${stop.reason}`, failure: stop.failure }, this.registry && { written: false });
    }
  }

  /** Starts writing what a planned batch says (its files counted for progress); one batch at a time. */
  write(pending: Map<MigrationItem, Pending>, files: number): void {
    const registry = this.registry;
    if (!registry) return;
    if (this.current) throw new Error('a batch is already in flight');
    if (this.stopReason()) return this.notWritten(pending.keys());
    const batch = [...pending.keys()].filter((i) => i.action === 'create' || i.action === 'update');
    this.files += files;
    if (batch.length === 0) return this.options.progress?.(this.files, this.totalFiles);
    // Never a rejection nobody awaits (the files of the next batch are being read meanwhile): kept for settled().
    this.current = this.apply(registry, batch, pending)
      .catch((error: unknown) => void (this.broken ??= { error }))
      .finally(() => (this.current = undefined));
  }

  private markUnconfirmed(batch: MigrationItem[], err: unknown): void {
    for (const i of batch) Object.assign(i, { reason: `not confirmed written: ${describeError(err)}`, unconfirmed: true });
    this.unconfirmed.push(...batch);
  }

  private async apply(registry: Registry, batch: MigrationItem[], pending: Map<MigrationItem, Pending>): Promise<void> {
    const whole = await this.applyIsolating(registry, groupUnits(batch, pending), pending);
    // Stopped midway through the halving (a signal, the registry failing): what was not written says so.
    if (!whole) return this.notWritten(batch.filter((i) => i.written !== true));
    this.options.progress?.(this.files, this.totalFiles);
  }

  /**
   * Writes the units (a tenant with its subscription; the catalogue alone) of a batch; where the registry
   * refuses a row of it (a services' CHECK constraint, NOT NULL or trigger the tool does not know:
   * `currency: EURO` under char_length = 3), the units are halved until the refused one is alone: its items are
   * the error items, with the registry's words, and the rest are written. Before, the whole batch of 500
   * failed with one message naming no tenant, the run stopped (every later batch not written, exit 3 "nothing
   * was written" where it was the first), and a rerun stopped at the same place (a probe). The catalogue goes
   * first, alone: refused, the subscriptions on a tier only it defines are held back (they would grant
   * nothing), here and in the batches planned after (onCatalogueRefused). False when the run stops.
   */
  private async applyIsolating(registry: Registry, units: MigrationItem[][], pending: Map<MigrationItem, Pending>): Promise<boolean> {
    const items = units.flat();
    try {
      return await this.applyOnce(registry, items, pending);
    } catch (err) {
      // A registry without transactions refused one item after others of the set landed: those are settled
      // (applyOnce), the refused item's unit is the error, and the units not sent yet are written without it.
      if (err instanceof RefusedAmidChanges) return this.afterRefusalAmid(registry, units, pending, err);
      if (!(err instanceof RowRefused)) throw err;
      const catalogue = units.findIndex((u) => u.some((i) => i.kind === 'catalogue'));
      if (catalogue >= 0 && units.length > 1) {
        const rest = units.filter((_, n) => n !== catalogue);
        if (!(await this.applyIsolating(registry, [units[catalogue]], pending))) return false;
        const held = units[catalogue][0].written === true ? undefined : this.heldBack;
        const kept = held ? rest.filter((u) => !u.some((i) => { const p = pending.get(i); return p?.kind === 'subscription' && held(p.sub); })) : rest;
        for (const u of rest) if (!kept.includes(u)) for (const i of u) if (i.kind === 'subscription') Object.assign(i, { action: 'conflict', reason: 'its tier is not in the registry\'s catalogue, and tiers.yaml was refused by the registry: not written, or it would grant nothing', written: false });
        // A unit whose subscription is held back still writes its tenant row.
        const next = rest.map((u) => u.filter((i) => i.action !== 'conflict')).filter((u) => u.length);
        return next.length ? this.applyIsolating(registry, next, pending) : true;
      }
      if (units.length === 1) {
        this.refuse(units[0], err.refusal);
        return true;
      }
      const half = Math.ceil(units.length / 2);
      for (const part of [units.slice(0, half), units.slice(half)]) {
        // A signal between the parts: the rest is not written, as between batches (apply says so).
        if (this.stopReason()) return false;
        if (!(await this.applyIsolating(registry, part, pending))) return false;
      }
      return true;
    }
  }

  /**
   * A unit the registry refused: its items not written are the error items, with the registry's words (one
   * found changed meanwhile stays the conflict it is). `partly`: part of the refused item had landed first (no
   * transaction): it is unconfirmed, and its cache is invalidated as an unconfirmed write's is (which says so).
   */
  private refuse(unit: MigrationItem[], refusal: Error, partly?: ChangeItem): void {
    for (const i of unit) {
      if (i.written === true || i.action === 'conflict') continue;
      const some = partly && i.kind === partly.kind && (i.kind === 'catalogue' || i.id === partly.id);
      Object.assign(i, { action: 'error', reason: `refused by the registry: ${refusal.message}${some ? ' (after part of it was written)' : ''}`, failure: 'refused', written: false });
      if (some) {
        i.unconfirmed = true;
        this.unconfirmed.push(i);
      }
    }
    if (unit.some((i) => i.kind === 'catalogue')) this.heldBack = this.onCatalogueRefused?.();
  }

  /**
   * After a refusal amid a change set (see RefusedAmidChanges): the refused item's unit is the error (a
   * tenant row that landed before its subscription was refused stays written, and says so), a refused
   * catalogue holds back the subscriptions on a tier only it defines that were not sent yet, and the
   * units not sent are written, isolating any further refusal the same way.
   */
  private async afterRefusalAmid(registry: Registry, units: MigrationItem[][], pending: Map<MigrationItem, Pending>, err: RefusedAmidChanges): Promise<boolean> {
    const { kind, id } = err.refused;
    const refused = units.find((u) => u.some((i) => i.kind === kind && (kind === 'catalogue' || i.id === id)));
    if (refused) this.refuse(refused, err.refusal, err.partly ? err.refused : undefined);
    const held = refused?.some((i) => i.kind === 'catalogue') ? this.heldBack : undefined;
    const open = (i: MigrationItem) => i.written === undefined && i.action !== 'conflict' && i.action !== 'error';
    for (const u of units) {
      for (const i of u) {
        const p = pending.get(i);
        if (held && open(i) && p?.kind === 'subscription' && held(p.sub)) Object.assign(i, { action: 'conflict', reason: "its tier is not in the registry's catalogue, and tiers.yaml was refused by the registry: not written, or it would grant nothing", written: false });
      }
    }
    const rest = units.filter((u) => u !== refused).map((u) => u.filter(open)).filter((u) => u.length);
    if (!rest.length) return true;
    if (this.stopReason()) return false;
    return this.applyIsolating(registry, rest, pending);
  }

  /** Marks the items of a batch as the registry's outcome says: written, or changed meanwhile (a conflict); returns how many it settled. */
  private settle(batch: MigrationItem[], outcome: ChangeOutcome, all: boolean): number {
    const keys = (part: ChangeOutcome['written']) =>
      new Set([...part.tenants.map((t) => `tenant:${t}`), ...part.subscriptions.map((t) => `subscription:${t}`), ...(part.catalogue ? ['catalogue:tiers'] : [])]);
    const conflicted = keys(outcome.conflicts);
    const written = keys(outcome.written);
    let settled = 0;
    for (const i of batch) {
      const key = `${i.kind}:${i.id}`;
      if (conflicted.has(key)) Object.assign(i, { action: 'conflict', reason: 'changed in the registry while this run was planning; not overwritten (run again)', written: false });
      else if (all || written.has(key)) i.written = true;
      else continue;
      settled++;
    }
    return settled;
  }

  private async applyOnce(registry: Registry, batch: MigrationItem[], pending: Map<MigrationItem, Pending>): Promise<boolean> {
    const tenants: TenantChange[] = [];
    const subscriptions: SubscriptionChange[] = [];
    let cat: CatalogueChange | undefined;
    for (const i of batch) {
      const p = pending.get(i)!;
      // Built by buildRows for every item that is written.
      if (p.kind === 'tenant') tenants.push({ row: p.row!, expect: p.expect ?? null });
      else if (p.kind === 'subscription') subscriptions.push({ sub: p.sub, hash: p.hash, expect: p.expect ?? null });
      else cat = { catalogue: p.catalogue, hash: p.hash, expect: p.expect ?? null };
    }
    try {
      const outcome = await registry.applyChanges({ tenants, subscriptions, catalogue: cat }, this.memo);
      this.done += this.settle(batch, outcome, true);
    } catch (err) {
      // Part of the set landed, then an item was refused: what landed is settled here, the rest by applyIsolating.
      if (err instanceof RefusedAmidChanges) {
        this.done += this.settle(batch, err.applied, false);
        throw err;
      }
      // Closed under it: a stop like a signal's (the batch not written; a COMMIT with no answer, unconfirmed).
      if (closedByOwner(err)) {
        this.closedBy ??= err as UsageError;
        this.notWritten(batch);
        const cause = (err as UsageError).cause;
        if (outcomeUnknown(cause)) this.markUnconfirmed(batch, cause);
        return false;
      }
      if (!(err instanceof BackendUnavailableError)) throw err;
      // A row refused, with a definite answer (nothing of the transaction applied): found by halving (above).
      if (err.reason === 'rejected' && !outcomeUnknown(err)) throw new RowRefused(err);
      // The registry is gone: every later batch is not written, and so is this one, unless its COMMIT got
      // no answer (the connection lost right then): its rows may be in, so the run invalidates its cache anyway.
      this.fail(err);
      this.notWritten(batch);
      if (outcomeUnknown(err)) this.markUnconfirmed(batch, err);
      return false;
    }
    return true;
  }
}

/** The batch's items in units written or refused together: a tenant with its subscription (nothing of a tenant is written without the rest), the catalogue alone. */
function groupUnits(batch: MigrationItem[], pending: Map<MigrationItem, Pending>): MigrationItem[][] {
  const units = new Map<string, MigrationItem[]>();
  for (const i of batch) {
    const p = pending.get(i);
    const key = p?.kind === 'catalogue' ? 'catalogue:' : `id:${i.id}`;
    const unit = units.get(key);
    if (unit) unit.push(i);
    else units.set(key, [i]);
  }
  return [...units.values()];
}

/** A write the registry refused for a row's content (see applyIsolating). */
class RowRefused extends Error {
  constructor(readonly refusal: BackendUnavailableError) {
    super(refusal.message);
  }
}
