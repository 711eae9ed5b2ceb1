import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { withDeadline } from '../../src/cache/deadline.js';
import { BackendUnavailableError } from '../../src/errors.js';

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* synchronous work */ }
};

describe('withDeadline under a blocked event loop', () => {
  it('gives back at most one timeout: under a steady load of long slices a silent server still expires (a review: it never did)', async () => {
    const started = performance.now();
    let settled: unknown;
    withDeadline(new Promise(() => undefined), 300, 'the call').catch((err: unknown) => (settled = err));
    // 200 ms slices of synchronous work with a yield between them: every check of the deadline is late.
    while (settled === undefined && performance.now() - started < 10_000) {
      busy(200);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(settled).toBeInstanceOf(BackendUnavailableError);
    expect((settled as BackendUnavailableError).reason).toBe('timeout');
    // The timeout, one more given back, and a slice or two of lateness; far from "never".
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a reply that arrived while the loop was blocked is read before the deadline is judged (the timer fires first after a block)', async () => {
    const server = net.createServer((c) => c.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const answer = withDeadline(connected, 200, 'the connect');
      // The connection lands in the kernel at once; this process reads it only after its synchronous work.
      busy(600);
      await expect(answer).resolves.toBeUndefined();
      socket.destroy();
    } finally {
      server.close();
    }
  });

  it('on a free event loop it expires on time', async () => {
    const started = performance.now();
    await expect(withDeadline(new Promise(() => undefined), 200, 'the call')).rejects.toThrow(/the call timed out \(timeout 200 ms\)/);
    expect(performance.now() - started).toBeLessThan(600);
  });
});
