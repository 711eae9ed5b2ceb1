/** Subscription statuses; any but `active` grants nothing. */
export const STATUSES = ['active', 'suspended', 'cancelled', 'expired'] as const;
export type SubscriptionStatus = (typeof STATUSES)[number];

/** How "unlimited devices" is written in the cached record, as the services write it. */
export const UNLIMITED_DEVICES = 999999;
/** The override key for the device limit; every other override key is a `has_*` feature. */
export const DEVICE_LIMIT_OVERRIDE = 'max_devices';
/** The tier whose live demo grants the whole catalogue. */
export const DEMO_TIER = 'demo';

export interface TierDefinition {
  name: string;
  features: string[];
  /** null = unlimited. */
  max_devices: number | null;
}

/** The feature catalogue and the tiers (tenants/tiers.yaml). */
export interface Catalogue {
  features: string[];
  tiers: Record<string, TierDefinition>;
}

/**
 * The catalogue's tier of that name, own properties only: `tiers[name]` would find `toString`,
 * `constructor` or `__proto__` on any object, and such a "tier" (no max_devices) granted unlimited devices.
 */
export const tierOf = (c: Catalogue, name: string): TierDefinition | undefined => (Object.hasOwn(c.tiers, name) ? c.tiers[name] : undefined);

/** Whether a catalogue holds anything (a registry without permission tables reads as an empty one). */
export const hasCatalogue = (c: Catalogue): boolean => c.features.length > 0 || Object.keys(c.tiers).length > 0;

/** Per-business overrides: `has_*` -> true (grant) / false (deny), `max_devices` -> n. */
export type Overrides = Record<string, boolean | number>;

export interface Subscription {
  business_id: string;
  tier: string;
  status: SubscriptionStatus;
  /** ISO 8601, or null. */
  demo_expires_at: string | null;
  overrides: Overrides;
}

/** The record cached at `permissions:<business>`: exactly the one the services already read. */
export interface PermissionRecord {
  granted_features: string[];
  tier: string;
  status: string;
  demo_expires_at: string | null;
  device_limit: number;
}

/** The record of a business with no subscription. */
export const NO_SUBSCRIPTION: Readonly<PermissionRecord> = Object.freeze({
  granted_features: [],
  tier: 'none',
  status: 'inactive',
  demo_expires_at: null,
  device_limit: 0,
});

export const isStatus = (s: unknown): s is SubscriptionStatus => typeof s === 'string' && (STATUSES as readonly string[]).includes(s);

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An instant as the services write it in a permission record: whole seconds and `Z`
 * (`2025-02-01T00:00:00Z`, seed 002), the fraction cut (the demo ends at most a second
 * early, never late). Anything not in canonical form is returned as it is.
 */
export function servicesInstant(canonical: string): string {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(canonical) ? `${canonical.slice(0, 19)}Z` : canonical;
}

/**
 * Parses an ISO 8601 date-time into its canonical form (`2030-01-01T00:00:00.000Z`),
 * or undefined. A date-time without a zone is UTC, as a date alone is (JavaScript
 * would read it in the machine's time zone: two machines would store two instants
 * for one file); a day the calendar does not have (`2030-02-30`) is refused.
 */
export function canonicalInstant(value: unknown): string | undefined {
  if (value instanceof Date) return fourDigitYear(value) ? value.toISOString() : undefined;
  const m = typeof value === 'string' ? INSTANT.exec(value.trim()) : null;
  if (!m) return undefined;
  const [, y, mo, da, time, zone] = m;
  // setUTCFullYear, not Date.UTC: that reads years 0-99 as 1900-1999 (year 30 was no date).
  const day = new Date(0);
  day.setUTCFullYear(Number(y), Number(mo) - 1, Number(da));
  if (day.getUTCFullYear() !== Number(y) || day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(da)) return undefined;
  const d = new Date(time === undefined ? `${y}-${mo}-${da}T00:00:00Z` : `${y}-${mo}-${da}T${time}${zone ?? 'Z'}`);
  return fourDigitYear(d) ? d.toISOString() : undefined;
}

/**
 * A valid date whose UTC year is 1-9999: toISOString writes others as `+010000-…` or `-000001-…`, which
 * PostgreSQL refuses (a demo expiry of 9999-12-31T23:59:59-01:00 failed a whole migration batch) and the
 * services' Python cannot parse.
 */
function fourDigitYear(d: Date): boolean {
  const year = d.getUTCFullYear();
  return !Number.isNaN(d.getTime()) && year >= 1 && year <= 9999;
}
