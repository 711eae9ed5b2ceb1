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
    throw new UsageError('the working directory no longer exists (removed while in use): cd to an existing directory and run again', { reason: 'no-working-directory', cause: err });
  }
}
