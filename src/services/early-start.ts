/**
 * How long a cache read may take before the registry a miss would need starts opening beside it.
 * A healthy Redis answers in a few ms (a first TLS connect to a managed one in tens); a silent one
 * takes the whole Redis timeout, and the registry's open (PGlite ~0.4 s, a PostgreSQL connect)
 * then ran after it: `get-config` with a black-holed Redis took the timeout + 0.7 s.
 */
export const OVERLAP_AFTER_MS = 150;

/**
 * Awaits `work`; if it has not settled within `afterMs`, calls `start` (once) so that what comes
 * next overlaps with the wait. `start` must not throw, nor leave a rejection unhandled.
 */
export async function startIfSlow<T>(work: Promise<T>, start: () => void, afterMs = OVERLAP_AFTER_MS): Promise<T> {
  const timer = setTimeout(start, afterMs);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}
