import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);
let loaded: typeof Crypto | undefined;

/**
 * node:crypto, loaded on first use. A cache-hit command never hashes
 * anything, and loading the module is ~17M instructions (~3% of such a
 * command, measured with callgrind); every module of the tool goes through
 * here instead of importing it.
 */
export function nodeCrypto(): typeof Crypto {
  return (loaded ??= requireHere('node:crypto') as typeof Crypto);
}

/** sha1 of a text, hex (Redis script SHAs, short fingerprints). */
export const sha1Hex = (text: string): string => nodeCrypto().createHash('sha1').update(text).digest('hex');

/** crypto.hash (Node 20.12+): one call, about half the cost of createHash per small text. */
type OneShot = (algorithm: string, data: string, encoding: 'hex') => string;
let oneShot: OneShot | null | undefined;

/** sha256 of a text, hex (content hashes of every migrated row: the one-shot form where Node has it). */
export function sha256Hex(text: string): string {
  const crypto = nodeCrypto();
  oneShot ??= (crypto as { hash?: OneShot }).hash ?? null;
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex');
}
