/** How deep a cached value may nest. Tenant files are read with a depth limit of 32; the services write no deeper. */
export const MAX_CACHED_DEPTH = 64;

/**
 * A cached text parsed, or why it is not a value to use: not JSON, or nested
 * deeper than MAX_CACHED_DEPTH. Anyone who can write to the shared Redis can
 * put `[[[[…]]]]` 5,000 deep (10 KB) at a tenant's key: every recursive walk
 * after the parse (substitution, comparison) overflowed the stack, and
 * get-config and verify (--fix too: the entry could never be removed) ended
 * with an internal error.
 */
export function parseCachedJson(raw: string): { value: unknown } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { problem: 'a value that is not JSON' };
  }
  // Nesting deeper than the limit takes two characters a level: short texts need no look.
  if (raw.length > 2 * MAX_CACHED_DEPTH && nestedDeeperThan(raw, MAX_CACHED_DEPTH)) return { problem: `a value nested deeper than ${MAX_CACHED_DEPTH} levels` };
  return { value };
}

/** Whether valid JSON text opens more than `max` arrays or objects inside each other (one pass, strings skipped). */
function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // a backslash: the next character is escaped
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}
