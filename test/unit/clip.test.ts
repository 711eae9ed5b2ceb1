import { describe, expect, it } from 'vitest';
import { clipLongRuns } from '../../src/redact.js';

describe('clipLongRuns: a huge argument quoted back in a message is cut', () => {
  it('counts the value itself, not the quotes around it', () => {
    expect(clipLongRuns(`value '${'a'.repeat(129)}' is invalid`, 120)).toBe(`value '${'a'.repeat(119)}… (129 characters) is invalid`);
  });

  it('cuts a run with quotes inside it too (every piece between the quotes is short, the run is not)', () => {
    const huge = `'${"a'".repeat(50_000)}'`;
    const out = clipLongRuns(`value ${huge} is invalid`, 120);
    expect(out.length).toBeLessThan(200);
    expect(out).toMatch(/… \(\d+ characters\) is invalid$/);
  });
});
