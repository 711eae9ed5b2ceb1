import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so equal values give equal text
 * (jsonb reorders keys). Written directly rather than through a JSON.stringify
 * replacer that rebuilds every object: a migration hashes every row twice.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // undefined (and functions) have no JSON form: as JSON.stringify does in an object, they vanish; at the top, "null".
    return JSON.stringify(value) ?? 'null';
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined || typeof v === 'function' ? 'null' : canonicalJson(v))).join(',')}]`;
  const parts: string[] = [];
  for (const key of sortedKeys(value as Record<string, unknown>)) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || typeof v === 'function') continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** An array-index-like key ("0", "17"): JavaScript objects enumerate these first, in numeric order. */
const INDEX_KEY = /^(?:0|[1-9]\d{0,9})$/;

/**
 * The keys in the order the hashes already stored in registries were made
 * with (JSON.stringify of an object rebuilt from sorted entries): index-like
 * keys first in numeric order (that is how objects enumerate them), then the
 * others sorted.
 */
function sortedKeys(obj: Record<string, unknown>): string[] {
  const keys = Object.keys(obj).sort();
  const index = keys.filter((k) => INDEX_KEY.test(k) && Number(k) < 4294967295).sort((a, b) => Number(a) - Number(b));
  return index.length ? [...index, ...keys.filter((k) => !index.includes(k))] : keys;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
