import type { Command } from 'commander';
import { InterruptedError } from '../../errors.js';
import { action, idsArg } from '../action.js';
import { keepYoungGenerationSmall } from '../v8-flags.js';
import type { MigrationReport } from '../../services/migration.js';
import type { Output } from '../output.js';
import { own } from '../styled.js';

function render(out: Output, r: MigrationReport) {
  const colour = (a: string) =>
    a === 'conflict' || a === 'error' ? own(out.c.red(a)) : a === 'create' || a === 'update' ? own(out.c.green(a)) : a;
  out.table(
    ['item', 'kind', r.dryRun ? 'plan' : 'action', 'detail'],
    r.items.map((i) => [
      i.id,
      i.kind,
      colour(i.action),
      [i.reason, i.cacheInvalidated === false ? 'cache NOT invalidated yet' : undefined].filter(Boolean).join('; '),
    ]),
  );
  const c = r.counts;
  // Items a stop left undone (a signal, a backend lost) are errors in the counts; said apart, so an interrupted
  // run of 10,000 files does not read as 9,000 bad files.
  const undone = r.items.filter((i) => i.action === 'error' && (i.failure === 'interrupted' || i.failure === 'backend')).length;
  const errors = undone ? `${c.error} error (${undone === c.error ? 'all' : undone} not ${r.dryRun ? 'planned' : 'done'}: stopped)` : `${c.error} error`;
  out.summary(`${r.dryRun ? 'plan' : 'done'}: ${c.create} create, ${c.update} update, ${c.unchanged} unchanged, ${c.conflict} conflict, ${c.skip} skip, ${errors}`);
}

/** Files whose warnings are said line by line; the rest are one count. */
const WARNED_FILES_SHOWN = 20;

/** Warnings once per cause: per-file warnings as they are, the cache's state in one line with a count. */
function warnings(out: Output, r: MigrationReport) {
  // Files with warnings said one by one up to a limit, then one line with the count: 10,000 files made from
  // one template with `enabled: yes` are a count, not 10,000 lines (--json lists every one).
  let filesSaid = 0;
  const unsaid = { files: 0, warnings: 0 };
  for (const item of r.items) {
    if (item.warnings.length && filesSaid >= WARNED_FILES_SHOWN) {
      unsaid.files++;
      unsaid.warnings += item.warnings.length;
    } else if (item.warnings.length) {
      filesSaid++;
      // A file with thousands of literal secrets gets a few lines and a count, not thousands of lines.
      for (const w of item.warnings.slice(0, item.warnings.length > 5 ? 3 : 5)) out.warn(`warning: ${w}`);
      if (item.warnings.length > 5) out.warn(`warning: … and ${item.warnings.length - 3} more in ${item.file ?? item.id}`);
    }
    if (item.action === 'error' && item.failure === 'bad-input') out.warn(`${item.reason}`);
    // Named: the server's words name no tenant, and one line per distinct text merged them all (a review).
    if (item.action === 'error' && item.failure === 'refused') out.warn(`${item.kind} ${item.id}: ${item.reason}`);
  }
  if (unsaid.files) out.warn(`warning: … and ${unsaid.warnings} more warning(s) in ${unsaid.files} more file(s) (-o json lists each, as do \`tenantctl doctor\`'s checks)`);
  const gone = r.migratedWithoutFile;
  if (gone) {
    out.warn(`warning: ${gone.total} tenant(s) migrated earlier have no file here now (${gone.some.join(', ')}${gone.total > gone.some.length ? ', …' : ''}): left as they are in the registry, still active (a renamed file is a new tenant); suspend or remove them there if they are gone`);
  }
  if (r.earlierInvalidations?.done) out.info(`did ${r.earlierInvalidations.done} cache invalidation(s) an earlier run still owed`);
  const stale = r.items.filter((i) => i.cacheInvalidated === false).length;
  // No Redis configured: nothing to invalidate here, but the running services may cache what was just written.
  const unconfigured = r.items.filter((i) => i.cacheInvalidated === 'not-configured').length;
  const owed = `${r.pendingAtLeast ? 'at least ' : ''}${r.pendingInvalidations ?? (unconfigured || stale)}`;
  if (unconfigured && !r.dryRun) {
    out.info(`note: no Redis configured: the cache of ${unconfigured} written item(s) was not invalidated; ${owed} invalidation(s) are recorded in the registry (\`tenantctl invalidate --pending\` with the services' Redis does them)`);
  }
  if (r.cacheError) {
    const what = stale ? `cache not invalidated for ${stale} written item(s)` : 'cache invalidations owed by an earlier run not done';
    out.warn(`warning: ${what}: ${r.cacheError}; ${owed} invalidation(s) are recorded in the registry and the next write command (or \`tenantctl invalidate --pending\`) does them`);
  }
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
        const { migrationFailure } = await import('../../services/migration.js');
        // The embedded registry's WebAssembly heap takes most of the memory budget when it writes: keep V8's young
        // generation small there (v8-flags.ts). A dry run writes nothing, and runs faster with V8's default.
        if (!opts.dryRun && (ctx.config.registry.kind === 'embedded' || ctx.config.registry.kind === 'memory')) keepYoungGenerationSmall();
        const showProgress = !!process.stderr.isTTY;
        if (!opts.dryRun) ctx.audit.begin('migrate-yaml', { ids: ids?.length ? ids : 'all', force: !!opts.force });
        let report: MigrationReport;
        let interrupted: InterruptedError | undefined;
        try {
          report = await ctx.migration.run({
            ids,
            dryRun: opts.dryRun,
            force: opts.force,
            signal: ctx.signal,
            progress: (done, total) => {
              if (total >= 20 && (showProgress ? true : done === total || done % 1000 === 0)) {
                ctx.out.stderr.write(showProgress ? `\rmigrating ${done}/${total}${done === total ? '\n' : ''}` : `migrating ${done}/${total}\n`);
              }
            },
          });
        } catch (err) {
          // Stopped between batches: report what was done, then exit 130/143.
          if (!(err instanceof InterruptedError) || !err.partial) throw err;
          interrupted = err;
          report = err.partial as MigrationReport;
        }
        warnings(ctx.out, report);
        const c = report.counts;
        // A conflict a forced run overwrites says how, in the CLI's words (the library's reason does not name flags).
        const said = { ...report, items: report.items.map((i) => (i.forceable ? { ...i, reason: `${i.reason}; use --force to overwrite` } : i)) };
        return {
          data: said,
          failure: interrupted ?? migrationFailure(report),
          render: (out) => render(out, said),
          counts: { written: report.items.filter((i) => i.written).length, create: c.create, update: c.update, conflict: c.conflict, error: c.error },
        };
      }),
    );
}
