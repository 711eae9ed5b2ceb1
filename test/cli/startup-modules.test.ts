import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, sharedRedisUrl, tenantYaml, uniq, workspace } from '../helpers/setup.js';

/**
 * Start-up is mostly loading code (issue 8 §4): a command loads only what it
 * needs. Node's own modules are the part a test can see without timing
 * anything: process.moduleLoadList at exit, through a --require hook.
 */
describe('what a cache-hit get-config loads', () => {
  const ws = workspace({}, { registry: false });
  afterAll(() => ws.cleanup());

  it('no ES module loader, TLS, HTTP, crypto, dns, assert, child processes or worker threads: only what a plain connection and the answer need', async () => {
    const id = uniq('boot');
    ws.writeTenant(id, tenantYaml(id, 'Boot'));
    const redis = new Redis(sharedRedisUrl());
    await redis.set(`tenant_config:${id}`, JSON.stringify({ client: { id, name: 'Cached' }, _meta: { source: 'database' } }), 'EX', 300);
    redis.disconnect();
    const out = path.join(ws.dir, 'modules.json');
    const hook = path.join(ws.dir, 'hook.cjs');
    writeFileSync(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));\n`);

    const r = await runCli(['get-config', id, '--json'], { cwd: ws.dir, env: { REDIS_URL: sharedRedisUrl(), NODE_OPTIONS: `--require ${hook}` } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ source: 'cache', config: { client: { name: 'Cached' } } });
    const loaded = (JSON.parse(readFileSync(out, 'utf8')) as string[]).filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
    expect(loaded).toContain('net');
    // The entry is CommonJS (bin/package.json); ioredis's tls and commander's child_process are required on first use (scripts/build-cli.mjs).
    // child_process may come with piped stdio (Node's own), so it is checked apart from a pipe below.
    // crypto: nothing is hashed for a cache hit (src/node-crypto.ts; ioredis's Script in the build); dns: a
    // connection to an address looks nothing up; assert: only a reply parser error uses it (the build).
    const unneeded = ['internal/modules/esm/module_job', 'internal/modules/esm/translators', 'tls', '_tls_wrap', 'http', '_http_client', 'worker_threads', 'crypto', 'dns', 'assert'];
    expect(loaded.filter((m) => unneeded.includes(m))).toEqual([]);
  });
});
