import { readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, mkdtempSync } from 'node:fs';
import { shownPath } from '../../src/shown-path.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ParseCache } from '../../src/tenants/parse-cache.js';
import { YamlTenantSource } from '../../src/tenants/tenant-source.js';
import { parseSimpleYaml } from '../../src/yaml/simple-yaml.js';
import { loadYaml } from '../../src/yaml/yaml-file.js';
import { describeYaml11Difference, mayReadOtherwise, type Yaml11Difference } from '../../src/yaml/yaml11.js';
import { ROOT, tenantYaml, workspace } from '../helpers/setup.js';

/**
 * Plain scalars that YAML 1.1 readers (PyYAML: the services) read otherwise
 * than tenantctl (YAML 1.2 CORE): warned about at file:line, by both parsers
 * alike, never changing what is parsed.
 */

/** The differences of a text by both paths: the fast path's (which must take the text) and js-yaml's, equal. */
function both(text: string): Yaml11Difference[] {
  const fast: Yaml11Difference[] = [];
  expect(parseSimpleYaml(text, fast), `the fast path takes:\n${text}`).toBeDefined();
  const slow = loadYaml(text).yaml11;
  expect(fast).toEqual(slow);
  return fast;
}

/** js-yaml's only (texts the fast path declines: anchors, block scalars, tags, `<<`...). */
function slowOnly(text: string): Yaml11Difference[] {
  expect(parseSimpleYaml(text, []), `the fast path declines:\n${text}`).toBeUndefined();
  return loadYaml(text).yaml11;
}

const lines = (ds: Yaml11Difference[]) => ds.map((d) => [d.line, d.path.join('.'), d.source, !!d.key]);

describe('YAML 1.1 differences', () => {
  it('every YAML 1.1 boolean form that is not a 1.2 one, as a value, at its line', () => {
    const forms = ['yes', 'Yes', 'YES', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF'];
    const text = `client:\n  id: x\nflags:\n${forms.map((f, i) => `  f${i}: ${f}`).join('\n')}\n`;
    expect(lines(both(text))).toEqual(forms.map((f, i) => [4 + i, `flags.f${i}`, f, false]));
    // The 1.2 booleans are booleans to both; the spec's y / n are strings to PyYAML as here (no warning).
    expect(both('a: true\nb: False\nc: TRUE\nposition: { x: 0, y: 3 }\nd: [y, Y, n, N]\n')).toEqual([]);
  });

  it('numbers: leading-zero octal, sexagesimal, binary, underscores, and 1.2 forms PyYAML does not take', () => {
    const cases: Array<[string, RegExp]> = [
      ['0755', /plain 0755 is 755 here \(YAML 1\.2\) but 493 to YAML 1\.1 readers such as PyYAML \(the services\): write 493 or 755, whichever is meant, or quote it \("0755"\)$/],
      ['9:30', /plain 9:30 is the string "9:30" here \(YAML 1\.2\) but 570 to .*: quote it \("9:30"\) or write 570$/],
      ['1:20:30', /plain 1:20:30 is the string "1:20:30" here .* but 4830 to /],
      ['12:30:00', /but 45000 to /],
      ['0b1010', /plain 0b1010 is the string "0b1010" here .* but 10 to .*: quote it \("0b1010"\) or write 10$/],
      ['1_000', /plain 1_000 is the string "1_000" here .* but 1000 to .*: quote it \("1_000"\) or write 1000$/],
      ['1e3', /plain 1e3 is 1000 here .* but the string "1e3" to .*: quote it \("1e3"\) or write 1000$/],
      ['0o17', /plain 0o17 is 15 here .* but the string "0o17" to /],
      ['08', /plain 08 is 8 here .* but the string "08" to /],
      ['+.5', /plain \+\.5 is 0\.5 here .* but the string "\+\.5" to /],
    ];
    const text = `nums:\n${cases.map(([s], i) => `  k${i}: ${s}`).join('\n')}\n`;
    const found = both(text);
    expect(lines(found)).toEqual(cases.map(([s], i) => [2 + i, `nums.k${i}`, s, false]));
    found.forEach((d, i) => expect(describeYaml11Difference(d)).toMatch(cases[i][1]));
  });

  it('the message names the path, both readings and the fix (the issue\'s example, word for word)', () => {
    const [d] = both('client:\n  id: acme\n  name: Acme\nemail:\n  primary: a@b\nfeatures:\n  beta: no\n');
    expect(d).toEqual({ line: 7, path: ['features', 'beta'], source: 'no' });
    expect(describeYaml11Difference(d)).toBe(
      'features.beta: plain no is the string "no" here (YAML 1.2) but false to YAML 1.1 readers such as PyYAML (the services): quote it ("no") or write false',
    );
  });

  it('keys: block and flow keys that are 1.1 booleans or numbers (on: is True to PyYAML)', () => {
    const found = both('on: 1\nx:\n  yes: a\n  9:30: b\nf: { off: 1, "on": 2, k: [y] }\nlist:\n  - n: 1\n');
    expect(lines(found)).toEqual([
      [1, 'on', 'on', true],
      [3, 'x.yes', 'yes', true],
      [4, 'x.9:30', '9:30', true],
      [5, 'f.off', 'off', true],
    ]);
    expect(describeYaml11Difference(found[0])).toBe('on: plain key on is the key "on" here (YAML 1.2) but true to YAML 1.1 readers such as PyYAML (the services): quote it ("on")');
    // A key that is a number to 1.2 (js-yaml's alone: the fast path takes string keys only).
    const [k] = slowOnly('0755: x\n');
    expect(describeYaml11Difference(k)).toBe('755: plain key 0755 is the key "755" here (YAML 1.2) but 493 to YAML 1.1 readers such as PyYAML (the services): quote it ("0755")');
  });

  it('values in flow collections, nested and in block sequences', () => {
    const found = both('a: { x: yes, z: [on, off, nordic, "no"] }\nb: [[no], {k: 0755}]\nc:\n  - Off\n  - [on]\n');
    expect(lines(found)).toEqual([
      [1, 'a.x', 'yes', false],
      [1, 'a.z.0', 'on', false],
      [1, 'a.z.1', 'off', false],
      [2, 'b.0.0', 'no', false],
      [2, 'b.1.k', '0755', false],
      [4, 'c.0', 'Off', false],
      [5, 'c.1.0', 'on', false],
    ]);
    // `- - on` is js-yaml's (the fast path declines nested dashes): still found, at its line.
    expect(lines(slowOnly('c:\n  - Off\n  - - on\n'))).toEqual([[2, 'c.0', 'Off', false], [3, 'c.1.0', 'on', false]]);
  });

  it('<< merge keys (js-yaml reads a plain key; PyYAML merges)', () => {
    const [d] = slowOnly('base: &b { x: 1 }\nt:\n  <<: *b\n  y: 2\n');
    expect(d).toEqual({ line: 3, path: ['t', '<<'], source: '<<', key: true });
    expect(describeYaml11Difference(d)).toMatch(/^t\.<<: plain key << is the key "<<" here \(YAML 1\.2\) but a merge key to YAML 1\.1 readers such as PyYAML \(the services\).*quote it \("<<"\)/);
    // As a value, `<<` makes PyYAML fail.
    expect(describeYaml11Difference(both('a: <<\n')[0])).toMatch(/fail to load the file/);
  });

  it('never warns on quoted, block, tagged or commented-out forms, nor on ordinary scalars', () => {
    expect(both(`a: 'no'\nb: "on"\n"yes": 1\n'off': [ "y", 'n' ]\nc: "0755"\nd: '9:30'\ne: x # no\n# f: no\ng: { "on": "off" }\n`)).toEqual([]);
    expect(slowOnly('a: |\n  no\nb: >\n  yes\n  on\nc: !!str no\nd: !!int 10\ne: |-\n  0755\n')).toEqual([]);
    const ordinary = [
      'nordic', 'onboarding', 'none', 'nope', 'one', 'yellow', 'ok', 'o', 'x', 'Nein', 'NOPE', 'offline', 'yesterday',
      '0', '10', '-5', '+3', '-0', '1.5', '0.5', '.5', '1.', '1.5e+3', '.inf', '-.Inf', '.nan', '0x1F', '~', 'null', 'Null', 'true', 'False',
      '12:30:00Z', '2024-01-01', '2024-01-01T10:00:00Z', '2024-01-01 10:00:00', '09:30', '1:70', '5 stars', '1.2.3', 'v1.2', '-x', '${X}', '${X:-no}',
      'https://x.example/on', 'a b', 'Europe/Berlin', 'gpt-4o-mini', '<b>', '=x', 'a=b',
    ];
    const text = ordinary.map((s, i) => `k${i}: ${s}`).join('\n') + `\nflow: [${ordinary.filter((s) => !/[{}[\],#]/.test(s)).join(', ')}]\n`;
    expect(both(text)).toEqual([]);
    // Ordinary scalars fail the first-character test: no RegExp runs for them.
    for (const s of ['nordic', 'onboarding', 'Acme Travel', 'ops@acme.example', 'Europe/Berlin', '${X}', '10', '300', '0']) expect(mayReadOtherwise(s), s).toBe(false);
  });

  it('finds lines with comments, blank lines and documents markers before the scalar', () => {
    expect(lines(both('# head\n\nclient:\n  # note\n  id: x\n\n  flag: no # a comment\n'))).toEqual([[7, 'client.flag', 'no', false]]);
    expect(lines(slowOnly('%YAML 1.2\n---\n# c\na:\n  b: |\n    x\n    y\n  c: on\n'))).toEqual([[8, 'a.c', 'on', false]]);
    // Multi-line plain scalars are folded; anchors do not hide a scalar; aliases are not reported again.
    expect(lines(slowOnly('a: &x no\nb: *x\nc: [\n  on,\n  off ]\n'))).toEqual([[1, 'a', 'no', false], [4, 'c.0', 'on', false], [5, 'c.1', 'off', false]]);
  });

  it('the shipped example tenants have none', () => {
    const dir = path.join(ROOT, 'tenants');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) expect(both(readFileSync(path.join(dir, f), 'utf8')), f).toEqual([]);
  });
});

describe('YAML 1.1 warnings of tenant files', () => {
  const cacheHome = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-xdg-'));
  const env = { XDG_CACHE_HOME: cacheHome };
  const ws = workspace({}, { registry: false });
  afterAll(() => {
    ws.cleanup();
    rmSync(cacheHome, { recursive: true, force: true });
  });
  /** Written a minute ago: the parse cache keeps only files not changed within the last seconds. */
  const write = (id: string, yaml: string) => {
    const file = ws.writeTenant(id, yaml);
    const past = new Date(Date.now() - 60_000);
    utimesSync(file, past, past);
    return file;
  };
  const fresh = () => {
    const source = new YamlTenantSource(ws.tenantsDir);
    source.useParseCache(ParseCache.open(ws.tenantsDir, env));
    return source;
  };
  const name = (id: string) => shownPath(path.join(ws.tenantsDir, `${id}.yaml`));

  it('are the document\'s warnings, as file:line, after the stripped-secret ones, on both parser paths', () => {
    write('acme', tenantYaml('acme', 'Acme', 'features:\n  beta: no\nsmtp: { password: hunter2, tls: on }\n'));
    const doc = new YamlTenantSource(ws.tenantsDir).load('acme')!;
    expect(doc.warnings).toEqual([
      expect.stringMatching(/acme\.yaml:6: literal secret smtp\.password stripped/),
      `${name('acme')}:5: features.beta: plain no is the string "no" here (YAML 1.2) but false to YAML 1.1 readers such as PyYAML (the services): quote it ("no") or write false`,
      `${name('acme')}:6: smtp.tls: plain on is the string "on" here (YAML 1.2) but true to YAML 1.1 readers such as PyYAML (the services): quote it ("on") or write true`,
    ]);
    // Values are still read as YAML 1.2.
    expect(doc.config.features).toEqual({ beta: 'no' });
    // The js-yaml path (an anchor makes the fast path decline) gives the same warnings.
    write('slow', tenantYaml('slow', 'Slow', 'features:\n  beta: &b no\nsmtp: { password: hunter2, tls: on }\nblock: |\n  no\n'));
    const slow = new YamlTenantSource(ws.tenantsDir).load('slow')!;
    expect(slow.warnings.map((w) => w.replace(/^.*slow\.yaml/, 'F'))).toEqual(doc.warnings.map((w) => w.replace(/^.*acme\.yaml/, 'F')));
  });

  it('never show or keep a value under a secret key (it is stripped anyway)', () => {
    write('sec', tenantYaml('sec', 'Sec', 'smtp:\n  password: off\n  api_key: 0755\nvapi: { token: yes }\n'));
    const doc = new YamlTenantSource(ws.tenantsDir).load('sec')!;
    expect(doc.yaml11Differences).toEqual([]);
    expect(doc.warnings.join('\n')).not.toMatch(/YAML 1\.1|0755/);
    expect(doc.warnings).toHaveLength(3);
  });

  it('are kept in the parse cache, and a cache of the previous format (without them) is not trusted', () => {
    write('cached', tenantYaml('cached', 'C', 'features:\n  beta: no\n  list: [on, "off"]\n'));
    const first = fresh();
    const parsed = first.read('cached')!;
    expect(parsed.warnings).toHaveLength(2);
    first.saveParseCache();
    const again = fresh().read('cached')!;
    expect(again.warnings).toEqual(parsed.warnings);
    expect(again.yaml11Differences).toEqual(parsed.yaml11Differences);

    // An index written before YAML 1.1 differences were kept: an older format, entries without them.
    const dir = path.join(cacheHome, 'tenantctl');
    const index = readdirSync(dir).find((f) => f.startsWith('tenants-') && !f.includes('.configs.'))!;
    const data = JSON.parse(readFileSync(path.join(dir, index), 'utf8'));
    expect(data.format).toBe(20);
    for (const e of Object.values(data.entries) as unknown[][]) delete (e[3] as { yaml11?: unknown } | undefined)?.yaml11;
    writeFileSync(path.join(dir, index), JSON.stringify({ ...data, format: 6 }));
    expect(fresh().read('cached')!.warnings).toEqual(parsed.warnings);
  });
});
