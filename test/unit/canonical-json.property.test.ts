import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, writtenCanonical } from '../../src/json/canonical-json.js';

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
    // Index-like keys ("0", "17", "4294967294") enumerate first in JavaScript; near misses ("01", "4294967295", "-1") do not.
    const key = fc.oneof(fc.nat().map(String), fc.constantFrom('4294967294', '4294967295', '01', '-1', '1.5', ''), fc.string());
    fc.assert(fc.property(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 })), fc.dictionary(key, fc.dictionary(key, fc.integer())), (a, b) => {
      expect(canonicalJson(a)).toBe(reference(a));
      expect(canonicalJson({ a, b })).toBe(reference({ a, b }));
    }), { numRuns: 500 });
  });

  it('an own "__proto__" key (JSON.parse and YAML make them) is written as a key, in its sorted place', () => {
    const v = JSON.parse('{"b":1,"__proto__":{"y":2,"x":1},"a":[{"__proto__":null}]}');
    expect(canonicalJson(v)).toBe('{"__proto__":{"x":1,"y":2},"a":[{"__proto__":null}],"b":1}');
    expect(canonicalJson(v)).toBe(reference(v));
  });

  it('nested deeper than the fast path reaches (a registry row read to plan against): the same text, written level by level (before: a crash of the whole run)', () => {
    let deep: unknown = { b: [1, { z: 2, y: 'x' }], a: null };
    let text = '{"a":null,"b":[1,{"y":"x","z":2}]}';
    for (let i = 0; i < 3000; i++) {
      deep = i % 500 === 0 ? { z: deep, y: i } : [deep];
      text = i % 500 === 0 ? `{"y":${i},"z":${text}}` : `[${text}]`;
    }
    expect(canonicalJson(deep)).toBe(text);
    // Any depth (the recursive writer before this stopped at ~4,400 levels: an internal error in a migration).
    let deeper: unknown = { k: 1 };
    const opens: string[] = [];
    const closes: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      deeper = i % 2 ? [deeper, null] : { b: deeper, a: i };
      opens.push(i % 2 ? '[' : `{"a":${i},"b":`);
      closes.push(i % 2 ? ',null]' : '}');
    }
    expect(canonicalJson(deeper)).toBe(opens.reverse().join('') + '{"k":1}' + closes.join(''));
  });

  it('the level-by-level writer gives the fast path\'s text for any value (the fallback is the same hash)', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      expect(writtenCanonical(v)).toBe(canonicalJson(v));
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.anything({ withBoxedValues: true, withDate: true, withMap: true, withSparseArray: true, withNullPrototype: true, withObjectString: true }), (v) => {
      expect(writtenCanonical(v)).toBe(canonicalJson(v));
    }), { numRuns: 500 });
    const odd = { s: Symbol('s'), f: () => 1, u: undefined, t: { toJSON: () => undefined }, d: new Date(0), l: [Symbol('x'), undefined, () => 1], n: -0, nan: NaN };
    expect(writtenCanonical(odd)).toBe(canonicalJson(odd));
    expect(canonicalJson(odd)).toBe(reference(odd));
  });

  it('a value that contains itself throws a TypeError, as JSON.stringify does (the stack writer grew until the heap ran out: a fatal error); one shared twice is written twice', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(() => canonicalJson(a)).toThrow(TypeError);
    const deep: unknown[] = [];
    let at = deep;
    for (let i = 0; i < 5000; i++) at = (at[0] = []) as unknown[];
    at[0] = deep; // a cycle below the depth the sorted copy reaches: found by the stack writer
    expect(() => canonicalJson(deep)).toThrow(TypeError);
    const shared = { b: 2, a: 1 };
    expect(canonicalJson({ y: shared, x: [shared, shared] })).toBe('{"x":[{"a":1,"b":2},{"a":1,"b":2}],"y":{"a":1,"b":2}}');
    expect(writtenCanonical({ y: shared, x: [shared, shared] })).toBe('{"x":[{"a":1,"b":2},{"a":1,"b":2}],"y":{"a":1,"b":2}}');
    // Deeper than the sorted copy reaches, one leaf shared at every level (YAML aliases make these): no cycle.
    let chain: unknown = shared;
    for (let i = 0; i < 5000; i++) chain = [chain, shared];
    expect(canonicalJson(chain)).toBe('['.repeat(5000) + '{"a":1,"b":2}' + ',{"a":1,"b":2}]'.repeat(5000));
  });

  it('equal objects with keys in another order give the same text', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }));
  });
});
