import { sha1Hex } from '../node-crypto.js';
import { readFileSync } from 'node:fs';
import { BackendUnavailableError } from '../errors.js';
import type { SqlExecutor, SqlRegistryStore } from './sql-store.js';

/** The channel the triggers notify on and `watch` listens to. */
export const CHANGE_CHANNEL = 'tenantctl_changes';

/** The tables watched, in the order the SQL installs them, with what a change there invalidates. */
export const WATCHED_TABLES = {
  tenants: 'tenant',
  business_subscriptions: 'permissions',
  business_feature_overrides: 'permissions',
  permission_features: 'all-permissions',
  permission_tiers: 'all-permissions',
} as const;
export type WatchedTable = keyof typeof WATCHED_TABLES;

/** Each watched table gets a row trigger and a TRUNCATE trigger of these names. */
export const WATCH_TRIGGER_NAMES = ['tenantctl_watch', 'tenantctl_watch_truncate'] as const;
const FUNCTION = 'tenantctl_notify_change()';
/** Advisory lock key (tenantctl's own range, next to the schema and migration locks). */
const INSTALL_LOCK = 7_346_110_003;

/** The install script shipped with the package (src/registry/watch-trigger.sql, copied beside the compiled module). */
export function watchTriggerSql(): string {
  return readFileSync(new URL('./watch-trigger.sql', import.meta.url), 'utf8');
}

/** The installed version is the script's hash, kept as the function's comment: a changed script re-installs. */
export function watchTriggerVersion(): string {
  return `tenantctl watch ${sha1Hex(watchTriggerSql()).slice(0, 12)}`;
}

/** The statements `--uninstall` runs (one transaction); a table that does not exist is skipped by IF EXISTS. */
export function uninstallSql(): string {
  const drops = Object.keys(WATCHED_TABLES).flatMap((t) => WATCH_TRIGGER_NAMES.map((n) => `DROP TRIGGER IF EXISTS ${n} ON ${t};`));
  return [...drops, `DROP FUNCTION IF EXISTS ${FUNCTION};`].join('\n');
}

export interface WatchTriggerStatus {
  /** Every trigger is there, calling the function. */
  installed: boolean;
  /** Installed from this version's script. */
  current: boolean;
  /** `table.trigger` of those present (and firing) / missing (absent, or disabled). */
  present: string[];
  missing: string[];
  /**
   * Those of `missing` that are there but do not fire: disabled (`ALTER TABLE ... DISABLE TRIGGER`, a bulk
   * load's idiom) or firing only for a replication session (ENABLE REPLICA TRIGGER). They send no
   * notification, as a dropped one (they were counted installed: no warning, no polling, and --install said
   * "nothing changed").
   */
  disabled: string[];
}

/** What missing triggers are, said: how many of all, and which of them are disabled. */
export function missingTriggers(status: Pick<WatchTriggerStatus, 'present' | 'missing' | 'disabled'>): string {
  const of = `${status.missing.length} of ${status.missing.length + status.present.length}`;
  return status.disabled.length ? `missing ${of}; disabled: ${status.disabled.join(', ')}` : `missing ${of}`;
}

/** Where the triggers stand, from the catalog alone (a plain SELECT, no lock). */
export async function watchTriggerStatus(db: SqlExecutor): Promise<WatchTriggerStatus> {
  const tables = Object.keys(WATCHED_TABLES);
  const { rows } = await db.query(
    `SELECT c.relname AS tbl, t.tgname AS trigger, t.tgenabled IN ('O', 'A') AS fires
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE NOT t.tgisinternal
        AND t.tgname = ANY($1::text[])
        AND t.tgfoid = to_regprocedure('${FUNCTION}')
        AND c.oid IN (SELECT to_regclass(x) FROM unnest($2::text[]) AS x)`,
    [[...WATCH_TRIGGER_NAMES], tables],
  );
  // tgenabled: O (origin, the default) and A (always) fire in an ordinary session; D (disabled) and R (replica) do not.
  const name = (r: Record<string, unknown>) => `${String(r.tbl)}.${String(r.trigger)}`;
  const present = new Set(rows.filter((r) => r.fires === true).map(name));
  const there = new Set(rows.map(name));
  const all = tables.flatMap((t) => WATCH_TRIGGER_NAMES.map((n) => `${t}.${n}`));
  const comment = (await db.query(`SELECT obj_description(to_regprocedure('${FUNCTION}'), 'pg_proc') AS comment`)).rows[0]?.comment;
  const installed = all.every((x) => present.has(x));
  const missing = all.filter((x) => !present.has(x));
  return { installed, current: installed && comment === watchTriggerVersion(), present: all.filter((x) => present.has(x)), missing, disabled: missing.filter((x) => there.has(x)) };
}

export interface TriggerChange {
  /** installed: none were there; updated: some were, or from another version; unchanged: nothing done; removed / absent for uninstall. */
  status: 'installed' | 'updated' | 'unchanged' | 'removed' | 'absent';
  /** `table.trigger`, what is there afterwards (install) or what was removed (uninstall). */
  triggers: string[];
}

/**
 * Creates the triggers and their function, idempotently: when the catalog
 * shows them installed from this version, nothing is done (no lock taken);
 * otherwise the whole script runs in one transaction under an advisory lock.
 * The store's lock_timeout bounds the wait for a lock on a table that a
 * long transaction (a service's) holds; nothing is changed then.
 */
export async function installWatchTriggers(store: SqlRegistryStore): Promise<TriggerChange> {
  const before = await store.guard('checking the watch triggers', () => watchTriggerStatus(store.db));
  if (before.current) return { status: 'unchanged', triggers: before.present };
  const version = watchTriggerVersion();
  await store.transaction('installing the watch triggers (creating triggers needs the TRIGGER privilege on the tables and CREATE on the schema)', async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [INSTALL_LOCK]);
    await tx.exec(watchTriggerSql());
    await tx.query(`COMMENT ON FUNCTION ${FUNCTION} IS '${version}'`);
  });
  const after = await store.guard('checking the watch triggers', () => watchTriggerStatus(store.db));
  if (!after.current) {
    throw new BackendUnavailableError('registry', `registry (${store.description}): the watch triggers are still missing after installing (${after.missing.join(', ')})`);
  }
  return { status: before.present.length || before.disabled.length ? 'updated' : 'installed', triggers: after.present };
}

/** Drops the triggers and their function in one transaction; nothing else is touched. */
export async function uninstallWatchTriggers(store: SqlRegistryStore): Promise<TriggerChange> {
  const before = await store.guard('checking the watch triggers', () => watchTriggerStatus(store.db));
  const hasFunction = (await store.guard('checking the watch triggers', () => store.db.query(`SELECT to_regprocedure('${FUNCTION}') IS NOT NULL AS present`))).rows[0]?.present;
  // Disabled ones are dropped too, and said (a review: left out of the report and the audit count).
  const there = [...before.present, ...before.disabled];
  if (!there.length && !hasFunction) return { status: 'absent', triggers: [] };
  await store.transaction('removing the watch triggers', async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [INSTALL_LOCK]);
    await tx.exec(uninstallSql());
  });
  return { status: 'removed', triggers: there.sort() };
}

