import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { UsageError } from '../errors.js';

export type ChangeSource = 'notify' | 'reconcile' | 'verify';

/** What `watch` counts, served as Prometheus text on request. */
export class WatchMetrics {
  /** Changes received, by where they came from: a notification, a reconcile query, a verify pass after a reconnect. */
  readonly changes: Record<ChangeSource, number> = { notify: 0, reconcile: 0, verify: 0 };
  keysDeleted = 0;
  readonly reconnects = { postgres: 0, redis: 0 };
  readonly up = { postgres: 0, redis: 0 };
  reconciles = 0;
  /** From the trigger (server clock) to the keys being gone, of the last change applied; undefined until one is. */
  lastLagMs: number | undefined;
  /** Changes received but not applied yet (Redis down, or a batch under way). */
  pending = 0;
  /** Notifications on the channel that were not changes tenantctl knows. */
  ignored = 0;
  /** Whether the change triggers are installed (checked at every heartbeat); undefined until first seen. */
  triggersInstalled: number | undefined;

  /** The text exposition format (version 0.0.4). */
  toPrometheus(): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[labels: string, value: number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    metric('tenantctl_watch_changes_total', 'counter', 'Registry changes seen, by source (notify: a trigger notification; reconcile: found by updated_at after a reconnect; verify: a stale cache entry found after a reconnect).',
      Object.entries(this.changes).map(([s, n]) => [`{source="${s}"}`, n]));
    metric('tenantctl_watch_keys_deleted_total', 'counter', 'Cache keys deleted by watch.', [['', this.keysDeleted]]);
    metric('tenantctl_watch_reconnects_total', 'counter', 'Reconnections after a lost connection, by backend.',
      Object.entries(this.reconnects).map(([b, n]) => [`{backend="${b}"}`, n]));
    metric('tenantctl_watch_up', 'gauge', 'Whether watch is connected to the backend (1) or reconnecting (0).',
      Object.entries(this.up).map(([b, n]) => [`{backend="${b}"}`, n]));
    metric('tenantctl_watch_reconciles_total', 'counter', 'Reconciliations run (at start and after every reconnect).', [['', this.reconciles]]);
    metric('tenantctl_watch_pending_changes', 'gauge', 'Changes received and not applied yet.', [['', this.pending]]);
    metric('tenantctl_watch_ignored_notifications_total', 'counter', 'Notifications on the channel that were not changes tenantctl knows.', [['', this.ignored]]);
    if (this.triggersInstalled !== undefined) {
      metric('tenantctl_watch_triggers_installed', 'gauge', 'Whether the change triggers are installed (1); at 0 changes arrive only by polling reconciliation at every heartbeat.', [['', this.triggersInstalled]]);
    }
    if (this.lastLagMs !== undefined) {
      metric('tenantctl_watch_last_lag_seconds', 'gauge', 'From the trigger (database clock) to the keys being gone, for the last change applied (milliseconds precision).', [['', this.lastLagMs / 1000]]);
    }
    return `${lines.join('\n')}\n`;
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** `host:port`, `[v6]:port` or `port` (loopback). Port 0 picks a free one. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  // Named by what it is, not by the flag (the CLI adds that: the library calls this too).
  if (!m || port > 65535) throw new UsageError(`metrics address ${JSON.stringify(text.slice(0, 80))}: expected host:port (e.g. 127.0.0.1:9464) or a port`, { reason: 'bad-metrics' });
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  if (host !== 'localhost' && !isIP(host)) throw new UsageError(`metrics address: ${JSON.stringify(host.slice(0, 80))} is not an IP address (or localhost)`, { reason: 'bad-metrics' });
  return { host, port };
}

export const isLoopback = (host: string) => LOOPBACK.has(host) || host.startsWith('127.');

/**
 * Serves `GET /metrics` (Prometheus text) and nothing else. Resolves once
 * listening, with the URL (the real port when 0 was asked for) and a close().
 */
export async function serveMetrics(address: { host: string; port: number }, metrics: WatchMetrics): Promise<{ url: string; close: () => Promise<void> }> {
  // Loaded here, not at the top: this module is part of the CLI bundle's start, and only `watch --metrics` serves HTTP.
  const { createServer } = await import('node:http');
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : metrics.toPrometheus());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new UsageError(`metrics address ${address.host}:${address.port}: cannot listen (${err.code ?? err.message})`, { cause: err, reason: 'bad-metrics' })),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
