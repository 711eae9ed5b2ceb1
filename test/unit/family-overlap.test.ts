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
/** Every tenant a pattern can read in a key (a star before the slot may leave it several). */
const tenantsIn = (pattern: string, key: string): Set<string> => {
  const out = new Set<string>();
  const re = new RegExp(`^${patternToRegexSource(pattern)}$`);
  for (let i = 0; i <= key.length; i++) {
    for (let j = i + 1; j <= key.length; j++) {
      const t = key.slice(i, j);
      if (new RegExp(`^${patternToRegexSource(pattern, [t])}$`).test(key) && re.test(key)) out.add(t);
    }
  }
  return out;
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

  it('property: a key given as an example matches both with different tenants; none given means every sampled key both match has one tenant', () => {
    const lit = fc.stringMatching(/^[a-c:_-]{1,3}$/);
    const pattern = fc.tuple(lit, fc.constantFrom('', ':', ':*', '-x', ':*:z')).map(([a, b]) => `${a}{tenant}${b}`);
    const key = fc.stringMatching(/^[a-cx:z_-]{1,10}$/);
    fc.assert(
      fc.property(pattern, pattern, fc.array(key, { maxLength: 30 }), (p, q, keys) => {
        const found = overlapExample(p, q);
        if (found !== undefined) {
          expect(matches(p, found) && matches(q, found)).toBe(true);
          const [tp, tq] = [tenantsIn(p, found), tenantsIn(q, found)];
          expect(tp.size > 1 || tq.size > 1 || [...tp][0] !== [...tq][0]).toBe(true);
        } else {
          for (const k of keys) {
            if (!(matches(p, k) && matches(q, k))) continue;
            const [tp, tq] = [tenantsIn(p, k), tenantsIn(q, k)];
            expect(tp.size === 1 && tq.size === 1 && [...tp][0] === [...tq][0], `${p} / ${q} / ${k}`).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
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
