import net from 'node:net';
import { freePort } from './ports.js';

/**
 * A TCP proxy the test owns, between a client under test and a server it must
 * never disturb (the machine's shared PostgreSQL): `cut()` drops every
 * connection and stops listening (new connections are refused), `restore()`
 * listens again on the same port. The server itself is never touched.
 */
export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  cut(): Promise<void>;
  /** Stops forwarding on every connection, open and new, without closing any: a server that went silent. */
  stall(): void;
  /**
   * Once a client message matching `armed` has passed, the next one matching `cut` is delivered to the
   * server and the client's connection is dropped at once: the server acts on it, the client never hears
   * (a COMMIT whose acknowledgement is lost).
   */
  cutAfter(armed: RegExp, cut: RegExp): void;
  restore(): Promise<void>;
  /** Connections currently open through the proxy. */
  open(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  const pairs: Array<[net.Socket, net.Socket]> = [];
  let stalled = false;
  let trap: { armed: RegExp; cut: RegExp; ready: boolean } | undefined;
  let server: net.Server | undefined;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        sockets.add(client);
        sockets.add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        if (stalled) return;
        pairs.push([client, upstream]);
        client.on('data', (chunk: Buffer) => {
          const text = chunk.toString('latin1');
          if (trap && !trap.ready && trap.armed.test(text)) trap.ready = true;
          else if (trap?.ready && trap.cut.test(text)) {
            trap = undefined;
            // The server gets it and then the end of the stream; the client is cut before any answer.
            upstream.unpipe(client);
            client.removeAllListeners('close');
            client.on('error', () => undefined);
            upstream.end(chunk);
            client.destroy();
            sockets.delete(client);
            return;
          }
          upstream.write(chunk);
        });
        upstream.pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        resolve();
      });
    });

  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server) return resolve();
      const s = server;
      server = undefined;
      s.close(() => resolve());
    });

  await listen();
  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut: async () => {
      stalled = false;
      pairs.length = 0;
      await stop();
    },
    cutAfter(armed, cut) {
      trap = { armed, cut, ready: false };
    },
    stall() {
      stalled = true;
      for (const [client, upstream] of pairs.splice(0)) {
        client.removeAllListeners('data');
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    restore: listen,
    open: () => sockets.size / 2,
    close: async () => {
      stalled = false;
      pairs.length = 0;
      await stop();
    },
  };
}
