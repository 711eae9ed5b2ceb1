import { Option, type Command } from 'commander';
import { BackendUnavailableError, InterruptedError, UsageError } from '../../errors.js';
import { describeRegistry } from '../../registry/registry-spec.js';
import type { TriggerChange } from '../../registry/watch-triggers.js';
import { installWatch, uninstallWatch, watchableUrl, Watcher, type WatchEvent } from '../../services/watch.js';
import { isLoopback, parseListenAddress, serveMetrics, WatchMetrics } from '../../services/watch-metrics.js';
import { action, intArg, type CommandResult } from '../action.js';
import { onStoppedAtOnce, stoppingSignal } from '../signals.js';
import type { Output } from '../output.js';
import { plural } from '../charts.js';
import { MAX_OVERLAP_MS, MAX_TIMEOUT_MS } from '../../config/positive-int.js';

interface WatchOptions {
  install?: boolean;
  uninstall?: boolean;
  printSql?: boolean;
  metrics?: string;
  heartbeat?: number;
  reconnectMax?: number;
  overlap?: number;
}

/** One line per change: time, how it was found, what changed, what was deleted, the lag. */
export function eventLine(e: WatchEvent): string {
  const families = Object.entries(e.families).map(([f, n]) => `${f} ${n}`).join(', ');
  return `${e.time} ${e.source} ${e.table} ${e.op} ${e.tenant ?? '*'}: deleted ${plural(e.deleted, 'key')}` +
    `${families ? ` (${families})` : ''}${e.changes > 1 ? `, ${e.changes} changes folded` : ''}${e.lag_ms !== undefined ? `, lag ${e.lag_ms} ms` : ''}`;
}

function renderTriggers(out: Output, r: TriggerChange & { registry: string }) {
  const words = { installed: 'installed', updated: 'updated', unchanged: 'already installed (nothing changed)', removed: 'removed', absent: 'not installed (nothing to remove)' };
  // A summary: piped, the rows come alone (a script reads table and trigger).
  out.summary(`watch triggers ${words[r.status]} in ${r.registry}`);
  if (r.triggers.length) out.table(['table', 'trigger'], r.triggers.map((t) => t.split('.')));
}

/** `watch`: invalidate on registry changes as they commit; `--install` / `--uninstall` manage the triggers. */
export function register(program: Command): void {
  program
    .command('watch')
    .description('invalidate a tenant\'s cache keys as its registry rows change (PostgreSQL LISTEN/NOTIFY), reconnecting and reconciling; runs until SIGINT/SIGTERM')
    .option('--install', 'create the change triggers on tenants, the subscription tables and the catalogue (idempotent, one transaction), then exit')
    .option('--uninstall', 'remove the change triggers and their function, then exit')
    .option('--print-sql', 'print the SQL --install runs (with --uninstall: the SQL it runs), then exit')
    .option('--metrics <address>', 'serve Prometheus text at GET /metrics on host:port (e.g. 127.0.0.1:9464)')
    .addOption(new Option('--heartbeat <ms>', 'round trip to PostgreSQL and Redis this often, to notice a silent loss (default 5000)').argParser(intArg('--heartbeat', MAX_TIMEOUT_MS)))
    .addOption(new Option('--reconnect-max <ms>', 'longest wait between reconnection attempts (default 5000; the first is 100 ms, doubling)').argParser(intArg('--reconnect-max', MAX_TIMEOUT_MS)))
    .addOption(new Option('--overlap <seconds>', 'after a reconnect, also invalidate rows whose updated_at is this much older than the last change seen (default 300)').argParser(intArg('--overlap', MAX_OVERLAP_MS / 1000, 0)))
    .action(
      action<[], WatchOptions>(async (ctx, opts): Promise<CommandResult> => {
        if (opts.install && opts.uninstall) throw new UsageError('--install and --uninstall together: choose one');
        if (opts.printSql) {
          const { uninstallSql, watchTriggerSql } = await import('../../registry/watch-triggers.js');
          const sql = opts.uninstall ? uninstallSql() : watchTriggerSql();
          return { data: { sql }, render: (out: Output) => out.stdout.write(sql.endsWith('\n') ? sql : `${sql}\n`) };
        }
        const url = watchableUrl(ctx.config.registry);
        const registry = describeRegistry(ctx.config.registry);
        if (opts.install || opts.uninstall) {
          const what = opts.install ? 'watch --install' : 'watch --uninstall';
          ctx.audit.begin(what, { registry });
          const r = opts.install ? await installWatch(url, ctx.config.registryTimeoutMs) : await uninstallWatch(url, ctx.config.registryTimeoutMs);
          const data = { ...r, registry };
          return { data, render: (out: Output) => renderTriggers(out, data), counts: { triggers: r.status === 'unchanged' || r.status === 'absent' ? 0 : r.triggers.length } };
        }

        // Bad input first (exit 2), whatever else is missing.
        const address = opts.metrics === undefined ? undefined : parseListenAddress(opts.metrics);
        if (!ctx.cache.spec) throw new BackendUnavailableError('redis', 'watch needs Redis: no Redis configured', { reason: 'not-configured' });
        // It deletes keys: one audit line for the run, with what it did, however it ends (a probe: none was
        // written, and an unwritable log was not refused).
        ctx.audit.begin('watch', { registry });
        const metrics = new WatchMetrics();
        if (address && !isLoopback(address.host)) ctx.out.warn(`warning: --metrics ${address.host} is not loopback: anyone who can reach it reads the counters (no authentication)`);
        const server = address ? await serveMetrics(address, metrics) : undefined;
        const json = ctx.out.isDocument;
        const watcher = new Watcher(
          { url, registryTimeoutMs: ctx.config.registryTimeoutMs, redis: ctx.cache.spec, keys: ctx.keys, source: ctx.source, env: ctx.env },
          {
            signal: ctx.signal,
            metrics,
            heartbeatMs: opts.heartbeat,
            overlapMs: opts.overlap === undefined ? undefined : opts.overlap * 1000,
            reconnect: opts.reconnectMax === undefined ? undefined : { initialMs: Math.min(100, opts.reconnectMax), maxMs: opts.reconnectMax },
            onEvent: (e) => (json ? ctx.out.streamItem(e) : ctx.out.line(eventLine(e))),
            onNotice: (line) => ctx.out.info(line),
            onReady: () => ctx.out.info(`watch: watching ${registry} -> ${ctx.cache.target}${server ? `; metrics on ${server.url}` : ''}`),
          },
        );
        // A second signal ends it at once: what was received and not applied is named (no rerun applies it).
        onStoppedAtOnce(() => {
          const notice = watcher.notAppliedNotice(true);
          return notice && `without applying the changes received: ${notice.replace(/^watch: /, '')}`;
        });
        try {
          await watcher.run();
        } finally {
          await server?.close();
        }
        const notApplied = watcher.notAppliedNotice();
        if (notApplied) ctx.out.info(notApplied);
        const m = metrics;
        const changes = m.changes.notify + m.changes.reconcile + m.changes.verify;
        const summary = { changes: m.changes, keys_deleted: m.keysDeleted, reconnects: m.reconnects, pending: m.pending };
        const said = `${changes} change(s) seen, ${m.keysDeleted} key(s) deleted, ${m.reconnects.postgres + m.reconnects.redis} reconnect(s)${m.pending ? `, ${m.pending} change(s) not applied` : ''}`;
        // Its reader gone (stdout closed: `watch | head -1`), no signal: said as that, and its own exit (0).
        const sig = stoppingSignal();
        if (!sig) {
          ctx.out.info(`watch stopped: its output was closed: ${said}`);
          return { data: summary, render: () => undefined, counts: { done: changes, keys_deleted: m.keysDeleted } };
        }
        throw new InterruptedError(sig, `watch stopped by ${sig}: ${said}`, { done: changes, groups: { keys_deleted: m.keysDeleted } }, summary);
      }),
    );
}
