/**
 * What may be shown of user-supplied text: credentials in URLs masked, long
 * values cut. Used by every layer that builds a message, so it sits at the
 * bottom with the errors.
 */

/** Query parameters that carry a credential (libpq's `password` / `sslpassword`, PostgREST's `apikey`, ...). */
// Any prefix, camelCase too (ioredis's own sentinelPassword, requirepass): a name masked too many is safe.
const SECRET_PARAM = /(?:password|passwd|pass|pwd|secret|token|apikey|api_key|key|access_key|auth)$/i;

/**
 * Replaces the password in a URL's user-info (or a lone user-info token) and
 * the value of every credential-bearing query parameter with `****`. Works on
 * text that is not a valid URL too (it never throws), so a malformed URL in an
 * error message is masked all the same.
 */
export function maskUrl(url: string): string {
  // Up to the last "@" (as WHATWG URL and libpq read it), with or without "//": a password holding
  // "@", "/", "#" or "?", or a malformed URL, is masked whole (an "@" later in the URL over-masks, safely).
  // Leading blanks too: `new URL()` (and so the drivers) trims them, so " redis://u:pw@h" is used as a URL;
  // and a URL without its scheme ("//u:pw@h/db").
  let userInfoMasked = url.replace(/^(\s*(?:[a-z][a-z0-9+.-]*:(?:\/\/?)?|\/\/))(.*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    if (colon < 0) return `${scheme}****@`;
    return `${scheme}${userinfo.slice(0, colon)}:****@`;
  });
  // A URL missing its scheme's colon ("redis//u:pw@h", "postgresql//app:pw@db/app"): a user:password@ after a
  // slash is masked all the same (it was shown whole, "is not a valid URL").
  if (userInfoMasked === url) userInfoMasked = url.replace(/(^\s*|\/)([^\s/:@]*):[^\s@]*@/, '$1$2:****@');
  // Query parameters, and the key = value words of a libpq connection string ("host=h password = 'p w'").
  return userInfoMasked.replace(/(^|[?&;\s])([^=&;#?\s]+)(\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&;#\s]*)/g, (m, sep: string, name: string, eq: string) =>
    SECRET_PARAM.test(decodeSafe(name)) ? `${sep}${name}${eq}****` : m,
  );
}

/** Whether decodeURIComponent takes it (a lone %, or escapes that are no UTF-8, it throws on). */
export function decodable(s: string): boolean {
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

/** decodeURIComponent, or the text as it is where that throws. */
export function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A command-line argument, masked: one that is a URL (or `--flag=URL`) is masked whole, so a password
 * holding a blank or a quote is masked too (maskUrlsIn stops a URL at those); any other, as free text.
 */
export function maskArgument(arg: string): string {
  const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
  if (eq > 0) return `${arg.slice(0, eq + 1)}${maskArgument(arg.slice(eq + 1))}`;
  return /^\s*(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(arg) && arg.includes('@') ? maskUrl(arg) : maskUrlsIn(arg);
}

/** Masks every URL found inside free text (an error message that quotes a connection string). */
export function maskUrlsIn(text: string): string {
  // What /[a-z][a-z0-9+.-]*:\/\/[^\s'"]+/gi finds, found from each `://` instead: that regular expression
  // tried every position of a long run of letters, each to the run's end, so one 80,000-letter value with
  // a URL after it took 8 s to show (a cached entry: get-config and verify stalled, deaf to signals).
  let out = '';
  let done = 0;
  for (let at = text.indexOf('://'); at >= 0; at = text.indexOf('://', at + 3)) {
    if (at < done) continue; // inside the URL just masked
    // The scheme: the run of scheme characters before `://`, from its first letter. None: no URL here, and
    // nothing read after it (a review: read to the next blank for each of 40,000 `://`, it was quadratic again).
    let start = at;
    while (start > done && SCHEME_CHAR.test(text[start - 1])) start--;
    while (start < at && !LETTER.test(text[start])) start++;
    if (start === at) continue;
    let end = at + 3;
    while (end < text.length && !URL_END.test(text[end])) end++;
    if (end === at + 3) continue;
    out += text.slice(done, start) + maskUrl(text.slice(start, end));
    done = end;
  }
  return done === 0 ? text : out + text.slice(done);
}
const SCHEME_CHAR = /[a-z0-9+.-]/i;
const LETTER = /[a-z]/i;
const URL_END = /[\s'"]/;

/** At most `max` characters of a value for a message, with how much was cut. */
export function clip(value: string, max = 80): string {
  return value.length <= max ? value : `${value.slice(0, max)}… (${value.length} characters)`;
}

/** Cuts every run of more than `max` non-space characters in a message (a huge argument quoted back). */
export function clipLongRuns(text: string, max = 120): string {
  // Quotes around the run are not counted: the count is the value's own length, as the id check says it.
  return text.replace(new RegExp(`\\S{${max + 1},}`, 'g'), (run) => `${run.slice(0, max)}… (${run.replace(/^['"]+|['".,:;]+$/g, '').length} characters)`);
}

/**
 * The characters a terminal may act on, C0 (tab, line feed and carriage return among them), DEL, C1; and
 * those that reorder a line without showing: bidirectional overrides, embeddings and isolates
 * (U+202A-202E, U+2066-2069: `acme\u202Eexe.` shows as another id), the line and paragraph separators
 * (U+2028-2029), the zero-width space U+200B (`acme\u200b` looks like `acme`) and U+FEFF. Not the
 * joiners and marks (U+200C-200F): Persian names and emoji sequences need them. The second kind, as the
 * inside of a RegExp class, is HIDDEN_CHARACTERS: the JSON and YAML text escapes them too (cli/document-text.ts).
 */
export const HIDDEN_CHARACTERS = '\\u200b\\u2028-\\u202e\\u2066-\\u2069\\ufeff';
const CONTROL = new RegExp(`[\\x00-\\x1f\\x7f-\\x9f${HIDDEN_CHARACTERS}]`, 'g');

// `\xNN` for the one-byte controls (C0, DEL) only: a C1 control is two bytes in UTF-8, and `\xNN` is
// also how a byte that is not UTF-8 is shown (keyText, a cache profile's tenant part), so `\x85` would
// name both the character U+0085 and the byte 0x85 (two keys shown alike, one Prometheus series twice).
const hex = (c: string) => {
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
};

/**
 * A data value (a tenant name, a key, an id typed on the command line) made safe to show: every control
 * character, ESC, tab, line feed and carriage return included, becomes `\xNN` (a C1 control `\u{NN}`, a
 * bidirectional override `\u{NNNN}`). A name holding an OSC
 * sequence (`ESC ] 0 ; title BEL`, a clipboard write), an SGR one (`ESC [ 8 m`, hidden text) or a line
 * break is shown, never obeyed, and never splits a row or a message line. Applied where data enters the
 * output, before the tool adds its own colour (src/cli/output.ts); JSON and YAML escape on their own.
 */
export function showControls(value: string): string {
  return value.replace(CONTROL, hex);
}

/**
 * The last pass over text the tool built itself (its own colours and line breaks around data already shown
 * by showControls): its SGR colour sequences, tabs and line feeds stay, any other control character is
 * shown as `\xNN`. Never for data: data would keep its SGR sequences and line breaks.
 */
export function visibleControls(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (m) => (m.length > 1 ? m : hex(m)));
}
