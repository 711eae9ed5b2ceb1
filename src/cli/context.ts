import { format as formatText } from 'node:util';
import { Tenantctl } from '../tenantctl.js';
import type { ConfigFlags } from '../config/config.js';
import { Output, type OutputFormat } from './output.js';
import { requestedFormat } from './output-formats.js';
import { AuditLog } from './audit-log.js';
import { debugFromEnv } from './debug-env.js';

export interface GlobalOptions extends ConfigFlags {
  json?: boolean;
  output?: OutputFormat;
  debug?: boolean;
  /** get-config --warm: cache what the services would on a miss. */
  warm?: boolean;
}

/**
 * Everything a command needs, built once before its action runs: the
 * library's composition root plus where output goes. `close()` runs in
 * `finally`, whatever happened.
 */
export class CliContext extends Tenantctl {
  readonly out: Output;
  /** Aborted by the first SIGINT / SIGTERM: long commands stop between batches. */
  readonly signal: AbortSignal;
  /** The audit log of this run (a command that writes begins its record before the work). */
  readonly audit: AuditLog;

  constructor(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env, signal: AbortSignal = new AbortController().signal) {
    const out = new Output(requestedFormat(opts), process.stdout, process.stderr, env, !!opts.debug || debugFromEnv(env));
    const { json: _json, output: _output, debug: _debug, warm, ...flags } = opts;
    super({
      flags,
      flagNames: 'command-line',
      env,
      warn: (m) => out.warn(m),
      debug: (m) => out.debug(m),
      // On a terminal only: a script's stderr gets no line for a step that merely takes time.
      progress: (m) => {
        if (process.stderr.isTTY) out.info(m);
      },
      // A command never waits for a failed Redis twice (DESIGN: no retry loops).
      redisRetryMs: Infinity,
      // The first signal stops between batches; what was written still loses its cached entries (the second exits).
      invalidateWritesPastSignal: true,
      // A CLI read never writes tenant_config: unless warming is asked for (DESIGN.md, get-config).
      populate: (config) => (warm || config.warmCache ? 'resolved' : 'none'),
      // The first SIGINT / SIGTERM ends a wait for a connection at once (a batch command stops between batches).
      signal,
    });
    this.out = out;
    // ioredis prints its own notes with console.warn ("[WARN] This Redis server's `default` user does not
    // require a password..."): in a CLI they become this tool's warning lines, each once.
    console.warn = (...args: unknown[]) => out.warn(`warning: ${formatText(...args).replace(/^\[(?:WARN|ERROR)\]\s*/, '')}`);
    this.signal = signal;
    this.audit = new AuditLog(this.config.auditLog, (m) => out.warn(m));
  }
}
