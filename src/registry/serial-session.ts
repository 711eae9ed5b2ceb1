import { AsyncLocalStorage } from 'node:async_hooks';
import type { SqlExecutor } from './sql-store.js';

/**
 * One database session shared by concurrent callers (a service's library
 * calls, a migration and its reads): one statement at a time, in call order,
 * and a transaction holds the session for its whole length. Without this, a
 * caller's statement sent while another caller's BEGIN ... COMMIT is open runs
 * inside that transaction (it reads uncommitted rows, and its own writes are
 * rolled back with it), and pg warns that queueing on a busy client is
 * deprecated (it goes in pg 9).
 */
export class SerialSession implements SqlExecutor {
  private tail: Promise<unknown> = Promise.resolve();
  /** Set inside exclusive(): statements of the holder run at once (they are its transaction's). */
  private readonly holding = new AsyncLocalStorage<true>();

  constructor(private readonly db: SqlExecutor) {}

  /** Whether the connection under it was lost (a pg client's error or end): it will not come back. */
  get lost(): boolean {
    return this.db.lost ?? false;
  }

  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> {
    return this.turn(() => this.db.query(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.turn(() => this.db.exec(sql));
  }

  /** Runs `work` holding the session: other callers' statements wait until it ends. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.turn(() => this.holding.run(true, work));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private turn<T>(op: () => Promise<T>): Promise<T> {
    if (this.holding.getStore()) return op();
    const run = this.tail.then(() => op());
    this.tail = run.catch(() => undefined);
    return run;
  }
}
