import { TenantFileError } from '../errors.js';
import { canonicalInstant, DEVICE_LIMIT_OVERRIDE, isStatus, STATUSES, tierOf, type Catalogue, type Overrides, type Subscription } from './model.js';

/**
 * The subscription a tenant file declares (`subscription: { tier, status,
 * demo_expires_at, overrides }`; the tenant id is the business id), checked
 * against the catalogue. Undefined when the file has none.
 */
export function subscriptionFromConfig(
  businessId: string,
  config: Record<string, unknown>,
  catalogue: Catalogue,
  where: { file: string; lineOf: (path: string[]) => number | undefined },
): Subscription | undefined {
  const block = config.subscription;
  if (block === undefined || block === null) return undefined;
  const fail = (p: string[], reason: string): never => {
    throw new TenantFileError(where.file, where.lineOf(['subscription', ...p]), reason);
  };
  if (typeof block !== 'object' || Array.isArray(block)) fail([], 'subscription must be a mapping');
  const { tier, status = 'active', demo_expires_at = null, overrides = {}, ...rest } = block as Record<string, unknown>;
  for (const k of Object.keys(rest)) fail([k], `subscription: unknown key "${k}"`);
  if (typeof tier !== 'string' || !tierOf(catalogue, tier)) {
    fail(['tier'], `subscription.tier ${JSON.stringify(tier)} is not a tier of tiers.yaml (${Object.keys(catalogue.tiers).join(', ') || 'none defined'})`);
  }
  if (!isStatus(status)) fail(['status'], `subscription.status ${JSON.stringify(status)} must be one of ${STATUSES.join(', ')}`);
  let expires: string | null = null;
  if (demo_expires_at !== null) {
    expires = canonicalInstant(demo_expires_at) ?? fail(['demo_expires_at'], `subscription.demo_expires_at ${JSON.stringify(demo_expires_at)} is not an ISO 8601 date`);
  }
  return { business_id: businessId, tier: tier as string, status: status as Subscription['status'], demo_expires_at: expires, overrides: parseOverrides(overrides, catalogue, (k, r) => fail(['overrides', ...k], r)) };
}

/** Validates overrides: `has_*` features of the catalogue -> boolean, `max_devices` -> whole number >= 0. */
export function parseOverrides(value: unknown, catalogue: Catalogue, fail: (path: string[], reason: string) => never): Overrides {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail([], 'overrides must be a mapping');
  const out: Overrides = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === DEVICE_LIMIT_OVERRIDE) {
      if (!Number.isSafeInteger(v) || (v as number) < 0) fail([k], 'overrides.max_devices must be a whole number >= 0');
      out[k] = v as number;
    } else if (catalogue.features.includes(k)) {
      if (typeof v !== 'boolean') fail([k], `overrides.${k} must be true or false`);
      out[k] = v as boolean;
    } else fail([k], `override "${k}" is not a feature of the catalogue`);
  }
  return out;
}
