import { isatty } from 'node:tty';
import { writeSync } from 'node:fs';
import { InterruptedError, SIGNAL_EXIT, SIGNAL_WORD, type StopSignal } from '../errors.js';
import { unwrittenOutput } from './closed-pipe.js';

/**
 * SIGINT, SIGTERM and SIGHUP: a command that works in batches (it called
 * stopBetweenBatches) stops between them: the first signal aborts the run's
 * AbortSignal (the command reports what it did and exits 130 / 143 / 129), a second
 * one exits at once. Any other command, and any command before it started,
 * exits at once on the first (130 / 143): a read waiting on a stalled server
 * would otherwise run to its timeout and exit 0.
 */
let controller = new AbortController();
let batched = false;
let byClosedPipe = false;
let beforeExit: ((code: number) => void) | undefined;
/** The command has ended (its output written): a signal now is noted for the exit code, not acted on. */
let finished = false;
/** The exit code the run has recorded (its audit line written): a signal from now on ends the run with it. */
let sealedCode: number | undefined;
/** The command's work is done, its answer being written: a signal no longer ends it at once (nothing is in flight). */
let answering = false;
/** The handlers of the run (see trapSignals). */
let installed: Array<readonly [StopSignal, () => void]> = [];

/**
 * The command has ended: a signal from now on only marks the run stopped (lateStop), so the output
 * already written is not cut by an exit at once, and a signal that came while the event loop was busy
 * (PGlite's work) is still counted when it is delivered (it was dropped with the handlers: exit 0).
 */
export function commandFinished(): void {
  finished = true;
}

/**
 * The run's outcome is recorded (its audit line, if any, written) with this exit code: a signal from now on
 * ends the process at once with it (it exited 143 while the line said 0), not waiting for the connections to
 * close (a silent PostgreSQL kept it alive), unless the answer is still being written to a slow reader: cut,
 * the exit is the signal's (130 / 143).
 */
export function sealExitCode(code: number): void {
  sealedCode = code;
}

/** The running command checks the run's signal between batches (see the comment above). */
export function stopBetweenBatches(): void {
  batched = true;
}

/**
 * The work is done and its answer is being written: a signal now is checked once the answer is out (130 / 143
 * "the answer above is complete", its audit line saying so), any command alike. A subscription change
 * signalled then exited at once with a line saying the write "may or may not have landed" (a review).
 */
export function workDone(): void {
  batched = true;
  answering = true;
}

/** What a second signal's line says instead of the generic one (watch: the changes received and not applied). */
let atOnceNote: (() => string | undefined) | undefined;

export function onStoppedAtOnce(note: (() => string | undefined) | undefined): void {
  atOnceNote = note;
}

/** The running command's own words for a stop at once, if it has any now. */
export function stoppedAtOnceNote(): string | undefined {
  return atOnceNote?.();
}

/** Runs (synchronously) before a signal ends the process at once: the audit record of a write in flight. */
export function onExitAtOnce(hook: ((code: number) => void) | undefined): void {
  beforeExit = hook;
}

export function runSignal(): AbortSignal {
  return controller.signal;
}

/** Stops the run as a first SIGTERM does, without a signal (the reader of stdout went away). */
export function stopRun(): void {
  if (!controller.signal.aborted) {
    byClosedPipe = true;
    controller.abort('SIGTERM');
  }
}

/** A run asked to stop after its answer was complete: said so, exit 130 / 143 (action's check, and main's after it). */
export function answeredThenStopped(signal: StopSignal): InterruptedError {
  return new InterruptedError(signal, `${SIGNAL_WORD[signal]} (the answer above is complete)`);
}

/** The SIGINT / SIGTERM that stopped the run, if one did (a closed stdout is none: the command keeps its own exit code). */
export function stoppingSignal(): StopSignal | undefined {
  return controller.signal.aborted && !byClosedPipe ? (controller.signal.reason as StopSignal) : undefined;
}

/**
 * After a hang-up, once the report and the audit line are written: where a standard stream is a terminal, the
 * process ends by the signal itself (status 129 to the shell) rather than exiting. Node 20 restores the
 * terminal's modes as it exits, and on a terminal that is gone that failed an assertion (SIGABRT and a
 * native stack: nodejs/node#51519; a review).
 */
export function dieOfHangUp(): void {
  if (!onTerminal) return;
  process.removeAllListeners('SIGHUP');
  process.kill(process.pid, 'SIGHUP');
}

/** Whether a standard stream was a terminal when the run started (after a hang-up, isatty says no). */
let onTerminal = false;

/**
 * Installs the handlers of a run (those of an earlier run in this process removed). They stay until the
 * process exits: a signal during the last steps (connections closing, the launcher's code cache written)
 * met no handler and killed the process (143) after an audit line saying exit 0.
 */
export function trapSignals(onFirst: (signal: StopSignal, atOnce: boolean) => void, onAgain?: (signal: StopSignal) => void): void {
  for (const [signal, on] of installed) process.removeListener(signal, on);
  controller = new AbortController();
  onTerminal = [0, 1, 2].some((fd) => isatty(fd));
  batched = false;
  byClosedPipe = false;
  beforeExit = undefined;
  atOnceNote = undefined;
  finished = false;
  sealedCode = undefined;
  answering = false;
  const handler = (signal: StopSignal) => () => {
    if (sealedCode !== undefined) {
      // After a hang-up on a terminal the process still ends by the signal (dieOfHangUp: an exit aborts there).
      if (signal === 'SIGHUP') dieOfHangUp();
      if (unwrittenOutput() === 0) process.exit(sealedCode);
      // The answer is cut: the work was done (and recorded so), its report not all read. Said, where stderr takes it.
      try {
        writeSync(2, `${SIGNAL_WORD[signal]}: the answer was cut before its reader took all of it; the work was done (its exit code would have been ${sealedCode})\n`);
      } catch {
        /* stderr full or gone: the exit code says it */
      }
      process.exit(SIGNAL_EXIT[signal]);
    }
    if (finished) {
      if (!controller.signal.aborted) controller.abort(signal);
      return;
    }
    const code = SIGNAL_EXIT[signal];
    const again = controller.signal.aborted && !byClosedPipe;
    const atOnce = controller.signal.aborted || !batched;
    // While the answer is written: no "stopping after the current batch" (none is left); the check after it says.
    if (!controller.signal.aborted && !answering) onFirst(signal, atOnce);
    else if (again) onAgain?.(signal);
    controller.abort(signal);
    if (atOnce) {
      try {
        beforeExit?.(code);
      } finally {
        if (signal === 'SIGHUP') dieOfHangUp();
        process.exit(code);
      }
    }
  };
  installed = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => [signal, handler(signal)] as const);
  for (const [signal, on] of installed) process.on(signal, on);
}
