import { BackendUnavailableError, UsageError } from '../errors.js';
import { parseId } from '../keys/ids.js';
import { PERMISSIONS_FAMILY, type KeySpace } from '../keys/key-families.js';
import type { Cache } from '../cache/cache.js';
import { unlinkIfUnchangedOn } from '../cache/cache-store.js';
import { canonicalJson } from '../json/canonical-json.js';
import { noTenantsTable, type Registry } from '../registry/registry-store.js';
import { hasCatalogue, tierOf, type Catalogue, type PermissionRecord, type Subscription } from '../permissions/model.js';
import { cacheTtlFor, computePermissions, expireCachedRecord, isPermissionRecord, type PermissionBasis } from '../permissions/rules.js';
import { FEATURE_NAME } from '../permissions/tiers-file.js';
import { NotServicesJson } from '../json/services-json.js';
import { FreshFlights } from './fresh-flights.js';

export type PermissionSource = 'cache' | 'registry';

export interface PermissionLookup {
  business: string;
  record: PermissionRecord;
  source: PermissionSource;
  /** Present when computed from the registry in this call (or looked up for --explain). */
  basis?: PermissionBasis;
  catalogue?: Catalogue;
  subscription?: Subscription;
}

export interface PermissionCheck {
  business: string;
  feature: string;
  granted: boolean;
  source: PermissionSource;
  record: PermissionRecord;
  /** One sentence: why. */
  reason: string;
  /** The override of this feature that decided the answer, if any. */
  override?: { feature: string; value: boolean };
  /** An override of this feature that is set but did not decide (a live demo ignores overrides; one equal to the tier's own). */
  unusedOverride?: { feature: string; value: boolean; why: string };
  /** false when the feature is not in the catalogue; undefined when that could not be told. */
  knownFeature?: boolean;
  /**
   * --explain of a cache hit whose record is not what the registry gives now (an invalidation owed, a
   * write under way): what the registry would answer. The answer given is the cache's, as the services'.
   */
  registryDiffers?: { granted: boolean; record: PermissionRecord };
  /** --explain of a cache hit with the registry unreachable: the details only the registry knows are missing. */
  registryUnavailable?: boolean;
}

/** Parses a feature argument: `has_` plus a plain name; anything else is a usage error. */
export function parseFeature(feature: string): string {
  // Plain JavaScript may hand in anything (undefined was a TypeError from .slice).
  if (typeof feature !== 'string' || !FEATURE_NAME.test(feature)) throw new UsageError(`invalid feature ${JSON.stringify(String(feature).slice(0, 80))}: features look like has_payroll`);
  return feature;
}

/**
 * Feature permissions of a business: the cached record at
 * `permissions:<business>` -> the registry -> computed by the rules ->
 * cached. The demo expiry is checked on every read, cached or not.
 * Concurrent misses for one business share one registry read (single flight, never older than the call).
 */
export class PermissionService {
  /** Loads under way, by business: shared with calls that began before the load did (FreshFlights). */
  private readonly flights = new FreshFlights<PermissionLookup>();
  private readonly now: () => Date;

  constructor(
    private readonly deps: {
      cache: Cache;
      registry: () => Promise<Registry>;
      keys: KeySpace;
      ttl: number;
      /** The clock (injectable for tests). @default () => new Date() */
      now?: () => Date;
      /** Says why a computed record was not cached (once per process). */
      warn?: (message: string) => void;
    },
  ) {
    this.now = deps.now ?? (() => new Date());
  }

  key(business: string): string {
    return this.deps.keys.key(PERMISSIONS_FAMILY, business);
  }

  /** The whole permission record of a business. Throws BackendUnavailableError when neither cache nor registry can answer. */
  async get(business: string): Promise<PermissionLookup> {
    parseId(business, 'business');
    const call = this.flights.begin();
    const key = this.key(business);
    const hit = await this.deps.cache.readJsonText(key);
    const cached = hit?.value;
    if (isPermissionRecord(cached)) {
      // A record the services cached for an inactive business with features (their known bug: a suspended
      // live demo) is answered by the tool's rule, nothing granted; the entry is theirs and stays.
      if (cached.status !== 'active' && (cached.granted_features.length || cached.device_limit)) {
        return { business, record: { ...cached, granted_features: [], device_limit: 0 }, source: 'cache' };
      }
      const expired = expireCachedRecord(cached, this.now());
      if (!expired) return { business, record: cached, source: 'cache' };
      // The demo ran out while cached: never serve it. The entry goes, so the services rebuild it from the
      // registry, but only while it still holds what was read: rewritten as expired, a record a writer had
      // just invalidated (the demo extended) came back as "expired, nothing granted" for the whole TTL.
      await this.deps.cache.orElse((s) => unlinkIfUnchangedOn(s, [{ key, value: hit!.text }]), [0]);
      return { business, record: expired, source: 'cache' };
    }
    // JSON, but no permission record (a list, a record without its fields): a miss, said as a config entry's is
    // (it was read as a miss and written over without a word).
    if (hit) this.deps.cache.malformed(key, `JSON that is not a permission record (${describeShape(cached)})`);
    // Each caller its own copy (as tenants.get gives): concurrent callers share one load, not one object.
    return structuredClone(await this.flights.join(business, call, () => this.loadAndCache(business)));
  }

  /** Is `feature` granted to `business`? */
  async check(business: string, feature: string): Promise<PermissionCheck> {
    parseFeature(feature);
    const lookup = await this.get(business);
    return this.decide(lookup, feature);
  }

  /** Like check, with the registry consulted for the details (override, catalogue) even after a cache hit. */
  async explain(business: string, feature: string): Promise<PermissionCheck> {
    parseFeature(feature);
    const lookup = await this.get(business);
    let differs: PermissionCheck['registryDiffers'];
    let unavailable = false;
    if (!lookup.basis) {
      try {
        const fromRegistry = await this.compute(business);
        lookup.basis = fromRegistry.basis;
        lookup.catalogue = fromRegistry.catalogue;
        lookup.subscription = fromRegistry.subscription;
        // The details below come from the registry: said when its record is not the one answered.
        if (!sameRecord(fromRegistry.record, lookup.record)) {
          differs = { granted: fromRegistry.record.granted_features.includes(feature), record: fromRegistry.record };
        }
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        unavailable = true;
      }
    }
    return { ...this.decide(lookup, feature), ...(differs && { registryDiffers: differs }), ...(unavailable && { registryUnavailable: true }) };
  }

  /** Deletes `permissions:<business>` only. Returns how many keys were removed (0 or 1). */
  async invalidate(business: string): Promise<number> {
    const key = this.key(business);
    return (await this.deps.cache.need((s) => s.unlink([key])))[0];
  }

  /**
   * The registry's answer, cached. The catalogue and the subscription are several statements, so a write
   * committing between them gives a mix that never existed; and a write that commits and invalidates
   * between this read and the SET would find its old record back for the whole TTL. So the registry is
   * read again after the SET: the same inputs, and the record stays (a write after that re-read
   * invalidates after this SET); others, and it is taken back and the answer is read until two reads agree.
   */
  private async loadAndCache(business: string): Promise<PermissionLookup> {
    const first = await this.compute(business);
    // A registry with no feature catalogue (no permission tables: the services keep theirs elsewhere, or
    // none was migrated) yields "nothing granted" for everyone. The services take a cache hit as it is:
    // such a record in permissions:<business> would deny every feature for the TTL. Answered, never cached.
    if (!first.catalogue || !hasCatalogue(first.catalogue)) {
      this.warnUncached();
      return this.settled(business, first);
    }
    const ttl = cacheTtlFor(first.record, this.deps.ttl, this.now());
    // A live demo with under a second left: answered, not cached (it would outlive its expiry).
    if (ttl <= 0) return this.settled(business, first);
    let second: PermissionLookup | undefined;
    let kept: boolean;
    try {
      kept = await this.deps.cache.writeJsonIfCurrent(this.key(business), first.record, ttl, async () => {
        second = await this.compute(business);
        return sameInputs(first, second);
      });
    } catch (err) {
      // A record the services would write as other text (a device limit past 2^53): answered, not cached.
      if (!(err instanceof NotServicesJson)) throw err;
      return this.settled(business, first);
    }
    if (kept) return first;
    // Redis down (nothing written, nothing read again), or a write under way: an answer from one version.
    return this.settled(business, second ?? first);
  }

  /** Reads again until two reads in a row agree (at most three more): never an answer mixed from two versions. */
  private async settled(business: string, last: PermissionLookup): Promise<PermissionLookup> {
    for (let i = 0; i < 3; i++) {
      const again = await this.compute(business);
      if (sameInputs(last, again)) return last;
      last = again;
    }
    return last;
  }

  private warnedUncached = false;

  private warnUncached(): void {
    if (this.warnedUncached) return;
    this.warnedUncached = true;
    this.deps.warn?.('warning: the registry has no feature catalogue (no permission tables, or no tiers.yaml migrated): the answer is computed without one and not cached');
  }

  private async compute(business: string): Promise<PermissionLookup> {
    for (let attempt = 1; ; attempt++) {
      const registry = await this.deps.registry();
      try {
        return await this.computeOn(registry, business);
      } catch (err) {
        // A session the server ended (killed, restarted) under the checks queued on it: computed once more on a
        // new one, as tenants.get reads again (every check queued failed "not queryable": a probe). Not after a
        // read nobody answered: a new session would wait out its connect timeout too. (The store learns of the
        // lost connection from its client's events: one turn of the event loop first.)
        if (!(err instanceof BackendUnavailableError) || attempt > 1 || err.reason === 'timeout') throw err;
        await new Promise((resolve) => setImmediate(resolve));
        if (!(registry as { lost?: boolean }).lost) throw err;
      }
    }
  }

  private async computeOn(registry: Registry, business: string): Promise<PermissionLookup> {
    // A database without the tenants table is no registry (the wrong DATABASE_URL), as get-config says: its
    // permissions are not "nothing granted" (a confident "denied", exit 1, for every business), they are unknown.
    const none = await noTenantsTable(registry);
    if (none) throw new BackendUnavailableError('registry', `${none}: nothing to compute permissions from (is it the services' database? a command that writes, such as migrate-yaml, creates the tables)`, { reason: 'no-tables' });
    const [catalogue, subscription] = await Promise.all([registry.getCatalogue(), registry.getSubscription(business)]);
    const { record, basis } = computePermissions(subscription, catalogue, this.now());
    return { business, record, source: 'registry', basis, catalogue, subscription };
  }

  private decide(lookup: PermissionLookup, feature: string): PermissionCheck {
    const { record, basis, catalogue } = lookup;
    const granted = record.granted_features.includes(feature);
    const knownFeature = catalogue ? catalogue.features.includes(feature) : granted ? true : undefined;
    const applied = basis?.appliedOverrides[feature];
    const override = applied === undefined ? undefined : { feature, value: applied };
    // Set on the subscription but not what decided: said by --explain (a deny on a live demo looked like none).
    const set = lookup.subscription?.overrides[feature];
    const unusedOverride =
      typeof set === 'boolean' && applied === undefined
        ? { feature, value: set, why: basis?.rule === 'demo-live' ? 'a live demo grants every catalogue feature' : basis?.rule === 'tier' ? `the tier already ${set ? 'grants' : 'does not grant'} it` : 'nothing is granted' }
        : undefined;
    // The reason is read off the record alone, so the same answer has the same
    // words from the cache and from the registry; --explain adds the details
    // only the registry knows (the override that decided, the catalogue).
    const rule = inferRule(record, this.now());
    let reason: string;
    if (rule === 'no-subscription') reason = `business ${lookup.business} has no subscription`;
    else if (rule === 'inactive-status') reason = `status is ${record.status}: nothing is granted`;
    else if (rule === 'demo-expired') reason = `the demo expired at ${record.demo_expires_at}: nothing is granted`;
    // A live demo's record grants every catalogue feature of when it was made. Without the catalogue (a cache hit)
    // a denial says what the record shows (it said "every catalogue feature is granted"); with it, whether the
    // catalogue lacks the feature, or has it (or no longer has a granted one) and the record predates that.
    else if (rule === 'demo-live') reason = demoReason(record.demo_expires_at, feature, granted, knownFeature);
    // Where the registry's catalogue is at hand, a feature or tier it does not have is named as such.
    else if (knownFeature === false && !granted) reason = `${feature} is not in the feature catalogue: no tier grants it`;
    else if (catalogue && !tierOf(catalogue, record.tier)) reason = `tier ${record.tier} is not in the catalogue (removed from tiers.yaml?): it grants nothing and 0 devices by itself (only its overrides can add either); with its overrides it ${granted ? 'grants' : 'does not grant'} ${feature}`;
    else reason = `tier ${record.tier}, with its overrides, ${granted ? 'grants' : 'does not grant'} ${feature}${granted && knownFeature === false ? `, which the catalogue no longer has (${RECORD_BEFORE} it was removed)` : ''}`;
    return { business: lookup.business, feature, granted, source: lookup.source, record, reason, override, ...(unusedOverride && { unusedOverride }), knownFeature };
  }
}

/** Why a record may disagree with the catalogue read beside it (a cached one, read with --explain). */
const RECORD_BEFORE = 'the record was made before';

/** A live demo's reason: see decide(). */
function demoReason(until: string | null, feature: string, granted: boolean, knownFeature: boolean | undefined): string {
  if (granted) return knownFeature === false ? `live demo until ${until}: this record grants ${feature}, which the catalogue no longer has (${RECORD_BEFORE} it was removed)` : `live demo until ${until}: every catalogue feature is granted`;
  if (knownFeature === true) return `live demo until ${until}: this record does not grant ${feature}, which the catalogue has (${RECORD_BEFORE} it was added)`;
  if (knownFeature === false) return `${feature} is not in the feature catalogue (a live demo grants every catalogue feature)`;
  return `live demo until ${until}: ${feature} is not among the catalogue features this record grants`;
}

/** Whether two permission records say the same (features as a set, the expiry as an instant: the services write `…:00Z`). */
function sameRecord(a: PermissionRecord, b: PermissionRecord): boolean {
  const instant = (v: string | null) => (v === null ? null : Date.parse(v));
  return a.tier === b.tier && a.status === b.status && a.device_limit === b.device_limit && instant(a.demo_expires_at) === instant(b.demo_expires_at) &&
    a.granted_features.length === b.granted_features.length && a.granted_features.every((f) => b.granted_features.includes(f));
}

/** Whether two registry reads saw the same catalogue and subscription (by content). */
function sameInputs(a: PermissionLookup, b: PermissionLookup): boolean {
  return canonicalJson([a.catalogue ?? null, a.subscription ?? null]) === canonicalJson([b.catalogue ?? null, b.subscription ?? null]);
}

/** The rule a cached record reflects, when the registry could not be asked. */
function inferRule(record: PermissionRecord, now: Date): PermissionBasis['rule'] {
  if (record.tier === 'none' && record.status === 'inactive') return 'no-subscription';
  if (record.status !== 'active') return 'inactive-status';
  if (record.tier === 'demo' && record.demo_expires_at) return Date.parse(record.demo_expires_at) <= now.getTime() ? 'demo-expired' : 'demo-live';
  return 'tier';
}

/** What a cached JSON value is, in a word, for a warning: null, a list, a number, or an object without the record's fields. */
function describeShape(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object without the fields of one';
  return typeof v;
}
