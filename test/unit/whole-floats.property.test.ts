import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bigIntegersOfText, firstWholeFloat } from '../../src/json/whole-floats.js';

/** JSON values whose numbers JavaScript writes without a fraction or exponent when whole (no 1e+21). */
const plainJson = fc.jsonValue({ maxDepth: 4 }).map(function tame(v: unknown): unknown {
  if (typeof v === 'number') return Number.isInteger(v) && !Number.isSafeInteger(v) ? 0 : v;
  if (Array.isArray(v)) return v.map(tame);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tame(x)]));
  return v;
});

/** Every path to a value inside v (keys as they are, array positions as digits), v itself first. */
function paths(v: unknown, at: string[] = []): string[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, String(i)])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function replaceAt(v: unknown, at: string[], by: unknown): unknown {
  if (at.length === 0) return by;
  const [head, ...rest] = at;
  if (Array.isArray(v)) return v.map((x, i) => (String(i) === head ? replaceAt(x, rest, by) : x));
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, k === head ? replaceAt(x, rest, by) : x]));
}

describe('firstWholeFloat (a jsonb number like 1.0 that JSON.parse makes an integer)', () => {
  it('finds none in any text JavaScript writes (strings holding "1.0" included)', () => {
    fc.assert(fc.property(plainJson, (v) => {
      expect(firstWholeFloat(JSON.stringify(v))).toBeUndefined();
      expect(firstWholeFloat(JSON.stringify({ s: '1.0', t: 'x":2.0' }))).toBeUndefined();
    }), { numRuns: 400 });
  });

  it('finds the one whole float placed anywhere, with its path and its text, in compact or spaced text', () => {
    const written = fc.constantFrom('1.0', '-3.00', '0.0', '2.50e1', '1E2', '100000.000');
    fc.assert(fc.property(plainJson, fc.nat(), written, fc.boolean(), (v, pick, number, spaced) => {
      const all = paths(v);
      const at = all[pick % all.length];
      const text = JSON.stringify(replaceAt(v, at, '\u0000WF'), null, spaced ? 1 : undefined).replace('"\\u0000WF"', number);
      expect(firstWholeFloat(text)).toEqual({ path: at, written: number });
      expect(JSON.parse(text)).toBeDefined();
    }), { numRuns: 400 });
  });

  it('reads a fraction that is not whole as no such float', () => {
    expect(firstWholeFloat('{"a": [1, 1.5, 0.05, 1e-7, 2]}')).toBeUndefined();
    expect(firstWholeFloat('{"a": {"b\\"c": [1, 2.0]}}')).toEqual({ path: ['a', 'b"c', '1'], written: '2.0' });
  });
});

describe('bigIntegersOfText (integers past 2^53 with every digit, where JSON.parse rounds them)', () => {
  it('finds none in any text JavaScript writes (strings of digits included)', () => {
    fc.assert(fc.property(plainJson, (v) => {
      expect(bigIntegersOfText(JSON.stringify(v))).toEqual([]);
      expect(bigIntegersOfText(JSON.stringify({ s: '12345678901234567', t: 'x":98765432109876543' }))).toEqual([]);
    }), { numRuns: 400 });
  });

  it('finds each one placed anywhere, with its path and its digits as written, compact or spaced', () => {
    const big = fc.bigInt({ min: 2n ** 53n, max: 2n ** 80n }).chain((n) => fc.constantFrom(n, -n));
    fc.assert(fc.property(plainJson, fc.nat(), big, fc.boolean(), (v, pick, number, spaced) => {
      const all = paths(v);
      const at = all[pick % all.length];
      const text = JSON.stringify(replaceAt(v, at, '\u0000BI'), null, spaced ? 1 : undefined).replace('"\\u0000BI"', String(number));
      expect(bigIntegersOfText(text)).toEqual([{ path: at, written: String(number) }]);
      expect(BigInt(bigIntegersOfText(text)[0].written)).toBe(number);
    }), { numRuns: 400 });
  });

  it('takes integers only: 2^53 - 1, fractions and exponents are no such integer', () => {
    expect(bigIntegersOfText('{"a": [9007199254740991, 12345678901234567.5, 1.2345678901234567e16, -9007199254740991]}')).toEqual([]);
    expect(bigIntegersOfText('{"a": [9007199254740993]}')).toEqual([{ path: ['a', '0'], written: '9007199254740993' }]);
  });
});

describe('the JSON walk of whole-floats.ts', () => {
  it('walks a string of ten million characters (a RegExp over its characters overflowed the stack: verify exit 70)', () => {
    const text = `{"blob": "${'y'.repeat(10_000_000)}\\"\\\\", "limits": {"ratio": 2.0, "quota": 12345678901234567}}`;
    expect(firstWholeFloat(text)).toEqual({ path: ['limits', 'ratio'], written: '2.0' });
    expect(bigIntegersOfText(text)).toEqual([{ path: ['limits', 'quota'], written: '12345678901234567' }]);
  });

  it('with floats: an unsafe integer written as a float is found too, a safe or fractional one is not', () => {
    expect(bigIntegersOfText('{"a": [1.2345678901234568e+16, 12345678901234567.0, 1.5e3, 0.5, 12345678901234567]}', true).map((n) => n.written))
      .toEqual(['1.2345678901234568e+16', '12345678901234567.0', '12345678901234567']);
  });
});
