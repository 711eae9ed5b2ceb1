/**
 * JSON text byte for byte as the services write their cache entries: Python's
 * `json.dumps(value)` with its defaults (seed 001: `redis.setex(key, ttl,
 * json.dumps(config))`) — `", "` and `": "` separators, every character
 * outside printable ASCII escaped as `\uXXXX` (lower-case hex, a character
 * beyond the BMP as its surrogate pair: ensure_ascii), and a float in
 * Python's repr (`1e-05`, not `0.00001`).
 *
 * A value whose Python form cannot be known is refused (NotServicesJson), so
 * the caller writes nothing rather than other bytes: an integer past 2^53
 * (the digits were lost when it was read), NaN and the infinities (Python
 * writes `NaN` / `Infinity`, which no JSON reader of ours takes back), and
 * -0. Two differences are not seen here, and are the caller's to refuse (as
 * --warm does): a float written `1.0` in YAML or jsonb has become the number 1
 * by the time it gets here, and is written `1`; keys that are integers
 * (`"443"`) come first in a JavaScript object, where Python keeps the order
 * they were read in (see integerKeyAmongOthers). Same meaning, other bytes.
 */
export class NotServicesJson extends Error {
  /** The key path of the value, outermost first. */
  readonly at: string[] = [];
  constructor(readonly what: string) {
    super(`${what} has no JSON form the services would write the same`);
  }
  /** "at a.b.0: the integer ... (past 2^53)". */
  describe(): string {
    return `${this.at.length ? `${this.at.join('.')}: ` : ''}${this.what}`;
  }
}

/** Serializes one member, naming its key in a refusal. */
function member(key: string, v: unknown): string {
  try {
    return servicesJson(v);
  } catch (err) {
    if (err instanceof NotServicesJson) err.at.unshift(key);
    throw err;
  }
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

/** A string as Python's ensure_ascii encoder quotes it (per UTF-16 unit, which gives surrogate pairs). */
export function pythonQuoted(s: string): string {
  // Fast path: printable ASCII without a quote or backslash.
  if (/^[ !#-[\]-~]*$/.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const code = s.charCodeAt(i);
    if (SHORT_ESCAPES[ch] !== undefined) out += SHORT_ESCAPES[ch];
    else if (code >= 0x20 && code < 0x7f) out += ch;
    else out += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

/** A finite number as Python writes it: an integer's digits, or a float's repr. */
export function pythonNumber(n: number): string {
  if (!Number.isFinite(n)) throw new NotServicesJson(String(n));
  if (Object.is(n, -0)) throw new NotServicesJson('-0');
  if (Number.isInteger(n)) {
    if (!Number.isSafeInteger(n)) throw new NotServicesJson(`the integer ${n} (past 2^53)`);
    return String(n);
  }
  return pythonFloat(n);
}

/**
 * A finite number as Python's float repr writes it, a whole one too (`2.0`, `1e+16`): float.__repr__
 * gives the shortest digits that read back (as toExponential gives them), in fixed notation when the
 * decimal point falls within -4 < point <= 16, else as d.ddde+-XX.
 */
export function pythonFloat(n: number): string {
  // toExponential drops the sign of -0.
  if (Object.is(n, -0)) return '-0.0';
  const [mantissa, exp] = n.toExponential().split('e');
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace(/^-/, '').replace('.', '');
  const point = Number(exp) + 1;
  let body: string;
  if (point <= -4 || point > 16) {
    const e = point - 1;
    body = `${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  } else if (point <= 0) {
    body = `0.${'0'.repeat(-point)}${digits}`;
  } else if (digits.length <= point) {
    // A whole value: its digits, the zeros up to the point, and ".0".
    body = `${digits}${'0'.repeat(point - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  return negative ? `-${body}` : body;
}

/** A key JavaScript orders first in an object: an array index ("0", "443"; not "01" or "-1"). */
const INDEX_KEY = /^(?:0|[1-9]\d{0,9})$/;
const isIndexKey = (k: string) => INDEX_KEY.test(k) && Number(k) < 2 ** 32 - 1;

/**
 * The path of a key that JavaScript orders differently from Python, or undefined: an integer key
 * (`"443"`) in an object with other keys. JavaScript puts such keys first, in ascending order, while
 * Python's dict keeps the order it read (the file's, or jsonb's), which by then is lost: servicesJson
 * would write the members in another order than the services.
 */
export function integerKeyAmongOthers(value: unknown, at: string[] = []): string[] | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = integerKeyAmongOthers(value[i], [...at, String(i)]);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    // Index keys come first: if there is one, it is keys[0].
    if (keys.length > 1 && isIndexKey(keys[0])) return [...at, keys[0]];
    for (const k of keys) {
      const found = integerKeyAmongOthers((value as Record<string, unknown>)[k], [...at, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/** `json.dumps(value)` of a JSON value (undefined members are left out, as JSON.stringify leaves them). */
export function servicesJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return pythonQuoted(value);
    case 'number':
      return pythonNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => (v === undefined ? 'null' : member(String(i), v))).join(', ')}]`;
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined || typeof v === 'function') continue;
        parts.push(`${pythonQuoted(k)}: ${member(k, v)}`);
      }
      return `{${parts.join(', ')}}`;
    }
    default:
      throw new NotServicesJson(typeof value);
  }
}
