import { CommanderError } from 'commander';
import { TenantctlError, describeError } from '../errors.js';

/** DESIGN.md's exit codes. */
export const EXIT = { OK: 0, NEGATIVE: 1, USAGE: 2, BACKEND: 3, PARTIAL: 4, INTERNAL: 70 } as const;

/**
 * The one place errors become exit codes and one-line messages. Expected
 * failures never print a stack; an unexpected one prints it only with
 * TENANTCTL_DEBUG=1.
 */
export function exitCodeFor(err: unknown): { code: number; message?: string } {
  if (err instanceof CommanderError) {
    // commander has already printed its one-line message.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return { code: EXIT.OK };
    return { code: err.exitCode === 0 ? EXIT.OK : EXIT.USAGE };
  }
  if (err instanceof TenantctlError) return { code: err.exitCode, message: describeError(err) };
  return { code: EXIT.INTERNAL, message: `internal error: ${describeError(err)}` };
}
