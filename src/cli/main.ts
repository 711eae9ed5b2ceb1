import { DeniedError, describeError } from '../errors.js';
import { buildProgram } from './program.js';
import { exitCodeFor } from './exit-codes.js';

/** Runs the CLI; resolves with the exit code (also set on process.exitCode). */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const { code, message } = exitCodeFor(err);
    // A denial is an answer, not an error: its line carries no "error:" prefix.
    if (message) process.stderr.write(err instanceof DeniedError ? `${message}\n` : `error: ${message}\n`);
    if (code === 70 && process.env.TENANTCTL_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? describeError(err)}\n`);
    process.exitCode = code;
  }
  return Number(process.exitCode ?? 0);
}
