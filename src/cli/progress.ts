import type { Output } from './output.js';

/** How often the progress line is redrawn, ms. */
const EVERY_MS = 250;

/**
 * A progress line on stderr for long sweeps (keys scanned, done, rate),
 * redrawn in place, only when stderr is a terminal: scripts and logs get none.
 */
export function progressLine(out: Output, verb: string): { update: (p: { scanned: number; done: number }) => void; done: () => void } {
  const tty = !!out.stderr.isTTY;
  const start = Date.now();
  let last = 0;
  let shown = false;
  return {
    update: ({ scanned, done }) => {
      const now = Date.now();
      if (!tty || now - last < EVERY_MS) return;
      last = now;
      shown = true;
      const rate = Math.round(scanned / Math.max(0.001, (now - start) / 1000));
      out.stderr.write(`\r\x1b[Kscanned ${scanned.toLocaleString('en-US')} keys, ${verb} ${done.toLocaleString('en-US')} (${rate.toLocaleString('en-US')} keys/s)`);
    },
    done: () => {
      if (shown) out.stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}
