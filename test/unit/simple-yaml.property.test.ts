import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { CORE_SCHEMA, load } from 'js-yaml';
import { describe, expect, it, onTestFinished } from 'vitest';
import { TenantFileError } from '../../src/errors.js';
import { loadYaml, readYamlFile } from '../../src/yaml/yaml-file.js';
import { parseSimpleYaml } from '../../src/yaml/simple-yaml.js';
import type { Yaml11Difference } from '../../src/yaml/yaml11.js';
import { ROOT } from '../helpers/setup.js';

/** FUZZ_RUNS=100000 for a long differential run. */
const RUNS = Number(process.env.FUZZ_RUNS) || 3000;
const TIMEOUT = Math.max(30_000, RUNS * 2);
const ERROR = Symbol('js-yaml threw');
const reference = (text: string): unknown => {
  try {
    return load(text, { schema: CORE_SCHEMA });
  } catch {
    return ERROR;
  }
};

/**
 * Exactly the same value: primitives by Object.is (NaN, -0), arrays item by
 * item, objects with the same prototype and the same own properties in the
 * same order with the same descriptors. (toStrictEqual cannot be used: a key
 * named `constructor` makes it compare the two values of that key by identity.)
 */
function same(a: unknown, b: unknown, at = '$'): void {
  if (Array.isArray(a) || Array.isArray(b)) {
    expect(Array.isArray(a) && Array.isArray(b), `${at}: array vs not`).toBe(true);
    const x = a as unknown[];
    const y = b as unknown[];
    expect(x.length, `${at}: length`).toBe(y.length);
    x.forEach((v, i) => same(v, y[i], `${at}[${i}]`));
    return;
  }
  if (a && typeof a === 'object' && b && typeof b === 'object') {
    expect(Object.getPrototypeOf(a) === Object.getPrototypeOf(b), `${at}: prototype`).toBe(true);
    expect(Object.getOwnPropertyNames(a), `${at}: keys`).toEqual(Object.getOwnPropertyNames(b));
    for (const k of Object.getOwnPropertyNames(a)) {
      const da = Object.getOwnPropertyDescriptor(a, k)!;
      const db = Object.getOwnPropertyDescriptor(b, k)!;
      expect([da.enumerable, da.writable, da.configurable], `${at}.${k}: descriptor`).toEqual([db.enumerable, db.writable, db.configurable]);
      same(da.value, db.value, `${at}.${k}`);
    }
    return;
  }
  expect(Object.is(a, b), `${at}: ${String(a)} vs ${String(b)}`).toBe(true);
}

/**
 * The fast path either declines (undefined) or gives exactly js-yaml's value:
 * same values, types, key order, prototype; and the same YAML 1.1 differences.
 */
function agrees(text: string): boolean {
  const yaml11: Yaml11Difference[] = [];
  const fast = parseSimpleYaml(text, yaml11);
  if (fast === undefined) return false;
  const ref = reference(text);
  expect(ref, `js-yaml rejects a text the fast path took:\n${text}`).not.toBe(ERROR);
  same(fast, ref, JSON.stringify(text));
  expect(yaml11, `YAML 1.1 differences of ${JSON.stringify(text)}`).toEqual(loadYaml(text).yaml11);
  return true;
}

// ------------------------------------------------------------------ generators
/** Keys and scalars tenant files are made of, then odd ones (drawn less often, so that most documents stay simple). */
const KEYS = [
  'a', 'b', 'client', 'my key', 'x-y', 'x_y', 'a:b', 'é', 'k1', 'constructor', 'toString', '"q"', "'q'", '""', '"a: b"',
];
const ODD_KEYS = [
  '1', '0x10', 'true', 'null', '~', '.inf', '__proto__', '<<', 'k#', 'k #c', '-k', '?k', ':k', 'a,b', '[k]', '{k}', 'k ', "'it''s'", '"a\\"b"', '*k', '&k', '!k', '%k', '@k',
];
const SCALARS = [
  'abc', 'a b', 'Tenant 7', '1', '-5', '+3', '0', '-0', '0x1F', '0o17', '1_000', '.inf', '-.Inf', '.nan', 'true', 'True', 'TRUE', 'tRue', 'false', 'null',
  'Null', '~', '1e3', '1.5', '1.', '.5', '2024-01-01', '12:30', '${X}', '${X:-d}', 'https://x.example/y.png', 'a, b', 'a#b', 'a # comment', 'é', 'ü ö',
  '[a, b]', '[a,b]', '[ ]', '{ }', '{x: 1}', '{x: 1, y: [2, 3]}', '{a: {b: {c: d}}}', '[x , y ]', '[-1]', '{"k": v}', "{'k': v}", '{k: "v"}',
  '[a, [b, {c: d}]]', '[true, null, 1.5, ~]', '{a b: c d}', '[a] # c', "['a,b']", "'it''s'", "''", '""', "'a'", '"a"', '"#0a5"', "'#'", '"a # b"',
  '"a\\"b"', '"a\\\\b"', '"a\\nb"', '"a\\tb"', '"x" # c', '-x', 'a :b',
];
const ODD_SCALARS = [
  'x]', 'x}',
  'a :b', 'a: b', 'b:', '- b', '-', '-x', '?x', ':x', '@x', '`x`', '%x', '|', '>', '|-', '&a x', '*a', '!!str 1', '!x y', '#c', 'é', 'ü ö',
  '[a, b]', '[a,b]', '[a, b,]', '[a,, b]', '[ ]', '[]', '{ }', '{}', '{x: 1}', '{x:1}', '{x: }', '{x: 1, y: [2, 3]}', '{a: {b: {c: d}}}', '[a: b]',
  '[x , y ]', '[-]', '[-1]', '[- 1]', '[x#y]', '[x #y]', '{"k": v}', "{'k': v}", '{k: "v"}', '{k: v, k: w}', '[a, [b, {c: d}]]', '[true, null, 1.5, ~]',
  '{a b: c d}', '[a', '{a: b', '[a]x', '[a] # c', '{a: b} #c', '[a]#c', '[", "]', "['a,b']", '{__proto__: 1}', '{<<: 1}',
  "'it''s'", "''", '""', "'a'", '"a"', '"#0a5"', "'#'", '"a # b"', '"a\\"b"', '"a\\\\b"', '"a\\nb"', '"a\\tb"', '"a\\/b"', '"a\\qb"', '"\\u00e9"',
  '"\\x41"', '"a\\ b"', '"unterminated', "'unterminated", "'x' y", '"x"#c', '"x" # c', "'x'", "'a''", '"a""', '"a": b', "'a': b",
];

const scalar = fc.oneof({ weight: 15, arbitrary: fc.constantFrom(...SCALARS) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_SCALARS) });
const key = fc.oneof({ weight: 15, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_KEYS) });
const comment = fc.constantFrom('', '', '', ' # note', ' #', '  # a: b', '#x');
const pad = (n: number) => ' '.repeat(Math.max(0, n));

type Node = { t: 'map'; entries: Array<[string, Node]> } | { t: 'seq'; items: Node[] } | { t: 'scalar'; text: string };
const nodeOf = (key: fc.Arbitrary<string>, scalar: fc.Arbitrary<string>, uniqueKeys = false): fc.Memo<Node> => {
  const entries = (value: fc.Arbitrary<Node>) =>
    uniqueKeys
      ? fc.uniqueArray(fc.tuple(key, value), { minLength: 1, maxLength: 4, selector: ([k]) => k })
      : fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 4 });
  const node: fc.Memo<Node> = fc.memo((n) =>
    n <= 1
      ? scalar.map((text) => ({ t: 'scalar' as const, text }))
      : fc.oneof(
          { weight: 3, arbitrary: scalar.map((text) => ({ t: 'scalar' as const, text })) },
          { weight: 2, arbitrary: entries(node(n - 1)).map((list) => ({ t: 'map' as const, entries: list })) },
          { weight: 1, arbitrary: fc.array(node(n - 1), { minLength: 1, maxLength: 4 }).map((items) => ({ t: 'seq' as const, items })) },
        ),
  );
  return node;
};

/** Layout choices drawn per document: indentation steps, sequences at their key's indent, comments, odd lines. */
const layout = fc.record({
  step: fc.constantFrom(1, 2, 2, 2, 3, 4),
  seqSameIndent: fc.boolean(),
  compact: fc.boolean(),
  comments: fc.array(comment, { minLength: 8, maxLength: 8 }),
  jitter: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1, -1),
});
const cleanLayout = layout.map((l) => ({ ...l, jitter: 0 }));

function render(root: Array<[string, Node]>, l: { step: number; seqSameIndent: boolean; compact: boolean; comments: string[]; jitter: number }): string {
  const lines: string[] = [];
  let c = 0;
  const note = () => l.comments[c++ % l.comments.length];
  const block = (nd: Node, indent: number, ofKey: boolean): string[] => {
    if (nd.t === 'map') {
      const out: string[] = [];
      nd.entries.forEach(([k, v], i) => {
        const at = pad(indent + (i === nd.entries.length - 1 && l.jitter ? l.jitter : 0));
        if (v.t === 'scalar') out.push(`${at}${k}: ${v.text}${note()}`);
        else {
          out.push(`${at}${k}:${note().replace(/^#/, ' #')}`); // `k:#x` would be a scalar, not a key
          out.push(...block(v, v.t === 'seq' && l.seqSameIndent ? indent : indent + l.step, true));
        }
      });
      return out;
    }
    if (nd.t === 'seq') {
      const out: string[] = [];
      for (const item of nd.items) {
        if (item.t === 'scalar') out.push(`${pad(indent)}- ${item.text}${note()}`);
        else if (item.t === 'map' && l.compact) {
          const inner = block(item, indent + 2, false);
          out.push(`${pad(indent)}- ${inner[0].trimStart()}`, ...inner.slice(1));
        } else {
          out.push(`${pad(indent)}-${note()}`);
          out.push(...block(item, indent + l.step, false));
        }
      }
      return out;
    }
    return [`${pad(indent)}${nd.text}`];
  };
  void lines;
  return block({ t: 'map', entries: root }, 0, false).join('\n');
}

/** Documents of mostly simple keys and scalars, with odd ones, odd layouts and document headers mixed in. */
const docs = fc.tuple(fc.array(fc.tuple(key, nodeOf(key, scalar)(4)), { minLength: 1, maxLength: 6 }), layout, fc.constantFrom('', '\n', '\n\n# end\n'), fc.constantFrom('', '', '', '', '# head\n', '\n', '---\n', '%YAML 1.2\n---\n'))
  .map(([root, l, tail, head]) => head + render(root, l) + tail);

/** Documents made only of what the fast path should take: its accepting side, exercised hard. */
const simpleKey = fc.constantFrom(...KEYS);
const cleanDocs = fc.tuple(fc.uniqueArray(fc.tuple(simpleKey, nodeOf(simpleKey, fc.constantFrom(...SCALARS), true)(5)), { minLength: 1, maxLength: 8, selector: ([k]) => k }), cleanLayout, fc.constantFrom('', '\n', '\n\n# end\n'))
  .map(([root, l, tail]) => render(root, l) + tail);

/** A text with one odd character put somewhere: a tab, CR, BOM, control or line-break character. */
const mutated = fc.tuple(docs, fc.nat(), fc.constantFrom('\t', '\r', '\r\n', '\ufeff', '\u0085', '\u2028', '\x00', '\x7f', '\\', '"', "'", ':', '#', ' ', '\n', '-', '[', '{', '\u00a0', '\u3000', '\u2003', '\ud83d\ude00', ',', '?', '&', '*', '!', '|', '>', '%', '@', '`', '~'))
  .map(([text, at, ch]) => text.slice(0, at % (text.length + 1)) + ch + text.slice(at % (text.length + 1)));

describe('the simple-YAML fast path', () => {
  it('gives exactly what js-yaml gives (CORE schema) or declines, on generated documents', () => {
    let taken = 0;
    let runs = 0;
    fc.assert(fc.property(docs, (text) => {
      runs++;
      if (agrees(text)) taken++;
    }), { numRuns: RUNS });
    // The generator is mostly odd on purpose; the test only means something if plenty is taken too.
    if (process.env.FUZZ_RUNS) console.log(`fast path took ${taken} of ${runs}`);
    expect(taken / runs).toBeGreaterThan(0.1);
  }, TIMEOUT);

  it('takes nearly every document made of simple parts that js-yaml takes, and gives exactly what js-yaml gives', () => {
    let taken = 0;
    let valid = 0;
    fc.assert(fc.property(cleanDocs, (text) => {
      if (agrees(text)) taken++;
      if (reference(text) !== ERROR) valid++;
    }), { numRuns: RUNS });
    if (process.env.FUZZ_RUNS) console.log(`fast path took ${taken} of ${valid} valid simple documents`);
    // Many generated texts are invalid (a comment glued to a quoted value, `"a"#x`), which it must decline.
    expect(valid).toBeGreaterThan(RUNS / 10);
    expect(taken / valid).toBeGreaterThan(0.95);
  }, TIMEOUT);

  it('gives exactly what js-yaml gives or declines, with one odd character inserted anywhere', () => {
    fc.assert(fc.property(mutated, (text) => {
      agrees(text);
    }), { numRuns: RUNS });
  }, TIMEOUT);

  it('declines, never guesses, where js-yaml would throw or do something special', () => {
    for (const text of [
      'a: 1\na: 2', 'a: {x: a, x: b}', 'a: b: c', 'a: - b', 'a: @x', 'a: "x\\qy"', 'a:\n    b: 1\n  c: 2', 'a: 1\n - b', '__proto__: {x: 1}',
      'a: &x 1\nb: *x', 'a: !!str 1', 'a: |\n  x', 'a: >\n  x', 'a: x\n  y', 'a: "x\n  y"', 'a: [x,\n  y]', '---\na: 1', 'a: 1\n...', 'a:\tb', 'a: 1\r\nb: 2',
      '\ufeffa: 1', '', '# only a comment', '- a\n- b', 'just text', '  a: 1', '? a\n: b', 'a: {x: }', 'a: [a, b,]',
    ]) {
      expect(parseSimpleYaml(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it('Unicode spaces (U+00A0, U+3000) are text to YAML, not white space to trim (a counterexample the fuzz found)', () => {
    for (const text of ['a: [x , y\u00a0 ]', 'a: \u00a0x', 'a: x\u3000', 'a\u00a0: b', 'a: {k: v\u2003}', '\u00a0a: 1']) {
      const fast = parseSimpleYaml(text);
      if (fast !== undefined) same(fast, reference(text), JSON.stringify(text));
    }
    expect(parseSimpleYaml('a: [x , y\u00a0 ]')).toEqual({ a: ['x', 'y\u00a0'] });
  });

  it('block and flow nesting count together against the depth limit (a reviewer\'s counterexample: 31 blocks + 33 flows)', () => {
    const nest = (blocks: number, flows: number) =>
      Array.from({ length: blocks }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ` ${'['.repeat(flows)}x${']'.repeat(flows)}`;
    expect(parseSimpleYaml(nest(31, 33))).toBeUndefined();
    expect(reference(nest(31, 33))).not.toBe(ERROR); // js-yaml's own default limit is 100: readYamlFile's 64 must hold it
    const dir = mkdtempSync(path.join(os.tmpdir(), 'simple-yaml-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'deep.yaml');
    writeFileSync(file, nest(31, 33));
    expect(() => readYamlFile(file)).toThrow(TenantFileError);
    expect(() => readYamlFile(file)).toThrow(/maxDepth/);
    // Shallow enough: taken, and equal.
    expect(agrees(nest(10, 10))).toBe(true);
  });

  it('declines lone surrogates (js-yaml: non-printable) and takes valid pairs', () => {
    for (const text of ['a: \ud800', '\ud800: 1', 'a: [\udc00]', 'a: x\udbff', 'a: \udc00\ud800']) expect(parseSimpleYaml(text), JSON.stringify(text)).toBeUndefined();
    expect(agrees('a: \ud83d\ude00\nb: [\ud83d\ude00]')).toBe(true);
  });

  it('takes the shapes tenant files are written in', () => {
    const cases = [
      'client:\n  id: acme\n  name: Acme Corp\nfeatures:\n  reports: { weekly: true, formats: [csv, xlsx] }\n',
      'a: 1 # one\nb:\n- x\n- y\nc:\n  - k: v\n    n: 2\n  - z\n',
      "a: 'it''s'\nb: \"#0a5\"\nc: \"x\\\"y\"\nd: ''\ne: ~\nf:\ng: .inf\nh: 0x10\ni: 1_000\nj: a, b\n",
      '"quoted key": 1\n\'single\': 2\nplain key: [ ]\nempty: { }\n',
    ];
    for (const text of cases) expect(agrees(text), text).toBe(true);
  });

  it('takes every shipped example tenant file and the bench\'s generated file, equal to js-yaml', () => {
    const dir = path.join(ROOT, 'tenants');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    const declined = files.filter((f) => !agrees(readFileSync(path.join(dir, f), 'utf8')));
    expect(declined).toEqual([]);
    const bench = readFileSync(path.join(ROOT, 'bench', 'migration.js'), 'utf8');
    const template = /return `(# generated by bench[\s\S]*?)`;/.exec(bench)?.[1];
    expect(template).toBeDefined();
    const generated = template!.replace(/\$\{\(n % 50\) \+ 1\}/g, '8').replace(/\\\$\{\$\{id\.toUpperCase\(\)\}_OPENAI_KEY\}/g, '${T8_OPENAI_KEY}').replace(/\$\{id\}/g, 't8').replace(/\$\{n\}/g, '8');
    expect(generated).not.toContain('${id}');
    expect(agrees(generated), generated).toBe(true);
  });
});
