import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { makeDirectory } from './make-directory.js';
import os from 'node:os';
import path from 'node:path';

/**
 * The tool's directory in the user's cache: `$XDG_CACHE_HOME/tenantctl`, else
 * `~/.cache/tenantctl`. Caches live there, never in a project (a cache file
 * must not mark a directory as a project), and losing any of them only costs time.
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  // A relative XDG_CACHE_HOME is ignored, as the XDG spec says (it would put caches in the working directory).
  const xdg = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : undefined;
  const base = xdg || path.join(env.HOME || os.homedir() || os.tmpdir(), '.cache');
  return path.join(base, 'tenantctl');
}

/**
 * Makes the cache directory (this user's only: 0700): `.cache` and `tenantctl` at most, never the home
 * directory above them. HOME=/nonexistent (Debian's for system users) made /nonexistent/.cache/tenantctl as
 * root (a probe); there the caches are left out (only slower). Throws as makeDirectory does.
 */
export function makeCacheDirectory(dir: string): void {
  // Only ~/.cache/tenantctl's home must exist: an XDG_CACHE_HOME named is made whole, as the XDG spec says
  // (its missing parent turned the caches off: a review).
  if (path.basename(path.dirname(dir)) !== '.cache') return makeDirectory(dir, 0o700);
  const above = path.dirname(path.dirname(dir));
  let exists = false;
  try {
    exists = statSync(above).isDirectory();
  } catch {
    /* missing: not made */
  }
  if (!exists) throw Object.assign(new Error(`ENOENT: ${above} does not exist, mkdir '${dir}'`), { code: 'ENOENT', path: above });
  makeDirectory(dir, 0o700);
}

/**
 * A cache file's bytes, or undefined when it is missing, unreadable, or not
 * this user's own file (another user's, or writable by others). What a cache
 * file holds is run (V8's code cache) or stored in a registry (parsed
 * configs, row hashes): under sudo with HOME kept, or a shared
 * XDG_CACHE_HOME, root would otherwise trust what another user wrote. One
 * open, fstat and read: the same syscalls as readFileSync.
 */
export function readOwnCacheFile(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && (st.uid !== uid || (st.mode & 0o022) !== 0))) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
