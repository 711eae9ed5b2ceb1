import { UsageError } from '../errors.js';

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
    const shown = JSON.stringify(String(id).slice(0, 140));
    throw new UsageError(
      `invalid ${kind} id ${shown}: use 1-128 letters, digits, '_', '-' or '.'`,
    );
  }
  return id;
}
