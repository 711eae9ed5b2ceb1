import { UsageError } from '../errors.js';

/** Parses a whole number of at least `min` (and at most `max`); the message names where it came from. */
export function parsePositiveInt(value: unknown, where: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${where} must be a whole number >= ${min}, got ${JSON.stringify(String(value).slice(0, 40))}`);
  }
  if (n > max) throw new UsageError(`${where} must be at most ${max}, got ${n}`);
  return n;
}

/** The longest timeout, ms: 24 hours (Node's timers overflow past 2^31-1 ms and fire at once). */
export const MAX_TIMEOUT_MS = 86_400_000;

/** The longest look-back after a reconnect (watch's overlap): 365 days, in ms (past it PostgreSQL's timestamps overflow). */
export const MAX_OVERLAP_MS = 365 * 86_400_000;
