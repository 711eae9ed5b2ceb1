import type { Command } from 'commander';
import { action, idsArg } from '../action.js';

/** `invalidate <tenant...>`: delete every cache key of those tenants (every family). */
export function register(program: Command): void {
  program
    .command('invalidate')
    .description('delete every cache key of these tenants, in every key family')
    .argument('<tenant...>', 'tenant ids', idsArg())
    .option('--dry-run', 'list the keys that would be deleted')
    .action(
      action<[string[]], { dryRun?: boolean }>(async (ctx, tenants, opts) => {
        const results = await ctx.admin.invalidateTenants(tenants, { dryRun: opts.dryRun });
        return {
          data: { dryRun: !!opts.dryRun, tenants: results },
          render: (out) => {
            const verb = opts.dryRun ? 'would delete' : 'deleted';
            out.table(
              ['tenant', verb, 'by family'],
              results.map((r) => [r.tenant, r.total, Object.entries(r.families).filter(([, n]) => n).map(([f, n]) => `${f}: ${n}`).join(', ') || '-']),
            );
            if (opts.dryRun) for (const r of results) for (const k of r.keys ?? []) out.line(k);
          },
        };
      }),
    );
}
