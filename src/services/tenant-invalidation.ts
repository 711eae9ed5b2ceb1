import { InterruptedError } from '../errors.js';
import type { PendingInvalidation } from '../registry/registry-store.js';
import type { CacheAdmin, TenantInvalidation } from './cache-admin.js';
import type { DrainResult } from './invalidation-outbox.js';

/** What `invalidate` works with: the cache admin, the registry's outbox of owed invalidations, the tenants known. */
export interface TenantInvalidationDeps {
  admin: Pick<CacheAdmin, 'invalidateTenants'>;
  /** What earlier writes still owe, read without doing it (undefined: no registry to ask). */
  owedInvalidations(limit?: number, options?: { required?: boolean }): Promise<PendingInvalidation[] | undefined>;
  /** Does what earlier writes still owe (undefined: no registry). */
  drainOwedInvalidations(options?: { signal?: AbortSignal; onDeleted?: (total: number) => void }): Promise<DrainResult | undefined>;
  /** The ids in neither the registry nor YAML. */
  unknown(ids: string[]): Promise<string[]>;
}

/** Owed invalidations read at most (a killed 10,000-tenant migration owes 10,000): more are said as "at least". */
export const OWED_LISTED = 1000;

export interface TenantInvalidationResult {
  /** Per named tenant: what was deleted (or, on a dry run, would be). */
  results: TenantInvalidation[];
  /** With pending (not a dry run): what draining the owed invalidations came to. */
  drained?: DrainResult;
  /** With pending and a dry run: what is owed (what --pending would also do). */
  owed?: PendingInvalidation[];
  /** Without pending: how many invalidations are owed and were not done (at least, up to 1000). */
  waiting: number;
  /** Named tenants in neither the registry nor YAML. */
  unknown: string[];
  /** Strict, and a named tenant is unknown: nothing was done. */
  stopped?: boolean;
}

/**
 * `invalidate <tenant...> [--pending] [--dry-run]`: the named tenants' keys, and what earlier writes still
 * owe only when asked (`pending`): an owed invalidation may reach every tenant's keys (a catalogue change
 * owes every permissions: entry), and `invalidate acme` touches acme's alone; otherwise it is counted so
 * the command can say so. A Redis failure while deleting is thrown with the progress it carries.
 * `strict`: the tenants are looked up first, and if one is unknown (a typo) nothing is done (they were looked
 * up after the deletion: `invalidate acme2 --strict` deleted acme2's keys, then exit 1).
 */
export async function invalidateTenantsAndOwed(
  deps: TenantInvalidationDeps,
  request: { tenants: string[]; dryRun: boolean; pending: boolean; strict?: boolean; signal?: AbortSignal; onDeleted?: (total: number) => void; onOwedDeleted?: (total: number) => void },
): Promise<TenantInvalidationResult> {
  const { tenants, dryRun, pending, signal } = request;
  // Looked up first when strict (and not again after).
  const strictUnknown = request.strict && tenants.length ? await deps.unknown(tenants) : undefined;
  if (strictUnknown?.length) return { results: [], waiting: 0, unknown: strictUnknown, stopped: true };
  const results = tenants.length ? await deps.admin.invalidateTenants(tenants, { dryRun, signal, onDeleted: request.onDeleted }) : [];
  let drained: DrainResult | undefined;
  let owed: PendingInvalidation[] | undefined;
  let waiting = 0;
  if (pending && !dryRun) {
    drained = await deps.drainOwedInvalidations({ signal, onDeleted: request.onOwedDeleted }).catch((err: unknown) => {
      // Stopped while the registry opened, after the named tenants' keys went: those are reported (they were lost).
      if (err instanceof InterruptedError && results.length) throw new InterruptedError(err.signal, err.message, { done: results.reduce((n, r) => n + r.total, 0) }, results);
      throw err;
    });
  }
  // One more than is listed: exactly OWED_LISTED owed is not "at least".
  else if (pending) owed = (await deps.owedInvalidations(OWED_LISTED + 1, { required: true })) ?? [];
  else waiting = (await deps.owedInvalidations(OWED_LISTED + 1))?.length ?? 0;
  // A warning's lookup, after the work: a run stopped meanwhile (its first signal while the registry opened)
  // still reports the keys it deleted, and exits 130 / 143 for the signal (it lost the report).
  const unknown = strictUnknown ?? (tenants.length ? await deps.unknown(tenants).catch(unlessInterrupted([])) : []);
  return { results, drained, owed, waiting, unknown };
}

const unlessInterrupted = <T>(instead: T) => (err: unknown): T => {
  if (err instanceof InterruptedError) return instead;
  throw err;
};
