import { maskUrlsIn } from '../redact.js';
import { referencedVariables, soleReference, variablesAt } from './substitution.js';
import { isMap, mapLeaves, setOwn, stringsIn } from './plain-object.js';

/** Key names whose values are secrets (DESIGN.md); a key ending in `_<one of them>` is one too. */
export const SECRET_KEY_NAMES = [
  'api_key', 'password', 'secret', 'token', 'service_key', 'anon_key', 'private_key', 'access_key',
] as const;

const SECRET_KEY = new RegExp(`^(?:.*_)?(?:${SECRET_KEY_NAMES.join('|')})$`, 'i');

/** Last letters of the names above (ASCII, either case): a cheap test that rules out most keys before the RegExp. */
const LAST_LETTERS = new Set(SECRET_KEY_NAMES.map((n) => n.charCodeAt(n.length - 1)));

export function isSecretKey(key: string): boolean {
  // `| 0x20` lower-cases an ASCII letter and leaves every code that could not match as one that does not.
  return LAST_LETTERS.has(key.charCodeAt(key.length - 1) | 0x20) && SECRET_KEY.test(key);
}

/**
 * Key names people give secrets that the services' rule (SECRET_KEY_NAMES) does not name: `secret_key`,
 * `stripe_secret_key`, `apiKey`, `client-secret`, `passwd`, `credentials`, `signing_key`... Never stripped
 * (the services store and read them as they are: stripping would break them), but said when they hold a
 * literal, and masked in output.
 */
// Plurals too (api_keys, secrets, passwords: a probe), but not `tokens` (max_tokens is a counter); and an
// HTTP Authorization value ("Bearer …").
const LOOKS_SECRET = /(?:secrets?|secretkeys?|apikeys?|passw(?:or)?ds?|.pwd|token|credentials?|privatekeys?|signingkeys?|encryptionkeys?|accesskeys?|clientsecrets?|authorization)$/;

export function looksLikeSecretKey(key: string): boolean {
  return !isSecretKey(key) && LOOKS_SECRET.test(key.toLowerCase().replace(/[-_.\s]/g, ''));
}

/** The fetch/CORS modes a `credentials` key holds in ordinary configuration: no secret. */
const CREDENTIALS_MODES = new Set(['include', 'omit', 'same-origin']);

/** A value under a secret-looking key that may be a secret: text or a number (not a fetch/CORS mode). */
function maskableUnder(key: string, v: unknown): boolean {
  if (typeof v === 'number') return true;
  if (typeof v !== 'string' || v === '') return false;
  return !CREDENTIALS_MODES.has(v) || !/^credentials?$/i.test(key);
}

/** ...and one kept as written, not a `${VAR}` reference (which names where the secret lives). */
const literalUnder = (key: string, v: unknown) => maskableUnder(key, v) && soleReference(v) === undefined;

/** A URL with a literal password in its user-info (`postgres://u:pw@h`): the password, not a `${VAR}`. */
const URL_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^\s/@:?#]*:([^\s/@?#]+)@/i;

/** Where a config keeps what looks like a secret as written (see looksLikeSecretKey), or a URL's password. */
export interface ExposedSecret {
  path: string[];
  kind: 'looks-secret' | 'url-password';
}

/** Literal values under secret-looking keys, and URLs with literal passwords, outside the secrets the rule strips. */
export function exposedSecrets(config: unknown): ExposedSecret[] {
  const out: ExposedSecret[] = [];
  const walk = (v: unknown, path: string[]) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, String(i)]));
    else if (isMap(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (isSecretKey(k)) continue;
        const looks = looksLikeSecretKey(k);
        if (looks && literalUnder(k, x)) out.push({ path: [...path, k], kind: 'looks-secret' });
        else if (looks && Array.isArray(x)) x.forEach((y, i) => (literalUnder(k, y) ? out.push({ path: [...path, k, String(i)], kind: 'looks-secret' }) : walk(y, [...path, k, String(i)])));
        else walk(x, [...path, k]);
      }
    } else if (typeof v === 'string' && v.includes('://')) {
      const pw = URL_PASSWORD.exec(v)?.[1];
      if (pw !== undefined && !pw.includes('${')) out.push({ path, kind: 'url-password' });
    }
  };
  walk(config, []);
  return out;
}

/**
 * A cheap look at a file's text: could it hold anything exposedSecrets finds? (Most files cannot: the
 * services' own `api_key` / `access_key` do not count, nearly every tenant file has one.)
 */
export const MAY_EXPOSE = /secret|passw|pwd|token|credential|private|signing|encryption|api[-.\s]?key|access[-.\s]?key|[-.](?:api|access)_key|:\/\/[^\s/@]*:[^\s/@]*@/i;

export interface StrippedSecret {
  /** Path of the key, e.g. ["email", "smtp", "password"]. */
  path: string[];
  /** What happened: a literal value removed, or the literal default of a reference dropped. */
  kind: 'literal-removed' | 'default-dropped';
}

/**
 * Removes secret values from a config before it is stored or cached. A value
 * that is exactly one `${VAR}` reference is kept (it names where the secret
 * lives, not the secret); a literal is removed; a reference's literal default
 * (`${VAR:-s3cret}`) is dropped, keeping `${VAR}`.
 */
export function stripSecrets<T>(config: T): { config: T; stripped: StrippedSecret[] } {
  const stripped: StrippedSecret[] = [];
  // One path stack for the whole walk, copied only for a secret found.
  const path: string[] = [];
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      return v.map((x, i) => {
        path.push(String(i));
        const r = walk(x);
        path.pop();
        return r;
      });
    }
    if (!v || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const secret = isSecretKey(k);
      if (!secret) {
        path.push(k);
        setOwn(out, k, walk(x));
        path.pop();
        continue;
      }
      if (x === null || x === undefined || x === '') {
        setOwn(out, k, x);
        continue;
      }
      const ref = soleReference(x);
      if (ref && ref.fallback === undefined) setOwn(out, k, x);
      else if (ref) {
        setOwn(out, k, `\${${ref.name}}`);
        if (ref.fallback !== '') stripped.push({ path: [...path, k], kind: 'default-dropped' });
      } else stripped.push({ path: [...path, k], kind: 'literal-removed' });
    }
    return out;
  };
  return { config: walk(config) as T, stripped };
}

/** Words of a variable's name that say it holds a credential (`OPENAI_API_KEY_PROD`, `SECRET_KEY_BASE`, `GITHUB_PAT`). */
const CREDENTIAL_WORDS = new Set(['KEY', 'KEYS', 'SECRET', 'SECRETS', 'TOKEN', 'TOKENS', 'PASSWORD', 'PASSWORDS', 'PASSWD', 'PASS', 'PWD', 'DSN', 'PAT', 'CREDENTIAL', 'CREDENTIALS']);
/** Names with such a word that hold no credential: a key's id or a name for one, public keys, data-model keys. */
const NOT_A_CREDENTIAL = /(?:_(?:ID|PREFIX|SUFFIX|FILE|PATH|DIR|DIRECTORY|NAME|HEADER|TTL|LENGTH|SIZE|REGION|ISSUER|ALGORITHM|DAYS)|(?:^|_)(?:PUBLIC|PUBLISHABLE|SITE|SORT|PARTITION|PRIMARY|CACHE|IDEMPOTENCY|FOREIGN|ROUTING)_KEYS?|^(?:OLD|INIT_|ORIGINAL_)?PWD)$/i;

/**
 * A variable named like a secret: a word of its name is one of CREDENTIAL_WORDS (`SLACK_BOT_TOKEN`,
 * `SUPABASE_SERVICE_ROLE_KEY`, `SENTRY_DSN`, `BASIC_AUTH`), and it is none of NOT_A_CREDENTIAL
 * (`AWS_ACCESS_KEY_ID`, `CACHE_KEY_PREFIX`, `STRIPE_PUBLISHABLE_KEY`, `SORT_KEY`): its value is masked in
 * output, wherever it was put.
 */
export function isSecretVariable(name: string): boolean {
  if (NOT_A_CREDENTIAL.test(name)) return false;
  const words = name.toUpperCase().split(/[_.-]/);
  return words.some((w) => CREDENTIAL_WORDS.has(w)) || /(?:^|_)BASIC_AUTH$/i.test(name) || isSecretKey(name) || looksLikeSecretKey(name);
}

/**
 * `value` with every part whose stored form (`stored`, the same shape before `${VAR}` substitution) takes a
 * secret variable's value replaced by `****`, walking both together: a copy made after substitution (verify's
 * comparable form) has lost substitute()'s marks, and a difference of a whole map or list showed the value.
 */
export function maskFromStored(value: unknown, stored: unknown): unknown {
  if (referencesSecretVariable(stored)) return maskAll(value);
  if (Array.isArray(value) && Array.isArray(stored)) return value.map((x, i) => maskFromStored(x, stored[i]));
  if (isMap(value) && isMap(stored)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(value)) setOwn(out, k, maskFromStored(x, stored[k]));
    return out;
  }
  // Of another shape here (a map where the stored form has a list): its parts cannot be matched to the stored
  // form's, so a value is masked whole when that form references a secret variable anywhere below.
  return holdsSecretReference(stored) ? maskAll(value) : value;
}

/** Whether a stored form references a secret-named variable anywhere. */
function holdsSecretReference(stored: unknown): boolean {
  for (const text of stringsIn(stored)) if (referencesSecretVariable(text)) return true;
  return false;
}

/** Whether a stored string takes a secret variable's value (`Bearer ${API_TOKEN}`): shown masked whatever its key. */
export function referencesSecretVariable(text: unknown): boolean {
  return typeof text === 'string' && referencedVariables(text).some(isSecretVariable);
}

/**
 * Masks every secret value of a config (for output without --show-secrets):
 * the values of secret keys, a string substitute() filled from a variable
 * named like a secret (`webhook: ${SLACK_BOT_TOKEN}`), and the credentials of
 * any URL inside another string (`postgres://app:${DB_PASSWORD}@db/app`
 * resolved shows `app:****@`).
 */
export function maskSecrets<T>(config: T): T {
  const fromSecret = (container: object, slot: string | number, x: unknown) =>
    typeof x === 'string' && x !== '' && !!variablesAt(container, slot)?.some(isSecretVariable);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => (fromSecret(v, i, x) ? '****' : walk(x)));
    if (typeof v === 'string') return v.includes('://') ? maskUrlsIn(v) : v;
    if (!v || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      // Under a secret name (the services' or a look-alike): text, a number, or a list's items.
      if (isSecretKey(k) || looksLikeSecretKey(k)) setOwn(out, k, Array.isArray(x) ? x.map((y) => (maskableUnder(k, y) ? '****' : walk(y))) : maskableUnder(k, x) ? '****' : walk(x));
      else setOwn(out, k, fromSecret(v, k, x) ? '****' : walk(x));
    }
    return out;
  };
  return walk(config) as T;
}

/**
 * `acme-eu` -> `ACME_EU`: the prefix of a tenant's own variables, as the
 * services make it (DESIGN.md: upper-cased, `-` turned into `_`, nothing
 * else). `acme.eu` stays `ACME.EU`: turning `.` into `_` too would read
 * `acme-eu`'s variables for it.
 */
export function tenantEnvPrefix(tenant: string): string {
  return tenant.toUpperCase().replace(/-/g, '_');
}

/**
 * Where the services look for a secret that a registry row does not hold:
 * the tenant-scoped variable first, then the shared one (DESIGN.md, "Registry").
 */
export const SECRET_ENV_FALLBACKS: ReadonlyArray<{ path: string[]; scoped?: string; shared: string }> = [
  { path: ['infrastructure', 'vapi', 'api_key'], scoped: 'VAPI_API_KEY', shared: 'VAPI_API_KEY' },
  { path: ['email', 'sendgrid', 'api_key'], scoped: 'SENDGRID_API_KEY', shared: 'SENDGRID_API_KEY' },
  { path: ['email', 'smtp', 'password'], scoped: 'SMTP_PASSWORD', shared: 'SMTP_PASSWORD' },
  { path: ['infrastructure', 'openai', 'api_key'], shared: 'OPENAI_API_KEY' },
  { path: ['infrastructure', 'supabase', 'anon_key'], shared: 'SUPABASE_ANON_KEY' },
  { path: ['infrastructure', 'supabase', 'service_key'], shared: 'SUPABASE_SERVICE_KEY' },
];

/**
 * Fills secrets absent from a config from the environment, as the services do:
 * only inside a block the config already has (a tenant without `email.smtp`
 * gets no SMTP password). Mutates and returns `config`.
 */
export function resolveAbsentSecrets(
  config: Record<string, unknown>,
  tenant: string,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  // Runs on every cached read: walks the two-level block paths without allocating.
  for (let i = 0; i < SECRET_ENV_FALLBACKS.length; i++) {
    const { path, scoped, shared } = SECRET_ENV_FALLBACKS[i];
    let parent: unknown = config;
    for (let j = 0; j < path.length - 1 && isMap(parent); j++) parent = parent[path[j]];
    if (!isMap(parent)) continue;
    const block = parent;
    const key = path[path.length - 1];
    if (block[key] !== undefined && block[key] !== null && block[key] !== '') continue;
    const value = (scoped && env[`${tenantEnvPrefix(tenant)}_${scoped}`]) || env[shared];
    if (value) block[key] = value;
  }
  return config;
}

/**
 * Paths of secrets a resolved config still lacks: a secret key whose value is
 * empty or an unexpanded reference, or a block the services fill from the
 * environment (SECRET_ENV_FALLBACKS) that has no value.
 */
export function unresolvedSecrets(config: Record<string, unknown>): string[] {
  const out = new Set<string>();
  const walk = (v: unknown, path: string[]) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, String(i)]));
    else if (isMap(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (isSecretKey(k) && (x === '' || (typeof x === 'string' && soleReference(x)))) out.add([...path, k].join('.'));
        else walk(x, [...path, k]);
      }
    }
  };
  walk(config, []);
  for (const { path } of SECRET_ENV_FALLBACKS) {
    let parent: unknown = config;
    for (const seg of path.slice(0, -1)) parent = isMap(parent) ? parent[seg] : undefined;
    const value = isMap(parent) ? parent[path[path.length - 1]] : undefined;
    if (isMap(parent) && (value === undefined || value === null || value === '')) out.add(path.join('.'));
  }
  return [...out];
}

/** Every string and number of a value as `****` (a part whose stored form is a secret reference, whatever its shape now). */
function maskAll(value: unknown): unknown {
  return mapLeaves(value, (x) => ((typeof x === 'string' && x !== '') || typeof x === 'number' ? '****' : x));
}

/**
 * The values of the secret-named variables a stored config references, as `env` gives them: a cached entry
 * holds them resolved, at any place (its shape may differ from the stored form it was built from).
 */
export function referencedSecretValues(stored: unknown, env: NodeJS.ProcessEnv): string[] {
  const names = new Set<string>();
  for (const text of stringsIn(stored)) for (const n of referencedVariables(text)) if (isSecretVariable(n)) names.add(n);
  return [...names].map((n) => env[n]).filter((v): v is string => typeof v === 'string' && v !== '');
}

/**
 * A cache hit as output shows it. The services cache a config with `${VAR}` resolved from their environment,
 * so the entry carries no trace of where a value came from (`webhook: ${SLACK_BOT_TOKEN}` cached as the token
 * was printed): besides maskSecrets, each part whose place in the tenant's stored form (`stored`, its YAML
 * config) references a secret-named variable is masked whole, whatever its shape or type now, and any
 * string holding the value this environment gives such a referenced variable (the entry's shape may differ
 * from the file's). Only variables the stored form references: masking every secret-named variable's value
 * (PWD, POSTGRES_PASSWORD=postgres) hid ordinary values, and verify's drift.
 */
export function maskCachedConfig(config: Record<string, unknown>, stored: unknown, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const masked = maskSecrets(config);
  if (stored === undefined) return masked;
  return maskValues(maskFromStored(masked, stored), referencedSecretValues(stored, env)) as Record<string, unknown>;
}

/** Every string holding one of `values` (one of 4 characters or more anywhere in it; a shorter one only whole) as `****`. */
export function maskValues(value: unknown, values: readonly string[]): unknown {
  if (!values.length) return value;
  return mapLeaves(value, (x) => (typeof x === 'string' && values.some((v) => x === v || (v.length >= 4 && x.includes(v))) ? '****' : x));
}
