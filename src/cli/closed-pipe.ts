import { TenantctlError } from '../errors.js';
import { showControls } from '../redact.js';
import { EXIT } from './exit-values.js';

/** stdout could not take the command's output (a full disk, an I/O error): the work is done, its answer lost. */
export class OutputLostError extends TenantctlError {
  readonly exitCode = EXIT.OUTPUT;
  constructor(readonly err: NodeJS.ErrnoException) {
    super(`the output could not be written to stdout (${err.message})`, { cause: err });
  }
}

let stdoutFailure: NodeJS.ErrnoException | undefined;

/**
 * `tenantctl ... | head` closes the pipe early: that ends the output, it is
 * not an error. Further writes to that stream are dropped and the command
 * runs to its end, so the exit code is the command's own (a migration with a
 * bad file piped to head still exits 4, which `set -o pipefail` sees), not
 * the one set when the pipe closed. The same for stderr (`2>&1 | head`).
 * `onStdoutClosed` lets a long-running command (watch) stop: nobody reads it.
 *
 * Any other failure of a write (`> /dev/full`, ENOSPC under a cron's
 * `2>>log`) was rethrown in the stream's error event: an uncaught exception,
 * Node's stack trace and exit 1, and with stderr full the data on stdout was
 * lost too. Now stderr failing only ends what stderr says; stdout failing is
 * kept for the command's end (outputLost: exit 74, one line on stderr).
 */
export function endOnClosedPipe(onStdoutClosed?: () => void): void {
  for (const stream of [process.stdout, process.stderr]) {
    let failed = false;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (failed) return;
      failed = true;
      // Nothing more reaches the reader: later writes are no-ops, not errors.
      stream.write = (() => true) as typeof stream.write;
      if (stream !== process.stdout) return;
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') stdoutFailure = err;
      // A command still producing output (watch) stops as on SIGTERM; one that is done is not affected.
      onStdoutClosed?.();
    });
  }
}

/**
 * The failure of a write to stdout other than a closed pipe, once the writes made so far have reported
 * (a write to a file fails in its stream's next tick).
 */
export async function outputLost(): Promise<OutputLostError | undefined> {
  await new Promise((resolve) => setImmediate(resolve));
  return stdoutFailure && new OutputLostError(stdoutFailure);
}

/** Output lost outside a command's action (--version, --help, completion): one line on stderr, exit 74 (they exited 0, the file empty). */
export async function exitIfOutputLost(): Promise<void> {
  const lost = await outputLost();
  if (!lost) return;
  process.stderr.write(`error: ${showControls(lost.message)}\n`);
  process.exitCode = lost.exitCode;
}

/** Bytes of the answer (stdout, stderr) not yet taken by the reader; a stream its reader closed (`| head`) counts none. */
export function unwrittenOutput(): number {
  const pending = (s: NodeJS.WriteStream) => (s.destroyed || s.writableEnded ? 0 : s.writableLength);
  return pending(process.stdout) + pending(process.stderr);
}
