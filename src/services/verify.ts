import { binaryKeyText, keyText } from '../keys/key-text.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BackendUnavailableError, InterruptedError, PartialFailureError, TenantFileError, UsageError, describeError, stoppedBy, throwIfAborted } from '../errors.js';
import { isValidId, parseId } from '../keys/ids.js';
import { PERMISSIONS_FAMILY, TENANT_CONFIG_FAMILY, type KeySpace } from '../keys/key-families.js';
import type { Cache } from '../cache/cache.js';
import { unlinkIfUnchangedOn } from '../cache/cache-store.js';
import { noTenantsTable, type Registry, type StoredSubscription, type TenantRow } from '../registry/registry-store.js';
import { hasCatalogue, type Catalogue, type PermissionRecord } from '../permissions/model.js';
import { computePermissions, isPermissionRecord } from '../permissions/rules.js';
import { LAYOUTS, type TenantDocument, type YamlTenantSource } from '../tenants/tenant-source.js';
import { chooseStoredConfig } from '../tenants/config-precedence.js';
import { referencedSecretValues, resolveAbsentSecrets } from '../tenants/secrets.js';
import { substitute } from '../tenants/substitution.js';
import { isMap } from '../tenants/plain-object.js';
import { yaml11Value, type Yaml11Difference } from '../yaml/yaml11.js';
import { pythonNumber } from '../json/services-json.js';
import { parseCachedJson } from '../json/bounded-json.js';
import { comparableConfig, diffBigIntegers, diffConfigs, diffPermissionRecords, type FieldDiff } from './config-comparison.js';

export type { FieldDiff } from './config-comparison.js';

/**
 * The config as the services' YAML 1.1 reader (PyYAML) read it and their json.dumps wrote it: values
 * replaced (`yes` -> true), then keys renamed (`on:` -> "true", as json.dumps writes a True key),
 * deepest first so that every path is still valid when it is used. Undefined where there is no JSON
 * form (a timestamp, the merge key).
 */
function readAs11(config: Record<string, unknown>, differences: readonly Yaml11Difference[]): Record<string, unknown> | undefined {
  const copy = structuredClone(config);
  const parentOf = (path: readonly string[]) => {
    let at: unknown = copy;
    for (const k of path.slice(0, -1)) at = isMap(at) || Array.isArray(at) ? (at as Record<string, unknown>)[k] : undefined;
    return isMap(at) || Array.isArray(at) ? (at as Record<string, unknown>) : undefined;
  };
  const keys = differences.filter((d) => d.key).sort((a, b) => b.path.length - a.path.length);
  for (const d of [...differences.filter((d) => !d.key), ...keys]) {
    const v = yaml11Value(d.source);
    const parent = d.path.length ? parentOf(d.path) : undefined;
    if (!v || !parent) return undefined;
    const last = d.path[d.path.length - 1];
    if (!d.key) {
      parent[last] = v.value;
      continue;
    }
    if (Array.isArray(parent)) return undefined;
    const renamed = pythonKey(v.value);
    if (renamed === undefined) return undefined;
    if (renamed === last) continue;
    parent[renamed] = parent[last];
    delete parent[last];
  }
  return copy;
}

/** A dict key as Python's json.dumps writes it (True -> "true", None -> "null", 1 -> "1"). */
function pythonKey(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isFinite(v)) return Number.isInteger(v) ? String(v) : pythonNumber(v);
  return undefined;
}

/** The two families verify checks: the ones whose content the registry and YAML fully determine. */
export const VERIFIED_FAMILIES = [TENANT_CONFIG_FAMILY, PERMISSIONS_FAMILY] as const;
export type VerifiedFamily = (typeof VERIFIED_FAMILIES)[number];

/**
 * - `ok`: the cached entry is what a rebuild gives now;
 * - `stale`: it differs (`fields` says where), or it is not a well-formed entry;
 * - `orphan`: the tenant is in neither the registry nor YAML, or its registry status is not `active`;
 * - `error`: it could not be decided (a malformed tenant file).
 */
export type VerifyStatus = 'ok' | 'stale' | 'orphan' | 'error';

export interface VerifyEntry {
  key: string;
  family: VerifiedFamily;
  tenant: string;
  status: VerifyStatus;
  /** stale: the fields that differ (secrets are never compared nor shown). */
  fields?: FieldDiff[];
  /** Why, in words (orphan, error, a malformed entry). */
  reason?: string;
  /** An orphan whose tenant has a registry row (suspended, deleted, not migrated): a real change, not an unknown tenant. */
  rowExists?: boolean;
  /** With fix: the entry was deleted. */
  fixed?: boolean;
}

export interface VerifySummary {
  /** Cached entries compared. */
  checked: number;
  ok: number;
  stale: number;
  orphan: number;
  error: number;
  /** Entries deleted by fix. */
  fixed: number;
  /** Named tenants' keys that were not cached (only when tenants were named). */
  not_cached: number;
  /**
   * Only when Redis failed during a fix: entries whose deletion was sent and never answered (a stall past
   * the deadline, a connection lost): they may be deleted. Not in `fixed`.
   */
  in_doubt?: number;
  /** No registry to compare with: judged against the YAML files alone (fix refuses to run so). */
  yaml_only?: true;
  ms: number;
}

export interface VerifyReport {
  summary: VerifySummary;
  /** Every entry that is not ok, by key (the order found was SCAN's, which differs by topology: not diffable). */
  entries: VerifyEntry[];
}

export interface VerifyDeps {
  cache: Cache;
  keys: KeySpace;
  /** The registry for reading; one that does not exist yet (an embedded registry never created) is read as empty. */
  registry: () => Promise<Registry>;
  source: YamlTenantSource;
  /** Where `${VAR}` and absent secrets resolve from, as on a `get-config --no-cache`. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** The clock for demo expiry. @default () => new Date() */
  now?: () => Date;
  warn?: (message: string) => void;
  /** How advice names the tenants directory setting and the fix option (the CLI: its flags). */
  advice?: { tenantsDir: string; fix: string };
}

export interface VerifyOptions {
  /** Only these tenants' entries; @default every cached entry (found by one sweep). */
  tenants?: string[];
  /** Delete the stale and orphan entries (only those). */
  fix?: boolean;
  /** Keys per MGET, and ids per registry read. @default 500 */
  batchSize?: number;
  /** Checked between batches: an abort stops with InterruptedError carrying the report so far. */
  signal?: AbortSignal;
  /** Called with each entry that is not ok, once confirmed (and fixed, with fix). */
  onEntry?: (entry: VerifyEntry) => void;
  /** Called after each entry is counted, ok ones too, with the run's summary so far (the same object, updated in place). */
  onCounted?: (summary: Readonly<VerifySummary>) => void;
}

/** A cached key to check. */
interface Claimed {
  key: string;
  family: VerifiedFamily;
  tenant: string;
  /** The tenant part is no valid id (a non-ASCII one, bytes that are not UTF-8): no rebuild to compare with. */
  foreign?: boolean;
}

/** Orphans for want of a tenant file: with no tenants directory to look in, --fix leaves them (see checkBatch). */
const decidedByYamlAbsence = new WeakSet<VerifyEntry>();
const byYamlAbsence = (e: VerifyEntry) => (decidedByYamlAbsence.add(e), e);

/**
 * An entry whose tenant part is no valid id: the tool rebuilds nothing for it. Known to the registry (a
 * row, or a subscription for permissions:) or to the services' YAML (a file by that name, which the tool
 * itself does not read), it is not judged (counted ok: nothing is known wrong); unknown to both, it is an
 * orphan as any other, and --fix deletes it (such entries were skipped: never removed, while cache-info
 * --by tenant listed them as orphans).
 */
function judgeForeign(c: Claimed, view: RegistryView, tenantsDir: string): VerifyEntry {
  // A file name holds no separator: a tenant part with one (`../x`) names no file of the directory.
  const inYaml = !/[/\\]|^\.\.?$/.test(c.tenant) && LAYOUTS.some((l) => existsSync(path.join(tenantsDir, c.tenant + l)));
  const known = inYaml || view.rows.has(c.tenant) || (c.family === PERMISSIONS_FAMILY && view.subs.has(c.tenant));
  return known ? verdict(c, 'ok') : byYamlAbsence(verdict(c, 'orphan', { reason: 'in neither the registry nor YAML (its tenant part is no valid tenant id)' }));
}

/**
 * A key as its bytes: claimed keys are kept as binary strings (one char per byte, as the sweep gives
 * them); sent as text, a key with a byte over 0x7f (a non-ASCII tenant, a custom family's prefix) went
 * out UTF-8 encoded, another key, and was read as not cached.
 */
const NON_ASCII = /[^\x00-\x7f]/;
const wire = (key: string): string | Buffer => (NON_ASCII.test(key) ? Buffer.from(key, 'latin1') : key);

/** The report line for one claimed entry. */
function verdict(c: Claimed, status: VerifyStatus, extra: Partial<VerifyEntry> = {}): VerifyEntry {
  return { key: c.key, family: c.family, tenant: c.tenant, status, ...extra };
}

/** What the registry says about one batch's tenants. */
interface RegistryView {
  rows: Map<string, TenantRow>;
  subs: Map<string, StoredSubscription>;
  catalogue: Catalogue;
  /** False when comparing with YAML alone (no registry configured). */
  hasRegistry: boolean;
}

const EMPTY_CATALOGUE: Catalogue = { features: [], tiers: {} };
export const DEFAULT_VERIFY_BATCH = 500;

/**
 * Compares cached `tenant_config:` and `permissions:` entries with what the
 * registry and YAML give now: the rebuild `get-config --no-cache` does (the
 * same precedence: yaml_only, then a migrated registry row, then YAML; the
 * same `${VAR}` and absent-secret resolution) and the computation
 * `check-permission` does. Bounded: keys come from one server-side sweep (or
 * by name), are read with MGET in batches, and each batch's tenants are read
 * from the registry with one query per table; only the entries that are not
 * ok are kept. An entry found wrong is read again, with its registry rows,
 * before it is reported, so a write racing the check is not reported stale.
 */
export class CacheVerifier {
  private readonly env: NodeJS.ProcessEnv;
  private readonly now: () => Date;
  /** The catalogue, read once per run (and again when confirming). */
  private catalogue: Catalogue | undefined;
  /** This run found no tenants directory: --fix leaves the orphans only a tenant file could have made right. */
  private noTenantsDir = false;

  constructor(private readonly deps: VerifyDeps) {
    this.env = deps.env ?? process.env;
    this.now = deps.now ?? (() => new Date());
  }

  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const started = Date.now();
    this.catalogue = undefined;
    const size = options.batchSize ?? DEFAULT_VERIFY_BATCH;
    const report: VerifyReport = { summary: { checked: 0, ok: 0, stale: 0, orphan: 0, error: 0, fixed: 0, not_cached: 0, ms: 0 }, entries: [] };
    const finish = () => {
      report.summary.ms = Date.now() - started;
      report.entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return report;
    };
    const stopIfAsked = () => options.signal?.aborted && throwIfAborted(options.signal, () => ({ done: report.summary.checked }), 'verify', finish());
    // Both at once: a usage error (no registry for --fix, no project at all) is said whatever Redis's
    // state (it was exit 3 with Redis down, exit 2 with it up), and a silent Redis costs no extra wait.
    const pinged = this.deps.cache.need(async (s) => s.ping());
    pinged.catch(() => undefined);
    const registry = await this.openRegistry(!!options.fix);
    if (!registry) report.summary.yaml_only = true;
    this.noTenantsDir = !existsSync(this.deps.source.dir);
    const advice = this.deps.advice ?? { tenantsDir: 'the tenants directory', fix: 'fix' };
    if (registry && this.noTenantsDir) {
      this.deps.warn?.(`note: no tenants directory at ${this.deps.source.dir}: an entry of a tenant only YAML knows reads as an orphan${options.fix ? `, and ${advice.fix} leaves those` : ''} (run from the project, or give ${advice.tenantsDir})`);
    }
    await pinged;
    const check = async (batch: Claimed[]) => {
      stopIfAsked();
      await this.checkBatch(batch, registry, report, options);
    };
    try {
      if (options.tenants) {
        const named = this.deps.keys.fixedKeys([...new Set(options.tenants.map((t) => parseId(t)))], [...VERIFIED_FAMILIES]);
        for (let i = 0; i < named.length; i += size) {
          await check(named.slice(i, i + size).map((k) => ({ key: k.key, family: k.family as VerifiedFamily, tenant: k.tenant })));
        }
      } else {
        await this.sweepAndCheck(size, check, options.signal);
      }
    } catch (err) {
      // A stop asked for by a signal carries what was found so far (the sweep's own error does not).
      if (err instanceof InterruptedError && err.partial === undefined) {
        throw new InterruptedError(err.signal, `${stoppedBy(err.signal)}: verify stopped after ${report.summary.checked} entries checked`, { done: report.summary.checked }, finish());
      }
      // A backend lost after --fix deleted entries: exit 4 with the report of what was done (before any deletion: exit 3).
      const doubt = report.summary.in_doubt ?? 0;
      if (err instanceof BackendUnavailableError && (report.summary.fixed > 0 || doubt > 0)) {
        const what = err.backend === 'redis' ? 'Redis' : 'the registry';
        const again = err.refused ? '' : ' (run again to finish)';
        const fixed = `${report.summary.fixed} stale or orphan entr${report.summary.fixed === 1 ? 'y was' : 'ies were'} deleted`;
        const maybe = doubt ? `, and ${doubt} more may have been (Redis did not answer while deleting them)` : '';
        throw new PartialFailureError(`deleting stale entries stopped when ${what} failed, after ${fixed}${maybe}${again}: ${describeError(err)}`, {
          cause: err,
          partial: finish(),
        });
      }
      throw err;
    }
    return finish();
  }

  private async openRegistry(fix: boolean): Promise<Registry | undefined> {
    try {
      const registry = await this.deps.registry();
      // A database without the tenants table (the wrong DATABASE_URL) is no registry to compare with: --fix
      // deleted every registry tenant's entry there as an orphan.
      const none = await noTenantsTable(registry);
      if (none) {
        const said = `${none} (is it the services' database?)`;
        if (fix) throw new UsageError(`deleting stale entries needs the registry to compare with: ${said}`, { reason: 'no-registry' });
        this.deps.warn?.(`note: ${said}; comparing with YAML only`);
        return undefined;
      }
      return registry;
    } catch (err) {
      if (!(err instanceof BackendUnavailableError) || err.reason !== 'not-configured') throw err;
      // Neither a registry nor a tenants directory (run from the wrong directory): every cached entry would
      // read as an orphan, and --fix would delete them all.
      if (!existsSync(this.deps.source.dir)) {
        throw new UsageError(`nothing to compare the cache with: ${describeError(err)}, and no tenants directory at ${this.deps.source.dir}`, { reason: 'no-project' });
      }
      // No registry found (a cron job without its DATABASE_URL): judged against YAML alone, every registry
      // tenant's entry reads as stale or orphan, and --fix would delete good entries. Said, not done.
      if (fix) {
        throw new UsageError(`deleting stale entries needs the registry to compare with: ${describeError(err)}`, { reason: 'no-registry' });
      }
      this.deps.warn?.(`note: ${describeError(err)}; comparing with YAML only`);
      return undefined;
    }
  }

  /**
   * One sweep over the keyspace hands back the cached keys batch by batch;
   * a consumer checks them `size` at a time while the sweep goes on. SCAN may
   * return a key twice: a 52-bit fingerprint per key (not the key) drops repeats.
   */
  private async sweepAndCheck(size: number, check: (batch: Claimed[]) => Promise<void>, signal?: AbortSignal): Promise<void> {
    const rules = this.deps.keys.rules({ families: [...VERIFIED_FAMILIES] });
    const queue: Claimed[] = [];
    const seen = new Set<number>();
    let ended = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    /** Masters waiting for the queue to drain (with a store that waits for onBatch's promise; several on a cluster). */
    let waiting: Array<() => void> = [];
    const makeRoom = () => {
      const w = waiting;
      waiting = [];
      for (const resume of w) resume();
    };
    const nudge = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const consumer = (async () => {
      for (;;) {
        if (queue.length >= size || (ended && queue.length)) {
          await check(queue.splice(0, size));
          if (queue.length <= 2 * size) makeRoom();
          continue;
        }
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    })();
    consumer.catch((err) => {
      failure = err;
      makeRoom();
    });
    try {
      await this.deps.cache.need((store) =>
        store.sweep({
          rules,
          action: 'collect',
          signal,
          onBatch: (b) => {
            if (failure) throw failure;
            for (const k of b.keys ?? []) {
              // A key whose tenant part is no valid id (a service's non-ASCII id) has no rebuild to compare with:
              // an orphan unless the registry has a row by that id (it was skipped: verify --fix never removed
              // `tenant_config:café` while cache-info --by tenant listed it as an orphan).
              const ascii = k.tenant.toString('latin1');
              const foreign = !isValidId(ascii);
              // Bytes that are not UTF-8 are shown as keyText shows them (\xNN; they were U+FFFD, like no tenant);
              // UTF-8 as it reads (the registry and the files are looked up by it).
              const utf8 = foreign ? k.tenant.toString('utf8') : ascii;
              const tenant = foreign && utf8.includes('\uFFFD') ? keyText(k.tenant) : utf8;
              const key = k.key.toString('latin1');
              const print = fingerprint(key);
              if (seen.has(print)) continue;
              seen.add(print);
              queue.push({ key, family: rules.groups[k.group] as VerifiedFamily, tenant, ...(foreign && { foreign }) });
            }
            nudge();
            // A store that waits for onBatch's promise gets back-pressure: at most two batches queued.
            if (queue.length > 2 * size) return new Promise<void>((resolve) => waiting.push(resolve)) as unknown as void;
          },
        }),
      );
    } catch (err) {
      ended = true;
      nudge();
      await consumer.catch(() => undefined);
      throw failure ?? err;
    }
    ended = true;
    nudge();
    await consumer;
  }

  /** Reads a batch, judges it, confirms what looks wrong, fixes it if asked, and adds it to the report. */
  private async checkBatch(batch: Claimed[], registry: Registry | undefined, report: VerifyReport, options: VerifyOptions): Promise<void> {
    const raws = await this.deps.cache.need((s) => s.mget(batch.map((c) => wire(c.key))));
    // The text each verdict was made on: a fix deletes a key only while it still holds it.
    const judgedText = new Map(batch.flatMap((c, i) => (raws[i] !== null ? [[c.key, raws[i]!] as const] : [])));
    const present = batch.filter((_, i) => raws[i] !== null);
    const absent = batch.filter((_, i) => raws[i] === null);
    // A key the walk found that reads as nothing but is there holds no string (a hash, a list): the services'
    // GET fails WRONGTYPE on it. It was counted "not cached" and left (a review).
    const wrongType = absent.length ? await this.wrongType(absent) : [];
    report.summary.not_cached += absent.length - wrongType.length;
    if (wrongType.length) await this.recordWrongType(wrongType, report, options);
    let judged = await this.judge(present, raws.filter((r): r is string => r !== null), registry);
    const suspect = judged.filter((e) => e.status === 'stale' || e.status === 'orphan');
    if (suspect.length) {
      // Read again, cache first and registry second: an entry invalidated and rebuilt meanwhile is not reported.
      const claimed = new Map(batch.map((c) => [c.key, c]));
      const again = suspect.map((e) => claimed.get(e.key) ?? { key: e.key, family: e.family, tenant: e.tenant });
      const raws2 = await this.deps.cache.need((s) => s.mget(again.map((c) => wire(c.key))));
      again.forEach((c, i) => raws2[i] !== null && judgedText.set(c.key, raws2[i]!));
      const still = again.filter((_, i) => raws2[i] !== null);
      const rejudged = new Map((await this.judge(still, raws2.filter((r): r is string => r !== null), registry, true)).map((e) => [e.key, e]));
      judged = judged.flatMap((e) => (e.status === 'stale' || e.status === 'orphan' ? (rejudged.has(e.key) ? [rejudged.get(e.key)!] : []) : [e]));
    }
    let wrong = judged.filter((e) => e.status === 'stale' || e.status === 'orphan');
    // No tenants directory here (a cron job without its cd): an entry the services built from a tenant file
    // reads as an orphan, and --fix deleted it. Reported, and left.
    if (options.fix && this.noTenantsDir) {
      const left = new Set(wrong.filter((e) => decidedByYamlAbsence.has(e)));
      for (const e of left) e.reason = `${e.reason}; left: no tenants directory at ${this.deps.source.dir} to look in`;
      wrong = wrong.filter((e) => !left.has(e));
    }
    if (options.fix && wrong.length) {
      // Only the wrong entries, by exact key, and only while each holds the text judged: one a
      // service rewrote since (a fresh value) stays, and is not reported, as a rebuilt one above.
      let removed: number[];
      try {
        removed = await this.deps.cache.need((s) => unlinkIfUnchangedOn(s, wrong.map((e) => ({ key: wire(e.key), value: judgedText.get(e.key)! }))));
      } catch (err) {
        // A master lost midway (a Cluster): the entries the live ones deleted are in the report and the count,
        // so the failure is "stopped after N deleted" (exit 4), not "before any deletion" (exit 3, N lost).
        const done = err instanceof BackendUnavailableError && Array.isArray(err.partial) ? (err.partial as Array<number | null>) : [];
        // No answer at all (a stall past the deadline, a connection lost once the call was sent): the server may
        // have run it. Counted apart, so the failure is not "before any deletion" (a review: 500 were deleted).
        const unanswered = err instanceof BackendUnavailableError && !err.answered ? wrong.filter((_, i) => done[i] === undefined || done[i] === null) : [];
        if (unanswered.length) report.summary.in_doubt = (report.summary.in_doubt ?? 0) + unanswered.length;
        wrong.forEach((e, i) => {
          if (!done[i]) return;
          e.fixed = true;
          report.summary.fixed++;
          this.record(report, e, options);
        });
        for (const e of unanswered) this.record(report, e, options);
        throw err;
      }
      // A value that is not UTF-8 was read with U+FFFD in place of its bytes, so it never equals what the
      // key holds: such an entry (no service could parse it) goes by a plain UNLINK. Before, it was taken
      // for one rewritten meanwhile and left out of the report: verify --fix said clean, exit 0, forever.
      const undecodable = wrong.flatMap((e, i) => (!removed[i] && judgedText.get(e.key)!.includes('\uFFFD') ? [i] : []));
      if (undecodable.length) {
        const gone = await this.deps.cache.need((s) => s.unlink(undecodable.map((i) => wire(wrong[i].key))));
        undecodable.forEach((i, j) => (removed[i] = gone[j]));
      }
      const changed = new Set(wrong.filter((_, i) => !removed[i]));
      wrong.forEach((e, i) => removed[i] && (e.fixed = true));
      report.summary.fixed += wrong.length - changed.size;
      if (changed.size) judged = judged.filter((e) => !changed.has(e));
    }
    for (const e of judged) this.record(report, e, options);
  }

  /** Of keys read as nothing, those that are there all the same: they hold another type than a string. */
  private async wrongType(absent: Claimed[]): Promise<Claimed[]> {
    const there = await this.deps.cache.need((s) => s.exists(absent.map((c) => wire(c.key))));
    return absent.filter((_, i) => there[i]);
  }

  /** Entries of another type than a string: stale (no service can read them), deleted by a fix. */
  private async recordWrongType(entries: Claimed[], report: VerifyReport, options: VerifyOptions): Promise<void> {
    const judged = entries.map((c) => verdict(c, 'stale', { reason: "holds another type than a string (the services' GET fails with WRONGTYPE)" }));
    if (options.fix) {
      // By plain UNLINK: there is no text to compare (a service that writes the key meanwhile writes a string,
      // and only loses one cache entry).
      const gone = await this.deps.cache.need((s) => s.unlink(entries.map((c) => wire(c.key))));
      judged.forEach((e, i) => {
        if (!gone[i]) return;
        e.fixed = true;
        report.summary.fixed++;
      });
    }
    for (const e of judged) this.record(report, e, options);
  }

  /** One judged entry into the report (counted; listed unless ok). */
  private record(report: VerifyReport, e: VerifyEntry, options: VerifyOptions): void {
    report.summary.checked++;
    report.summary[e.status]++;
    options.onCounted?.(report.summary);
    if (e.status === 'ok') return;
    // The key as text (it is kept as its bytes until here): `tenant_config:café`, not `tenant_config:cafÃ©` (see keyText).
    const key = binaryKeyText(e.key);
    const shown = key === e.key ? e : { ...e, key };
    report.entries.push(shown);
    options.onEntry?.(shown);
  }

  private async judge(batch: Claimed[], raws: string[], registry: Registry | undefined, fresh = false): Promise<VerifyEntry[]> {
    if (!batch.length) return [];
    const view = await this.readRegistry(batch, registry, fresh);
    return batch.map((c, i) => (c.foreign ? judgeForeign(c, view, this.deps.source.dir) : c.family === TENANT_CONFIG_FAMILY ? this.judgeConfig(c, raws[i], view) : this.judgePermissions(c, raws[i], view)));
  }

  /** One read per table for the whole batch (the catalogue once per run, again when confirming). */
  private async readRegistry(batch: Claimed[], registry: Registry | undefined, fresh: boolean): Promise<RegistryView> {
    if (!registry) return { rows: new Map(), subs: new Map(), catalogue: EMPTY_CATALOGUE, hasRegistry: false };
    const ids = [...new Set(batch.map((c) => c.tenant))];
    const businesses = [...new Set(batch.filter((c) => c.family === PERMISSIONS_FAMILY).map((c) => c.tenant))];
    const [rows, subs] = await Promise.all([
      // With exact numbers: integers past 2^53 are compared digit by digit (diffBigIntegers).
      registry.getTenants(ids, { exactNumbers: true }),
      businesses.length ? registry.getSubscriptions(businesses) : Promise.resolve(new Map<string, StoredSubscription>()),
    ]);
    if (businesses.length && (fresh || !this.catalogue)) this.catalogue = await registry.getCatalogue();
    return { rows, subs, catalogue: this.catalogue ?? EMPTY_CATALOGUE, hasRegistry: true };
  }

  /** The same precedence and resolution as `get-config --no-cache` (TenantConfigService.getStored, then get). */
  private judgeConfig(c: Claimed, raw: string, view: RegistryView): VerifyEntry {
    const entry = (status: VerifyStatus, extra: Partial<VerifyEntry> = {}) => verdict(c, status, extra);
    const cached = parseJson(raw);
    // A malformed entry is stale, but of a tenant known nowhere (or no longer active): an orphan, as any other entry of it.
    const malformed = isMap(cached) ? undefined : entry('stale', { reason: 'not a JSON object' });
    const id = c.tenant;
    // A registry-only tenant (tn_...) lives in the registry alone: with none to compare with, it is not an orphan, only undecided.
    if (!view.hasRegistry && !this.deps.source.allows(id)) return malformed ?? entry('error', { reason: 'a registry-only tenant, and no registry is configured to verify it against' });
    const row = view.rows.get(id);
    let doc;
    let fileError: TenantFileError | undefined;
    try {
      doc = this.deps.source.readWhole(id);
    } catch (err) {
      if (!(err instanceof TenantFileError)) throw err;
      fileError = err;
    }
    let stored: Record<string, unknown>;
    let fromYaml = false;
    // The integers past 2^53 of the row or file the config comes from, with every digit (see diffBigIntegers).
    let exactIntegers: Array<{ path: string[]; written: string }> = [];
    const fileDigits = (d: Readonly<TenantDocument>) => (d.lossyNumbers ?? []).flatMap((l) => (l.kind === 'big-integer' && l.written ? [{ path: l.path, written: l.written }] : []));
    if (doc?.yamlOnly) {
      stored = doc.config;
      exactIntegers = fileDigits(doc);
    }
    else if (row && row.status !== 'active') return entry('orphan', { reason: `registry status is ${row.status}`, rowExists: true });
    else {
      let choice;
      try {
        choice = chooseStoredConfig(row, doc, fileError);
      } catch (err) {
        // A row that cannot be used (nested too deep to copy): this entry's error, not the whole run's.
        if (err instanceof UsageError && err.reason === 'bad-registry-row') return entry('error', { reason: err.message });
        throw err;
      }
      if (choice.source === 'file-error') return malformed ?? entry('error', { reason: choice.error.message });
      if (choice.source === 'none') {
        const reason = row ? `registry row not migrated (config_source ${row.config_source}) and no YAML file` : 'in neither the registry nor YAML';
        // Malformed, it is wrong whatever a tenants directory would say: deleted by --fix even without one (a
        // review), as stale where no tenants directory could say whether YAML knows the tenant.
        if (malformed) return this.noTenantsDir ? malformed : entry('orphan', { reason: `${reason}; not a JSON object`, rowExists: !!row });
        return byYamlAbsence(entry('orphan', { reason, rowExists: !!row }));
      }
      stored = choice.config;
      fromYaml = choice.source === 'yaml';
      exactIntegers = choice.source === 'database' ? (choice.row.config_big_integers ?? []) : doc ? fileDigits(doc) : [];
    }
    // (malformed is set exactly when the entry is not a JSON object.)
    if (!isMap(cached)) return malformed!;
    const diff = (config: Record<string, unknown>) => {
      const { _meta: _m, yaml_only: _y, ...plain } = config;
      const resolved = substitute(plain, this.env).value;
      resolveAbsentSecrets(resolved, id, this.env);
      const secrets = referencedSecretValues(plain, this.env);
      const found = diffConfigs(comparableConfig(cached), comparableConfig(resolved), comparableConfig(plain), undefined, secrets);
      return [...found, ...diffBigIntegers(raw, exactIntegers, cached, found, secrets)];
    };
    const fields = diff(stored);
    if (!fields.length) return entry('ok');
    // A service builds a YAML tenant's entry from its own (YAML 1.1) reading of the file: `yes` is true
    // to it. That entry is right, not stale (verify --fix would delete it on every run, exit 1 forever).
    if (fromYaml && doc?.yaml11Differences.length) {
      const as11 = readAs11(stored, doc.yaml11Differences);
      if (as11 && !diff(as11).length) return entry('ok');
    }
    return entry('stale', { fields });
  }

  /** The computation `check-permission` does on a miss (the services' record). */
  private judgePermissions(c: Claimed, raw: string, view: RegistryView): VerifyEntry {
    const entry = (status: VerifyStatus, extra: Partial<VerifyEntry> = {}) => verdict(c, status, extra);
    const cached = parseJson(raw);
    const id = c.tenant;
    const row = view.rows.get(id);
    const sub = view.subs.get(id);
    if (row && row.status !== 'active') return entry('orphan', { reason: `registry status is ${row.status}`, rowExists: true });
    const nowhere = !row && !sub && !this.deps.source.fileOf(id);
    // Malformed: stale, but of a business known nowhere an orphan, as any other entry of it (without a registry
    // or a tenants directory to ask, stale: wrong either way, and deleted by --fix).
    if (!isPermissionRecord(cached)) {
      return nowhere && view.hasRegistry && !this.noTenantsDir ? entry('orphan', { reason: 'in neither the registry nor YAML; not a permission record' }) : entry('stale', { reason: 'not a permission record' });
    }
    // Without a feature catalogue (no registry, or no permission tables) every business computes as "nothing
    // granted": the services' records would all look stale, and --fix would delete them all. Undecided instead.
    if (!hasCatalogue(view.catalogue)) {
      return entry('error', { reason: view.hasRegistry ? 'the registry has no feature catalogue to compute permissions with' : 'no registry is configured to compute permissions with' });
    }
    const current: PermissionRecord = computePermissions(sub, view.catalogue, this.now()).record;
    const fields = diffPermissionRecords(cached, current);
    // A business known nowhere: its cached "no subscription" answer (what check-permission and the services
    // cache for a typo) is right, not an orphan to fail a cron job over; anything else cached for it is one.
    if (nowhere) return fields.length ? byYamlAbsence(entry('orphan', { reason: 'in neither the registry nor YAML' })) : entry('ok');
    return fields.length ? entry('stale', { fields }) : entry('ok');
  }
}

/** The cached value, or undefined when it is not one to compare (not JSON, or nested too deep to walk). */
function parseJson(raw: string): unknown {
  const parsed = parseCachedJson(raw);
  return 'value' in parsed ? parsed.value : undefined;
}

/** A 52-bit hash of a string (cyrb53): a key's fingerprint for de-duplication, 8 bytes instead of the key. */
function fingerprint(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
