import type { Command } from 'commander';
import { BackendUnavailableError, DeniedError, InterruptedError, UsageError } from '../../errors.js';
import type { TenantInvalidation } from '../../services/cache-admin.js';
import type { DrainResult } from '../../services/invalidation-outbox.js';
import { action, idsArg } from '../action.js';
import type { Output } from '../output.js';

function render(out: Output, results: TenantInvalidation[], dryRun: boolean, owed?: DrainResult) {
  if (results.length) {
    out.table(
      ['tenant', dryRun ? 'would delete' : 'deleted', 'by family'],
      results.map((r) => [r.tenant, r.total, Object.entries(r.families).filter(([, n]) => n).map(([f, n]) => `${f}: ${n}`).join(', ') || '-']),
    );
  }
  if (dryRun) for (const r of results) for (const k of r.keys ?? []) out.line(k);
  if (owed?.done) out.summary(`also done: ${owed.done} invalidation(s) owed by earlier writes`);
}

/** `invalidate <tenant...>`: delete every cache key of those tenants (every family), and what earlier writes still owe. */
export function register(program: Command): void {
  program
    .command('invalidate')
    .description('delete every cache key of these tenants, in every key family (and any invalidation earlier writes still owe)')
    .argument('[tenant...]', 'tenant ids', idsArg())
    .option('--dry-run', 'list the keys that would be deleted')
    .option('--pending', 'only do the invalidations earlier writes still owe (killed, or Redis down at the time)')
    .option('--strict', 'exit 1 when a tenant is in neither the registry nor YAML')
    .action(
      action<[string[] | undefined], { dryRun?: boolean; pending?: boolean; strict?: boolean }>(async (ctx, tenants = [], opts) => {
        if (!tenants.length && !opts.pending) throw new UsageError('name at least one tenant, or give --pending');
        if (!opts.dryRun) ctx.audit.begin('invalidate', { tenants, pending: !!opts.pending });
        let results: TenantInvalidation[] = [];
        try {
          results = tenants.length ? await ctx.admin.invalidateTenants(tenants, { dryRun: opts.dryRun, signal: ctx.signal }) : [];
        } catch (err) {
          if (!(err instanceof BackendUnavailableError || err instanceof InterruptedError) || !err.progress) throw err;
          const counts: Record<string, number> = { deleted: err.progress.done };
          return { data: { dryRun: false, tenants: [], deleted: err.progress.done, error: err.message }, failure: err, counts };
        }
        // Invalidations earlier writes still owe (the registry's outbox): done now too, never creating a registry.
        const owed = opts.dryRun ? undefined : await ctx.drainOwedInvalidations();
        const unknown = tenants.length ? await ctx.tenants.unknown(tenants) : [];
        for (const t of unknown) ctx.out.warn(`warning: tenant ${t} is in neither the registry nor YAML (a typo?)`);
        const deleted = results.reduce((a, r) => a + r.total, 0);
        return {
          data: { dryRun: !!opts.dryRun, tenants: results, unknown, owed: owed && { done: owed.done, pending: owed.pending } },
          render: (out) => render(out, results, !!opts.dryRun, owed),
          failure: opts.strict && unknown.length ? new DeniedError(`unknown tenant(s): ${unknown.join(', ')}`) : owed?.status === 'failed' ? owed.error : undefined,
          counts: { deleted, owed_done: owed?.done ?? 0 },
        };
      }),
    );
}
