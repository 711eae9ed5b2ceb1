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
    out += JSON.stringify(key) + ':' + canonicalJson(v);
  }
  return out + '}';
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
  if (index === 0) return keys.sort();
  return index === keys.length ? keys : [...keys.slice(0, index), ...keys.slice(index).sort()];
}
