import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TenantFileError, describeError } from '../errors.js';
import { shownPath } from '../shown-path.js';
import { showControls } from '../redact.js';
import { aliasUses, lineLocator, readYamlFile, withoutComment, type AliasSite } from '../yaml/yaml-file.js';
import { pythonFloat } from '../json/services-json.js';
import { describeYaml11Difference, type Yaml11Difference } from '../yaml/yaml11.js';
import { exposedSecrets, isSecretKey, looksLikeSecretKey, MAY_EXPOSE, stripSecrets, type ExposedSecret, type StrippedSecret } from './secrets.js';
import { isMap } from './plain-object.js';
import { rowFromConfig } from './registry-mapping.js';
import type { ParsedEntry } from './parse-cache.js';

/**
 * One tenant file: where it is, what parsing it gives, and that result in
 * the form kept between runs (ParsedEntry). No state: YamlTenantSource
 * keeps what it reads, this only reads.
 */

/** A secret-looking value kept as written, with its line. */
export interface ExposedSecretAt extends ExposedSecret {
  line?: number;
}

/** A secret stripped from a file, with its line. */
export interface StrippedSecretAt extends StrippedSecret {
  line?: number;
}

/** A tenant as read from its YAML file: secrets stripped, `${VAR}` references kept. */
export interface TenantDocument {
  id: string;
  file: string;
  /** The whole configuration with `client` block, secrets stripped, references unresolved. */
  config: Record<string, unknown>;
  /** `yaml_only: true`: never cached, never migrated. */
  yamlOnly: boolean;
  /**
   * `file:line: ...` warnings: literal secrets stripped, then plain scalars
   * that YAML 1.1 readers such as PyYAML (the services) read otherwise.
   */
  warnings: string[];
  /** What was stripped, and where (the warnings say the same in words). */
  strippedSecrets: StrippedSecretAt[];
  /** Plain scalars YAML 1.1 readers read otherwise, and where (the warnings say the same in words). */
  yaml11Differences: Yaml11Difference[];
  /** Numbers JSON (the registry's jsonb) cannot keep as written, and where (see lossyNumbers). */
  lossyNumbers?: LossyNumberAt[];
  /** Values kept as written that look like secrets (a secret-looking key, a URL's password), and where. */
  exposedSecrets?: ExposedSecretAt[];
  /**
   * The content hash of the registry row this file makes (rowFromConfig's
   * tenantctl_hash) as parsed, kept in the parse cache: a migration rerun over
   * 10,000 unchanged files hashes none of them (nor even reads their configs).
   */
  rowHash?: string;
  /** Whether the config has a `subscription` block. */
  hasSubscription: boolean;
  /**
   * The 1-based line of a key path in the file, for later checks' messages.
   * A function, not the text: the text may hold the literal secrets that were stripped.
   */
  lineOf(path: string[]): number | undefined;
}

/** Where a tenant's file may be, after `<dir>/<id>`, in order. */
export const LAYOUTS = ['.yaml', '.yml', `${path.sep}client.yaml`, `${path.sep}client.yml`];

/** The name a tenant file's id is read from: the file's own (`acme.yaml`), or for `<id>/client.yaml` its folder's. */
export function layoutName(file: string): { name: string; folder: boolean } {
  const folder = /^client\.ya?ml$/.test(path.basename(file));
  return { name: path.basename(folder ? path.dirname(file) : file), folder };
}

/**
 * How a tenants directory prefixes its files' paths: as path.join writes it,
 * with a trailing separator (a valid id holds none, so `base + id + layout` is
 * what path.join gives). The parse cache keys its entries the same way.
 */
export const directoryBase = (dir: string): string => path.join(dir, '_').slice(0, -1);

/** Every file a (valid) tenant id has under `base`, in layout order: more than one is ambiguous. One stat per layout. */
export function tenantFiles(base: string, id: string): string[] {
  return LAYOUTS.map((layout) => base + id + layout).filter((f) => isFileLike(statOrNone(f)));
}

/**
 * The file of a (valid) tenant id under `base` (the directory with a trailing
 * separator) and its stamp; undefined when there is none. One stat per
 * candidate layout.
 */
export function locateTenantFile(base: string, id: string): { file: string; stamp: string } | undefined {
  for (const layout of LAYOUTS) {
    const candidate = base + id + layout;
    const st = statOrNone(candidate);
    // ctime and inode too: an edit that keeps the mtime (cp -p, a restore) still changes the stamp.
    if (st && isFileLike(st)) return { file: candidate, stamp: `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}` };
  }
  return undefined;
}

/**
 * Where a tenant file is: a regular file, or anything else there that is not a directory (a FIFO, a
 * socket, a device), which reading then reports as not a regular file. A FIFO named acme.yaml was
 * skipped without a word, and `acme` said to have no file.
 */
export function isFileLike(st: { isFile(): boolean; isDirectory(): boolean } | undefined): boolean {
  return !!st && (st.isFile() || !st.isDirectory());
}

/** Where the values that fill the registry's text columns are read from (registry-mapping.ts). */
const COLUMN_PATHS = [
  ['client', 'short_name'], ['client', 'timezone'], ['client', 'currency'], ['timezone'], ['currency'],
  ['email', 'primary'], ['infrastructure', 'gcp', 'project_id'], ['infrastructure', 'gcp', 'dataset'],
];

/** The value at a key path, through mappings only (undefined when a step is missing or not a mapping). */
function valueAt(config: Record<string, unknown>, path: string[]): unknown {
  let v: unknown = config;
  for (const k of path) {
    if (!isMap(v)) return undefined;
    v = Object.hasOwn(v as object, k) ? (v as Record<string, unknown>)[k] : undefined;
  }
  return v;
}

/**
 * What makes a tenant config unfit for the registry, where (a key path), or undefined: the checks a tenant
 * file passes, for a config a program hands over too. `deep`: also walk its strings for characters
 * PostgreSQL cannot store.
 */
export function configProblem(id: string, doc: unknown, deep = true, idFrom = 'the file name'): { path: string[]; reason: string } | undefined {
  const at = (path: string[], reason: string) => ({ path, reason });
  if (!isMap(doc)) return at([], 'a tenant config must be a mapping with a client block');
  const config = doc as Record<string, unknown>;
  if (!isMap(config.client)) return at(['client'], 'missing "client" block');
  const client = config.client as Record<string, unknown>;
  if (client.id === undefined || client.id === null) return at(['client'], 'missing client.id');
  // Shown with its control characters as \xNN here: a one-line message folds a line break into a space ("a b").
  if (String(client.id) !== id) return at(['client', 'id'], `client.id "${showControls(String(client.id))}" does not match ${idFrom} "${id}"`);
  if (typeof client.name !== 'string' || client.name.trim() === '') return at(['client', 'name'], 'client.name must be a non-empty string');
  if (config.yaml_only !== undefined && typeof config.yaml_only !== 'boolean') return at(['yaml_only'], 'yaml_only must be true or false');
  // The values that fill registry columns (text) must be scalars: a mapping or list there became "[object Object]".
  for (const p of COLUMN_PATHS) {
    const v = valueAt(config, p);
    if (v !== null && typeof v === 'object') return at(p, `${p.join('.')} fills a registry column: it must be a string or a number, not a ${Array.isArray(v) ? 'list' : 'mapping'}`);
  }
  const bad = deep ? unstorable(config, []) : undefined;
  if (bad) return at(bad, `${bad.length ? bad.join('.') : 'a key'} holds a NUL character or an unpaired surrogate, which PostgreSQL (text, jsonb) cannot store`);
  return undefined;
}

/** Reads, parses and validates one tenant file; secrets stripped. Throws TenantFileError when it is bad. */
export function parseTenantFile(id: string, file: string): TenantDocument {
  const { text, doc, yaml11: read11 } = readYamlFile(file);
  // The line index is built only when a line is asked for (an error, a stripped secret).
  let locate: ((p: string[]) => number | undefined) | undefined;
  const lineOf = (p: string[]) => (locate ??= lineLocator(text))(p);
  const fail = (p: string[], reason: string): never => {
    throw new TenantFileError(file, lineOf(p), reason);
  };
  // Only an escape (`"\0"`, `"\ud800"`) can put an unstorable character in a string: files without a backslash skip that walk.
  const problem = configProblem(id, doc, text.includes('\\'));
  if (problem) fail(problem.path, problem.reason);
  const config = doc as Record<string, unknown>;

  const { config: stripped, stripped: strippedHere } = stripSecrets(config);
  // Copies stripped below may carry their line (an alias key's: the path names no key there).
  const removed: Array<StrippedSecret & { line?: number }> = strippedHere;
  // An alias (`z: *t`) of a literal secret (`token: &t LIT`) under a key that is no secret's name is that
  // secret all the same: stripped there too (before: kept as written, while the warning said "stripped").
  if (text.includes('&') && text.includes('*') && removed.some((r) => r.kind === 'literal-removed')) {
    const secretPaths = removed.filter((r) => r.kind === 'literal-removed').map((r) => r.path);
    // As values: each alias of a stripped secret, by the parser's events (a list, a mapping or a number was
    // kept; a value that merely equals a secret went).
    const uses = aliasUses(text);
    const sites = secretAliasSites(uses.sites, secretPaths);
    if (sites.length) removed.push(...stripAliasSites(stripped, sites));
    // As mapping keys: the key is the secret.
    const values = new Set(removed.filter((r) => r.kind === 'literal-removed').map((r) => valueAt(config, r.path)).filter((v): v is string => typeof v === 'string' && v !== ''));
    if ([...values].some((v) => uses.keys.has(v))) removed.push(...stripCopies(stripped, values, [], uses.keys));
  }
  const secrets = removed.map((s) => ({ ...s, line: s.line ?? lineOf(s.path) }));
  // Under a secret key, the value is stripped (never stored, so never read otherwise), and must not be shown or kept.
  const yaml11 = read11.length ? read11.filter((d) => !d.path.some(isSecretKey)) : read11;
  const yamlOnly = config.yaml_only === true;
  const hasSubscription = stripped.subscription !== undefined;
  // Only a long digit run, an exponent or .inf/.nan can make one: files without any skip the walk.
  // A big integer is said only where its line holds a long integer as written (an exponent keeps its value).
  const lines = () => (textLines ??= text.split('\n'));
  let textLines: string[] | undefined;
  const lossy: LossyNumberAt[] = LOSSY_HINT.test(text)
    ? lossyNumbers(stripped, [])
        .map((l) => ({ ...l, line: lineOf(l.path) }))
        .filter((l) => l.kind !== 'big-integer' || (l.line !== undefined && LONG_INTEGER.test(lines()[l.line - 1] ?? '')))
        .map((l) => (l.kind === 'big-integer' ? withDigits(l, lines()[l.line! - 1]) : l))
    : [];
  // Only a file with a whole-float token (or a !!float tag) outside comments and quotes walks its numbers for them.
  const plainText = (line: string) => withoutComment(line).replace(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'/g, '""');
  const floatAt = firstWholeFloat(lines(), plainText);
  if (floatAt) {
    const lineText = (p: string[]) => {
      const line = lineOf(p);
      return line === undefined ? undefined : plainText(lines()[line - 1]);
    };
    // One YAML 1.1 reads otherwise (`1.0e3` is a string to PyYAML) is said as such.
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((k, i) => k === b[i]);
    const found = wholeFloats(stripped, [], lineText).filter((w) => !yaml11.some((d) => same(d.path, w.path)));
    for (const w of found) lossy.push({ ...w, line: lineOf(w.path) });
    // One the walk could not place (on a line of its own below its key, a float key, a !!float tag): no
    // file:line warning of a path, but --warm still writes nothing (the services may write `.0` there).
    if (!found.length && !yaml11.some((d) => d.line === floatAt.line)) lossy.push({ path: [], stored: '', kind: 'whole-float', written: floatAt.token, line: floatAt.line });
  }
  // Secret-looking values kept as written: only files whose text could hold one are walked.
  const exposed = MAY_EXPOSE.test(text) ? exposedSecrets(stripped).map((e) => ({ ...e, line: lineOf(e.path) })) : [];
  const parsed: TenantDocument = {
    id, file, config: stripped, yamlOnly, warnings: fileWarnings(file, secrets, yaml11, lossy, exposed), strippedSecrets: secrets, yaml11Differences: yaml11, hasSubscription, lineOf,
    ...(lossy.length && { lossyNumbers: lossy }),
    ...(exposed.length && { exposedSecrets: exposed }),
  };
  // Hashed when first asked for (a migration, the parse cache), so a get-config of one huge file never pays
  // for it; not enumerable, so load()'s copy does not compute it either.
  let rowHash: string | undefined;
  Object.defineProperty(parsed, 'rowHash', { get: () => (rowHash ??= rowFromConfig(id, stripped).tenantctl_hash!), enumerable: false });
  // The closures kept with the document (lineOf, rowHash) hold this call's variables: the lines are let go
  // of (a migration keeps 10,000 documents until the end, and their lines were ~8 MB the collector copied).
  textLines = undefined;
  return parsed;
}

/**
 * Removes, in place, the mapping keys equal to one of `values` (copies of stripped secrets used as keys); their
 * paths. A key (`{ *k : v }`) was kept, and the secret with it, stored and shown unmasked (a probe): its
 * entry goes, named `<key>` in the path (the key is the secret), where the parser saw that secret's anchor
 * used as a key (`aliasUses`): a key `postgres:` beside a password `postgres` in a file with any anchor
 * lost its whole subtree, and a text search for alias keys missed `? *k` and `[*k : v]` (two reviews).
 */
function stripCopies(v: unknown, values: Set<string>, at: string[], aliasKeys: Map<string, number>): Array<StrippedSecret & { line?: number }> {
  const out: Array<StrippedSecret & { line?: number }> = [];
  if (Array.isArray(v)) {
    for (let i = v.length - 1; i >= 0; i--) out.push(...stripCopies(v[i], values, [...at, String(i)], aliasKeys));
  } else if (isMap(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (values.has(k) && aliasKeys.has(k)) {
        delete (v as Record<string, unknown>)[k];
        out.push({ path: [...at, '<key>'], kind: 'literal-removed', line: aliasKeys.get(k) });
      } else out.push(...stripCopies(x, values, [...at, k], aliasKeys));
    }
  }
  return out;
}

const startsWith = (path: string[], prefix: string[]) => prefix.length <= path.length && prefix.every((k, i) => path[i] === k);

/**
 * The places that hold a copy of a stripped secret through aliases: an alias of the secret, or of a node
 * inside it (`api_key: [&a K1, K2]`, `copy: *a`), and, through an alias of a collection holding such a copy
 * (`list: &l [*p, x]`, `copy: *l`), the same place under the alias (a review: both were kept).
 */
function secretAliasSites(all: AliasSite[], secretPaths: string[][]): AliasSite[] {
  const found: AliasSite[] = all.filter((a) => secretPaths.some((p) => startsWith(a.anchored, p)));
  const known = new Set(found.map((a) => a.site.join('\0')));
  // Each round follows one more alias of a collection (the loader's alias limit bounds the rounds).
  for (let added = found.length > 0; added; ) {
    added = false;
    for (const a of all) {
      for (const f of [...found]) {
        if (f.site.length <= a.anchored.length || !startsWith(f.site, a.anchored)) continue;
        const site = [...a.site, ...f.site.slice(a.anchored.length)];
        if (known.has(site.join('\0'))) continue;
        known.add(site.join('\0'));
        found.push({ anchored: f.anchored, site });
        added = true;
      }
    }
  }
  return found;
}

/** Marks a node to remove (stripAliasSites): removed from its list or mapping once every site is marked. */
const GONE = Symbol('stripped copy');

/** Removes, in place, each alias site of a stripped secret from `stripped`; their paths. */
function stripAliasSites(stripped: Record<string, unknown>, sites: AliasSite[]): StrippedSecret[] {
  const out: StrippedSecret[] = [];
  const nodeAt = (root: unknown, path: string[]): unknown => {
    let v = root;
    for (const k of path) {
      if (Array.isArray(v)) v = v[Number(k)];
      else if (isMap(v) && Object.hasOwn(v as object, k)) v = (v as Record<string, unknown>)[k];
      else return undefined;
    }
    return v;
  };
  const mark = (path: string[]) => {
    const parent = nodeAt(stripped, path.slice(0, -1));
    const last = path[path.length - 1];
    if (Array.isArray(parent) && Number(last) < parent.length) parent[Number(last)] = GONE;
    else if (isMap(parent) && Object.hasOwn(parent as object, last)) (parent as Record<string, unknown>)[last] = GONE;
    else return;
    out.push({ path, kind: 'literal-removed' });
  };
  // (A `<<` key is a key like any other to the CORE schema: an alias under it is a site as any other.)
  for (const { site } of sites) mark(site);
  const sweep = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) (v[i] === GONE ? v.splice(i, 1) : sweep(v[i]));
    } else if (isMap(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) (x === GONE ? delete (v as Record<string, unknown>)[k] : sweep(x));
    }
  };
  sweep(stripped);
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The path of the first key or string value no registry can store (NUL, an unpaired UTF-16 surrogate), or undefined. */
function unstorable(v: unknown, at: string[]): string[] | undefined {
  const bad = (s: string) => s.includes('\0') || LONE_SURROGATE.test(s);
  if (typeof v === 'string') return bad(v) ? at : undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const found = unstorable(v[i], [...at, String(i)]);
      if (found) return found;
    }
    return undefined;
  }
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (bad(k)) return [...at, k];
      const found = unstorable(x, [...at, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/** A number a tenant file holds that JSON cannot keep as written: an integer past 2^53, or .inf / .nan. */
export interface LossyNumberAt {
  path: string[];
  line?: number;
  /** What the registry and the cache hold instead. */
  stored: string;
  kind: 'big-integer' | 'not-finite' | 'whole-float';
  /**
   * A whole float as written (`1.0`): the services' YAML reader keeps it a float, so their JSON says `1.0`. A big
   * integer's decimal digits as written (see withDigits), which the services' reader keeps.
   */
  written?: string;
}

/** A written integer too long to be exact as a double (decimal, hex, octal); `1.0e+100` is not one: it is kept as written. */
const LONG_INTEGER = /\d{16}|0x[0-9a-f]{14}|0o[0-7]{18}/i;
/** What a file must hold for any number in it to be lossy: a long integer, a large exponent, .inf or .nan. */
const LOSSY_HINT = new RegExp(`${LONG_INTEGER.source}|[eE][+]?\\d{3}|\\.(?:inf|nan)\\b`, 'i');

/**
 * A plain scalar written as a float whose value is whole (`1.0`, `2.50e1`, `3.`): a float to the
 * services' YAML reader (PyYAML), whose `json.dumps` writes `1.0`, but the number 1 once JavaScript has
 * read it, which JSON from here writes `1`. A token, not part of a word, a version (`v1.0`) or an address
 * (`10.0.0.1`).
 */
const FLOAT_TOKEN = /(?<![\w.])[-+]?(?:\d[\d_]*)?\.[\d_]*(?:[eE][-+]?\d+)?(?![\w.])/g;

/** The whole-valued float tokens of a text (`1.0` -> 1), by value. */
function wholeFloatTokens(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const [token] of text.matchAll(FLOAT_TOKEN)) {
    if (!/\d/.test(token)) continue;
    const n = Number(token.replace(/_/g, ''));
    // Past 2^53 too (`1.5e+20`: neither a big integer as written nor, before, a whole float: no warning), up
    // to where JavaScript writes an exponent as Python does (1e+21 both: nothing lost).
    if (Number.isInteger(n) && !out.has(n) && JSON.stringify(n) !== pythonFloat(n)) out.set(n, token);
  }
  return out;
}

/** The first whole-float token (or `!!float` tag) of a file's lines, as `plain` shows each line, with its 1-based line. */
function firstWholeFloat(lines: string[], plain: (line: string) => string): { token: string; line: number } | undefined {
  for (let i = 0; i < lines.length; i++) {
    if (!/[.!]/.test(lines[i])) continue;
    const text = plain(lines[i]);
    const token = /!!float\b/.test(text) ? '!!float' : wholeFloatTokens(text).values().next().value;
    if (token !== undefined) return { token, line: i + 1 };
  }
  return undefined;
}

/**
 * The whole numbers of a config written as floats (see FLOAT_TOKEN): a number whose line holds a
 * whole-float token of its value. An over-approximation where a line holds several values (`{a: 1, b: 1.0}`
 * names both): a caller that refuses to write them (--warm) only writes less.
 */
function wholeFloats(v: unknown, at: string[], lineText: (p: string[]) => string | undefined): LossyNumberAt[] {
  if (typeof v === 'number') {
    // From 1e21 JavaScript writes an exponent as Python does (1e+100 both): the same JSON, nothing lost.
    if (!Number.isInteger(v) || JSON.stringify(v) === pythonFloat(v)) return [];
    const line = lineText(at);
    const written = line === undefined ? undefined : wholeFloatTokens(line).get(v);
    return written === undefined ? [] : [{ path: at, stored: String(v), kind: 'whole-float', written }];
  }
  if (Array.isArray(v)) return v.flatMap((x, i) => wholeFloats(x, [...at, String(i)], lineText));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => wholeFloats(x, [...at, k], lineText));
  return [];
}

/**
 * A big integer with its digits as the file writes it (`written`), when its line holds exactly one decimal
 * integer token of its value: the services' YAML reader keeps every digit (verify compares them). Hex, octal
 * or underscores: not taken (YAML 1.1 reads some of those otherwise; see yaml11.ts).
 */
function withDigits(l: LossyNumberAt, line: string): LossyNumberAt {
  const value = Number(l.stored);
  const tokens = [...withoutComment(line).matchAll(/(?<![\w.])[-+]?\d{16,}(?![\w.])/g)].map((m) => m[0]).filter((t) => Number(t) === value);
  return tokens.length === 1 ? { ...l, written: String(BigInt(tokens[0])) } : l;
}

/** The numbers of a parsed config that JSON changes: rounded integers past 2^53, and infinities and NaN (null in JSON). */
function lossyNumbers(v: unknown, at: string[]): LossyNumberAt[] {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return [{ path: at, stored: 'null', kind: 'not-finite' }];
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) return [{ path: at, stored: JSON.stringify(v), kind: 'big-integer' }];
    return [];
  }
  if (Array.isArray(v)) return v.flatMap((x, i) => lossyNumbers(x, [...at, String(i)]));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => lossyNumbers(x, [...at, k]));
  return [];
}

/** What the parse cache keeps of a result: never the text (it may hold the literal secrets that were stripped). */
export function toParsedEntry(id: string, stamp: string, result: TenantDocument | TenantFileError): ParsedEntry {
  if (result instanceof TenantFileError) return { stamp, id, error: { line: result.line, detail: result.detail } };
  return {
    stamp, id, yamlOnly: result.yamlOnly, strippedSecrets: result.strippedSecrets, yaml11Differences: result.yaml11Differences, rowHash: result.rowHash, hasSubscription: result.hasSubscription,
    ...(result.lossyNumbers?.length && { lossyNumbers: result.lossyNumbers }),
    ...(result.exposedSecrets?.length && { exposedSecrets: result.exposedSecrets }),
  };
}

/** A result back from the parse cache; its lines are found by reading the file again, only if one is asked for. */
export function fromParsedEntry(file: string, e: ParsedEntry, configOf: () => Record<string, unknown>): TenantDocument | TenantFileError {
  if (e.error) return new TenantFileError(file, e.error.line, e.error.detail);
  let locate: ((p: string[]) => number | undefined) | undefined;
  const lineOf = (p: string[]) => {
    try {
      return (locate ??= lineLocator(readFileSync(file, 'utf8')))(p);
    } catch {
      return undefined;
    }
  };
  const secrets = e.strippedSecrets ?? [];
  const yaml11 = e.yaml11Differences ?? [];
  const lossy = e.lossyNumbers ?? [];
  const exposed = e.exposedSecrets ?? [];
  // The config is fetched on first use (most readers of a rerun never ask), then kept.
  let config: Record<string, unknown> | undefined;
  return {
    id: e.id, file, yamlOnly: !!e.yamlOnly, warnings: fileWarnings(file, secrets, yaml11, lossy, exposed), strippedSecrets: secrets, yaml11Differences: yaml11, rowHash: e.rowHash,
    ...(lossy.length && { lossyNumbers: lossy }),
    ...(exposed.length && { exposedSecrets: exposed }),
    hasSubscription: !!e.hasSubscription, lineOf,
    get config() {
      return (config ??= configOf());
    },
  };
}

/**
 * A file's warnings, the file named from the working directory: `file:line:
 * literal secret ... stripped` per stripped secret, then `file:line: path:
 * plain no is the string "no" here (YAML 1.2) but false to YAML 1.1 readers
 * such as PyYAML ...` per plain scalar YAML 1.1 reads otherwise.
 */
function fileWarnings(file: string, secrets: StrippedSecretAt[], yaml11: Yaml11Difference[], lossy: LossyNumberAt[] = [], exposed: ExposedSecretAt[] = []): string[] {
  if (secrets.length === 0 && yaml11.length === 0 && lossy.length === 0 && exposed.length === 0) return [];
  const name = shownPath(file);
  const out = secrets.map((s) => {
    const where = `${name}:${s.line ?? '?'}`;
    return s.kind === 'literal-removed'
      ? `${where}: literal secret ${s.path.join('.')} stripped; put it in an environment variable and write \${VAR}`
      : `${where}: default of secret ${s.path.join('.')} dropped; only the variable is kept`;
  });
  for (const e of exposed) {
    out.push(e.kind === 'looks-secret'
      ? `${name}:${e.line ?? '?'}: ${e.path.join('.')} looks like a secret but is none by the services' rule (api_key, password, secret, token, ...): stored and cached as written (masked in output); keep it in an environment variable and write \${VAR}`
      : `${name}:${e.line ?? '?'}: ${e.path.join('.')}: a URL with a password is stored and cached as written (masked in output); write the password as \${VAR}`);
  }
  // A value under a name that looks like a secret is masked in output: its warnings name the key, not the value.
  const masked = (path: string[]) => path.some((k) => looksLikeSecretKey(k));
  for (const d of yaml11) {
    out.push(masked(d.path)
      ? `${name}:${d.line}: ${d.path.join('.')}: the services' YAML 1.1 reader reads this value otherwise (not shown: it looks like a secret); quote it`
      : `${name}:${d.line}: ${describeYaml11Difference(d)}`);
  }
  for (const l of lossy) {
    const where = `${name}:${l.line ?? '?'}: ${l.path.join('.')}`;
    if (masked(l.path) && l.path.length) {
      out.push(`${where}: a number the registry or the services' YAML reader stores otherwise than written (not shown: it looks like a secret); quote it`);
      continue;
    }
    if (l.kind === 'big-integer') out.push(`${where}: an integer past 2^53 is stored as ${l.stored} (digits lost: JSON numbers are doubles); quote it to keep it as written`);
    else if (l.kind === 'not-finite') out.push(`${where}: .inf / .nan have no JSON form and are stored as null; quote it, or use a large number`);
    // One not placed at a path: no warning (see parseTenantFile); --warm still refuses.
    // Past 2^53 an integer written out is itself lossy (the big-integer warning): no advice to write one.
    else if (l.path.length) out.push(`${where}: ${l.written} is stored as the integer ${l.stored}, where the services' YAML reader keeps a float (${pythonFloat(Number(l.stored))} in their JSON); ${Number.isSafeInteger(Number(l.stored)) ? `write ${l.stored} if an integer is meant` : 'quote it to keep it as written'}`);
  }
  return out;
}

/**
 * A path's stat, undefined when nothing is there (or a path component is a
 * file); any other failure (a symbolic-link loop, no permission) is the
 * file's error, said with its name.
 */
export function statOrNone(file: string) {
  try {
    return statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new TenantFileError(file, undefined, `cannot be read (${code ?? describeError(err)})`);
  }
}
