import type { Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../../errors.js';
import { action } from '../action.js';
import type { Output } from '../output.js';
import type { InvalidateAllResult } from '../../services/cache-admin.js';

/** Asks on the terminal; anything but y/yes is a no. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function render(out: Output, r: InvalidateAllResult) {
  out.table(['family', r.dryRun ? 'keys' : 'deleted'], [...Object.entries(r.families), ['total', r.total]]);
}

/** `invalidate-all`: delete every key of the tool's families; confirmation or --yes. */
export function register(program: Command): void {
  program
    .command('invalidate-all')
    .description('delete every key of the tool\'s key families (all tenants); other keys are never touched')
    .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)')
    .option('--dry-run', 'count the keys per family without deleting')
    .action(
      action<[], { yes?: boolean; dryRun?: boolean }>(async (ctx, opts) => {
        const interactive = !!process.stdin.isTTY && !!process.stderr.isTTY;
        // Checked before Redis is touched: nothing happens without consent.
        if (!opts.dryRun && !opts.yes && !interactive) {
          throw new UsageError('invalidate-all deletes keys of every tenant: pass --yes (no terminal to ask on), or --dry-run to count');
        }
        if (!opts.dryRun && !opts.yes) {
          const plan = await ctx.admin.invalidateAll({ dryRun: true });
          const target = ctx.cache.target;
          if (!(await confirm(`Delete ${plan.total} keys of the tool's key families on ${target}? [y/N] `))) {
            throw new UsageError('not confirmed; nothing deleted');
          }
        }
        const result = await ctx.admin.invalidateAll({ dryRun: opts.dryRun });
        return { data: result, render: (out) => render(out, result) };
      }),
    );
}
