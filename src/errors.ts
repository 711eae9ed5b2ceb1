/**
 * The error hierarchy of tenantctl. Every expected failure is one of these;
 * the CLI maps them to exit codes in one place (src/cli/exit-codes.ts).
 * Import them only from this module so `instanceof` always works.
 */
export abstract class TenantctlError extends Error {
  abstract readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flag, invalid id, malformed input file, missing --yes: exit 2. */
export class UsageError extends TenantctlError {
  readonly exitCode = 2;
}

/** A negative answer: tenant not found (exit 1). */
export class NotFoundError extends TenantctlError {
  readonly exitCode = 1;
}

/** A negative answer: permission denied (exit 1). */
export class DeniedError extends TenantctlError {
  readonly exitCode = 1;
}

/** A backend the command needs (Redis, the registry) is unreachable or failed: exit 3. */
export class BackendUnavailableError extends TenantctlError {
  readonly exitCode = 3;
  constructor(
    readonly backend: 'redis' | 'registry',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Some items of a batch failed; the rest were done and reported: exit 4. */
export class PartialFailureError extends TenantctlError {
  readonly exitCode = 4;
}

/** A malformed tenant file: reported as `file:line: reason`. */
export class TenantFileError extends UsageError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${reason}`);
  }
}

/** The one-line text of any error, for stderr; never a stack trace for expected failures. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error && err.cause.message && !err.message.includes(err.cause.message)
      ? ` (${err.cause.message})`
      : '';
    return `${err.message}${cause}`.replace(/\s*\n\s*/g, ' ');
  }
  return String(err);
}
