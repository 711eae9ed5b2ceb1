import { appendFileSync, mkdirSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { maskUrlsIn } from '../redact.js';

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

  constructor(private readonly file: string | undefined) {}

  /** Marks the run as a write to record (called before the work starts, so a failure is recorded too). */
  begin(command: string, scope: unknown): void {
    if (this.file) this.pending = { command, scope };
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
      argv: process.argv.slice(2).map((a) => maskUrlsIn(a)),
      scope: this.pending.scope,
      ...(counts ? { counts } : {}),
      outcome,
      exit_code: exitCode,
      ...(error ? { error: maskUrlsIn(error) } : {}),
    };
    this.pending = undefined;
    mkdirSync(path.dirname(this.file), { recursive: true });
    appendFileSync(this.file, `${JSON.stringify(record)}\n`);
  }
}
