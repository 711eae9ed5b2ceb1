import os from 'node:os';
import { createRequire } from 'node:module';
import { tlsOf, triesNext, type TlsAttempt } from './pg-tls.js';

type ParseConnectionString = (url: string) => Record<string, unknown>;

/**
 * node-postgres's connection settings for a URL, where whatever the URL
 * leaves out comes from `env`. pg itself fills it in from process.env
 * (PGUSER, PGPASSWORD, PGDATABASE, PGHOST, PGPORT, PGSSLMODE, PGOPTIONS,
 * PGCLIENT_ENCODING, ~/.pgpass): a library given an environment of its own
 * connected as the process's said (a review: PGOPTIONS='-c search_path=nowhere'
 * made the registry look empty, and every read fell back to YAML).
 * Given process.env itself (the CLI), pg's own reading is kept, ~/.pgpass included;
 * given another env, a password comes from the URL or env.PGPASSWORD only.
 * TLS is read as libpq reads it (see pg-tls.ts): `way` is the URL without its TLS parameters and one of the
 * ways to connect tlsOf gives (by default its first, read here).
 */
export function pgSettings(written: string, env: NodeJS.ProcessEnv, way: ConnectWay = firstWay(written, env)): Record<string, unknown> {
  // pg's own parser (its dependency), so the URL means exactly what it means to pg.
  const parse = createRequire(import.meta.url)('pg-connection-string').parse as ParseConnectionString;
  const { url, attempt: tls } = way;
  // Set, it outranks PGSSLMODE of the process (pg reads that only when no ssl is given).
  const ssl = tls === undefined ? {} : { ssl: tls };
  if (env === process.env) {
    // A URL without a user, and neither PGUSER nor USER set (cron, a minimal container): pg sends no user
    // ("no PostgreSQL user name specified"), where libpq takes the OS user's name: so does this, as the
    // URL's own `user` parameter (pg reads it; a user given in the URL's options is never overridden).
    if (!env.PGUSER && !env.USER && !parse(url).user) return { connectionString: `${url}${url.includes('?') ? '&' : '?'}user=${encodeURIComponent(osUser())}`, ...ssl };
    return { connectionString: url, ...ssl };
  }
  const p = parse(url);
  // The parser gives '' for a part the URL lacks; pg would then read the process's PG* variable.
  const given = (key: string, variable: string) => (p[key] ? p[key] : env[variable] || undefined);
  const user = (given('user', 'PGUSER') as string | undefined) ?? env.USER ?? osUser();
  const password = given('password', 'PGPASSWORD') as string | undefined;
  return {
    ...p,
    user,
    // A function, never empty: an empty password makes pg read PGPASSWORD and ~/.pgpass of the process.
    password: () => password,
    host: given('host', 'PGHOST') ?? 'localhost',
    port: Number(given('port', 'PGPORT') ?? 5432),
    database: given('database', 'PGDATABASE') ?? user,
    ssl: tls ?? false,
    // pg reads PGOPTIONS for an empty value; a blank one is no option to the server.
    options: given('options', 'PGOPTIONS') ?? ' ',
    client_encoding: 'UTF8',
    sslnegotiation: given('sslnegotiation', 'PGSSLNEGOTIATION') ?? 'postgres',
    application_name: given('application_name', 'PGAPPNAME'),
    replication: given('replication', 'PGREPLICATION'),
  };
}

/**
 * A pg Client for a URL and the env given (see pgSettings), `options` on top. pg reads PGREPLICATION of
 * process.env for a setting that is not truthy, and no truthy value means "none": set on the client's
 * parameters instead (a replication connection is refused the queries tenantctl runs).
 */
export function newPgClient<C extends object>(Client: new (config: Record<string, unknown>) => C, url: string, env: NodeJS.ProcessEnv, options: Record<string, unknown>, way?: ConnectWay): C {
  const settings = pgSettings(url, env, way);
  const client = new Client({ ...settings, ...options });
  const params = (client as { connectionParameters?: { replication?: unknown } }).connectionParameters;
  if (env !== process.env && params) params.replication = settings.replication;
  return client;
}

interface PgClientLike {
  connect(): Promise<unknown>;
  query(sql: string): Promise<unknown>;
  end(): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** The URL pg is given (its TLS parameters taken out) and the TLS of one attempt (undefined: none said). */
interface ConnectWay {
  url: string;
  attempt: TlsAttempt | undefined;
}

function firstWay(url: string, env: NodeJS.ProcessEnv): ConnectWay {
  const tls = tlsOf(url, env);
  return { url: tls.url, attempt: tls.attempts?.[0] };
}

/**
 * A connected pg Client (see newPgClient): libpq's `prefer` tries TLS and then plain, `allow` the other
 * way round, each a client of its own (pg cannot go on in plain after a refused TLS request). The TLS
 * settings are read once, before any connect (a bad one is a usage error as it is); a connect that fails
 * is thrown as `failed` makes it.
 */
export async function connectPgClient<C extends PgClientLike>(
  Client: new (config: Record<string, unknown>) => C,
  url: string,
  env: NodeJS.ProcessEnv,
  options: Record<string, unknown>,
  failed: (err: unknown) => Error,
  /** Gives up the connect under way (its socket destroyed) when it aborts: its owner closed meanwhile. */
  signal?: AbortSignal,
): Promise<C> {
  const tls = tlsOf(url, env);
  const attempts: Array<TlsAttempt | undefined> = tls.attempts ?? [undefined];
  for (let i = 0; ; i++) {
    const client = newPgClient(Client, url, env, options, { url: tls.url, attempt: attempts[i] });
    // Errors of a connect under way reach connect()'s promise; one after it must not be an uncaught 'error'.
    client.on('error', () => undefined);
    // The socket destroyed: the connect fails at once ("Connection terminated unexpectedly") instead of at
    // its timeout. Not pg's end(): during a connect it only half-closes the socket, which a silent server
    // never answers, and it leaves connect()'s promise unsettled for good.
    const giveUp = () => (client as { connection?: { stream?: { destroy?(): void } } }).connection?.stream?.destroy?.();
    signal?.addEventListener('abort', giveUp, { once: true });
    try {
      if (signal?.aborted) throw new Error('the connect was given up (closed)');
      await client.connect();
      // pg reads timestamps in ISO form only: a server or database whose DateStyle is another ('SQL, DMY',
      // German) had every demo expiry read as none (a live demo denied, the wrong record cached for the
      // services, and written back as NULL by the next subscription change: a probe). Set for the session.
      await client.query("SET DateStyle TO 'ISO, MDY'");
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (signal?.aborted || i + 1 >= attempts.length || !triesNext(err, attempts[i]!)) throw failed(err);
    } finally {
      signal?.removeEventListener('abort', giveUp);
    }
  }
}

/** The OS user's name, as libpq takes it for a connection that names no user. */
function osUser(): string {
  return os.userInfo().username;
}
