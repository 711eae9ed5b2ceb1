import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyText } from '../../src/keys/key-text.js';

/** keyText read back: `\\` a backslash, `\xNN` that byte, any other character its UTF-8. */
function bytesOf(text: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < text.length; ) {
    if (text[i] === '\\' && text[i + 1] === '\\') {
      out.push(Buffer.from('\\'));
      i += 2;
    } else if (text[i] === '\\' && text[i + 1] === 'x') {
      out.push(Buffer.from([Number.parseInt(text.slice(i + 2, i + 4), 16)]));
      i += 4;
    } else {
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out.push(Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  return Buffer.concat(out);
}

describe('keyText: a key\'s bytes shown one way only (a key that is not UTF-8 was shown with U+FFFD, like no key)', () => {
  it('reads back to the same bytes, whatever they are: two keys are never shown alike', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const key = Buffer.from(bytes);
        expect(bytesOf(keyText(key)).equals(key)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back from keys built of the awkward pieces too (a byte-order mark, backslashes, cut sequences, overlongs)', () => {
    const piece = fc.oneof(
      fc.constantFrom([0xef, 0xbb, 0xbf], [0x5c], [0x5c, 0x78, 0x66, 0x66], [0xff], [0xe2, 0x82], [0xe2, 0x82, 0xac], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98, 0x80]),
      fc.uint8Array({ maxLength: 3 }).map((a) => [...a]),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const key = Buffer.from(pieces.flat());
        expect(bytesOf(keyText(key)).equals(key)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('a UTF-8 key without a backslash is shown as it reads', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !s.includes('\\')), (s) => {
        expect(keyText(Buffer.from(s, 'utf8'))).toBe(s);
      }),
    );
  });

  it('examples: bytes that are not UTF-8, a typed \\xff, overlong and surrogate encodings', () => {
    expect(keyText(Buffer.from([...Buffer.from('products:acme:'), 0xff, 0xfe]))).toBe('products:acme:\\xff\\xfe');
    expect(keyText(Buffer.from('products:acme:\\xff\\xfe'))).toBe('products:acme:\\\\xff\\\\xfe');
    expect(keyText(Buffer.from('tenant_config:café'))).toBe('tenant_config:café');
    expect(keyText(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    expect(keyText(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(keyText(Buffer.from([0xe2, 0x82]))).toBe('\\xe2\\x82');
    // A byte-order mark is a character of the key (it was dropped: two keys read alike).
    expect(keyText(Buffer.from([0xef, 0xbb, 0xbf, 0x41]))).toBe('\uFEFFA');
    expect(keyText(Buffer.from([0x41, 0xef, 0xbb, 0xbf]))).toBe('A\uFEFF');
  });
});
