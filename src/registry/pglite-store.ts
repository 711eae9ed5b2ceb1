import { mkdirSync } from 'node:fs';
import { SqlRegistryStore, type SqlExecutor } from './sql-store.js';

/**
 * The embedded registry: real Postgres in-process (PGlite), in `dir` (created
 * on first use) or in memory. Loaded lazily: opening it costs ~0.5 s (4 s the
 * first time, when it runs initdb), so only commands that need the registry do.
 */
export async function openPgliteStore(dir: string | undefined): Promise<SqlRegistryStore> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dir) mkdirSync(dir, { recursive: true });
  const db = dir ? await PGlite.create(dir) : await PGlite.create();
  const executor: SqlExecutor = {
    query: async (sql, params) => ({ rows: (await db.query<Record<string, unknown>>(sql, params)).rows }),
    exec: async (sql) => {
      await db.exec(sql);
    },
    close: () => db.close(),
  };
  const store = new SqlRegistryStore(executor, dir ? `embedded PGlite (${dir})` : 'in-memory PGlite');
  await store.applySchema();
  return store;
}
