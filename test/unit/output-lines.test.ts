import { describe, expect, it } from 'vitest';
import { Output } from '../../src/cli/output.js';

/** A stdout that records each write (piped: not a terminal). */
function recorder() {
  const writes: string[] = [];
  const stream = { isTTY: false, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  return { writes, stream };
}

describe('Output: plain rows are written in chunks, not one write a line', () => {
  it('a 10,000-row table piped: the same text as line by line, in a handful of writes', () => {
    const { writes, stream } = recorder();
    const rows = Array.from({ length: 10_000 }, (_, n) => [`t${n}`, 'tenant', 'create', n % 7 ? '' : 'a\tb\nc']);
    new Output('plain', stream, recorder().stream, {}).table(['item', 'kind', 'action', 'detail'], rows);
    const text = writes.join('');
    const lines = text.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(10_001);
    expect(lines[0]).toBe('item\tkind\taction\tdetail');
    expect(lines[1]).toBe('t0\ttenant\tcreate\ta\\x09b\\x0ac');
    expect(lines[10_000]).toBe('t9999\ttenant\tcreate\t');
    // ~240 KB: about one write per 64 KiB (it was 10,001 writes, one system call each on a pipe).
    expect(writes.length).toBeLessThanOrEqual(Math.ceil(text.length / (64 * 1024)) + 1);
  });

  it('lines() shows control characters in data and writes nothing for no lines', () => {
    const { writes, stream } = recorder();
    const out = new Output('plain', stream, recorder().stream, {});
    out.lines([]);
    expect(writes).toEqual([]);
    out.lines(['tenant_config:a\x1b[31m', 'b']);
    expect(writes).toEqual(['tenant_config:a\\x1b[31m\nb\n']);
  });
});
