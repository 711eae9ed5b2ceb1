import { appendFileSync, closeSync, constants, fstatSync, openSync, realpathSync, statfsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { UsageError, describeError } from '../errors.js';
import { maskArgument, maskUrlsIn } from '../redact.js';
import { makeDirectory } from '../make-directory.js';

/**
 * Whether the file system the file is on (links followed: `/dev/fd/3`, a link into a full tmpfs) has no block
 * left for this user (root may use the reserved ones).
 */
function noRoomFor(file: string): boolean {
  try {
    const fs = statfsSync(realpathSync(file));
    return (process.getuid?.() === 0 ? fs.bfree : fs.bavail) === 0;
  } catch {
    // Not known: the write says.
    return false;
  }
}

/** One line of the audit log: who did what to which scope, how much, and how it ended. */
export interface AuditRecord {
  time: string;
  user: string;
  host: string;
  pid: number;
  command: string;
  /** The command line, credentials masked. */
  argv: string[];
  /** What it was asked to touch: tenants, families, businesses. */
  scope: unknown;
  /** What it did: keys deleted, items written, ... */
  counts?: Record<string, number>;
  outcome: 'ok' | 'partial' | 'failed' | 'interrupted' | 'refused';
  exit_code: number;
  error?: string;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/**
 * Appends one JSON line per write or deletion to the audit log, also on
 * failure and interruption. One `appendFileSync` per line: lines of several
 * processes never interleave (O_APPEND), and a line is on disk before the
 * process exits.
 */
export class AuditLog {
  private pending: { command: string; scope: unknown } | undefined;

  constructor(
    private readonly file: string | undefined,
    /** Where a line that could not be written is reported (the work is done by then: it keeps its exit code). */
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /**
   * Marks the run as a write to record (called before the work starts, so a
   * failure is recorded too). The log is opened for appending first: a log
   * that cannot be written stops the command before it changes anything
   * (UsageError), not after, when the work could no longer be undone.
   */
  begin(command: string, scope: unknown): void {
    if (!this.file) return;
    const refuse = (why: string) => new UsageError(`audit log ${this.file} cannot be written (${why}); nothing was done`, { reason: 'audit-log' });
    let fd: number;
    try {
      makeDirectory(path.dirname(this.file));
      // Non-blocking: a FIFO nobody reads made open() wait for a reader, deaf to SIGTERM (ENXIO now, refused;
      // a Unix socket gives ENXIO too).
      fd = openSync(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK, 0o640);
    } catch (err) {
      throw refuse((err as NodeJS.ErrnoException).code === 'ENXIO' ? 'nothing reads it: a FIFO or a socket' : ((err as NodeJS.ErrnoException).code ?? describeError(err)));
    }
    // Opening is not writing: a device (/dev/full) or a full file system opened fine, the keys were deleted,
    // and only then the line was lost (a warning, exit 0; a probe). Refused before anything is done.
    try {
      if (!fstatSync(fd).isFile()) throw refuse('not a regular file');
      if (noRoomFor(this.file)) throw refuse('ENOSPC: no space left on its file system');
    } finally {
      closeSync(fd);
    }
    this.pending = { command, scope };
  }

  /** What the run has confirmed done so far (a sweep's keys deleted), for the line of a run ended at once. */
  confirmed: Record<string, number> | undefined;

  /** Notes what the running write has confirmed done so far (see confirmed). */
  progress(counts: Record<string, number>): void {
    if (this.pending) this.confirmed = counts;
  }

  /** Writes the line for a begun run; a no-op when nothing was begun or no log is configured. */
  finish(outcome: AuditRecord['outcome'], exitCode: number, counts?: Record<string, number>, error?: string): void {
    if (!this.file || !this.pending) return;
    const record: AuditRecord = {
      time: new Date().toISOString(),
      user: osUser(),
      host: hostname(),
      pid: process.pid,
      command: this.pending.command,
      argv: process.argv.slice(2).map((a) => maskArgument(a)),
      scope: this.pending.scope,
      ...(counts ? { counts } : {}),
      outcome,
      exit_code: exitCode,
      ...(error ? { error: maskUrlsIn(error) } : {}),
    };
    this.pending = undefined;
    try {
      appendFileSync(this.file, `${JSON.stringify(record)}\n`);
    } catch (err) {
      // Writable at begin(), not now (a full disk, a rotated file's directory gone): said, never the command's result.
      this.warn(`warning: audit log ${this.file}: this run's line could not be written (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`);
    }
  }
}
