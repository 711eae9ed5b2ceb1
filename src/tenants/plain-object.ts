/** A YAML/JSON mapping (not null, not a list): the shape every config walk checks for. */
export const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Sets `out[key]` on a copy being built. A key named `__proto__` (JSON.parse
 * and js-yaml make it an own key) stays an own property: a plain assignment
 * would set the copy's prototype instead and lose the key.
 */
export function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/** A copy of a nested value (maps and lists copied, own keys kept) with every other value given to `leaf`. */
export function mapLeaves(value: unknown, leaf: (v: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((x) => mapLeaves(x, leaf));
  if (!isMap(value)) return leaf(value);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value)) setOwn(out, k, mapLeaves(x, leaf));
  return out;
}

/** Every string of a nested value (maps' values and lists' items), depth first. */
export function* stringsIn(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const x of value) yield* stringsIn(x);
  else if (isMap(value)) for (const x of Object.values(value)) yield* stringsIn(x);
}
