/**
 * A Redis key's bytes as text to show, one way only: UTF-8 as it reads, every byte that is not part of
 * valid UTF-8 as `\xNN`, and a backslash as `\\` (so `\xff` typed into a key is never taken for the byte
 * 0xff). Decoded plainly, a key that is not UTF-8 was shown with U+FFFD in place of its bytes: a name no
 * key has, and two different keys alike.
 */
// ignoreBOM: a U+FEFF is a character of the key (left out, `\uFEFFacme` read as `acme`).
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function keyText(key: Buffer): string {
  let plain = true;
  for (const b of key) {
    if (b >= 0x80 || b === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return key.toString('latin1');
  let out = '';
  for (let i = 0; i < key.length; ) {
    const b = key[i];
    if (b < 0x80) {
      out += b === 0x5c ? '\\\\' : String.fromCharCode(b);
      i++;
      continue;
    }
    const n = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    const text = n && i + n <= key.length ? decoded(key.subarray(i, i + n)) : undefined;
    if (text === undefined) {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += text;
      i += n;
    }
  }
  return out;
}

/** A key kept as a binary string (one char per byte, as sweeps give them), as keyText shows it. */
export const binaryKeyText = (key: string): string => keyText(Buffer.from(key, 'latin1'));

function decoded(bytes: Buffer): string | undefined {
  try {
    return fatal.decode(bytes);
  } catch {
    return undefined;
  }
}
