import { BackendUnavailableError } from '../errors.js';

/** A timer this much later than due means the event loop was blocked (scheduling noise is a few ms). */
const LATE_MS = 50;

/**
 * Rejects with BackendUnavailableError (reason `timeout`) when `work` has not
 * settled within `ms`. One overall deadline per operation is what keeps a CLI
 * from hanging on a server that accepts the connection but never answers (a
 * paused process, a TLS port reached without TLS: ioredis#1924).
 * - `shownMs`: the timeout the user set, for the message (a deadline may carry
 *   a small margin so a driver's own timeout fires first);
 * - `mapError`: turns `work`'s own failure into what the caller throws.
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  options: { shownMs?: number; backend?: 'redis' | 'registry'; mapError?: (err: unknown) => unknown } = {},
): Promise<T> {
  const { shownMs = ms, backend = 'redis', mapError } = options;
  // One promise and one timer (not Promise.race + finally, nor an async
  // wrapper): this wraps every cached read, where each extra promise shows.
  return new Promise<T>((resolve, reject) => {
    let due = performance.now() + ms;
    let givenBack = 0;
    const expire = () => {
      // Fired late: this process's event loop was blocked (synchronous work: parsing files, PGlite's queries),
      // and the answer that may have come meanwhile is not read yet (timers run before I/O). The blocked time
      // is this process's, not the server's: given back (a connect begun beside such work said Redis was
      // unreachable, migrate-yaml exit 4, with Redis up), up to one timeout in all: under a steady load of
      // long slices every check is late, and a silent server must still expire (a review: never, uncapped).
      const late = performance.now() - due;
      if (late > LATE_MS && givenBack < ms) {
        const back = Math.min(late, ms - givenBack);
        givenBack += back;
        due = performance.now() + back;
        timer = setTimeout(expire, back);
        return;
      }
      reject(new BackendUnavailableError(backend, `${what} timed out (timeout ${shownMs} ms)`, { reason: 'timeout' }));
    };
    let timer = setTimeout(expire, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(mapError ? mapError(err) : err);
      },
    );
  });
}
