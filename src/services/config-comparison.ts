import { isSecretKey, looksLikeSecretKey, maskFromStored, maskSecrets, maskValues, referencesSecretVariable } from '../tenants/secrets.js';
import { isMap, setOwn } from '../tenants/plain-object.js';
import { canonicalInstant, servicesInstant, type PermissionRecord } from '../permissions/model.js';
import { bigIntegersOfText, type WholeFloat } from '../json/whole-floats.js';

/** One field that differs between a cached entry and what the registry and YAML give now. */
export interface FieldDiff {
  /** Dotted path (`email.smtp.host`, `features[2]`). */
  field: string;
  /** The cached value; absent when the cache lacks the field. */
  cached?: unknown;
  /** The value now; absent when the field is gone. */
  current?: unknown;
}

/**
 * A config as it is compared: `_meta` dropped (it says where a copy came
 * from, not what it holds) and every secret-named key left out on both sides.
 * The services cache configs with their secrets resolved from *their*
 * environment, which this process may not have (or have differently): a
 * secret can neither be compared nor shown, so it never makes an entry stale.
 */
export function comparableConfig(config: Record<string, unknown>): Record<string, unknown> {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!isMap(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!isSecretKey(k)) setOwn(out, k, walk(x));
    return out;
  };
  const { _meta: _m, ...rest } = config;
  return walk(rest) as Record<string, unknown>;
}

/**
 * The integers past 2^53 where a cached entry's text and the registry row's config (`stored`, both as
 * written, every digit) differ: JSON here reads both rounded, so two that round alike compared equal (a
 * cached 12345678901234568 against a row's 12345678901234567), where the services, whose reader keeps
 * every digit, write the row's (a cached one written as a float, `1.2345678901234568e+16`, differs from any integer
 * too). What comparableConfig leaves out (`_meta`, secret keys) is left out here;
 * a secret-looking key's, or a secret variable's value, is masked. The digits are shown in a string (a JSON
 * number would round them again). `already`: the fields found otherwise (not listed twice).
 */
export function diffBigIntegers(cachedText: string, stored: readonly WholeFloat[], cachedValue: unknown, already: readonly FieldDiff[], secretValues: readonly string[] = []): FieldDiff[] {
  if (!stored.length) return [];
  const rowDigits = new Map(stored.map((n) => [JSON.stringify(n.path), BigInt(n.written)]));
  const out: FieldDiff[] = [];
  // Cached ones written as floats too (`1.2345678901234568e+16`): a float to the services' reader, never the integer they write.
  for (const n of bigIntegersOfText(cachedText, true)) {
    const row = rowDigits.get(JSON.stringify(n.path));
    const cached = /[.eE]/.test(n.written) ? n.written : String(BigInt(n.written));
    if (row === undefined || cached === String(row) || n.path[0] === '_meta' || n.path.some(isSecretKey)) continue;
    const field = fieldName(n.path, cachedValue);
    if (already.some((f) => f.field === field || field.startsWith(`${f.field}.`) || field.startsWith(`${f.field}[`))) continue;
    const masked = n.path.some(looksLikeSecretKey) || secretValues.includes(cached) || secretValues.includes(String(row));
    out.push({ field, cached: masked ? '****' : cached, current: masked ? '****' : String(row) });
  }
  return out;
}

/** A key path as diffConfigs names it (`a.b`, `list[2]`), array positions told from keys by the value walked. */
function fieldName(path: readonly string[], value: unknown): string {
  let name = '';
  let node = value;
  for (const k of path) {
    if (Array.isArray(node)) {
      name += `[${k}]`;
      node = node[Number(k)];
    } else {
      name += name ? `.${k}` : k;
      node = isMap(node) ? node[k] : undefined;
    }
  }
  return name;
}

/**
 * The fields where `cached` differs from `current` (both comparable configs).
 * A cached string equal to the stored form's `${VAR}` reference at the same
 * place is not a difference: the library caches configs unresolved (it
 * resolves on read), the services resolved. At most `max` fields are listed.
 */
export function diffConfigs(cached: unknown, current: unknown, stored: unknown, max = 50, secretValues: readonly string[] = []): FieldDiff[] {
  // Shown: masked where the stored form references a secret variable, and wherever a secret variable's value
  // appears (a cached entry's shape may differ from the stored form: a block since removed from YAML).
  const shown = (v: unknown, s: unknown) => maskSecrets(maskValues(maskFromStored(v, s), secretValues));
  const out: FieldDiff[] = [];
  const walk = (a: unknown, b: unknown, s: unknown, path: string) => {
    if (out.length >= max) return;
    if (isMap(a) && isMap(b)) {
      const sm = isMap(s) ? s : {};
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        const at = path ? `${path}.${k}` : k;
        // A secret-looking value is compared (it is stored as written) but never shown; a cached `${VAR}` equal
        // to the stored reference is no difference (the library caches that form), as below.
        const reference = typeof sm[k] === 'string' && (sm[k] as string).includes('${') && a[k] === sm[k];
        if (looksLikeSecretKey(k) && !reference && !jsonEqual(a[k], b[k])) {
          if (out.length < max) out.push({ field: at, ...(a[k] === undefined ? {} : { cached: '****' }), ...(b[k] === undefined ? {} : { current: '****' }) });
          continue;
        }
        walk(a[k], b[k], sm[k], at);
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((x, i) => walk(x, b[i], Array.isArray(s) ? s[i] : undefined, `${path}[${i}]`));
      return;
    }
    if (jsonEqual(a, b)) return;
    if (typeof s === 'string' && s.includes('${') && a === s) return;
    // A value filled from a secret-named variable (`webhook: ${SLACK_BOT_TOKEN}`) is never shown, cached or current.
    if (referencesSecretVariable(s)) {
      out.push({ field: path || '(whole entry)', ...(a === undefined ? {} : { cached: '****' }), ...(b === undefined ? {} : { current: '****' }) });
      return;
    }
    // Shown masked: secret keys are gone already, but a URL in any value may carry credentials, and a map or
    // list may hold values filled from secret variables (masked where the stored form says so).
    out.push({ field: path || '(whole entry)', ...(a === undefined ? {} : { cached: shown(a, s) }), ...(b === undefined ? {} : { current: shown(b, s) }) });
  };
  walk(cached, current, stored, '');
  return out;
}

/** The fields of a cached permission record that differ from the one computed now (the services' record shape). */
export function diffPermissionRecords(cached: PermissionRecord, current: PermissionRecord): FieldDiff[] {
  const out: FieldDiff[] = [];
  const features = (r: PermissionRecord) => [...new Set(r.granted_features)].sort();
  if (!jsonEqual(features(cached), features(current))) out.push({ field: 'granted_features', cached: cached.granted_features, current: current.granted_features });
  for (const f of ['tier', 'status', 'device_limit'] as const) {
    if (cached[f] !== current[f]) out.push({ field: f, cached: cached[f], current: current[f] });
  }
  // To the second: the services write whole seconds (servicesInstant), a registry may hold a fraction.
  const instant = (v: string | null) => (v === null ? null : servicesInstant(canonicalInstant(v) ?? v));
  if (instant(cached.demo_expires_at) !== instant(current.demo_expires_at)) {
    out.push({ field: 'demo_expires_at', cached: cached.demo_expires_at, current: current.demo_expires_at });
  }
  return out;
}

/** Deep equality of JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}
