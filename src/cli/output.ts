import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import { dump } from 'js-yaml';

import type { OutputFormat } from './output-formats.js';
import { visibleControls } from '../redact.js';

export type { OutputFormat } from './output-formats.js';

/** Colour level: NO_COLOR wins (chalk ignores it, supports-color#105), then FORCE_COLOR, then the terminal. */
export function colourLevel(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number(force);
    return n >= 1 && n <= 3 ? (n as 1 | 2 | 3) : 1;
  }
  // A terminal that says it cannot show colour (TERM=dumb: an editor's shell, a CI log viewer) gets none.
  return stream.isTTY && env.TERM !== 'dumb' ? 1 : 0;
}

type Cell = string | number | boolean | null | undefined;

/**
 * Where a command's results go: stdout carries data only (a table, plain
 * rows, or one JSON/YAML document); warnings, progress and diagnostics go to
 * stderr, each distinct warning once.
 */
export class Output {
  readonly c: ChalkInstance;
  readonly e: ChalkInstance;
  readonly format: OutputFormat;
  private readonly warned = new Set<string>();

  constructor(
    format: OutputFormat | undefined,
    readonly stdout: NodeJS.WriteStream = process.stdout,
    readonly stderr: NodeJS.WriteStream = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
    /** --debug: timings and full errors on stderr. */
    readonly debugging = false,
  ) {
    this.format = format ?? (stdout.isTTY ? 'table' : 'plain');
    this.c = new Chalk({ level: colourLevel(stdout, env) });
    this.e = new Chalk({ level: colourLevel(stderr, env) });
  }

  /** True when the output is a document (JSON / YAML), not a view. */
  get isDocument(): boolean {
    return this.format === 'json' || this.format === 'yaml';
  }

  get wide(): boolean {
    return this.format === 'wide';
  }

  /** True when pictures (bars, gauges) belong in the output: a view on a terminal. */
  get pictures(): boolean {
    return (this.format === 'table' || this.format === 'wide') && !!this.stdout.isTTY;
  }

  /** Writes one JSON or YAML document (YAML that js-yaml loads back to the same value). */
  data(value: unknown): void {
    if (this.format === 'yaml') this.stdout.write(dump(JSON.parse(JSON.stringify(value ?? null)), { lineWidth: -1, noRefs: true }));
    else this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  line(text = ''): void {
    this.stdout.write(`${visibleControls(text)}\n`);
  }

  /**
   * A summary under a view ("done: 2 create, ..."): on a terminal part of the
   * view; in plain form on stderr, so that what a pipe reads is the header and
   * the tab-separated rows alone.
   */
  summary(text: string): void {
    if (this.format === 'plain') this.stderr.write(`${visibleControls(text)}\n`);
    else this.line(text);
  }

  /**
   * A table: boxed on a terminal, tab-separated rows under a header line in
   * plain form. Columns listed in `wideOnly` appear only with `-o wide`.
   */
  table(head: string[], rows: Cell[][], options: { wideOnly?: number[] } = {}): void {
    const keep = (_: unknown, i: number) => this.wide || !options.wideOnly?.includes(i);
    const h = head.filter(keep);
    const body = rows.map((r) => r.filter(keep).map((x) => (x === null || x === undefined ? '' : String(x))));
    if (this.format === 'plain') {
      const clean = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').replace(/[\t\r\n]+/g, ' ');
      this.line(h.map(clean).join('\t'));
      for (const r of body) this.line(r.map(clean).join('\t'));
      return;
    }
    // No rule between rows: compact, half the lines.
    const t = new Table({ head: h.map((x) => this.c.bold(x)), style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
    for (const r of body) t.push(r);
    this.line(t.toString());
  }

  /** A warning line on stderr; the same warning twice is printed once. */
  warn(text: string): void {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    this.stderr.write(`${this.e.yellow(visibleControls(text))}\n`);
  }

  /** A progress or diagnostic line on stderr. */
  info(text: string): void {
    this.stderr.write(`${visibleControls(text)}\n`);
  }

  /** A --debug line on stderr (timings per step); nothing otherwise. */
  debug(text: string): void {
    if (this.debugging) this.stderr.write(`${this.e.dim(`debug: ${visibleControls(text)}`)}\n`);
  }
}

