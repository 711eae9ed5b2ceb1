import type { Command } from 'commander';
import { BackendUnavailableError, DeniedError, InterruptedError, PartialFailureError, UsageError, describeError } from '../../errors.js';
import type { TenantInvalidation } from '../../services/cache-admin.js';
import { invalidateTenantsAndOwed, OWED_LISTED, type TenantInvalidationResult } from '../../services/tenant-invalidation.js';
import type { DrainResult } from '../../services/invalidation-outbox.js';
import type { PendingInvalidation } from '../../registry/registry-store.js';
import { action, idsArg } from '../action.js';
import type { Output } from '../output.js';

/** What earlier writes owe, for `--pending --dry-run`: one row per owed invalidation. */
function renderOwed(out: Output, owed: PendingInvalidation[]) {
  out.table(['owed invalidation', 'target'], owed.slice(0, OWED_LISTED).map((o) => [o.kind, o.target]));
  const count = owed.length > OWED_LISTED ? `at least ${OWED_LISTED} invalidation(s) (the first ${OWED_LISTED} listed)` : `${owed.length} invalidation(s)`;
  out.summary(owed.length ? `${count} owed by earlier writes; \`tenantctl invalidate --pending\` does them all` : 'nothing owed by earlier writes');
}

function render(out: Output, results: TenantInvalidation[], dryRun: boolean, owed?: DrainResult) {
  if (dryRun && out.rows) {
    // Piped, a dry run is the keys themselves, one row each (for xargs, wc -l); the counts go to stderr.
    out.table(['tenant', 'key'], results.flatMap((r) => (r.keys ?? []).map((k) => [r.tenant, k])));
    for (const r of results) out.summary(`${r.tenant}: would delete ${r.total}`);
    return;
  }
  // Piped, the header line even with nothing to list (--pending alone: it wrote nothing).
  if (results.length || out.rows) {
    out.table(
      ['tenant', dryRun ? 'would delete' : 'deleted', 'by family'],
      results.map((r) => [r.tenant, r.total, Object.entries(r.families).filter(([, n]) => n).map(([f, n]) => `${f}: ${n}`).join(', ') || '-']),
    );
  }
  if (dryRun) out.lines(results.flatMap((r) => r.keys ?? []));
  if (owed?.done) out.summary(`${results.length ? 'also done' : 'done'}: ${owed.done} invalidation(s) owed by earlier writes${owed.deleted === undefined ? '' : `, ${owed.deleted} key${owed.deleted === 1 ? '' : 's'} deleted`}`);
  // --pending alone with nothing owed: said (it printed nothing, as if it had not run).
  else if (owed?.status === 'done' && !results.length) out.summary('nothing owed by earlier writes');
}

/** What --pending did, for the JSON: not checked (the registry failed) has no count of what is owed. */
function owedData(owed: DrainResult) {
  if (owed.status === 'unchecked') return { status: owed.status, done: 0 };
  return { status: owed.status, done: owed.done, pending: owed.pending, ...(owed.more && { more: true }), ...(owed.deleted !== undefined && { deleted: owed.deleted }) };
}

/** Invalidations owed that --pending could not do: Redis failed, none is configured, or the registry could not be read (exit 3, as `invalidate <tenant>`). */
function owedFailure(owed: DrainResult | undefined) {
  if (owed?.status === 'unchecked') {
    const err = owed.error;
    return new BackendUnavailableError('registry', `invalidations owed by earlier writes not checked: ${describeError(err)}`, { cause: err, reason: err?.reason ?? 'unreachable' });
  }
  // Stopped by the run's signal while Redis connected: the interruption itself (exit 130 / 143), not "Redis unavailable".
  if (owed?.status === 'failed' && owed.error?.cause instanceof InterruptedError) return owed.error.cause;
  if (owed?.status === 'failed') return owed.error ?? new BackendUnavailableError('redis', `Redis is unavailable: ${owed.pending} owed invalidation(s) not done; run again`);
  if (owed?.status === 'not-configured') {
    return new BackendUnavailableError('redis', `no Redis configured: ${owed.pending} owed invalidation(s) not done`, { reason: 'not-configured' });
  }
  return undefined;
}

/** `invalidate <tenant...>`: delete every cache key of those tenants (every family), and what earlier writes still owe. */
export function register(program: Command): void {
  program
    .command('invalidate')
    .description('delete every cache key of these tenants, in every key family (--pending: the invalidations earlier writes still owe)')
    .argument('[tenant...]', 'tenant ids', idsArg())
    .option('--dry-run', 'list the keys that would be deleted')
    .option('--pending', 'do the invalidations earlier writes still owe (killed, or Redis down at the time); with --dry-run, list them')
    .option('--strict', 'exit 1, deleting nothing, when a tenant is in neither the registry nor YAML')
    .action(
      action<[string[] | undefined], { dryRun?: boolean; pending?: boolean; strict?: boolean }>(async (ctx, tenants = [], opts) => {
        if (!tenants.length && !opts.pending) throw new UsageError('name at least one tenant, or give --pending');
        if (!opts.dryRun) ctx.audit.begin('invalidate', { tenants, pending: !!opts.pending });
        let r: TenantInvalidationResult;
        try {
          r = await invalidateTenantsAndOwed(
            { admin: ctx.admin, owedInvalidations: (n, o) => ctx.owedInvalidations(n, o), drainOwedInvalidations: (o) => ctx.drainOwedInvalidations(o), unknown: (ids) => ctx.tenants.unknown(ids) },
            {
              tenants, dryRun: !!opts.dryRun, pending: !!opts.pending, strict: !!opts.strict, signal: ctx.signal,
              // What was confirmed deleted so far, for the audit line of a run ended at once (the counts of a whole run).
              onDeleted: (n) => ctx.audit.progress({ deleted: n, owed_done: 0, owed_deleted: 0 }),
              onOwedDeleted: (n) => ctx.audit.progress({ deleted: ctx.audit.confirmed?.deleted ?? 0, owed_done: 0, owed_deleted: n }),
            },
          );
        } catch (err) {
          if (!(err instanceof BackendUnavailableError || err instanceof InterruptedError || err instanceof PartialFailureError) || !err.progress) throw err;
          const counts: Record<string, number> = { deleted: err.progress.done };
          // The one-line error says what was deleted; stdout carries the document only when one is asked for.
          // Per tenant and family, what was deleted before the failure (the same rows as a full run's).
          const done = (err.partial as TenantInvalidation[] | undefined) ?? [];
          // Run to its end, some keys out of reach (moving Cluster slots, exit 4): its rows, as a full run's.
          const ran = err instanceof PartialFailureError;
          return { data: { dryRun: false, tenants: done, deleted: err.progress.done, error: err.message }, render: ran ? (out: Output) => render(out, done, false) : () => undefined, failure: err, counts };
        }
        const { results, drained: owed, unknown } = r;
        // What is owed could not be read, and no tenant was named: no answer to print (a probe: -o json said
        // {"owed":{"done":0,"pending":0}}, "nothing owed", with work owed), only the error, as --dry-run.
        if (owed?.status === 'unchecked' && !tenants.length) throw owedFailure(owed);
        // --pending --dry-run with no tenant named: the list of what is owed is the answer (with tenants named,
        // their keys are, and what is owed is said on stderr).
        if (r.owed && !tenants.length) {
          const list = r.owed;
          return { data: { dryRun: true, owed: list.slice(0, OWED_LISTED).map((o) => ({ kind: o.kind, target: o.target })), ...(list.length > OWED_LISTED && { more: true }) }, render: (out) => renderOwed(out, list) };
        }
        if (r.owed) {
          const list = r.owed;
          ctx.out.info(list.length ? `--pending would also do ${list.length > OWED_LISTED ? `at least ${OWED_LISTED}` : list.length} invalidation(s) owed by earlier writes: ${list.slice(0, 5).map((o) => `${o.kind} ${o.target}`).join(', ')}${list.length > 5 ? ', …' : ''}` : 'nothing owed by earlier writes');
        } else if (r.waiting) {
          ctx.out.info(`note: ${r.waiting > OWED_LISTED ? `at least ${OWED_LISTED}` : r.waiting} cache invalidation(s) owed by earlier writes (Redis was down, or a run was killed) were not done: \`tenantctl invalidate --pending\` does them`);
        }
        // With --strict the error names them (each was said twice).
        if (!r.stopped) for (const t of unknown) ctx.out.warn(`warning: tenant ${t} is in neither the registry nor YAML (a typo?)`);
        const deleted = results.reduce((a, x) => a + x.total, 0);
        const failure = r.stopped ? new DeniedError(`unknown tenant(s): ${unknown.join(', ')}; --strict: nothing ${opts.dryRun ? 'listed' : 'deleted'}`) : owedFailure(owed);
        return {
          // The error in the document too, as invalidate <tenant> and invalidate-all put it (a probe: --pending's had none).
          data: { dryRun: !!opts.dryRun, tenants: results, unknown, owed: owed && owedData(owed), ...(failure && !r.stopped && { error: failure.message }) },
          render: (out) => render(out, results, !!opts.dryRun, owed),
          failure,
          counts: { deleted, owed_done: owed?.done ?? 0, owed_deleted: owed?.deleted ?? 0 },
        };
      }),
    );
}
