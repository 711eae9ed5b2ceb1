import { chmodSync, closeSync, existsSync, fsyncSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { BackendUnavailableError, TenantctlError, UsageError } from '../errors.js';
import { acquireProcessLock } from './process-lock.js';
import { SqlRegistryStore, type SqlExecutor } from './sql-store.js';
import { DEFAULT_REGISTRY_TIMEOUT_MS } from './postgres-store.js';
import { makeDirectory } from '../make-directory.js';
import { embeddedRegistryExists } from './registry-spec.js';

export interface PgliteOpenOptions {
  /** Create the registry when it does not exist (commands that write); reads never do. @default false */
  create?: boolean;
  /** How long to wait for another process to let go of the registry, ms. */
  timeoutMs?: number;
  /** Told when the registry is being created (initdb: seconds, with nothing else to show meanwhile). */
  onCreate?: (dir: string) => void;
  /** Gives up a wait for another process's lock when it aborts. */
  signal?: AbortSignal;
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
  if (dir) checkRegistryDir(dir);
  if (dir && !options.create && !embeddedRegistryExists(dir)) {
    // A directory holding other files (`--registry tenants`) is a wrong path, for a read as for a write: a
    // read said "no registry; a command that writes creates it", and the write then refused (exit 2).
    if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(creationMarker(realRegistryPath(dir)))) throw notARegistry(dir);
    throw new BackendUnavailableError('registry', `no embedded registry at ${dir}`, { reason: 'not-configured' });
  }
  let release = () => undefined as void;
  /** The marker of a creation under way (this process runs initdb): removed once the registry is whole. */
  let creating: string | undefined;
  /** The directory's real path: PGlite is given it (its file system cannot open a data directory through a symlink: ENOENT). */
  let real: string | undefined;
  if (dir) {
    try {
      makeDirectory(path.dirname(dir));
    } catch (err) {
      // A file where a parent directory should be (a `.tenantctl` file): said, not "internal error".
      throw new UsageError(`cannot create the embedded registry ${dir}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' || (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'a file is in the way' : (err as Error).message}`);
    }
    // The lock (and the creation marker) are named by the directory's real path: every spelling of it (a
    // symlink, `..`, a bind of the project) waits on one lock, where two spellings ran PGlite twice on it at once.
    real = realRegistryPath(dir);
    release = await acquireProcessLock(`${real}.lock`, timeoutMs, `the embedded registry ${dir}`, options.signal);
    // Under the lock: another process's first write may have been running initdb here (files, no PG_VERSION yet).
    try {
      creating = prepareRegistryDir(dir, real, !!options.create);
    } catch (err) {
      release();
      throw err;
    }
  }
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    if (real) ownerOnly(real);
    // 16 MB of shared buffers instead of 128: the registry is small, and it
    // halves the process's memory (~160 MB instead of ~300 MB after open).
    const startParams = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];
    let db: InstanceType<typeof PGlite>;
    if (creating && dir) options.onCreate?.(dir);
    // A new cluster (a registry being created, or one in memory) is unpacked from the one made at build time
    // when there is one for this PGlite (pglite-datadir.ts), not made by initdb again.
    const fresh = creating || !real ? (await import('./pglite-datadir.js')).freshDataDir() : undefined;
    const createOptions = { startParams, ...(fresh && { loadDataDir: fresh }) };
    try {
      db = real ? await PGlite.create(real, createOptions) : await PGlite.create(createOptions);
    } catch (err) {
      throw pgliteFailure(err, dir ? `the embedded registry ${dir} could not be ${creating ? 'created' : 'opened'}` : 'the in-memory registry could not be started');
    }
    // initdb is done (the cluster is whole): from here a kill leaves a registry, not a half-made directory.
    if (creating) {
      try {
        rmSync(creating, { force: true });
      } catch (err) {
        await db.close().catch(() => undefined);
        throw err;
      }
    }
    const executor: SqlExecutor = {
      query: async (sql, params) => {
        try {
          return { rows: (await db.query<Record<string, unknown>>(sql, params)).rows };
        } catch (err) {
          throw readableThrown(err);
        }
      },
      exec: async (sql) => {
        try {
          await db.exec(sql);
        } catch (err) {
          throw readableThrown(err);
        }
      },
      close: async () => {
        try {
          await db.close();
        } catch (err) {
          throw readableThrown(err);
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
 * The marker written beside a registry directory (named by its real path) before initdb runs there, and
 * removed once PGlite has made the cluster: found by a later process (under the lock, so its maker is gone),
 * it says the directory is the tool's own half-made registry, which a writer empties and makes again.
 */
export const creationMarker = (realDir: string) => `${realDir}.creating`;

/** The directory's real path (links and `..` resolved), or its parent's joined with its name when it does not exist yet. */
function realRegistryPath(dir: string): string {
  try {
    return realpathSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`cannot use the embedded registry ${dir}: ${(err as Error).message}`, { reason: 'bad-registry' });
  }
  let dangling = false;
  try {
    dangling = lstatSync(dir).isSymbolicLink();
  } catch {
    /* not there at all */
  }
  if (dangling) throw new UsageError(`the embedded registry ${dir} is a link to a directory that does not exist`, { reason: 'bad-registry' });
  return path.join(realpathSync(path.dirname(dir)), path.basename(dir));
}

/**
 * Under the registry's lock: what state the directory is in, and what to do about it. A read of a registry
 * whose creation was interrupted finds none; a write creates one in a new or empty directory (writing the
 * creation marker first), makes again one whose creation was interrupted, and refuses any other directory
 * that is not a registry: PGlite runs initdb in whatever directory it is given, so `--registry tenants`
 * (for --tenants-dir) filled the tenant files' directory with a database cluster. Returns the marker to
 * remove once the registry is made.
 */
function prepareRegistryDir(dir: string, real: string, create: boolean): string | undefined {
  checkRegistryDir(dir);
  const marker = creationMarker(real);
  // The marker names the directory it was written for (device and inode): one left beside a directory
  // made again since (removed by hand, a backup restored into its place) is stale, and only goes.
  const interrupted = existsSync(marker) && markerIsFor(marker, real);
  if (!interrupted && existsSync(marker)) rmSync(marker, { force: true });
  if (!create) {
    if (interrupted) {
      throw new BackendUnavailableError('registry', `no embedded registry at ${dir} (its creation was interrupted)`, { reason: 'not-configured' });
    }
    return undefined;
  }
  if (interrupted) {
    // The tool's own half-made registry (initdb killed midway, with or without its PG_VERSION yet): emptied
    // and made again. Its contents go, not the directory (it may be a link's target, or a mount point).
    for (const entry of existsSync(real) ? readdirSync(real) : []) rmSync(path.join(real, entry), { recursive: true, force: true });
    return marker;
  }
  if (embeddedRegistryExists(dir)) return undefined;
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw notARegistry(dir);
  }
  // Written (and synced) before initdb puts anything in the directory, which is made first: the marker
  // names it by its identity (a marker naming no directory would match whatever is put there later).
  makeDirectory(real, 0o700);
  // Made new, never through a link left at its name (a dangling one made a file at the link's target).
  rmSync(marker, { force: true });
  const fd = openSync(marker, 'wx', 0o600);
  try {
    writeSync(fd, `tenantctl is creating the embedded registry ${real} (pid ${process.pid}, since ${new Date().toISOString()}).\nIf this file is still here, that was interrupted: the next command that writes empties the directory and creates it again.\n${IDENTITY}${directoryIdentity(real)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return marker;
}

const IDENTITY = 'directory: ';

/** A directory's identity (device and inode), or '' when it does not exist. */
function directoryIdentity(dir: string): string {
  const st = statSync(dir, { throwIfNoEntry: false });
  return st ? `${st.dev}:${st.ino}` : '';
}

/** Whether a creation marker was written for the directory that is there now. */
function markerIsFor(marker: string, real: string): boolean {
  const line = readFileSync(marker, 'utf8').split('\n').find((l) => l.startsWith(IDENTITY));
  const then = line?.slice(IDENTITY.length) ?? '';
  // Only the very directory it was written for: anything else (gone, made again, restored) is not ours to empty.
  return then !== '' && then === directoryIdentity(real);
}

/** A directory that holds files but no registry: never made one (PGlite would run initdb among the files). */
const notARegistry = (dir: string) =>
  new UsageError(`${dir} is not an embedded registry and not empty: refusing to create one there (give a new or empty directory)`, { reason: 'bad-registry' });

/** emscripten's errno numbers (PGlite's file system layer), for the ones a registry's files meet. */
const EMSCRIPTEN_ERRNO: Record<number, string> = {
  2: 'EACCES', 8: 'EBADF', 10: 'EBUSY', 20: 'EEXIST', 28: 'EINVAL', 29: 'EIO', 31: 'EISDIR', 33: 'EMFILE', 44: 'ENOENT',
  51: 'ENOSPC', 54: 'ENOTDIR', 55: 'ENOTEMPTY', 63: 'EPERM', 69: 'EROFS', 19: 'EDQUOT',
};

/**
 * What PGlite threw, as an Error with a readable message: its emscripten file system throws an `ErrnoError`
 * that is not an Error (no message, no stack; it printed as "[object Object]"), seen when a file of the
 * registry vanished under it (another process on the same directory).
 */
export function readableThrown(err: unknown): Error {
  if (err instanceof Error) return err;
  if (err !== null && typeof err === 'object') {
    const o = err as { name?: unknown; message?: unknown; errno?: unknown; code?: unknown };
    if (typeof o.errno === 'number' && (o.name === 'ErrnoError' || o.message === undefined)) {
      const code = EMSCRIPTEN_ERRNO[o.errno];
      return Object.assign(new Error(`PGlite file system error ${code ?? 'errno'} (${code ? 'emscripten errno ' : ''}${o.errno})${code === 'ENOENT' ? ': a file of the registry is missing (was it used by another process, or changed while open?)' : ''}`, { cause: err }), { errno: o.errno });
    }
    if (typeof o.message === 'string' && o.message) return new Error(o.message, { cause: err });
    let shown: string;
    try {
      shown = JSON.stringify(err)?.slice(0, 200) ?? String(err);
    } catch {
      shown = Object.prototype.toString.call(err);
    }
    return new Error(`PGlite failed: ${typeof o.name === 'string' && o.name ? `${o.name} ` : ''}${shown}`, { cause: err });
  }
  return new Error(`PGlite failed: ${String(err)}`, { cause: err });
}

/** A failure of PGlite itself (not a SQL error): a backend failure (exit 3) saying what it was, never "internal error". */
export function pgliteFailure(err: unknown, what: string): Error {
  if (err instanceof TenantctlError) return err;
  return new BackendUnavailableError('registry', `${what}: ${readableThrown(err).message}`, { cause: err, reason: 'failed' });
}

/** The registry path must be a directory (a file there is a usage error, not "internal error"). */
function checkRegistryDir(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return; // not there yet: reads say so, a write creates it
  }
  if (!isDir) throw new UsageError(`the embedded registry ${dir} is a file, not a directory`, { reason: 'bad-registry' });
}

/**
 * The data directory made (if missing) 0700, as PostgreSQL keeps its own: PGlite writes its files 0666,
 * so under a 022 umask any local user could read the tenants' rows in pg_wal or append to
 * postgresql.conf. An existing one this user owns is set back to 0700, unless its group access was set
 * up on purpose; one of another owner, or on a read-only mount, is left as it is.
 */
function ownerOnly(dir: string): void {
  makeDirectory(dir, 0o700);
  const st = statSync(dir);
  if ((st.mode & 0o077) === 0 || (typeof process.getuid === 'function' && st.uid !== process.getuid())) return;
  // Group access set up on purpose (setgid, or group-writable: a team's shared directory) stays; the
  // umask's accidental group and world read (0755 under a shared `users` group) go.
  const deliberate = (st.mode & 0o2000) !== 0 || (st.mode & 0o020) !== 0;
  try {
    chmodSync(dir, deliberate ? st.mode & 0o7770 : 0o700);
  } catch (err) {
    // Not ours to change after all (a read-only mount): PGlite opens it as it is.
    if ((err as NodeJS.ErrnoException).code !== 'EROFS' && (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  }
}
