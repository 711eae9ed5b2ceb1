/** `tenantctl ... | head` closes the pipe early: that ends the output, it is not an error (exit as things stand). */
export function endOnClosedPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
