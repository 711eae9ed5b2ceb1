import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../redact.js';
import { SqlRegistryStore, type SqlExecutor } from './sql-store.js';
import { loadPg } from './load-pg.js';

/** @default registry timeout, ms (DESIGN.md: connect, lock, statement). */
export const DEFAULT_REGISTRY_TIMEOUT_MS = 5000;

/**
 * A PostgreSQL registry through `pg` (loaded lazily). Opening it changes
 * nothing: the schema is only ever applied by writers (ensureSchema). One
 * timeout bounds the connect, every lock wait (lock_timeout, advisory locks
 * included) and every statement, so a tool never queues behind a service's
 * long transaction for longer than that, and never makes others queue behind it.
 */
export async function openPostgresStore(url: string, timeoutMs = DEFAULT_REGISTRY_TIMEOUT_MS): Promise<SqlRegistryStore> {
  const pg = loadPg();
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    lock_timeout: timeoutMs,
    // The client's own bound, should the server stop answering altogether.
    query_timeout: timeoutMs + 1000,
    application_name: 'tenantctl',
  });
  // A dropped connection (a server restart, an idle kill, a failover) never comes back: the store says it is
  // lost, so a long-lived program opens a new one instead of failing on this client for the rest of its life.
  let lost = false;
  client.on('error', () => (lost = true));
  client.on('end', () => (lost = true));
  const description = `postgres ${maskUrl(url)}`;
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new BackendUnavailableError('registry', `registry (${description}) is unreachable: ${describeError(err)}`, { cause: err, reason: 'unreachable' });
  }
  const executor: SqlExecutor = {
    query: async (sql, params) => ({ rows: (await client.query(sql, params as unknown[])).rows }),
    exec: async (sql) => {
      await client.query(sql);
    },
    close: () => client.end(),
    get lost() {
      return lost;
    },
  };
  return new SqlRegistryStore(executor, description, timeoutMs);
}
