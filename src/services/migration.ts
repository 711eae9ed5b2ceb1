import path from 'node:path';
import { BackendUnavailableError, PartialFailureError, TenantFileError, UsageError, describeError, type TenantctlError } from '../errors.js';
import { parseId } from '../keys/ids.js';
import { PERMISSIONS_FAMILY } from '../keys/key-families.js';
import type { Registry, StoredSubscription, TenantRow, TenantWrite } from '../registry/registry-store.js';
import type { YamlTenantSource } from '../tenants/tenant-source.js';
import { canonicalJson, sha256Hex } from '../tenants/canonical-json.js';
import { contentHash, rowFromConfig } from '../tenants/registry-mapping.js';
import type { Catalogue, Subscription } from '../permissions/model.js';
import { loadTiersFile, tiersFilePath } from '../permissions/tiers-file.js';
import { subscriptionFromConfig } from '../permissions/subscription-block.js';
import type { CacheAdmin } from './cache-admin.js';
import type { Cache } from '../cache/cache.js';

export type MigrationAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'skip' | 'error';
/** What an item writes: a tenant's config row, its subscription, or the catalogue (tiers.yaml). */
export type MigrationKind = 'tenant' | 'subscription' | 'catalogue';

export interface MigrationItem {
  kind: MigrationKind;
  id: string;
  file?: string;
  action: MigrationAction;
  /** Why (conflict, skip, error), or "forced: …" on an update that overrode a conflict. */
  reason?: string;
  /** When applied: whether it was written, and whether the cache of what it affects was invalidated. */
  written?: boolean;
  cacheInvalidated?: boolean | 'not-configured';
  warnings: string[];
}

export interface MigrationReport {
  dryRun: boolean;
  items: MigrationItem[];
  counts: Record<MigrationAction, number>;
}

export interface MigrationOptions {
  ids?: string[];
  dryRun?: boolean;
  force?: boolean;
  /** Called after each write when applying (for progress on stderr). */
  progress?: (done: number, total: number) => void;
}

/** What an item would write once decided. */
type Pending =
  | { kind: 'tenant'; row: TenantWrite }
  | { kind: 'subscription'; sub: Subscription; hash: string }
  | { kind: 'catalogue'; catalogue: Catalogue; hash: string };

export const subscriptionHash = (s: Subscription) =>
  sha256Hex(canonicalJson({ tier: s.tier, status: s.status, demo_expires_at: s.demo_expires_at, overrides: s.overrides }));
export const catalogueHash = (c: Catalogue) => sha256Hex(canonicalJson({ features: [...c.features].sort(), tiers: c.tiers }));

/**
 * YAML -> registry: tenant configs, their subscriptions and the catalogue
 * (`tiers.yaml`). The plan per item is create / update / unchanged / conflict
 * (edited in the registry since tenantctl last wrote it: its content no
 * longer matches the hash tenantctl stored) / skip (`yaml_only`) / error (a
 * bad file: nothing of that tenant is written). Idempotent: a second run
 * finds everything unchanged.
 */
export class Migration {
  constructor(
    private readonly deps: {
      source: YamlTenantSource;
      registry: () => Promise<Registry>;
      admin: CacheAdmin;
      cache: Cache;
    },
  ) {}

  async run(options: MigrationOptions = {}): Promise<MigrationReport> {
    const { source } = this.deps;
    const ids = options.ids?.length ? [...new Set(options.ids.map((id) => parseId(id)))] : source.listIds();
    const items: MigrationItem[] = [];
    const pending = new Map<MigrationItem, Pending>();
    const rel = (f: string) => path.relative(process.cwd(), f) || f;
    const registry = await this.deps.registry();

    // The catalogue first: subscriptions are checked against it.
    let catalogue: Catalogue | undefined;
    let catalogueError: string | undefined;
    const tiersFile = tiersFilePath(source.dir);
    const currentCatalogue = await registry.getCatalogue();
    if (tiersFile) {
      const item: MigrationItem = { kind: 'catalogue', id: 'tiers', file: rel(tiersFile), action: 'error', warnings: [] };
      items.push(item);
      try {
        catalogue = loadTiersFile(tiersFile);
        pending.set(item, { kind: 'catalogue', catalogue, hash: catalogueHash(catalogue) });
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        item.reason = catalogueError = err.message;
      }
    } else catalogue = currentCatalogue;

    for (const id of ids) {
      const file = source.fileOf(id);
      const item: MigrationItem = { kind: 'tenant', id, file: file && rel(file), action: 'error', warnings: [] };
      items.push(item);
      if (!source.allows(id)) {
        item.reason = `ids starting "${source.registryOnlyPrefix}" are registry-only and never read from YAML`;
        continue;
      }
      try {
        const doc = source.load(id);
        if (!doc) {
          item.reason = `no file ${id}.yaml in ${source.dir}`;
          continue;
        }
        item.warnings = doc.warnings;
        if (doc.yamlOnly) {
          item.action = 'skip';
          item.reason = 'yaml_only';
          continue;
        }
        // Validate the whole file before anything of it is planned: a bad
        // subscription block means nothing of this tenant is written.
        let sub: Subscription | undefined;
        if (doc.config.subscription !== undefined) {
          if (!catalogue) throw new TenantFileError(doc.file, undefined, `has a subscription, but tiers.yaml is invalid (${catalogueError})`);
          sub = subscriptionFromConfig(id, doc.config, catalogue, doc);
        }
        pending.set(item, { kind: 'tenant', row: rowFromConfig(id, doc.config) });
        if (sub) {
          const subItem: MigrationItem = { kind: 'subscription', id, file: item.file, action: 'error', warnings: [] };
          items.push(subItem);
          pending.set(subItem, { kind: 'subscription', sub, hash: subscriptionHash(sub) });
        }
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        item.reason = err.message;
      }
    }

    const tenantIds = [...pending.values()].flatMap((p) => (p.kind === 'tenant' ? [p.row.id] : []));
    const subIds = [...pending.values()].flatMap((p) => (p.kind === 'subscription' ? [p.sub.business_id] : []));
    const [rows, subs] = await Promise.all([registry.getTenants(tenantIds), registry.getSubscriptions(subIds)]);
    for (const [item, p] of pending) {
      const decision =
        p.kind === 'tenant' ? decide(p.row, rows.get(p.row.id), !!options.force)
        : p.kind === 'subscription' ? decideSubscription(p.hash, subs.get(p.sub.business_id), !!options.force)
        : decideByHash(p.hash, hasCatalogue(currentCatalogue) ? catalogueHash(currentCatalogue) : undefined, currentCatalogue.tenantctl_hash, !!options.force, 'tiers');
      item.action = decision.action;
      item.reason = decision.reason;
    }

    if (!options.dryRun) await this.apply(items, pending, registry, options.progress);
    return { dryRun: !!options.dryRun, items, counts: countActions(items) };
  }

  private async apply(items: MigrationItem[], pending: Map<MigrationItem, Pending>, registry: Registry, progress?: (done: number, total: number) => void) {
    // Catalogue, then tenants, then subscriptions (items are already in that order).
    const toWrite = items.filter((i) => i.action === 'create' || i.action === 'update');
    let done = 0;
    for (const item of toWrite) {
      const p = pending.get(item)!;
      try {
        if (p.kind === 'tenant') await registry.upsertTenant(p.row);
        else if (p.kind === 'subscription') await registry.putSubscription(p.sub, p.hash);
        else await registry.replaceCatalogue(p.catalogue, p.hash);
        item.written = true;
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        // The registry is gone: this and every later item are not written.
        for (const rest of toWrite.slice(done)) {
          rest.written = false;
          rest.action = 'error';
          rest.reason = `not written: ${describeError(err)}`;
        }
        break;
      }
      progress?.(++done, toWrite.length);
    }
    await this.invalidate(toWrite.filter((i) => i.written));
  }

  /** Every family of each written tenant (its permissions included); the whole permissions family when the catalogue changed. */
  private async invalidate(written: MigrationItem[]) {
    if (written.length === 0) return;
    if (!this.deps.cache.configured) {
      for (const i of written) i.cacheInvalidated = 'not-configured';
      return;
    }
    const tenants = [...new Set(written.filter((i) => i.kind !== 'catalogue').map((i) => i.id))];
    const r = await this.deps.cache.attempt(async () => {
      if (written.some((i) => i.kind === 'catalogue')) await this.deps.admin.invalidateAll({ families: [PERMISSIONS_FAMILY] });
      if (tenants.length) await this.deps.admin.invalidateTenants(tenants);
    });
    for (const i of written) {
      i.cacheInvalidated = r.status === 'done';
      if (r.status === 'failed') i.warnings.push(`cache not invalidated: ${describeError(r.error)}`);
    }
  }
}

const hasCatalogue = (c: Catalogue) => c.features.length > 0 || Object.keys(c.tiers).length > 0;

/**
 * The plan for one record from three hashes: what the YAML wants, what the
 * registry holds now (undefined = nothing), and what tenantctl last wrote.
 */
export function decideByHash(desired: string, current: string | undefined, stored: string | null, force: boolean, what = 'row'): { action: MigrationAction; reason?: string } {
  if (current === undefined) return { action: 'create' };
  if (current === desired) return stored === current ? { action: 'unchanged' } : { action: 'update', reason: 'adopting existing content (same as YAML)' };
  if (stored === current) return { action: 'update' };
  const why = stored ? 'edited in the registry since the last migration' : `registry ${what} was not written by tenantctl`;
  return force ? { action: 'update', reason: `forced: ${why}` } : { action: 'conflict', reason: `${why}; use --force to overwrite` };
}

/** The plan for a tenant row given its current registry row. */
export function decide(row: TenantWrite, current: TenantRow | undefined, force: boolean): { action: MigrationAction; reason?: string } {
  if (current && current.config_source !== 'database') return { action: 'update', reason: 'registry row was not migrated yet' };
  return decideByHash(row.tenantctl_hash!, current && contentHash(current), current?.tenantctl_hash ?? null, force);
}

function decideSubscription(desired: string, current: StoredSubscription | undefined, force: boolean) {
  return decideByHash(desired, current && subscriptionHash(current), current?.tenantctl_hash ?? null, force, 'subscription');
}

function countActions(items: MigrationItem[]): Record<MigrationAction, number> {
  const counts: Record<MigrationAction, number> = { create: 0, update: 0, unchanged: 0, conflict: 0, skip: 0, error: 0 };
  for (const i of items) counts[i.action]++;
  return counts;
}

/**
 * What went wrong in a migration, as the error that sets the exit code
 * (DESIGN.md table): none when all is good; a UsageError (2) when there was
 * only bad input and nothing was done; else a PartialFailureError (4).
 */
export function migrationFailure(report: MigrationReport): TenantctlError | undefined {
  const failed = report.items.filter((i) => i.action === 'error' || i.action === 'conflict' || i.cacheInvalidated === false);
  if (failed.length === 0) return undefined;
  const c = report.counts;
  const stale = report.items.some((i) => i.cacheInvalidated === false);
  const summary = `${c.error} item(s) failed, ${c.conflict} conflict(s)${stale ? ', cache not invalidated' : ''}`;
  const onlyBadInput = failed.every((i) => i.action === 'error' && !i.reason?.startsWith('not written'));
  const anyDone = report.items.some((i) => i.written || i.action === 'unchanged' || i.action === 'skip' || (report.dryRun && (i.action === 'create' || i.action === 'update')));
  return onlyBadInput && !anyDone ? new UsageError(summary) : new PartialFailureError(summary);
}

/** The exit code a migration report maps to (0, 2 or 4). */
export const migrationExitCode = (report: MigrationReport): number => migrationFailure(report)?.exitCode ?? 0;
