import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, runCli, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';

/**
 * A read-only replica given as the Redis URL: reads work; a write is refused by the server (READONLY),
 * which is a refusal, not a failure. It said "deleted at least 0 keys before Redis failed ...; run again
 * to finish", which no rerun could, and verify --fix counted the refused deletions "in doubt".
 */
describe('a replica given as the Redis URL', () => {
  let master: RedisServer;
  let masterPort: number;
  let replica: RedisServer;
  let ws: Workspace;

  beforeAll(async () => {
    // A server that holds the keys and then becomes the replica of a master that is not there: it keeps its
    // data (no sync ever succeeds) and refuses writes at once; waiting for a real sync could flake under load.
    replica = await startRedis();
    masterPort = await freePort();
    ws = workspace();
    await replica.command('SET', 'tenant_config:acme', '{}');
    await replica.command('SET', 'dashboard_kpis:acme:days:30', '{}');
    await replica.command('REPLICAOF', '127.0.0.1', String(masterPort));
    // A master to compare doctor with.
    master = await startRedis();
  }, 30_000);
  afterAll(async () => {
    await replica?.stop();
    await master?.stop();
    ws?.cleanup();
  });

  it('reads answer; invalidate and invalidate-all: exit 3, "deleted 0 keys", the replica named, no "run again"', async () => {
    const info = await runCli(['cache-info', '--json', '--redis-url', replica.url], { cwd: ws.dir });
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ available: true, tool_keys: 2 });
    for (const args of [['invalidate', 'acme'], ['invalidate-all', '--yes']]) {
      const r = await runCli([...args, '--redis-url', replica.url], { cwd: ws.dir });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(3);
      expectOneLineError(r);
      // Refused by the server (READONLY on the first UNLINK), or, for a sweep, found a replica before it starts.
      expect(r.stderr).toMatch(/^error: (deleted 0 keys before Redis failed: .*READONLY.*|Redis at .* is a replica of 127\.0\.0\.1:\d+, which holds the keys) \(a replica takes no writes: give its master's address, or its Sentinels with --redis-sentinel\)$/m);
      expect(r.stderr).not.toMatch(/run again|at least/);
    }
    expect(await replica.command('DBSIZE')).toMatch(/^:2\b/);
  });

  it('a replica holding none of the keys yet (its first sync): invalidate-all is exit 3 naming its master (it said "deleted 0", exit 0)', async () => {
    const empty = await startRedis();
    try {
      await empty.command('REPLICAOF', '127.0.0.1', String(masterPort));
      const r = await runCli(['invalidate-all', '--yes', '--redis-url', empty.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(3);
      expectOneLineError(r);
      expect(r.stderr).toMatch(new RegExp(`is a replica of 127\\.0\\.0\\.1:${masterPort}, which holds the keys \\(a replica takes no writes`));
    } finally {
      await empty.stop();
    }
  });

  it('doctor fails its role check, naming the master (it passed every check)', async () => {
    const r = await runCli(['doctor', '--redis-url', replica.url], { cwd: ws.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`a read-only replica \\(of 127\\.0\\.0\\.1:${masterPort}\\): reads work, every write \\(an invalidation, --warm\\) is refused`));
    const ok = await runCli(['doctor', '--redis-url', master.url], { cwd: ws.dir });
    expect(ok.stdout).not.toMatch(/replica/);
  });

  it('test-redis: exit 3 at SET with the replica hint (it said only READONLY)', async () => {
    const r = await runCli(['test-redis', '--redis-url', replica.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^error: Redis test failed at SET: .*READONLY.* \(a replica takes no writes: give its master's address, or its Sentinels with --redis-sentinel\)$/m);
    const json = await runCli(['test-redis', '--json', '--redis-url', replica.url], { cwd: ws.dir });
    expect(JSON.parse(json.stdout).steps).toContainEqual(expect.objectContaining({ step: 'SET', ok: false, reason: 'read-only' }));
  });

  it('verify --fix: exit 3 before any deletion, not "may have been deleted" (exit 4)', async () => {
    // Both entries are orphans here (no tenants): --fix would delete them on a master.
    const r = await runCli(['verify', '--fix', '--redis-url', replica.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/READONLY/);
    expect(r.stderr).not.toMatch(/may have been|run again/);
  });

  it('while a master pauses writes (CLIENT PAUSE WRITE: a failover under way), every read-only command answers (they timed out, exit 3, and cache-info said Redis down)', async () => {
    await master.command('SET', 'tenant_config:acme', '{"client":{"id":"acme"}}');
    await master.command('SET', 'dashboard_kpis:acme:days:30', '{}');
    const url = master.url;
    await master.command('CLIENT', 'PAUSE', '6000', 'WRITE');
    try {
      const info = await runCli(['cache-info', '--json', '--redis-url', url], { cwd: ws.dir });
      expect(info.code, info.stderr).toBe(0);
      expect(JSON.parse(info.stdout)).toMatchObject({ available: true, tool_keys: 2 });
      const by = await runCli(['cache-info', '--by', 'tenant', '--json', '--redis-url', url], { cwd: ws.dir });
      expect(by.code, by.stderr).toBe(0);
      for (const args of [['invalidate', 'acme', '--dry-run'], ['invalidate-all', '--dry-run'], ['verify']]) {
        const r = await runCli([...args, '--redis-url', url, '--redis-timeout', '1000'], { cwd: ws.dir });
        expect(r.stderr, args.join(' ')).not.toMatch(/timed out|unavailable|unreachable/);
        expect([0, 1], `${args.join(' ')}: ${r.stderr}`).toContain(r.code);
      }
    } finally {
      await master.command('CLIENT', 'UNPAUSE');
    }
    expect(await master.command('DBSIZE')).toMatch(/^:2\b/);
  });
});
