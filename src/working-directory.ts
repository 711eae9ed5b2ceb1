import { UsageError } from './errors.js';

/**
 * The process's working directory, or a usage error where it was removed while in use (a shell still in
 * a deleted directory): `process.cwd()` throws ENOENT there, which surfaced as "internal error", exit 70.
 */
export function workingDirectory(): string {
  try {
    return process.cwd();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // Where to run instead is the caller's to say (the CLI: cd; a library: the cwd option), by the reason.
    throw new UsageError('the working directory no longer exists (removed while in use)', { reason: 'no-working-directory', cause: err });
  }
}
