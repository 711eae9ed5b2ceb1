import { BackendUnavailableError, NotFoundError, PartialFailureError, UsageError, describeError } from '../errors.js';
import { parseId } from '../keys/ids.js';
import { outcomeUnknown, type Registry } from '../registry/registry-store.js';
import { canonicalInstant, DEMO_TIER, DEVICE_LIMIT_OVERRIDE, isStatus, STATUSES, tierOf, type Catalogue, type Subscription } from '../permissions/model.js';
import { demoExpired } from '../permissions/rules.js';
import type { PermissionService } from './permission-service.js';
import { parseFeature } from './permission-service.js';
import type { InvalidationOutbox } from './invalidation-outbox.js';
import { subscriptionVersion } from '../registry/content-hash.js';
import type { StoredSubscription } from '../registry/registry-store.js';

export interface SubscriptionChange {
  tier?: string;
  status?: string;
  /** ISO 8601, or null to clear. */
  demoExpires?: string | null;
  /** The `max_devices` override, or null to clear it. */
  deviceLimit?: number | null;
}

export interface ChangeResult {
  business: string;
  subscription: Subscription;
  /** `permissions:<business>` was deleted (true), Redis is not configured, or it could not be (false: the cache may be stale up to its TTL). */
  cacheInvalidated: boolean | 'not-configured';
  /** Why it could not be (cacheInvalidated false); the invalidation stays owed in the registry for the next write. */
  cacheError?: string;
}

/** What a registry that does not exist yet holds. */
const NO_CATALOGUE: Catalogue = { features: [], tiers: {} };

const needsTier = (business: string) => new UsageError(`business ${business} has no subscription yet: a tier is needed to create one`, { reason: 'needs-tier' });

function checkTier(catalogue: Catalogue, tier: string): void {
  if (!tierOf(catalogue, tier)) {
    throw new UsageError(`unknown tier "${tier}": the registry has ${Object.keys(catalogue.tiers).join(', ') || 'no tiers (migrate tenants/tiers.yaml first)'}`, { reason: 'unknown-tier' });
  }
}

function checkFeature(catalogue: Catalogue, feature: string): void {
  if (!catalogue.features.includes(feature)) {
    throw new UsageError(`unknown feature "${feature}": the catalogue has ${catalogue.features.join(', ') || 'no features (migrate tenants/tiers.yaml first)'}`);
  }
}

/**
 * The changes that must invalidate a business's cached permissions: each
 * validates everything first (nothing is written on bad input), writes the
 * registry, then deletes `permissions:<business>` only.
 */
export class SubscriptionService {
  constructor(
    private readonly deps: {
      /** The registry for writing (created if embedded, schema made current). */
      registry: () => Promise<Registry>;
      /** The registry for reading, never created: a change checked against a registry that does not exist yet creates nothing. */
      readRegistry?: () => Promise<Registry>;
      permissions: PermissionService;
      outbox: InvalidationOutbox;
      now?: () => Date;
      warn?: (message: string) => void;
    },
  ) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /**
   * The registry as it stands, for the checks made before a writer creates it (embedded) or makes its schema
   * current (so bad input changes nothing, not even that): null when there is none yet, undefined when this
   * service was given no reader.
   */
  private async asItStands(): Promise<Registry | null | undefined> {
    // Every caller is a write that invalidates afterwards.
    this.deps.outbox.prepare();
    if (!this.deps.readRegistry) return undefined;
    try {
      return await this.deps.readRegistry();
    } catch (err) {
      if (err instanceof BackendUnavailableError && err.reason === 'not-configured') {
        this.absence = describeError(err);
        return null;
      }
      throw err;
    }
  }

  /** Why the registry as it stands is none ("no embedded registry at ..."), once asItStands found none. */
  private absence: string | undefined;

  /**
   * The checks made on a registry that does not exist: their refusal names where it was looked for (run from
   * the wrong directory, "has no subscription yet" or "no tiers" sent an operator looking in the wrong place).
   */
  private async onNone<T>(standing: Registry | null | undefined, check: () => T | Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (err) {
      if (standing !== null || !this.absence || !(err instanceof UsageError || err instanceof NotFoundError)) throw err;
      // Where it looked first (the cause), then what could not be done there, without "(migrate tenants/tiers.yaml
      // first)": it sent an operator in the wrong directory to migrate there.
      // The advice (where to run, which flag) is the CLI's, by the reason: the library's caller has no flags.
      const said = `${this.absence}: ${err.message.replace(/ \(migrate tenants\/tiers\.yaml first\)/, '')}`;
      // No cause: its message would come back whole, "(migrate tenants/tiers.yaml first)" and all (describeError).
      const why = { reason: 'registry-elsewhere' };
      throw err instanceof UsageError ? new UsageError(said, why) : new NotFoundError(said, why);
    }
  }

  async setSubscription(business: string, change: SubscriptionChange): Promise<ChangeResult> {
    parseId(business, 'business');
    if (!change || typeof change !== 'object' || Array.isArray(change)) throw new UsageError('the change must be an object ({ tier, status, demoExpires, deviceLimit })');
    if (change.status !== undefined && !isStatus(change.status)) throw new UsageError(`unknown status "${change.status}": use one of ${STATUSES.join(', ')}`);
    let demo: string | null | undefined;
    if (change.demoExpires !== undefined) {
      demo = change.demoExpires === null ? null : canonicalInstant(change.demoExpires);
      if (demo === undefined) throw new UsageError(`demo expiry "${String(change.demoExpires).slice(0, 60)}" is not an ISO 8601 date (e.g. 2030-01-31T00:00:00Z)`, { reason: 'bad-demo-expiry' });
    }
    if (change.deviceLimit !== undefined && change.deviceLimit !== null && (!Number.isSafeInteger(change.deviceLimit) || change.deviceLimit < 0)) {
      throw new UsageError('the device limit must be a whole number >= 0', { reason: 'bad-device-limit' });
    }
    // First on the registry as it stands (a database without tenantctl's tables has no tiers), then as written to.
    const standing = await this.asItStands();
    await this.onNone(standing, async () => {
      if (standing === null && change.tier === undefined) throw needsTier(business);
      if (standing !== undefined && change.tier !== undefined) checkTier(standing ? await standing.getCatalogue() : NO_CATALOGUE, change.tier);
      // A registry without this business's subscription (a database without the tables, the wrong one): refused
      // before the writer makes its schema (it created every table there, then said "give --tier", exit 2).
      if (standing && change.tier === undefined && !(await standing.getSubscription(business))) throw needsTier(business);
    });
    const registry = await this.deps.registry();
    if (change.tier !== undefined) checkTier(await registry.getCatalogue(), change.tier);
    const current = await registry.getSubscription(business);
    if (!current && change.tier === undefined) throw needsTier(business);
    const overrides = { ...(current?.overrides ?? {}) };
    if (change.deviceLimit === null) delete overrides[DEVICE_LIMIT_OVERRIDE];
    else if (change.deviceLimit !== undefined) overrides[DEVICE_LIMIT_OVERRIDE] = change.deviceLimit;
    const next: Subscription = {
      business_id: business,
      tier: change.tier ?? current!.tier,
      status: (change.status ?? current?.status ?? 'active') as Subscription['status'],
      demo_expires_at: demo !== undefined ? demo : current?.demo_expires_at ?? null,
      overrides,
    };
    const result = await this.write(registry, next, current);
    // Said for what this change touched: the expiry given, or the tier it moved to demo (onto an expiry kept).
    if (demo || change.tier !== undefined) this.sayWhatTheExpiryDoes(business, next, !!demo);
    return result;
  }

  /**
   * A demo expiry is written as asked, and said when it does not do what it looks like: one in the past cuts
   * a demo off at once (a year's typo took a business's every feature without a word; so did a move to the
   * demo tier onto an old expiry kept from before), and one given on any other tier changes nothing the
   * services grant (rule 3 of computePermissions reads it on the demo tier only).
   */
  private sayWhatTheExpiryDoes(business: string, next: Subscription, given: boolean): void {
    const expiry = next.demo_expires_at;
    if (!expiry) return;
    if (next.tier !== DEMO_TIER) {
      if (given) this.deps.warn?.(`warning: a demo expiry counts on tier ${DEMO_TIER} only: ${business} on ${next.tier} is granted its tier's features whatever the date`);
    } else if (demoExpired(expiry, this.now())) {
      // In whole seconds, as the table shows it.
      this.deps.warn?.(`warning: the demo expiry ${expiry.replace(/\.000Z$/, 'Z')} is in the past: ${business}'s demo grants nothing from now on`);
    }
  }

  async override(business: string, feature: string, action: 'grant' | 'deny' | 'clear'): Promise<ChangeResult> {
    parseId(business, 'business');
    parseFeature(feature);
    // A program in plain JavaScript may pass anything: 'maybe' was written as a deny.
    if (action !== 'grant' && action !== 'deny' && action !== 'clear') {
      throw new UsageError(`override action ${JSON.stringify(String(action)).slice(0, 40)} is none of grant, deny, clear`, { reason: 'bad-override' });
    }
    // First on the registry as it stands, then as written to.
    const standing = await this.asItStands();
    // Clearing an override the subscription holds needs no catalogue check: its feature may have been dropped
    // from tiers.yaml since, and the override would still grant it, with no way to clear it but SQL.
    const held = async (r: Registry | null | undefined) => action === 'clear' && !!r && Object.hasOwn((await r.getSubscription(business))?.overrides ?? {}, feature);
    const clearsHeld = await held(standing);
    if (standing !== undefined && !clearsHeld) await this.onNone(standing, async () => checkFeature(standing ? await standing.getCatalogue() : NO_CATALOGUE, feature));
    // No subscription where it stands: refused before the writer makes its schema (see setSubscription).
    if (standing && !(await standing.getSubscription(business))) throw new NotFoundError(`business ${business} has no subscription (create one with a tier first)`);
    const registry = await this.deps.registry();
    if (!clearsHeld && !(await held(registry))) checkFeature(await registry.getCatalogue(), feature);
    const current = await registry.getSubscription(business);
    if (!current) throw new NotFoundError(`business ${business} has no subscription (create one with a tier first)`);
    const overrides = { ...current.overrides };
    if (action === 'clear') delete overrides[feature];
    else overrides[feature] = action === 'grant';
    const { tenantctl_hash: _h, ...sub } = current;
    return this.write(registry, { ...sub, overrides }, current);
  }

  /** Status back to `active`; an expired demo expiry is cleared. */
  async reactivate(business: string): Promise<ChangeResult> {
    parseId(business, 'business');
    const standing = await this.asItStands();
    await this.onNone(standing, async () => {
      if (standing === null || (standing && !(await standing.getSubscription(business)))) throw new NotFoundError(`business ${business} has no subscription`);
    });
    const registry = await this.deps.registry();
    const current = await registry.getSubscription(business);
    if (!current) throw new NotFoundError(`business ${business} has no subscription`);
    const next: Subscription = {
      business_id: business,
      tier: current.tier,
      status: 'active',
      demo_expires_at: current.demo_expires_at && demoExpired(current.demo_expires_at, this.now()) ? null : current.demo_expires_at,
      overrides: current.overrides,
    };
    return this.write(registry, next, current);
  }

  /**
   * Writes the subscription if it is still as read (compare-and-set), with its
   * `permissions:<business>` invalidation recorded in the same transaction,
   * then does that invalidation. The stored migration hash is kept: the row now
   * differs from it, so a later migrate-yaml reports a conflict instead of
   * silently reverting this change.
   */
  private async write(registry: Registry, next: Subscription, current: StoredSubscription | undefined): Promise<ChangeResult> {
    let outcome;
    try {
      outcome = await registry.applyChanges({ subscriptions: [{ sub: next, hash: current?.tenantctl_hash ?? null, expect: subscriptionVersion(current) }] });
    } catch (err) {
      if (!(err instanceof BackendUnavailableError) || err.backend !== 'registry' || !outcomeUnknown(err)) throw err;
      // Cut off mid-transaction, the change may have landed (a lost COMMIT acknowledgement): its cached
      // permissions go anyway (a cache miss at worst), and the error says the outcome is unknown.
      const invalidated = await this.deps.outbox.invalidateUnconfirmed([{ kind: 'permissions', target: next.business_id }]);
      throw new BackendUnavailableError('registry', `${describeError(err)}; the change may or may not have been written${invalidated ? ` (permissions:${next.business_id} invalidated in case)` : ''}: check with get-permissions, or run it again`, { cause: err, reason: err.reason });
    }
    if (outcome.conflicts.subscriptions.length) {
      throw new PartialFailureError(`the subscription of ${next.business_id} changed in the registry while this command ran; nothing written, run it again`);
    }
    const drained = await this.deps.outbox.drain(registry, { afterWrite: true });
    return {
      business: next.business_id,
      subscription: next,
      cacheInvalidated: drained.status === 'not-configured' ? 'not-configured' : drained.status === 'done',
      ...(drained.status === 'failed' && { cacheError: describeError(drained.error) }),
    };
  }
}
