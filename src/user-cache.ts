import os from 'node:os';
import path from 'node:path';

/**
 * The tool's directory in the user's cache: `$XDG_CACHE_HOME/tenantctl`, else
 * `~/.cache/tenantctl`. Caches live there, never in a project (a cache file
 * must not mark a directory as a project), and losing any of them only costs time.
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir() || os.tmpdir(), '.cache');
  return path.join(base, 'tenantctl');
}
