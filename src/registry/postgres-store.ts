import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../redact.js';
import { QUERY_READ_MARGIN_MS, SqlRegistryStore, type SqlExecutor } from './sql-store.js';
import { loadPg } from './load-pg.js';
import { connectPgClient } from './pg-settings.js';

/** @default registry timeout, ms (DESIGN.md: connect, lock, statement). */
export const DEFAULT_REGISTRY_TIMEOUT_MS = 5000;
/** The least time a tenantctl transaction may sit idle before the server ends it, ms. */
const IDLE_IN_TRANSACTION_FLOOR_MS = 30_000;

/** A PostgreSQL connect that failed; pg says only "timeout expired": the timeout is said, as Redis's messages say theirs. */
export function registryUnreachable(description: string, err: unknown, timeoutMs: number): BackendUnavailableError {
  const said = describeError(err).replace(/^(Connection terminated due to connection timeout|timeout expired)$/i, `$1 (timeout ${timeoutMs} ms)`);
  const code = (err as { code?: unknown })?.code;
  // invalid_password, invalid_authorization_specification (no such role, pg_hba reject): the server answered.
  const refused = code === '28P01' || code === '28000';
  // insufficient_privilege at the connect: logged in, but the role may not CONNECT to this database.
  const denied = code === '42501';
  // invalid_catalog_name: the server answered that the URL's database does not exist.
  const noDatabase = code === '3D000';
  const what = refused ? 'refused the login' : denied ? 'refused the connection' : noDatabase ? 'has no such database' : 'is unreachable';
  const reason = refused ? 'refused-login' : denied ? 'no-permission' : noDatabase ? 'failed' : 'unreachable';
  return new BackendUnavailableError('registry', `registry (${description}) ${what}: ${said}`, { cause: err, reason });
}

/** SQLSTATEs of a session the server ended: admin_shutdown, crash_shutdown, cannot_connect_now. */
const SESSION_ENDED = new Set(['57P01', '57P02', '57P03']);

/**
 * A PostgreSQL registry through `pg` (loaded lazily). Opening it changes
 * nothing: the schema is only ever applied by writers (ensureSchema). One
 * timeout bounds the connect, every lock wait (lock_timeout, advisory locks
 * included) and every statement, so a tool never queues behind a service's
 * long transaction for longer than that, and never makes others queue behind it.
 */
export async function openPostgresStore(url: string, timeoutMs = DEFAULT_REGISTRY_TIMEOUT_MS, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<SqlRegistryStore> {
  const pg = loadPg();
  // What the URL leaves out (user, password, SSL mode...) from env, as libpq takes it from the environment.
  const description = `postgres ${maskUrl(url)}`;
  const client = await connectPgClient(
    pg.Client,
    url,
    env,
    {
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      lock_timeout: timeoutMs,
      // The client's own bound, should the server stop answering altogether.
      query_timeout: timeoutMs + QUERY_READ_MARGIN_MS,
      // A session whose client vanished mid-transaction (a network partition: its close never reached the
      // server) held its rows FOR UPDATE, blocking the services' writes, until TCP gave up (~2 h by default).
      idle_in_transaction_session_timeout: Math.max(4 * timeoutMs, IDLE_IN_TRANSACTION_FLOOR_MS),
      application_name: 'tenantctl',
    },
    (err) => registryUnreachable(description, err, timeoutMs),
    signal,
  );
  // A dropped connection (a server restart, an idle kill, a failover) never comes back: the store says it is
  // lost, so a long-lived program opens a new one instead of failing on this client for the rest of its life.
  let lost = false;
  client.on('error', () => (lost = true));
  client.on('end', () => (lost = true));
  /** Gives up the session where pg would wait on the server (pg has no call for it: its socket goes). */
  const dropSocket = () => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  // And outside a transaction (the migration's session-level advisory lock): the server probes a silent
  // client after 15 s and drops it within ~30 s. Best effort: a pooler that refuses SET changes nothing else.
  await client.query('SET tcp_keepalives_idle = 15; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3').catch(() => undefined);
  // A statement the server never answered (pg's query_timeout): the session is given up at once. Reused, it
  // made the ROLLBACK, the outbox read and the lock release after it each wait out a timeout of their own
  // (a stall mid-migration took 4x the registry timeout to report); now they fail at once and the store is lost.
  const run = async (sql: string, params?: unknown[]) => {
    try {
      return await client.query(sql, params);
    } catch (err) {
      if (!lost && /query read timeout/i.test((err as Error)?.message ?? '')) {
        lost = true;
        dropSocket();
      }
      // The server ended the session under this statement (terminated by an administrator, a shutdown): pg
      // hands the FATAL to the statement, and its 'end' event comes later. Lost now, so the next call (a read
      // retried at once among them) opens a new session instead of failing on this one.
      if (!lost && (SESSION_ENDED.has((err as { code?: string })?.code ?? '') || /Connection terminated|not queryable/i.test((err as Error)?.message ?? ''))) lost = true;
      throw err;
    }
  };
  const executor: SqlExecutor = {
    query: async (sql, params) => ({ rows: (await run(sql, params as unknown[])).rows }),
    exec: async (sql) => {
      await run(sql);
    },
    // Bounded: end() waits for the server to close its side, forever when it has gone silent (a review: a
    // command that had finished and written its audit line hung at its close). The socket goes after the timeout.
    close: async () => {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          dropSocket();
          resolve();
        }, timeoutMs);
      });
      try {
        await Promise.race([client.end().catch(() => undefined), gaveUp]);
      } finally {
        clearTimeout(timer);
      }
    },
    get lost() {
      return lost;
    },
  };
  return new SqlRegistryStore(executor, description, timeoutMs);
}
