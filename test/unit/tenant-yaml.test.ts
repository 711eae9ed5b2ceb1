import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TenantFileError } from '../../src/errors.js';
import { substitute, substituteString } from '../../src/tenants/substitution.js';
import { isSecretKey, maskSecrets, resolveAbsentSecrets, stripSecrets } from '../../src/tenants/secrets.js';
import { YamlTenantSource } from '../../src/tenants/tenant-source.js';
import { parseTenantFile } from '../../src/tenants/tenant-file.js';
import { dump } from 'js-yaml';
import { endsWithKeyColon, lineLocator, MAX_TENANT_FILE_BYTES, withoutComment } from '../../src/yaml/yaml-file.js';
import { configFromRow, rowFromConfig, contentHash } from '../../src/tenants/registry-mapping.js';
import { tenantYaml, workspace } from '../helpers/setup.js';

const varName = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/);
const plain = fc.string({ unit: fc.constantFrom(...'abc xyz:/.-_'.split('')), maxLength: 12 });

describe('${VAR} and ${VAR:-default} substitution', () => {
  it('replaces set variables, applies defaults only when unset or empty, and reports unset ones', () => {
    fc.assert(
      fc.property(varName, plain, plain, plain, (name, value, fallback, around) => {
        const env = { [name]: value };
        expect(substituteString(`${around}\${${name}}${around}`, env)).toBe(`${around}${value}${around}`);
        expect(substituteString(`\${${name}:-${fallback}}`, env)).toBe(value === '' ? fallback : value);
        expect(substituteString(`\${${name}:-${fallback}}`, {})).toBe(fallback);
        expect(substitute({ a: [`\${${name}}`] }, {}).unset).toEqual([name]);
      }),
    );
  });

  it('never re-expands a substituted value (no injection through variables)', () => {
    fc.assert(
      fc.property(varName, varName, (a, b) => {
        fc.pre(a !== b);
        expect(substituteString(`\${${a}}`, { [a]: `\${${b}}`, [b]: 'leaked' })).toBe(`\${${b}}`);
      }),
    );
  });

  it('walks nested maps and lists, leaving keys and non-strings alone, without touching the input', () => {
    const input = { smtp: { host: '${H:-smtp.x}', port: 587, tls: true, hosts: ['${H}', 'plain'] }, '${K}': 'k' };
    const copy = structuredClone(input);
    const { value } = substitute(input, { H: 'mail.example' });
    expect(value).toEqual({ smtp: { host: 'mail.example', port: 587, tls: true, hosts: ['mail.example', 'plain'] }, '${K}': 'k' });
    expect(input).toEqual(copy);
  });
});

describe('secrets', () => {
  it('recognises the secret key names and their _suffixed forms', () => {
    for (const k of ['api_key', 'password', 'secret', 'token', 'service_key', 'anon_key', 'private_key', 'access_key', 'smtp_password', 'OPENAI_API_KEY']) expect(isSecretKey(k)).toBe(true);
    for (const k of ['apikey_hint', 'passwords_policy', 'tokens', 'host', 'secretary', 'model']) expect(isSecretKey(k)).toBe(false);
  });

  it('property: the quick last-letter test never changes the answer of the secret-key RegExp', () => {
    const NAMES = /^(?:.*_)?(?:api_key|password|secret|token|service_key|anon_key|private_key|access_key)$/i;
    const tail = fc.constantFrom('api_key', 'PASSWORD', 'Secret', 'toKen', 'service_key', 'anon_KEY', 'private_key', 'access_key', 'keY', 'K\u212a', 'toke\u0148', 'x');
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 6 }), tail, fc.string({ unit: 'binary', maxLength: 2 }), (head, t, end) => {
      for (const k of [t, head + t, `${head}_${t}`, head + t + end, head]) expect(isSecretKey(k), JSON.stringify(k)).toBe(NAMES.test(k));
    }), { numRuns: 2000 });
  });

  it('strips literal secrets, keeps ${VAR} references, drops literal defaults of references', () => {
    const { config, stripped } = stripSecrets({
      a: { api_key: 'sk-live', model: 'm' },
      b: { password: '${PW}', token: '${T:-literal}' },
      list: [{ secret: 12345 }],
    });
    expect(config).toEqual({ a: { model: 'm' }, b: { password: '${PW}', token: '${T}' }, list: [{}] });
    expect(stripped.map((s) => `${s.path.join('.')}:${s.kind}`)).toEqual(['a.api_key:literal-removed', 'b.token:default-dropped', 'list.0.secret:literal-removed']);
  });

  it('property: nothing that stripSecrets returns holds a literal secret value', () => {
    const key = fc.constantFrom('api_key', 'password', 'host', 'x_token', 'name');
    const leaf = fc.oneof(plain, fc.integer(), fc.constant('${V}'), fc.constant('${V:-s}'));
    const tree = fc.letrec((tie) => ({ node: fc.dictionary(key, fc.oneof(leaf, tie('node')), { maxKeys: 4 }) })).node;
    fc.assert(
      fc.property(tree, (t) => {
        const check = (v: unknown): void => {
          if (!v || typeof v !== 'object') return;
          for (const [k, x] of Object.entries(v)) {
            if (isSecretKey(k) && typeof x !== 'object') expect(x).toMatch(/^(\$\{[A-Z_]+\})?$/);
            check(x);
          }
        };
        check(stripSecrets(t).config);
      }),
    );
  });

  it('masks secret values for output', () => {
    expect(maskSecrets({ smtp: { password: 'p', host: 'h' }, api_key: '' })).toEqual({ smtp: { password: '****', host: 'h' }, api_key: '' });
  });

  it('resolves absent secrets as the services do: tenant-scoped variable, then the shared one, only in existing blocks', () => {
    const env = { ACME_EU_SMTP_PASSWORD: 'scoped', SMTP_PASSWORD: 'shared', VAPI_API_KEY: 'vapi', OPENAI_API_KEY: 'oa' };
    const cfg = resolveAbsentSecrets({ email: { smtp: { host: 'h' } }, infrastructure: { vapi: {} } }, 'acme-eu', env);
    expect(cfg).toEqual({ email: { smtp: { host: 'h', password: 'scoped' } }, infrastructure: { vapi: { api_key: 'vapi' } } });
    expect(resolveAbsentSecrets({ email: { smtp: {} } }, 'other', env)).toEqual({ email: { smtp: { password: 'shared' } } });
    // An empty secret (a ${VAR} unset where it was substituted) is absent too: filled from the environment.
    expect(resolveAbsentSecrets({ email: { smtp: { password: '' } } }, 'other', env)).toEqual({ email: { smtp: { password: 'shared' } } });
    // Only `-` becomes `_` (the services' rule): acme.eu never reads acme-eu's variable.
    expect(resolveAbsentSecrets({ email: { smtp: {} } }, 'acme.eu', env)).toEqual({ email: { smtp: { password: 'shared' } } });
    expect(resolveAbsentSecrets({ email: { smtp: {} } }, 'acme.eu', { 'ACME.EU_SMTP_PASSWORD': 'dotted', ...env })).toEqual({ email: { smtp: { password: 'dotted' } } });
  });
});

describe('YAML tenant source', () => {
  const ws = workspace({}, { registry: false });
  afterAll(() => ws.cleanup());
  const source = new YamlTenantSource(ws.tenantsDir, 'tn_');

  it('reads both layouts, skips registry-only ids and non-tenant files', () => {
    ws.writeTenant('flat', tenantYaml('flat'));
    ws.writeTenant('nested', tenantYaml('nested'), 'nested/client.yaml');
    ws.writeTenant('yml', tenantYaml('yml'), 'yml.yml');
    ws.writeTenant('tn_123', tenantYaml('tn_123'));
    ws.writeTenant('tiers', 'features: []\n');
    expect(source.listIds()).toEqual(['flat', 'nested', 'yml']);
    expect(source.load('nested')?.config.client).toEqual({ id: 'nested', name: 'Tenant nested' });
    expect(source.load('tn_123')).toBeUndefined();
    expect(source.load('missing')).toBeUndefined();
  });

  it('finds a file under any spelling of its directory (relative, trailing slash, dot segments) as path.join names it', () => {
    // Ids of their own (never another test's file, never the registry-only prefix).
    const id = fc.stringMatching(/^[A-Za-z0-9_.-]{0,20}$/).map((s) => `prop-${s}`);
    const spelling = fc.record({ relative: fc.boolean(), dots: fc.constantFrom('', '/.', '/./.', '/../tenants'), slash: fc.boolean() });
    const nested = fc.boolean();
    fc.assert(
      fc.property(id, spelling, nested, (tenant, how, inDir) => {
        const file = inDir ? ws.writeTenant(tenant, tenantYaml(tenant), `${tenant}/client.yaml`) : ws.writeTenant(tenant, tenantYaml(tenant));
        try {
          const base = how.relative ? path.relative(process.cwd(), ws.tenantsDir) : ws.tenantsDir;
          const dir = `${base}${how.dots}${how.slash ? '/' : ''}`;
          const found = new YamlTenantSource(dir).fileOf(tenant);
          expect(found).toBe(path.join(dir, inDir ? path.join(tenant, 'client.yaml') : `${tenant}.yaml`));
          expect(path.resolve(found!)).toBe(file);
        } finally {
          rmSync(inDir ? path.dirname(file) : file, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a link that cannot be followed is listed and its reading says why; a stray file named like an id is no tenant', () => {
    const odd = workspace({}, { registry: false });
    try {
      symlinkSync('loop.yaml', path.join(odd.tenantsDir, 'loop.yaml'));
      writeFileSync(path.join(odd.tenantsDir, 'stray'), 'not a tenant');
      odd.writeTenant('fine', tenantYaml('fine'));
      const src = new YamlTenantSource(odd.tenantsDir);
      expect(src.listIds()).toEqual(['fine', 'loop']);
      expect(() => src.read('loop')).toThrow(/loop\.yaml: cannot be read \(ELOOP\)/);
      expect(src.fileOf('loop')).toBe(path.join(odd.tenantsDir, 'loop.yaml'));
      // `stray/client.yaml` cannot exist under a file: no tenant, no crash (ENOTDIR).
      expect(src.fileOf('stray')).toBeUndefined();
      expect(src.read('stray')).toBeUndefined();
      expect(src.read('fine')?.config.client).toEqual({ id: 'fine', name: 'Tenant fine' });
    } finally {
      odd.cleanup();
    }
  });

  it('lists tenants mounted as symbolic links, as a Kubernetes ConfigMap mounts them', () => {
    // A ConfigMap volume: the files live in a timestamped directory behind `..data`; each name is a link through it.
    const cm = workspace({}, { registry: false });
    try {
      const real = path.join(cm.tenantsDir, '..2026_11_26_10_00_00.1');
      mkdirSync(path.join(real, 'deep'), { recursive: true });
      writeFileSync(path.join(real, 'linked.yaml'), tenantYaml('linked'));
      writeFileSync(path.join(real, 'deep', 'client.yaml'), tenantYaml('deep'));
      symlinkSync(path.basename(real), path.join(cm.tenantsDir, '..data'));
      symlinkSync('..data/linked.yaml', path.join(cm.tenantsDir, 'linked.yaml'));
      symlinkSync('..data/deep', path.join(cm.tenantsDir, 'deep'));
      symlinkSync('..data/gone.yaml', path.join(cm.tenantsDir, 'gone.yaml'));
      const mounted = new YamlTenantSource(cm.tenantsDir, 'tn_');
      // A link to nothing is listed (as `ls` shows it): reading it says so, the tenant is not silently left out.
      expect(mounted.listIds()).toEqual(['deep', 'gone', 'linked']);
      expect(mounted.load('gone')).toBeUndefined();
      expect(mounted.whyNoFile('gone')).toBe(`${path.join(cm.tenantsDir, 'gone.yaml')} is a link to ..data/gone.yaml, which does not exist`);
      expect(mounted.fileOf('linked')).toBe(path.join(cm.tenantsDir, 'linked.yaml'));
      expect(mounted.load('deep')?.config.client).toEqual({ id: 'deep', name: 'Tenant deep' });
      expect(mounted.invalidFiles()).toEqual([]);
    } finally {
      cm.cleanup();
    }
  });

  const expectFileError = (id: string, yaml: string, line: number | undefined, reason: RegExp) => {
    const file = ws.writeTenant(id, yaml);
    try {
      source.load(id);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TenantFileError);
      const e = err as TenantFileError;
      expect(e.file).toBe(file);
      expect(e.line).toBe(line);
      expect(e.detail).toMatch(reason);
      expect(e.message).toBe(`${file}${line ? `:${line}` : ''}: ${e.detail}`);
    }
  };

  it('reports malformed files as file:line: reason', () => {
    // Found past the last line: said at the last line, as something never closed (it was `:4: deficient indentation`).
    expectFileError('broken', 'client:\n  id: broken\n  name: [unclosed\n', 3, /^the file ends inside an unclosed \[, \{ or quoted value \(deficient indentation\)$/);
    expectFileError('quoted', 'client:\n  id: quoted\n  name: "open\n', 3, /^the file ends inside an unclosed/);
    expectFileError('braced', 'client:\n  id: braced\n  name: {a: 1', 3, /^the file ends inside an unclosed/);
    // An error within the file keeps its own line and words.
    expectFileError('tabbed', 'client:\n  id: tabbed\n\tname: X\nx: 1\n', 3, /tab/i);
    expectFileError('dupkey', 'client:\n  id: dupkey\n  name: A\n  name: B\n', 4, /duplicate/i);
    expectFileError('wrongid', 'client:\n  id: other\n  name: X\n', 2, /does not match/);
    // An alias of a literal secret under another key is stripped too, and said at its line.
    ws.writeTenant('aliased', 'client:\n  id: aliased\n  name: X\ny: {token: &t LIT2, other: keep}\nz: *t\nlist: [*t, fine]\n');
    const aliased = source.load('aliased')!;
    expect(JSON.stringify(aliased.config)).not.toContain('LIT2');
    expect(aliased.config).toMatchObject({ y: { other: 'keep' }, list: ['fine'] });
    expect(aliased.config).not.toHaveProperty('z');
    expect(aliased.warnings.join('\n')).toMatch(/aliased\.yaml:5: literal secret z stripped/);
    // An alias of a secret that is a list, a mapping or a number is stripped too (they were stored, and shown
    // unmasked: a probe); a value that merely equals a secret is not (it was, in any file with an anchor).
    ws.writeTenant('typed', 'client: {id: typed, name: T}\na: {password: &p [S1, S2], secret: &s {inner: S3}}\nb: {copy1: *p, copy2: *s, keep: 1}\nc: {password: &n 918273645, copy: *n}\nd: {list: [*p, fine], merged: {<<: *s, own: 2}}\ndb: {user: admin, password: admin}\ne: &e {x: 1}\nf: *e\n');
    const typed = source.load('typed')!;
    expect(JSON.stringify(typed.config)).not.toMatch(/S1|S2|S3|918273645/);
    expect(typed.config).toMatchObject({ b: { keep: 1 }, c: {}, d: { list: ['fine'], merged: { own: 2 } }, db: { user: 'admin' }, f: { x: 1 } });
    expect(typed.config).not.toHaveProperty('b.copy1');
    expect(typed.warnings.join('\n')).toMatch(/typed\.yaml:3: literal secret b\.copy1 stripped/);
    expect(typed.warnings.join('\n')).not.toMatch(/db\.user/);
    // Copies one alias further away (a review): through an alias of a list or a mapping that holds an alias
    // of the secret, of a node inside a secret, and under a key the loader reads otherwise than written.
    for (const [body, secret] of [
      ['password: &p LSECRET\nlist: &l [*p, x]\ncopy: *l\n', 'LSECRET'],
      ['password: &p MSECRET\nwrap: &w {inner: *p}\ncopy: *w\n', 'MSECRET'],
      ['True:\n  password: &p BOOLSECRET\ncopy: *p\n', 'BOOLSECRET'],
      ['0x10:\n  password: &p HEXSECRET\ncopy: [*p]\n', 'HEXSECRET'],
      ['api_key: [&a K1SECRET, K2]\ncopy: *a\n', 'K1SECRET'],
      ['password: {primary: &a PWSECRET}\ncopy: *a\n', 'PWSECRET'],
      // A tagged key is what its tag makes it (!!str 0x10 is "0x10", not 16: the public 16 went instead).
      ['api_key: &t TAGSECRET\ncopy:\n  16: public\n  !!str 0x10: *t\n', 'TAGSECRET'],
      // A %TAG shorthand the document declares (a review: the key was taken as written, and the copy kept).
      ['%TAG ! tag:yaml.org,2002:\n---\napi_key: &t PCTSECRET\ncopy:\n  !int 0x10: *t\n', 'PCTSECRET'],
    ] as const) {
      ws.writeTenant('further', body.startsWith('%') ? body.replace('---\n', '---\nclient: {id: further, name: F}\n') : `client: {id: further, name: F}\n${body}`);
      const doc = source.load('further')!;
      expect(JSON.stringify(doc.config), body).not.toContain(secret);
      expect(doc.warnings.join('\n'), body).toMatch(/literal secret copy(\.\w+)? stripped/);
      if (secret === 'TAGSECRET') expect(doc.config).toMatchObject({ copy: { 16: 'public' } });
    }
    // An alias of it used as a mapping key: the key is the secret (it was stored, and shown unmasked).
    ws.writeTenant('keyed', 'client: {id: keyed, name: K}\ns: { api_key: &k "SECRETVALUE" }\nm: { *k : v, other: keep }\n');
    const keyed = source.load('keyed')!;
    expect(JSON.stringify(keyed.config)).not.toContain('SECRETVALUE');
    expect(keyed.config).toMatchObject({ m: { other: 'keep' } });
    expect(keyed.warnings.join('\n')).toMatch(/literal secret m\.<key> stripped/);
    expect(keyed.warnings.join('\n')).not.toContain('SECRETVALUE');
    expect(keyed.warnings.join('\n')).toMatch(/keyed\.yaml:3: literal secret m\.<key> stripped/);
    // A key of the file's own that merely equals a secret, in a file with an unrelated anchor: kept (it was
    // stripped with its whole subtree).
    ws.writeTenant('ownkey', 'client: {id: ownkey, name: O}\ndefaults: &region {region: eu-west-1}\nstorage: *region\nintegrations:\n  smtp_password: postgres\n  databases:\n    postgres: {host: db.example, port: 5432}\n');
    const ownkey = source.load('ownkey')!;
    expect(ownkey.config).toMatchObject({ integrations: { databases: { postgres: { host: 'db.example', port: 5432 } } } });
    expect(ownkey.warnings.join('\n')).not.toMatch(/<key>/);
    // Every layout of an alias as a key (a text search missed `? *p`, `[*p : v]` and a flow mapping over lines),
    // and nothing that only looks like one (a comment, a quoted string, a longer key ending in the secret).
    const head = 'client: {id: lay, name: L}\nsmtp: {password: &p hunter2}\n';
    for (const [body, line] of [['m:\n  ? *p\n  : v\n', 4], ['m: [*p : v]\n', 3], ['m: {\n  a: 1,\n  *p\n  : v }\n', 5], ['m:\n  *p : v\n', 4]] as const) {
      ws.writeTenant('lay', head + body);
      const doc = source.load('lay')!;
      expect(JSON.stringify(doc.config), body).not.toContain('hunter2');
      expect(doc.warnings.join('\n'), body).toMatch(new RegExp(`lay\\.yaml:${line}: literal secret m\\.(0\\.)?<key> stripped`));
    }
    for (const body of ['# hunter2: rotate me\nm: {a: *p}\n', 'note: "old hunter2 : gone"\nx: *p\n', 'roles: {site-hunter2: true}\nx: [*p]\n', 'hunter2: {kept: true}\nx: *p\n']) {
      ws.writeTenant('lay', head + body);
      const doc = source.load('lay')!;
      expect(doc.warnings.join('\n'), body).not.toMatch(/<key>/);
    }
    expect(source.load('lay')!.config).toMatchObject({ hunter2: { kept: true } });
    // Values that fill registry columns: a mapping or a list was stored as "[object Object]" / "1".
    expectFileError('tzlist', 'client:\n  id: tzlist\n  name: X\n  timezone: [1]\n', 4, /client\.timezone fills a registry column: it must be a string or a number, not a list/);
    expectFileError('curmap', 'client:\n  id: curmap\n  name: X\ncurrency: {a: 1}\n', 4, /currency fills a registry column: .* not a mapping/);
    expectFileError('gcpmap', 'client:\n  id: gcpmap\n  name: X\ninfrastructure:\n  gcp:\n    project_id: {x: 1}\n', 6, /infrastructure\.gcp\.project_id fills a registry column/);
    expectFileError('noname', 'client:\n  id: noname\n', 1, /client.name/);
    expectFileError('notmap', '- just\n- a list\n', undefined, /mapping/);
    expectFileError('badflag', tenantYaml('badflag', 'B', 'yaml_only: "yes"\n'), 4, /yaml_only/);
  });

  it('refuses alias bombs, over-deep nesting and oversized files', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    ws.writeTenant('bomb', `client: {id: bomb, name: B}\n${bomb.join('\n')}\n`);
    expect(() => source.load('bomb')).toThrow(/bomb\.yaml(:\d+)?: .*alias/i);
    ws.writeTenant('deep', `client: {id: deep, name: D}\nx: ${'['.repeat(100)}${']'.repeat(100)}\n`);
    expect(() => source.load('deep')).toThrow(/deep\.yaml(:\d+)?: .*(depth|deep|nest)/i);
    // An alias inside its own anchor: it overflowed the stack ("Maximum call stack size exceeded").
    ws.writeTenant('cyc', 'client: {id: cyc, name: C}\nx: &a [*a]\n');
    expect(() => source.load('cyc')).toThrow(/cyc\.yaml: a value contains itself \(an alias inside its own anchor/);
    ws.writeTenant('cycmap', 'client: {id: cycmap, name: C}\nx: &m {y: [1, {z: *m}]}\n');
    expect(() => source.load('cycmap')).toThrow(/cycmap\.yaml: a value contains itself/);
    // Depth built from aliases (each anchor within the written limit, the whole 3,700 levels deep in 58 KB): it
    // overflowed the stack of the copy after the parse, and every command reading all files failed (a probe).
    const stacked = ['a0: &a0 ' + '['.repeat(62) + 'x' + ']'.repeat(62)];
    for (let i = 1; i < 60; i++) stacked.push(`a${i}: &a${i} ${'['.repeat(62)}*a${i - 1}${']'.repeat(62)}`);
    ws.writeTenant('stacked', `client: {id: stacked, name: S}\n${stacked.join('\n')}\n# ${'p'.repeat(50_000)}\n`);
    expect(() => source.load('stacked')).toThrow(/stacked\.yaml: values nest deeper than 64 levels once its aliases are expanded/);
    // Two levels of alias within the limit are read.
    ws.writeTenant('nested', `client: {id: nested, name: N}\na: &a ${'['.repeat(20)}1${']'.repeat(20)}\nb: &b ${'['.repeat(20)}*a${']'.repeat(20)}\n`);
    expect(JSON.stringify(source.load('nested')!.config)).toContain('"b":' + '['.repeat(40) + '1');
    // The same value twice (not inside itself) is no cycle.
    ws.writeTenant('twice', 'client: {id: twice, name: C}\nx: &v [1, 2]\ny: [*v, *v]\n');
    expect(source.load('twice')!.config).toMatchObject({ x: [1, 2], y: [[1, 2], [1, 2]] });
    const big = ws.writeTenant('big', 'client: {id: big, name: B}\n');
    writeFileSync(big, `client: {id: big, name: B}\npad: "${'x'.repeat(MAX_TENANT_FILE_BYTES)}"\n`);
    expect(() => source.load('big')).toThrow(/limit/);
  });

  it('keeps dates as strings (CORE schema) and strips literal secrets with a file:line warning', () => {
    ws.writeTenant('dated', tenantYaml('dated', 'D', 'subscription:\n  demo_expires_at: 2030-01-01\nemail:\n  smtp:\n    host: h\n    password: hunter2\n'));
    const doc = source.load('dated')!;
    expect((doc.config.subscription as Record<string, unknown>).demo_expires_at).toBe('2030-01-01');
    expect(doc.config.email).toEqual({ smtp: { host: 'h' } });
    expect(doc.warnings).toEqual([expect.stringMatching(/dated\.yaml:9: literal secret email\.smtp\.password stripped/)]);
    expect(JSON.stringify(doc)).not.toContain('hunter2');
  });

  it('parses a file once while it is unchanged, hands out copies, and sees edits', () => {
    ws.writeTenant('memo', tenantYaml('memo', 'First'));
    const a = source.load('memo')!;
    (a.config.client as Record<string, unknown>).name = 'Mutated by a caller';
    expect((source.load('memo')!.config.client as Record<string, unknown>).name).toBe('First');
    ws.writeTenant('memo', tenantYaml('memo', 'Second name'));
    expect((source.load('memo')!.config.client as Record<string, unknown>).name).toBe('Second name');
    ws.writeTenant('memo', 'client: [broken\n');
    expect(() => source.load('memo')).toThrow(TenantFileError);
    expect(() => source.load('memo')).toThrow(TenantFileError);
  });

  it('maps a config to registry columns and back without loss', () => {
    const config = {
      client: { id: 'm', name: 'M', short_name: 'm', timezone: 'UTC', currency: 'EUR', website: 'w' },
      email: { primary: 'a@b', smtp: { host: '${H}' } },
      infrastructure: { gcp: { project_id: 'p', dataset: 'd' }, openai: { model: 'x' } },
      yaml_only: false,
    };
    const row = rowFromConfig('m', config);
    expect(row).toMatchObject({ name: 'M', short_name: 'm', timezone: 'UTC', currency: 'EUR', primary_email: 'a@b', gcp_project_id: 'p', gcp_dataset: 'd' });
    expect(row.tenant_config.client).toEqual({ website: 'w' });
    const { yaml_only: _y, ...expected } = config;
    const back = configFromRow({ ...row, config_source: 'database', status: 'active', plan: null, features_enabled: null });
    expect(back).toEqual(expected);
    expect(contentHash({ ...row, config_source: 'database', status: 'active', plan: null, features_enabled: null })).toBe(row.tenantctl_hash);
  });
});


describe('locating key paths in a file (for file:line messages)', () => {
  const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/);
  const tree: fc.Arbitrary<Record<string, unknown>> = fc.letrec((tie) => ({
    node: fc.dictionary(key, fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 4 }), fc.integer(), tie('node')), { minKeys: 1, maxKeys: 4 }),
  })).node as fc.Arbitrary<Record<string, unknown>>;

  const paths = (v: unknown, at: string[] = []): string[][] =>
    v && typeof v === 'object' ? Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => [[...at, k], ...paths(x, [...at, k])]) : [];

  it('finds the line of every key path, in block and flow style', () => {
    fc.assert(
      fc.property(tree, fc.boolean(), (doc, flow) => {
        const text = dump(doc, { flowLevel: flow ? 2 : -1 });
        const lines = text.split('\n');
        const locate = lineLocator(text);
        for (const p of paths(doc)) {
          const line = locate(p);
          expect(line, `${p.join('.')} in\n${text}`).toBeDefined();
          expect(lines[line! - 1]).toMatch(new RegExp(`(^|[\\s{,])['"]?${p[p.length - 1]}['"]?:`));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a # inside a quoted value, or within a plain one, is not a comment; one after a space is', () => {
    // The property above once found this: the '#' hid the rest of the flow mapping, so `aa` was placed on the line before.
    const text = "a:\n  a: {s: ''}\n  s: {a: {a: '#'}, aa: ''}\n";
    expect(lineLocator(text)(['a', 's', 'aa'])).toBe(3);
    const more = 'x: "a # b"\ny: a#b\nz: 1 # w: 2\nw: 3\nv: it\'s # u: 4\nu: 5\n';
    const at = lineLocator(more);
    expect([at(['x']), at(['y']), at(['w']), at(['u'])]).toEqual([1, 2, 4, 6]);
  });

  it('gives the line the straightforward index gave, for any text (keys with dashes, quotes, comments)', () => {
    const piece = fc.constantFrom('a', 'b-c', 'x-y-z', '-', ':', ' ', '  ', '{', '}', ',', '"', "'", '#', '[', ']', 'k', '\n', '\n  ', ': ', 'a-a');
    const text = fc.array(piece, { maxLength: 60 }).map((p) => p.join(''));
    const key = fc.constantFrom('a', 'b', 'c', 'b-c', 'y', 'z', 'y-z', 'x-y-z', 'k', 'a-a');
    fc.assert(
      fc.property(text, fc.array(key, { minLength: 1, maxLength: 3 }), (t, path) => {
        expect(lineLocator(t)(path)).toBe(referenceLocator(t)(path));
      }),
      { numRuns: 2000 },
    );
  });

  it('endsWithKeyColon (property): what /:(?:\\s+[&!]\\S*)*\\s*$/ tells, in one pass (a review: a line of `&:` pieces took seconds)', () => {
    const byRegex = (line: string) => /:(?:\s+[&!]\S*)*\s*$/.test(line);
    const piece = fc.constantFrom('a', ':', ' ', '  ', '\t', '&', '!', '&a', '!!seq', 'k:', ': ', '&:', '-', '#');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }).map((p) => p.join('')), (line) => {
        expect(endsWithKeyColon(line)).toBe(byRegex(line));
      }),
      { numRuns: 3000 },
    );
    // A hang guard (see below): the pattern took seconds on 60 KB of these.
    const start = performance.now();
    expect(endsWithKeyColon(`note: "items${' &: &:'.repeat(30_000)} x"`)).toBe(false);
    expect(endsWithKeyColon(`key:${' &a'.repeat(30_000)}`)).toBe(true);
    expect(performance.now() - start).toBeLessThan(5000);
  });

  it('reads a long line once: 150,000 characters with no colon (a tenant file with a literal secret and such a line took half a minute, a 1 MB one half an hour, deaf to signals)', () => {
    const text = `client: {id: big, name: R}\ninfra:\n  password: literal\nblob: ${'a'.repeat(150_000)}\nafter: 1\n`;
    // A hang guard, not a performance goal (see maskUrlsIn's): one pass takes milliseconds.
    const start = performance.now();
    const at = lineLocator(text);
    expect(at(['infra', 'password'])).toBe(3);
    expect(performance.now() - start).toBeLessThan(5000);
    expect(at(['after'])).toBe(5);
  });

  it('an index into a block sequence is the item\'s line (a warning in integrations.1.apiKey named the first item\'s line); a flow sequence keeps the key\'s', () => {
    const text = 'client:\n  id: a\nintegrations:\n  - name: one\n    apiKey: k1\n\n  # two\n  - name: two\n    apiKey: k2\ndb:\n  urls:\n  - postgres://a\n  - postgres://b\nflow: [x, y]\n';
    const at = lineLocator(text);
    expect(at(['integrations', '0', 'apiKey'])).toBe(5);
    expect(at(['integrations', '1', 'apiKey'])).toBe(9);
    expect(at(['integrations', '1'])).toBe(8);
    expect(at(['db', 'urls', '1'])).toBe(13);
    expect(at(['flow', '1'])).toBe(14);
    expect(at(['integrations', '7', 'apiKey'])).toBe(5);
    // An anchor or a tag after the key: still a block sequence.
    const anchored = lineLocator('ints: &a\n  - name: one\n  - name: two\n    apiKey: k\ntagged: !!seq\n  - x\n  - y\n');
    expect(anchored(['ints', '1', 'apiKey'])).toBe(4);
    expect(anchored(['tagged', '1'])).toBe(7);
  });

  it('40,000 stripped secrets are located in one pass (no quadratic scan)', () => {
    const text = ['client:', '  id: big', '  name: Big', 'svc:', ...Array.from({ length: 40_000 }, (_, i) => `  s${i}: {token: x}`)].join('\n');
    const locate = lineLocator(text);
    expect(locate(['svc', 's0', 'token'])).toBe(5);
    expect(locate(['svc', 's39999', 'token'])).toBe(40_004);
  });
});

/** The index as first written (matchAll and a Set of names per token): the oracle for the faster one (comments cut the same way). */
function referenceLocator(text: string): (path: string[]) => number | undefined {
  const index = new Map<string, number[]>();
  const KEY = /([^\s{},:"'#[\]]+)["']?\s*:/g;
  text.split('\n').forEach((raw, i) => {
    const line = withoutComment(raw);
    for (const m of line.matchAll(KEY)) {
      const before = m.index === 0 ? '' : line[m.index - 1];
      if (before !== '' && !/[\s{,"'-]/.test(before)) continue;
      const token = m[1];
      for (const name of new Set([token, ...[...token.matchAll(/-/g)].map((d) => token.slice(d.index + 1))])) {
        const list = index.get(name);
        if (!list) index.set(name, [i]);
        else if (list[list.length - 1] !== i) list.push(i);
      }
    }
  });
  return (path) => {
    let from = 0;
    let found: number | undefined;
    for (const seg of path) {
      if (/^\d+$/.test(seg)) continue;
      const hit = (index.get(seg) ?? []).find((l) => l >= from);
      if (hit === undefined) return found === undefined ? undefined : found + 1;
      found = hit;
      from = hit;
    }
    return found === undefined ? undefined : found + 1;
  };
}

describe('floats with a whole value (the services write 1.0 where JSON from here says 1)', () => {
  const dir = path.join(process.env.TMPDIR ?? '/tmp', `tenantctl-whole-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const whole = (value: string) => {
    const id = `w${n++}`;
    const file = path.join(dir, `${id}.yaml`);
    writeFileSync(file, `client:\n  id: ${id}\n  name: W\nv: ${value}\n`);
    return (parseTenantFile(id, file).lossyNumbers ?? []).filter((l) => l.kind === 'whole-float');
  };

  it('property: said exactly for a plain float whose value is whole; integers, fractions, quoted text, versions and addresses are not', () => {
    const int = fc.integer({ min: -99999, max: 99999 });
    const digit = fc.integer({ min: 1, max: 9 });
    const form = fc.oneof(
      int.map((i) => ({ text: `${i}.0`, said: true })),
      int.map((i) => ({ text: `${i}.`, said: true })),
      fc.tuple(int, fc.integer({ min: 1, max: 4 })).map(([i, z]) => ({ text: `${i}.${'0'.repeat(z)}`, said: true })),
      fc.tuple(digit, digit).map(([a, b]) => ({ text: `${a}.${b}e+1`, said: true })),
      // Whole past 2^53 (`1.5e+20`): no big integer as written, and it was no whole float either (nothing said).
      fc.tuple(digit, digit, fc.integer({ min: 16, max: 20 })).map(([a, b, e]) => ({ text: `${a}.${b}e+${e}`, said: true })),
      // From 1e21 JavaScript's JSON writes the exponent as Python's does: nothing lost, nothing said.
      fc.tuple(digit, digit, fc.integer({ min: 21, max: 300 })).map(([a, b, e]) => ({ text: `${a}.${b}e+${e}`, said: false })),
      fc.tuple(int, digit).map(([i, d]) => ({ text: `${i}.${d}`, said: false })),
      int.map((i) => ({ text: String(i), said: false })),
      int.map((i) => ({ text: `"${i}.0"`, said: false })),
      int.map((i) => ({ text: `v${Math.abs(i)}.0`, said: false })),
      fc.tuple(digit, digit).map(([a, b]) => ({ text: `${a}0.0.${b}.1`, said: false })),
      int.map((i) => ({ text: `[${i}.0, 1.5]`, said: true })),
      // In a comment, or in a quoted string beside an integer: not a float the services read.
      int.map((i) => ({ text: `${i}  # was ${i}.0`, said: false })),
      int.map((i) => ({ text: `{x: ${i}, y: "${i}.0"}`, said: false })),
      // The value on the line below its key, a !!float tag: caught (not placed at a path: --warm refuses, no warning).
      int.map((i) => ({ text: `\n  ${i}.0`, said: true })),
      int.map((i) => ({ text: `!!float ${i}`, said: true })),
    );
    fc.assert(
      fc.property(form, ({ text, said }) => {
        const found = whole(text);
        expect(found.length > 0, text).toBe(said);
        if (said) expect(found[0].written).toMatch(/\.|!!float/);
      }),
      { numRuns: 300 },
    );
  });
});
