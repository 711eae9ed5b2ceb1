import { DeniedError, InterruptedError, SIGNAL_WORD, describeError } from '../errors.js';
import { buildProgram } from './program.js';
import { endOnClosedPipe, exitIfOutputLost } from './closed-pipe.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { answeredThenStopped, commandFinished, dieOfHangUp, sealExitCode, stopRun, stoppedAtOnceNote, stoppingSignal, trapSignals } from './signals.js';
import { debugFromEnv } from './debug-env.js';
import { showControls } from '../redact.js';

/**
 * Runs the CLI; resolves with the exit code (also set on process.exitCode).
 * The launcher (bin/tenantctl.js) has set the V8 flags (v8-flags.ts) before it compiled this.
 */
export async function main(argv: string[] = process.argv): Promise<number> {
  endOnClosedPipe(stopRun);
  const program = buildProgram();
  trapSignals((signal, atOnce) => {
    // On a terminal, a new line first (off the ^C echo or a progress line); in a log, none.
    const what = SIGNAL_WORD[signal];
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}${atOnce ? `${what}` : `${what}: stopping after the current batch (again to stop at once)`}\n`);
  }, (signal) => {
    // Stopped at once: no report follows (it exited with nothing said, as if nothing had been done).
    const own = stoppedAtOnceNote();
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}${SIGNAL_WORD[signal]} again: stopped at once, ${own ?? 'without the report of what was done; the batch in flight may or may not have been done (a rerun finishes the job)'}\n`);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const { code, message } = exitCodeFor(err);
    // A denial is an answer, not an error: its line carries no "error:" prefix; nor does an interruption.
    const prefix = err instanceof DeniedError || err instanceof InterruptedError ? '' : 'error: ';
    // One line: a message quotes data (an id, a name, a server's answer), its control characters shown as \xNN.
    if (message) process.stderr.write(`${prefix}${showControls(message)}\n`);
    const debug = debugFromEnv() || argv.includes('--debug');
    if (debug && code === EXIT.INTERNAL) process.stderr.write(`${(err as Error)?.stack ?? describeError(err)}\n`);
    process.exitCode = code;
  } finally {
    commandFinished();
    // A signal that came while the event loop was busy (an embedded registry's queries) is delivered in the
    // next poll phase: waited for here, or it was dropped with the handlers below (exit 0 after SIGINT).
    await new Promise((resolve) => setImmediate(resolve));
    // A command's own action said a lost output already (its exit code set).
    if (!process.exitCode) await exitIfOutputLost();
    // A signal after the command's own last check (during its output, or just above): the answer is whole,
    // and the run was asked to stop: 130 / 143, as every interrupted run (it printed "stopping after the
    // current batch" and exited 0).
    const late = stoppingSignal();
    if (late && !process.exitCode) {
      const stopped = answeredThenStopped(late);
      process.stderr.write(`${stopped.message}\n`);
      process.exitCode = stopped.exitCode;
    }
    // The handlers stay: a signal from here to the exit keeps this code (signals.ts, sealExitCode).
    sealExitCode(Number(process.exitCode ?? 0));
    if (stoppingSignal() === 'SIGHUP') dieOfHangUp();
  }
  return Number(process.exitCode ?? 0);
}
