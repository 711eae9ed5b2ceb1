import { dump, type DumpOptions } from 'js-yaml';

/**
 * Characters js-yaml writes as they are (it counts them printable) that reorder or hide text on a terminal:
 * the zero-width space, the bidirectional embeddings, overrides and isolates, the line and paragraph
 * separators, U+FEFF (redact.ts's list); and NUL, which marks the strings written here instead.
 */
const HIDDEN = /[\0\u200b\u2028-\u202e\u2066-\u2069\ufeff]/;
const ESCAPED = /[\0\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069\ufeff]/g;
/** A marked string as js-yaml writes it: NUL is not printable, so it is double-quoted, NUL as `\0`. */
const MARK = /"\\0(\d+)\\0"/g;

/**
 * A string written as an escaped JSON string: one holding a hidden character, and one holding the text of a
 * marker's inside (`\0`), so that no string js-yaml writes as it is can read as a marker (a review: a value
 * `"\00\0"` beside a hidden character was replaced by another string).
 */
const marked = (s: string) => HIDDEN.test(s) || s.includes('\\0');

const holdsHidden = (v: unknown): boolean =>
  typeof v === 'string'
    ? HIDDEN.test(v)
    : Array.isArray(v)
      ? v.some(holdsHidden)
      : !!v && typeof v === 'object' && Object.entries(v).some(([k, x]) => HIDDEN.test(k) || holdsHidden(x));

/**
 * js-yaml's dump, but every string (key or value) holding one of those characters is written as a JSON
 * string with them as `\uXXXX`: a double-quoted YAML scalar that loads back to the same string, and a
 * line that shows as it reads (`name: admin<U+202E>exe` was written raw, and showed reordered).
 */
export function yamlDump(value: unknown, options: DumpOptions): string {
  if (!holdsHidden(value)) return dump(value, options);
  const strings: string[] = [];
  const mark = (s: string) => (marked(s) ? `\0${strings.push(s) - 1}\0` : s);
  const withMarks = (v: unknown): unknown =>
    typeof v === 'string'
      ? mark(v)
      : Array.isArray(v)
        ? v.map(withMarks)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [mark(k), withMarks(x)]))
          : v;
  return dump(withMarks(value), options).replace(MARK, (_, n: string) =>
    JSON.stringify(strings[Number(n)]).replace(ESCAPED, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  );
}
