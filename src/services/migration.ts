import path from 'node:path';
import { BackendUnavailableError, TenantFileError, describeError } from '../errors.js';
import { parseId } from '../cache/ids.js';
import type { RegistryStore, TenantRow, TenantWrite } from '../registry/registry-store.js';
import type { YamlTenantSource } from '../tenants/tenant-source.js';
import { contentHash, rowFromConfig } from '../tenants/registry-mapping.js';
import type { CacheAdmin } from './cache-admin.js';
import type { CacheProvider } from '../cache/cache-provider.js';

export type MigrationAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'skip' | 'error';

export interface MigrationItem {
  id: string;
  file?: string;
  action: MigrationAction;
  /** Why (conflict, skip, error), or "forced" on an update that overrode a conflict. */
  reason?: string;
  /** What happened when applied: written, and whether its cache was invalidated. */
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
  /** Called after each tenant is handled when applying (for progress on stderr). */
  progress?: (done: number, total: number) => void;
}

/**
 * YAML -> registry. The plan per tenant is create / update / unchanged /
 * conflict (the row was edited in the registry since tenantctl last wrote
 * it: its content no longer matches the hash tenantctl stored) / skip
 * (`yaml_only`) / error (a bad file: nothing of that tenant is written).
 * Idempotent: a second run finds every tenant unchanged.
 */
export class Migration {
  constructor(
    private readonly deps: {
      source: YamlTenantSource;
      registry: () => Promise<RegistryStore>;
      admin: CacheAdmin;
      cache: CacheProvider;
    },
  ) {}

  async run(options: MigrationOptions = {}): Promise<MigrationReport> {
    const { source } = this.deps;
    const ids = options.ids?.length ? [...new Set(options.ids.map((id) => parseId(id)))] : source.listIds();
    const items: MigrationItem[] = [];
    const rows = new Map<string, TenantWrite>();
    for (const id of ids) {
      const file = source.fileOf(id);
      const item: MigrationItem = { id, file: file && path.relative(process.cwd(), file), action: 'error', warnings: [] };
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
        rows.set(id, rowFromConfig(id, doc.config));
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        item.reason = err.message;
      }
    }

    const registry = await this.deps.registry();
    const existing = await registry.getTenants([...rows.keys()]);
    for (const item of items) {
      const row = rows.get(item.id);
      if (!row) continue;
      const decision = decide(row, existing.get(item.id), !!options.force);
      item.action = decision.action;
      item.reason = decision.reason;
    }

    if (!options.dryRun) await this.apply(items, rows, registry, options.progress);
    return { dryRun: !!options.dryRun, items, counts: countActions(items) };
  }

  private async apply(items: MigrationItem[], rows: Map<string, TenantWrite>, registry: RegistryStore, progress?: (done: number, total: number) => void) {
    const toWrite = items.filter((i) => i.action === 'create' || i.action === 'update');
    let done = 0;
    for (const item of toWrite) {
      try {
        await registry.upsertTenant(rows.get(item.id)!);
        item.written = true;
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        // The registry is gone: this and every later tenant are not written.
        for (const rest of toWrite.slice(done)) {
          rest.written = false;
          rest.action = 'error';
          rest.reason = `not written: ${describeError(err)}`;
        }
        break;
      }
      progress?.(++done, toWrite.length);
    }
    const written = toWrite.filter((i) => i.written).map((i) => i.id);
    if (written.length === 0) return;
    if (!this.deps.cache.configured) {
      for (const i of toWrite) if (i.written) i.cacheInvalidated = 'not-configured';
      return;
    }
    try {
      await this.deps.admin.invalidateTenants(written);
      for (const i of toWrite) if (i.written) i.cacheInvalidated = true;
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      for (const i of toWrite) {
        if (!i.written) continue;
        i.cacheInvalidated = false;
        i.warnings.push(`cache not invalidated: ${describeError(err)}`);
      }
    }
  }
}

/** The plan for one tenant given its current registry row. */
export function decide(row: TenantWrite, current: TenantRow | undefined, force: boolean): { action: MigrationAction; reason?: string } {
  if (!current) return { action: 'create' };
  if (current.config_source !== 'database') return { action: 'update', reason: 'registry row was not migrated yet' };
  const currentHash = contentHash(current);
  if (currentHash === row.tenantctl_hash) {
    // Same content; refresh the hash only if tenantctl never wrote this row.
    return current.tenantctl_hash === currentHash ? { action: 'unchanged' } : { action: 'update', reason: 'adopting row (same content)' };
  }
  const editedInRegistry = current.tenantctl_hash !== currentHash;
  if (!editedInRegistry) return { action: 'update' };
  const why = current.tenantctl_hash ? 'edited in the registry since the last migration' : 'registry row was not written by tenantctl';
  return force ? { action: 'update', reason: `forced: ${why}` } : { action: 'conflict', reason: `${why}; use --force to overwrite` };
}

function countActions(items: MigrationItem[]): Record<MigrationAction, number> {
  const counts: Record<MigrationAction, number> = { create: 0, update: 0, unchanged: 0, conflict: 0, skip: 0, error: 0 };
  for (const i of items) counts[i.action]++;
  return counts;
}

/** Exit code of a migration (DESIGN.md table): 0 all good, 2 only bad input and nothing written, 4 partial. */
export function migrationExitCode(report: MigrationReport): number {
  const failed = report.items.filter((i) => i.action === 'error' || i.action === 'conflict' || i.cacheInvalidated === false);
  if (failed.length === 0) return 0;
  const onlyBadInput = failed.every((i) => i.action === 'error' && !i.reason?.startsWith('not written'));
  const anyDone = report.items.some((i) => i.written || i.action === 'unchanged' || i.action === 'skip' || (report.dryRun && (i.action === 'create' || i.action === 'update')));
  return onlyBadInput && !anyDone ? 2 : 4;
}
