import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { clip, decodable, maskUrl } from '../redact.js';

/** Where the tenant registry lives. */
export type RegistrySpec =
  | { kind: 'embedded'; dir: string }
  | { kind: 'memory' }
  | { kind: 'postgres'; url: string }
  | { kind: 'supabase'; url: string; key: string }
  /** A setting that names no usable registry: opening it is that usage error (other commands run). */
  | { kind: 'invalid'; problem: string; fromFlag?: boolean };

/** The default embedded registry directory, relative to the project directory. */
export const DEFAULT_EMBEDDED_DIR = path.join('.tenantctl', 'registry');

/** Whether an embedded registry has been made in `dir` (PostgreSQL's PG_VERSION is there once initdb ran). */
export const embeddedRegistryExists = (dir: string): boolean => existsSync(path.join(dir, 'PG_VERSION'));

/** The service-role key under the names deployments use (DESIGN.md, "Registry"). */
export function supabaseKeyFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  for (const name of KEY_NAMES) if (env[name]) return env[name];
  return undefined;
}

const KEY_NAMES = ['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SERVICE_KEY', 'SUPABASE_KEY'] as const;

/**
 * What a Supabase key that is no service-role key is (SUPABASE_KEY often holds the anon key): a publishable key
 * (`sb_publishable_…`), or a JWT whose `role` claim is `anon` or `authenticated`. Undefined
 * for a service-role or secret key, and for one whose kind cannot be told (let the server judge it). Never the key.
 */
export function publicKeyRole(key: string): string | undefined {
  if (key.startsWith('sb_publishable_')) return 'a publishable key';
  const parts = key.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    const role = claims && typeof claims === 'object' ? (claims as { role?: unknown }).role : undefined;
    // Only the roles Supabase hands the public (a custom or admin role is the server's to judge: a review).
    return role === 'anon' || role === 'authenticated' ? `role ${JSON.stringify(role)}` : undefined;
  } catch {
    return undefined;
  }
}

/** Anything that starts like `scheme:` is read as a URL (except the few local forms below). */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const LOCAL_FORMS = new Set(['file', 'embedded', 'memory']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export interface ParsedRegistry {
  spec: RegistrySpec;
  /** One-time notes for stderr (a driver suffix dropped). */
  notices: string[];
}

/**
 * Parses a registry setting strictly:
 * - `postgres://`, `postgresql://` and `postgresql+<driver>://` (the driver,
 *   as Python services' env files write it, is dropped with a notice) are PostgreSQL;
 * - `https://` is Supabase (`http://` only on loopback, for a local Supabase);
 * - `file:PATH`, `embedded[:PATH]` or a plain path is the embedded registry; `memory:` a throw-away one;
 * - every other scheme, and every malformed URL, is a usage error (password masked): a value that
 *   reads as a connection string without its scheme (`host=h password=pw`, `//u:pw@h/db`,
 *   `user@h:5432/db`, `h:5432/db`) is never taken for a directory.
 * @param base relative paths resolve against it; `embedded` alone is the project's default directory
 * @param where names the setting's origin for messages
 */
export function parseRegistrySpec(value: string, env: NodeJS.ProcessEnv, base: string, where = 'registry', projectDir = base): ParsedRegistry {
  const v = value.trim();
  if (v === '') throw new UsageError(`${where} is empty`, { reason: 'bad-registry' });
  const scheme = SCHEME.exec(v)?.[1].toLowerCase();
  if (scheme && !LOCAL_FORMS.has(scheme)) return { spec: parseRegistryUrl(v, scheme, env, where), notices: driverNotice(v, scheme, where) };
  if (v === 'memory:' || v === 'memory') return { spec: { kind: 'memory' }, notices: [] };
  if (scheme === 'memory') throw new UsageError(`${where}: memory: takes no path`, { reason: 'bad-registry' });
  if (v === 'embedded' || v === 'embedded:') return { spec: { kind: 'embedded', dir: path.resolve(projectDir, DEFAULT_EMBEDDED_DIR) }, notices: [] };
  if (!scheme) refuseConnectionString(v, where);
  const dir = /^file:\/\//i.test(v) ? fileUrlPath(v, where) : v.replace(/^(embedded|file):/i, '');
  if (dir === '') throw new UsageError(`${where}: ${clip(v)} names no directory`, { reason: 'bad-registry' });
  return { spec: { kind: 'embedded', dir: path.resolve(base, dir) }, notices: [] };
}

/**
 * `file://HOST/PATH` read as RFC 8089 reads it: an empty host or localhost is this machine (`file://localhost/p`
 * made the directory /localhost/p), any other host no local directory (a usage error); percent escapes decoded.
 * `file:PATH` (no `//`) stays a plain path, relative or not.
 */
function fileUrlPath(v: string, where: string): string {
  try {
    const dir = fileURLToPath(new URL(`file:${v.slice(5)}`));
    // `file://` alone is the root directory to the URL parser: no registry directory named.
    if (dir !== path.parse(dir).root) return dir;
  } catch {
    // Another host, or no path: said below.
  }
  throw new UsageError(`${where}: ${clip(maskUrl(v), 200)} names no directory of this machine (file:///PATH or file://localhost/PATH)`, { reason: 'bad-registry' });
}

/** A plain path that reads as a connection string without its scheme is a usage error (it was made a directory). */
function refuseConnectionString(v: string, where: string): void {
  const looksLike =
    /(^|\s)[A-Za-z_]+\s*=/.test(v) ? 'a libpq connection string ("host=… dbname=…")'
    // "postgresql//app:pw@db/app": made a local registry in ./postgresql/app:pw@db..., migrated into it, exit 0.
    // (Not a directory postgres/reg: only `//` or a user-info says a URL.)
    : /^(?:postgres(?:ql)?(?:\+\w+)?|https?|file)(?:\/\/[^/]|\/[^/\s]*@)/i.test(v) ? 'a URL missing the ":" after its scheme'
    : v.startsWith('//') || /^[^/\s]*@/.test(v) || /(^|\/)[^/\s]*:[^/\s]*@/.test(v) || /^[^/\s]+:\d+(\/|$)/.test(v) ? 'a URL without its scheme'
    : undefined;
  const shown = clip(maskUrl(v), 200);
  if (looksLike) {
    throw new UsageError(`${where}: ${shown} reads as ${looksLike}, not a directory: give a postgres://user@host:port/db URL (or file:PATH for a directory)`, { reason: 'bad-registry' });
  }
}

function driverNotice(v: string, scheme: string, where: string): string[] {
  const m = /^postgresql\+([a-z0-9_]+)$/.exec(scheme);
  return m ? [`note: ${where}: driver "+${m[1]}" dropped from ${maskUrl(v.split('?')[0]).slice(0, 200)} (tenantctl speaks to PostgreSQL itself)`] : [];
}

function parseRegistryUrl(v: string, scheme: string, env: NodeJS.ProcessEnv, where: string): RegistrySpec {
  const shown = clip(maskUrl(v), 200);
  const bad = (why: string) => new UsageError(`${where}: ${shown} ${why}`, { reason: 'bad-registry' });
  const postgres = scheme === 'postgres' || scheme === 'postgresql' || /^postgresql\+[a-z0-9_]+$/.test(scheme);
  if (!postgres && scheme !== 'https' && scheme !== 'http') {
    throw bad('is not a registry URL: use postgres://, postgresql:// (or postgresql+<driver>://), https:// for Supabase, or a directory');
  }
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v)) throw bad('is not a valid URL (expected scheme://host/...)');
  let url: URL;
  let noHost = false;
  try {
    url = new URL(v);
  } catch {
    // postgresql://user@/db names a user and no host: WHATWG's URL refuses it, pg (and libpq) take it,
    // pg by parsing it with a stand-in host; so does this. A port with no host (postgres://:5432/db) pg refuses.
    if (!postgres || !v.includes('@/')) throw bad(postgres && /^[^:]+:\/\/(?:[^@/]*@)?:\d*(\/|$)/.test(v) ? 'has no host (a port alone is no host)' : 'is not a valid URL');
    try {
      url = new URL(v.replace('@/', '@stand-in-host/'));
      noHost = true;
    } catch {
      throw bad('is not a valid URL');
    }
  }
  // pg decodes the user, password and database (a % that is no escape threw "URI malformed", said as unreachable).
  if (!decodable(url.username) || !decodable(url.password) || !decodable(url.pathname)) {
    throw bad('has a % that is no escape in its user, password or database (write a % as %25)');
  }
  if (postgres) {
    // Unix-socket URLs (postgres:///db?host=/run/postgresql) have no host; nor does one whose host is PGHOST's,
    // as libpq takes it (it was refused with PGHOST set).
    if ((noHost || !url.hostname) && !url.searchParams.get('host') && !env.PGHOST) throw bad('has no host (give one, a ?host= parameter, or PGHOST)');
    return { kind: 'postgres', url: scheme.includes('+') ? v.replace(/^[^:]+:/, 'postgresql:') : v };
  }
  if (!url.hostname) throw bad('has no host');
  // fetch refuses a URL with credentials, and its error quoted the URL whole, password and all (a probe).
  if (url.username || url.password) throw bad('has a user or password: a Supabase project URL takes none (the key comes from SUPABASE_SERVICE_ROLE_KEY)');
  if (scheme === 'http' && !LOOPBACK.has(url.hostname)) {
    throw bad('uses http://: a Supabase registry needs https:// (plain http only on loopback, for a local Supabase)');
  }
  const key = supabaseKeyFromEnv(env);
  if (!key) {
    throw new UsageError('a Supabase registry needs SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SERVICE_KEY / SUPABASE_KEY) in the environment', { reason: 'bad-registry' });
  }
  const role = publicKeyRole(key);
  if (role) {
    const name = KEY_NAMES.find((n) => env[n] === key);
    throw new UsageError(
      `${name} is a public Supabase key (${role}), not the service-role key: row-level security hides rows from it, so reads would look empty ` +
        '(a subscription "denied", nothing owed) and writes match nothing; give the service-role (secret) key',
      { reason: 'bad-registry' },
    );
  }
  return { kind: 'supabase', url: v.replace(/\/+$/, ''), key };
}

/** The error of using a setting that names no usable registry (see isUnusableRegistry). */
export const unusableRegistry = (spec: { problem: string }): UsageError => new UsageError(spec.problem, { reason: 'bad-registry' });

/** The error of opening a registry setting that names no usable registry (kind `invalid`, a path that is a file, ...). */
export const isUnusableRegistry = (err: unknown): boolean => err instanceof UsageError && err.reason === 'bad-registry';

/** A registry spec for messages: credentials masked. */
export function describeRegistry(spec: RegistrySpec): string {
  switch (spec.kind) {
    case 'embedded':
      return `embedded PGlite (${spec.dir})`;
    case 'memory':
      return 'in-memory PGlite';
    case 'postgres':
      return `postgres ${maskUrl(spec.url)}`;
    case 'supabase':
      return `supabase ${maskUrl(spec.url)}`;
    case 'invalid':
      return `no usable registry (${spec.problem})`;
  }
}
