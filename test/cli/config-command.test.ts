import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis } from '../helpers/redis-server.js';

interface Setting {
  setting: string;
  value: string | null;
  source: 'flag' | 'env' | 'file' | 'default';
  origin: string | null;
}
interface Report {
  project: { dir: string; found: boolean; config_file: string | null };
  settings: Setting[];
}

const bySetting = (r: Report) => Object.fromEntries(r.settings.map((s) => [s.setting, s]));

/** `tenantctl config`: every setting, its resolved value (credentials masked) and where it came from. */
describe('config', () => {
  let ws: Workspace;
  let sub: string;

  beforeAll(() => {
    ws = workspace({}, { registry: false });
    writeFileSync(
      path.join(ws.dir, 'tenantctl.config.yaml'),
      'ttl: 100\nredis_timeout_ms: 700\nregistry_timeout_ms: 900\ntenants_dir: ./tenants\nfamilies:\n  - name: app_cache\n    pattern: "app:tenant-{tenant}:*"\n  - name: jobs\n    pattern: "jobs:{tenant}:*"\n    ttl: 1800\n',
    );
    sub = path.join(ws.dir, 'deep', 'er');
    mkdirSync(sub, { recursive: true });
  });
  afterAll(() => ws.cleanup());

  it('path settings are shown resolved: the config file\'s against the project, a flag\'s against the working directory', async () => {
    const bare = workspace({}, { registry: false });
    try {
      writeFileSync(path.join(bare.dir, 'tenantctl.config.yaml'), 'registry: file:data/reg\naudit_log: logs/audit.log\n');
      const deep = path.join(bare.dir, 'a', 'b');
      mkdirSync(deep, { recursive: true });
      const fromFile = bySetting(JSON.parse((await runCli(['config', '--json'], { cwd: deep })).stdout) as Report);
      // Before: "file:data/reg" and "logs/audit.log", relative to what?
      expect(fromFile.registry.value).toBe(`embedded ${path.join(bare.dir, 'data', 'reg')}`);
      expect(fromFile.audit_log.value).toBe(path.join(bare.dir, 'logs', 'audit.log'));
      const fromFlag = bySetting(JSON.parse((await runCli(['config', '--json', '--audit-log', 'here.log'], { cwd: deep })).stdout) as Report);
      expect(fromFlag.audit_log.value).toBe(path.join(deep, 'here.log'));
    } finally {
      bare.cleanup();
    }
  });

  it('shows precedence (a flag beats env beats the file beats the default) and finds the project from a subdirectory', async () => {
    const r = await runCli(['config', '--json', '--ttl', '300'], {
      cwd: sub,
      env: { CACHE_TTL: '200', REDIS_TIMEOUT_MS: '800' },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.project).toEqual({ dir: ws.dir, found: true, config_file: path.join(ws.dir, 'tenantctl.config.yaml') });
    const s = bySetting(report);
    expect(s.ttl).toEqual({ setting: 'ttl', value: '300', source: 'flag', origin: '--ttl', overridden_by: null, partly_used: null }); // flag > env > file
    expect(s.redis_timeout_ms).toEqual({ setting: 'redis_timeout_ms', value: '800', source: 'env', origin: 'env REDIS_TIMEOUT_MS', overridden_by: null, partly_used: null }); // env > file
    // From a subdirectory, the file is named by its path (its bare name names no file there).
    expect(s.registry_timeout_ms).toMatchObject({ value: '900', source: 'file', origin: path.join(ws.dir, 'tenantctl.config.yaml') }); // file > default
    // Relative paths in the file are relative to the project, not the working directory.
    expect(s.tenants_dir).toMatchObject({ value: path.join(ws.dir, 'tenants'), source: 'file' });
    // A declared TTL is shown, as the resources' are (it was left out).
    expect(s.families).toMatchObject({ value: 'app_cache=app:tenant-{tenant}:*, jobs=jobs:{tenant}:* 1800s', source: 'file' });
    expect(s.registry).toMatchObject({ value: `embedded ${path.join(ws.dir, '.tenantctl', 'registry')}`, source: 'default', origin: null, overridden_by: null });
    expect(s.redis_url).toEqual({ setting: 'redis_url', value: null, source: 'default', origin: null, overridden_by: null, partly_used: null });
    // permissions_ttl follows the resolved ttl by default, and says so (it said "default").
    expect(s.permissions_ttl).toMatchObject({ value: '300', source: 'flag', origin: 'ttl (--ttl)' });
    // Every setting the file accepts is listed.
    expect(report.settings.map((x) => x.setting)).toEqual(expect.arrayContaining([
      'redis_url', 'redis_cluster', 'redis_sentinel', 'sentinel_master', 'sentinel_password', 'redis_timeout_ms', 'registry',
      'registry_timeout_ms', 'tenants_dir', 'ttl', 'permissions_ttl', 'registry_only_prefix', 'audit_log', 'warm_cache', 'resources', 'families',
    ]));
    // Without the flag and the variable, the file wins.
    const again = await runCli(['config', '-o', 'json'], { cwd: ws.dir });
    expect(bySetting(JSON.parse(again.stdout) as Report).ttl).toMatchObject({ value: '100', source: 'file' });
  });

  it('masks passwords: Redis URL, Sentinel password, PostgreSQL URL (user-info and query parameters)', async () => {
    const env = {
      REDIS_URL: 'redis://alice:hunter2-redis@127.0.0.1:6390/0',
      REDIS_SENTINEL_PASSWORD: 'sentinel-s3cret',
      DATABASE_URL: 'postgres://bob:pg-s3cret@db.example:5432/app?sslmode=require&password=pg-s3cret-2',
    };
    // Piped (plain), a long value is whole (a script reads it); only the terminal's table cuts it.
    const plain = await runCli(['config'], { cwd: ws.dir });
    expect(plain.stdout).toMatch(/^resources\t[^\t]*forecast_demand=1800s\t/m);
    expect(plain.stdout).not.toContain('…');
    for (const args of [['config', '--json'], ['config', '-o', 'yaml'], ['config', '-o', 'table'], ['config', '-o', 'plain']]) {
      const r = await runCli(args, { cwd: ws.dir, env });
      expect(r.code, args.join(' ')).toBe(0);
      for (const secret of ['hunter2-redis', 'sentinel-s3cret', 'pg-s3cret']) {
        expect(r.stdout, args.join(' ')).not.toContain(secret);
        expect(r.stderr, args.join(' ')).not.toContain(secret);
      }
      expect(r.stdout).toContain('redis://alice:****@127.0.0.1:6390/0');
      expect(r.stdout).toContain('postgres://bob:****@db.example:5432/app');
    }
    const s = bySetting(JSON.parse((await runCli(['config', '--json'], { cwd: ws.dir, env })).stdout) as Report);
    // No Sentinel here: its password is not used (the single server of REDIS_URL is).
    expect(s.sentinel_password).toEqual({ setting: 'sentinel_password', value: '****', source: 'env', origin: 'env REDIS_SENTINEL_PASSWORD', overridden_by: 'env REDIS_URL', partly_used: null });
    expect(s.registry.value).toBe('postgres://bob:****@db.example:5432/app?sslmode=require&password=****');
    expect(s.registry.origin).toBe('env DATABASE_URL');
  });

  it('the table names the project, the config file and each setting with its source', async () => {
    const r = await runCli(['config', '-o', 'table', '--redis-url', 'redis://127.0.0.1:6391'], { cwd: sub, env: { CACHE_TTL: '42' } });
    expect(r.code).toBe(0);
    const row = (name: string) => r.stdout.split('\n').find((l) => l.includes(` ${name} `)) ?? '';
    expect(row('(project)')).toContain(ws.dir);
    expect(row('(config file)')).toContain(path.join(ws.dir, 'tenantctl.config.yaml'));
    expect(row('redis_url')).toMatch(/redis:\/\/127\.0\.0\.1:6391 .*flag --redis-url/);
    expect(row('ttl')).toMatch(/42 .*env CACHE_TTL/);
    expect(row('registry_timeout_ms')).toMatch(/900 .*file/);
    expect(row('registry_only_prefix')).toMatch(/tn_ .*default/);
    // Following the ttl: said so, whatever set the ttl (from the file it said "file", which has no such key).
    expect(row('permissions_ttl')).toMatch(/42 .*as ttl: env CACHE_TTL/);
    const fromFile = await runCli(['config'], { cwd: sub });
    expect(fromFile.stdout).toMatch(/^permissions_ttl\t\d+\tas ttl: file$/m);
    const fromFlag = await runCli(['config', '--ttl', '77'], { cwd: sub });
    expect(fromFlag.stdout).toMatch(/^permissions_ttl\t77\tas ttl: flag --ttl$/m);
  });

  it('--redis-url on the command line is the server used, even with a Cluster in the environment; config says which setting is not used', async () => {
    const redis = await startRedis();
    try {
      await redis.command('SET', 'dashboard_kpis:acme', 'x');
      const env = { REDIS_CLUSTER_NODES: '127.0.0.1:1,127.0.0.1:2' };
      const r = await runCli(['invalidate-all', '--yes', '--json', '--redis-url', redis.url], { cwd: sub, env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ total: 1, complete: true });
      expect(await redis.command('EXISTS', 'dashboard_kpis:acme')).toBe(':0\r\n');
      const c = await runCli(['config', '-o', 'table', '--redis-url', redis.url], { cwd: sub, env });
      const row = (name: string) => c.stdout.split('\n').find((l) => l.includes(` ${name} `)) ?? '';
      expect(row('redis_cluster')).toMatch(/127\.0\.0\.1:1,127\.0\.0\.1:2 .*env REDIS_CLUSTER_NODES, not used: --redis-url wins/);
      expect(row('redis_url')).not.toMatch(/not used/);
      // Without the flag, the environment's Cluster is the target (unreachable here: exit 3).
      expect((await runCli(['test-redis', '--redis-timeout', '300'], { cwd: sub, env })).code).toBe(3);
      // A URL beside it lends its credentials only, and config says so (it showed it as the server used).
      const lent = await runCli(['config', '--json'], { cwd: sub, env: { ...env, REDIS_URL: redis.url } });
      const setting = (JSON.parse(lent.stdout).settings as Array<{ setting: string; partly_used: string | null }>).find((x) => x.setting === 'redis_url');
      expect(setting?.partly_used).toBe('credentials only: the target is env REDIS_CLUSTER_NODES');
    } finally {
      await redis.stop();
    }
  });

  it('without a project: the working directory, no config file', async () => {
    const bare = workspace({}, { registry: false });
    try {
      const r = await runCli(['config', '--json'], { cwd: bare.dir });
      expect(JSON.parse(r.stdout).project).toEqual({ dir: bare.dir, found: false, config_file: null });
    } finally {
      bare.cleanup();
    }
  });

  it('a bad config file is a usage error naming the file', async () => {
    const bad = workspace({}, { registry: false });
    try {
      writeFileSync(path.join(bad.dir, 'tenantctl.config.yaml'), 'ttll: 5\n');
      const r = await runCli(['config'], { cwd: bad.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/tenantctl\.config\.yaml: unknown setting "ttll"/);
    } finally {
      bad.cleanup();
    }
  });

  it('a list or mapping where one value goes is exit 2, also when a flag overrides it (ttl: [7] was taken as 7)', async () => {
    const bad = workspace({}, { registry: false });
    try {
      for (const [body, args, said] of [
        ['ttl: [7]\n', ['config'], /ttl must be a single value, not a list/],
        ['redis_timeout_ms: { a: 1 }\n', ['config'], /redis_timeout_ms must be a single value, not a mapping/],
        ['redis_url: [a, b]\n', ['--redis-url', 'redis://127.0.0.1:1', 'config'], /redis_url must be a single value, not a list/],
      ] as const) {
        writeFileSync(path.join(bad.dir, 'tenantctl.config.yaml'), body);
        const r = await runCli([...args], { cwd: bad.dir });
        expect(r.code, body).toBe(2);
        expect(r.stderr.trim().split('\n'), body).toHaveLength(1);
        expect(r.stderr).toMatch(said);
      }
      // Lists where lists belong still work.
      writeFileSync(path.join(bad.dir, 'tenantctl.config.yaml'), 'redis_cluster: [127.0.0.1:7000, 127.0.0.1:7001]\nyaml_only_tenants: [example]\n');
      expect((await runCli(['config'], { cwd: bad.dir })).code).toBe(0);
    } finally {
      bad.cleanup();
    }
  });
});
