import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { maskUrl } from '../../src/redact.js';
import { UsageError } from '../../src/errors.js';

const dirs: string[] = [];
const cwdWith = (file?: [string, string]) => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-cfg-'));
  dirs.push(d);
  if (file) writeFileSync(path.join(d, file[0]), file[1]);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('configuration precedence: flag > environment > config file > default', () => {
  it('uses the defaults when nothing is set', () => {
    const cwd = cwdWith();
    const c = resolveConfig({}, {}, cwd);
    expect(c.redis).toBeUndefined();
    expect(c.redisTimeoutMs).toBe(1000);
    expect(c.ttl).toBe(300);
    expect(c.tenantsDir).toBe(path.join(cwd, 'tenants'));
    expect(c.registry).toEqual({ kind: 'embedded', dir: path.join(cwd, '.tenantctl', 'registry') });
    expect(c.registryOnlyPrefix).toBe('tn_');
    expect(c.families.map((f) => f.name)).toContain('forecast_demand');
  });

  it('each layer overrides the one below it', () => {
    const cwd = cwdWith(['tenantctl.config.yaml', 'redis_url: redis://file:1\nttl: 60\nredis_timeout_ms: 700\ntenants_dir: from-file\n']);
    expect(resolveConfig({}, {}, cwd)).toMatchObject({ redis: { display: 'redis://file:1', nodes: [{ host: 'file', port: 1 }] }, ttl: 60, redisTimeoutMs: 700, tenantsDir: path.join(cwd, 'from-file') });
    const env = { REDIS_URL: 'redis://env:2', CACHE_TTL: '90', REDIS_TIMEOUT_MS: '800', TENANTS_DIR: 'from-env' };
    expect(resolveConfig({}, env, cwd)).toMatchObject({ redis: { display: 'redis://env:2' }, ttl: 90, redisTimeoutMs: 800, tenantsDir: path.join(cwd, 'from-env') });
    expect(resolveConfig({ redisUrl: 'redis://flag:3', ttl: 120, redisTimeout: 900, tenantsDir: 'from-flag' }, env, cwd)).toMatchObject({
      redis: { display: 'redis://flag:3', timeoutMs: 900 }, ttl: 120, redisTimeoutMs: 900, tenantsDir: path.join(cwd, 'from-flag'),
    });
  });

  it('--redis-url on the command line is that server even under an env or file Cluster or Sentinel; below it a URL lends credentials', () => {
    const cwd = cwdWith(['tenantctl.config.yaml', 'redis_sentinel: s1:26379\nsentinel_master: prod\n']);
    const env = { REDIS_CLUSTER_NODES: 'prod-1:6379,prod-2:6379' };
    const byFlag = resolveConfig({ redisUrl: 'redis://localhost:6390' }, env, cwd);
    expect(byFlag.redis).toMatchObject({ topology: 'standalone', nodes: [{ host: 'localhost', port: 6390 }] });
    const shown = Object.fromEntries(byFlag.settings.map((s) => [s.key, s]));
    expect(shown.redis_cluster.overriddenBy).toBe('--redis-url');
    expect(shown.redis_sentinel.overriddenBy).toBe('--redis-url');
    expect(shown.redis_url.overriddenBy).toBeUndefined();
    // The env Cluster outranks the file Sentinel (no "not both" error across levels).
    expect(resolveConfig({}, env, cwd).redis).toMatchObject({ topology: 'cluster', nodes: [{ host: 'prod-1' }, { host: 'prod-2' }] });
    // Below the command line a URL never makes a Cluster standalone: the services' REDIS_URL beside the file's Cluster lends it credentials.
    const fileCluster = cwdWith(['tenantctl.config.yaml', 'redis_cluster: c1:7000,c2:7000\n']);
    expect(resolveConfig({}, { REDIS_URL: 'redis://svc:pw@c1:7000' }, fileCluster).redis).toMatchObject({ topology: 'cluster', username: 'svc', password: 'pw' });
    expect(resolveConfig({}, {}, cwd).redis).toMatchObject({ topology: 'sentinel', sentinelMaster: 'prod' });
    // Above the Cluster's level (REDIS_URL in the shell, the Cluster in the file), a URL naming another host is
    // said on stderr, and `config` marks it as lending credentials only (it showed it as the server used).
    const staging = resolveConfig({}, { REDIS_URL: 'redis://staging.example:6379' }, fileCluster);
    expect(staging.redis).toMatchObject({ topology: 'cluster', nodes: [{ host: 'c1' }, { host: 'c2' }] });
    expect(staging.notices).toContainEqual(expect.stringMatching(/^note: the Redis URL \(env REDIS_URL\) names staging\.example:6379, but the Redis Cluster \(tenantctl\.config\.yaml\) is used .*give the URL on the command line to use that server$/));
    expect(Object.fromEntries(staging.settings.map((st) => [st.key, st])).redis_url.partlyUsed).toBe('credentials only: the target is tenantctl.config.yaml');
    // The services' URL of one of the seeds, or a URL at the Cluster's level: no note.
    expect(resolveConfig({}, { REDIS_URL: 'redis://svc:pw@c1:7000' }, fileCluster).notices.filter((n) => /names/.test(n))).toEqual([]);
    // By host and port, loopback's names as one (a review: another port of a seed's host was no note; localhost
    // against 127.0.0.1 seeds was one).
    const loopCluster = cwdWith(['tenantctl.config.yaml', 'redis_cluster: 127.0.0.1:7000,127.0.0.1:7001\n']);
    const names = (url: string) => resolveConfig({}, { REDIS_URL: url }, loopCluster).notices.filter((n) => /names/.test(n));
    expect(names('redis://:pw@127.0.0.1:6380')).toHaveLength(1);
    expect(names('redis://:pw@localhost:7001')).toEqual([]);
    // A URL at the Cluster's level or below it carries the credentials only.
    const creds = resolveConfig({}, { ...env, REDIS_URL: 'redis://ops:pw@ignored:1' }, cwd).redis;
    expect(creds).toMatchObject({ topology: 'cluster', username: 'ops', password: 'pw' });
    expect(resolveConfig({ redisCluster: 'c:1' }, { REDIS_URL: 'redis://ops:pw@ignored:1' }, cwd).redis).toMatchObject({ topology: 'cluster', username: 'ops' });
    // Two topologies at one level are still a usage error.
    expect(() => resolveConfig({}, { ...env, REDIS_SENTINEL_NODES: 's:1', REDIS_SENTINEL_MASTER: 'm' }, cwd)).toThrow(/^Redis: give Redis cluster nodes \(env REDIS_CLUSTER_NODES\) or Redis sentinels \(env REDIS_SENTINEL_NODES\), not both$/);
    // A Sentinel with no master name says where to give it.
    expect(() => resolveConfig({}, { REDIS_SENTINEL_NODES: 's:1' }, cwdWith(['tenantctl.config.yaml', 'ttl: 300\n']))).toThrow(/needs the master's name too \(--sentinel-master, env REDIS_SENTINEL_MASTER or sentinel_master in the config file\)$/);
  });

  it('a library\'s settings are named as its options (flags.redisUrl), never as CLI flags it never typed (issue 8: no CLI flag names in the library\'s errors)', () => {
    const cwd = cwdWith(['tenantctl.config.yaml', 'ttl: 300\n']);
    const asOptions = (flags: Parameters<typeof resolveConfig>[0], env: NodeJS.ProcessEnv = {}) => () => resolveConfig(flags, env, cwd, 'options');
    expect(asOptions({ sentinelMaster: 'mymaster' })).toThrow(/^flags\.sentinelMaster needs Sentinels among the flags too: flags\.redisSentinel host:port,\.\.\.$/);
    expect(asOptions({ sentinelMaster: 'm', redisUrl: 'redis://h:1' }, { REDIS_SENTINEL_NODES: 's:1' })).toThrow(/ \(flags\.redisUrl among the flags outranks Sentinels set elsewhere\)$/);
    expect(asOptions({}, { REDIS_SENTINEL_NODES: 's:1' })).toThrow(/needs the master's name too \(flags\.sentinelMaster, env REDIS_SENTINEL_MASTER or sentinel_master in the config file\)$/);
    expect(asOptions({}, { REDIS_CLUSTER_NODES: 'redis://u:p@h:1' })).toThrow(/credentials go in a Redis URL: flags\.redisUrl, env REDIS_URL or redis_url in the config file\)$/);
    expect(asOptions({ tenantsDir: ' ' })).toThrow(/^flags\.tenantsDir is empty/);
    expect(asOptions({ redisTimeout: 0 })).toThrow(/\(flags\.redisTimeout\)/);
    for (const f of [asOptions({ sentinelMaster: 'mymaster' }), asOptions({}, { REDIS_SENTINEL_NODES: 's:1' }), asOptions({}, { REDIS_CLUSTER_NODES: 'redis://u:p@h:1' }), asOptions({ tenantsDir: ' ' })]) {
      expect(f).toThrow(UsageError);
      expect(f).not.toThrow(/--/);
    }
    // The CLI's own words are unchanged.
    expect(() => resolveConfig({ tenantsDir: ' ' }, {}, cwd)).toThrow(/^--tenants-dir is empty/);
  });

  it('a standalone URL\'s scheme decides TLS: redis:// with TLS files is plain, said once and marked in `config`; rediss://, a Cluster or a Sentinel take the files', () => {
    const cwd = cwdWith();
    const files = { REDIS_CA_CERT: 'ca.pem', REDIS_TLS_CERT: 'client.pem' };
    const plain = resolveConfig({ redisUrl: 'redis://localhost:6390' }, files, cwd);
    expect(plain.redis).toMatchObject({ topology: 'standalone' });
    expect(plain.redis!.tls).toBeUndefined();
    expect(plain.notices).toEqual([expect.stringMatching(/env REDIS_CA_CERT, env REDIS_TLS_CERT not used: the Redis URL \(--redis-url\) is redis:\/\/, so no TLS \(rediss:\/\/ for TLS\)/)]);
    const shown = Object.fromEntries(plain.settings.map((s) => [s.key, s]));
    expect(shown.redis_ca_cert.overriddenBy).toBe('the redis:// URL (--redis-url)');
    expect(shown.redis_tls_key.overriddenBy).toBeUndefined();
    const tls = resolveConfig({ redisUrl: 'rediss://localhost:6390' }, files, cwd);
    expect(tls.redis!.tls).toEqual({ ca: path.join(cwd, 'ca.pem'), cert: path.join(cwd, 'client.pem'), key: undefined });
    expect(tls.notices).toEqual([]);
    // No scheme to go by: the files turn TLS on, also beside a URL that only lends credentials.
    expect(resolveConfig({}, { ...files, REDIS_CLUSTER_NODES: 'c1:7000' }, cwd).redis!.tls).toMatchObject({ ca: path.join(cwd, 'ca.pem') });
    expect(resolveConfig({}, { ...files, REDIS_URL: 'redis://u:p@x:1', REDIS_SENTINEL_NODES: 's:1', REDIS_SENTINEL_MASTER: 'm' }, cwd).redis!.tls).toMatchObject({ ca: path.join(cwd, 'ca.pem') });
  });

  it('an empty environment variable counts as unset (a .env line REDIS_URL=): the file\'s value wins; permissions_ttl follows the TTL', () => {
    const cwd = cwdWith(['tenantctl.config.yaml', 'redis_url: redis://file:1\nregistry: postgres://file/db\n']);
    const c = resolveConfig({}, { REDIS_URL: '', DATABASE_URL: '', CACHE_TTL: '' }, cwd);
    expect(c.redis).toMatchObject({ display: 'redis://file:1' });
    expect(c.registry).toMatchObject({ kind: 'postgres' });
    const shown = Object.fromEntries(c.settings.map((s) => [s.key, s]));
    expect(shown.redis_url.source).toBe('file');
    expect(shown.registry.source).toBe('file');
    // --ttl (or CACHE_TTL) applies to permissions: records too, unless permissions_ttl is set.
    const ttl = resolveConfig({ ttl: 60 }, {}, cwd);
    expect(ttl.permissionsTtl).toBe(60);
    expect(ttl.families.find((f) => f.name === 'permissions')?.ttl).toBe(60);
    expect(resolveConfig({}, { CACHE_TTL: '90' }, cwd).permissionsTtl).toBe(90);
  });

  it('a URL given as a Cluster or Sentinel seed is a usage error naming it with its password masked (never dialled); --sentinel-master alone too', () => {
    const cwd = cwdWith();
    for (const [flags, env] of [
      [{ redisCluster: 'redis://:secretpw@127.0.0.1:7442' }, {}],
      [{}, { REDIS_CLUSTER_NODES: 'redis://:secretpw@127.0.0.1:7442' }],
      [{ redisSentinel: 'rediss://u:secretpw@s1:26379', sentinelMaster: 'm' }, {}],
    ] as const) {
      let err: unknown;
      try {
        resolveConfig(flags, env, cwd);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(/is a URL; seeds are host:port/);
      expect((err as Error).message).not.toContain('secretpw');
    }
    expect(() => resolveConfig({ sentinelMaster: 'mymaster' }, {}, cwd)).toThrow(/--sentinel-master needs Sentinels on the command line too/);
    // Credentials without a scheme are caught too, and masked.
    let bare: unknown;
    try {
      resolveConfig({ redisCluster: 'user:secretpw@c1:7000' }, {}, cwd);
    } catch (e) {
      bare = e;
    }
    expect(bare).toBeInstanceOf(UsageError);
    expect((bare as Error).message).not.toContain('secretpw');
    // IPv6 seeds are seeds.
    expect(resolveConfig({ redisCluster: '[::1]:7000' }, {}, cwd).redis).toMatchObject({ topology: 'cluster', nodes: [{ host: '::1', port: 7000 }] });
    // From the environment alone (a shared profile), a master name without Sentinels changes nothing.
    expect(resolveConfig({}, { REDIS_SENTINEL_MASTER: 'mymaster' }, cwd).redis).toBeUndefined();
  });

  it('reads tenantctl.config.json too, and declared families and resources', () => {
    const cwd = cwdWith(['tenantctl.config.json', JSON.stringify({
      families: [{ name: 'app_cache', pattern: 'fastapi_template:tenant-{tenant}:*', ttl: 1800 }],
      resources: { products: 60 },
    })]);
    const c = resolveConfig({}, {}, cwd);
    expect(c.families.map((f) => f.name)).toEqual(['tenant_config', 'permissions', 'products', 'app_cache']);
    expect(c.families.find((f) => f.name === 'app_cache')?.ttl).toBe(1800);
  });

  it('picks the registry from --registry, DATABASE_URL, SUPABASE_URL + key, then the file', () => {
    const cwd = cwdWith(['tenantctl.config.yaml', 'registry: ./reg\n']);
    expect(resolveConfig({}, {}, cwd).registry).toEqual({ kind: 'embedded', dir: path.join(cwd, 'reg') });
    expect(resolveConfig({}, { SUPABASE_URL: 'https://p.supabase.co', SUPABASE_SERVICE_KEY: 'k' }, cwd).registry).toEqual({ kind: 'supabase', url: 'https://p.supabase.co', key: 'k' });
    expect(resolveConfig({}, { DATABASE_URL: 'postgres://u:p@h/db', SUPABASE_URL: 'https://p.supabase.co', SUPABASE_KEY: 'k' }, cwd).registry).toEqual({ kind: 'postgres', url: 'postgres://u:p@h/db' });
    expect(resolveConfig({ registry: 'memory:' }, { DATABASE_URL: 'postgres://h/db' }, cwd).registry).toEqual({ kind: 'memory' });
  });

  it('refuses a public Supabase key (anon JWT, publishable key), whose reads row-level security empties, naming the variable, never the key (a probe: check-permission answered "denied")', () => {
    const cwd = cwdWith();
    const jwt = (claims: object) => ['{"alg":"HS256","typ":"JWT"}', JSON.stringify(claims), 'sig'].map((p, i) => (i < 2 ? Buffer.from(p).toString('base64url') : p)).join('.');
    const at = (env: Record<string, string>) => resolveConfig({}, { SUPABASE_URL: 'https://p.supabase.co', ...env }, cwd).registry;
    const anon = jwt({ iss: 'supabase', ref: 'p', role: 'anon' });
    expect(at({ SUPABASE_KEY: anon })).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/^SUPABASE_KEY is a public Supabase key \(role "anon"\), not the service-role key: row-level security hides rows/) });
    expect(at({ SUPABASE_SERVICE_KEY: jwt({ role: 'authenticated' }) })).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/^SUPABASE_SERVICE_KEY is a public Supabase key \(role "authenticated"\)/) });
    expect(at({ SUPABASE_KEY: 'sb_publishable_abc123' })).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/^SUPABASE_KEY is a public Supabase key \(a publishable key\)/) });
    expect(JSON.stringify(at({ SUPABASE_KEY: anon }))).not.toContain(anon);
    // The service-role key (a JWT, or a secret key), and keys whose kind cannot be told, are taken.
    const service = jwt({ role: 'service_role' });
    expect(at({ SUPABASE_SERVICE_ROLE_KEY: service })).toEqual({ kind: 'supabase', url: 'https://p.supabase.co', key: service });
    expect(at({ SUPABASE_KEY: 'sb_secret_abc' })).toMatchObject({ kind: 'supabase' });
    expect(at({ SUPABASE_KEY: 'a.b.c' })).toMatchObject({ kind: 'supabase' });
    // Roles other than the public two (an admin or custom role) are the server's to judge (a review).
    for (const role of ['postgres', 'supabase_admin', 'tenantctl_writer']) expect(at({ SUPABASE_KEY: jwt({ role }) })).toMatchObject({ kind: 'supabase' });
    // The first of the names given wins, as before: a service-role key beside an anon SUPABASE_KEY is used.
    expect(at({ SUPABASE_SERVICE_ROLE_KEY: service, SUPABASE_KEY: anon })).toMatchObject({ kind: 'supabase', key: service });
  });

  it('rejects bad values as usage errors that name the setting', () => {
    const cwd = cwdWith();
    expect(() => resolveConfig({}, { REDIS_TIMEOUT_MS: 'soon' }, cwd)).toThrow(/Redis timeout \(env REDIS_TIMEOUT_MS\)/);
    expect(() => resolveConfig({}, { CACHE_TTL: '0' }, cwd)).toThrow(UsageError);
    expect(() => resolveConfig({}, { REDIS_URL: 'http://x' }, cwd)).toThrow(UsageError);
    expect(() => resolveConfig({}, { REDIS_CLUSTER_NODES: 'a:1,b' }, cwd)).toThrow(/not host:port/);
    // An unusable registry fails the commands that open it (openRegistry throws the usage error), not resolveConfig.
    expect(resolveConfig({}, { SUPABASE_URL: 'https://p.supabase.co' }, cwd).registry).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/SUPABASE_SERVICE_ROLE_KEY/) });
    expect(() => resolveConfig({}, {}, cwdWith(['tenantctl.config.yaml', 'redis_ulr: x\n']))).toThrow(/unknown setting "redis_ulr"/);
    expect(() => resolveConfig({}, {}, cwdWith(['tenantctl.config.yaml', 'families: [{name: f, pattern: "x:{tenant}*"}]\n']))).toThrow(UsageError);
  });

  it('a bad config file found above the working directory is named by its path, not its bare name (which named no file there)', () => {
    const root = cwdWith(['tenantctl.config.yaml', 'ttl: [\n']);
    const sub = path.join(root, 'a', 'b');
    mkdirSync(sub, { recursive: true });
    expect(() => resolveConfig({}, {}, sub)).toThrow(new RegExp(`^${path.join(root, 'tenantctl.config.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    expect(() => resolveConfig({}, {}, root)).toThrow(/^tenantctl\.config\.yaml: /);
    // A value's error names it the same way.
    const bad = cwdWith(['tenantctl.config.yaml', 'warm_cache: maybe\n']);
    mkdirSync(path.join(bad, 'x'));
    expect(() => resolveConfig({}, {}, path.join(bad, 'x'))).toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/tenantctl\\.config\\.yaml: warm_cache`));
  });
});

describe('credential masking', () => {
  it('masks passwords and lone tokens in URLs', () => {
    expect(maskUrl('redis://user:s3cret@host:6379/0')).toBe('redis://user:****@host:6379/0');
    expect(maskUrl('rediss://:s3cret@host:6380')).toBe('rediss://:****@host:6380');
    expect(maskUrl('postgres://token@host/db')).toBe('postgres://****@host/db');
    expect(maskUrl('redis://host:6379')).toBe('redis://host:6379');
  });
});
