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
