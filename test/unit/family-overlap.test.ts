import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { overlapExample, patternToRegexSource } from '../../src/keys/key-patterns.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertNoOverlap, buildFamilies } from '../../src/keys/key-families.js';
import { resolveConfig } from '../../src/config/config.js';
import { UsageError } from '../../src/errors.js';

const matches = (pattern: string, key: string) => new RegExp(`^${patternToRegexSource(pattern)}$`).test(Buffer.from(key, 'utf8').toString('latin1'));
/** Every place (`i-j`) a pattern's tenant slot can take in a key: id bytes, the text before and after matched (a star may leave several). */
const slotsIn = (pattern: string, key: string): Set<string> => {
  const [before, after] = pattern.split('{tenant}').map((part) => new RegExp(`^${patternToRegexSource(part)}$`));
  const out = new Set<string>();
  for (let i = 0; i <= key.length; i++) {
    for (let j = i + 1; j <= key.length; j++) {
      if (/^[A-Za-z0-9_.-]+$/.test(key.slice(i, j)) && before.test(key.slice(0, i)) && after.test(key.slice(j))) out.add(`${i}-${j}`);
    }
  }
  return out;
};
/** One place for the slot in both patterns: the key gives both the same tenant, from the same bytes. */
const oneSharedSlot = (p: string, q: string, key: string) => {
  const [sp, sq] = [slotsIn(p, key), slotsIn(q, key)];
  return sp.size === 1 && sq.size === 1 && [...sp][0] === [...sq][0];
};

/**
 * Two key families that can claim one key would hand it to two tenants
 * (security review: `products:{tenant}:*` and `products:x-{tenant}:*` both
 * claim `products:x-acme:1`; `invalidate acme` deleted what cache-info counted
 * as x-acme's). Such a configuration is refused.
 */
describe('key families that can claim the same key', () => {
  it('are found, with a key both match; families told apart by their literal text are not', () => {
    for (const [p, q] of [['products:{tenant}:*', 'products:x-{tenant}:*'], ['a:*:{tenant}', 'a:{tenant}:*']]) {
      const key = overlapExample(p, q);
      expect(key, `${p} / ${q}`).toBeDefined();
      expect(matches(p, key!) && matches(q, key!)).toBe(true);
    }
    // A catch-all beside a sub-family (seed 004's layout) gives each key to the same tenant: allowed.
    for (const [p, q] of [['products:{tenant}', 'products:{tenant}:*'], ['tenant_config:{tenant}', 'permissions:{tenant}'], ['fastapi_template:tenant-{tenant}:*', 'tenant_config:{tenant}'], ['x:{tenant}:a', 'x:{tenant}:b'], ['dashboard_kpis:{tenant}:*', 'dashboard_kpis:{tenant}:v2:*'], ['fastapi_template:tenant-{tenant}:*', 'fastapi_template:tenant-{tenant}:user:*']]) {
      expect(overlapExample(p, q), `${p} / ${q}`).toBeUndefined();
    }
  });

  it('property: a key given as an example matches both with their tenant slots on other bytes; none given means every sampled key both match has one slot, shared', () => {
    const lit = fc.stringMatching(/^[a-c:_-]{1,3}$/);
    const pattern = fc.tuple(lit, fc.constantFrom('', ':', ':*', '-x', ':*:z')).map(([a, b]) => `${a}{tenant}${b}`);
    const key = fc.stringMatching(/^[a-cx:z_-]{1,10}$/);
    fc.assert(
      fc.property(pattern, pattern, fc.array(key, { maxLength: 30 }), (p, q, keys) => {
        const found = overlapExample(p, q);
        if (found !== undefined) {
          expect(matches(p, found) && matches(q, found)).toBe(true);
          expect(oneSharedSlot(p, q, found), `${p} / ${q} / ${found}`).toBe(false);
        } else {
          for (const k of keys) {
            if (!(matches(p, k) && matches(q, k))) continue;
            expect(oneSharedSlot(p, q, k), `${p} / ${q} / ${k}`).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: the check compares only patterns whose literal starts nest, and refuses exactly the lists the all-pairs check refuses (it compared every pair: 4,000 resources took a minute)', () => {
    const allPairs = (families: Array<{ name: string; patterns: string[] }>) =>
      families.some((f, i) => families.slice(i + 1).some((g) => f.patterns.some((p) => g.patterns.some((q) => overlapExample(p, q) !== undefined))));
    const lit = fc.stringMatching(/^[a-c:_-]{1,3}$/);
    const pattern = fc.tuple(lit, fc.constantFrom('', ':', ':*', '-x', ':*:z'), fc.constantFrom('', '*:')).map(([a, b, star]) => `${a}${star}{tenant}${b.includes('*') && star ? ':' : b}`);
    const families = fc.array(fc.array(pattern, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }).map((ps) => ps.map((patterns, i) => ({ name: `f${i}`, patterns, ttl: 60 })));
    fc.assert(
      fc.property(families, (list) => {
        let refused = false;
        try {
          assertNoOverlap(list);
        } catch (err) {
          expect(err).toBeInstanceOf(UsageError);
          refused = true;
        }
        expect(refused, JSON.stringify(list)).toBe(allPairs(list));
      }),
      { numRuns: 300 },
    );
    // Thousands of resources pass (all pairs took a minute, past the test's timeout).
    const many = Array.from({ length: 4000 }, (_, i) => ({ name: `r${i}`, patterns: [`r${i}:{tenant}`, `r${i}:{tenant}:*`], ttl: 60 }));
    expect(() => assertNoOverlap(many)).not.toThrow();
  });

  it('the defaults do not overlap; a declared family that does is a usage error naming both, from the config file too', () => {
    const check = (extra: Array<{ name: string; patterns: string[]; ttl: number }>) => () => assertNoOverlap(buildFamilies({ ttl: 300, extra }));
    expect(check([])).not.toThrow();
    expect(check([{ name: 'prodx', patterns: ['products:x-{tenant}:*'], ttl: 300 }])).toThrow(UsageError);
    expect(check([{ name: 'prodx', patterns: ['products:x-{tenant}:*'], ttl: 300 }])).toThrow(/key families "products" .* and "prodx" .* can claim the same key/);
    expect(check([{ name: 'app', patterns: ['fastapi_template:tenant-{tenant}:*'], ttl: 1800 }])).not.toThrow();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-overlap-'));
    try {
      writeFileSync(path.join(dir, 'tenantctl.config.yaml'), 'families:\n  - { name: prodx, pattern: "products:x-{tenant}:*" }\n');
      expect(() => resolveConfig({}, {}, dir)).toThrow(/can claim the same key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
