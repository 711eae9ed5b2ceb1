import { existsSync } from 'node:fs';
import { BackendUnavailableError, TenantFileError, UsageError, describeError, type BackendReason } from '../errors.js';
import type { Cache } from '../cache/cache.js';
import type { CacheAdmin } from './cache-admin.js';
import { layoutName, manyFilesReason, type YamlTenantSource } from '../tenants/tenant-source.js';
import { shownPath } from '../shown-path.js';
import type { Catalogue } from '../permissions/model.js';
import { subscriptionFromConfig } from '../permissions/subscription-block.js';
import { loadTiersFile, tiersFilePath } from '../permissions/tiers-file.js';
import type { RegistrySpec } from '../registry/registry-spec.js';
import type { Registry } from '../registry/registry-store.js';
import { SCHEMA_VERSION, SqlRegistryStore, hashColumnSql, schemaSql } from '../registry/sql-store.js';
import { round } from './cache-admin.js';
import { keysInDb } from './cache-info.js';
import { TENANT_PLACEHOLDER } from '../keys/key-patterns.js';

/**
 * `pass`: fine; `warn`: works, but an operator should look; `fail`: broken;
 * `unknown`: cannot be told without changing something (write rights on Supabase).
 */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'unknown';

export interface DoctorCheck {
  area: 'redis' | 'registry' | 'tenants';
  check: string;
  status: CheckStatus;
  detail: string;
  /**
   * On a failure: the backend could not be reached or failed (exit 3), as
   * opposed to something found wrong (exit 1).
   */
  unreachable?: boolean;
  /** A backend failure's cause, as a type (a Cluster node given as one server, the login refused, ...). */
  reason?: BackendReason;
  /** The figures behind the detail, for scripts. */
  data?: Record<string, unknown>;
}

export interface DoctorReport {
  /** True when no check failed (warnings are fine). */
  ok: boolean;
  summary: Record<CheckStatus, number>;
  checks: DoctorCheck[];
}

export interface DoctorDeps {
  cache: Cache;
  admin: CacheAdmin;
  source: YamlTenantSource;
  registrySpec: RegistrySpec;
  /** Opens the registry read-only (never creates the embedded one). */
  registry: () => Promise<Registry>;
  /** File names are shown relative to this directory when inside it. @default process.cwd() */
  cwd?: string;
}

/** Oldest Redis the tool works with: UNLINK and MEMORY USAGE came in 4.0. */
const MIN_REDIS_MAJOR = 4;
/** used / maxmemory above this is an eviction risk. */
const MEMORY_WARN_RATIO = 0.9;

type Area = DoctorCheck['area'];
const check = (area: Area, name: string, status: CheckStatus, detail: string, extra: Partial<DoctorCheck> = {}): DoctorCheck => ({
  area, check: name, status, detail, ...extra,
});

/**
 * A failed backend call as a check: refused for lack of rights is a finding;
 * anything else is the backend failing (an untyped error too: a damaged
 * embedded registry must be reported, not crash the doctor).
 */
function backendFailure(area: Area, name: string, err: unknown): DoctorCheck {
  // Refused for lack of rights, or a setting that names no usable registry (exit 2 elsewhere): findings.
  const reason = err instanceof BackendUnavailableError ? { reason: err.reason } : {};
  if ((err instanceof BackendUnavailableError && err.reason === 'no-permission') || err instanceof UsageError) return check(area, name, 'fail', describeError(err), reason);
  return check(area, name, 'fail', describeError(err), { unreachable: true, ...reason });
}

/**
 * Checks Redis, the registry and the tenants directory, changing nothing:
 * no key is written to Redis, nothing to the registry, and an embedded
 * registry that does not exist is reported, never created. The checks run
 * one area after the other: PGlite's start-up holds the event loop, which
 * would otherwise eat into the Redis deadline.
 */
export async function runDoctor(deps: DoctorDeps): Promise<DoctorReport> {
  const checks = [
    ...(await redisChecks(deps.cache, deps.admin)),
    ...(await registryChecks(deps.registrySpec, deps.registry, deps.cache.configured)),
    ...tenantChecks(deps.source, deps.cwd ?? process.cwd()),
  ];
  const summary: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, unknown: 0 };
  for (const c of checks) summary[c.status]++;
  return { ok: summary.fail === 0, summary, checks };
}

// ---------------------------------------------------------------- Redis

const num = (v: string | undefined) => (v === undefined || v === '' ? 0 : Number(v));
const mb = (bytes: number) => `${round(bytes / 1048576, 1)} MB`;

/**
 * Reachable, version, memory and policy, evictions, the tool's key families, and the right to delete: reads
 * only (PING, INFO, a counting SCAN), and one UNLINK of a key that does not exist (it changes nothing).
 */
export async function redisChecks(cache: Cache, admin: CacheAdmin): Promise<DoctorCheck[]> {
  if (!cache.configured) {
    return [check('redis', 'configured', 'warn', 'no Redis configured (REDIS_URL, a Cluster or a Sentinel): the cache is off and commands fall back')];
  }
  const reach = await cache.attempt(async (store) => ({ ms: await store.ping(), target: store.target, mode: store.mode }));
  if (reach.status !== 'done') {
    return [reach.status === 'failed' ? backendFailure('redis', 'reachable', reach.error) : check('redis', 'reachable', 'warn', 'not configured')];
  }
  const { ms, target, mode } = reach.value;
  const checks = [check('redis', 'reachable', 'pass', `${target} (${mode}), PING ${round(ms, 2)} ms`, { data: { target, mode, ping_ms: round(ms, 3) } })];

  const info = await cache.attempt((store) => store.info());
  if (info.status === 'failed') {
    checks.push(info.error.reason === 'no-permission'
      ? check('redis', 'server', 'warn', `INFO refused (${describeError(info.error)}): version and memory not checked`)
      : backendFailure('redis', 'server', info.error));
  } else if (info.status === 'done') {
    checks.push(...serverChecks(info.value));
  }

  checks.push(await deleteRight(cache, admin));

  const counted = await cache.attempt((store) => admin.countFamilyKeys(store));
  if (counted.status === 'failed') {
    checks.push(counted.error.reason === 'no-permission'
      ? check('redis', 'key families', 'warn', `cannot count keys: ${describeError(counted.error)}`)
      : backendFailure('redis', 'key families', counted.error));
  } else if (counted.status === 'done') {
    const { families, moving } = counted.value;
    const tool = Object.values(families).reduce((a, b) => a + b, 0);
    // The tool's database only (the URL's /N), where the families were counted.
    const total = info.status === 'done' ? keysInDb(info.value, cache.spec?.db ?? 0) : undefined;
    const present = Object.entries(families).filter(([, n]) => n > 0).map(([f, n]) => `${f} ${n}`);
    const data = { tool_keys: tool, total_keys: total ?? null, families };
    if (tool > 0) {
      checks.push(check('redis', 'key families', 'pass', `${tool} key${tool === 1 ? '' : 's'} of the tool's families${total !== undefined ? ` (of ${total})` : ''}: ${present.join(', ')}`, { data }));
    } else if (total) {
      // Data in Redis, none of it in a family the tool knows: the services probably use other key names.
      checks.push(check('redis', 'key families', 'warn', `none of the ${total} keys belongs to the tool's key families: do the services use other key names? declare them under "families" in tenantctl.config.yaml`, { data }));
    } else {
      checks.push(check('redis', 'key families', 'pass', 'no keys yet (an empty cache)', { data }));
    }
    if (moving?.length) {
      checks.push(check('redis', 'resharding', 'warn', `${moving.length} Cluster slot${moving.length === 1 ? '' : 's'} moved between masters while counting (a resharding under way): the counts above may be off by their keys`, { data: { moving_slots: moving } }));
    }
  }
  return checks;
}

/**
 * Whether this user may delete the cache's keys, as invalidations do: an ACL user who may read but not
 * UNLINK (+@all -unlink, or -@write) passed every check, then every invalidation was refused. Tried on a key
 * that does not exist in each family's key space (a user allowed only some families' keys, ~tenant_config:*,
 * passed on the first family's probe alone, then invalidate-all was refused), with a tenant part no id can
 * be, so no service ever reads it. Nothing is deleted: the keys do not exist.
 */
async function deleteRight(cache: Cache, admin: CacheAdmin): Promise<DoctorCheck> {
  const unique = `tenantctl doctor probe ${process.pid} ${Date.now()} ${Math.random().toString(36).slice(2)}`;
  const probes = admin.keys.families.map((f) => ({ family: f.name, key: f.patterns[0].replace(TENANT_PLACEHOLDER, unique).replaceAll('*', '') }));
  const refused: Array<{ family: string; error: BackendUnavailableError }> = [];
  for (const probe of probes) {
    const tried = await cache.attempt((store) => store.unlink([probe.key]));
    if (tried.status === 'not-configured') return check('redis', 'delete', 'warn', 'not configured');
    if (tried.status === 'failed' && !tried.error.refused) return backendFailure('redis', 'delete', tried.error);
    if (tried.status === 'failed') refused.push({ family: probe.family, error: tried.error });
  }
  if (!refused.length) return check('redis', 'delete', 'pass', 'keys of every family may be deleted (UNLINK tried on absent keys)');
  const said = describeError(refused[0].error);
  if (refused.length === probes.length) return check('redis', 'delete', 'fail', `${said}: every invalidation will be refused`);
  const names = refused.map((r) => r.family);
  return check('redis', 'delete', 'fail', `${said}: keys of ${names.length === 1 ? 'family' : 'families'} ${names.join(', ')} may not be deleted, so their invalidations will be refused`, { data: { refused_families: names } });
}

/** Version, memory, eviction policy and evictions from INFO of every master (a Cluster's are summed; the worst master decides). */
function serverChecks(infos: Array<Record<string, string>>): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  // A replica given as the server (it passed every check, then every invalidation was refused READONLY).
  const replicas = infos.filter((i) => i.role === 'slave');
  if (replicas.length) {
    const of = [...new Set(replicas.map((i) => `${i.master_host}:${i.master_port}`))].join(', ');
    checks.push(check('redis', 'role', 'fail', `a read-only replica (of ${of}): reads work, every write (an invalidation, --warm) is refused`, { data: { replica_of: of } }));
  }
  const versions = [...new Set(infos.map((i) => i.redis_version ?? 'unknown'))];
  const major = Math.min(...versions.map((v) => Number.parseInt(v, 10)).filter((n) => !Number.isNaN(n)));
  if (Number.isFinite(major) && major < MIN_REDIS_MAJOR) {
    checks.push(check('redis', 'version', 'fail', `Redis ${versions.join(', ')}: tenantctl needs ${MIN_REDIS_MAJOR}.0 or newer (UNLINK, MEMORY USAGE)`, { data: { versions } }));
  } else {
    checks.push(check('redis', 'version', 'pass', `Redis ${versions.join(', ')}${infos.length > 1 ? ` on ${infos.length} masters` : ''}`, { data: { versions } }));
  }

  const used = infos.reduce((a, i) => a + num(i.used_memory), 0);
  const unlimited = infos.some((i) => num(i.maxmemory) === 0);
  // As cache-info: one master without a limit makes the whole unlimited (its data summed the limited ones only).
  const max = unlimited ? 0 : infos.reduce((a, i) => a + num(i.maxmemory), 0);
  const ratio = (i: Record<string, string>) => (num(i.maxmemory) ? num(i.used_memory) / num(i.maxmemory) : 0);
  const fullest = infos.reduce((a, i) => (ratio(i) > ratio(a) ? i : a), infos[0]);
  const worst = ratio(fullest);
  const memory = { used_bytes: used, max_bytes: max, used_ratio: max ? round(used / max, 4) : null };
  const share = `${mb(used)} used of ${mb(max)} (${round(worst * 100)}% on the fullest master)`;
  // Full under noeviction, every cache write is refused now (a review: "close to maxmemory, keys will be
  // evicted", a warning and exit 0, while test-redis failed OOM on the same server).
  const noEviction = fullest?.maxmemory_policy === 'noeviction';
  // A full master under noeviction fails whatever the others are (a review: one unlimited master hid it, a warning).
  if (worst >= 1 && noEviction) {
    const said = infos.length > 1
      ? `a master is full (${mb(num(fullest.used_memory))} used of ${mb(num(fullest.maxmemory))}), and the policy is noeviction: every cache write to its slots is refused (OOM) now`
      : `${share}: full, and the policy is noeviction: every cache write is refused (OOM) now`;
    checks.push(check('redis', 'memory', 'fail', said, { data: memory }));
  } else if (unlimited) {
    const none = infos.filter((i) => num(i.maxmemory) === 0).length;
    const where = infos.length > 1 && none < infos.length ? ` on ${none} of ${infos.length} masters` : '';
    checks.push(check('redis', 'memory', 'warn', `${mb(used)} used, maxmemory unlimited (0)${where}: Redis grows until the host runs out of memory; set maxmemory`, { data: memory }));
  } else if (worst >= 1) {
    checks.push(check('redis', 'memory', 'warn', `${share}: at maxmemory, keys are being evicted`, { data: memory }));
  } else if (worst > MEMORY_WARN_RATIO) {
    checks.push(check('redis', 'memory', 'warn', `${share}: close to maxmemory, ${noEviction ? 'then cache writes are refused (OOM)' : 'keys will be evicted'}`, { data: memory }));
  } else {
    checks.push(check('redis', 'memory', 'pass', `${mb(used)} used of ${mb(max)} (${round((used / max) * 100)}%)`, { data: memory }));
  }

  const policies = [...new Set(infos.map((i) => i.maxmemory_policy ?? 'unknown'))];
  if (policies.includes('noeviction')) {
    checks.push(check('redis', 'eviction policy', 'warn', 'noeviction: when memory is full, cache writes fail (OOM) instead of evicting old entries; use allkeys-lru or volatile-lru', { data: { policies } }));
  } else {
    checks.push(check('redis', 'eviction policy', 'pass', policies.join(', '), { data: { policies } }));
  }

  const evicted = infos.reduce((a, i) => a + num(i.evicted_keys), 0);
  checks.push(evicted > 0
    ? check('redis', 'evictions', 'warn', `${evicted} keys evicted since the server started: maxmemory is too small for what is cached`, { data: { evicted_keys: evicted } })
    : check('redis', 'evictions', 'pass', 'no keys evicted', { data: { evicted_keys: 0 } }));
  return checks;
}

// ---------------------------------------------------------------- registry

/** The tables (or sequences) schema.sql creates, read from it so these lists never fall behind. */
function schemaObjects(kind: 'TABLE' | 'SEQUENCE'): string[] {
  return [...schemaSql().matchAll(new RegExp(`CREATE ${kind} IF NOT EXISTS\\s+(\\w+)`, 'gi'))].map((m) => m[1]);
}
const schemaTables = () => schemaObjects('TABLE');

/** The rights tenantctl's writes use, per table (it never deletes a tenant row), and USAGE of its sequences (nextval). */
function writeRights(): Array<{ object: string; privilege: string }> {
  return [
    ...schemaTables().flatMap((t) => (t === 'tenants' ? ['INSERT', 'UPDATE'] : ['INSERT', 'UPDATE', 'DELETE']).map((p) => ({ object: t, privilege: p }))),
    ...schemaObjects('SEQUENCE').map((q) => ({ object: q, privilege: 'USAGE' })),
  ];
}

/** Reachable, schema present and current, read rights, write rights (without writing), invalidations still owed. */
export async function registryChecks(spec: RegistrySpec, open: () => Promise<Registry>, redisConfigured = true): Promise<DoctorCheck[]> {
  let store: Registry;
  try {
    store = await open();
  } catch (err) {
    if (err instanceof BackendUnavailableError && err.reason === 'not-configured' && spec.kind === 'embedded') {
      return [check('registry', 'reachable', 'warn', `no registry yet at ${spec.dir}; migrate-yaml creates it`)];
    }
    return [backendFailure('registry', 'reachable', err)];
  }
  const checks = [check('registry', 'reachable', 'pass', store.description)];
  const sql = store instanceof SqlRegistryStore ? store : undefined;

  let missing: string[] = [];
  try {
    if (sql) {
      const schema = await sqlSchemaCheck(sql);
      missing = schema.missing;
      checks.push(schema.check);
    } else {
      checks.push(await probeSchemaCheck(store));
    }
  } catch (err) {
    checks.push(backendFailure('registry', 'schema', err));
  }
  const schemaFailed = checks[checks.length - 1].status === 'fail';

  try {
    const tenants = await store.listActiveTenants();
    const migrated = tenants.filter((t) => t.config_source === 'database').length;
    checks.push(check('registry', 'read', 'pass', missing.includes('tenants')
      ? 'no tenants table yet'
      : `${tenants.length} active tenants (${migrated} migrated)`, { data: { active: tenants.length, migrated } }));
  } catch (err) {
    checks.push(backendFailure('registry', 'read', err));
  }

  if (sql) {
    try {
      checks.push(await sqlWriteRights(sql));
    } catch (err) {
      checks.push(backendFailure('registry', 'write', err));
    }
  } else {
    checks.push(check('registry', 'write', 'unknown', 'PostgREST cannot tell without writing; the service-role key bypasses row-level security'));
  }

  // The outbox of a schema found broken is that check's finding already.
  if (schemaFailed) return checks;
  try {
    const owed = await store.pendingInvalidations(1000);
    checks.push(owed.length
      ? check('registry', 'outbox', 'warn', `${owed.length === 1000 ? 'at least 1000' : owed.length} cache invalidations owed by earlier writes (Redis was down or not configured, or a run was killed): ${redisConfigured ? 'run' : 'configure the services\' Redis (REDIS_URL, a Cluster or a Sentinel), then run'} \`tenantctl invalidate --pending\``, { data: { owed: owed.length } })
      : check('registry', 'outbox', 'pass', 'none', { data: { owed: 0 } }));
  } catch (err) {
    checks.push(backendFailure('registry', 'outbox', err));
  }
  return checks;
}

/** PostgreSQL and PGlite: which of schema.sql's tables and tenantctl's column exist, and the recorded version, from the catalog. */
async function sqlSchemaCheck(store: SqlRegistryStore): Promise<{ check: DoctorCheck; missing: string[] }> {
  const tables = schemaTables();
  const { rows } = await store.guard('checking the schema', () => store.db.query(
    `SELECT t.name, to_regclass(t.name) IS NOT NULL AS present
       FROM unnest($1::text[]) AS t(name)
     UNION ALL
     SELECT 'tenants.tenantctl_hash', ${hashColumnSql('tenants')}
     UNION ALL
     SELECT 'business_subscriptions.tenantctl_hash', to_regclass('business_subscriptions') IS NULL OR ${hashColumnSql('business_subscriptions')}`,
    [tables],
  ));
  const missing = rows.filter((r) => !r.present).map((r) => String(r.name));
  const state = await store.schemaState();
  const data = { version: state.version, expected: SCHEMA_VERSION, missing };
  if (state.current) return { check: check('registry', 'schema', 'pass', `current (version ${state.version})`, { data }), missing };
  // Writers apply schema.sql themselves when they may create tables; the write check says whether they may.
  const detail = missing.length
    ? `${missing.length === tables.length + 1 ? 'not applied' : `missing ${missing.join(', ')}`}: the first write (migrate-yaml) applies schema.sql`
    : `version ${state.version ?? 'not recorded'}, this tenantctl brings ${SCHEMA_VERSION}: the next write (migrate-yaml) upgrades it`;
  return { check: check('registry', 'schema', 'warn', detail, { data }), missing };
}

/**
 * Supabase: opening it probed `tenants`; its ensureSchema (which only reads there: the schema is applied in
 * the SQL editor) probes tenantctl's column and outbox, and reading the other tables probes them (no
 * version is recorded there).
 */
async function probeSchemaCheck(store: Registry): Promise<DoctorCheck> {
  try {
    await store.ensureSchema();
    await store.getCatalogue();
    await store.getSubscriptions(['tenantctl-doctor-probe']);
    await store.pendingInvalidations(1);
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    // The tenants table answered a moment ago: a table that does not is a missing table, not a network failure.
    return check('registry', 'schema', 'fail', `${describeError(err)}; apply \`tenantctl schema\` in the SQL editor`);
  }
  return check('registry', 'schema', 'pass', "tenantctl's tables present (Supabase records no schema version)");
}

/** PostgreSQL and PGlite: has_table_privilege for every write tenantctl does, and CREATE where schema.sql still has to run. Writes nothing. */
async function sqlWriteRights(store: SqlRegistryStore): Promise<DoctorCheck> {
  const wanted = writeRights();
  const { rows } = await store.guard('checking write rights', () => store.db.query(
    `SELECT w.tbl, w.priv,
            CASE WHEN to_regclass(w.tbl) IS NULL THEN NULL
                 WHEN w.priv = 'USAGE' THEN has_sequence_privilege(w.tbl, 'USAGE')
                 ELSE has_table_privilege(to_regclass(w.tbl), w.priv) END AS granted
       FROM unnest($1::text[], $2::text[]) AS w(tbl, priv)`,
    [wanted.map((w) => w.object), wanted.map((w) => w.privilege)],
  ));
  const who = await store.guard('checking write rights', () => store.db.query(
    `SELECT current_user AS who,
            has_schema_privilege(current_schema(), 'CREATE') AS can_create,
            to_regclass('tenants') IS NULL
              OR ${hashColumnSql('tenants')}
              OR pg_has_role((SELECT relowner FROM pg_class WHERE oid = to_regclass('tenants')), 'USAGE') AS can_add_column`,
  ));
  const { who: user, can_create: canCreate, can_add_column: canAddColumn } = who.rows[0] as { who: string; can_create: boolean; can_add_column: boolean };
  const denied = rows.filter((r) => r.granted === false).map((r) => `${r.priv} on ${r.tbl}`);
  const absent = [...new Set(rows.filter((r) => r.granted === null).map((r) => String(r.tbl)))];
  const problems = denied.length && denied.length === rows.length ? ['every write right (INSERT, UPDATE, DELETE) on tenantctl\'s tables'] : groupRights(rows);
  if (absent.length && !canCreate) problems.push(`CREATE in the schema (to create ${absent.join(', ')})`);
  if (!canAddColumn) problems.push('ownership of tenants (to add the tenantctl_hash column)');
  const data = { user, denied, missing_tables: absent, can_create: canCreate };
  if (problems.length) return check('registry', 'write', 'fail', `${user} lacks ${problems.join(', ')}: commands that write will fail`, { data });
  return check('registry', 'write', 'pass', `${user} may write every table tenantctl uses${absent.length ? ' and create the missing ones' : ''} (has_table_privilege; nothing written)`, { data });
}

/** Denied rights as "INSERT, UPDATE on tenants, tenantctl_meta": tables with the same denied rights together. */
function groupRights(rows: Record<string, unknown>[]): string[] {
  const byTable = new Map<string, string[]>();
  for (const r of rows) if (r.granted === false) byTable.set(String(r.tbl), [...(byTable.get(String(r.tbl)) ?? []), String(r.priv)]);
  const byRights = new Map<string, string[]>();
  for (const [table, rights] of byTable) byRights.set(rights.join(', '), [...(byRights.get(rights.join(', ')) ?? []), table]);
  return [...byRights].map(([rights, tables]) => `${rights} on ${tables.join(', ')}`);
}

// ---------------------------------------------------------------- tenants directory

/** Every file parses, every client.id matches its file name, no file is skipped for a bad name. */
export function tenantChecks(source: YamlTenantSource, cwd: string): DoctorCheck[] {
  const shown = (file: string) => shownPath(file, cwd);
  let ids: string[];
  let badNames: string[];
  let ambiguous: Array<{ id: string; files: string[] }>;
  let registryOnly: string[];
  try {
    ({ ids, invalidFiles: badNames, ambiguous, registryOnlyFiles: registryOnly } = source.listing());
  } catch (err) {
    if (err instanceof UsageError) return [check('tenants', 'directory', 'fail', describeError(err))];
    throw err;
  }
  if (!existsSync(source.dir)) {
    return [check('tenants', 'directory', 'warn', `no tenants directory at ${source.dir} (only registry tenants then)`)];
  }
  const checks = [check('tenants', 'directory', 'pass', `${shown(source.dir)}: ${ids.length} tenant file${ids.length === 1 ? '' : 's'}`, { data: { dir: source.dir, files: ids.length } })];
  let failed = 0;
  const fail = (detail: string, file: string | null, line: number | null = null) => {
    failed++;
    checks.push(check('tenants', 'file', 'fail', detail, { data: { file, line } }));
  };
  const failFile = (err: TenantFileError) => fail(`${shown(err.file)}${err.line ? `:${err.line}` : ''}: ${err.detail}`, err.file, err.line ?? null);
  // The catalogue subscriptions are checked against, when the directory has one (else the registry's, not read here).
  let catalogue: Catalogue | undefined;
  const tiersFile = tiersFilePath(source.dir);
  if (tiersFile) {
    try {
      catalogue = loadTiersFile(tiersFile);
    } catch (err) {
      if (!(err instanceof TenantFileError)) throw err;
      failFile(err);
    }
  }
  for (const a of ambiguous) fail(manyFilesReason(a.id, a.files.map(shown)), a.files[0]);
  for (const id of ids) {
    try {
      const doc = source.load(id);
      // Listed but unreadable (a link to nothing): migrate-yaml fails it, so doctor does.
      if (!doc) {
        fail(source.whyNoFile(id), null);
        continue;
      }
      for (const w of doc.warnings) checks.push(check('tenants', 'file', 'warn', w));
      // A subscription block is checked against tiers.yaml as migrate-yaml checks it (a tier not in it fails
      // there); a yaml_only tenant is never migrated, so never checked.
      if (doc.hasSubscription && !doc.yamlOnly && catalogue) subscriptionFromConfig(id, doc.config, catalogue, doc);
    } catch (err) {
      if (!(err instanceof TenantFileError)) throw err;
      failFile(err);
    }
  }
  for (const file of registryOnly) {
    checks.push(check('tenants', 'file', 'warn', `${shown(file)}: ids starting "${source.registryOnlyPrefix}" live in the registry alone, so the file is never read`, { data: { file } }));
  }
  for (const file of badNames) {
    // `<id>/client.yaml`: the folder's name is the id (as migrate-yaml says it).
    const what = layoutName(file).folder ? 'folder' : 'file';
    fail(`${shown(file)}: the ${what} name is not a valid tenant id (letters, digits, _, -, ., at most 128), so the file is never read`, file);
  }
  if (ids.length && !failed) checks.push(check('tenants', 'files', 'pass', `all ${ids.length} files parse; every client.id matches its file name`));
  return checks;
}
