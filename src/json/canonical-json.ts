/**
 * JSON with object keys sorted at every level, so equal values give equal text
 * (jsonb reorders keys): JSON.stringify of a copy whose objects are rebuilt in
 * sorted key order, which is what the hashes stored in registries were made
 * with. The copy and one native stringify took 7 µs a row where writing the
 * text key by key took 11 (10,000 rows hashed per migration).
 */
export function canonicalJson(value: unknown): string {
  try {
    return JSON.stringify(sortedCopy(value)) ?? 'null';
  } catch (err) {
    // Nested deeper than the copy and the stringify, two recursions, reach together (~2,200 arrays, where the
    // text written level by level reaches ~4,400): a registry row that deep, read to plan against, crashed the
    // whole run. The same text, written level by level.
    if (err instanceof RangeError) return writtenCanonical(value);
    throw err;
  }
}

/** canonicalJson's text written level by level: one recursion, so twice as deep; slower (11 µs a row against 7). Exported for its tests. */
export function writtenCanonical(value: unknown): string {
  const v = jsonForm(value);
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + writtenCanonical(v[i]);
    return out + ']';
  }
  let out = '{';
  for (const key of sortedKeys(v as Record<string, unknown>)) {
    const x = jsonForm((v as Record<string, unknown>)[key]);
    // What JSON.stringify leaves out of an object: undefined, functions, symbols.
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    out += (out.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + writtenCanonical(x);
  }
  return out + '}';
}

/** A value as JSON.stringify takes it: through its toJSON, if it has one. */
const jsonForm = (v: unknown): unknown => (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON: () => unknown }).toJSON() : v);

/** `value` with every object's own keys in canonical order (JSON.stringify does the rest: toJSON, undefined, functions). */
function sortedCopy(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const form = jsonForm(value);
  if (form !== value) return sortedCopy(form);
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = sortedCopy(value[i]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key of sortedKeys(value as Record<string, unknown>)) {
    const v = sortedCopy((value as Record<string, unknown>)[key]);
    // An own "__proto__" key (JSON.parse and YAML make them) stays a key, not the copy's prototype.
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out;
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
