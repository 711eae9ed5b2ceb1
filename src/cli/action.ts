import { InvalidArgumentError, type Command } from 'commander';
import { DeniedError, InterruptedError, PartialFailureError, TenantctlError, UsageError, type BatchProgress } from '../errors.js';
import type { AuditRecord } from './audit-log.js';
import { exitCodeFor } from './exit-codes.js';
import { outputLost, OutputLostError } from './closed-pipe.js';
import { keepYoungGenerationSmall, SWEEPING_COMMANDS } from './v8-flags.js';
import { answeredThenStopped, onExitAtOnce, runSignal, sealExitCode, stopBetweenBatches, stoppingSignal, workDone } from './signals.js';
import { isValidId } from '../keys/ids.js';
import { parsePositiveInt } from '../config/positive-int.js';
import type { CliContext, GlobalOptions } from './context.js';
import type { Output } from './output.js';
import { requestedFormat } from './output-formats.js';

/** Commands that never open Redis: a TLS file for it that cannot be read does not stop them (a review). */
const NO_REDIS_COMMANDS: ReadonlySet<string> = new Set(['config', 'schema', 'list-tenants', 'completion']);

/** What a command's action returns: data, how to show it as a table, and its exit code. */
export interface CommandResult {
  data: unknown;
  /** The people's view; without it the data is printed as JSON. */
  render?: (out: Output) => void;
  /**
   * A negative or partial outcome (denied, partial failure, failed smoke test):
   * thrown after the data is rendered, so the exit code and the stderr line
   * come from its class, in one place (exit-codes.ts).
   */
  failure?: TenantctlError;
  /** For the audit log of a write: what it did (keys deleted, items written). */
  counts?: Record<string, number>;
}

/**
 * Turns `run(ctx, ...args, options)` into a commander action: builds the
 * context from the global and command options (and the run's signal),
 * renders the result (table or --json), sets the exit code through the
 * result's failure, records a begun write in the audit log however it ended,
 * and always closes the context.
 */
export function action<A extends unknown[], O>(run: (ctx: CliContext, ...argsAndOptions: [...A, O]) => Promise<CommandResult>) {
  return async (...all: unknown[]): Promise<void> => {
    const cmd = all[all.length - 1] as Command;
    // The launcher set it before compiling; again here for main() run without the launcher (tests, a program of one's own).
    if (SWEEPING_COMMANDS.has(cmd.name())) keepYoungGenerationSmall();
    const opts = cmd.optsWithGlobals() as GlobalOptions & O;
    if (opts.output === 'prometheus' && cmd.name() !== 'cache-info') throw new UsageError('-o prometheus is only for cache-info');
    requestedFormat(opts); // two formats that disagree: a usage error before anything runs
    const started = process.hrtime.bigint();
    // The context (configuration, services, renderers) loads only when a command runs, not for --help or --version.
    const { CliContext } = await import('./context.js');
    const ctx = new CliContext(opts, process.env, runSignal());
    if (BATCHED_COMMANDS.has(cmd.name())) stopBetweenBatches();
    // A signal that ends a write at once still leaves its audit line (the write's outcome is unknown).
    // With what it had confirmed done (a sweep's keys deleted: at least those; the line had no counts, a probe).
    onExitAtOnce((code) => {
      const sofar = ctx.audit.confirmed;
      ctx.audit.finish('interrupted', code, sofar, `interrupted by a signal; ${sofar ? 'the counts are what was confirmed done, and the batch in flight may or may not have landed' : 'the write may or may not have landed'}`);
    });
    ctx.out.debug(`configuration resolved in ${ms(started)} ms (project ${ctx.config.project.dir}${ctx.config.project.found ? '' : ', none found: the working directory'})`);
    let result: CommandResult | undefined;
    let thrown: unknown;
    try {
      // A --registry typed on this command line that is no registry is this command's mistake, even where the
      // registry is not needed (invalidate deleted keys, exit 0); `config` shows it, to diagnose it.
      const registry = ctx.config.registry;
      if (registry.kind === 'invalid' && registry.fromFlag && cmd.name() !== 'config') throw new UsageError(registry.problem);
      // A Redis TLS file that cannot be read: exit 2 before anything is done (`config` shows the setting).
      if (ctx.config.redis && !NO_REDIS_COMMANDS.has(cmd.name())) (await import('../cache/redis-spec.js')).assertTlsFilesReadable(ctx.config.redis);
      result = await run(ctx, ...([...all.slice(0, -2), opts] as [...A, O]));
      workDone();
      ctx.out.debug(`${cmd.name()} ran in ${ms(started)} ms`);
      if (ctx.out.isDocument || !result.render) ctx.out.data(result.data);
      else result.render(ctx.out);
      // The answer could not be written (a full disk): said, exit 74; the work itself was done. A command that
      // failed keeps its code, the lost report said beside it.
      const lost = await outputLost();
      // Stopped by a signal that came after the last batch (or while one call waited, or the answer was
      // written): the answer is complete and shown, but the run was asked to stop: 130 / 143, as every
      // interrupted run. Checked after the last wait before the audit line, which then says so too, and after
      // a full turn of the event loop: a signal sent while the answer was written is handled by then (it was
      // seen only after the line: exit 0, the signal dropped; a review).
      await new Promise((resolve) => setImmediate(resolve));
      const signal = stoppingSignal();
      if (signal && !result.failure) {
        result = { ...result, failure: answeredThenStopped(signal) };
      }
      if (lost && result.failure) ctx.out.warn(`warning: ${lost.message}`);
      if (result.failure) throw result.failure;
      if (lost) throw lost;
    } catch (err) {
      thrown = err;
      // Stopped because stdout failed (watch: nobody can read it), no signal sent: the lost output, exit 74
      // ("watch stopped by SIGTERM", 143, said a signal nobody sent).
      const lost = err instanceof InterruptedError && !stoppingSignal() ? await outputLost() : undefined;
      if (lost) {
        thrown = lost;
        throw lost;
      }
      if (ctx.out.debugging) ctx.out.debug(`failed after ${ms(started)} ms: ${(err as Error)?.stack ?? String(err)}`);
      throw err;
    } finally {
      const { code, message } = thrown === undefined ? { code: 0, message: undefined } : exitCodeFor(thrown);
      const progress = (thrown as { progress?: BatchProgress } | undefined)?.progress;
      const counts = result?.counts ?? (progress ? { done: progress.done, ...(progress.groups ?? {}) } : undefined);
      ctx.audit.finish(auditOutcome(thrown, code), code, counts, message);
      // What the line says is the exit code: a signal from now on (the connections closing) does not change it.
      sealExitCode(code);
      await ctx.close();
    }
  };
}

/** The commands that check the run's signal between batches (they report what they did and exit 130 / 143). */
const BATCHED_COMMANDS = new Set(['invalidate', 'invalidate-all', 'migrate-yaml', 'verify', 'cache-info', 'watch']);

const ms = (since: bigint) => (Number(process.hrtime.bigint() - since) / 1e6).toFixed(1);

function auditOutcome(err: unknown, code: number): AuditRecord['outcome'] {
  // Done as asked; only its answer could not be written to stdout.
  if (err === undefined || err instanceof OutputLostError) return 'ok';
  if (err instanceof InterruptedError) return 'interrupted';
  // A negative answer (verify --fix found and deleted stale entries: exit 1) is the work done as asked.
  if (err instanceof DeniedError) return 'ok';
  if (err instanceof PartialFailureError) return 'partial';
  if (err instanceof UsageError) return 'refused';
  return code === 0 ? 'ok' : 'failed';
}

/** commander argument parser for one id: a bad id is a usage error (exit 2) before anything runs. */
export function idArg(kind = 'tenant') {
  return (value: string): string => {
    if (isValidId(value)) return value;
    // commander's line names the value already (controls shown as \xNN): the rule alone, not the value again
    // quoted another way (value 'ac\x1b[31m' is invalid ... invalid tenant id "ac\u001b[31m").
    throw new InvalidArgumentError(`a ${kind} id is 1-128 letters, digits, '_', '-' or '.'`);
  };
}

/** commander parser for variadic ids (called once per value with the list so far). */
export function idsArg(kind = 'tenant') {
  const one = idArg(kind);
  return (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), one(value)];
}

/** commander parser for a positive whole number option. */
export function intArg(name: string, max?: number, min = 1) {
  return (value: string): number => {
    try {
      return parsePositiveInt(value, name, min, max);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
