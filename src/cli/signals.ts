/**
 * SIGINT and SIGTERM stop a command between batches: the first one aborts
 * the run's AbortSignal (the command reports what it did and exits 130 / 143),
 * a second one exits at once.
 */
let controller = new AbortController();

export function runSignal(): AbortSignal {
  return controller.signal;
}

/** Stops the run as a first SIGTERM does, without a signal (the reader of stdout went away). */
export function stopRun(): void {
  if (!controller.signal.aborted) controller.abort('SIGTERM');
}

export function trapSignals(onFirst: (signal: 'SIGINT' | 'SIGTERM') => void): () => void {
  controller = new AbortController();
  const handler = (signal: 'SIGINT' | 'SIGTERM') => () => {
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
    controller.abort(signal);
    onFirst(signal);
  };
  const onInt = handler('SIGINT');
  const onTerm = handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return () => {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  };
}
