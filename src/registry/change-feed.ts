import { isValidId } from '../keys/ids.js';
import { maskUrl } from '../redact.js';
import { QUERY_READ_MARGIN_MS, SqlRegistryStore, type SqlExecutor } from './sql-store.js';
import { CHANGE_CHANNEL, WATCHED_TABLES, watchTriggerStatus, type WatchTriggerStatus } from './watch-triggers.js';
import { loadPg } from './load-pg.js';
import { connectPgClient } from './pg-settings.js';
import { registryUnreachable } from './postgres-store.js';

/**
 * What a registry change invalidates:
 * - `tenant`: every key family of one tenant (a `tenants` row);
 * - `permissions`: `permissions:<business>` (a subscription or an override);
 * - `all-tenants`: every key of every family (`tenants` truncated);
 * - `all-permissions`: every `permissions:` entry (the catalogue, or a subscription table truncated).
 */
export type ChangeKind = 'tenant' | 'permissions' | 'all-tenants' | 'all-permissions';

export interface RegistryChange {
  kind: ChangeKind;
  /** The tenant or business (tenant, permissions). */
  id?: string;
  table: string;
  /** INSERT, UPDATE, DELETE, TRUNCATE, CHANGE (catalogue), or `changed` when found by a reconcile query. */
  op: string;
  /** The row's updated_at, ms since the epoch, when it has one. */
  at?: number;
  /** When the trigger ran (server clock), ms since the epoch. */
  ts?: number;
}

/**
 * A notification's payload as the changes it means (an UPDATE that changed a
 * row's id invalidates both ids), or the reason it is ignored (not ours, or
 * no id tenantctl accepts). A rename between a valid id and one tenantctl
 * refuses still invalidates the valid one, with `note` saying what was left
 * out (the whole notification was ignored: the old id's keys stayed cached).
 */
export function parseChangePayload(payload: string): { changes: RegistryChange[]; note?: string } | { ignored: string } {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(payload);
  } catch {
    return { ignored: 'not JSON' };
  }
  if (!p || typeof p !== 'object') return { ignored: 'not a JSON object' };
  const table = String(p.t);
  const kind = (WATCHED_TABLES as Record<string, ChangeKind>)[table];
  if (!kind) return { ignored: `unknown table ${JSON.stringify(table).slice(0, 60)}` };
  const op = String(p.op ?? 'CHANGE');
  const ts = typeof p.ts === 'number' ? p.ts : undefined;
  const at = typeof p.at === 'string' ? Date.parse(p.at) : undefined;
  if (op === 'TRUNCATE' || kind === 'all-permissions') return { changes: [{ kind: kind === 'tenant' ? 'all-tenants' : 'all-permissions', table, op, ts }] };
  const ids = [p.id, p.old_id].filter((x): x is string => typeof x === 'string');
  if (!ids.length) return { ignored: 'no id' };
  const valid = ids.filter((id) => isValidId(id));
  const bad = ids.find((id) => !isValidId(id));
  // (Not "no key can hold it": the services may cache under an id tenantctl refuses, tenant_config:café.)
  const why = bad !== undefined && `id ${JSON.stringify(bad.slice(0, 60))} is not a tenant id tenantctl accepts: its keys are not invalidated`;
  if (!valid.length) return { ignored: why || 'no id' };
  const changes = valid.map((id) => ({ kind, id, table, op, ts, at: Number.isFinite(at) ? at : undefined }));
  return why ? { changes, note: `${why} (${valid.map((id) => JSON.stringify(id)).join(', ')}: invalidated)` } : { changes };
}

export interface ChangeFeedOptions {
  /** Connect, statement and lock timeout, ms. */
  timeoutMs: number;
  /** Each change, as its notification arrives (delivered at its transaction's commit). */
  onChange: (change: RegistryChange) => void;
  /** A notification on the channel that is not a change tenantctl knows (`part`: the part of one, an id it refuses beside a valid one). */
  onIgnored?: (why: string, part?: 'part') => void;
  /** The connection is gone (once); every later call fails. */
  onLost: (err: unknown) => void;
  /** Where the URL's missing parts (user, password, PGSSLMODE...) come from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Gives up the connect under way when it aborts (watch stopped by a signal while a server is silent). */
  signal?: AbortSignal;
}

/**
 * One PostgreSQL session that LISTENs on the change channel and also serves
 * the reads a reconciliation needs (the registry interface, on the same
 * connection: one thing to lose, one thing to reconnect).
 */
export interface ChangeFeed {
  readonly description: string;
  /** Reads on this session (getTenants, getSubscriptions, getCatalogue, ...). */
  readonly registry: SqlRegistryStore;
  /**
   * The server's clock at the start of a round trip, ms. Every notification
   * of a transaction that committed before then has been delivered by the
   * time this resolves (the server sends them ahead of the reply).
   */
  heartbeat(): Promise<number>;
  /**
   * The tenants and subscriptions whose updated_at is after `sinceMs`, a page
   * at a time (keyset order), each page handed to `onPage` before the next is
   * read. Resolves to the server clock at the start and the rows found.
   */
  changedSince(sinceMs: number, pageSize: number, onPage: (changes: RegistryChange[]) => Promise<void>): Promise<{ serverNow: number; found: number }>;
  triggerStatus(): Promise<WatchTriggerStatus>;
  close(): Promise<void>;
}

/** Tables reconciled by updated_at (the catalogue and overrides have none: verify covers them). */
const RECONCILED: Array<{ table: string; id: string; kind: ChangeKind }> = [
  { table: 'tenants', id: 'id', kind: 'tenant' },
  { table: 'business_subscriptions', id: 'business_id', kind: 'permissions' },
];

/** Opens the session and starts listening; a failure to connect is a BackendUnavailableError (`unreachable`). */
export async function openChangeFeed(url: string, options: ChangeFeedOptions): Promise<ChangeFeed> {
  const pg = loadPg();
  const description = `postgres ${maskUrl(url)}`;
  const client = await connectPgClient(
    pg.Client,
    url,
    options.env ?? process.env,
    {
      connectionTimeoutMillis: options.timeoutMs,
      statement_timeout: options.timeoutMs,
      lock_timeout: options.timeoutMs,
      query_timeout: options.timeoutMs + QUERY_READ_MARGIN_MS,
      application_name: 'tenantctl watch',
      // A peer that vanished without a FIN (a cut cable, a dropped NAT entry) is found by the heartbeat, and by TCP too.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    },
    (err) => registryUnreachable(description, err, options.timeoutMs),
    options.signal,
  );
  let lost = false;
  let closing = false;
  const lose = (err: unknown) => {
    if (lost) return;
    lost = true;
    if (!closing) options.onLost(err);
  };
  client.on('error', (err) => lose(err));
  client.on('end', () => lose(new Error('the server closed the connection')));
  client.on('notification', (msg) => {
    if (msg.channel !== CHANGE_CHANNEL) return;
    const parsed = parseChangePayload(msg.payload ?? '');
    if ('ignored' in parsed) options.onIgnored?.(parsed.ignored);
    else {
      if (parsed.note) options.onIgnored?.(parsed.note, 'part');
      for (const c of parsed.changes) options.onChange(c);
    }
  });

  const close = async () => {
    closing = true;
    // end() waits for the server's goodbye, which a dead peer never sends: bounded, then the socket goes.
    await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  try {
    await client.query(`LISTEN ${CHANGE_CHANNEL}`);
  } catch (err) {
    await close();
    throw registryUnreachable(description, err, options.timeoutMs);
  }

  const executor: SqlExecutor = {
    query: async (sql, params) => ({ rows: (await client.query(sql, params as unknown[])).rows }),
    exec: async (sql) => {
      await client.query(sql);
    },
    close,
  };
  const registry = new SqlRegistryStore(executor, description, options.timeoutMs);
  // The feed's own reads go through the store's session too: one statement at a time on the one connection.
  const session = registry.db;
  const ms = (v: unknown) => Number(v);

  return {
    description,
    registry,
    heartbeat: () => registry.guard('checking the connection', async () => ms((await session.query('SELECT extract(epoch FROM statement_timestamp()) * 1000 AS now')).rows[0].now)),
    triggerStatus: () => registry.guard('checking the watch triggers', () => watchTriggerStatus(session)),
    changedSince: (sinceMs, pageSize, onPage) =>
      registry.guard('reading the rows changed while disconnected', async () => {
        const serverNow = ms((await session.query('SELECT extract(epoch FROM statement_timestamp()) * 1000 AS now')).rows[0].now);
        let found = 0;
        for (const { table, id, kind } of RECONCILED) {
          if (!(await session.query('SELECT to_regclass($1) IS NOT NULL AS present', [table])).rows[0].present) continue;
          // Keyset pages over (updated_at, id), the timestamp kept as the server's text so no precision is lost between pages.
          let after: [string, string] | undefined;
          for (;;) {
            const { rows } = await session.query(
              `SELECT ${id} AS id, updated_at::text AS at_text, extract(epoch FROM updated_at) * 1000 AS at
                 FROM ${table}
                WHERE ${after ? `(updated_at, ${id}) > ($1::timestamptz, $2)` : 'updated_at > to_timestamp($1::float8 / 1000)'}
                ORDER BY updated_at, ${id} LIMIT ${Math.max(1, Math.floor(pageSize))}`,
              after ?? [sinceMs],
            );
            if (!rows.length) break;
            const changes = rows.filter((r) => isValidId(String(r.id))).map((r) => ({ kind, id: String(r.id), table, op: 'changed', at: ms(r.at) }));
            found += changes.length;
            if (changes.length) await onPage(changes);
            const last = rows[rows.length - 1];
            after = [String(last.at_text), String(last.id)];
            if (rows.length < pageSize) break;
          }
        }
        return { serverNow, found };
      }),
    close,
  };
}
