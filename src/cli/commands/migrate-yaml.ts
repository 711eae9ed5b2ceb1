import type { Command } from 'commander';
import { action, idsArg } from '../action.js';
import { migrationFailure, type MigrationReport } from '../../services/migration.js';
import type { Output } from '../output.js';

function render(out: Output, r: MigrationReport) {
  const colour = (a: string) =>
    a === 'conflict' || a === 'error' ? out.c.red(a) : a === 'create' || a === 'update' ? out.c.green(a) : a;
  out.table(
    ['item', 'kind', r.dryRun ? 'plan' : 'action', 'detail'],
    r.items.map((i) => [
      i.id,
      i.kind,
      colour(i.action),
      [i.reason, i.cacheInvalidated === false ? 'cache NOT invalidated' : undefined].filter(Boolean).join('; '),
    ]),
  );
  const c = r.counts;
  out.line(`${r.dryRun ? 'plan' : 'done'}: ${c.create} create, ${c.update} update, ${c.unchanged} unchanged, ${c.conflict} conflict, ${c.skip} skip, ${c.error} error`);
}

/** `migrate-yaml [ids...]`: YAML tenant files into the registry. */
export function register(program: Command): void {
  program
    .command('migrate-yaml')
    .description('load tenant YAML files (and tiers.yaml, subscriptions) into the registry; invalidates the cache of what it writes')
    .argument('[ids...]', 'tenant ids (default: every file in the tenants directory)', idsArg())
    .option('--dry-run', 'print the plan (create / update / unchanged / conflict / skip / error) and write nothing')
    .option('--force', 'overwrite tenants edited in the registry since their last migration')
    .action(
      action<[string[] | undefined], { dryRun?: boolean; force?: boolean }>(async (ctx, ids, opts) => {
        const showProgress = !!process.stderr.isTTY;
        const report = await ctx.migration.run({
          ids,
          dryRun: opts.dryRun,
          force: opts.force,
          progress: (done, total) => {
            if (total >= 20 && (showProgress ? true : done % 100 === 0 || done === total)) {
              ctx.out.stderr.write(showProgress ? `\rmigrating ${done}/${total}${done === total ? '\n' : ''}` : `migrating ${done}/${total}\n`);
            }
          },
        });
        for (const item of report.items) {
          for (const w of item.warnings) ctx.out.warn(`warning: ${w}`);
          if (item.action === 'error') ctx.out.warn(`${item.reason}`);
        }
        return {
          data: report,
          failure: migrationFailure(report),
          render: (out) => render(out, report),
        };
      }),
    );
}
