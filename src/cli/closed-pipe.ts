/**
 * `tenantctl ... | head` closes the pipe early: that ends the output, it is
 * not an error. Further writes to that stream are dropped and the command
 * runs to its end, so the exit code is the command's own (a migration with a
 * bad file piped to head still exits 4, which `set -o pipefail` sees), not
 * the one set when the pipe closed. The same for stderr (`2>&1 | head`).
 * `onStdoutClosed` lets a long-running command (watch) stop: nobody reads it.
 */
export function endOnClosedPipe(onStdoutClosed?: () => void): void {
  for (const stream of [process.stdout, process.stderr]) {
    let closed = false;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
      if (closed) return;
      closed = true;
      // Nothing more reaches the reader: later writes are no-ops, not errors.
      stream.write = (() => true) as typeof stream.write;
      // A command still producing output (watch) stops as on SIGTERM; one that is done is not affected.
      if (stream === process.stdout) onStdoutClosed?.();
    });
  }
}
