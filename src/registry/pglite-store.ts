import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { BackendUnavailableError, UsageError } from '../errors.js';
import { acquireProcessLock } from './process-lock.js';
import { SqlRegistryStore, type SqlExecutor } from './sql-store.js';
import { DEFAULT_REGISTRY_TIMEOUT_MS } from './postgres-store.js';

export interface PgliteOpenOptions {
  /** Create the registry when it does not exist (commands that write); reads never do. @default false */
  create?: boolean;
  /** How long to wait for another process to let go of the registry, ms. */
  timeoutMs?: number;
}

/**
 * The embedded registry: real Postgres in-process (PGlite), in `dir` or in
 * memory. Loaded lazily: opening it costs ~0.3-0.5 s (4 s the first time, when
 * it runs initdb), so only commands that need the registry do. One process
 * at a time holds it (a lock file beside the directory): a second waits up to
 * the registry timeout, then fails with the holder's pid.
 */
export async function openPgliteStore(dir: string | undefined, options: PgliteOpenOptions = {}): Promise<SqlRegistryStore> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS;
  if (dir) checkRegistryDir(dir, false);
  if (dir && !options.create && !existsSync(path.join(dir, 'PG_VERSION'))) {
    throw new BackendUnavailableError('registry', `no embedded registry at ${dir}`, { reason: 'not-configured' });
  }
  let release = () => undefined as void;
  if (dir) {
    try {
      mkdirSync(path.dirname(dir), { recursive: true });
    } catch (err) {
      // A file where a parent directory should be (a `.tenantctl` file): said, not "internal error".
      throw new UsageError(`cannot create the embedded registry ${dir}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' || (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'a file is in the way' : (err as Error).message}`);
    }
    release = await acquireProcessLock(`${dir}.lock`, timeoutMs, `the embedded registry ${dir}`);
    // Under the lock: another process's first write may be running initdb here (files, no PG_VERSION yet).
    try {
      checkRegistryDir(dir, !!options.create);
    } catch (err) {
      release();
      throw err;
    }
  }
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    if (dir) mkdirSync(dir, { recursive: true });
    // 16 MB of shared buffers instead of 128: the registry is small, and it
    // halves the process's memory (~160 MB instead of ~300 MB after open).
    const startParams = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];
    const db = dir ? await PGlite.create(dir, { startParams }) : await PGlite.create({ startParams });
    const executor: SqlExecutor = {
      query: async (sql, params) => ({ rows: (await db.query<Record<string, unknown>>(sql, params)).rows }),
      exec: async (sql) => {
        await db.exec(sql);
      },
      close: async () => {
        try {
          await db.close();
        } finally {
          release();
        }
      },
    };
    return new SqlRegistryStore(executor, dir ? `embedded PGlite (${dir})` : 'in-memory PGlite', timeoutMs);
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * The registry path must be a directory, and a new registry is made only in a new or empty one: PGlite
 * runs initdb in whatever directory it is given, so `--registry tenants` (for --tenants-dir) filled the
 * tenant files' directory with a database cluster.
 */
function checkRegistryDir(dir: string, create: boolean): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return; // not there yet: reads say so, a write creates it
  }
  if (!isDir) throw new UsageError(`the embedded registry ${dir} is a file, not a directory`, { reason: 'bad-registry' });
  if (create && !existsSync(path.join(dir, 'PG_VERSION')) && readdirSync(dir).length > 0) {
    throw new UsageError(`${dir} is not an embedded registry and not empty: refusing to create one there (give a new or empty directory)`, { reason: 'bad-registry' });
  }
}
