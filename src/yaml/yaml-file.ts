import { closeSync, readSync } from 'node:fs';
import { openRegularFileSized } from '../regular-file.js';
import { constructFromEvents, EVENT_ID, getScalarValue, load, parseEvents, CORE_SCHEMA, SCALAR_STYLE, YAMLException } from 'js-yaml';
import { TenantFileError } from '../errors.js';
import { parseSimpleYaml } from './simple-yaml.js';
import { yamlReasonShown } from './yaml-reason.js';
import { yaml11DifferencesOfEvents, type Yaml11Difference } from './yaml11.js';

/** Files above this size are refused before parsing. */
export const MAX_TENANT_FILE_BYTES = 1024 * 1024;
/** Alias and depth limits: js-yaml's defaults are unlimited (js-yaml#738, #739). */
export const YAML_LIMITS = { maxAliases: 100, maxDepth: 64 } as const;

export interface ParsedYaml {
  file: string;
  text: string;
  doc: unknown;
  /** Plain scalars that YAML 1.1 readers (PyYAML, the services) read otherwise, in text order (see yaml11.ts). */
  yaml11: Yaml11Difference[];
}

/**
 * Reads and parses one YAML file safely: size cap, CORE schema (dates stay
 * strings), duplicate keys an error, alias and depth limits. Any failure is a
 * TenantFileError carrying `file:line: reason`.
 */
export function readYamlFile(file: string): ParsedYaml {
  let text: string;
  try {
    // One open, one fstat, one read: the size is checked before anything is read.
    const { fd, size } = openRegularFileSized(file);
    try {
      if (size > MAX_TENANT_FILE_BYTES) {
        throw new TenantFileError(file, undefined, `file is ${size} bytes; the limit is ${MAX_TENANT_FILE_BYTES}`);
      }
      const bytes = Buffer.alloc(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, bytes, read, size - read, read);
        if (n === 0) break;
        read += n;
      }
      text = decodeUtf8(file, bytes.subarray(0, read));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (err instanceof TenantFileError) throw err;
    throw new TenantFileError(file, undefined, `cannot read: ${(err as Error).message}`);
  }
  // Most tenant files are simple YAML, which the fast path reads as js-yaml would
  // (no aliases there, so nothing to expand); anything else, errors included, is js-yaml's.
  const yaml11: Yaml11Difference[] = [];
  const simple = parseSimpleYaml(text, yaml11);
  if (simple !== undefined) return { file, text, doc: simple, yaml11 };
  try {
    const { doc, yaml11 } = loadYaml(text, file);
    // A YAML alias yields shared references; JSON serialisation would expand them.
    assertSerialisable(doc, file, text);
    return { file, text, doc, yaml11 };
  } catch (err) {
    if (err instanceof TenantFileError) throw err;
    if (err instanceof YAMLException) {
      const raw = err.reason || err.message.split('\n')[0];
      const reason = yamlReasonShown(raw);
      // Found at the very end, past the last line (`tenants/x.yaml:4: deficient indentation` for a 3-line file
      // with `name: [x`): something opened was never closed. Said as such, at the last line written.
      const content = text.trimEnd();
      // (Not for a tag or an alias, said as what it is: a review found a last line `password: !pw` said unclosed.)
      if (err.mark && err.mark.position >= content.length && content.length > 0 && reason === raw && !/alias|anchor/.test(raw)) {
        throw new TenantFileError(file, content.split('\n').length, `the file ends inside an unclosed [, { or quoted value (${reason})`);
      }
      throw new TenantFileError(file, err.mark ? err.mark.line + 1 : undefined, reason);
    }
    throw new TenantFileError(file, undefined, (err as Error).message.split('\n')[0]);
  }
}

/**
 * js-yaml's `load` (CORE schema, readYamlFile's limits), done in its two
 * steps so that the events, which say how each scalar was written, also give
 * the plain scalars YAML 1.1 reads otherwise. Throws what `load` throws.
 */
export function loadYaml(text: string, filename?: string): { doc: unknown; yaml11: Yaml11Difference[] } {
  // The options load gives each step (it picks them by name).
  const named = filename !== undefined ? { filename } : {};
  const events = parseEvents(text, { ...named, maxDepth: YAML_LIMITS.maxDepth });
  const docs = constructFromEvents(events, { ...named, schema: CORE_SCHEMA, maxAliases: YAML_LIMITS.maxAliases, source: text });
  // None or several documents: load's own error.
  if (docs.length !== 1) return { doc: load(text, { ...named, schema: CORE_SCHEMA, ...YAML_LIMITS }), yaml11: [] };
  return { doc: docs[0], yaml11: yaml11DifferencesOfEvents(text, events) };
}

/** A scalar key as the loader makes it: a plain one resolved by the schema, then text (`True` is the key "true", `0x10` "16"). */
function keyText(text: string, e: Parameters<typeof getScalarValue>[1]): string {
  const value = getScalarValue(text, e);
  const { style, tagStart, tagEnd } = e as { style?: number; tagStart?: number; tagEnd?: number };
  // A tagged key as its tag makes it (`!!str 0x10` stays "0x10", `!!int "16"` is 16: a review).
  const tag = tagStart !== undefined && tagStart >= 0 ? text.slice(tagStart, tagEnd) : '';
  if (!tag && style !== SCALAR_STYLE.PLAIN) return value;
  const plain = () => (style === SCALAR_STYLE.PLAIN ? String(load(value, { schema: CORE_SCHEMA })) : value);
  try {
    return tag ? String(load(`${tag} ${JSON.stringify(value)}`, { schema: CORE_SCHEMA })) : plain();
  } catch {
    // A tag this alone cannot read (a %TAG shorthand the document declares): as the plain scalar (a review).
    try {
      return plain();
    } catch {
      return value;
    }
  }
}

/** Where an alias is used as a value: the path of the node its anchor marks, and its own path (`<<` for a merge). */
export interface AliasSite {
  anchored: string[];
  site: string[];
}

/**
 * The aliases of a (valid) YAML text, from the parser's events, so every layout counts and nothing else does
 * (a comment, a quoted string, a key written out):
 * - `sites`: every alias used as a value, with the path of the node its anchor marks, so a copy of a stripped
 *   secret is found by what it is (an alias of it), whatever its type (a list, a mapping, a number were kept),
 *   and a value that merely equals one is left alone (it was stripped). A node under a key that is not a
 *   scalar has no path: its aliases are not listed.
 * - `keys`: the scalars used as mapping keys through an alias (`{ *k : v }`, `? *k`, `[*k : v]`), each
 *   anchored scalar's text with the line of its first such use.
 */
export function aliasUses(text: string): { sites: AliasSite[]; keys: Map<string, number> } {
  const sites: AliasSite[] = [];
  const keys = new Map<string, number>();
  // Anchored nodes by name: their path (values only), and a scalar's text (keys too).
  const anchors = new Map<string, string[]>();
  const scalars = new Map<string, string>();
  // Open collections: their path (undefined: none), whether a mapping (its nodes alternate key, value), the
  // nodes seen, the last key read.
  const open: Array<{ path: string[] | undefined; map: boolean; n: number; key: string | undefined }> = [];
  const name = (start: number, end: number) => text.slice(start, end).replace(/^[&*]/, '');
  for (const e of parseEvents(text, { maxDepth: YAML_LIMITS.maxDepth })) {
    if (e.type === EVENT_ID.POP) {
      open.pop();
      const parent = open[open.length - 1];
      if (parent) parent.n++;
      continue;
    }
    const top = open[open.length - 1];
    const isKey = !!top?.map && top.n % 2 === 0;
    // This node's path (a value's): under its parent's, by the key read or the index.
    const path = !top ? [] : isKey || !top.path ? undefined : top.map ? (top.key === undefined ? undefined : [...top.path, top.key]) : [...top.path, String(top.n)];
    if (e.type === EVENT_ID.MAPPING || e.type === EVENT_ID.SEQUENCE) {
      if (e.anchorStart >= 0 && path) anchors.set(name(e.anchorStart, e.anchorEnd), path);
      if (isKey && top) top.key = undefined;
      open.push({ path, map: e.type === EVENT_ID.MAPPING, n: 0, key: undefined });
      continue;
    }
    if (e.type === EVENT_ID.SCALAR) {
      if (e.anchorStart >= 0) scalars.set(name(e.anchorStart, e.anchorEnd), getScalarValue(text, e));
      if (isKey) top!.key = keyText(text, e);
      else if (e.anchorStart >= 0 && path) anchors.set(name(e.anchorStart, e.anchorEnd), path);
    } else if (e.type === EVENT_ID.ALIAS) {
      const anchor = name(e.anchorStart, e.anchorEnd);
      if (isKey) {
        top!.key = undefined;
        const value = scalars.get(anchor);
        if (value !== undefined && !keys.has(value)) keys.set(value, text.slice(0, e.anchorStart).split('\n').length);
      } else {
        const anchored = anchors.get(anchor);
        if (anchored && path) sites.push({ anchored, site: path });
      }
    }
    if (top) top.n++;
  }
  return { sites, keys };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The file's text, or `file:line: not UTF-8` naming the first line with a bad byte (never silently replaced). */
function decodeUtf8(file: string, bytes: Buffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          strictUtf8.decode(bytes.subarray(start, i));
        } catch {
          throw new TenantFileError(file, line, 'not UTF-8 (a byte sequence that is not valid UTF-8)');
        }
        line++;
        start = i + 1;
      }
    }
    throw new TenantFileError(file, undefined, 'not UTF-8');
  }
}

/** Refuses documents whose JSON form would blow up (aliases repeated into a huge tree). */
function assertSerialisable(doc: unknown, file: string, text: string): void {
  let nodes = 0;
  const limit = Math.max(10_000, text.length * 2);
  // The collections being walked: an alias inside its own anchor's value (`x: &a [*a]`) is one of them.
  // Without this check it recursed until the stack overflowed ("Maximum call stack size exceeded").
  const open = new Set<object>();
  // The depth once aliases are expanded: the parser's maxDepth counts nesting as written, and an alias of a
  // deep value inside another deep value nests them (60 anchors of 62 brackets each: 3,700 levels in a 58 KB
  // file, which overflowed the stack of every later copy and walk, and failed the whole migration: a probe).
  const walk = (v: unknown, depth: number): void => {
    if (++nodes > limit) throw new TenantFileError(file, undefined, 'document expands to too many values (alias bomb?)');
    if (!v || typeof v !== 'object') return;
    if (open.has(v)) throw new TenantFileError(file, undefined, 'a value contains itself (an alias inside its own anchor, such as `x: &a [*a]`)');
    if (depth > YAML_LIMITS.maxDepth) throw new TenantFileError(file, undefined, `values nest deeper than ${YAML_LIMITS.maxDepth} levels once its aliases are expanded`);
    open.add(v);
    if (Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    else for (const x of Object.values(v)) walk(x, depth + 1);
    open.delete(v);
  };
  walk(doc, 1);
}

/**
 * The 1-based line where a key path is written, found by reading the text in
 * order (block and flow style); undefined when it cannot be told.
 */
export function lineOfPath(text: string, path: string[]): number | undefined {
  return lineLocator(text)(path);
}

/**
 * A line without its comment: a `#` at the line's start or after a space,
 * outside a quoted scalar (`'#'`, `"a # b"` and `a#b` are values). A quote
 * opens a scalar only where one can begin (the start, after a space, `[`, `{`,
 * `,` or `:`), so the apostrophe in `it's` opens nothing.
 */
export function withoutComment(line: string): string {
  if (!line.includes('#')) return line;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (quote === '"' && c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s[{,:]/.test(line[i - 1]))) quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** What may come right before a key token: a space, `{`, `,`, a quote or `-`. */
const KEY_BEFORE = /[\s{,"'-]/;

/**
 * A lookup of key paths to lines for one text, built in one pass: every key
 * token (`key:` after a line start, space, `{`, `,`, a quote or `-`) with the
 * lines it appears on, in order. Each lookup is then a binary search per path
 * segment, so locating 40,000 stripped secrets costs milliseconds, not the
 * quadratic scan-from-the-top per secret it used to.
 */
export function lineLocator(text: string): (path: string[]) => number | undefined {
  const index = new Map<string, number[]>();
  const lines = text.split('\n');
  // A token starts where the run of token characters does (the lookbehind): matches only ever began there,
  // but without it every position inside a long run was tried, each reading to the run's end, so one
  // 80,000-character line took 10 s (and a 1 MB one half an hour, deaf to signals).
  const KEY = /(?<![^\s{},:"'#[\]])([^\s{},:"'#[\]]+)["']?\s*:/g;
  const add = (name: string, i: number) => {
    const list = index.get(name);
    if (!list) index.set(name, [i]);
    else if (list[list.length - 1] !== i) list.push(i);
  };
  // A plain loop over exec(): a file of 40,000 keys builds this index on every stripped secret's first lookup.
  for (let i = 0; i < lines.length; i++) {
    const line = withoutComment(lines[i]);
    KEY.lastIndex = 0;
    for (let m = KEY.exec(line); m; m = KEY.exec(line)) {
      if (m.index > 0 && !KEY_BEFORE.test(line[m.index - 1])) continue;
      const token = m[1];
      add(token, i);
      // A token with dashes also counts from each dash on, as the old scan matched after a `-`.
      for (let d = token.indexOf('-'); d >= 0; d = token.indexOf('-', d + 1)) add(token.slice(d + 1), i);
    }
  }
  const firstAtOrAfter = (list: number[], from: number) => {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    return lo < list.length ? list[lo] : undefined;
  };
  const indentOf = (line: string) => line.length - line.trimStart().length;
  /**
   * The line of item `n` of the block sequence under the key on line `at` (`key:` then `- a` lines), or
   * undefined: a flow sequence (`key: [a, b]`) or anything else keeps the key's line.
   */
  const itemLine = (at: number, n: number): number | undefined => {
    // A block sequence's key ends its line (`key:`, or with an anchor or tag: `key: &a`); `key: [a, b]`
    // holds its items on its own line.
    if (!endsWithKeyColon(withoutComment(lines[at]))) return undefined;
    let indent: number | undefined;
    let count = -1;
    for (let i = at + 1; i < lines.length; i++) {
      const line = withoutComment(lines[i]);
      if (!line.trim()) continue;
      const ind = indentOf(line);
      const item = /^-(\s|$)/.test(line.slice(ind));
      if (indent === undefined) {
        if (!item) return undefined;
        indent = ind;
      }
      if (ind < indent || (ind === indent && !item)) return undefined;
      if (ind === indent && item && ++count === n) return i;
    }
    return undefined;
  };
  return (path) => {
    let from = 0;
    let found: number | undefined;
    for (const seg of path) {
      if (/^\d+$/.test(seg)) {
        // An index: the item's line, when the sequence is a block under the key found so far.
        const item = found === undefined ? undefined : itemLine(found, Number(seg));
        if (item !== undefined) found = from = item;
        continue;
      }
      const hit = firstAtOrAfter(index.get(seg) ?? [], from);
      if (hit === undefined) return found === undefined ? undefined : found + 1;
      found = hit;
      from = hit;
    }
    return found === undefined ? undefined : found + 1;
  };
}

/**
 * Whether a line ends with a colon, then only anchors or tags (`key:`, `key: &a`, `key: &a !!seq`): what
 * /:(?:\s+[&!]\S*)*\s*$/ tells, read once from the end (that pattern was tried from every colon, each to
 * the line's end: a long line of `&:` pieces took seconds).
 */
export function endsWithKeyColon(line: string): boolean {
  let end = line.length;
  const blank = (i: number) => /\s/.test(line[i]);
  for (;;) {
    while (end > 0 && blank(end - 1)) end--;
    if (end > 0 && line[end - 1] === ':') return true;
    // The last token: an anchor or a tag after a blank, or the end of the question.
    let start = end;
    while (start > 0 && !blank(start - 1)) start--;
    if (start === 0 || start === end || (line[start] !== '&' && line[start] !== '!')) return false;
    end = start;
  }
}

