import { CORE_SCHEMA } from 'js-yaml';
import { readsOtherwise, type Yaml11Difference } from './yaml11.js';

/**
 * A fast path for the YAML that tenant files are made of: block mappings and
 * sequences, one-line flow collections, plain and one-line quoted scalars,
 * comments. It returns exactly what js-yaml's `load(text, { schema:
 * CORE_SCHEMA })` returns for such a text, or `undefined` ("not simple") the
 * moment it meets anything else: anchors, aliases, tags, block scalars,
 * multi-line scalars or flows, documents markers, tabs, duplicate keys, keys
 * that are not plain strings, escapes beyond the common ones, any doubt. The
 * caller then parses the text with js-yaml, which also reports the errors:
 * this parser never decides that a text is invalid.
 *
 * Why: js-yaml spends ~100-140 µs on a 700-byte tenant file (events, then a
 * tree); this takes a fraction of that, which is most of a first migration
 * of 10,000 new files. Plain scalars are resolved by js-yaml's own schema
 * (null, bool, int, float), so `1_000`, `0x10` or `.inf` mean what they mean
 * to js-yaml. A differential property test holds the two parsers equal.
 *
 * `yaml11`, when given, receives the plain scalars (keys included) that YAML
 * 1.1 readers read otherwise (see yaml11.ts), only if the text is taken: the
 * same list yaml11DifferencesOfEvents gives for js-yaml's parse.
 */
export function parseSimpleYaml(text: string, yaml11?: Yaml11Difference[]): Record<string, unknown> | undefined {
  if (!resolveImplicit || UNSAFE_CHARS.test(text)) return undefined;
  try {
    const parser = new SimpleParser(text, false);
    const doc = parser.document();
    // Rare: read again, keeping key paths and lines this time (ordinary files never pay for them).
    if (yaml11 && parser.readOtherwise) {
      const again = new SimpleParser(text, true);
      again.document();
      for (const d of again.yaml11) yaml11.push(d);
    }
    return doc;
  } catch (err) {
    if (err === NOT_SIMPLE) return undefined;
    throw err;
  }
}

/** js-yaml's resolution of a plain scalar (internal in js-yaml 5, hence looked up, not assumed). */
const schema = CORE_SCHEMA as unknown as { resolveImplicitScalarTag?: (source: string) => { value: unknown } };
const resolveImplicit = typeof schema.resolveImplicitScalarTag === 'function' ? (s: string) => schema.resolveImplicitScalarTag!(s).value : undefined;

/**
 * Tabs, carriage returns, control characters, a BOM, non-characters, Unicode
 * line breaks, lone surrogates (js-yaml: "non-printable characters"; a strict
 * UTF-8 decode never makes one, but this function may be given any string):
 * js-yaml's business.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const NOT_SIMPLE = Symbol('not simple');
function bail(): never {
  throw NOT_SIMPLE;
}

/** Characters a plain scalar may not start with (YAML's indicators). `-` is handled apart. */
const INDICATOR_START = new Set([...'?:,[]{}#&*!|>\'"%@`']);
/** Double-quoted escapes accepted here; any other makes the text not simple. */
const ESCAPES: Record<string, string> = { '\\': '\\', '"': '"', n: '\n', t: '\t', r: '\r', '/': '/', '0': '\0' };
/**
 * Collections nested deeper than this, block and flow together, are
 * js-yaml's: it enforces readYamlFile's limit (64) with its own message.
 */
const MAX_DEPTH = 32;

interface Line {
  indent: number;
  /** The line from its first non-space character. */
  text: string;
  /** Its 1-based number in the text. */
  no: number;
}

class SimpleParser {
  private readonly lines: Line[] = [];
  private i = 0;
  private depth = 0;
  /** The key path of the node being read, when tracked: keys, and sequence indexes (numbers, made strings only for a difference found). */
  readonly path: Array<string | number> = [];
  /** The number of the line being read, when tracked. */
  private lineNo = 0;
  /** Whether a plain scalar YAML 1.1 reads otherwise was met. */
  readOtherwise = false;
  /** Those scalars, in text order, when tracked. */
  readonly yaml11: Yaml11Difference[] = [];

  /** `track`: keep key paths and line numbers, for the YAML 1.1 differences (only worth it when there are some). */
  constructor(text: string, readonly track: boolean) {
    let no = 0;
    for (const raw of text.split('\n')) {
      no++;
      const indent = skipSpaces(raw, 0);
      if (indent === raw.length || raw.charCodeAt(indent) === 35 /* # */) continue; // blank or comment
      if (indent === 0 && (raw.startsWith('---') || raw.startsWith('...') || raw.startsWith('%'))) bail();
      this.lines.push({ indent, text: indent ? raw.slice(indent) : raw, no });
    }
  }

  /**
   * A plain scalar just read (`value`: its CORE reading), checked against
   * YAML 1.1 (a first-character and length test, nearly always enough); a
   * key's own path ends with the key, a value's is the current path.
   */
  plain(source: string, value: unknown, key: boolean): void {
    if (readsOtherwise(source, value)) {
      this.readOtherwise = true;
      if (!this.track) return;
      const path = this.path.map(String);
      if (key) path.push(source);
      this.yaml11.push({ line: this.lineNo, path, source, ...(key && { key: true }) });
    }
  }

  document(): Record<string, unknown> {
    if (!this.lines.length || this.lines[0].indent !== 0) bail();
    const doc = this.mapping(0);
    if (this.i !== this.lines.length) bail();
    return doc;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) bail();
  }

  /** A block mapping whose keys sit at `indent`. */
  private mapping(indent: number): Record<string, unknown> {
    this.enter();
    const out: Record<string, unknown> = {};
    while (this.i < this.lines.length) {
      const line = this.lines[this.i];
      if (line.indent < indent) break;
      if (line.indent > indent) bail();
      const { key, rest, plain } = splitKey(line.text) ?? bail();
      checkNewKey(out, key);
      this.i++;
      if (this.track) this.lineNo = line.no;
      if (plain) this.plain(key, key, true);
      if (this.track) this.path.push(key);
      out[key] = rest === '' ? this.nested(indent, true) : inlineValue(this, rest, this.depth);
      if (this.track) this.path.pop();
    }
    this.depth--;
    return out;
  }

  /** A block sequence whose dashes sit at `indent`. */
  private sequence(indent: number): unknown[] {
    this.enter();
    const out: unknown[] = [];
    while (this.i < this.lines.length) {
      const line = this.lines[this.i];
      if (line.indent < indent) break;
      if (line.indent > indent) bail();
      if (!isDash(line.text)) break;
      if (this.track) {
        this.lineNo = line.no;
        this.path.push(out.length);
      }
      const skip = skipSpaces(line.text, 1);
      const rest = line.text.slice(skip);
      if (rest === '' || rest.charCodeAt(0) === 35 /* # */) {
        this.i++;
        out.push(this.nested(indent, false));
      } else if (isDash(rest)) {
        bail(); // `- - a`
      } else if (startsMapping(rest)) {
        // `- key: value`: a mapping whose keys align with this first one.
        this.lines[this.i] = { indent: indent + skip, text: rest, no: line.no };
        out.push(this.mapping(indent + skip));
      } else {
        this.i++;
        out.push(inlineValue(this, rest, this.depth));
      }
      if (this.track) this.path.pop();
    }
    this.depth--;
    return out;
  }

  /** The value of `key:` or `-` with nothing after it: a nested block, or null. */
  private nested(indent: number, ofMapping: boolean): unknown {
    const next = this.lines[this.i];
    if (!next) return null;
    if (next.indent > indent) return isDash(next.text) ? this.sequence(next.indent) : this.mapping(next.indent);
    // A mapping's value may be a sequence at the mapping's own indent.
    if (ofMapping && next.indent === indent && isDash(next.text)) return this.sequence(indent);
    return null;
  }
}

function isDash(text: string): boolean {
  return text.charCodeAt(0) === 45 /* - */ && (text.length === 1 || text.charCodeAt(1) === 32);
}

/** Whether a sequence item's text is a mapping entry (`key: v`, `"key": v`). */
function startsMapping(text: string): boolean {
  const c = text[0];
  if (c === '"' || c === "'") {
    const [, end] = quoted(text, 0);
    return text[end] === ':';
  }
  if (c === '[' || c === '{') return false;
  return plainKeyEnd(text) >= 0;
}

/** Where a plain key's `:` is (followed by a space or the line's end, before any comment), or -1. */
function plainKeyEnd(text: string): number {
  const hash = text.indexOf(' #');
  const limit = hash < 0 ? text.length : hash;
  let at = text.indexOf(':');
  while (at >= 0 && at < limit) {
    if (at + 1 === text.length || text.charCodeAt(at + 1) === 32) return at;
    at = text.indexOf(':', at + 1);
  }
  return -1;
}

/** A mapping entry's key, whether it is plain, and what follows its `: ` (comment removed, '' when the value is on the next lines). */
function splitKey(text: string): { key: string; rest: string; plain: boolean } | undefined {
  let key: string;
  let after: number;
  const c = text[0];
  const plain = c !== '"' && c !== "'";
  if (!plain) {
    const [value, end] = quoted(text, 0);
    if (text[end] !== ':' || (end + 1 < text.length && text.charCodeAt(end + 1) !== 32)) return undefined;
    key = value;
    after = end + 1;
  } else {
    const colon = plainKeyEnd(text);
    if (colon <= 0) return undefined;
    key = text.slice(0, colon);
    if (!plainKeyOk(key)) return undefined;
    after = colon + 1;
  }
  let rest = text.slice(skipSpaces(text, after));
  if (rest.charCodeAt(0) === 35 /* # */) rest = '';
  return { key, rest, plain };
}

/**
 * A key about to go into a mapping (block or flow): a duplicate is js-yaml's
 * "duplicated mapping key"; `__proto__` and `<<` are keys js-yaml treats apart.
 */
function checkNewKey(out: Record<string, unknown>, key: string): void {
  if (key === '__proto__' || key === '<<' || Object.hasOwn(out, key)) bail();
}

/** A plain key this parser takes: a string to js-yaml too, no indicator, comment or flow character. */
function plainKeyOk(key: string): boolean {
  if (INDICATOR_START.has(key[0]) || key[0] === '-' || key.endsWith(' ')) return false;
  for (let k = 0; k < key.length; k++) {
    const ch = key[k];
    if (ch === '#' || ch === ',' || ch === '[' || ch === ']' || ch === '{' || ch === '}') return false;
  }
  return typeof resolveImplicit!(key) === 'string';
}

/**
 * A value written on its key's (or dash's) line: a flow collection, a quoted
 * or a plain scalar. `depth`: the block collections it is in (a flow here
 * nests below them).
 */
function inlineValue(p: SimpleParser, text: string, depth: number): unknown {
  const c = text[0];
  if (c === '[' || c === '{' || c === '"' || c === "'") {
    const [value, end] = c === '"' || c === "'" ? quoted(text, 0) : flow(p, text, 0, depth + 1);
    endOfLine(text, end);
    return value;
  }
  if (INDICATOR_START.has(c) || isDash(text)) return bail();
  // Plain: up to a comment (` #`), trailing spaces off.
  const hash = text.indexOf(' #');
  const plain = withoutTrailingSpaces(hash >= 0 ? text.slice(0, hash) : text);
  // `a: b: c` is js-yaml's "bad indentation of a mapping entry". Flow characters
  // are plain text here (block context): `${VAR}`, `x]`.
  if (plain.endsWith(':') || plain.includes(': ')) bail();
  const value = resolveImplicit!(plain);
  p.plain(plain, value, false);
  return value;
}

/** Nothing but spaces and a comment may follow a value on its line. */
function endOfLine(text: string, at: number): void {
  const k = skipSpaces(text, at);
  if (k < text.length && !(text.charCodeAt(k) === 35 && k > at)) bail();
}

/** A one-line quoted scalar starting at `at`: its value and the index after its closing quote. */
function quoted(text: string, at: number): [string, number] {
  const q = text[at];
  if (q === "'") {
    let out = '';
    let from = at + 1;
    for (;;) {
      const close = text.indexOf("'", from);
      if (close < 0) bail();
      out += text.slice(from, close);
      if (text[close + 1] !== "'") return [out, close + 1];
      out += "'";
      from = close + 2;
    }
  }
  let out = '';
  let from = at + 1;
  for (let k = from; k < text.length; k++) {
    const ch = text[k];
    if (ch === '"') return [out + text.slice(from, k), k + 1];
    if (ch === '\\') {
      const esc = ESCAPES[text[k + 1]];
      if (esc === undefined) bail();
      out += text.slice(from, k) + esc;
      k++;
      from = k + 1;
    }
  }
  return bail();
}

/**
 * A one-line flow collection starting at `at` (`[` or `{`): its value and the
 * index after it. `depth`: this collection's own depth, counting the block
 * collections around it.
 */
function flow(p: SimpleParser, text: string, at: number, depth: number): [unknown, number] {
  if (depth > MAX_DEPTH) bail();
  const seq = text[at] === '[';
  const close = seq ? ']' : '}';
  const out: unknown = seq ? [] : {};
  let k = skipSpaces(text, at + 1);
  if (text[k] === close) return [out, k + 1];
  for (;;) {
    if (seq) {
      if (p.track) p.path.push((out as unknown[]).length);
      const [value, end] = flowNode(p, text, k, depth, ']');
      if (p.track) p.path.pop();
      (out as unknown[]).push(value);
      k = end;
    } else {
      const c = text[k];
      let key: string;
      if (c === '"' || c === "'") {
        [key, k] = quoted(text, k);
        if (text[k] !== ':') bail();
      } else {
        const colon = text.indexOf(': ', k);
        if (colon < 0) bail();
        key = text.slice(k, colon);
        if (!plainKeyOk(key)) bail();
        k = colon;
        p.plain(key, key, true);
      }
      checkNewKey(out as Record<string, unknown>, key);
      k = skipSpaces(text, k + 1);
      if (text[k] === ',' || text[k] === '}') bail(); // `{a: }`: js-yaml's null, not taken here
      if (p.track) p.path.push(key);
      const [value, end] = flowNode(p, text, k, depth, '}');
      if (p.track) p.path.pop();
      (out as Record<string, unknown>)[key] = value;
      k = end;
    }
    k = skipSpaces(text, k);
    if (text[k] === close) return [out, k + 1];
    if (text[k] !== ',') bail();
    k = skipSpaces(text, k + 1);
    if (text[k] === close || text[k] === ',') bail(); // trailing or empty entry
  }
}

/** One value inside a flow collection. */
function flowNode(p: SimpleParser, text: string, at: number, depth: number, close: string): [unknown, number] {
  const c = text[at];
  if (c === '[' || c === '{') return flow(p, text, at, depth + 1);
  if (c === '"' || c === "'") {
    const r = quoted(text, at);
    if (text[r[1]] === ':') bail(); // `["a": b]`: a single-pair mapping
    return r;
  }
  if (c === undefined || INDICATOR_START.has(c) || c === '-' && (text[at + 1] === ' ' || text[at + 1] === close || text[at + 1] === ',')) bail();
  let k = at;
  for (; k < text.length; k++) {
    const ch = text[k];
    if (ch === ',' || ch === close) break;
    if (ch === '[' || ch === ']' || ch === '{' || ch === '}' || ch === '#') bail();
    if (ch === ':' && (text[k + 1] === ' ' || text[k + 1] === ',' || text[k + 1] === close || k + 1 === text.length)) bail();
  }
  if (k === text.length) bail(); // the flow goes on to the next line
  const plain = withoutTrailingSpaces(text.slice(at, k));
  const value = resolveImplicit!(plain);
  p.plain(plain, value, false);
  return [value, k];
}

/** YAML's white space is the space (and the tab, declined here): not JavaScript's trim, which also takes U+00A0, U+3000... */
function withoutTrailingSpaces(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 32) end--;
  return end === text.length ? text : text.slice(0, end);
}

function skipSpaces(text: string, k: number): number {
  while (text.charCodeAt(k) === 32) k++;
  return k;
}
