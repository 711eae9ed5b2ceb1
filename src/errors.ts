import { shownPath } from './shown-path.js';
/**
 * The error hierarchy of tenantctl. Every expected failure is one of these;
 * the CLI maps them to exit codes and words in one place (src/cli/exit-codes.ts).
 * Import them only from this module so `instanceof` always works.
 *
 * Errors carry a typed `reason` (and for batches, what was done before they
 * happened), never a CLI flag name: the library's callers decide how to say it.
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
  readonly reason?: string;
  /** Reason `closed` on a command cut short midway: its report of what it did before the close (a migration's batches written). */
  readonly partial?: unknown;
  constructor(message: string, options?: { cause?: unknown; reason?: string; partial?: unknown }) {
    super(message, options);
    this.reason = options?.reason;
    this.partial = options?.partial;
  }
}

/** The library's owner closed it (Tenantctl.close()): a call it cut short, not an outage. */
export const closedByOwner = (err: unknown): boolean => err instanceof UsageError && err.reason === 'closed';

/** A negative answer: tenant not found (exit 1). */
export class NotFoundError extends TenantctlError {
  readonly exitCode = 1;
  /** `no-tenants-dir`: looked for in YAML where there is no tenants directory (run from elsewhere?). */
  readonly reason?: string;
  constructor(message: string, options?: { cause?: unknown; reason?: string }) {
    super(message, options);
    this.reason = options?.reason;
  }
}

/** A negative answer: permission denied, or something found wrong (exit 1). */
export class DeniedError extends TenantctlError {
  readonly exitCode = 1;
}

/** Why a backend could not serve. */
export type BackendReason =
  /** Nothing configured for it (no Redis URL; no embedded registry found by a read). */
  | 'not-configured'
  /** Could not connect (refused, DNS, TLS). */
  | 'unreachable'
  /** The server answered and refused the credentials (wrong password, unknown user, bad API key): a retry will not help. */
  | 'refused-login'
  /** Connected, but an operation did not finish within the deadline. */
  | 'timeout'
  /** Held by another process (the embedded registry's lock, a migration lock). */
  | 'in-use'
  /** The server refused for lack of rights (NOPERM, permission denied). */
  | 'no-permission'
  /** Writes done on a Redis master that was (or was being) failed over: they may come undone. */
  | 'failed-over'
  /** A Redis Cluster node given as one server: it holds only its own slots' keys. */
  | 'cluster-node'
  /** A Redis replica written to (READONLY): it takes no writes, however often asked. */
  | 'read-only'
  /** Sentinels answered, and none knows a master of the name given. */
  | 'unknown-master'
  /** The registry lacks tenantctl's tables or column, and its owner applies them (Supabase: in the SQL editor). */
  | 'no-schema'
  /** A PostgreSQL database without the tenants table: no registry at all (the wrong DATABASE_URL?). */
  | 'no-tables'
  /**
   * The server answered this command with an error (OOM under maxmemory, MISCONF, an unknown or renamed
   * command, an invalid argument): the connection is fine, and other commands still run.
   */
  | 'rejected'
  /** A dropped connection, or a server not serving for now (LOADING, BUSY, CLUSTERDOWN, MASTERDOWN, TRYAGAIN, NOREPLICAS). */
  | 'failed';

/** What a batch had done when it stopped (deleted keys, written items). */
export interface BatchProgress {
  /** Items done (keys deleted, tenants written). */
  done: number;
  /** The same per group (family), when it applies. */
  groups?: Record<string, number>;
}

/** A backend the command needs (Redis, the registry) is unreachable or failed: exit 3. */
export class BackendUnavailableError extends TenantctlError {
  readonly exitCode = 3;
  readonly reason: BackendReason;
  /** Set when a batch was under way: what it had done before the backend failed. */
  readonly progress?: BatchProgress;
  /** The command's report of what it did before the failure (per tenant, say), when it has one. */
  readonly partial?: unknown;
  /** The server answered this command (refused it, or replied with an error): the connection works, no outage. */
  get answered(): boolean {
    return this.refused || this.reason === 'rejected';
  }
  /** The server answered and refused (the login, the rights, a write to a replica, a Cluster node as one server): a rerun is refused the same way. */
  get refused(): boolean {
    return this.reason === 'refused-login' || this.reason === 'no-permission' || this.reason === 'cluster-node' || this.reason === 'read-only' || this.reason === 'unknown-master' || this.reason === 'no-schema' || this.reason === 'no-tables';
  }
  constructor(
    readonly backend: 'redis' | 'registry',
    message: string,
    options?: { cause?: unknown; reason?: BackendReason; progress?: BatchProgress; partial?: unknown },
  ) {
    super(message, options);
    this.reason = options?.reason ?? 'failed';
    this.progress = options?.progress;
    this.partial = options?.partial;
  }

  /** The same failure, with the batch's progress (and the report of what was done) attached. */
  withProgress(progress: BatchProgress | undefined, partial?: unknown): BackendUnavailableError {
    return new BackendUnavailableError(this.backend, this.message, { cause: this.cause, reason: this.reason, progress, partial });
  }
}

/** Some items of a batch failed; the rest were done and reported: exit 4. */
export class PartialFailureError extends TenantctlError {
  readonly exitCode = 4;
  /** The command's report of what it did before the failure (rendered before the exit), when it has one. */
  readonly partial?: unknown;
  /** A deletion's count of what it did (keys deleted, per family), when it was one. */
  readonly progress?: BatchProgress;
  constructor(message: string, options?: { cause?: unknown; partial?: unknown; progress?: BatchProgress }) {
    super(message, options);
    this.partial = options?.partial;
    this.progress = options?.progress;
  }
}

/**
 * What stopped the work: the CLI aborts with the signal's name; a program that aborts its own signal is
 * 'abort' (it was said to be SIGINT).
 */
export type StopCause = StopSignal | 'abort';

/** The signals the CLI stops on: Ctrl-C, a kill, and a hang-up (an ssh session or terminal gone: it ended a sweep unreported). */
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** Each signal's exit code (128 + its number) and word. */
export const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
export const SIGNAL_WORD: Record<StopSignal, string> = { SIGINT: 'interrupted', SIGTERM: 'terminated', SIGHUP: 'hung up' };

export const stopCause = (signal: AbortSignal): StopCause => (signal.reason === 'SIGINT' || signal.reason === 'SIGTERM' || signal.reason === 'SIGHUP' ? signal.reason : 'abort');

/** "interrupted by SIGINT", or "aborted". */
export const stoppedBy = (cause: StopCause): string => (cause === 'abort' ? 'aborted' : `interrupted by ${cause}`);

/** Stopped by SIGINT (exit 130), SIGTERM (exit 143) or its caller's abort between batches; what was done is reported. */
export class InterruptedError extends TenantctlError {
  readonly exitCode: number;
  constructor(
    readonly signal: StopCause,
    message: string,
    readonly progress?: BatchProgress,
    /** The command's report of what it did before stopping (rendered before the exit). */
    readonly partial?: unknown,
  ) {
    super(message);
    this.exitCode = signal === 'abort' ? 130 : SIGNAL_EXIT[signal];
  }
}

/** A malformed tenant file: reported as `file:line: reason`. */
export class TenantFileError extends UsageError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly detail: string,
  ) {
    super(`${shownPath(file)}${line ? `:${line}` : ''}: ${detail}`, { reason: 'bad-file' });
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

/**
 * A wait for a connection that a signal ends: `waiting` as it is, or an InterruptedError ("interrupted by
 * SIGINT while connecting to Redis") as soon as the signal aborts. The wait itself goes on (its owner's
 * close() ends it). A command stopped by its first signal while a silent server kept it connecting waited
 * out the whole timeout, then exited 3 (a review: 13 s after the signal with a 15 s registry timeout).
 */
export function untilAborted<T>(waiting: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return waiting;
  if (signal.aborted) return Promise.reject(interruption(signal, what));
  // The callers of one wait share one listener (twenty callers of a registry opening gave Node's
  // MaxListenersExceededWarning).
  const shared = SHARED_WAITS.get(waiting);
  if (shared?.signal === signal) return shared.wait as Promise<T>;
  const wait = new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(interruption(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    waiting.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
  SHARED_WAITS.set(waiting, { signal, wait });
  return wait;
}
const SHARED_WAITS = new WeakMap<Promise<unknown>, { signal: AbortSignal; wait: Promise<unknown> }>();

/** What a wait ended by an aborted signal says: "interrupted by SIGINT while connecting to Redis". */
export function interruption(signal: AbortSignal, what: string): InterruptedError {
  const cause = stopCause(signal);
  return new InterruptedError(cause, `${stoppedBy(cause)} while ${what}`);
}

/** Throws when a signal asked the work to stop (checked between batches). */
export function throwIfAborted(signal: AbortSignal | undefined, progress: () => BatchProgress, what: string, partial?: unknown): void {
  if (!signal?.aborted) return;
  const sig = stopCause(signal);
  const p = progress();
  throw new InterruptedError(sig, `${stoppedBy(sig)}: ${what} stopped after ${p.done} done`, p, partial);
}
