import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CACHED_DEPTH, parseCachedJson } from '../../src/json/bounded-json.js';

describe('parseCachedJson: a cached text, or why not', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

  it('up to the depth limit a value; one more level, or text that is not JSON, a problem', () => {
    expect(parseCachedJson(nested(MAX_CACHED_DEPTH))).toHaveProperty('value');
    expect(parseCachedJson(nested(MAX_CACHED_DEPTH + 1))).toEqual({ problem: `a value nested deeper than ${MAX_CACHED_DEPTH} levels` });
    expect(parseCachedJson(`{"a": ${nested(5000)}}`)).toHaveProperty('problem');
    expect(parseCachedJson('{"a":')).toEqual({ problem: 'a value that is not JSON' });
  });

  it('property: brackets and escaped quotes inside strings never count as nesting; any shallow value parses', () => {
    fc.assert(
      fc.property(fc.json({ depthSize: 'small' }), fc.string({ unit: fc.constantFrom('[', '{', '"', '\\', 'x') }), (json, noise) => {
        const text = JSON.stringify({ noise: noise.repeat(50), v: JSON.parse(json) });
        expect(parseCachedJson(text)).toEqual({ value: JSON.parse(text) });
      }),
    );
  });
});
