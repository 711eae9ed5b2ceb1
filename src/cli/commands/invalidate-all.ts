import { Option, type Command } from 'commander';
import { BackendUnavailableError, InterruptedError, PartialFailureError, UsageError, stopCause } from '../../errors.js';
import { action, intArg } from '../action.js';
import type { Output } from '../output.js';
import type { InvalidateAllResult } from '../../services/cache-admin.js';
import { progressLine } from '../progress.js';
import { stackedBar } from '../charts.js';
import { own } from '../styled.js';
import { showControls } from '../../redact.js';
import { warnMovingSlots } from '../moving-slots.js';

/**
 * Asks on the terminal; anything but y/yes is a no; Ctrl-C there deletes nothing and exits 130, as does a
 * SIGINT / SIGTERM sent to the process (`runSignal`: a supervisor, `timeout`), 130 / 143: the prompt waited on
 * after it, "stopping after the current batch", until a second signal or an answer (a probe).
 */
async function confirm(question: string, runSignal: AbortSignal): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const aborted = new AbortController();
  const stop = () => aborted.abort();
  rl.on('SIGINT', stop);
  runSignal.addEventListener('abort', stop, { once: true });
  if (runSignal.aborted) stop();
  let ended = false;
  rl.on('close', () => (ended = true));
  try {
    return /^y(es)?$/i.test((await rl.question(question, { signal: aborted.signal })).trim());
  } catch (err) {
    // Ctrl-C at the prompt (readline's own SIGINT) aborts with no signal of the run's: SIGINT all the same.
    const cause = stopCause(runSignal);
    if (aborted.signal.aborted) throw new InterruptedError(cause === 'abort' ? 'SIGINT' : cause, 'aborted at the prompt: nothing deleted');
    // Ctrl-D (the input ended) answers nothing: a no, as Enter is (it was "internal error: Aborted with Ctrl+D", exit 70).
    if (ended) return false;
    throw err;
  } finally {
    runSignal.removeEventListener('abort', stop);
    rl.close();
  }
}

/** `failed`: Redis failed midway; the error line says what was deleted and whether a rerun can finish. */
function render(out: Output, r: InvalidateAllResult, maxKeys?: number, failed = false) {
  const families = Object.entries(r.families);
  const shown = out.wide ? families : families.filter(([, n]) => n > 0);
  out.table(['family', r.dryRun ? 'keys' : 'deleted'], [...shown, ['total', r.total]]);
  // On a terminal, one line that shows what the deletion was made of.
  if (out.pictures) for (const line of stackedBar(shown.map(([f, n]) => [showControls(f), n]), 60, out.c)) out.line(own(line));
  if (!r.complete && !failed) out.summary(`stopped before the end of the keyspace (--max-keys or a stop): run again to finish`);
  // A dry run counts them all; the run it previews stops at --max-keys.
  if (r.dryRun && maxKeys !== undefined && maxKeys < r.total) out.summary(`with --max-keys ${maxKeys}, a run deletes at most ${maxKeys} of these ${r.total}`);
}

/** `invalidate-all`: delete every key of the tool's families (or some); confirmation or --yes. */
export function register(program: Command): void {
  program
    .command('invalidate-all')
    .description('delete every key of the tool\'s key families (all tenants); other keys are never touched')
    .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)')
    .option('--dry-run', 'count the keys per family without deleting')
    .option('--family <name>', 'only this key family (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--max-keys <n>', 'stop after deleting this many keys').argParser(intArg('--max-keys')))
    .action(
      action<[], { yes?: boolean; dryRun?: boolean; family?: string[]; maxKeys?: number }>(async (ctx, opts) => {
        // Checked before Redis is touched: nothing happens without consent, or with a family that does not exist.
        opts.family?.forEach((f) => ctx.keys.family(f));
        const interactive = !!process.stdin.isTTY && !!process.stderr.isTTY;
        if (!opts.dryRun && !opts.yes && !interactive) {
          throw new UsageError('invalidate-all deletes keys of every tenant: pass --yes (no terminal to ask on), or --dry-run to count');
        }
        const scope = { families: opts.family ?? 'all', maxKeys: opts.maxKeys };
        if (!opts.dryRun && !opts.yes) {
          const plan = await ctx.admin.invalidateAll({ dryRun: true, families: opts.family, signal: ctx.signal });
          // Before the prompt: the count it shows is the approximate one (the deletion looks at those slots again).
          warnMovingSlots(ctx.out, plan.moving, 'counting', 'the count below may be off by them');
          const what = opts.family ? `the ${opts.family.join(', ')} famil${opts.family.length > 1 ? 'ies' : 'y'}` : 'the tool\'s key families';
          const upTo = opts.maxKeys && opts.maxKeys < plan.total ? ` (at most ${opts.maxKeys})` : '';
          if (!(await confirm(`Delete ${plan.total}${upTo} key${plan.total === 1 && !upTo ? '' : 's'} of ${what} on ${ctx.cache.target}? [y/N] `, ctx.signal))) {
            throw new UsageError('not confirmed; nothing deleted');
          }
        }
        if (!opts.dryRun) ctx.audit.begin('invalidate-all', scope);
        const progress = progressLine(ctx.out, opts.dryRun ? 'counted' : 'deleted');
        // Keys looked at so far, for the report of a sweep stopped midway.
        let scanned = 0;
        try {
          const result = await ctx.admin.invalidateAll({
            dryRun: opts.dryRun,
            families: opts.family,
            maxKeys: opts.maxKeys,
            signal: ctx.signal,
            onProgress: (p) => {
              scanned = p.scanned;
              progress.update(p);
              if (!opts.dryRun) ctx.audit.progress({ deleted: p.done, scanned: p.scanned });
            },
          });
          progress.done();
          // On stderr whatever the format (it was said with the table only: -o json had the slots and no word).
          warnMovingSlots(ctx.out, result.moving, opts.dryRun ? 'counting' : 'deleting');
          const data = opts.dryRun && opts.maxKeys !== undefined ? { ...result, at_most: Math.min(result.total, opts.maxKeys) } : result;
          return { data, render: (out) => render(out, result, opts.maxKeys), counts: { deleted: opts.dryRun ? 0 : result.total, scanned: result.scanned } };
        } catch (err) {
          progress.done();
          // Stopped midway (Redis failed, or a signal): what was deleted is reported, and a rerun finishes the job.
          // Or run to its end with keys out of reach (slots moving between Cluster masters: exit 4; it printed nothing).
          const p = err instanceof InterruptedError || err instanceof BackendUnavailableError || err instanceof PartialFailureError ? err.progress : undefined;
          if (!p || opts.dryRun) throw err;
          const partial: InvalidateAllResult & { error: string } = {
            dryRun: false,
            families: { ...ctx.admin.zeroCounts(opts.family), ...(p.groups ?? {}) },
            total: p.done,
            scanned,
            complete: false,
            error: (err as Error).message,
          };
          const counts: Record<string, number> = { deleted: p.done };
          return { data: partial, render: (out: Output) => render(out, partial, undefined, err instanceof BackendUnavailableError), failure: err as InterruptedError, counts };
        }
      }),
    );
}
