import type { SweepProgress } from '../services/cache-admin.js';
import type { Output } from './output.js';

/** How often the progress line is redrawn, ms. */
const EVERY_MS = 250;

/**
 * The progress line's text: how far through the keyspace, with what is left
 * at the rate so far, where the cursors tell; else the keys looked at (other
 * applications' keys, dropped by the server, are not among them) and the rate.
 */
export function progressText(p: SweepProgress, verb: string, seconds: number): string {
  const n = (x: number) => x.toLocaleString('en-US');
  if (p.walked !== undefined) {
    // Too early to say how long is left while almost nothing has been walked.
    const left = p.walked >= 0.02 && p.walked < 1 ? Math.ceil((seconds * (1 - p.walked)) / p.walked) : undefined;
    return `${Math.floor(p.walked * 100)}% of the keyspace walked, ${verb} ${n(p.done)} keys${left !== undefined ? `, ~${left} s left` : ''}`;
  }
  return `scanned ${n(p.scanned)} keys, ${verb} ${n(p.done)} (${n(Math.round(p.scanned / Math.max(0.001, seconds)))} keys/s)`;
}

/**
 * A progress line on stderr for long sweeps (see progressText), redrawn in
 * place, only when stderr is a terminal: scripts and logs get none.
 */
export function progressLine(out: Output, verb: string): { update: (p: SweepProgress) => void; done: () => void } {
  const tty = !!out.stderr.isTTY;
  const start = Date.now();
  let last = 0;
  let shown = false;
  return {
    update: (p) => {
      const now = Date.now();
      if (!tty || now - last < EVERY_MS) return;
      last = now;
      shown = true;
      out.stderr.write(`\r\x1b[K${progressText(p, verb, (now - start) / 1000)}`);
    },
    done: () => {
      if (shown) out.stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}
