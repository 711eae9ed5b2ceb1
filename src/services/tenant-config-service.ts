import { REGISTRY_RETRY_MS } from '../registry/registry-retry.js';
import { BackendUnavailableError, NotFoundError, PartialFailureError, TenantFileError, UsageError, describeError } from '../errors.js';
import { isUnusableRegistry } from '../registry/registry-spec.js';
import { parseId } from '../keys/ids.js';
import { TENANT_CONFIG_FAMILY, type KeySpace } from '../keys/key-families.js';
import type { Cache } from '../cache/cache.js';
import { noTenantsTable, type RegistryStore, type TenantRow } from '../registry/registry-store.js';
import type { YamlTenantSource, TenantDocument } from '../tenants/tenant-source.js';
import { configProblem, type LossyNumberAt, type StrippedSecretAt } from '../tenants/tenant-file.js';
import { isMap } from '../tenants/plain-object.js';
import { rowFromConfig } from '../tenants/registry-mapping.js';
import { chooseStoredConfig } from '../tenants/config-precedence.js';
import { isSecretKey, looksLikeSecretKey, maskCachedConfig, maskSecrets, resolveAbsentSecrets, stripSecrets, unresolvedSecrets } from '../tenants/secrets.js';
import { substitute, substituteString } from '../tenants/substitution.js';
import type { DrainResult, InvalidationOutbox } from './invalidation-outbox.js';
import { tenantVersion } from '../registry/content-hash.js';
import { integerKeyAmongOthers, NotServicesJson, pythonFloat } from '../json/services-json.js';
import type { Yaml11Difference } from '../yaml/yaml11.js';
import { FreshFlights } from './fresh-flights.js';

export type ConfigSource = 'cache' | 'database' | 'yaml';

/** A tenant config as an application reads it. */
export interface TenantConfig {
  id: string;
  /** Where this answer came from. */
  source: ConfigSource;
  /** The config with `_meta.source`, `${VAR}` substituted and absent secrets resolved from the environment. */
  config: Record<string, unknown>;
  /** Environment variables referenced but unset. */
  unsetVariables: string[];
  /** With the `resolved` populate policy: whether tenant_config:<id> was written. */
  warmed?: boolean;
}

/** What stored() found, with what warming needs: the row as read, and a YAML answer's first YAML 1.1 difference. */
type StoredRead = StoredConfig & { asRead?: RowAsRead; readsOtherwise?: Yaml11Difference; wholeFloat?: LossyNumberAt; strippedLiteral?: StrippedSecretAt };

/** A config in its stored form (references, no secrets) and where it came from. */
export interface StoredConfig {
  source: ConfigSource;
  config: Record<string, unknown>;
  yamlOnly?: boolean;
  /** A YAML answer given because the registry could not be read: never cached nor warmed. */
  fallback?: boolean;
  /** A YAML answer's file warnings (a literal secret stripped, a YAML 1.1 reading), file:line each. */
  fileWarnings?: readonly string[];
}

/** A row's whole-valued float (see TenantRow.config_whole_float) as a lossy number of the config rebuilt from it. */
const registryWholeFloat = (row: TenantRow): LossyNumberAt | undefined => {
  const f = row.config_whole_float;
  // tenant_config's keys are the rebuilt config's (configFromRow keeps them at the top level).
  return f && { kind: 'whole-float', path: f.path, written: f.written, stored: String(Number(f.written)) };
};

/** What a read that missed the cache hands on to the rest of it (TenantConfigService.readBelow). */
interface BelowCache {
  key: string;
  /** A copy of the source's parse for a caller that owns its result; as it is for a shared read. */
  own: (config: Record<string, unknown>) => Record<string, unknown>;
}

/** How the services and JSON from here write a whole float written `text` in a file: "as 1.0 and JSON from here as 1". */
function wholeFloatAsWritten(text: string | undefined): string {
  const n = Number(text);
  return Number.isFinite(n) ? `as ${pythonFloat(n)} and JSON from here as ${n}` : 'with its .0 and JSON from here without';
}

/** A yaml_only tenant's answer: its file, never the cache or the registry. */
const yamlOnlyAnswer = (doc: Readonly<TenantDocument>, own: (config: Record<string, unknown>) => Record<string, unknown>): StoredRead => ({
  source: 'yaml', config: withMeta(own(doc.config), 'yaml', { yaml_only: true }), yamlOnly: true, fileWarnings: doc.warnings,
});

/** A read below the cache, and whether it warmed the cache. */
interface BelowRead {
  stored: StoredRead;
  warmed?: boolean;
}

/** The registry row a config was built from, as read (see rowPrint). */
interface RowAsRead {
  print: string;
}

/**
 * What of a row a cached config reflects: its content (tenantVersion) and the `_meta` fields a
 * database config carries (status, plan, updated_at): a suspension that changes only the status
 * counts as a change. "none" when there is no row.
 */
const rowPrint = (row: TenantRow | undefined): string =>
  row ? JSON.stringify([tenantVersion(row), row.status ?? null, row.plan ?? null, row.updated_at ?? null]) : 'none';

export interface TenantListing {
  id: string;
  name: string;
  /** `database` when migrated, `yaml` when only in YAML (or the registry row is not migrated). */
  source: 'database' | 'yaml';
  /** The registry row's status; null for a tenant read from YAML (it has none). */
  status: string | null;
  yamlOnly: boolean;
}

/**
 * What a read does on a cache miss:
 * - `resolved` (the library's default): caches exactly what the services would
 *   (secrets resolved from this environment, `_meta: {source}`), and nothing
 *   when a secret does not resolve or the services would write other bytes
 *   (get-config --warm). The services use a cache hit as it is: whatever is
 *   written to their key must be their own entry, or nothing.
 * - `stored`: caches the stored form (`${VAR}` references, no secret values,
 *   `_meta` with the row's status): only for a cache no service reads as it
 *   is (every reader resolves on read, as the library does);
 * - `none`: writes nothing (the CLI's default).
 */
export type PopulatePolicy = 'stored' | 'resolved' | 'none';

export interface TenantConfigServiceDeps {
  cache: Cache;
  /** Opens the registry on first use (so a cache hit never pays for it); never creates or changes it. */
  registry: () => Promise<RegistryStore>;
  /** The registry for writing (created if embedded, schema made current). */
  writableRegistry: () => Promise<RegistryStore>;
  outbox: InvalidationOutbox;
  source: YamlTenantSource;
  keys: KeySpace;
  ttl: number;
  /** @default 'resolved' */
  populate?: PopulatePolicy;
  env?: NodeJS.ProcessEnv;
  warn?: (message: string) => void;
  /**
   * Throws when the owner was closed (the library's Tenantctl.close()): a call made after it ends at once,
   * whatever it needs. (A registry call the close cuts short fails as the close by itself: the owner hands
   * out a guarded registry.)
   */
  closed?: () => void;
}

/**
 * Tenant configuration: cache -> registry -> YAML (DESIGN.md). What it
 * stores, in the registry or the cache, never holds a secret value: only
 * `${VAR}` references, resolved on read.
 */
export class TenantConfigService {
  private readonly env: NodeJS.ProcessEnv;
  private readonly warn: (message: string) => void;
  /** Until when the registry counts as down (a read failed): answers fall back to YAML, never cached. */
  private registryDownUntil = 0;
  private get registryDown(): boolean {
    return Date.now() < this.registryDownUntil;
  }
  /**
   * Until when no registry is there to read (none created yet, or a database without the tenants table):
   * asked again after the retry window, as an outage is, so a long-lived program sees one its own
   * migration made (a review: it answered from YAML for the rest of its life). Said once.
   */
  private registryAbsentUntil = 0;
  private get registryAbsent(): boolean {
    return Date.now() < this.registryAbsentUntil;
  }
  private saidRegistryAbsent = false;
  private markRegistryAbsent(note: string): void {
    this.registryAbsentUntil = Date.now() + REGISTRY_RETRY_MS;
    if (this.saidRegistryAbsent) return;
    this.saidRegistryAbsent = true;
    this.warn(note);
  }

  constructor(private readonly deps: TenantConfigServiceDeps) {
    this.env = deps.env ?? process.env;
    this.warn = deps.warn ?? (() => undefined);
  }

  /** The stored form (references, no secrets) with its source, or NotFoundError. */
  async getStored(id: string, options: { noCache?: boolean } = {}): Promise<StoredConfig> {
    const { asRead: _asRead, readsOtherwise: _r, wholeFloat: _w, strippedLiteral: _l, ...found } = await this.stored(id, options, false);
    if (found.source === 'cache') markCacheHit(found.config);
    return found;
  }

  /**
   * getStored, except that a cache hit comes back as stored (not yet marked
   * by markCacheHit), and with `shared` it is the cache's shared parse, or
   * below its top level the tenant source's parsed document: the caller
   * copies it before changing or handing on anything (get() substitutes into
   * a fresh copy).
   */
  private async stored(id: string, options: { noCache?: boolean }, shared: boolean): Promise<StoredRead> {
    const top = await this.readTop(id, options, shared);
    return 'answer' in top ? top.answer : this.readBelow(id, options, top.below);
  }

  /**
   * A read down to the cache: a yaml_only tenant's answer, or a cache hit (`answer`); else what the rest
   * of the read (readBelow) needs.
   */
  private async readTop(id: string, options: { noCache?: boolean }, shared: boolean): Promise<{ answer: StoredRead } | { below: BelowCache }> {
    parseId(id);
    // Closed (the library's close()): every call ends, a yaml_only tenant's too (it needs neither backend).
    this.deps.closed?.();
    const { source, keys, cache } = this.deps;
    const key = keys.key(TENANT_CONFIG_FAMILY, id);

    const { doc, fileError } = this.peekDoc(id);
    // The source keeps the parsed document: a caller that owns its result gets a copy; a shared read (get,
    // whose substitution copies everything) only a new top level, which withMeta makes.
    const own = (config: Record<string, unknown>) => (shared ? config : structuredClone(config));
    if (doc?.yamlOnly) return { answer: yamlOnlyAnswer(doc, own) };
    // Listed yaml-only with no readable file: the services answer from YAML alone (nothing), never the cache or registry.
    if (source.listedYamlOnly(id)) {
      if (fileError) throw fileError;
      throw new NotFoundError(`tenant ${id} is YAML-only (yaml_only_tenants) and has no file in ${source.dir}`);
    }

    if (!options.noCache) {
      const hit = await (shared ? cache.readJsonShared(key) : cache.readJson(key));
      const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'string' ? 'a string' : typeof v);
      const meta = hit && typeof hit === 'object' ? (hit as Record<string, unknown>)._meta : undefined;
      // A _meta that is no mapping is no entry of the services (theirs always holds one): a string was shown
      // spread letter by letter ("_meta": {"0": "d", ...}).
      const metaOk = meta === undefined || (typeof meta === 'object' && meta !== null && !Array.isArray(meta));
      if (hit && typeof hit === 'object' && !Array.isArray(hit) && metaOk) {
        return { answer: { source: 'cache', config: hit as Record<string, unknown> } };
      }
      // JSON, but no config (a list, a number): a miss, said as a value that is not JSON is.
      if (hit !== undefined) cache.malformed(key, metaOk ? `JSON that is not a config object (${kind(hit)})` : `a config whose _meta is not a mapping (${kind(meta)})`);
    }
    return { below: { key, own } };
  }

  /**
   * The tenant's file as the source has it (a malformed one only matters if we end up needing YAML).
   * peek: no copy and no stat more than once a second, since a cache hit needs only yaml_only.
   */
  private peekDoc(id: string): { doc?: Readonly<TenantDocument>; fileError?: TenantFileError } {
    try {
      return { doc: this.deps.source.peek(id) };
    } catch (err) {
      if (!(err instanceof TenantFileError)) throw err;
      return { fileError: err };
    }
  }

  /** The rest of a read, below the cache: the registry, then YAML; cached with the `stored` policy. */
  private async readBelow(id: string, options: { noCache?: boolean }, below: BelowCache): Promise<StoredRead> {
    const { source, ttl } = this.deps;
    const { key, own } = below;
    // The file as it is now, not as the call that began a shared read saw it (a later call may share it).
    const { doc, fileError } = this.peekDoc(id);
    if (doc?.yamlOnly) return yamlOnlyAnswer(doc, own);
    // Whether this read went without the registry because it is down: decided here, once, not by reading
    // the clock again later (the down window may end between two awaits).
    const { row: registryRow, down, asked } = await this.readRegistry(id);
    const choice = chooseStoredConfig(registryRow, doc, fileError);
    if (choice.source === 'file-error') throw choice.error;
    let found: { source: ConfigSource; config: Record<string, unknown> } | undefined;
    if (choice.source === 'database') {
      const { row } = choice;
      found = { source: 'database', config: withMeta(choice.config, 'database', { status: row.status, plan: row.plan, updated_at: row.updated_at }) };
    } else if (choice.source === 'yaml') found = { source: 'yaml', config: withMeta(own(choice.config), 'yaml') };
    if (!found && down) {
      // It may well be in the registry: that is not a negative answer.
      // With the failure that made it so: its reason (refused for rights is not "unreachable") and cause.
      const why = this.registryError;
      // A registry-only id was never looked for in YAML: not said as if it had been.
      const yaml = source.allows(id) ? 'is not in YAML' : `is registry-only (ids starting "${source.registryOnlyPrefix}")`;
      throw new BackendUnavailableError('registry', `tenant ${id} ${yaml} and the registry could not be read`, { cause: why, reason: why?.reason ?? 'unreachable' });
    }
    if (!found) {
      const where = source.allows(id) ? 'registry or YAML' : `registry (ids starting "${source.registryOnlyPrefix}" are registry-only)`;
      // Run from the wrong directory, the answer is not "no such tenant" but "nothing here to look in".
      const nowhere = source.allows(id) && !source.checkDir();
      // A file that is a link to nothing is listed (ls shows it): said, not "not found" alone.
      const link = source.allows(id) && !nowhere ? source.brokenLink(id) : undefined;
      throw new NotFoundError(
        `tenant ${id} not found in the ${where}${nowhere ? `: there is no tenants directory at ${source.dir}` : link ? `: ${link}` : ''}`,
        nowhere ? { reason: 'no-tenants-dir' } : undefined,
      );
    }
    // A YAML answer given because the registry is unreachable is a fallback, not what the services would
    // cache: the registry may hold a newer config. Answered, never cached.
    const fallback = found.source === 'yaml' && down;
    // Nothing to compare with when no registry was asked (none created yet: a YAML-only project).
    const asRead: RowAsRead | undefined = asked ? { print: rowPrint(registryRow) } : undefined;
    if (!options.noCache && !fallback && (this.deps.populate ?? 'resolved') === 'stored') await this.cacheConfig(id, key, found.config, ttl, asRead);
    const fileWarnings = found.source === 'yaml' ? doc?.warnings : undefined;
    const readsOtherwise = found.source === 'yaml' ? doc?.yaml11Differences[0] : undefined;
    const wholeFloat = found.source === 'yaml' ? doc?.lossyNumbers?.find((l) => l.kind === 'whole-float') : choice.source === 'database' ? registryWholeFloat(choice.row) : undefined;
    const strippedLiteral = found.source === 'yaml' ? doc?.strippedSecrets.find((x) => x.kind === 'literal-removed') : undefined;
    return {
      ...found, ...(fallback && { fallback }), ...(fileWarnings?.length && { fileWarnings }), ...(asRead && { asRead }), ...(readsOtherwise && { readsOtherwise }),
      ...(wholeFloat && { wholeFloat }), ...(strippedLiteral && { strippedLiteral }),
    };
  }

  /**
   * Caches a config built from the registry row as read (`asRead`; undefined when there was no registry
   * to ask), taken back if the row changed meanwhile: a migrate-yaml or a service's write that committed
   * and invalidated between this read and this write must not find its old config back in the cache.
   */
  private async cacheConfig(
    id: string,
    key: string,
    config: Record<string, unknown>,
    ttl: number,
    asRead: RowAsRead | undefined,
    refused: (err: NotServicesJson) => void = () => undefined,
  ): Promise<boolean> {
    try {
      return await this.deps.cache.writeJsonIfCurrent(key, config, ttl, async () => {
        if (!asRead) return true;
        const registry = await this.readableRegistry('this answer is not cached');
        return !!registry && rowPrint(await registry.getTenant(id)) === asRead.print;
      });
    } catch (err) {
      // A value the services would write as other text (an integer past 2^53): nothing is cached (it is
      // refused before anything is written).
      if (!(err instanceof NotServicesJson)) throw err;
      refused(err);
      return false;
    }
  }

  /** "not warmed" warnings said once each per service (see warm). */
  private readonly saidNotWarmed = new Set<string>();

  /** Says why tenant_config:<id> was not written, once per tenant and reason: a long-lived application misses such a tenant on every read. */
  private notWarmed(id: string, why: string): false {
    const said = `warning: tenant_config:${id} not warmed: ${why}`;
    if (!this.saidNotWarmed.has(said)) {
      this.saidNotWarmed.add(said);
      this.warn(said);
    }
    return false;
  }

  /** File warnings said once each per service (a long-lived application reads a YAML tenant many times). */
  private readonly saidFileWarnings = new Set<string>();

  /** A YAML answer's file warnings: a few lines and a count, as migrate-yaml says them. */
  private sayFileWarnings(warnings: readonly string[] | undefined): void {
    if (!warnings?.length) return;
    const shown = warnings.length > 5 ? [...warnings.slice(0, 3), `… and ${warnings.length - 3} more in this file`] : warnings;
    for (const w of shown) {
      if (this.saidFileWarnings.has(w)) continue;
      this.saidFileWarnings.add(w);
      this.warn(`warning: ${w}`);
    }
  }

  /** The tenant's config, resolved for use: `${VAR}` substituted, absent secrets from the environment. */
  async get(id: string, options: { noCache?: boolean } = {}): Promise<TenantConfig> {
    // When this call began (a shared read it may join must have begun after it).
    const call = this.flights.begin();
    // A hit (or a yaml_only answer) goes straight on; a miss shares the rest of the read with other callers.
    const top = await this.readTop(id, options, true);
    const { stored, warmed } = 'answer' in top ? { stored: top.answer, warmed: undefined } : await this.flights.join(`${options.noCache ? 'n' : 'c'}:${id}`, call, () => this.readAndWarm(id, !!options.noCache, top.below));
    this.sayFileWarnings(stored.fileWarnings);
    // Each caller its own copy (substitute copies every map and list): concurrent callers share one read.
    const { value, unset } = substitute(stored.config, this.env);
    if (stored.source === 'cache') markCacheHit(value);
    resolveAbsentSecrets(value, id, this.env);
    const result: TenantConfig = { id, source: stored.source, config: value, unsetVariables: unset };
    if (warmed !== undefined) result.warmed = warmed;
    return result;
  }

  /**
   * A result's config as output shows it, secret values masked (maskSecrets). A cache hit holds what the
   * services resolved (their `${VAR}` values, with no trace of where they came from): masked too where the
   * tenant's file references a secret-named variable (maskCachedConfig). A file that cannot be read is said
   * (the entry is then masked by its keys alone). Not on get()'s path: only output pays for it.
   */
  masked(result: TenantConfig): Record<string, unknown> {
    if (result.source !== 'cache') return maskSecrets(result.config);
    const { doc, fileError } = this.peekDoc(result.id);
    if (fileError) this.warn(`note: ${fileError.message}: the cached entry is masked by its key names only`);
    return maskCachedConfig(result.config, doc?.config, this.env);
  }

  /**
   * Reads below the cache (and warms) under way, by tenant and noCache: a hot tenant's entry invalidated
   * under a busy application made each request read the registry twice (once for the answer, once for the
   * warm's check) and write the entry, one statement at a time on the one registry session. Shared only
   * with calls that began before the read did (FreshFlights). A cache hit never comes here.
   */
  private readonly flights = new FreshFlights<BelowRead>();

  private async readAndWarm(id: string, noCache: boolean, below: BelowCache): Promise<BelowRead> {
    const stored = await this.readBelow(id, { noCache }, below);
    if (noCache || (this.deps.populate ?? 'resolved') !== 'resolved' || stored.yamlOnly) return { stored };
    // No cache to warm (none configured, or down since its read): no "not warmed" warning for a secret that
    // would not resolve either (a service without Redis had one per such tenant).
    if (!this.deps.cache.configured || this.deps.cache.isDown) return { stored };
    if (stored.fallback) return { stored, warmed: this.notWarmed(id, 'the registry is unreachable and this answer is YAML\'s (the registry may hold a newer one)') };
    const { value, unset } = substitute(stored.config, this.env);
    resolveAbsentSecrets(value, id, this.env);
    return { stored, warmed: await this.warm(id, stored, value, unset) };
  }

  /**
   * Writes `tenant_config:<id>` as the services would build it (secrets
   * resolved, `_meta.source` only), or nothing when a secret did not resolve
   * here: a half-resolved entry would break every service until its TTL ends.
   */
  private async warm(id: string, stored: StoredRead, resolved: Record<string, unknown>, unset: string[]): Promise<boolean> {
    const notWarmed = (why: string) => this.notWarmed(id, why);
    // Variables and secret paths said apart (one list mixed GLOBEX_OPENAI_KEY with email.sendgrid.api_key).
    const some = (list: string[]) => `${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}`;
    const secrets = unresolvedSecrets(resolved);
    const said = [unset.length ? `variable(s) ${some(unset)} unset` : '', secrets.length ? `the secret(s) at ${some(secrets)} without a value` : ''].filter(Boolean);
    if (said.length) return notWarmed(`${said.join('; ')} in this environment`);
    // A literal secret in the file is never kept here, and the services' entry would hold it: an entry
    // without it breaks them (it was written, "warmed", with the secret missing: a probe).
    const lit = stored.strippedLiteral;
    if (lit) return notWarmed(`the literal secret at ${lit.path.join('.')}${lit.line ? ` (line ${lit.line})` : ''} is not kept by this tool, and the services' entry would hold it`);
    // The services read their YAML as YAML 1.1 (PyYAML): `yes` is true to them, a string here. They
    // would cache another value: nothing is written rather than a value no service would.
    const d = stored.readsOtherwise;
    if (d) return notWarmed(`${d.path.join('.')} (line ${d.line}: ${d.source}) reads otherwise to the services' YAML 1.1 reader`);
    // A float written `1.0` is the number 1 here: the services would write `1.0`, JSON from here `1`.
    const f = stored.wholeFloat;
    if (f && stored.source === 'database') {
      return notWarmed(`${f.path.join('.')} is ${f.written} in the registry's jsonb, a float the services cache as ${pythonFloat(Number(f.written))}, and JSON from here as ${f.stored}`);
    }
    if (f) {
      return notWarmed(f.path.length
        ? `${f.path.join('.')} (line ${f.line ?? '?'}: ${f.written}) would be cached as ${f.stored}, where the services write ${pythonFloat(Number(f.stored))}`
        : `line ${f.line ?? '?'} (${f.written}) holds a float with a whole value, which the services write ${wholeFloatAsWritten(f.written)}`);
    }
    const { _meta: _m, ...rest } = resolved;
    const entry = { ...rest, _meta: { source: stored.source } };
    // Integer keys come first in a JavaScript object, whatever order the services read them in.
    const ordered = integerKeyAmongOthers(entry);
    if (ordered) return notWarmed(`${ordered.join('.')}: an integer key among others (JavaScript puts such keys first; the services keep the order they read)`);
    return this.cacheConfig(id, this.deps.keys.key(TENANT_CONFIG_FAMILY, id), entry, this.deps.ttl, stored.asRead, (err) =>
      // A value under a secret-looking name is named by its key only (it is masked in output).
      notWarmed(`${err.at.some((k) => isSecretKey(k) || looksLikeSecretKey(k)) ? `${err.at.join('.')}: a value (not shown: it looks like a secret)` : err.describe()} has no JSON text the services would write the same`),
    );
  }

  /** The tenant's registry row, and whether the registry was down for this read (the answer is then a fallback). */
  private async readRegistry(id: string): Promise<{ row?: TenantRow; down: boolean; asked: boolean }> {
    const opened = await this.readableRegistry('falling back to YAML');
    // None: not there at all (an embedded registry not created: no fallback), or down.
    if (!opened) return { down: !this.registryAbsent, asked: false };
    const read = await this.readOn(opened, 'falling back to YAML', (registry) => registry.getTenant(id));
    return read ? { row: read.value, down: false, asked: true } : { down: true, asked: false };
  }

  /**
   * One read on the registry, or undefined where it failed (then down for the retry window, said once). A
   * session the server ended (killed, restarted) while the read waited on it does not mean the registry is
   * down: one more read on a new session (the registry call replaces a lost store) before falling back
   * (before: YAML answers, and registry-only tenants "unreachable", for 5 s; a listing so for list()).
   */
  private async readOn<T>(opened: RegistryStore, fallback: string, read: (registry: RegistryStore) => Promise<T>): Promise<{ value: T } | undefined> {
    let registry = opened;
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await read(registry);
        // A read went through: a later outage is said again.
        this.saidRegistryDown = false;
        return { value };
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        // (The store learns of the lost connection from its client's events: one turn of the event loop first.)
        await new Promise((resolve) => setImmediate(resolve));
        // Not after a read nobody answered (a silent server): a new session would wait out its connect
        // timeout too (a library's get() took twice the registry timeout); it is opened at the next call.
        const again: RegistryStore | undefined = attempt === 1 && registry.lost && err.reason !== 'timeout' ? await this.readableRegistry(fallback) : undefined;
        if (!again || again === registry) {
          this.registryFailed(err, fallback);
          return undefined;
        }
        registry = again;
      }
    }
  }

  /** Set while the registry is failing: its warning is said once per outage, not once per call. */
  private saidRegistryDown = false;
  /** The failure that started the registry's current (or last) outage. */
  private registryError: BackendUnavailableError | undefined;

  /** The registry failed a read: skipped for the retry window, and said once until a read works again. */
  private registryFailed(err: BackendUnavailableError, fallback: string): void {
    this.registryDownUntil = Date.now() + REGISTRY_RETRY_MS;
    this.registryError = err;
    if (this.saidRegistryDown) return;
    this.saidRegistryDown = true;
    this.warn(`warning: ${describeError(err)}; ${fallback}`);
  }

  /**
   * The registry for a read, or undefined: none found (an embedded registry
   * not created yet: as if empty, said once) or unreachable (said once; the
   * answer then comes from YAML).
   */
  private async readableRegistry(fallback: string): Promise<RegistryStore | undefined> {
    if (this.registryDown || this.registryAbsent) return undefined;
    try {
      const registry = await this.deps.registry();
      // A database without the tenants table (the wrong DATABASE_URL): said, as a registry not found is (it
      // read as an empty registry without a word: YAML answered, a registry-only tenant was "not found").
      const none = await noTenantsTable(registry);
      if (none) {
        this.markRegistryAbsent(`note: ${none} (is it the services' database? a command that writes, such as migrate-yaml, creates it); reading YAML only`);
        return undefined;
      }
      return registry;
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      if (err.reason === 'not-configured') {
        this.markRegistryAbsent(`note: ${describeError(err)}; reading YAML only (a command that writes, such as migrate-yaml, creates it)`);
      } else {
        this.registryFailed(err, fallback);
      }
      return undefined;
    }
  }

  /**
   * Writes a config to the registry (secret values stripped first, `${VAR}`
   * references kept: the registry never holds a secret) if the row is still
   * as read, with its invalidation recorded in the same transaction; then
   * does that invalidation (that tenant only).
   */
  async save(id: string, config: Record<string, unknown>): Promise<DrainResult> {
    parseId(id);
    // Checked as a tenant file is (a config without client.name was stored as the name "undefined", a
    // string as {"0":…}); client.id may be left out: it is the id given.
    const client = isMap(config) ? config.client : undefined;
    const given = isMap(client) && (client.id === undefined || client.id === null) ? { ...config, client: { ...client, id } } : config;
    const problem = configProblem(id, given, true, 'the id given');
    if (problem) throw new UsageError(`tenant ${id}: ${problem.reason}; nothing saved`, { reason: 'bad-config' });
    const registry = await this.deps.writableRegistry();
    const { config: clean, stripped } = stripSecrets(config);
    for (const s of stripped) this.warn(`warning: secret ${s.path.join('.')} of ${id} not saved; keep it in an environment variable`);
    const current = await registry.getTenant(id);
    const outcome = await registry.applyChanges({ tenants: [{ row: rowFromConfig(id, clean), expect: tenantVersion(current) }] });
    if (outcome.conflicts.tenants.length) throw new PartialFailureError(`tenant ${id} changed in the registry while it was being saved; nothing written, try again`);
    return this.deps.outbox.drain(registry, { afterWrite: true });
  }

  /** The ids that neither YAML nor the registry knows (the registry only when it can be read). */
  async unknown(ids: string[]): Promise<string[]> {
    const notInYaml = ids.filter((id) => !this.deps.source.fileOf(id));
    if (!notInYaml.length) return [];
    // Asked after a cache command did its work: an unusable registry setting cannot make it fail then.
    const registry = await this.readableRegistry('checking YAML only').catch((err: unknown) => {
      if (isUnusableRegistry(err)) return null;
      throw err;
    });
    if (registry === null || this.registryDown) return [];
    const rows = registry ? (await this.readOn(registry, 'checking YAML only', (r) => r.getTenants(notInYaml)).catch(() => undefined))?.value : new Map();
    return rows ? notInYaml.filter((id) => !rows.has(id)) : [];
  }

  /** Active registry tenants together with YAML tenants, sorted by id (YAML only, with a warning, when the registry is down). */
  async list(): Promise<TenantListing[]> {
    this.deps.closed?.();
    const byId = new Map<string, TenantListing>();
    for (const id of this.deps.source.listIds()) {
      try {
        const doc = this.deps.source.load(id);
        if (doc) byId.set(id, { id, name: String((doc.config.client as Record<string, unknown>).name), source: 'yaml', status: null, yamlOnly: doc.yamlOnly });
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        this.warn(`warning: ${err.message}`);
      }
    }
    const registry = await this.readableRegistry('listing YAML tenants only');
    const listed = registry ? await this.readOn(registry, 'listing YAML tenants only', (r) => r.listActiveTenants()) : { value: [] };
    const registryDown = !listed;
    const rows = listed?.value ?? [];
    // A YAML tenant whose migrated row is not active (suspended, deleted) is that row's, as get-config answers
    // it: not listed (listing takes active rows), never shown as a plain YAML tenant. Only the YAML ids with no
    // active row can be such (usually none): their rows are read.
    const active = new Set(rows.map((r) => r.id));
    const unsure = [...byId.values()].filter((t) => !t.yamlOnly && !active.has(t.id)).map((t) => t.id);
    if (registry && !registryDown && unsure.length) {
      const known = (await this.readOn(registry, 'listing YAML tenants only', (r) => r.getTenants(unsure)))?.value ?? new Map<string, TenantRow>();
      for (const [id, row] of known) if (row.config_source === 'database' && row.status !== 'active') byId.delete(id);
    }
    for (const row of rows) {
      const yaml = byId.get(row.id);
      if (yaml?.yamlOnly) continue;
      // A row not migrated yet reads from its YAML file (get-config): with no file, there is nothing to list.
      if (row.config_source !== 'database' && !yaml) continue;
      byId.set(row.id, {
        id: row.id,
        // Not migrated: the file's name, as get-config answers from the file.
        name: row.config_source === 'database' || !yaml ? row.name : yaml.name,
        source: row.config_source === 'database' ? 'database' : 'yaml',
        status: row.status,
        yamlOnly: false,
      });
    }
    // `${VAR}` in a name is substituted as get-config substitutes it (the listing showed it as written).
    // (A services' row may have no name: NULL, listed as it is.)
    const shown = (name: string) => (typeof name === 'string' && name.includes('${') ? substituteString(name, this.env) : name);
    return [...byId.values()].map((t) => ({ ...t, name: shown(t.name) })).sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

/** Marks a cache hit (a copy the caller owns) in `_meta`: source `cache`, with the source it was cached from as `origin`. */
function markCacheHit(config: Record<string, unknown>): void {
  const meta = (config._meta ?? {}) as Record<string, unknown>;
  config._meta = { ...meta, source: 'cache', origin: meta.source };
}

function withMeta(config: Record<string, unknown>, source: 'database' | 'yaml', extra: Record<string, unknown> = {}) {
  const { _meta: _m, yaml_only: _y, ...rest } = config;
  const meta: Record<string, unknown> = { source };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) meta[k] = v;
  return { ...rest, _meta: meta };
}
