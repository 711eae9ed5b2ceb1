import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/json/canonical-json.js';

/** The reference: JSON.stringify with every object's keys sorted (what the hashes stored in registries were made with). */
const reference = (value: unknown) =>
  JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );

describe('canonical JSON', () => {
  it('is exactly JSON.stringify with sorted keys, for any JSON value (stored hashes stay valid)', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      expect(canonicalJson(v)).toBe(reference(v));
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.object(), (v) => {
      expect(canonicalJson(v)).toBe(reference(v));
    }), { numRuns: 300 });
  });

  it('equal objects with keys in another order give the same text', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }));
  });
});
