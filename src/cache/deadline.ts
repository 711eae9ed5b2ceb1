import { BackendUnavailableError } from '../errors.js';

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
    const timer = setTimeout(() => reject(new BackendUnavailableError(backend, `${what} timed out (timeout ${shownMs} ms)`, { reason: 'timeout' })), ms);
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
