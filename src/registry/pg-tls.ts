import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { decodeSafe } from '../redact.js';

/**
 * TLS to PostgreSQL as libpq reads it. node-postgres reads `sslmode` its own way: `prefer` and `require`
 * are full verification to it (a server without TLS, which psql reaches with the same URL, was
 * "unreachable"; reads fell back to YAML), `ssl=false` turned TLS on, and every such URL printed pg's
 * multi-line SECURITY WARNING. So the URL's TLS parameters are taken out and read here: `sslmode` (or
 * `ssl`, as Python drivers write it), `sslrootcert`, `sslcert`, `sslkey`, else PGSSLMODE, PGSSLROOTCERT,
 * PGSSLCERT, PGSSLKEY of the env given. None said: plain, as node-postgres connects (libpq would try TLS
 * first; `sslmode=prefer` asks for that).
 */
export interface TlsOptions {
  rejectUnauthorized?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  checkServerIdentity?: () => undefined;
}

/** One way to connect: plain (false) or TLS with these options. */
export type TlsAttempt = false | TlsOptions;

const MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'] as const;
type SslMode = (typeof MODES)[number];

/** The URL parameters this reads (pg must not read them again: its reading wins over a config's). */
const TLS_PARAMETERS = new Set(['sslmode', 'ssl', 'sslrootcert', 'sslcert', 'sslkey', 'uselibpqcompat']);

const decode = (s: string): string => decodeSafe(s.replace(/\+/g, ' '));

/** A URL without its TLS parameters, and those parameters. */
function splitTlsParameters(url: string): { url: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const q = url.indexOf('?');
  if (q < 0) return { url, params };
  const kept: string[] = [];
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq));
    if (TLS_PARAMETERS.has(name)) params.set(name, eq < 0 ? '' : decode(part.slice(eq + 1)));
    else if (part) kept.push(part);
  }
  return { url: url.slice(0, q) + (kept.length ? `?${kept.join('&')}` : ''), params };
}

/** `ssl=` as Python drivers (asyncpg) and node-postgres write it. */
function modeOfSsl(value: string): string {
  const v = value.toLowerCase();
  if (v === 'true' || v === '1' || v === 'on' || v === 'yes') return 'verify-full';
  if (v === 'false' || v === '0' || v === 'off' || v === 'no') return 'disable';
  return v;
}

function readTlsFile(file: string | undefined, what: string): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the PostgreSQL ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { reason: 'bad-registry' });
  }
}

/**
 * The URL pg is given (its TLS parameters taken out) and the ways to connect, in order (libpq's `prefer`
 * tries TLS, then plain; `allow` plain, then TLS); `attempts` undefined when nothing asks for TLS either way.
 */
export function tlsOf(url: string, env: NodeJS.ProcessEnv): { url: string; attempts?: TlsAttempt[] } {
  const split = splitTlsParameters(url);
  const p = split.params;
  const raw = p.get('sslmode') || (p.get('ssl') ? modeOfSsl(p.get('ssl')!) : undefined) || env.PGSSLMODE || undefined;
  if (raw === undefined) return { url: split.url };
  const mode = raw.toLowerCase() as SslMode;
  if (!MODES.includes(mode)) {
    throw new UsageError(`the PostgreSQL TLS mode "${raw.slice(0, 40)}" is not one libpq knows (${MODES.slice(0, 6).join(', ')})`, { reason: 'bad-registry' });
  }
  if (mode === 'disable') return { url: split.url, attempts: [false] };
  // The root certificate as libpq finds it: the URL's, PGSSLROOTCERT, else ~/.postgresql/root.crt when there;
  // `system`: the system's trusted roots, and then the host name is checked whatever the mode (libpq 16).
  const defaultRoot = path.join(env.HOME || os.homedir(), '.postgresql', 'root.crt');
  const rootFile = p.get('sslrootcert') ?? env.PGSSLROOTCERT ?? (existsSync(defaultRoot) ? defaultRoot : undefined);
  const systemRoots = rootFile === 'system';
  // verify-ca checks the chain and not the name: with the system's roots (no file) any certificate a public
  // CA signed for any name would pass (a review: it connected where psql refuses). libpq refuses it too.
  if (mode === 'verify-ca' && !rootFile) {
    throw new UsageError('sslmode=verify-ca needs a root certificate to check the server\'s against: give sslrootcert (or PGSSLROOTCERT, or ~/.postgresql/root.crt), sslrootcert=system for the system\'s roots (the host name is then checked), or sslmode=verify-full', { reason: 'bad-registry' });
  }
  const files = {
    ca: systemRoots ? undefined : readTlsFile(rootFile, 'root certificate (sslrootcert)'),
    cert: readTlsFile(p.get('sslcert') ?? env.PGSSLCERT, 'client certificate (sslcert)'),
    key: readTlsFile(p.get('sslkey') ?? env.PGSSLKEY, 'client key (sslkey)'),
  };
  const present = Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)) as TlsOptions;
  const tls = (verify: 'none' | 'ca' | 'full'): TlsOptions =>
    systemRoots && verify !== 'none' ? present
    : verify === 'none' ? { ...present, rejectUnauthorized: false } : verify === 'ca' ? { ...present, checkServerIdentity: () => undefined } : present;
  const attempts: Record<Exclude<SslMode, 'disable'>, TlsAttempt[]> = {
    allow: [false, tls('none')],
    prefer: [tls('none'), false],
    // libpq: require verifies the server's certificate only when a root certificate is given (as verify-ca).
    require: [tls(rootFile ? 'ca' : 'none')],
    'verify-ca': [tls('ca')],
    'verify-full': [tls('full')],
    'no-verify': [tls('none')],
  };
  return { url: split.url, attempts: attempts[mode] };
}

/**
 * Whether a connect that failed this way is worth the next attempt. After TLS (prefer), as libpq: any failure
 * but the network's (a server without TLS says no to the request; pg_hba may refuse TLS sessions, `hostnossl`;
 * the handshake may fail). After plain (allow): a server that takes only TLS refused the login ("no encryption").
 */
export function triesNext(err: unknown, attempt: TlsAttempt): boolean {
  const text = err instanceof Error ? err.message : String(err);
  if (attempt === false) return /no encryption|SSL off|requires? SSL/i.test(text);
  const code = (err as { code?: unknown })?.code;
  const network = (typeof code === 'string' && /^E[A-Z]+$/.test(code)) || /timeout|timed out/i.test(text);
  return !network;
}
