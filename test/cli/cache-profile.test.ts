import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliOnTerminal, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';

/** Issue 10 §1 (cache-info --by tenant|family, --tenant) and issue 9's pictures on a terminal. */
describe('where the cache memory goes, and pictures on a terminal', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  const [big, small, gone] = [uniq('big'), uniq('small'), uniq('gone')];
  const env = () => ({ REDIS_URL: own.server.url });

  beforeAll(async () => {
    ws = workspace({ [big]: tenantYaml(big), [small]: tenantYaml(small) });
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir, env: env() })).code).toBe(0);
    const c = own.client;
    await c.flushall();
    await c.config('SET', 'maxmemory', '64mb');
    const large = 'x'.repeat(20_000);
    for (let i = 0; i < 20; i++) await c.set(`dashboard_trends:${big}:days:${i}`, large, 'EX', 1800);
    await c.set(`tenant_config:${big}`, '{}', 'EX', 30);
    await c.set(`tenant_config:${small}`, '{}', 'EX', 300);
    await c.set(`products:${small}:page:1`, '{}'); // no TTL: a leak
    await c.set(`tenant_config:${gone}`, '{}', 'EX', 300); // a tenant nobody knows: an orphan
    await c.set('sessions:x', large); // never the tool's
  });
  afterAll(() => ws.cleanup());

  it('--by tenant: exact keys, memory, TTL spread and leaks per tenant and family, orphans, top N first', async () => {
    const r = await runCli(['cache-info', '--by', 'tenant', '--json'], { cwd: ws.dir, env: env() });
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.total.keys).toBe(24);
    expect(p.tenant_count).toBe(3);
    expect(p.tenants[0]).toMatchObject({ tenant: big, keys: 21, ttl_under_minute: 1, ttl_under_hour: 20, no_ttl: 0, families: { dashboard_trends: 20, tenant_config: 1 } });
    expect(p.tenants[0].bytes).toBeGreaterThan(20 * 20_000);
    expect(p.tenants.find((t: { tenant: string }) => t.tenant === small)).toMatchObject({ keys: 2, no_ttl: 1, ttl_later: 0 });
    expect(p.families.find((f: { family: string }) => f.family === 'products')).toMatchObject({ keys: 1, no_ttl: 1 });
    expect(p.orphans).toEqual([expect.objectContaining({ tenant: gone, keys: 1, reason: 'unknown tenant' })]);
    expect(p.orphan_count).toBe(1);
    const top1 = JSON.parse((await runCli(['cache-info', '--by', 'tenant', '--top', '1', '--json'], { cwd: ws.dir, env: env() })).stdout);
    // Where it changes nothing, --top is a usage error (it was ignored without a word).
    for (const args of [['cache-info', '--top', '3'], ['cache-info', '--by', 'family', '--top', '3'], ['cache-info', '--tenant', small, '--top', '3'], ['cache-info', '--by', 'tenant', '--tenant', small, '--top', '3']]) {
      const ignored = await runCli(args, { cwd: ws.dir, env: env() });
      expect(ignored.code, args.join(' ')).toBe(2);
      expect(ignored.stderr).toBe('error: --top applies to --by tenant without --tenant\n');
    }
    expect(top1.tenants.map((t: { tenant: string }) => t.tenant)).toEqual([big]);
    // Orphans are listed up to --top too (largest first); the count stays exact.
    const alsoGone = uniq('gone2');
    await own.client.set(`dashboard_trends:${alsoGone}:days:1`, 'x'.repeat(5000), 'EX', 300);
    try {
      const capped = JSON.parse((await runCli(['cache-info', '--by', 'tenant', '--top', '1', '--json'], { cwd: ws.dir, env: env() })).stdout);
      expect(capped).toMatchObject({ orphan_count: 2, tenant_count: 4 });
      expect(capped.orphans.map((o: { tenant: string }) => o.tenant)).toEqual([alsoGone]);
    } finally {
      await own.client.del(`dashboard_trends:${alsoGone}:days:1`);
    }
  });

  it('--tenant: one tenant\'s keys only; Prometheus labels only the top tenants', async () => {
    const one = JSON.parse((await runCli(['cache-info', '--tenant', small, '--json'], { cwd: ws.dir, env: env() })).stdout);
    expect(one.total.keys).toBe(2);
    expect(one.tenants.map((t: { tenant: string }) => t.tenant)).toEqual([small]);
    const prom = (await runCli(['cache-info', '--by', 'tenant', '--top', '1', '-o', 'prometheus'], { cwd: ws.dir, env: env() })).stdout;
    expect(prom).toMatch(new RegExp(`^tenantctl_cache_tenant_bytes\\{tenant="${big}"\\} \\d+$`, 'm'));
    expect(prom).not.toContain(`tenant="${small}"`);
    expect(prom).toMatch(/^tenantctl_cache_family_keys_without_ttl\{family="products"\} 1$/m);
    expect(prom).toMatch(/^tenantctl_cache_orphan_tenants 1$/m);
    const bad = await runCli(['cache-info', '--tenant', 'a*b'], { cwd: ws.dir, env: env() });
    expect(bad.code).toBe(2);
    const down = await runCli(['cache-info', '--by', 'family'], { cwd: ws.dir, env: { REDIS_URL: 'redis://127.0.0.1:1', REDIS_TIMEOUT_MS: '300' } });
    expect(down.code).toBe(3);
  });

  it('--by family shows no tenant table, and its summary claims none (it said "top N by memory shown")', async () => {
    const byFamily = await runCli(['cache-info', '--by', 'family'], { cwd: ws.dir, env: env() });
    expect(byFamily.code, byFamily.stderr).toBe(0);
    // Piped, the summary goes to stderr (stdout holds the rows alone).
    expect(byFamily.stdout).not.toMatch(/^tenant\b/m);
    expect(byFamily.stderr).toMatch(/keys? of the tool's, .* tenants?; /);
    expect(byFamily.stderr).not.toContain('by memory shown');
    const byTenant = await runCli(['cache-info', '--by', 'tenant'], { cwd: ws.dir, env: env() });
    expect(byTenant.stdout).toMatch(/^tenant\b/m);
    expect(byTenant.stderr).toMatch(/\(top \d+ by memory shown\)/);
  });

  it('--tenant with no key cached says so (and a typo\'s unknown id); given twice is exit 2, not the last one silently', async () => {
    const none = await runCli(['cache-info', '--tenant', 'nosuchtenant'], { cwd: ws.dir, env: env() });
    expect(none.code, none.stderr).toBe(0);
    expect(none.stderr).toMatch(/^warning: tenant nosuchtenant has no keys in the cache, and is in neither the registry nor YAML \(a typo\?\)$/m);
    expect(none.stderr).toMatch(/, 0 tenants;/);
    const twice = await runCli(['cache-info', '--tenant', 'a', '--tenant', 'b'], { cwd: ws.dir, env: env() });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/given more than once/);
  });

  it('on a terminal without colour: a memory gauge and a bar per family; plain numbers when piped', async () => {
    const r = await runCliOnTerminal(['cache-info', '--redis-url', own.server.url], /never-asked/, '', { NO_COLOR: '1' });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/\x1b\[[0-9;]*m/);
    expect(r.stdout).toMatch(/\[█+░*\] \d+%/);
    expect(r.stdout).toMatch(/dashboard_trends[^\n]*█+░*[^\n]*\d+%/);
    for (const line of r.stdout.split(/\r?\n/)) expect(line.length, line).toBeLessThanOrEqual(80);
    const piped = await runCli(['cache-info'], { cwd: ws.dir, env: env() });
    expect(piped.stdout).not.toMatch(/[█░]/);
    expect(piped.stdout).toMatch(/^dashboard_trends\t20\t/m);
  });

  it('invalidate-all on a terminal ends with one stacked bar of what was deleted per family', async () => {
    const r = await runCliOnTerminal(['invalidate-all', '--yes', '--redis-url', own.server.url], /never-asked/, '', { NO_COLOR: '1' });
    expect(r.code).toBe(0);
    const lines = r.stdout.split(/\r?\n/);
    const barLine = lines.find((l) => /^[█▓▒░]{10,}$/.test(l.trim()));
    expect(barLine).toBeDefined();
    expect(r.stdout).toMatch(/[█▓▒░] dashboard_trends 20/);
    expect(await own.client.exists('sessions:x')).toBe(1);
  });
  it('a cached tenant whose registry status is suspended is an orphan, said with its reason (a mutation review: only unknown tenants were tested)', async () => {
    const { openPgliteStore } = await import('../../src/registry/pglite-store.js');
    const setStatus = async (status: string) => {
      const store = await openPgliteStore(ws.registryDir);
      try {
        await store.db.query('UPDATE tenants SET status = $1 WHERE id = $2', [status, small]);
      } finally {
        await store.close();
      }
    };
    await own.client.set(`tenant_config:${small}`, '{}', 'EX', 300);
    await own.client.set(`tenant_config:${gone}`, '{}', 'EX', 300);
    await setStatus('suspended');
    try {
      const p = JSON.parse((await runCli(['cache-info', '--by', 'tenant', '--json'], { cwd: ws.dir, env: env() })).stdout);
      expect(p.orphans).toContainEqual(expect.objectContaining({ tenant: small, reason: 'status suspended' }));
      expect(p.orphans).toContainEqual(expect.objectContaining({ tenant: gone, reason: 'unknown tenant' }));
    } finally {
      await setStatus('active');
    }
  });

  it('orphans as verify judges them: a business known by its subscription is not one; with no registry, a registry-only id is not one', async () => {
    const subscribed = uniq('subonly');
    const tnOnly = `tn_${uniq('reg')}`;
    const c = own.client;
    // The workspace's registry knows the business by its subscription only (a catalogue first).
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  pilot_pro: { features: [has_ai], max_devices: null }\n', 'tiers.yaml');
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    const sub = await runCli(['set-subscription', subscribed, '--tier', 'pilot_pro'], { cwd: ws.dir });
    expect(sub.code, sub.stderr).toBe(0);
    await c.set(`permissions:${subscribed}`, '{}', 'EX', 300);
    await c.set(`tenant_config:${tnOnly}`, '{}', 'EX', 300);
    try {
      const p = JSON.parse((await runCli(['cache-info', '--by', 'tenant', '--json'], { cwd: ws.dir, env: env() })).stdout);
      const orphaned = p.orphans.map((o: { tenant: string }) => o.tenant);
      expect(orphaned).not.toContain(subscribed);
      expect(orphaned).toContain(tnOnly); // the registry is there and does not know it
      // No registry found here (YAML only): the registry-only id is not known to be an orphan.
      const yamlOnly = workspace({}, { registry: false });
      try {
        const q = JSON.parse((await runCli(['cache-info', '--by', 'tenant', '--json'], { cwd: yamlOnly.dir, env: env() })).stdout);
        expect(q.orphans.map((o: { tenant: string }) => o.tenant)).not.toContain(tnOnly);
      } finally {
        yamlOnly.cleanup();
      }
    } finally {
      await c.del(`permissions:${subscribed}`, `tenant_config:${tnOnly}`);
    }
  });
  it('cache-info for an ACL user without INFO (+@all -@dangerous): Redis up with its counts, the INFO fields unknown (it said Redis was down: tenantctl_redis_up 0)', async () => {
    const c = own.client;
    expect(await c.call('ACL', 'SETUSER', 'noinfo', 'on', '>noinfopw', '~*', '+@all', '-@dangerous')).toBe('OK');
    try {
      const url = own.server.url.replace('redis://', 'redis://noinfo:noinfopw@');
      const full = JSON.parse((await runCli(['cache-info', '--json'], { cwd: ws.dir, env: env() })).stdout);
      // The dashboards' fields against the server set up above (maxmemory 64mb): a mutation review found a
      // fraction for a percentage and used memory for max memory passing every test.
      expect(full.max_memory_mb).toBe(64);
      expect(full.used_memory_mb).toBeGreaterThan(0.4); // 400 KB of values, at least
      expect(full.memory_usage_percent).toBeCloseTo((full.used_memory_mb / 64) * 100, 0);
      expect(full.memory_usage_percent).toBeGreaterThan(0.5);
      const json = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: { REDIS_URL: url } });
      expect(json.code, json.stderr).toBe(0);
      expect(json.stderr).toMatch(/^warning: Redis INFO failed: NOPERM.*; memory, hits and the server's version are not reported, the key counts are\n$/);
      const info = JSON.parse(json.stdout);
      expect(info).toMatchObject({ backend: 'redis', available: true, hits: null, used_memory_mb: null, total_keys: null, memory: null, info_refused: expect.stringMatching(/NOPERM/) });
      expect(info.server).toMatchObject({ mode: 'standalone', masters: 1, version: null });
      expect(info.families).toEqual(full.families);
      expect(info.tool_keys).toBe(full.tool_keys);
      expect(info.cached_tenants).toBe(full.cached_tenants);
      const prom = await runCli(['cache-info', '-o', 'prometheus'], { cwd: ws.dir, env: { REDIS_URL: url } });
      expect(prom.code).toBe(0);
      expect(prom.stdout).toMatch(/^tenantctl_redis_up 1$/m);
      expect(prom.stdout).toMatch(/^tenantctl_cache_keys\{family="tenant_config"\} \d+$/m);
      // Left out rather than 0 (no memory used, no hits would be false).
      expect(prom.stdout).not.toMatch(/tenantctl_redis_used_memory_bytes|tenantctl_redis_keyspace_hits_total/);
      const table = await runCli(['cache-info'], { cwd: ws.dir, env: { REDIS_URL: url } });
      expect(table.stdout).toMatch(/^memory\tunknown \(INFO refused\)$/m);
    } finally {
      await c.call('ACL', 'DELUSER', 'noinfo');
    }
    // A user who may script but not run TIME (which only the sweep script's budget uses): refused inside the
    // script, the count is done client-side (it reported Redis unavailable when a script refusal was not retried).
    expect(await c.call('ACL', 'SETUSER', 'notime', 'on', '>notimepw', '~*', '+@all', '-time')).toBe('OK');
    try {
      const full = JSON.parse((await runCli(['cache-info', '--json'], { cwd: ws.dir, env: env() })).stdout);
      const r = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: { REDIS_URL: own.server.url.replace('redis://', 'redis://notime:notimepw@') } });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ available: true, families: full.families, tool_keys: full.tool_keys });
    } finally {
      await c.call('ACL', 'DELUSER', 'notime');
    }
    // A user refused SCAN: Redis is up, only the counts are unknown (it said Redis was unavailable, redis_up 0).
    expect(await c.call('ACL', 'SETUSER', 'noscan', 'on', '>noscanpw', '~*', '+@all', '-scan')).toBe('OK');
    try {
      const url = own.server.url.replace('redis://', 'redis://noscan:noscanpw@');
      const json = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: { REDIS_URL: url } });
      expect(json.code, json.stderr).toBe(0);
      expect(json.stderr).toMatch(/^warning: .*NOPERM.*; the key counts are not reported \(this Redis user may not SCAN, or the server renamed it\), the rest is\n$/);
      const info = JSON.parse(json.stdout);
      expect(info).toMatchObject({ backend: 'redis', available: true, tool_keys: null, cached_tenants: null, counts_refused: expect.stringMatching(/NOPERM/), server: { masters: 1 } });
      expect(info.families).toBeNull();
      expect(info.used_memory_mb).toEqual(expect.any(Number));
      const prom = await runCli(['cache-info', '-o', 'prometheus'], { cwd: ws.dir, env: { REDIS_URL: url } });
      expect(prom.code).toBe(0);
      expect(prom.stdout).toMatch(/^tenantctl_redis_up 1$/m);
      expect(prom.stdout).not.toMatch(/tenantctl_cache_keys/);
      const table = await runCli(['cache-info'], { cwd: ws.dir, env: { REDIS_URL: url } });
      expect(table.stdout).toMatch(/^keys\t\d+ in all, the tool's unknown \(SCAN refused\)$/m);
    } finally {
      await c.call('ACL', 'DELUSER', 'noscan');
    }
  });
  it('an ACL user refused PING (the services\' client never pings): Redis is up for every command, the cache is read and cleared (it was "unreachable: NOPERM" everywhere)', async () => {
    const c = own.client;
    expect(await c.call('ACL', 'SETUSER', 'noping', 'on', '>nopingpw', '~*', '+@all', '-ping')).toBe('OK');
    const key = `tenant_config:${small}`;
    await c.set(key, JSON.stringify({ client: { id: small, name: 'From the cache' } }), 'EX', 300);
    try {
      const pingless = { REDIS_URL: own.server.url.replace('redis://', 'redis://noping:nopingpw@') };
      const got = await runCli(['get-config', small, '--json'], { cwd: ws.dir, env: pingless });
      expect(got.code, got.stderr).toBe(0);
      expect(got.stderr).toBe('');
      expect(JSON.parse(got.stdout)).toMatchObject({ source: 'cache', config: { client: { name: 'From the cache' } } });
      const info = await runCli(['cache-info', '--json'], { cwd: ws.dir, env: pingless });
      expect(info.code, info.stderr).toBe(0);
      expect(JSON.parse(info.stdout)).toMatchObject({ backend: 'redis', available: true });
      const smoke = await runCli(['test-redis'], { cwd: ws.dir, env: pingless });
      expect(smoke.code, smoke.stderr).toBe(0);
      const gone = await runCli(['invalidate', small], { cwd: ws.dir, env: pingless });
      expect(gone.code, gone.stderr).toBe(0);
      expect(await c.exists(key)).toBe(0);
    } finally {
      // The fixture as it was (invalidate took the tenant's other keys too).
      await c.set(key, '{}', 'EX', 300);
      await c.set(`products:${small}:page:1`, '{}');
      await c.call('ACL', 'DELUSER', 'noping');
    }
  });
  it('--by tenant -o prometheus for a textfile collector: Redis down is tenantctl_cache_profile_up 0 and exit 0 (never an empty file); no series shared with plain cache-info (a collector reading both files refuses a duplicate)', async () => {
    const up = await runCli(['cache-info', '--by', 'tenant', '-o', 'prometheus'], { cwd: ws.dir, env: env() });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^tenantctl_cache_profile_up 1$/m);
    expect(up.stdout).toMatch(/^tenantctl_cache_family_keys\{family="tenant_config"\} \d+$/m);
    const plain = await runCli(['cache-info', '-o', 'prometheus'], { cwd: ws.dir, env: env() });
    const series = (text: string) => new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' '))));
    const shared = [...series(up.stdout)].filter((s) => series(plain.stdout).has(s));
    // Before: tenantctl_redis_up and every tenantctl_cache_keys{family} were in both files.
    expect(shared).toEqual([]);
    const down = await runCli(['cache-info', '--by', 'tenant', '-o', 'prometheus'], { cwd: ws.dir, env: { REDIS_URL: 'redis://127.0.0.1:1', REDIS_TIMEOUT_MS: '300' } });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^tenantctl_cache_profile_up 0$/m);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
  });
});
