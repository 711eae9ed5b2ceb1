import { BackendUnavailableError } from '../errors.js';

/**
 * Rejects with BackendUnavailableError (reason `timeout`) when `work` has not
 * settled within `ms`. One overall deadline per operation is what keeps a CLI
 * from hanging on a server that accepts the connection but never answers (a
 * paused process, a TLS port reached without TLS: ioredis#1924).
 * @param shownMs the timeout the user set, for the message (the deadline itself
 *   carries a small margin so the driver's own timeout fires first)
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string, shownMs = ms, backend: 'redis' | 'registry' = 'redis'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BackendUnavailableError(backend, `${what} timed out (timeout ${shownMs} ms)`, { reason: 'timeout' })), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
