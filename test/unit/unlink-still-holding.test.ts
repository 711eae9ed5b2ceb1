import { describe, expect, it } from 'vitest';
import { unlinkStillHolding } from '../../src/cache/cache-store.js';
import { BackendUnavailableError } from '../../src/errors.js';

describe('unlinkStillHolding (GET then UNLINK of the keys that still hold their value)', () => {
  const entries = ['a', 'b', 'c', 'd', 'e'].map((k) => ({ key: k, value: `v${k}` }));
  // b and d were rewritten since they were judged: not UNLINKed, answered 0.
  const now = ['va', 'new', 'vc', null, 've'];

  it('answers per entry, in order', async () => {
    const asked: Array<Array<string | Buffer>> = [];
    const removed = await unlinkStillHolding(entries, now, async (keys) => {
      asked.push(keys);
      return keys.map((k) => (k === 'c' ? 0 : 1));
    });
    expect(asked).toEqual([['a', 'c', 'e']]);
    expect(removed).toEqual([1, 0, 0, 0, 1]);
  });

  it('a failure midway carries its answers per entry (it had them per key UNLINKed, which verify --fix mapped onto the wrong entries)', async () => {
    const err = await unlinkStillHolding(entries, now, async () => {
      // a and c answered (a master lost before e's): per UNLINKed key.
      throw new BackendUnavailableError('redis', 'a master was lost', { reason: 'unreachable', partial: [1, 1, null] });
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as BackendUnavailableError).partial).toEqual([1, 0, 1, 0, null]);
    expect((err as BackendUnavailableError).reason).toBe('unreachable');
  });
});
