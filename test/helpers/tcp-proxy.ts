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
        client.pipe(upstream);
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
    stall() {
      stalled = true;
      for (const [client, upstream] of pairs.splice(0)) {
        client.unpipe(upstream);
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
