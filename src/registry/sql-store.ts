import { readFileSync } from 'node:fs';
import { BackendUnavailableError, describeError, type BackendReason } from '../errors.js';
import {
  CommitOutcomeUnknownError, invalidationsFor, refusedRowCode, normaliseRow, CONFIG_DIGITS_COLUMN, CONFIG_TEXT_COLUMN, subscriptionsFromRows, TENANT_WRITE_COLUMNS,
  type ChangeOutcome, type ChangeSet, type ContentHashMemo, type PendingInvalidation, type Registry, type StoredSubscription, type TenantRow, type TenantVersionInfo, type TenantWrite,
} from './registry-store.js';
import { catalogueVersion, subscriptionVersion, tenantVersion, versionInfo, versionsOf } from './content-hash.js';
import type { Catalogue } from '../permissions/model.js';
import { SerialSession } from './serial-session.js';

/** What pg's Client and PGlite have in common: `$n` parameters, rows back. */
export interface SqlExecutor {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  /** Runs a script of several statements. */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
  /** True once the connection is gone for good (a server-side session end): a new store is needed. */
  readonly lost?: boolean;
}

/** The version schema.sql brings; recorded in tenantctl_meta once applied. Bump it with every change to schema.sql. */
export const SCHEMA_VERSION = 2;

/**
 * The schema shipped with the package (src/registry/schema.sql, copied into dist at build), ending with
 * the record of its version: a DBA who applies what `tenantctl schema` prints leaves the schema current,
 * so a role without CREATE rights (PostgreSQL 15's default on public) is never sent DDL again. A newer
 * version already recorded is kept.
 */
export function schemaSql(): string {
  return (
    readFileSync(new URL('./schema.sql', import.meta.url), 'utf8') +
    `\n-- The version of this schema, which tenantctl reads before it would apply any DDL.\n` +
    `INSERT INTO tenantctl_meta (key, value) VALUES ('schema_version', '${SCHEMA_VERSION}')\n` +
    `  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value\n` +
    `  WHERE coalesce(CASE WHEN tenantctl_meta.value ~ '^[0-9]{1,9}$' THEN tenantctl_meta.value::int END, 0) < EXCLUDED.value::int;\n`
  );
}

/** Advisory lock keys (pg_advisory_lock's bigint space): arbitrary, fixed, tenantctl's own. */
const SCHEMA_LOCK = 7_346_110_001;
const MIGRATION_LOCK = 7_346_110_002;

/** Tables tenantctl adds; a services' database may have only `tenants`. */
const OWN_TABLES = ['tenantctl_meta', 'tenantctl_outbox', 'permission_features', 'permission_tiers', 'business_subscriptions', 'business_feature_overrides'];

/** PostgreSQL error codes that have a meaning here. */
const PG = { undefinedTable: '42P01', undefinedColumn: '42703', insufficientPrivilege: '42501', lockNotAvailable: '55P03', queryCanceled: '57014' };

/**
 * A row's fingerprint: the columns contentHash covers, each a quoted literal
 * or NULL (so the joined text says which value is which), hashed by the
 * database. Equal fingerprints mean equal content, hence equal content hashes.
 * MD5, not SHA-256: three times cheaper on 10,000 rows in PGlite's WebAssembly
 * (125 vs 370 ms, measured), and all it must resist is a second preimage of
 * content tenantctl wrote, which MD5 still does; every write also re-checks
 * the real content hash inside its transaction (compare-and-set).
 */
/** The row's fingerprint (see getTenantVersions), its columns qualified by `table` where a statement names two. */
const fingerprintSql = (table = '') =>
  `md5(concat_ws(',', ${['id', 'name', 'short_name', 'timezone', 'currency', 'primary_email', 'gcp_project_id', 'gcp_dataset', 'tenant_config::text']
    .map((c) => `quote_nullable(${table}${c})`)
    .join(', ')}))`;
const FINGERPRINT_SQL = fingerprintSql();

/** SQL: whether `table` has tenantctl's column (false where the table is not there either). */
export const hashColumnSql = (table: string): string =>
  `EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${table}') AND attname = 'tenantctl_hash' AND NOT attisdropped)`;

const codeOf = (err: unknown) => (err as { code?: unknown })?.code;

/**
 * The services' database before tenantctl's first write has no tenantctl_hash column: a dry run plans
 * against it as it is (it failed: column "tenantctl_hash" does not exist, exit 3 before any plan).
 */
const noHashColumn = (err: unknown) => codeOf(err) === PG.undefinedColumn && /tenantctl_hash/.test(String((err as Error)?.message));

/**
 * How long past the registry timeout pg's client waits for an answer (query_timeout) before it gives up on
 * the session: the server's own statement_timeout (the registry timeout) fires first when it can answer.
 */
export const QUERY_READ_MARGIN_MS = 1000;

/** The RegistryStore for PostgreSQL and PGlite: the same SQL on both. */
export class SqlRegistryStore implements Registry {
  /** The session, one statement at a time (SerialSession): concurrent callers never run inside another's transaction. */
  readonly db: SerialSession;

  constructor(
    db: SqlExecutor,
    readonly description: string,
    /** For messages: how long locks and statements may wait. */
    readonly timeoutMs = 5000,
  ) {
    this.db = db instanceof SerialSession ? db : new SerialSession(db);
  }

  /** True once the connection under this store is gone for good: open a new one. */
  get lost(): boolean {
    return this.db.lost;
  }

  /** Wraps a registry call so any failure becomes BackendUnavailableError with a typed reason. */
  async guard<T>(what: string, op: () => Promise<T>, whyWaited?: string): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof BackendUnavailableError) throw err;
      const code = codeOf(err);
      let reason: BackendReason = 'failed';
      let detail = describeError(err);
      if (code === PG.lockNotAvailable || code === PG.queryCanceled) {
        reason = 'timeout';
        detail = `${whyWaited ? `${whyWaited}; ` : ''}waited ${this.timeoutMs} ms (the registry timeout): ${detail}`;
      } else if (/query read timeout/i.test(detail)) {
        // pg's query_timeout: the server never answered the statement (a silent server, a cut network).
        reason = 'timeout';
        detail = `no answer within ${this.timeoutMs + QUERY_READ_MARGIN_MS} ms (the registry timeout and a second)`;
      } else if (code === PG.insufficientPrivilege) reason = 'no-permission';
      // The row itself refused (a constraint, a bad value, a trigger's RAISE): the connection is fine.
      else if (refusedRowCode(code)) reason = 'rejected';
      else if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) reason = 'unreachable';
      throw new BackendUnavailableError('registry', `registry (${this.description}) failed while ${what}: ${detail}`, { cause: err, reason });
    }
  }

  /** A read of a table that may not exist yet: none means nothing stored (reads never create it). */
  private async readOptional<T>(what: string, empty: T, op: () => Promise<T>): Promise<T> {
    return this.guard(what, async () => {
      try {
        return await op();
      } catch (err) {
        if (codeOf(err) !== PG.undefinedTable) throw err;
        return empty;
      }
    });
  }

  async hasTenantsTable(): Promise<boolean> {
    return this.guard('checking the tenants table', async () => (await this.db.query("SELECT to_regclass('tenants') IS NOT NULL AS present")).rows[0].present === true);
  }

  /** Where the schema stands, from the catalog alone (no lock beyond a plain SELECT). */
  async schemaState(): Promise<{ current: boolean; version: number | null }> {
    return this.guard('checking the schema', async () => {
      const { rows } = await this.db.query(
        `SELECT to_regclass('tenants') IS NOT NULL AS tenants,
                ${hashColumnSql('tenants')} AS hash_column,
                ${hashColumnSql('business_subscriptions')} AS sub_hash_column,
                ${OWN_TABLES.map((t) => `to_regclass('${t}') IS NOT NULL AS ${t}`).join(', ')}`,
      );
      const r = rows[0];
      if (!OWN_TABLES.every((t) => r[t]) || !r.tenants || !r.hash_column || !r.sub_hash_column) return { current: false, version: null };
      const meta = await this.db.query("SELECT value FROM tenantctl_meta WHERE key = 'schema_version'");
      const version = meta.rows[0] ? Number(meta.rows[0].value) : null;
      return { current: version !== null && version >= SCHEMA_VERSION, version };
    });
  }

  async ensureSchema(): Promise<void> {
    if ((await this.schemaState()).current) return;
    // Only now any DDL, under a lock so two first runs never race (duplicate
    // key on CREATE TABLE IF NOT EXISTS), and bounded by lock_timeout.
    // The lock's explanation only where a lock was waited for: a lost COMMIT said it too, with the schema made (a review).
    await this.transaction('applying the schema', async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await tx.exec(schemaSql());
      await tx.query(
        "INSERT INTO tenantctl_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [String(SCHEMA_VERSION)],
      );
    }, "waiting for a lock on tenants while a long transaction, a service's say, holds one; nothing was changed");
  }

  async getTenant(id: string): Promise<TenantRow | undefined> {
    // With the config's text as the server writes it out: the number 1.0 is 1 once parsed (see config_whole_float).
    const rows = await this.readOptional('reading a tenant', [], async () => (await this.db.query(`SELECT *, tenant_config::text AS ${CONFIG_TEXT_COLUMN} FROM tenants WHERE id = $1`, [id])).rows);
    return rows.length ? normaliseRow(rows[0]) : undefined;
  }

  async getTenants(ids: string[], options: { exactNumbers?: boolean } = {}): Promise<Map<string, TenantRow>> {
    const out = new Map<string, TenantRow>();
    if (ids.length === 0) return out;
    // Exact numbers: the config's text only where it holds a run of 16 digits (rare), matched by the server.
    const sql = options.exactNumbers
      ? `SELECT t.*, CASE WHEN c.text ~ '[0-9]{16}' THEN c.text END AS ${CONFIG_DIGITS_COLUMN} FROM tenants t, LATERAL (SELECT t.tenant_config::text AS text) c WHERE t.id = ANY($1::text[])`
      : 'SELECT * FROM tenants WHERE id = ANY($1::text[])';
    const rows = await this.readOptional('reading tenants', [], async () => (await this.db.query(sql, [ids])).rows);
    for (const r of rows) out.set(String(r.id), normaliseRow(r));
    return out;
  }

  /**
   * Each row's fingerprint, computed by the database (MD5 of the hashed
   * columns as quoted literals, tenant_config as jsonb prints it: one text per
   * value, and no content crosses the wire); only rows whose fingerprint the
   * memo does not know are read whole and hashed. A rerun of 10,000 unchanged
   * tenants reads and parses none.
   */
  async getTenantVersions(ids: string[], memo?: ContentHashMemo): Promise<Map<string, TenantVersionInfo>> {
    // No memo: nothing could be skipped, so the whole rows straight away.
    if (!memo || ids.length === 0) return versionsOf(await this.getTenants(ids));
    const read = (what: string, sql: string, list: string[]) =>
      this.readOptional(what, [], async () => (await this.db.query(sql, [list])).rows);
    const out = new Map<string, TenantVersionInfo>();
    const unknown: string[] = [];
    let rows;
    try {
      rows = await read('reading tenant versions', `SELECT id, config_source, tenantctl_hash, ${FINGERPRINT_SQL} AS fingerprint FROM tenants WHERE id = ANY($1::text[])`, ids);
    } catch (err) {
      // Whole rows then (no row has a hash to memoise under).
      if (noHashColumn(err) || noHashColumn((err as Error)?.cause)) return versionsOf(await this.getTenants(ids));
      throw err;
    }
    for (const r of rows) {
      const hash = memo.get(String(r.fingerprint));
      if (hash === undefined) unknown.push(String(r.id));
      else out.set(String(r.id), { config_source: String(r.config_source), tenantctl_hash: (r.tenantctl_hash as string | null) ?? null, content_hash: hash });
    }
    if (unknown.length) {
      // Read whole with their fingerprint again: a row changed between the two reads is memoised under its new one.
      const whole = await read('reading tenants', `SELECT *, ${FINGERPRINT_SQL} AS tenantctl_fingerprint FROM tenants WHERE id = ANY($1::text[])`, unknown);
      for (const r of whole) {
        const row = normaliseRow(r);
        const info = versionInfo(row);
        memo.set(String(r.tenantctl_fingerprint), info.content_hash);
        out.set(row.id, info);
      }
    }
    return out;
  }

  async listActiveTenants(): Promise<TenantRow[]> {
    const rows = await this.readOptional('listing tenants', [], async () => (await this.db.query("SELECT * FROM tenants WHERE status = 'active' ORDER BY id")).rows);
    return rows.map(normaliseRow);
  }

  /** Runs statements in one transaction, holding the session (no other caller's statement runs inside it). */
  async transaction<T>(what: string, work: (tx: SqlExecutor) => Promise<T>, whyWaited?: string): Promise<T> {
    // `tx` is the connection itself: every statement of the transaction goes through it, never through this.db
    // (held by the transaction, it would wait behind it forever).
    return this.guard(what, () =>
      this.db.exclusive(async (tx) => {
        await tx.query('BEGIN');
        try {
          const result = await work(tx);
          try {
            await tx.query('COMMIT');
          } catch (err) {
            // No answer to the COMMIT (the connection lost, the client's read timeout): it may have landed.
            // An answer with a SQLSTATE (a serialization failure, a deferred constraint) is a definite no.
            if (!hasSqlState(err)) throw new CommitOutcomeUnknownError(err);
            throw err;
          }
          return result;
        } catch (err) {
          await tx.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
      whyWaited,
    );
  }

  async getCatalogue(): Promise<Catalogue & { tenantctl_hash: string | null }> {
    return this.catalogueOn(this.db);
  }

  /** The catalogue, read on `db` (the session, or a transaction's connection). */
  private async catalogueOn(db: SqlExecutor): Promise<Catalogue & { tenantctl_hash: string | null }> {
    const empty = { features: [], tiers: {}, tenantctl_hash: null };
    return this.readOptional('reading the feature catalogue', empty, async () => {
      const features = (await db.query('SELECT name FROM permission_features ORDER BY name')).rows.map((r) => String(r.name));
      const tiers: Catalogue['tiers'] = {};
      for (const r of (await db.query('SELECT name, features, max_devices FROM permission_tiers ORDER BY name')).rows) {
        // jsonb, parsed: a tier whose features are no list (a JSON string a service wrote) grants none.
        const f = Array.isArray(r.features) ? r.features : [];
        tiers[String(r.name)] = { name: String(r.name), features: [...(f as string[])].sort(), max_devices: r.max_devices === null ? null : Number(r.max_devices) };
      }
      // tenantctl's own table may not be there (a services' registry, never migrated into): the catalogue is
      // the services' all the same (its absence made the whole catalogue read as empty: every feature denied).
      const meta = await db.query("SELECT value FROM tenantctl_meta WHERE key = 'catalogue_hash'").then(
        (r) => r.rows[0],
        (err: unknown) => {
          if (codeOf(err) !== PG.undefinedTable) throw err;
          return undefined;
        },
      );
      return { features, tiers, tenantctl_hash: meta ? String(meta.value) : null };
    });
  }

  async getSubscription(business: string): Promise<StoredSubscription | undefined> {
    return (await this.getSubscriptions([business])).get(business);
  }

  async getSubscriptions(businesses: string[]): Promise<Map<string, StoredSubscription>> {
    return this.subscriptionsOn(this.db, businesses, false);
  }

  /** Subscriptions read on `db` (the session, or a transaction's connection, with `lock`: FOR UPDATE). */
  private async subscriptionsOn(db: SqlExecutor, businesses: string[], lock: boolean): Promise<Map<string, StoredSubscription>> {
    const out = new Map<string, StoredSubscription>();
    if (businesses.length === 0) return out;
    return this.readOptional('reading subscriptions', out, async () => {
      // The expiry as seconds since 1970: PGlite's own reading of a timestamp took year 1 for 2001 and any BC
      // date for none. As timestamptz first: a services' column without a zone holds what the write put
      // there in this session's time zone (read as UTC, each change moved a demo's end by the offset: a
      // review), and a text column is parsed as PostgreSQL parses it.
      const subs = await db.query(
        `SELECT s.*, extract(epoch FROM s.demo_expires_at::timestamptz) AS tenantctl_expiry_epoch FROM business_subscriptions s WHERE s.business_id = ANY($1::text[])${lock ? ' FOR UPDATE' : ''}`,
        [businesses],
      );
      const overrides = await db.query('SELECT business_id, feature, value FROM business_feature_overrides WHERE business_id = ANY($1::text[])', [businesses]);
      return subscriptionsFromRows(subs.rows.map((r) => ({ ...r, demo_expires_at: instantOfEpoch(r.tenantctl_expiry_epoch) })), overrides.rows, out);
    });
  }

  /**
   * One transaction: lock the rows the changes touch, keep only the items
   * whose version is still the one they were planned against, write those
   * with multi-row statements, and record the invalidations they owe.
   */
  async applyChanges(changes: ChangeSet, memo?: ContentHashMemo): Promise<ChangeOutcome> {
    const outcome: ChangeOutcome = {
      written: { tenants: [], subscriptions: [], catalogue: false },
      conflicts: { tenants: [], subscriptions: [], catalogue: false },
    };
    await this.transaction('writing changes', async (tx) => {
      const q = (sql: string, params?: unknown[]) => tx.query(sql, params);
      const tenants = changes.tenants ?? [];
      if (tenants.length) {
        const ids = tenants.map((t) => t.row.id);
        const current = new Map((await q('SELECT * FROM tenants WHERE id = ANY($1::text[]) FOR UPDATE', [ids])).rows.map((r) => [String(r.id), normaliseRow(r)]));
        const inserts = [];
        const updates = [];
        for (const t of tenants) {
          if (tenantVersion(current.get(t.row.id)) !== t.expect) outcome.conflicts.tenants.push(t.row.id);
          else if (current.has(t.row.id)) updates.push(t.row);
          else inserts.push(t.row);
        }
        const recordset = `jsonb_to_recordset($1::jsonb) AS v(${TENANT_WRITE_COLUMNS.map((c) => `${c} ${c === 'tenant_config' ? 'jsonb' : 'text'}`).join(', ')})`;
        // With a memo, each written row's fingerprint as stored: the next run's plan then knows its
        // content hash (the tenantctl_hash it was written with) without reading it whole.
        const fingerprint = (table: string) => (memo ? `, ${fingerprintSql(table)} AS fp` : '');
        // Whether the row stored is the row written: a service's BEFORE trigger may change it (then its content
        // hash is not the one written, and memoised as such, every plan after it planned against a row that was
        // not there: "changed while planning", on every rerun).
        const asWritten = (r: string) => (memo ? `, (${TENANT_WRITE_COLUMNS.map((c) => (c === 'tenant_config' ? `${r}.${c} = v.${c}` : `${r}.${c} IS NOT DISTINCT FROM v.${c}`)).join(' AND ')}) AS as_written` : '');
        const learn = (rows: Array<Record<string, unknown>>, written: Map<string, TenantWrite>) => {
          for (const r of rows) {
            const hash = written.get(String(r.id))?.tenantctl_hash;
            if (memo && hash && r.fp && r.as_written === true) memo.set(String(r.fp), hash);
          }
        };
        if (inserts.length) {
          // A row inserted by someone else since the lock was taken is a conflict, not an overwrite.
          const { rows } = await q(
            `WITH v AS (SELECT * FROM ${recordset}),
                  ins AS (INSERT INTO tenants (${TENANT_WRITE_COLUMNS.join(', ')}, config_source, status)
                          SELECT ${TENANT_WRITE_COLUMNS.map((c) => `v.${c}`).join(', ')}, 'database', 'active' FROM v
                          ON CONFLICT (id) DO NOTHING RETURNING *${fingerprint('')})
             SELECT ins.id${memo ? ', ins.fp' : ''}${asWritten('ins')} FROM ins JOIN v ON v.id = ins.id`,
            [JSON.stringify(inserts)],
          );
          const done = new Set(rows.map((r) => String(r.id)));
          for (const r of inserts) (done.has(r.id) ? outcome.written.tenants : outcome.conflicts.tenants).push(r.id);
          learn(rows, new Map(inserts.map((r) => [r.id, r])));
        }
        if (updates.length) {
          const { rows } = await q(
            `UPDATE tenants t SET ${TENANT_WRITE_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = v.${c}`).join(', ')}, config_source = 'database', updated_at = now()
             FROM ${recordset} WHERE t.id = v.id${memo ? ` RETURNING t.id${fingerprint('t.')}${asWritten('t')}` : ''}`,
            [JSON.stringify(updates)],
          );
          outcome.written.tenants.push(...updates.map((r) => r.id));
          learn(rows, new Map(updates.map((r) => [r.id, r])));
        }
      }

      const subs = changes.subscriptions ?? [];
      if (subs.length) {
        const current = await this.subscriptionsOn(tx, subs.map((s) => s.sub.business_id), true);
        const ok = subs.filter((s) => {
          if (subscriptionVersion(current.get(s.sub.business_id)) === s.expect) return true;
          outcome.conflicts.subscriptions.push(s.sub.business_id);
          return false;
        });
        if (ok.length) {
          const recordset = 'jsonb_to_recordset($1::jsonb) AS v(business_id text, tier text, status text, demo_expires_at timestamptz, tenantctl_hash text)';
          const rowsOf = (list: typeof ok) => JSON.stringify(list.map((s) => ({ ...s.sub, overrides: undefined, tenantctl_hash: s.hash })));
          // A subscription planned as new: inserted only if still absent. FOR UPDATE locked no row for
          // it, so another writer may have created it since: a conflict, not an overwrite (as for tenants).
          const fresh = ok.filter((s) => !current.has(s.sub.business_id));
          const existing = ok.filter((s) => current.has(s.sub.business_id));
          const inserted = new Set<string>();
          if (fresh.length) {
            const { rows } = await q(
              `INSERT INTO business_subscriptions (business_id, tier, status, demo_expires_at, tenantctl_hash)
               SELECT v.business_id, v.tier, v.status, v.demo_expires_at, v.tenantctl_hash FROM ${recordset}
               ON CONFLICT (business_id) DO NOTHING RETURNING business_id`,
              [rowsOf(fresh)],
            );
            for (const r of rows) inserted.add(String(r.business_id));
            for (const s of fresh) if (!inserted.has(s.sub.business_id)) outcome.conflicts.subscriptions.push(s.sub.business_id);
          }
          if (existing.length) {
            await q(
              `UPDATE business_subscriptions b SET tier = v.tier, status = v.status, demo_expires_at = v.demo_expires_at,
                 tenantctl_hash = v.tenantctl_hash, updated_at = now()
               FROM ${recordset} WHERE b.business_id = v.business_id`,
              [rowsOf(existing)],
            );
          }
          const written = [...existing, ...fresh.filter((s) => inserted.has(s.sub.business_id))];
          const ids = written.map((s) => s.sub.business_id);
          await q('DELETE FROM business_feature_overrides WHERE business_id = ANY($1::text[])', [ids]);
          const overrides = written.flatMap((s) => Object.entries(s.sub.overrides).map(([feature, value]) => ({ business_id: s.sub.business_id, feature, value })));
          if (overrides.length) {
            await q(
              `INSERT INTO business_feature_overrides (business_id, feature, value)
               SELECT v.business_id, v.feature, v.value FROM jsonb_to_recordset($1::jsonb) AS v(business_id text, feature text, value jsonb)`,
              [JSON.stringify(overrides)],
            );
          }
          outcome.written.subscriptions.push(...ids);
        }
      }

      const cat = changes.catalogue;
      if (cat) {
        // The meta row is the catalogue's lock (it always exists once the schema is applied).
        await q("INSERT INTO tenantctl_meta (key, value) VALUES ('catalogue_lock', '') ON CONFLICT (key) DO NOTHING");
        await q("SELECT value FROM tenantctl_meta WHERE key = 'catalogue_lock' FOR UPDATE");
        if (catalogueVersion(await this.catalogueOn(tx)) !== cat.expect) outcome.conflicts.catalogue = true;
        else {
          const { catalogue } = cat;
          await q('DELETE FROM permission_features WHERE NOT (name = ANY($1::text[]))', [catalogue.features]);
          await q('INSERT INTO permission_features (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [catalogue.features]);
          const tiers = Object.values(catalogue.tiers);
          await q('DELETE FROM permission_tiers WHERE NOT (name = ANY($1::text[]))', [tiers.map((t) => t.name)]);
          if (tiers.length) {
            await q(
              `INSERT INTO permission_tiers (name, features, max_devices)
               SELECT v.name, v.features, v.max_devices FROM jsonb_to_recordset($1::jsonb) AS v(name text, features jsonb, max_devices integer)
               ON CONFLICT (name) DO UPDATE SET features = EXCLUDED.features, max_devices = EXCLUDED.max_devices`,
              [JSON.stringify(tiers)],
            );
          }
          await q("INSERT INTO tenantctl_meta (key, value) VALUES ('catalogue_hash', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [cat.hash]);
          outcome.written.catalogue = true;
        }
      }

      const owed = invalidationsFor(outcome.written);
      if (owed.length) {
        await q(
          `INSERT INTO tenantctl_outbox (kind, target) SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (kind, target) DO UPDATE SET seq = nextval('tenantctl_outbox_seq'), created_at = now()`,
          [owed.map((o) => o.kind), owed.map((o) => o.target)],
        );
      }
    });
    return outcome;
  }

  async migratedTenantIds(): Promise<string[]> {
    return this.readOptional('listing migrated tenants', [], async () => {
      try {
        return (await this.db.query("SELECT id FROM tenants WHERE tenantctl_hash IS NOT NULL AND status = 'active' ORDER BY id")).rows.map((r) => String(r.id));
      } catch (err) {
        // None migrated by tenantctl yet.
        if (noHashColumn(err)) return [];
        throw err;
      }
    });
  }

  async subscriptionsOffTiers(tiers: string[], limit: number): Promise<{ total: number; some: Array<{ business_id: string; tier: string }> }> {
    return this.readOptional('reading subscriptions by tier', { total: 0, some: [] }, async () => {
      const { rows } = await this.db.query(
        'SELECT business_id, tier, count(*) OVER ()::int AS total FROM business_subscriptions WHERE NOT (tier = ANY($1::text[])) ORDER BY business_id LIMIT $2',
        [tiers, limit],
      );
      return { total: rows.length ? Number(rows[0].total) : 0, some: rows.map((r) => ({ business_id: String(r.business_id), tier: String(r.tier) })) };
    });
  }

  async pendingInvalidations(limit = 10_000): Promise<PendingInvalidation[]> {
    return this.readOptional('reading pending invalidations', [], async () =>
      (await this.db.query('SELECT kind, target, seq::text AS seq FROM tenantctl_outbox ORDER BY seq LIMIT $1', [limit])).rows.map((r) => ({
        kind: r.kind as PendingInvalidation['kind'],
        target: String(r.target),
        seq: String(r.seq),
      })),
    );
  }

  async clearInvalidations(done: PendingInvalidation[]): Promise<number> {
    if (!done.length) return 0;
    const { rows } = await this.guard('clearing done invalidations', () =>
      this.db.query(
        'WITH gone AS (DELETE FROM tenantctl_outbox o USING unnest($1::text[], $2::text[], $3::bigint[]) AS d(kind, target, seq) WHERE o.kind = d.kind AND o.target = d.target AND o.seq = d.seq RETURNING 1) SELECT count(*)::int AS n FROM gone',
        [done.map((d) => d.kind), done.map((d) => d.target), done.map((d) => d.seq)],
      ),
    );
    return Number(rows[0]?.n ?? 0);
  }

  async lockMigrations(): Promise<() => Promise<void>> {
    try {
      await this.guard('waiting for the migration lock', () => this.db.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]));
    } catch (err) {
      // The server's own timeout ended the wait (lock or statement: 55P03, 57014), not a server that went silent.
      const code = codeOf(err instanceof BackendUnavailableError ? err.cause : undefined);
      if (err instanceof BackendUnavailableError && err.reason === 'timeout' && (code === PG.lockNotAvailable || code === PG.queryCanceled)) {
        // One line: the statement timeout that ended the wait is what "waited N ms" already says.
        throw new BackendUnavailableError('registry', `registry (${this.description}) is in use: another migration holds its lock (waited ${this.timeoutMs} ms, the registry timeout)`, { reason: 'in-use' });
      }
      throw err;
    }
    return async () => {
      await this.db.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    await this.db.close().catch(() => undefined);
  }
}

/** An error the server answered with: a SQLSTATE (40001, 55P03) and a severity (pg and PGlite both carry it); EPIPE is not one. */
function hasSqlState(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown } | undefined;
  return typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/** PostgreSQL's epoch of a timestamp (numeric, as text or a number; ±Infinity for ±infinity) as a Date, or ±Infinity. */
function instantOfEpoch(epoch: unknown): Date | number | null {
  if (epoch == null) return null;
  const seconds = Number(epoch);
  if (Number.isNaN(seconds)) return new Date(NaN);
  if (!Number.isFinite(seconds)) return seconds;
  // JavaScript dates end at ±8.64e15 ms (year 275760): beyond, the nearest (read as past year 9999 / before year 1).
  return new Date(Math.max(-8.64e15, Math.min(8.64e15, seconds * 1000)));
}
