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
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (i) out += ',';
      out += v === undefined || typeof v === 'function' ? 'null' : canonicalJson(v);
    }
    return out + ']';
  }
  let out = '{';
  let first = true;
  for (const key of sortedKeys(value as Record<string, unknown>)) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || typeof v === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += quotedKey(key) + ':' + (typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v));
  }
  return out + '}';
}

/**
 * Keys as JSON strings, remembered: the same few dozen names recur in every
 * row of a migration (10,000 rows, ~30 keys each). Bounded, so a stream of
 * distinct keys costs only the lookup.
 */
const quotedKeys = new Map<string, string>();
function quotedKey(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quotedKeys.size < 10_000) quotedKeys.set(key, q);
  }
  return q;
}

/** An array-index-like key ("0", "17"): JavaScript objects enumerate these first, in numeric order. */
const INDEX_KEY = /^(?:0|[1-9]\d{0,9})$/;
const isIndexKey = (k: string) => {
  const c = k.charCodeAt(0);
  return c >= 48 && c <= 57 && INDEX_KEY.test(k) && Number(k) < 4294967295;
};

/**
 * The keys in the order the hashes already stored in registries were made
 * with (JSON.stringify of an object rebuilt from sorted entries): index-like
 * keys first in numeric order, then the others sorted. Object.keys already
 * lists index keys first, in numeric order, so only the rest is sorted.
 */
function sortedKeys(obj: Record<string, unknown>): string[] {
  const keys = Object.keys(obj);
  let index = 0;
  while (index < keys.length && isIndexKey(keys[index])) index++;
  if (index === 0) {
    // Often already in order (a file written sorted, a row rebuilt): one pass instead of a sort.
    for (let i = 1; i < keys.length; i++) if (keys[i - 1] > keys[i]) return keys.sort();
    return keys;
  }
  return index === keys.length ? keys : [...keys.slice(0, index), ...keys.slice(index).sort()];
}
