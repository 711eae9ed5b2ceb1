import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/setup.js';

/** Runs a module snippet in a new node process (a test process may have loaded anything already). */
const fresh = (code: string) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }));
const LOAD_PG = pathToFileURL(path.join(ROOT, 'dist', 'registry', 'load-pg.js')).href;

describe('loading pg', () => {
  it('does not make Node load its fetch implementation (undici), and leaves no navigator behind', () => {
    const r = fresh(`
      import { loadPg } from ${JSON.stringify(LOAD_PG)};
      const pg = loadPg();
      console.log(JSON.stringify({ client: typeof pg.Client, undici: process.moduleLoadList.some((m) => m.includes('undici')), navigator: typeof globalThis.navigator }));
    `);
    expect(r).toEqual({ client: 'function', undici: false, navigator: 'undefined' });
  });

  it('the check is meaningful: a plain require of pg does load undici on this Node', () => {
    const r = fresh(`
      import { createRequire } from 'node:module';
      createRequire(${JSON.stringify(LOAD_PG)})('pg');
      console.log(JSON.stringify({ undici: process.moduleLoadList.some((m) => m.includes('undici')) }));
    `);
    // Node 21+ has a global navigator, so pg never constructs a Response there.
    expect(r.undici).toBe(globalThis.navigator === undefined);
  });
});
