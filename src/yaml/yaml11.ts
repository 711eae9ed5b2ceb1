import { CORE_SCHEMA, EVENT_ID, SCALAR_STYLE, getScalarValue, load, type Event } from 'js-yaml';

/**
 * Plain scalars that YAML 1.1 readers read otherwise than tenantctl.
 *
 * tenantctl reads tenant files with the YAML 1.2 CORE schema; the services
 * that share the files read them with PyYAML (`safe_load`, YAML 1.1). A plain
 * (unquoted, untagged) scalar such as `no`, `on`, `0755`, `9:30`, `0b1010`,
 * `1_000` or the key `<<` means one thing to tenantctl and another to them:
 * after a migration the registry holds tenantctl's reading. This module finds
 * such scalars (never changing how anything is parsed) so they can be
 * reported as `file:line` warnings.
 *
 * The YAML 1.1 reading is PyYAML's (its implicit resolvers and SafeLoader
 * constructors, as of PyYAML 6). The 1.1 spec's `y`/`n` booleans are not
 * reported: PyYAML (the services' reader) reads them as strings, as tenantctl
 * does, and `{ x: 0, y: 3 }` would warn for nothing. Timestamps
 * (`2024-01-01`: a date to PyYAML) are deliberately not reported: a date has
 * no JSON form, so the registry (jsonb) holds a string whatever the file
 * says, and a warning on every date would bury the ones that matter.
 */

/** One plain scalar read otherwise by YAML 1.1: where it is and how it is written. */
export interface Yaml11Difference {
  /** 1-based line of the scalar. */
  line: number;
  /** The key path of the value; for a mapping key, the path of the key itself (ending with it). */
  path: string[];
  /** The plain scalar as written (folded to one line if it spanned several). */
  source: string;
  /** Whether the scalar is a mapping key. */
  key?: boolean;
}

/** What a YAML 1.1 reader makes of a plain scalar. */
type Reading11 =
  | { kind: 'str' }
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; value: number }
  | { kind: 'merge' }
  | { kind: 'timestamp' }
  /** PyYAML refuses it: `=` (the value key, no constructor) or an int with no digits (`0x_`). */
  | { kind: 'error'; why: string };

/** js-yaml's CORE reading of a plain scalar (what tenantctl stores). */
const schema = CORE_SCHEMA as unknown as { resolveImplicitScalarTag?: (source: string) => { value: unknown } };
export const coreValueOf: (source: string) => unknown =
  typeof schema.resolveImplicitScalarTag === 'function'
    ? (s) => schema.resolveImplicitScalarTag!(s).value
    : (s) => {
        if (s === '') return null;
        try {
          return load(s, { schema: CORE_SCHEMA });
        } catch {
          return s;
        }
      };

/**
 * The cheap test run on every plain scalar before any RegExp: false for
 * nearly every ordinary scalar (words, names, URLs, `${VAR}`, plain decimal
 * integers). Letters matter only in the 1-3 character forms y/n/yes/no/on/off
 * (any case); then numbers (a digit, sign or dot first, except plain
 * decimals), `<<` and `=`.
 */
export function mayReadOtherwise(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  const c = s.charCodeAt(0);
  if (c >= 65 /* A */) {
    if (n > 3) return false;
    const lower = c | 0x20; // y, n, o (either case)
    return lower === 121 || lower === 110 || lower === 111;
  }
  if (c >= 48 && c <= 57) {
    // A plain decimal without a leading zero (`5`, `300`, `0`) is the same int to both.
    if (c === 48 && n > 1) return true;
    for (let i = 1; i < n; i++) {
      const d = s.charCodeAt(i);
      if (d < 48 || d > 57) return true;
    }
    return false;
  }
  return c === 43 /* + */ || c === 45 /* - */ || c === 46 /* . */ || c === 60 /* < */ || c === 61 /* = */;
}

// PyYAML 6's implicit resolvers (yaml/resolver.py), tried by first character in its order.
const BOOL_11 = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const TRUE_11 = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const FLOAT_11 = /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const INT_11 = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const NULL_11 = /^(?:~|null|Null|NULL|)$/;
const TIMESTAMP_11 = /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/;

/** A plain scalar as PyYAML reads it (SafeLoader). */
function read11(s: string): Reading11 {
  const c = s[0];
  if (c === undefined) return { kind: 'null' };
  if ('yYnNtTfFoO'.includes(c)) {
    if (BOOL_11.test(s)) return { kind: 'bool', value: TRUE_11.test(s) };
  }
  if ('-+.0123456789'.includes(c)) {
    if (FLOAT_11.test(s)) return { kind: 'number', value: float11(s) };
    if (c !== '.' && INT_11.test(s)) {
      const v = int11(s);
      return v === undefined ? { kind: 'error', why: 'a YAML 1.1 int without digits' } : { kind: 'number', value: v };
    }
  }
  if (s === '<<') return { kind: 'merge' };
  if ((c === '~' || c === 'n' || c === 'N') && NULL_11.test(s)) return { kind: 'null' };
  if (c >= '0' && c <= '9' && TIMESTAMP_11.test(s)) return { kind: 'timestamp' };
  if (s === '=') return { kind: 'error', why: "the YAML 1.1 value key, which PyYAML's safe_load cannot construct" };
  return { kind: 'str' };
}

/** PyYAML's construct_yaml_int; undefined where Python's int() raises (no digits: `0x_`). */
function int11(source: string): number | undefined {
  let v = source.replace(/_/g, '');
  const sign = v[0] === '-' ? -1 : 1;
  if (v[0] === '-' || v[0] === '+') v = v.slice(1);
  const digits = (text: string, radix: number) => (text === '' ? undefined : sign * parseInt(text, radix));
  if (v === '0') return 0;
  if (v.startsWith('0b')) return digits(v.slice(2), 2);
  if (v.startsWith('0x')) return digits(v.slice(2), 16);
  if (v[0] === '0') return digits(v, 8);
  if (v.includes(':')) return sign * sexagesimal(v);
  return sign * parseInt(v, 10);
}

/** PyYAML's construct_yaml_float. */
function float11(source: string): number {
  let v = source.replace(/_/g, '').toLowerCase();
  const sign = v[0] === '-' ? -1 : 1;
  if (v[0] === '-' || v[0] === '+') v = v.slice(1);
  if (v === '.inf') return sign * Infinity;
  if (v === '.nan') return NaN;
  if (v.includes(':')) return sign * sexagesimal(v);
  return sign * Number(v);
}

/** `1:20:30` -> 4830 (base 60, most significant first). */
function sexagesimal(v: string): number {
  let out = 0;
  for (const part of v.split(':')) out = out * 60 + Number(part);
  return out;
}

/** The YAML 1.1 reading of a plain scalar when it differs from tenantctl's (`core`), else undefined. */
function differingReading(source: string, core: unknown): Reading11 | undefined {
  const r = read11(source);
  switch (r.kind) {
    case 'str':
      return typeof core === 'string' ? undefined : r;
    case 'null':
      return core === null ? undefined : r;
    case 'bool':
      return core === r.value ? undefined : r;
    case 'number':
      return typeof core === 'number' && (core === r.value || (core !== core && r.value !== r.value)) ? undefined : r;
    case 'timestamp':
      return undefined; // see the module's comment
    default:
      return r;
  }
}

/**
 * What a YAML 1.1 reader (PyYAML) makes of a plain scalar, as a JSON value (`yes` -> true,
 * `0755` -> 493), or undefined where it makes no JSON value (a timestamp, the merge key,
 * an error). A string is the scalar itself.
 */
export function yaml11Value(source: string): { value: unknown } | undefined {
  const r = read11(source);
  if (r.kind === 'str') return { value: source };
  if (r.kind === 'null') return { value: null };
  if (r.kind === 'bool' || r.kind === 'number') return { value: r.value };
  return undefined;
}

/**
 * Whether a plain scalar (as written, and as tenantctl read it) is read
 * otherwise by YAML 1.1 readers. Cheap for ordinary scalars (mayReadOtherwise
 * first); `core` is asked for only when needed.
 */
export function readsOtherwise(source: string, core: unknown): boolean {
  return mayReadOtherwise(source) && differingReading(source, core) !== undefined;
}

/** A value as a YAML reader's user would write it. */
function shown(v: unknown, key: boolean): string {
  if (typeof v === 'string') return `the ${key ? 'key' : 'string'} ${JSON.stringify(v)}`;
  if (typeof v === 'number') return numberText(v);
  return String(v);
}

function numberText(n: number): string {
  if (n !== n) return '.nan';
  if (n === Infinity) return '.inf';
  if (n === -Infinity) return '-.inf';
  return String(n);
}

/** A number written so that both readers read it as that number (a plain decimal), or undefined when there is none. */
function commonForm(n: number): string | undefined {
  const text = numberText(n);
  return /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/.test(text) ? text : undefined;
}

/**
 * The words of a difference, after `file:line: `: both readings and the fix,
 * e.g. `features.beta: plain no is the string "no" here (YAML 1.2) but false
 * to YAML 1.1 readers such as PyYAML (the services): quote it ("no") or write false`.
 */
export function describeYaml11Difference(d: Yaml11Difference): string {
  const key = !!d.key;
  const core = coreValueOf(d.source);
  const r = differingReading(d.source, core) ?? read11(d.source);
  const where = d.path.length ? `${d.path.join('.')}: ` : '';
  const quoted = JSON.stringify(d.source);
  const what = `${where}plain ${key ? 'key ' : ''}${d.source} is ${shown(key ? String(core) : core, key)} here (YAML 1.2)`;
  const quote = `quote it (${quoted})`;
  switch (r.kind) {
    case 'merge':
      if (!key) return `${what} but makes YAML 1.1 readers such as PyYAML (the services) fail to load the file (the merge key as a value): ${quote}`;
      return `${what} but a merge key to YAML 1.1 readers such as PyYAML (the services), which merge its mapping into this one: write the merged keys out, or ${quote} for a key named <<`;
    case 'error':
      return `${what} but makes YAML 1.1 readers such as PyYAML (the services) fail to load the file (${r.why}): ${quote}`;
    default: {
      const their = r.kind === 'str' ? shown(d.source, false) : r.kind === 'number' ? numberText(r.value) : r.kind === 'bool' ? String(r.value) : 'null';
      const but = `${what} but ${their} to YAML 1.1 readers such as PyYAML (the services)`;
      if (key) return `${but}: ${quote}`;
      // A form both read alike: the 1.1 reading's, and tenantctl's when that is a number too.
      const theirs = r.kind === 'number' ? commonForm(r.value) : r.kind === 'str' ? undefined : their;
      const ours = typeof core === 'number' ? commonForm(core) : undefined;
      if (theirs && ours) return `${but}: write ${theirs} or ${ours}, whichever is meant, or ${quote}`;
      const form = theirs ?? ours;
      return `${but}: ${quote}${form ? ` or write ${form}` : ''}`;
    }
  }
}

/**
 * The differences in a text parsed by js-yaml, from its events (parseEvents):
 * every plain, untagged scalar, keys included, in block and flow style.
 * Quoted and block scalars, tagged scalars (the tag says what is meant) and
 * aliases (their anchor's node is reported) never are.
 */
export function yaml11DifferencesOfEvents(text: string, events: readonly Event[]): Yaml11Difference[] {
  const out: Yaml11Difference[] = [];
  /** Open collections: whether a mapping, nodes seen in it, the last key's text, whether it added a path segment. */
  const frames: Array<{ map: boolean; n: number; key: string; pushed: boolean }> = [];
  const path: string[] = [];
  // Lines counted forward only (events come in text order), and only when a difference is found.
  let lineAt = 0;
  let line = 1;
  const lineOf = (offset: number) => {
    for (let i = text.indexOf('\n', lineAt); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
    lineAt = Math.max(lineAt, offset);
    return line;
  };
  const node = () => frames[frames.length - 1] as (typeof frames)[number] | undefined;
  /** Where the next node goes: a key of a mapping, or a value under a path segment (none at the root). */
  const slot = () => {
    const top = node();
    if (!top) return { key: false, seg: undefined };
    if (!top.map) return { key: false, seg: String(top.n) };
    return top.n % 2 === 0 ? { key: true, seg: undefined } : { key: false, seg: top.key };
  };
  for (const e of events) {
    switch (e.type) {
      case EVENT_ID.DOCUMENT:
        frames.length = 0;
        path.length = 0;
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const { key, seg } = slot();
        const top = node();
        if (top && key) top.key = '?'; // a collection as a key (`? [a, b]`)
        const s = key ? '?' : seg;
        if (s !== undefined) path.push(s);
        frames.push({ map: e.type === EVENT_ID.MAPPING, n: 0, key: '', pushed: s !== undefined });
        break;
      }
      case EVENT_ID.POP: {
        const done = frames.pop();
        if (done?.pushed) path.pop();
        const top = node();
        if (top) top.n++;
        break;
      }
      case EVENT_ID.ALIAS: {
        const top = node();
        if (top) {
          if (top.map && top.n % 2 === 0) top.key = '?';
          top.n++;
        }
        break;
      }
      case EVENT_ID.SCALAR: {
        const { key, seg } = slot();
        const value = getScalarValue(text, e);
        const plain = e.style === SCALAR_STYLE.PLAIN && e.tagStart === -1;
        const top = node();
        let core: unknown = value;
        if (plain && (key || mayReadOtherwise(value))) core = coreValueOf(value);
        if (key && top) top.key = String(core);
        if (plain && mayReadOtherwise(value) && differingReading(value, core)) {
          const at = key ? [...path, String(core)] : seg === undefined ? [...path] : [...path, seg];
          out.push({ line: lineOf(e.valueStart), path: at, source: value, ...(key && { key: true }) });
        }
        if (top) top.n++;
        break;
      }
    }
  }
  return out;
}
