import type { SqlExecutor } from './sql-store.js';

/**
 * One database session shared by concurrent callers (a service's library
 * calls, a migration and its reads): one statement at a time, in call order,
 * and a transaction holds the session for its whole length. Without this, a
 * caller's statement sent while another caller's BEGIN ... COMMIT is open runs
 * inside that transaction (it reads uncommitted rows, and its own writes are
 * rolled back with it), and pg warns that queueing on a busy client is
 * deprecated (it goes in pg 9).
 *
 * The holder of exclusive() is handed the connection itself: its statements
 * go through that, never through this session (they would wait behind the
 * holder forever). No AsyncLocalStorage to tell the holder apart: on Node 20
 * it turns on async hooks for every promise of the process, for good (2.4x
 * the cost of an await, measured).
 */
export class SerialSession implements SqlExecutor {
  private tail: Promise<unknown> = Promise.resolve();

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

  /** Runs `work` holding the session, with the connection to run its statements on; others wait until it ends. */
  exclusive<T>(work: (direct: SqlExecutor) => Promise<T>): Promise<T> {
    return this.turn(() => work(this.db));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private turn<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => op());
    this.tail = run.catch(() => undefined);
    return run;
  }
}
