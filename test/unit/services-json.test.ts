import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { integerKeyAmongOthers, NotServicesJson, pythonFloat, pythonNumber, servicesJson } from '../../src/json/services-json.js';

/**
 * The services write their cache entries with Python's json.dumps (seed 001):
 * what tenantctl writes to a shared key must be those bytes. The expected
 * texts below were produced by python3's json.dumps of the same values.
 */
describe('servicesJson: json.dumps byte for byte', () => {
  it('separators, ensure_ascii escapes (surrogate pairs, DEL, controls), floats in repr', () => {
    const value = {
      client: { id: 'uni', name: 'Caf\u00e9 Z\u00fcrich \u2014 \u201cLtd\u201d' },
      ls: 'a\u2028b',
      ctl: '\x7f\x1b\n\t"\\/',
      emoji: '\u{1F600}',
      n: [1, -2, 0.5, 1e-5, 1.5e-7, 0.0001, 123.456, -0.001, 1234567890123456.5, 9007199254740991],
      t: true,
      f: false,
      z: null,
      '': {},
      e: [],
    };
    expect(servicesJson(value)).toBe(
      '{"client": {"id": "uni", "name": "Caf\\u00e9 Z\\u00fcrich \\u2014 \\u201cLtd\\u201d"}, "ls": "a\\u2028b", "ctl": "\\u007f\\u001b\\n\\t\\"\\\\/", ' +
        '"emoji": "\\ud83d\\ude00", "n": [1, -2, 0.5, 1e-05, 1.5e-07, 0.0001, 123.456, -0.001, 1234567890123456.5, 9007199254740991], ' +
        '"t": true, "f": false, "z": null, "": {}, "e": []}',
    );
  });

  it('float repr: exponent below 1e-4 with at least two digits, fixed notation above', () => {
    expect(pythonNumber(0.00012)).toBe('0.00012');
    expect(pythonNumber(0.000012)).toBe('1.2e-05');
    expect(pythonNumber(-3.25e-100)).toBe('-3.25e-100');
    expect(pythonNumber(1e-7)).toBe('1e-07');
    expect(pythonNumber(2.5)).toBe('2.5');
  });

  it('a whole float as Python repr writes it (what the services cache for a jsonb 2.00): .0 below 1e16, an exponent from there', () => {
    expect(pythonFloat(2)).toBe('2.0');
    expect(pythonFloat(-3)).toBe('-3.0');
    expect(pythonFloat(1e15)).toBe('1000000000000000.0');
    expect(pythonFloat(1e16)).toBe('1e+16');
    expect(pythonFloat(1.2345678901234568e17)).toBe('1.2345678901234568e+17');
    expect(pythonFloat(120)).toBe('120.0');
    expect(pythonFloat(2.5)).toBe('2.5');
    expect(pythonFloat(1e-7)).toBe('1e-07');
    expect(pythonFloat(-0)).toBe('-0.0');
  });

  it('refuses what the services would write otherwise, naming where: integers past 2^53, NaN, infinities, -0', () => {
    for (const bad of [2 ** 53 + 2, Number.NaN, Infinity, -Infinity, -0]) expect(() => pythonNumber(bad)).toThrow(NotServicesJson);
    try {
      servicesJson({ a: { b: [1, 12345678901234567890] } });
      expect.unreachable();
    } catch (err) {
      expect((err as NotServicesJson).describe()).toMatch(/^a\.b\.1: the integer/);
    }
  });

  it('property: reads back (JSON.parse) as the value it was given; printable ASCII only', () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0) && (!Number.isInteger(d) || Number.isSafeInteger(d)));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.string({ unit: 'binary' }), finite, fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 4 })),
    })).value;
    fc.assert(
      fc.property(json, (v) => {
        const text = servicesJson(v);
        expect(text).toMatch(/^[ -~]*$/);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 500 },
    );
  });
});

describe('integerKeyAmongOthers: where servicesJson would order members otherwise than Python', () => {
  it('names an integer key among other keys, at any depth; a lone integer key, "01", "-1" and 2^32-1 are not', () => {
    expect(integerKeyAmongOthers({ ports: { name: 'web', 443: 'https' } })).toEqual(['ports', '443']);
    expect(integerKeyAmongOthers({ a: [{ x: 1 }, { 0: 'a', b: 2 }] })).toEqual(['a', '1', '0']);
    expect(integerKeyAmongOthers({ ports: { 443: 'https' }, n: 1 })).toBeUndefined();
    expect(integerKeyAmongOthers({ '01': 1, '-1': 2, [String(2 ** 32 - 1)]: 3, b: 4 })).toBeUndefined();
    expect(integerKeyAmongOthers([1, 'a', null])).toBeUndefined();
  });

  it('property: where it says nothing, the object\'s keys are in the order they were inserted (the order Python keeps)', () => {
    const entries = fc.array(fc.tuple(fc.oneof(fc.string(), fc.nat().map(String), fc.constantFrom('0', '01', '-1', '4294967295', '4294967294')), fc.integer()), { maxLength: 5 });
    fc.assert(
      fc.property(entries, (list) => {
        const inserted = [...new Map(list).keys()];
        const obj = Object.fromEntries(list);
        if (integerKeyAmongOthers({ wrap: obj }) === undefined) expect(Object.keys(obj)).toEqual(inserted);
      }),
      { numRuns: 2000 },
    );
  });
});
