import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { CORE_SCHEMA, load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseSimpleYaml } from '../../src/yaml/simple-yaml.js';
import { loadYaml } from '../../src/yaml/yaml-file.js';
import { coreValueOf, describeYaml11Difference, readsOtherwise, type Yaml11Difference } from '../../src/yaml/yaml11.js';

/** FUZZ_RUNS=100000 for a long run. */
const RUNS = Number(process.env.FUZZ_RUNS) || 2000;
const TIMEOUT = Math.max(30_000, RUNS * 3);

// ------------------------------------------------------------------ generators
/** Keys: ordinary, YAML 1.1 booleans and numbers (plain keys are warned about too), quoted. */
const KEYS = ['a', 'client', 'beta', 'x y', 'nordic', 'on', 'yes', 'y', 'n', 'No', 'OFF', '9:30', '0b1', '1_0', '=', '"on"', "'no'", '"9:30"'];
/** Scalars: read otherwise by YAML 1.1, read alike, and quoted forms of the first. */
const SCALARS = [
  'no', 'yes', 'on', 'Off', 'NO', 'Y', 'n', '0755', '9:30', '1:20:30', '12:30:00', '0b1010', '1_000', '1e3', '0o17', '08', '+.5', '-.5', '<<', '=',
  'nordic', 'onboarding', 'none', '0', '10', '-5', '1.5', '.5', 'true', 'False', '~', 'null', '2024-01-01', '12:30:00Z', 'a b', '${X}', '.inf', '0x1F', '09:30',
  '"no"', "'on'", '"0755"', "'9:30'", '""', "'1_000'",
];

/** Keys are compared as js-yaml reads them: `on` and `"on"` are one key (a duplicate, which both parsers refuse). */
const keyName = (k: string) => (k[0] === '"' || k[0] === "'" ? k.slice(1, -1) : k);
const quote = (text: string) => (text[0] === '"' || text[0] === "'" ? text : JSON.stringify(text));

type Node = { t: 'map'; entries: Array<[string, Node]> } | { t: 'seq'; items: Node[] } | { t: 'leaf'; text: string };

/** Documents of block mappings and sequences whose leaves are scalars or one-line flows, drawn from these keys and scalars. */
function documents(scalar: fc.Arbitrary<string>, key: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const flowNode: fc.Memo<string> = fc.memo((n) =>
    n <= 1
      ? scalar
      : fc.oneof(
          { weight: 3, arbitrary: scalar },
          { weight: 1, arbitrary: fc.array(flowNode(n - 1), { maxLength: 4 }).map((items) => `[${items.join(', ')}]`) },
          {
            weight: 1,
            arbitrary: fc
              .uniqueArray(fc.tuple(key, flowNode(n - 1)), { maxLength: 4, selector: ([k]) => keyName(k) })
              .map((entries) => `{${entries.map(([k, v]) => `${k}: ${v}`).join(', ')}}`),
          },
        ),
  );
  const node: fc.Memo<Node> = fc.memo((n) => {
    const leaf = flowNode(3).map((text) => ({ t: 'leaf' as const, text }));
    if (n <= 1) return leaf;
    return fc.oneof(
      { weight: 3, arbitrary: leaf },
      { weight: 2, arbitrary: fc.uniqueArray(fc.tuple(key, node(n - 1)), { minLength: 1, maxLength: 4, selector: ([k]) => keyName(k) }).map((entries) => ({ t: 'map' as const, entries })) },
      { weight: 1, arbitrary: fc.array(node(n - 1), { minLength: 1, maxLength: 4 }).map((items) => ({ t: 'seq' as const, items })) },
    );
  });
  const layout = fc.record({ step: fc.constantFrom(1, 2, 4), comments: fc.array(fc.constantFrom('', '', ' # no', ' # on: yes'), { minLength: 5, maxLength: 5 }), blank: fc.boolean() });
  const root = fc.uniqueArray(fc.tuple(key, node(4)), { minLength: 1, maxLength: 6, selector: ([k]) => keyName(k) });
  return fc.tuple(root, layout).map(([entries, l]) => render(entries, l));
}

function render(root: Array<[string, Node]>, l: { step: number; comments: string[]; blank: boolean }): string {
  let c = 0;
  const note = () => l.comments[c++ % l.comments.length];
  const pad = (n: number) => ' '.repeat(n);
  const block = (nd: Node, indent: number): string[] => {
    if (nd.t === 'map') {
      return nd.entries.flatMap(([k, v]) =>
        v.t === 'leaf' ? [`${pad(indent)}${k}: ${v.text}${note()}`] : [`${pad(indent)}${k}:${note()}`, ...(l.blank ? [''] : []), ...block(v, indent + l.step)],
      );
    }
    if (nd.t === 'seq') {
      return nd.items.flatMap((item) => (item.t === 'leaf' ? [`${pad(indent)}- ${item.text}${note()}`] : [`${pad(indent)}-${note()}`, ...block(item, indent + l.step)]));
    }
    return [`${pad(indent)}${nd.text}`];
  };
  return block({ t: 'map', entries: root }, 0).join('\n') + '\n';
}

const docs = documents(fc.constantFrom(...SCALARS), fc.constantFrom(...KEYS));
/** The same kind of documents with every key and scalar quoted. */
const quotedDocs = documents(fc.constantFrom(...SCALARS.map(quote)), fc.constantFrom(...KEYS.map(quote)));

// ------------------------------------------------------------------ properties
describe('YAML 1.1 differences: the fast path and js-yaml give the same', () => {
  it('on generated block and flow documents (keys, values, flows, comments): the same warnings, lines and paths', () => {
    let taken = 0;
    let warned = 0;
    fc.assert(
      fc.property(docs, (text) => {
        const fast: Yaml11Difference[] = [];
        if (parseSimpleYaml(text, fast) === undefined) return;
        taken++;
        if (fast.length) warned++;
        expect(fast, text).toEqual(loadYaml(text).yaml11);
        // Every difference is on a line that holds its scalar, and reads as one sentence.
        const lines = text.split('\n');
        for (const d of fast) {
          expect(lines[d.line - 1], text).toContain(d.source);
          expect(describeYaml11Difference(d)).toMatch(/^(?:.+: )?plain (?:key )?\S+ is .+ here \(YAML 1\.2\) .*: (?:write|quote it)/);
        }
      }),
      { numRuns: RUNS },
    );
    // The test means something only if the fast path takes most documents and many warn.
    expect(taken / RUNS).toBeGreaterThan(0.5);
    expect(warned / taken).toBeGreaterThan(0.3);
  }, TIMEOUT);

  it('never warns on a quoted scalar or key, on either path', () => {
    let taken = 0;
    fc.assert(
      fc.property(quotedDocs, (text) => {
        expect(loadYaml(text).yaml11, text).toEqual([]);
        const fast: Yaml11Difference[] = [];
        if (parseSimpleYaml(text, fast) !== undefined) taken++;
        expect(fast, text).toEqual([]);
      }),
      { numRuns: RUNS / 2 },
    );
    expect(taken).toBeGreaterThan(RUNS / 4);
  }, TIMEOUT);

  it('warns nowhere the value is not plain, whatever the scalar (block scalars, quotes, tags)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SCALARS.filter((s) => !/^["']/.test(s))), (s) => {
        for (const text of [`a: |\n  ${s}\n`, `a: >-\n  ${s}\n`, `a: ${JSON.stringify(s)}\n`, `a: '${s}'\n`, `a: !!str ${s}\n`, `a: [${JSON.stringify(s)}]\n`]) {
          expect(loadYaml(text).yaml11, text).toEqual([]);
        }
      }),
    );
  });
});

// ------------------------------------------------------------------ against PyYAML itself
const PYTHON = `
import sys, json, math, datetime, yaml
out = []
for s in json.load(sys.stdin):
    try:
        doc = yaml.safe_load('v: ' + s)
    except (yaml.constructor.ConstructorError, ValueError):
        out.append({'t': 'error'}); continue
    except yaml.YAMLError:
        out.append({'t': 'syntax'}); continue
    v = doc['v'] if isinstance(doc, dict) and list(doc) == ['v'] else None
    if not (isinstance(doc, dict) and list(doc) == ['v']): out.append({'t': 'syntax'})
    elif isinstance(v, bool): out.append({'t': 'bool', 'v': v})
    elif isinstance(v, int): out.append({'t': 'num', 'v': str(v)})
    elif isinstance(v, float): out.append({'t': 'num', 'v': 'NaN' if math.isnan(v) else 'Infinity' if v == math.inf else '-Infinity' if v == -math.inf else repr(v)})
    elif v is None: out.append({'t': 'null'})
    elif isinstance(v, str): out.append({'t': 'str', 'v': v})
    elif isinstance(v, (datetime.date, datetime.datetime)): out.append({'t': 'date'})
    else: out.append({'t': 'other', 'v': repr(v)})
print(json.dumps(out))
`;
const pyyaml = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!pyyaml)('YAML 1.1 differences: against PyYAML itself (python3 with PyYAML on PATH)', () => {
  it('warns exactly where PyYAML reads a plain scalar otherwise than js-yaml (dates excepted), and says what PyYAML reads', () => {
    const alphabet = fc.constantFrom(...'0123456789_:.+-eExXbBoOn'.split(''), '0', '1', '5');
    const numeric = fc.string({ unit: alphabet, minLength: 1, maxLength: 9 });
    const words = fc.constantFrom(
      'y', 'Y', 'n', 'N', 'yes', 'Yes', 'YES', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE',
      'yES', 'oN', 'nO', 'null', 'Null', 'NULL', '~', '<<', '=', '.inf', '.Inf', '-.inf', '+.INF', '.nan', '.NaN', 'nordic', 'onboarding',
      '2024-01-01', '2024-1-1 10:00:00', '2024-01-01T10:00:00Z', '12:30:00Z', '1:60', '190:20:30.15', '0x_', '0b_', '0_', '1__0',
    );
    const inputs = [...new Set([...fc.sample(numeric, { numRuns: RUNS, seed: 42 }), ...fc.sample(words, { numRuns: 200, seed: 7 })])].filter((s) => {
      // Only texts js-yaml reads as the plain scalar `s` under `v`.
      try {
        const doc = load(`v: ${s}`, { schema: CORE_SCHEMA }) as Record<string, unknown>;
        return Object.keys(doc).length === 1 && Object.is(doc.v, coreValueOf(s));
      } catch {
        return false;
      }
    });
    const run = spawnSync('python3', ['-c', PYTHON], { input: JSON.stringify(inputs), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(run.status, run.stderr).toBe(0);
    const readings = JSON.parse(run.stdout) as Array<{ t: string; v?: unknown }>;
    let compared = 0;
    let differing = 0;
    inputs.forEach((s, i) => {
      const py = readings[i];
      if (py.t === 'syntax') return;
      compared++;
      const core = coreValueOf(s);
      let expected: boolean;
      if (py.t === 'date') expected = false;
      else if (py.t === 'error' || py.t === 'other') expected = true;
      else if (py.t === 'num') expected = !(typeof core === 'number' && (Object.is(core, Number(py.v)) || core === Number(py.v)));
      else if (py.t === 'str') expected = core !== py.v;
      else if (py.t === 'bool') expected = core !== py.v;
      else expected = core !== null;
      expect(readsOtherwise(s, core), `${JSON.stringify(s)}: js-yaml ${String(core)}, PyYAML ${JSON.stringify(py)}`).toBe(expected);
      if (!expected) return;
      differing++;
      const words = describeYaml11Difference({ line: 1, path: ['v'], source: s });
      if (py.t === 'num') {
        const n = Number(py.v);
        expect(words, s).toContain(` but ${n !== n ? '.nan' : n === Infinity ? '.inf' : n === -Infinity ? '-.inf' : String(n)} to YAML 1.1 readers such as PyYAML`);
      } else if (py.t === 'str') expect(words, s).toContain(` but the string ${JSON.stringify(s)} to YAML 1.1 readers such as PyYAML`);
      else if (py.t === 'bool') expect(words, s).toContain(` but ${String(py.v)} to YAML 1.1 readers such as PyYAML`);
      else if (py.t === 'error') expect(words, s).toContain('fail to load the file');
    });
    expect(compared).toBeGreaterThan(200);
    expect(differing).toBeGreaterThan(50);
  }, TIMEOUT);
});
