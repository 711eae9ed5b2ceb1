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
    // Nested deeper than the copy and the stringify, two recursions, reach together (~2,200 arrays): a
    // registry row that deep, read to plan against, crashed the whole run. The same text, written from a stack.
    if (err instanceof RangeError) return writtenCanonical(value);
    throw err;
  }
}

/** A container being written by writtenCanonical: an array's items, or an object's keys in canonical order. */
type Open = { array: unknown[]; i: number } | { object: Record<string, unknown>; keys: string[]; i: number; written: number };

/**
 * canonicalJson's text written piece by piece from a stack of its own, so no depth is too deep (a registry
 * row nested ~4,400 levels overflowed the recursive writer this replaced: an internal error in the middle of
 * a migration); slower (11 µs a row against 7). Exported for its tests.
 */
export function writtenCanonical(value: unknown): string {
  let out = '';
  const stack: Open[] = [];
  // Where each container was opened (its depth): one met again while the frame there still holds it is inside
  // itself, a cycle (JSON.stringify's TypeError; the stack would grow until the heap ran out, a fatal error no
  // caller can catch). Never deleted on a close: a Set of the open ones, added to and deleted from for every
  // reference to one shared object, took 2.2 s where the writer takes 72 ms (a review).
  const openedAt = new Map<object, number>();
  const holds = (frame: Open | undefined, v: object) => frame !== undefined && ('array' in frame ? frame.array === v : frame.object === v);
  // Writes a scalar whole, or opens a container; `v` has been through jsonForm.
  const write = (v: unknown) => {
    if (v === null || typeof v !== 'object') {
      out += JSON.stringify(v) ?? 'null';
      return;
    }
    const at = openedAt.get(v);
    if (at !== undefined && holds(stack[at], v)) throw new TypeError('Converting circular structure to JSON');
    openedAt.set(v, stack.length);
    if (Array.isArray(v)) {
      out += '[';
      stack.push({ array: v, i: 0 });
    } else {
      out += '{';
      stack.push({ object: v as Record<string, unknown>, keys: sortedKeys(v as Record<string, unknown>), i: 0, written: 0 });
    }
  };
  write(jsonForm(value));
  while (stack.length) {
    const top = stack[stack.length - 1];
    if ('array' in top) {
      if (top.i === top.array.length) {
        out += ']';
        stack.pop();
      } else {
        if (top.i) out += ',';
        write(jsonForm(top.array[top.i++]));
      }
      continue;
    }
    let x: unknown;
    let key: string | undefined;
    while (top.i < top.keys.length) {
      key = top.keys[top.i++];
      x = jsonForm(top.object[key]);
      // What JSON.stringify leaves out of an object: undefined, functions, symbols.
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') key = undefined;
      else break;
    }
    if (key === undefined) {
      out += '}';
      stack.pop();
    } else {
      out += (top.written++ ? ',' : '') + JSON.stringify(key) + ':';
      write(x);
    }
  }
  return out;
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
