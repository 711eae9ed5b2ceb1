import { BackendUnavailableError, describeError } from '../errors.js';
import { maskUrl } from '../redact.js';
import { SqlRegistryStore, type SqlExecutor } from './sql-store.js';

/** Connect timeout for the registry, ms: long enough for a remote database, short enough for a CLI. */
export const REGISTRY_CONNECT_TIMEOUT_MS = 5000;

/** A PostgreSQL registry through `pg` (loaded lazily); applies schema.sql on open. */
export async function openPostgresStore(url: string, options: { applySchema?: boolean } = {}): Promise<SqlRegistryStore> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: REGISTRY_CONNECT_TIMEOUT_MS,
    statement_timeout: 30_000,
    application_name: 'tenantctl',
  });
  client.on('error', () => undefined); // a dropped connection surfaces on the next query
  const description = `postgres ${maskUrl(url)}`;
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new BackendUnavailableError('registry', `registry (${description}) is unreachable: ${describeError(err)}`, { cause: err });
  }
  const executor: SqlExecutor = {
    query: async (sql, params) => ({ rows: (await client.query(sql, params as unknown[])).rows }),
    exec: async (sql) => {
      await client.query(sql);
    },
    close: () => client.end(),
  };
  const store = new SqlRegistryStore(executor, description);
  if (options.applySchema !== false) await store.applySchema();
  return store;
}
