import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';

import type { OutputFormat } from './output-formats.js';
import { showControls, visibleControls } from '../redact.js';
import { Styled, shown } from './styled.js';
import { jsonText, yamlDump } from './document-text.js';

export { jsonText } from './document-text.js';

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

/** A table cell: data (shown by showControls as it enters the view), or the tool's own Styled text. */
export type Cell = string | number | boolean | null | undefined | Styled;

/** Colour (SGR) sequences: the tool's own, in Styled text; dropped from plain rows. */
const SGR = /\x1b\[[0-9;]*m/g;

/** A value as YAML that js-yaml loads back to the same value (its JSON form: no Dates, no undefined). */
const yamlText = (value: unknown): string => yamlDump(JSON.parse(JSON.stringify(value ?? null)), { lineWidth: -1, noRefs: true });

/** A line's text as stdout shows it: data with its control characters as `\xNN`, the tool's Styled text as it is. */
const lineText = (text: string | Styled): string => (text instanceof Styled ? visibleControls(text.text) : showControls(text));

/** How many characters Output.lines gathers before it writes. */
const LINES_CHUNK = 64 * 1024;

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

  /**
   * Views as tab-separated rows under a header line: `plain`, and `-o wide` piped (every column, but rows a
   * script can cut: it drew a box into the pipe). `-o table` asked for by name keeps its box.
   */
  get rows(): boolean {
    return this.format === 'plain' || (this.format === 'wide' && !this.stdout.isTTY);
  }

  /** True when pictures (bars, gauges) belong in the output: a view on a terminal. */
  get pictures(): boolean {
    return (this.format === 'table' || this.format === 'wide') && !!this.stdout.isTTY;
  }

  /** Writes one JSON or YAML document (YAML that js-yaml loads back to the same value). */
  data(value: unknown): void {
    if (this.format === 'yaml') this.stdout.write(yamlText(value));
    else this.stdout.write(`${jsonText(value, 2)}\n`);
  }

  /** One JSON document on a line of its own (watch --json's events). */
  jsonLine(value: unknown): void {
    this.stdout.write(`${jsonText(value)}\n`);
  }

  /**
   * One item of a stream (watch's events): a JSON line, or with -o yaml a YAML document of its own, `---`
   * first, so the stream loads as YAML (it was JSON lines, which YAML reads as one broken document).
   */
  streamItem(value: unknown): void {
    if (this.format === 'yaml') this.stdout.write(`---\n${yamlText(value)}`);
    else this.jsonLine(value);
  }

  /**
   * A line on stdout. A string is data (a key, an event line with a tenant's name in it): every control
   * character in it, line feeds included, is shown as `\xNN`. Styled text is the tool's own (its colours,
   * its line breaks), written as it is.
   */
  line(text: string | Styled = ''): void {
    this.stdout.write(`${lineText(text)}\n`);
  }

  /**
   * Lines on stdout, each as line() shows it, written in chunks: stdout to a
   * pipe or a file is synchronous, one system call a write, and one write a
   * line cost ~0.1 s for a 10,000-row migration report.
   */
  lines(texts: Iterable<string | Styled>): void {
    let chunk = '';
    for (const text of texts) {
      chunk += `${lineText(text)}\n`;
      if (chunk.length >= LINES_CHUNK) {
        this.stdout.write(chunk);
        chunk = '';
      }
    }
    if (chunk) this.stdout.write(chunk);
  }

  /**
   * A summary under a view ("done: 2 create, ..."): on a terminal part of the
   * view; in plain form on stderr, so that what a pipe reads is the header and
   * the tab-separated rows alone.
   */
  summary(text: string): void {
    if (this.rows) this.stderr.write(`${showControls(text)}\n`);
    else this.line(text);
  }

  /**
   * A table: boxed on a terminal, tab-separated rows under a header line in
   * plain form. Columns listed in `wideOnly` appear only with `-o wide`.
   * Each data cell is shown by showControls as it enters the table, before
   * any colour: an ESC, tab, carriage return or line feed in a value is `\xNN`,
   * so it never reaches the terminal and never splits a row. Styled cells (the
   * tool's own colour, a detail it wraps) are kept; piped, without colour and
   * on one line.
   */
  table(head: string[], rows: Cell[][], options: { wideOnly?: number[] } = {}): void {
    const keep = (_: unknown, i: number) => this.wide || !options.wideOnly?.includes(i);
    const h = head.filter(keep).map((x) => showControls(x));
    if (this.rows) {
      const cell = (x: Cell) => (x instanceof Styled ? x.text.replace(SGR, '').replace(/[\t\r\n]+/g, ' ') : shown(x));
      const body = function* () {
        yield new Styled(h.join('\t'));
        for (const r of rows) yield new Styled(r.filter(keep).map(cell).join('\t'));
      };
      this.lines(body());
      return;
    }
    // No rule between rows: compact, half the lines.
    const t = new Table({ head: h.map((x) => this.c.bold(x)), style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
    for (const r of rows) t.push(r.filter(keep).map(shown));
    this.line(new Styled(t.toString()));
  }

  /**
   * A warning line on stderr; the same warning twice is printed once. Messages
   * carry data (a tenant's name, a server's answer): every control character in
   * one, line feeds included, is shown as `\xNN` before the colour is added.
   */
  warn(text: string): void {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    this.stderr.write(`${this.e.yellow(showControls(text))}\n`);
  }

  /** A progress or diagnostic line on stderr (control characters shown, as warn). */
  info(text: string): void {
    this.stderr.write(`${showControls(text)}\n`);
  }

  /** A --debug line on stderr (timings per step); nothing otherwise. A stack trace keeps its line breaks. */
  debug(text: string): void {
    if (this.debugging) this.stderr.write(`${this.e.dim(`debug: ${text.split('\n').map(showControls).join('\n')}`)}\n`);
  }
}

