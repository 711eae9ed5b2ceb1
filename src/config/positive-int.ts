import { UsageError } from '../errors.js';

/** Parses a whole number of at least `min`; the message names where it came from. */
export function parsePositiveInt(value: unknown, where: string, min = 1): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${where} must be a whole number >= ${min}, got ${JSON.stringify(String(value).slice(0, 40))}`);
  }
  return n;
}
