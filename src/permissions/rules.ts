import {
  canonicalInstant, DEMO_TIER, DEVICE_LIMIT_OVERRIDE, NO_SUBSCRIPTION, servicesInstant, tierOf, UNLIMITED_DEVICES,
  type Catalogue, type PermissionRecord, type Subscription,
} from './model.js';

/** Why a business has the permissions it has, for `--explain`. */
export interface PermissionBasis {
  rule: 'no-subscription' | 'inactive-status' | 'demo-live' | 'demo-expired' | 'tier';
  /** Overrides that changed the tier's answer, feature -> value. */
  appliedOverrides: Record<string, boolean>;
  deviceLimitFrom: 'override' | 'tier' | 'unlimited' | 'none';
}

/** True when a demo expiry is set and not in the future. */
export function demoExpired(demoExpiresAt: string | null, now: Date): boolean {
  return demoExpiresAt !== null && Date.parse(demoExpiresAt) <= now.getTime();
}

/**
 * The permission record of a business, computed as the services compute it
 * (they read this record from the cache, so tenantctl must agree with them):
 *
 * 1. no subscription: nothing (`tier: none`, `status: inactive`, 0 devices);
 * 2. any status but `active`: nothing, whatever the overrides or the demo say
 *    (the one deliberate difference: the services grant a suspended business
 *    on a live demo everything; that is a bug and tenantctl grants nothing);
 * 3. tier `demo` with `demo_expires_at` in the future: the whole catalogue;
 *    an expired demo: nothing;
 * 4. otherwise the tier's features, then the overrides: `has_x: true` adds x,
 *    `has_x: false` removes it, whatever the tier says;
 * device limit (when anything is granted at all): the `max_devices` override,
 * else the tier's `max_devices`, else unlimited (999999); 0 for a tier the
 * catalogue does not have.
 */
export function computePermissions(
  sub: Subscription | undefined,
  catalogue: Catalogue,
  now: Date,
): { record: PermissionRecord; basis: PermissionBasis } {
  if (!sub) return { record: { ...NO_SUBSCRIPTION, granted_features: [] }, basis: { rule: 'no-subscription', appliedOverrides: {}, deviceLimitFrom: 'none' } };
  const base = { tier: sub.tier, status: sub.status, demo_expires_at: sub.demo_expires_at === null ? null : servicesInstant(sub.demo_expires_at) };
  const nothing = (rule: PermissionBasis['rule']) => ({
    record: { granted_features: [], ...base, device_limit: 0 },
    basis: { rule, appliedOverrides: {}, deviceLimitFrom: 'none' as const },
  });
  if (sub.status !== 'active') return nothing('inactive-status');

  const tier = tierOf(catalogue, sub.tier);
  const overrideLimit = sub.overrides[DEVICE_LIMIT_OVERRIDE];
  // A tier the catalogue does not have (renamed or removed from tiers.yaml) grants no devices, not the
  // unlimited default of a tier's null max_devices; a live demo (granted by name, row or not) keeps that default.
  const liveDemo = sub.tier === DEMO_TIER && sub.demo_expires_at !== null && !demoExpired(sub.demo_expires_at, now);
  const unknownTier = !tier && !liveDemo;
  const deviceLimitFrom: PermissionBasis['deviceLimitFrom'] =
    typeof overrideLimit === 'number' ? 'override' : unknownTier ? 'none' : tier && tier.max_devices !== null ? 'tier' : 'unlimited';
  const device_limit = typeof overrideLimit === 'number' ? overrideLimit : unknownTier ? 0 : tier?.max_devices ?? UNLIMITED_DEVICES;

  if (sub.tier === DEMO_TIER && sub.demo_expires_at !== null) {
    if (demoExpired(sub.demo_expires_at, now)) return nothing('demo-expired');
    return { record: { granted_features: [...catalogue.features].sort(), ...base, device_limit }, basis: { rule: 'demo-live', appliedOverrides: {}, deviceLimitFrom } };
  }

  const granted = new Set(tier?.features ?? []);
  const applied: Record<string, boolean> = {};
  for (const [feature, value] of Object.entries(sub.overrides)) {
    if (typeof value !== 'boolean') continue;
    if (value !== granted.has(feature)) applied[feature] = value;
    if (value) granted.add(feature);
    else granted.delete(feature);
  }
  return { record: { granted_features: [...granted].sort(), ...base, device_limit }, basis: { rule: 'tier', appliedOverrides: applied, deviceLimitFrom } };
}

/**
 * A record read from the cache, checked against the clock: a demo that has
 * expired since it was cached grants nothing (never served stale).
 * Returns undefined when the record is still good as it is.
 */
export function expireCachedRecord(record: PermissionRecord, now: Date): PermissionRecord | undefined {
  if (record.tier === DEMO_TIER && demoExpired(record.demo_expires_at, now) && (record.granted_features.length || record.device_limit)) {
    return { ...record, granted_features: [], device_limit: 0 };
  }
  return undefined;
}

/** Seconds the record may live in the cache: the TTL, but never past a live demo's expiry. */
export function cacheTtlFor(record: PermissionRecord, ttl: number, now: Date): number {
  if (record.tier !== DEMO_TIER || record.demo_expires_at === null || !record.granted_features.length) return ttl;
  // Whole seconds down (a ceiling kept the full grant cached up to a second past the expiry); under one
  // second left: 0, not cached at all.
  const left = Math.floor((Date.parse(record.demo_expires_at) - now.getTime()) / 1000);
  return Math.max(0, Math.min(ttl, left));
}

/** Whether a value is a well-formed cached permission record (anything else is treated as a miss). */
export function isPermissionRecord(v: unknown): v is PermissionRecord {
  if (!v || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  return Array.isArray(r.granted_features) && r.granted_features.every((f) => typeof f === 'string') &&
    typeof r.tier === 'string' && typeof r.status === 'string' && typeof r.device_limit === 'number' &&
    // An expiry that is no date read as never expiring (Date.parse gives NaN): a demo granted everything.
    // An ISO 8601 instant only (Date.parse also takes "1" for the year 2001: a review).
    (r.demo_expires_at === null || (typeof r.demo_expires_at === 'string' && canonicalInstant(r.demo_expires_at) !== undefined));
}
