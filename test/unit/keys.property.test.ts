import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { escapeGlob, globMatches, prefixesGlob } from '../../src/keys/glob.js';
import { isValidId, parseId } from '../../src/keys/ids.js';
import { buildFamilies, KeySpace, patternToGlob, validatePattern } from '../../src/keys/key-families.js';
import { UsageError } from '../../src/errors.js';

const idChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-.'.split(''));
const validId = fc.string({ unit: idChar, minLength: 1, maxLength: 20 });
const anyText = fc.string({ unit: fc.constantFrom(...'ab*?[]\\^-:x{}'.split('')), maxLength: 12 });

const families = buildFamilies({
  ttl: 300,
  extra: [{ name: 'app_cache', patterns: ['fastapi_template:tenant-{tenant}:*'], ttl: 1800 }],
});
const keys = new KeySpace(families);

/** Every key shape a tenant can own: each pattern, with a random suffix for wildcards. */
const keyOf = (tenant: string, suffix: string) =>
  families.flatMap((f) => f.patterns.map((p) => p.replace('{tenant}', tenant).replace(/\*/g, suffix)));

describe('tenant ids', () => {
  it('accepts exactly letters, digits, _ - . up to 128 characters', () => {
    fc.assert(fc.property(validId, (id) => {
      expect(parseId(id)).toBe(id);
    }));
    fc.assert(
      fc.property(fc.string({ maxLength: 140 }), (s) => {
        expect(isValidId(s)).toBe(/^[A-Za-z0-9_.-]{1,128}$/.test(s));
      }),
    );
    expect(isValidId('a'.repeat(128))).toBe(true);
    expect(isValidId('a'.repeat(129))).toBe(false);
    for (const bad of ['', 'ac*', 'a b', 'a:b', 'a[1]', 'é', 'a\\b', 'a\n']) expect(() => parseId(bad)).toThrow(UsageError);
  });
});

describe('glob escaping', () => {
  it('a prefixes glob matches every text that starts with one of the prefixes; one prefix gives exactly its own glob', () => {
    const bytes = fc.string({ unit: fc.constantFrom(...'ab*?[]\\^-:x{}_\xe9\xff'.split('')), minLength: 1, maxLength: 10 });
    fc.assert(
      fc.property(fc.array(bytes, { minLength: 1, maxLength: 6 }), fc.nat(), anyText, anyText, (prefixes, pick, rest, other) => {
        const glob = prefixesGlob(prefixes)!;
        expect(globMatches(glob, prefixes[pick % prefixes.length] + rest)).toBe(true);
        if (prefixes.length === 1) {
          expect(glob).toBe(`${escapeGlob(prefixes[0])}*`);
          expect(globMatches(glob, other)).toBe(other.startsWith(prefixes[0]));
        }
      }),
    );
    expect(prefixesGlob([])).toBeUndefined();
    expect(prefixesGlob(['tenant_config:', ''])).toBeUndefined();
    // Text none of the default families starts with is dropped by the server.
    const glob = keys.rules().prefilter!;
    for (const k of ['sessions:1', 'other:1', 'queue:acme', 'bull:jobs:1']) expect(globMatches(glob, k), k).toBe(false);
    for (const k of keyOf('acme', 'x')) expect(globMatches(glob, k), k).toBe(true);
    // Four bracket classes at most (each costs the server per key); plain bytes in between are kept.
    expect(glob).toBe('[dfpst][aeor][inors][acdehmt]*');
    expect(prefixesGlob(['ab1:', 'ac2:', 'ad3:', 'ae4:', 'af5:'])).toBe('a[bcdef][12345]:*');
    expect(prefixesGlob(['a1b1c1d1e1', 'a2b2c2d2e2'])).toBe('a[12]b[12]c[12]d[12]e*');
  });

  it('an escaped literal matches itself and nothing else under Redis glob rules', () => {
    fc.assert(
      fc.property(anyText, anyText, (literal, other) => {
        const glob = escapeGlob(literal);
        expect(globMatches(glob, literal)).toBe(true);
        if (other !== literal) expect(globMatches(glob, other)).toBe(false);
      }),
    );
  });

  it('patternToGlob of a tenant matches the tenant\'s keys', () => {
    fc.assert(
      fc.property(validId, fc.string({ unit: idChar, maxLength: 8 }), (tenant, suffix) => {
        for (const f of families) {
          for (const p of f.patterns) {
            expect(globMatches(patternToGlob(p, tenant), p.replace('{tenant}', tenant).replace(/\*/g, suffix))).toBe(true);
          }
        }
      }),
    );
  });
});

describe('key building and tenant isolation', () => {
  it('builds the services\' key names', () => {
    expect(keys.key('tenant_config', 'acme')).toBe('tenant_config:acme');
    expect(keys.key('permissions', 'biz-1')).toBe('permissions:biz-1');
    expect(keys.key('dashboard_kpis', 'acme', 'days', '30')).toBe('dashboard_kpis:acme:days:30');
    expect(() => keys.key('tenant_config', 'ac*')).toThrow(UsageError);
  });

  it('no key of one tenant is matched as another tenant\'s (acme vs acme2, acme-eu, ac)', () => {
    fc.assert(
      fc.property(validId, validId, fc.string({ unit: idChar, maxLength: 10 }), (a, b, suffix) => {
        fc.pre(a !== b);
        const matchA = keys.matcher([a]);
        for (const k of keyOf(b, suffix)) expect(matchA(k)).toBeUndefined();
        for (const k of keyOf(a, suffix)) expect(matchA(k)?.tenant).toBe(a);
      }),
      { numRuns: 300 },
    );
    const acme = keys.matcher(['acme']);
    for (const other of ['acme2', 'acme-eu', 'ac', 'acme.eu', 'xacme']) {
      for (const k of keyOf(other, 'days:30')) expect(acme(k)).toBeUndefined();
    }
  });

  it('a dot in an id matches a dot only: a.b never claims axb\'s keys, in the matcher nor in the sweep rules (the client-side sweep)', () => {
    const other = fc.constantFrom(...'xZ9_-'.split(''));
    fc.assert(
      fc.property(validId, other, fc.string({ unit: idChar, maxLength: 10 }), (raw, c, suffix) => {
        const a = raw.includes('.') ? raw : `${raw}.x`;
        const b = a.replace(/\./g, c);
        const matchA = keys.matcher([a]);
        const rules = keys.rules({ tenants: [a] }).rules;
        // b's keys, and a wildcard key of b whose tail holds a's id (it passes a's SCAN glob *:a:*).
        for (const k of [...keyOf(b, suffix), `dashboard_trends:${b}:${a}:1`]) {
          expect(matchA(k), k).toBeUndefined();
          for (const r of rules) expect(r.regex.test(k), `${r.regex} ${k}`).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('fixed keys by name plus the tenant SCAN glob cover every key of the tenant (a superset, re-checked exactly)', () => {
    fc.assert(
      fc.property(validId, fc.string({ unit: idChar, maxLength: 10 }), (t, suffix) => {
        const glob = keys.tenantScanGlob(t);
        const fixed = new Set(keys.fixedKeys([t]).map((f) => f.key));
        for (const k of keyOf(t, suffix)) expect(fixed.has(k) || globMatches(glob, k), k).toBe(true);
      }),
    );
    // The families' literal starts first (a prefilter other applications' keys fail on at once), then the tenant.
    expect(keys.tenantScanGlob('acme')).toBe('[dfps][aeor][inors][cdeht]*acme:*');
    expect(keys.fixedKeys(['acme']).map((f) => f.key)).toContain('tenant_config:acme');
  });

  it('the tenant SCAN glob is a superset when the families\' text around the tenant shares only part of a character (emoji: one UTF-16 unit, no byte)', () => {
    const space = new KeySpace(buildFamilies({ ttl: 60, resources: {}, extra: [{ name: 'emo', patterns: ['p😀:{tenant}:*', 'q🈀:{tenant}:*'] }, { name: 'emo2', patterns: ['svc:{tenant}😀*', 'web:{tenant}😁*'] }] }));
    const bytes = (k: string) => Buffer.from(k, 'utf8').toString('latin1');
    for (const family of ['emo', 'emo2']) {
      const glob = space.tenantScanGlob('acme', [family]);
      const keys = family === 'emo' ? ['p😀:acme:1', 'q🈀:acme:x'] : ['svc:acme😀1', 'web:acme😁2'];
      // Before: the shared UTF-16 half became EF BF BD in the glob, which no key holds.
      for (const k of keys) expect(globMatches(glob, bytes(k)), `${glob} ${k}`).toBe(true);
    }
  });

  it('the tenant SCAN glob is bytes: it matches the UTF-8 bytes of keys with non-ASCII text around the tenant', () => {
    const word = fc.string({ unit: fc.constantFrom('é', 'à', 'ü', '日', '本', 'ß', 'x', '_'), minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(word, validId, fc.string({ unit: idChar, maxLength: 10 }), (w, t, suffix) => {
        const space = new KeySpace(buildFamilies({ ttl: 60, resources: {}, extra: [{ name: 'accented', patterns: [`${w}:{tenant}:*`] }] }));
        const glob = space.tenantScanGlob(t);
        // As the server sees it: each byte one char.
        const bytes = (k: string) => Buffer.from(k, 'utf8').toString('latin1');
        expect(globMatches(glob, bytes(`${w}:${t}:${suffix}`))).toBe(true);
      }),
    );
  });

  it('classifies keys to their family and tenant, and ignores keys outside the families', () => {
    expect(keys.classify('tenant_config:acme')).toEqual({ family: 'tenant_config', tenant: 'acme' });
    expect(keys.classify('dashboard_trends:acme:days:30')).toEqual({ family: 'dashboard_trends', tenant: 'acme' });
    expect(keys.classify('fastapi_template:tenant-org-1:user:9:v1')).toEqual({ family: 'app_cache', tenant: 'org-1' });
    for (const foreign of ['sessions:acme', 'other:acme', 'tenant_config:', 'tenant_config:a:b', 'tenant_configx:acme', 'permissions:a*b']) {
      expect(keys.classify(foreign)).toBeUndefined();
    }
  });
});

describe('family patterns', () => {
  it('refuses patterns that would make tenant ownership ambiguous or swallow foreign keys', () => {
    for (const bad of ['x:{tenant}*', 'x:{tenant}a', '*{tenant}:x', '{tenant}:*', '*:{tenant}', 'x:{tenant}:{tenant}', 'x:*', 'x:[{tenant}]', 'app:*:{tenant}:*', 'x:*/{tenant}/y*']) {
      expect(() => validatePattern('f', bad), bad).toThrow(UsageError);
    }
    for (const good of ['x:{tenant}', 'x:{tenant}:*', 'app:tenant-{tenant}:*', 'x:*:{tenant}', 'x:{tenant}/y']) {
      expect(() => validatePattern('f', good), good).not.toThrow();
    }
  });

  it('an accepted pattern gives each key one tenant: the one it was built with (app:*:{tenant}:* gave app:eu:globex:acme:v1 to acme and to globex)', () => {
    const literal = fc.string({ unit: fc.constantFrom(...'abxy:/-_.'.split('')), minLength: 1, maxLength: 4 });
    const part = fc.oneof(literal, fc.constant('*'));
    // Separators next to {tenant} (else the pattern is refused outright: no case to check).
    const sep = fc.constantFrom(':', '/');
    const before = fc.tuple(fc.array(part, { maxLength: 2 }), sep).map(([p, s]) => `${p.join('')}${s}`);
    const after = fc.oneof(fc.constant(''), fc.tuple(sep, fc.array(part, { maxLength: 2 })).map(([s, p]) => `${s}${p.join('')}`));
    const fill = fc.string({ unit: fc.constantFrom(...'abc:./-_'.split('')), maxLength: 8 });
    fc.assert(
      fc.property(literal, before, after, validId, fc.array(fill, { minLength: 6, maxLength: 6 }), (head, pre, post, tenant, fills) => {
        const pattern = `${head}${pre}{tenant}${post}`;
        try {
          validatePattern('f', pattern);
        } catch {
          return; // refused: nothing to check
        }
        let n = 0;
        const key = pattern.replace('{tenant}', '\u0000').replace(/\*/g, () => fills[n++ % fills.length]).replace('\u0000', tenant);
        const space = new KeySpace(buildFamilies({ ttl: 60, resources: {}, extra: [{ name: 'f', patterns: [pattern], ttl: 60 }] }));
        const owner = space.classify(key);
        expect(owner, `${pattern} / ${key}`).toEqual({ family: 'f', tenant });
      }),
      { numRuns: 500 },
    );
  });
});
