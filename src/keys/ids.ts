import { UsageError } from '../errors.js';
import { maskUrl } from '../redact.js';

/** Letters, digits, `_`, `-`, `.`; 1 to 128 characters (DESIGN.md, "Cache keys"). */
export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
/** The characters an id may hold, as a regex character class body. */
export const ID_CHARS = 'A-Za-z0-9_.-';

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/**
 * Returns the id unchanged when it is valid, else throws a UsageError naming it.
 * @param kind what the id names, for the message ("tenant", "business")
 */
export function parseId(id: string, kind = 'tenant'): string {
  if (typeof id !== 'string' || !isValidId(id)) {
    // An id can be anything a user typed: never echo more than a short piece of it.
    // A URL pasted in its place (`invalidate redis://u:pw@h`) is shown with its password masked.
    const text = maskUrl(String(id));
    const shown = `${JSON.stringify(text.slice(0, 60))}${text.length > 60 ? `… (${text.length} characters)` : ''}`;
    throw new UsageError(
      `invalid ${kind} id ${shown}: use 1-128 letters, digits, '_', '-' or '.'`,
      { reason: 'invalid-id' },
    );
  }
  return id;
}

/**
 * A list of ids from a library caller (plain JavaScript may hand in anything): one id given as a string was
 * taken letter by letter (`invalidateTenants('acme')` deleted the keys of tenants a, c, m and e).
 */
export function parseIdList(ids: unknown, what: string): string[] {
  if (!Array.isArray(ids)) throw new UsageError(`${what} must be a list of tenant ids (an array of strings), got ${ids === null ? 'null' : typeof ids}`);
  for (const id of ids) parseId(id as string);
  return ids as string[];
}
