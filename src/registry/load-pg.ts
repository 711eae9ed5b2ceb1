import { createRequire } from 'node:module';

type Pg = typeof import('pg');

/**
 * node-postgres, loaded without Node's fetch implementation. At load, pg asks
 * whether it runs in a Cloudflare Worker: with no global `navigator` (Node 20
 * has none; Node 21+ does) it constructs a `Response`, which makes Node load
 * all of undici for nothing (~30 ms of every PostgreSQL command's start). A
 * `navigator` such as Node 21's own, defined only for the synchronous
 * require, answers that question; no other code can run while it is there.
 */
export function loadPg(): Pg {
  const g = globalThis as { navigator?: unknown };
  const load = () => createRequire(import.meta.url)('pg') as Pg;
  if (g.navigator !== undefined) return load();
  Object.defineProperty(g, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` }, configurable: true, writable: true, enumerable: false });
  try {
    return load();
  } finally {
    delete g.navigator;
  }
}
