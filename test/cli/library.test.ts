import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, sharedRedisUrl, tenantYaml, uniq, workspace } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);

describe('the library, imported by its package name as an application would', () => {
  const id = uniq('lib');
  const ws = workspace({ [id]: tenantYaml(id, 'Library Co', 'email:\n  smtp: { host: h, password: "${LIB_PW}" }\n'), sandboxy: tenantYaml('sandboxy', 'Sandbox', 'yaml_only: true\n') });
  afterAll(() => ws.cleanup());

  it('reads a config with secrets resolved, uses the same key names, and closes cleanly', async () => {
    const script = `
      import { Tenantctl, UsageError } from 'tenantctl';
      const t = new Tenantctl({ cwd: process.argv[1], env: { REDIS_URL: process.argv[2], LIB_PW: 'pw' }, flags: { registry: 'memory:' } });
      try {
        const got = await t.tenants.get(process.argv[3]);
        let usage = false;
        try { await t.tenants.get('bad id'); } catch (e) { usage = e instanceof UsageError; }
        console.log(JSON.stringify({ source: got.source, pw: got.config.email.smtp.password, key: t.keys.key('dashboard_kpis', 'x', 'days', '30'), usage }));
      } finally {
        await t.close();
      }`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, ws.dir, sharedRedisUrl(), id], { cwd: ROOT, timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ source: 'yaml', pw: 'pw', key: 'dashboard_kpis:x:days:30', usage: true });
  });

  it('a value the services would write as other bytes: Cache.writeJson throws NotServicesJson, exported, and writes nothing', async () => {
    const script = `
      import { Tenantctl, NotServicesJson } from 'tenantctl';
      const t = new Tenantctl({ cwd: process.argv[1], env: { REDIS_URL: process.argv[2] } });
      try {
        const key = 'tenantctl-lib-notjson:' + process.argv[3];
        const caught = await t.cache.writeJson(key, { a: 2 ** 60 }, 60).then(() => 'written', (e) => (e instanceof NotServicesJson ? e.describe() : String(e)));
        console.log(JSON.stringify({ caught, left: (await t.cache.readJson(key)) ?? null }));
      } finally {
        await t.close();
      }`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, ws.dir, sharedRedisUrl(), id], { cwd: ROOT, timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ caught: expect.stringMatching(/^a: the integer .* \(past 2\^53\)$/), left: null });
  });

  it('close() during a read: the read does not open the registry afterwards, later calls reject (UsageError "closed"), and the process exits by itself', async () => {
    const script = `
      import { Tenantctl, UsageError } from 'tenantctl';
      const warnings = [];
      const t = new Tenantctl({ cwd: process.argv[1], env: { REDIS_URL: process.argv[2] }, warn: (w) => warnings.push(w) });
      // A service shutting down while a request is in flight (an embedded registry: a lock file and a timer once opened).
      const inFlight = t.tenants.get(process.argv[3], { noCache: true }).then(() => 'answered', (e) => (e instanceof UsageError ? e.reason : String(e)));
      const cached = t.tenants.get(process.argv[3]).then(() => 'answered', (e) => (e instanceof UsageError ? e.reason : String(e)));
      await t.close();
      const later = await t.tenants.get(process.argv[3]).then(() => 'answered', (e) => (e instanceof UsageError ? e.reason : String(e)));
      const perms = await t.permissions.check(process.argv[3], 'has_ai').then(() => 'answered', (e) => (e instanceof UsageError ? e.reason : String(e)));
      // A yaml_only tenant needs neither backend: closed all the same.
      const yamlOnly = await t.tenants.get('sandboxy').then(() => 'answered', (e) => (e instanceof UsageError ? e.reason : String(e)));
      console.log(JSON.stringify({ inFlight: await inFlight, cached: await cached, later, perms, yamlOnly, warnings }));`;
    // Before: the in-flight read opened the embedded registry after close() and the process never exited.
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, ws.dir, sharedRedisUrl(), id], { cwd: ROOT, timeout: 20_000 });
    const out = JSON.parse(stdout);
    expect(['answered', 'closed']).toContain(out.inFlight);
    expect(['answered', 'closed']).toContain(out.cached);
    expect(out).toMatchObject({ later: 'closed', perms: 'closed', yamlOnly: 'closed' });
    // The close itself is no Redis outage to warn about.
    expect(out.warnings.filter((w: string) => /Redis/.test(w))).toEqual([]);
  });

  it('Sentinels that refuse: after close() the process exits at once (it stayed 2 s on a timer of ioredis\'s own Sentinel client), and ioredis\'s defaults are left as they were', async () => {
    const dead = await freePort();
    const script = `
      import { Tenantctl } from 'tenantctl';
      import { Redis } from 'ioredis';
      const before = Redis.defaultOptions.disconnectTimeout;
      const t = new Tenantctl({ cwd: process.argv[1], env: { REDIS_SENTINEL_NODES: '127.0.0.1:' + process.argv[2], REDIS_SENTINEL_MASTER: 'm' }, warn: () => {} });
      const smoke = await t.admin.testRedis().then(() => 'passed', (e) => e.reason);
      await t.close();
      const closedAt = performance.now();
      process.on('exit', () => console.log(JSON.stringify({ smoke, lingered: Math.round(performance.now() - closedAt), defaults: [before, Redis.defaultOptions.disconnectTimeout] })));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, ws.dir, String(dead)], { cwd: ROOT, timeout: 20_000 });
    const out = JSON.parse(stdout);
    expect(out.smoke).toBe('unreachable');
    expect(out.lingered).toBeLessThan(1000);
    expect(out.defaults).toEqual([2000, 2000]);
  });

  it('a first use on a silent Redis: loading ioredis is not taken for this process being busy (it connected twice: ~2.7x the timeout before its fallback)', async () => {
    const hole = (await import('node:net')).createServer(() => undefined);
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    try {
      const script = `
        import { Tenantctl } from 'tenantctl';
        const lines = [];
        const t = new Tenantctl({ cwd: process.argv[1], env: { REDIS_URL: process.argv[2], REDIS_TIMEOUT_MS: '150' }, flags: { registry: 'memory:' }, debug: (l) => lines.push(l), warn: () => undefined });
        try {
          const got = await t.cache.orElse((s) => s.get('x'), 'fallback');
          console.log(JSON.stringify({ got, lines }));
        } finally {
          await t.close();
        }`;
      const port = (hole.address() as import('node:net').AddressInfo).port;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, ws.dir, `redis://127.0.0.1:${port}`], { cwd: ROOT, timeout: 20_000 });
      const out = JSON.parse(stdout) as { got: string; lines: string[] };
      expect(out.got).toBe('fallback');
      // ioredis's own load (~100 ms in a slow phase here) was over half the 150 ms timeout: "busy", connect again.
      expect(out.lines.filter((l) => /busy|trying once more/.test(l))).toEqual([]);
    } finally {
      hole.close();
    }
  });
});
