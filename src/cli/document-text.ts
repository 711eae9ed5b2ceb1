// The text of a JSON or YAML document on stdout: every character a terminal would act on or hide, escaped.
import { dump, type DumpOptions } from 'js-yaml';
import { HIDDEN_CHARACTERS } from '../redact.js';

/** What JSON.stringify writes as it is: DEL and C1 (a terminal's 8-bit CSI among them), and the hidden ones. */
const JSON_UNESCAPED = new RegExp(`[\\x7f-\\x9f${HIDDEN_CHARACTERS}]`, 'g');

/**
 * JSON text whose strings carry every control character escaped: JSON.stringify escapes C0 (ESC is
 * \u001b) but writes DEL and C1 (U+0080-U+009F, a terminal's 8-bit CSI among them) as they are, and the
 * characters that reorder or hide text (bidirectional overrides and isolates, U+200B, U+2028-2029, U+FEFF).
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_UNESCAPED, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Characters js-yaml writes as they are (it counts them printable) that reorder or hide text on a terminal
 * (redact.ts's HIDDEN_CHARACTERS), and NUL, which marks the strings written here instead.
 */
const HIDDEN = new RegExp(`[\\0${HIDDEN_CHARACTERS}]`);
/** A marked string as js-yaml writes it: NUL is not printable, so it is double-quoted, NUL as `\0`. */
const MARK = /"\\0(\d+)\\0"/g;

/**
 * Longer strings are written here too: js-yaml tests a string for a plain scalar with a regular expression
 * that overflows the stack on a few MB (a cached value of 2.5 MB: "internal error", exit 70).
 */
const LONG_STRING = 65_536;

/** A string js-yaml must not write: one holding a hidden character, or a long one. */
const ownWritten = (s: string) => s.length > LONG_STRING || HIDDEN.test(s);

/**
 * A string written as an escaped JSON string: one of those, and one holding the text of a marker's inside
 * (`\0`), so that no string js-yaml writes as it is can read as a marker (a review: a value `"\00\0"`
 * beside a hidden character was replaced by another string).
 */
const marked = (s: string) => ownWritten(s) || s.includes('\\0');

const holdsOwnWritten = (v: unknown): boolean =>
  typeof v === 'string'
    ? ownWritten(v)
    : Array.isArray(v)
      ? v.some(holdsOwnWritten)
      : !!v && typeof v === 'object' && Object.entries(v).some(([k, x]) => ownWritten(k) || holdsOwnWritten(x));

/**
 * js-yaml's dump, but every string (key or value) holding one of those characters, or longer than
 * LONG_STRING, is written as a JSON string with them as `\uXXXX`: a double-quoted YAML scalar that loads
 * back to the same string, and a line that shows as it reads (`name: admin<U+202E>exe` was written raw,
 * and showed reordered).
 */
export function yamlDump(value: unknown, options: DumpOptions): string {
  if (!holdsOwnWritten(value)) return dump(value, options);
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
  // A JSON string is a double-quoted YAML scalar (JSON.stringify writes NUL as \u0000 itself).
  return dump(withMarks(value), options).replace(MARK, (_, n: string) => jsonText(strings[Number(n)]));
}
