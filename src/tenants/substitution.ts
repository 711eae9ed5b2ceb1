import { setOwn } from './plain-object.js';

/** `${VAR}` or `${VAR:-default}`; VAR is a shell-style name. */
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const SOLE_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

export interface SubstitutionResult<T> {
  value: T;
  /** Variables referenced without a default and not set (they became ""). */
  unset: string[];
}

/** The variable of a string that is exactly one reference, else undefined. */
export function soleReference(value: unknown): { name: string; fallback?: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const m = SOLE_REFERENCE.exec(value);
  return m ? { name: m[1], fallback: m[2] } : undefined;
}

/** Replaces the references in one string, in a single pass (values are never re-expanded). */
export function substituteString(text: string, env: NodeJS.ProcessEnv, unset?: Set<string>): string {
  return text.replace(REFERENCE, (_m, name: string, fallback: string | undefined) => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    unset?.add(name);
    return '';
  });
}

/** The variables a string's references name, in order (repeats kept once). */
export function referencedVariables(text: string): string[] {
  if (!text.includes('${')) return [];
  const names = new Set<string>();
  for (const m of text.matchAll(REFERENCE)) names.add(m[1]);
  return [...names];
}

/**
 * Which variables substitute() put into which slot of the maps and lists it
 * made: output masks a value taken from a variable named like a secret
 * (`webhook: ${SLACK_BOT_TOKEN}`), whatever its key is called.
 */
const substitutedFrom = new WeakMap<object, Map<string | number, string[]>>();

/** The variables whose values substitute() put into `container[slot]`, if any. */
export function variablesAt(container: object, slot: string | number): readonly string[] | undefined {
  return substitutedFrom.get(container)?.get(slot);
}

function noteVariables(container: object, slot: string | number, text: string): void {
  let slots = substitutedFrom.get(container);
  if (!slots) substitutedFrom.set(container, (slots = new Map()));
  slots.set(slot, referencedVariables(text));
}

/**
 * Substitutes `${VAR}` / `${VAR:-default}` in every string of a nested value
 * (maps and lists); keys and non-strings are kept as they are. An unset
 * variable without a default becomes "", as in a shell, and is reported.
 */
export function substitute<T>(value: T, env: NodeJS.ProcessEnv = process.env): SubstitutionResult<T> {
  let unset: Set<string> | undefined;
  // The result is always a fresh copy of every map and list (callers get
  // parts of a shared cache parse, and may change what they are given).
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.includes('${') ? substituteString(v, env, (unset ??= new Set())) : v;
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      const list = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        list[i] = walk(v[i]);
        if (typeof v[i] === 'string' && (v[i] as string).includes('${')) noteVariables(list, i, v[i] as string);
      }
      return list;
    }
    const out: Record<string, unknown> = {};
    const keys = Object.keys(v);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const x = (v as Record<string, unknown>)[k];
      const y = walk(x);
      setOwn(out, k, y);
      if (typeof x === 'string' && x.includes('${')) noteVariables(out, k, x);
    }
    return out;
  };
  return { value: walk(value) as T, unset: unset ? [...unset].sort() : [] };
}
