import { canonicalInstant, type Catalogue, type Subscription } from '../permissions/model.js';
import { bigIntegersOfText, firstWholeFloat, type WholeFloat } from '../json/whole-floats.js';
import { BackendUnavailableError } from '../errors.js';

/** A row of the `tenants` table (DESIGN.md, "Registry"). */
export interface TenantRow {
  id: string;
  name: string;
  short_name: string | null;
  timezone: string | null;
  currency: string | null;
  primary_email: string | null;
  gcp_project_id: string | null;
  gcp_dataset: string | null;
  /** `database` once migrated, else `yaml` (the row then counts as not migrated). */
  config_source: string;
  tenant_config: Record<string, unknown>;
  status: string;
  plan: string | null;
  features_enabled: unknown;
  created_at?: string;
  updated_at?: string;
  /** tenantctl's content hash of its last migration; null for rows it never wrote. */
  tenantctl_hash: string | null;
  /**
   * getTenant only: the first number tenant_config's jsonb holds as a float with a whole value (`1.0`,
   * which the services read as a float and cache with its `.0`; JSON here reads the integer 1).
   */
  config_whole_float?: WholeFloat;
  /**
   * getTenants asked for exact numbers: the integers tenant_config's jsonb holds past 2^53, with every digit
   * (JSON here rounds them; the services' reader keeps them). Absent when there are none.
   */
  config_big_integers?: WholeFloat[];
}

/**
 * What a migration's plan needs of a current row, without its content: the
 * content's hash (contentHash of the row) and the two columns a decision reads.
 */
export interface TenantVersionInfo {
  config_source: string;
  tenantctl_hash: string | null;
  content_hash: string;
}

/**
 * Content hashes by a fingerprint of the row's text as the database prints it
 * (jsonb text is one form per value): a pure function's results, so a memo kept
 * between runs can never be stale, only missing.
 */
export interface ContentHashMemo {
  get(fingerprint: string): string | undefined;
  set(fingerprint: string, contentHash: string): void;
}

/** The columns tenantctl writes when it migrates a tenant; status, plan and features stay the registry's. */
export type TenantWrite = Pick<
  TenantRow,
  'id' | 'name' | 'short_name' | 'timezone' | 'currency' | 'primary_email' | 'gcp_project_id' | 'gcp_dataset' | 'tenant_config' | 'tenantctl_hash'
>;

/** A tenant row to write, and the version of the row it was planned against (null: no row). */
export interface TenantChange {
  row: TenantWrite;
  /** tenantVersion() of the row when the change was planned; written only if it is still so. */
  expect: string | null;
}

export interface SubscriptionChange {
  sub: Subscription;
  /** The migration hash stored with it (null for a change made by a command). */
  hash: string | null;
  /** subscriptionVersion() when planned. */
  expect: string | null;
}

export interface CatalogueChange {
  catalogue: Catalogue;
  hash: string;
  /** catalogueVersion() when planned. */
  expect: string | null;
}

/** Writes applied together: in one transaction where the backend has them. */
export interface ChangeSet {
  tenants?: TenantChange[];
  subscriptions?: SubscriptionChange[];
  catalogue?: CatalogueChange;
}

/** What a change set came to: each item written, or a conflict (changed since it was planned, left as it is). */
export interface ChangeOutcome {
  written: { tenants: string[]; subscriptions: string[]; catalogue: boolean };
  conflicts: { tenants: string[]; subscriptions: string[]; catalogue: boolean };
}

/**
 * An invalidation owed to the cache: every key family of a tenant, one
 * business's `permissions:` entry, or every `permissions:` entry.
 */
export type InvalidationKind = 'tenant' | 'permissions' | 'permissions-all';

export interface PendingInvalidation {
  kind: InvalidationKind;
  target: string;
  /** Bumped each time the same invalidation is recorded again: clearing removes only what was read. */
  seq: string;
}

/** The invalidations a write owes: recorded with it, in the same transaction. */
/**
 * A write whose outcome is unknown: a COMMIT that got no answer (the transaction may or may not have
 * committed), or on a store without transactions (Supabase) a change set cut off after its first write
 * request was sent. The cause says why.
 */
export class CommitOutcomeUnknownError extends Error {
  constructor(
    override readonly cause: unknown,
    what = 'no answer to COMMIT',
  ) {
    super(`${what}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** One item of a change set: a tenant's row, a business's subscription, or the catalogue (id `tiers`). */
export interface ChangeItem {
  kind: 'tenant' | 'subscription' | 'catalogue';
  id: string;
}

/**
 * A store without transactions (Supabase) had one item of a change set refused for its content (a CHECK,
 * a trigger: a definite answer) after other writes of the set had landed: `applied` is what landed
 * (written, or found changed meanwhile), `refused` the item, and the items after it were not sent. Nothing
 * of the refused item was applied unless `partly` (a request of its own had landed first: a subscription's
 * row before its overrides, a catalogue's features before its tiers). A store with transactions never
 * throws it: a refusal there applies nothing.
 */
export class RefusedAmidChanges extends Error {
  constructor(
    /** The registry's refusal (a BackendUnavailableError whose reason is 'rejected'). */
    readonly refusal: Error,
    readonly applied: ChangeOutcome,
    readonly refused: ChangeItem,
    readonly partly = false,
  ) {
    super(refusal.message);
  }
}

/** Whether a failed write's outcome is unknown: its COMMIT got no answer (see CommitOutcomeUnknownError). */
export function outcomeUnknown(err: unknown): boolean {
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e instanceof CommitOutcomeUnknownError) return true;
  }
  return false;
}

/**
 * SQLSTATEs that refuse the data written, not the connection: data exceptions (22: a value out of range, a
 * bad date), integrity constraints (23: a CHECK, NOT NULL, a foreign key) and a trigger's RAISE (P0001).
 */
export function refusedRowCode(code: unknown): boolean {
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$|^P0001$/.test(code);
}

export function invalidationsFor(written: ChangeOutcome['written']): Array<{ kind: InvalidationKind; target: string }> {
  return [
    ...written.tenants.map((t) => ({ kind: 'tenant' as const, target: t })),
    ...written.subscriptions.map((b) => ({ kind: 'permissions' as const, target: b })),
    ...(written.catalogue ? [{ kind: 'permissions-all' as const, target: '*' }] : []),
  ];
}

/** The registry operations the tool uses, and only those; one file per backend. */
export interface RegistryStore {
  /** Where it is, credentials masked. */
  readonly description: string;
  /** True once its connection is gone for good (PostgreSQL's session ended): a new store must be opened. */
  readonly lost?: boolean;
  /**
   * Whether the `tenants` table is there: a PostgreSQL database without it is no registry yet (the wrong
   * database, or one never migrated into). Absent: it always is (Supabase's is probed when opened).
   */
  hasTenantsTable?(): Promise<boolean>;
  getTenant(id: string): Promise<TenantRow | undefined>;
  /** `exactNumbers`: with config_big_integers (the config's text read too: for a comparison, not for every read). */
  getTenants(ids: string[], options?: { exactNumbers?: boolean }): Promise<Map<string, TenantRow>>;
  /**
   * The version of each row (for a migration's plan): where the backend can,
   * without parsing or hashing a row's content whose hash `memo` already knows.
   */
  getTenantVersions(ids: string[], memo?: ContentHashMemo): Promise<Map<string, TenantVersionInfo>>;
  /** Rows with status `active`, sorted by id. */
  listActiveTenants(): Promise<TenantRow[]>;
  /** The ids of active tenants tenantctl migrated (its hash set): a file removed or renamed since leaves one. */
  migratedTenantIds(): Promise<string[]>;
  /**
   * Makes the schema current (writers only): checks the catalog first and
   * changes nothing when it is; else applies schema.sql under a lock.
   */
  ensureSchema(): Promise<void>;
  /**
   * Where the schema stands, read from the catalog only (no DDL, no lock): `current` false means the next
   * ensureSchema changes the database. Stores whose schema is applied elsewhere (Supabase) have none.
   */
  schemaState?(): Promise<{ current: boolean; version: number | null }>;
  /**
   * Applies a change set with compare-and-set: an item whose current version
   * differs from `expect` is a conflict and is not written. The invalidations
   * owed for what was written are recorded in the outbox in the same transaction.
   */
  /**
   * `memo`, where the store can fingerprint rows (SQL): learns each tenant row
   * written with a tenantctl_hash (the content hash it was planned with), so
   * the next run's getTenantVersions knows it without reading it whole.
   */
  applyChanges(changes: ChangeSet, memo?: ContentHashMemo): Promise<ChangeOutcome>;
  /** The invalidations still owed (oldest first), at most `limit`. */
  pendingInvalidations(limit?: number): Promise<PendingInvalidation[]>;
  /**
   * Forgets invalidations that were done (unless recorded again since they were read). Resolves to how
   * many it forgot: another process draining at once may have forgotten some first.
   */
  clearInvalidations(done: PendingInvalidation[]): Promise<number>;
  /**
   * Serialises migrations across processes (a PostgreSQL advisory lock; the
   * embedded registry is one process at a time anyway). Resolves to the release.
   */
  lockMigrations(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export const TENANT_WRITE_COLUMNS = [
  'id', 'name', 'short_name', 'timezone', 'currency', 'primary_email', 'gcp_project_id', 'gcp_dataset', 'tenant_config', 'tenantctl_hash',
] as const;

/**
 * Why a registry is none to read from, said ("registry (…) has no tenants table"): a PostgreSQL database
 * without the tenants table (the wrong DATABASE_URL); undefined when it is one.
 */
export async function noTenantsTable(registry: RegistryStore): Promise<string | undefined> {
  if (!registry.hasTenantsTable) return undefined;
  // A table found is remembered per store (per session): asked before every registry read, the query on a
  // session the server had just ended failed the reads already on their way, which the row read retries on
  // a new session (a flaky library-recovery test found it: 30 YAML answers for a registry tenant). A table
  // not found is asked for again: one made later on the same store (a library's migration) is seen.
  if (TABLE_FOUND.has(registry)) return undefined;
  if (await registry.hasTenantsTable()) {
    TABLE_FOUND.add(registry);
    return undefined;
  }
  return `registry (${registry.description}) has no tenants table`;
}
const TABLE_FOUND = new WeakSet<RegistryStore>();

/** The column a getTenant read adds: tenant_config as the server writes it out (a jsonb keeps `1.0`). */
export const CONFIG_TEXT_COLUMN = 'tenantctl_config_text';
/**
 * The column getTenants adds for exact numbers: tenant_config's text where it may hold an integer past 2^53 (a
 * run of 16 digits: PostgreSQL sends it only then), read for config_big_integers alone.
 */
export const CONFIG_DIGITS_COLUMN = 'tenantctl_config_digits';

/**
 * Normalises a row from any backend (timestamps to ISO strings). jsonb arrives parsed from every backend (pg,
 * PGlite, PostgREST): a string is a JSON string the row holds, never JSON text to parse again (a service's
 * to_jsonb('{"admin":true}'::text) was served as config keys; "hello" made every listing fail, exit 70).
 */
export function normaliseRow(raw: Record<string, unknown>): TenantRow {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v == null ? undefined : String(v));
  const { [CONFIG_TEXT_COLUMN]: configText, [CONFIG_DIGITS_COLUMN]: digitsText, ...columns } = raw;
  const wholeFloat = typeof configText === 'string' ? firstWholeFloat(configText) : undefined;
  const bigIntegers = typeof digitsText === 'string' ? bigIntegersOfText(digitsText) : [];
  return {
    ...(columns as unknown as TenantRow),
    ...(wholeFloat && { config_whole_float: wholeFloat }),
    ...(bigIntegers.length && { config_big_integers: bigIntegers }),
    tenant_config: (raw.tenant_config as Record<string, unknown>) ?? {},
    features_enabled: (raw.features_enabled as TenantRow['features_enabled']) ?? null,
    created_at: iso(raw.created_at),
    updated_at: iso(raw.updated_at),
    tenantctl_hash: (raw.tenantctl_hash as string | null | undefined) ?? null,
  };
}

/** A subscription as stored, with tenantctl's hash of its last migration. */
export interface StoredSubscription extends Subscription {
  tenantctl_hash: string | null;
}

/** The permission data a store keeps (issue: permissions); implemented by every registry backend. */
export interface PermissionStore {
  /** The catalogue and tiers, with the hash of what tenantctl last migrated (null if never). */
  getCatalogue(): Promise<Catalogue & { tenantctl_hash: string | null }>;
  getSubscription(business: string): Promise<StoredSubscription | undefined>;
  getSubscriptions(businesses: string[]): Promise<Map<string, StoredSubscription>>;
  /** Up to `limit` subscriptions whose tier is none of `tiers` (left on a tier tiers.yaml no longer has), and how many in all. */
  subscriptionsOffTiers(tiers: string[], limit: number): Promise<{ total: number; some: Array<{ business_id: string; tier: string }> }>;
}

/** Everything the tool asks of a registry. */
export type Registry = RegistryStore & PermissionStore;

/**
 * Builds subscriptions from `business_subscriptions` rows and their
 * `business_feature_overrides` rows, as any backend returns them (jsonb as
 * text or parsed, timestamps as Date or text).
 */
export function subscriptionsFromRows(
  subs: Record<string, unknown>[],
  overrides: Record<string, unknown>[],
  into = new Map<string, StoredSubscription>(),
): Map<string, StoredSubscription> {
  const byBusiness = new Map<string, Record<string, boolean | number>>();
  for (const o of overrides) {
    const list = byBusiness.get(String(o.business_id)) ?? {};
    // As stored (jsonb, parsed): the string "true" is no grant (it was parsed into one), "yes" no failure.
    list[String(o.feature)] = o.value as boolean | number;
    byBusiness.set(String(o.business_id), list);
  }
  for (const r of subs) {
    const id = String(r.business_id);
    into.set(id, {
      business_id: id,
      tier: String(r.tier),
      status: r.status as Subscription['status'],
      demo_expires_at: storedExpiry(r.demo_expires_at, id),
      overrides: byBusiness.get(id) ?? {},
      tenantctl_hash: (r.tenantctl_hash as string | null) ?? null,
    });
  }
  return into;
}

/** The earliest instant the services' format writes: a demo stored as expiring at '-infinity' (or before year 1). */
const ALWAYS_EXPIRED = '0001-01-01T00:00:00.000Z';
/** The latest: a demo stored as expiring at 'infinity', or after year 9999 in UTC (a "never" of 9999-12-31 written west of UTC). */
const NEVER_EXPIRES = '9999-12-31T23:59:59.999Z';

/**
 * A demo expiry as stored, as an instant the services' format can write: 'infinity' and dates past year 9999
 * are the last one (a live demo: 'infinity' read as no expiry made it an ordinary tier, and a change of the
 * subscription wrote NULL), '-infinity' and dates before year 1 the first. A value that reads as no date is
 * the registry's failure, never "no expiry" (a server with another DateStyle had every expiry read as none:
 * a live demo denied, and the next subscription change wrote NULL back).
 */
function storedExpiry(value: unknown, business: string): string | null {
  if (value == null) return null;
  // pg reads ±infinity as ±Infinity, PostgREST as text; pg and PGlite read a year past 9999 or BC as a Date,
  // PostgREST as "10000-01-01T04:59:59+00:00" or "0001-12-31T23:06:32+00:00 BC".
  if (value === Infinity || value === 'infinity') return NEVER_EXPIRES;
  if (value === -Infinity || value === '-infinity') return ALWAYS_EXPIRED;
  const at = canonicalInstant(value);
  if (at !== undefined) return at;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.getUTCFullYear() > 9999 ? NEVER_EXPIRES : ALWAYS_EXPIRED;
  if (typeof value === 'string' && /^\s*\d{4}-\d\d-\d\d[ T][\d:.+-]+\s+BC\s*$/i.test(value)) return ALWAYS_EXPIRED;
  if (typeof value === 'string' && /^\s*\+?\d{5,}-\d\d-\d\d(?:[ T][\d:.+-]+)?\s*$/.test(value)) return NEVER_EXPIRES;
  const shown = value instanceof Date ? 'an invalid date' : JSON.stringify(String(value).slice(0, 60));
  throw new BackendUnavailableError('registry', `the demo expiry of ${business} in the registry is no date this tool can read (${shown}): nothing is decided on it`, { reason: 'failed' });
}
