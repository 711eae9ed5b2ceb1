import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tenantYaml, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * A server that renamed away a command only the scripts use (`rename-command TIME ""` in redis.conf): as for
 * an ACL user refused it, the work is done client-side (every sweep was exit 3 "Unknown Redis command called
 * from script …; run again", which could never work, and cache-info said Redis unavailable: a probe). One
 * that renamed SCAN: cache-info reports Redis up with the counts unknown, as for a user refused SCAN.
 */
describe('a server with TIME or SCAN renamed away', () => {
  let ws: Workspace;
  const servers: RedisServer[] = [];
  beforeAll(() => {
    ws = workspace({ rnacme: tenantYaml('rnacme', 'Acme') }, { registry: false });
  });
  afterAll(async () => {
    ws?.cleanup();
    await Promise.all(servers.map((s) => s.stop()));
  });
  const start = async (command: string) => {
    const s = await startRedis(['--rename-command', command, '']);
    servers.push(s);
    for (let i = 0; i < 30; i++) await s.command('SET', `dashboard_kpis:rn${i % 3}:d${i}`, '{}');
    await s.command('SET', 'tenant_config:rnacme', '{"client": {"id": "rnacme"}}');
    await s.command('SET', 'sessions:x', 'y');
    return s;
  };
  const cli = (s: RedisServer, args: string[]) => runCli(args, { cwd: ws.dir, env: { REDIS_URL: s.url } });

  it('TIME renamed: counting, profiling and deleting work (client-side), and a fill is written', async () => {
    const s = await start('TIME');
    const dry = await cli(s, ['invalidate-all', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ total: 31, families: { dashboard_kpis: 30, tenant_config: 1 } });
    const info = await cli(s, ['cache-info', '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ available: true, tool_keys: 31 });
    const byTenant = await cli(s, ['cache-info', '--by', 'tenant', '--json']);
    expect(byTenant.code, byTenant.stderr).toBe(0);
    const one = await cli(s, ['invalidate', 'rn1', '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout).tenants[0]).toMatchObject({ tenant: 'rn1', total: 10 });
    const all = await cli(s, ['invalidate-all', '--yes', '--json']);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ total: 21, complete: true });
    expect(await s.command('DBSIZE')).toBe(':1\r\n');
    const warm = await cli(s, ['get-config', 'rnacme', '--warm']);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).not.toMatch(/continuing without the cache/);
    expect(await s.command('EXISTS', 'tenant_config:rnacme')).toBe(':1\r\n');
  });

  it('SCAN renamed: cache-info says Redis is up and the counts unknown (it said unavailable); a sweep names SCAN', async () => {
    const s = await start('SCAN');
    const info = await cli(s, ['cache-info', '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ backend: 'redis', available: true, tool_keys: null, counts_refused: expect.stringMatching(/unknown command/i) });
    const all = await cli(s, ['invalidate-all', '--yes']);
    expect(all.code).toBe(3);
    expect(all.stderr).toMatch(/scan/i);
  });
});
