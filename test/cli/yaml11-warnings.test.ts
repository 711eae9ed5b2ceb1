import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tenantYaml, workspace, type Workspace } from '../helpers/setup.js';

/**
 * A plain `no` in a tenant file is the string "no" to tenantctl (YAML 1.2)
 * but False to the services (PyYAML, YAML 1.1): the commands that report a
 * file's warnings say so at file:line, and the value is still read as 1.2.
 */
describe('YAML 1.1 warnings through the CLI', () => {
  let ws: Workspace;
  const WARNING =
    'tenants/beta.yaml:5: features.beta: plain no is the string "no" here (YAML 1.2) but false to YAML 1.1 readers such as PyYAML (the services): quote it ("no") or write false';

  beforeAll(() => {
    ws = workspace({
      beta: tenantYaml('beta', 'Beta', 'features:\n  beta: no\n  quoted: "no"\n  flags: [on, "off"]\n'),
      plain: tenantYaml('plain', 'Plain', 'features:\n  beta: false\n'),
    });
  });
  afterAll(() => ws.cleanup());

  it('migrate-yaml --dry-run --json carries the warning with file:line in the item, and prints it on stderr', async () => {
    const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const items = JSON.parse(r.stdout).items as Array<{ id: string; action: string; warnings: string[] }>;
    const beta = items.find((i) => i.id === 'beta')!;
    expect(beta.action).toBe('create');
    expect(beta.warnings).toEqual([
      WARNING,
      'tenants/beta.yaml:7: features.flags.0: plain on is the string "on" here (YAML 1.2) but true to YAML 1.1 readers such as PyYAML (the services): quote it ("on") or write true',
    ]);
    expect(items.find((i) => i.id === 'plain')!.warnings).toEqual([]);
    expect(r.stderr.split('\n')).toContain(`warning: ${WARNING}`);
    // Only a warning: the value is still YAML 1.2's string.
    const got = await runCli(['get-config', 'beta', '--json', '--no-cache'], { cwd: ws.dir });
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout).config.features).toEqual({ beta: 'no', quoted: 'no', flags: ['on', 'off'] });
  });

  it('many files from one template: 20 files said line by line, the rest one count (--json keeps every one)', async () => {
    const fleet = workspace(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`t${String(i).padStart(2, '0')}`, tenantYaml(`t${String(i).padStart(2, '0')}`, 'T', 'features:\n  beta: no\n')])), { registry: false });
    try {
      const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: fleet.dir });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('warning: '));
      expect(lines).toHaveLength(21);
      expect(lines.at(-1)).toBe('warning: … and 10 more warning(s) in 10 more file(s) (-o json lists each, as do `tenantctl doctor`\'s checks)');
      expect((JSON.parse(r.stdout).items as Array<{ warnings: string[] }>).filter((i) => i.warnings.length)).toHaveLength(30);
    } finally {
      fleet.cleanup();
    }
  });

  it('doctor reports it as a tenants warning', async () => {
    const r = await runCli(['doctor', '--json'], { cwd: ws.dir });
    const report = JSON.parse(r.stdout) as { checks: Array<{ area: string; check: string; status: string; detail: string }> };
    expect(report.checks).toContainEqual(expect.objectContaining({ area: 'tenants', check: 'file', status: 'warn', detail: WARNING }));
  });
});

describe('numbers JSON cannot keep as written', () => {
  let ws: Workspace;
  /** A tenant's warnings in two dry runs: the second one's from the parse cache. */
  const warningsTwice = async (dir: string, id: string) => {
    const out: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const r = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      out.push((JSON.parse(r.stdout).items as Array<{ id: string; warnings: string[] }>).find((i) => i.id === id)!.warnings);
    }
    return out;
  };
  beforeAll(() => {
    ws = workspace({ nums: tenantYaml('nums', 'Numbers', 'limits:\n  big: 12345678901234567890\n  ok: 9007199254740991\n  ratio: .inf\n  quoted: "12345678901234567890"\n  hex: 0x20000000000001\n  exp: 1.0e+100\n') });
  });
  afterAll(() => ws.cleanup());

  it('an integer past 2^53 and .inf are file:line warnings (they were stored rounded and as null without a word), twice the same from the parse cache', async () => {
    for (const warnings of await warningsTwice(ws.dir, 'nums')) {
      expect(warnings).toEqual([
        'tenants/nums.yaml:5: limits.big: an integer past 2^53 is stored as 12345678901234567000 (digits lost: JSON numbers are doubles); quote it to keep it as written',
        'tenants/nums.yaml:7: limits.ratio: .inf / .nan have no JSON form and are stored as null; quote it, or use a large number',
        // Hex too (it was stored rounded without a word); an exponent is kept as written, not said.
        'tenants/nums.yaml:9: limits.hex: an integer past 2^53 is stored as 9007199254740992 (digits lost: JSON numbers are doubles); quote it to keep it as written',
      ]);
    }
  });

  it('a float with a whole value (1.0, 2.5e+1, 3.) is said: stored as the integer, a float to the services (it was stored as 1 without a word); strings and fractions are not', async () => {
    const floats = workspace({
      whole: tenantYaml('whole', 'Whole', 'api:\n  version: 1.0\n  ratio: 1.5\n  exp: 2.5e+1\n  ip: 10.0.0.1\n  tag: v1.0\n  quoted: "1.0"\n  count: 3\n  odd: 2.50e1\nlist: [3., 4]\n'),
    });
    try {
      for (const warnings of await warningsTwice(floats.dir, 'whole')) {
        expect(warnings).toEqual([
          // A string to PyYAML (its exponent has no sign): said as YAML 1.1's, not as a float.
          'tenants/whole.yaml:12: api.odd: plain 2.50e1 is 25 here (YAML 1.2) but the string "2.50e1" to YAML 1.1 readers such as PyYAML (the services): quote it ("2.50e1") or write 25',
          "tenants/whole.yaml:5: api.version: 1.0 is stored as the integer 1, where the services' YAML reader keeps a float (1.0 in their JSON); write 1 if an integer is meant",
          "tenants/whole.yaml:7: api.exp: 2.5e+1 is stored as the integer 25, where the services' YAML reader keeps a float (25.0 in their JSON); write 25 if an integer is meant",
          "tenants/whole.yaml:13: list.0: 3. is stored as the integer 3, where the services' YAML reader keeps a float (3.0 in their JSON); write 3 if an integer is meant",
        ]);
      }
    } finally {
      floats.cleanup();
    }
  });
});
