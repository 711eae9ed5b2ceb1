import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';

/** Colour level: NO_COLOR wins (chalk ignores it, supports-color#105), then FORCE_COLOR, then the terminal. */
export function colourLevel(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number(force);
    return n >= 1 && n <= 3 ? (n as 1 | 2 | 3) : 1;
  }
  return stream.isTTY ? 1 : 0;
}

/**
 * Where a command's results go: stdout carries data only (a table, or one
 * JSON document with --json); warnings and progress go to stderr.
 */
export class Output {
  readonly c: ChalkInstance;
  readonly e: ChalkInstance;

  constructor(
    readonly json: boolean,
    readonly stdout: NodeJS.WriteStream = process.stdout,
    readonly stderr: NodeJS.WriteStream = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.c = new Chalk({ level: colourLevel(stdout, env) });
    this.e = new Chalk({ level: colourLevel(stderr, env) });
  }

  /** Writes one JSON document. */
  data(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  line(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  table(head: string[], rows: Array<Array<string | number | boolean | null | undefined>>): void {
    const t = new Table({ head: head.map((h) => this.c.bold(h)), style: { head: [], border: [] } });
    for (const r of rows) t.push(r.map((x) => (x === null || x === undefined ? '' : String(x))));
    this.line(t.toString());
  }

  /** A warning line on stderr. */
  warn(text: string): void {
    this.stderr.write(`${this.e.yellow(text)}\n`);
  }

  /** A progress or diagnostic line on stderr. */
  info(text: string): void {
    this.stderr.write(`${text}\n`);
  }
}
