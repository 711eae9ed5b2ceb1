import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { userCacheFile, writeCacheFile } from '../../src/tenants/parse-cache.js';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { UsageError } from '../../src/errors.js';
import { userCacheDir } from '../../src/user-cache.js';
import { debugFromEnv } from '../../src/cli/debug-env.js';

const dirs: string[] = [];
const project = (files: Record<string, string> = {}) => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-cfgh-'));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    writeFileSync(path.join(d, name), text);
  }
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The usage error's message (fails when nothing, or another error, is thrown). */
function usageMessage(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('configuration: values that were silently misread', () => {
  it('blanks around a URL are trimmed, and the password is never shown (new URL() trims them, so the value was used, and shown unmasked)', () => {
    const cwd = project();
    for (const lead of [' ', '\t', '  ']) {
      const c = resolveConfig({}, { REDIS_URL: `${lead}redis://admin:TopSecret1@127.0.0.1:7489/0 `, DATABASE_URL: `${lead}postgres://postgres:DbSecret2@h/x` }, cwd);
      expect(c.redis).toMatchObject({ nodes: [{ host: '127.0.0.1', port: 7489 }], password: 'TopSecret1', db: 0 });
      expect(c.registry).toEqual({ kind: 'postgres', url: 'postgres://postgres:DbSecret2@h/x' });
      expect(JSON.stringify(c.settings)).not.toMatch(/TopSecret1|DbSecret2/);
      expect(c.redis!.display).not.toContain('TopSecret1');
    }
  });

  it('a registry value that is a connection string without its scheme is a usage error, masked, never a directory', () => {
    const cwd = project();
    for (const value of ['host=127.0.0.1 user=postgres password=S3cretDSN dbname=test', 'host = 127.0.0.1 password = S3cretDSN', "host=h password='S3cretDSN x'", '//postgres:S3cretDSN@127.0.0.1/test', 'postgres@127.0.0.1:5432/test', '127.0.0.1:5432/test',
      // A URL missing the colon after its scheme: a local registry was made in ./postgresql/app:S3cretDSN@db.../app (a probe).
      'postgresql//app:S3cretDSN@db.internal:5432/app', 'postgres//u:S3cretDSN@h/db', 'postgresql+asyncpg//u:S3cretDSN@h/db', 'https//svc.supabase.co', 'data/u:S3cretDSN@h/db']) {
      for (const [flags, env] of [[{ registry: value }, {}], [{}, { DATABASE_URL: value }]] as const) {
        const spec = resolveConfig(flags, env, cwd).registry;
        // Typed as a flag it is marked so: every command but `config` fails on it (action.ts).
        expect(spec).toMatchObject({ kind: 'invalid', ...(flags.registry !== undefined && { fromFlag: true }) });
        const message = usageMessage(() => {
          if (spec.kind === 'invalid') throw new UsageError(spec.problem);
        });
        expect(message).toMatch(/not a directory/);
        expect(message).not.toContain('S3cretDSN');
      }
    }
    // A plain path stays a directory (DESIGN.md: "a directory is a plain path or file:PATH").
    expect(resolveConfig({}, { DATABASE_URL: 'some/dir' }, cwd).registry).toEqual({ kind: 'embedded', dir: path.join(cwd, 'some/dir') });
    expect(resolveConfig({ registry: 'some/dir' }, {}, cwd).registry).toEqual({ kind: 'embedded', dir: path.join(cwd, 'some/dir') });
    expect(resolveConfig({}, { DATABASE_URL: 'file:some/dir' }, cwd).registry).toEqual({ kind: 'embedded', dir: path.join(cwd, 'some/dir') });
    // A relative directory named like a scheme stays a directory (a review: postgres/reg was refused).
    for (const dir of ['postgres/reg', 'https/reg', 'file/reg']) expect(resolveConfig({ registry: dir }, {}, cwd).registry, dir).toEqual({ kind: 'embedded', dir: path.join(cwd, dir) });
    // file://HOST/PATH as RFC 8089 reads it: file://localhost/p made the directory /localhost/p (a probe).
    expect(resolveConfig({ registry: 'file://localhost/srv/reg' }, {}, cwd).registry).toEqual({ kind: 'embedded', dir: '/srv/reg' });
    expect(resolveConfig({ registry: 'file:///srv/my%20reg' }, {}, cwd).registry).toEqual({ kind: 'embedded', dir: '/srv/my reg' });
    for (const v of ['file://otherhost/srv/reg', 'file://', 'file:///']) {
      expect(resolveConfig({ registry: v }, {}, cwd).registry, v).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/names no directory of this machine \(file:\/\/\/PATH or file:\/\/localhost\/PATH\)$/) });
    }
  });

  it('"embedded" alone is the project\'s default registry, from a subdirectory too (it was made under the working directory)', () => {
    const root = project({ 'tenantctl.config.yaml': 'ttl: 60\n' });
    const sub = path.join(root, 'sub', 'deeper');
    mkdirSync(sub, { recursive: true });
    for (const c of [resolveConfig({ registry: 'embedded' }, {}, sub), resolveConfig({}, { DATABASE_URL: 'embedded' }, sub)]) {
      expect(c.registry).toEqual({ kind: 'embedded', dir: path.join(root, '.tenantctl', 'registry') });
    }
  });

  it('two config files in one directory are a usage error (one of them was read, silently)', () => {
    for (const pair of [['tenantctl.config.json', 'tenantctl.config.yaml'], ['tenantctl.config.yaml', 'tenantctl.config.yml']]) {
      const cwd = project({ [pair[0]]: pair[0].endsWith('json') ? '{"ttl": 111}' : 'ttl: 111\n', [pair[1]]: 'ttl: 222\n' });
      expect(usageMessage(() => resolveConfig({}, {}, cwd))).toMatch(new RegExp(`${pair[0].replace(/\./g, '\\.')} and ${pair[1].replace(/\./g, '\\.')} both exist`));
    }
  });

  it('a dangling link named like the config file is that project\'s config, unreadable: said, not passed over for a parent\'s', () => {
    const root = project({ 'tenantctl.config.yaml': 'ttl: 60\n' });
    const child = path.join(root, 'child');
    mkdirSync(child);
    symlinkSync(path.join(root, 'nope.yaml'), path.join(child, 'tenantctl.config.yaml'));
    expect(usageMessage(() => resolveConfig({}, {}, child))).toMatch(/tenantctl\.config\.yaml: cannot be read: no such file \(a dangling link\?\)/);
  });

  it('a config file that starts with a UTF-8 byte order mark is read, JSON as YAML (JSON was refused: unexpected "\\u{feff}")', () => {
    for (const [name, text] of [['tenantctl.config.json', '\uFEFF{"ttl": 77}'], ['tenantctl.config.yaml', '\uFEFFttl: 77\n']]) {
      expect(resolveConfig({}, {}, project({ [name]: text })).ttl, name).toBe(77);
    }
  });

  it('a JSON config error does not quote the file\'s text (it may be a credential)', () => {
    const cwd = project({ 'tenantctl.config.json': '{"sentinel_password": SentSecret8}' });
    const message = usageMessage(() => resolveConfig({}, {}, cwd));
    expect(message).toMatch(/^tenantctl\.config\.json: not valid JSON/);
    expect(message).not.toMatch(/SentSecret|entSec/);
  });

  it('a text setting given as a list or mapping, an empty one, and unknown keys in a family are usage errors', () => {
    for (const [text, want] of [
      ['registry_only_prefix: [ac]\n', /registry_only_prefix must be a single value, not a list/],
      ['tenants_dir: [a, b]\n', /tenants_dir must be a single value, not a list/],
      ['tenants_dir: true\n', /tenants_dir must be a string/],
      ['tenants_dir: ""\n', /tenants_dir is empty/],
      ['audit_log: { file: x }\n', /audit_log must be a single value, not a mapping/],
      ['registry: { url: x }\n', /registry must be a single value, not a mapping/],
      ['families:\n  - { name: app, pattern: "app:{tenant}:*", tll: 1800 }\n', /families\[0\]: unknown key "tll"/],
      // A key with nothing after it read as the default without a word (a blank registry: a new embedded one).
      ['registry:\n', /registry has no value \(leave it out for the default\)/],
      ['redis_url:\nttl: 30\n', /redis_url has no value/],
      ['ttl: ~\n', /ttl has no value/],
    ] as const) {
      expect(usageMessage(() => resolveConfig({}, {}, project({ 'tenantctl.config.yaml': text }))), text).toMatch(want);
    }
    // A key given twice in JSON: JSON.parse kept the last silently (YAML refuses it); same-named keys in different objects are fine.
    expect(usageMessage(() => resolveConfig({}, {}, project({ 'tenantctl.config.json': '{"ttl": 30, "ttl": 40}' })))).toMatch(/tenantctl\.config\.json: duplicate key "ttl"$/);
    expect(usageMessage(() => resolveConfig({}, {}, project({ 'tenantctl.config.json': '{"resources": {"a": 1, "b\\"": 2}, "families": [{"name": "x", "pattern": "x:{tenant}"}, {"name": "y", "pattern": "y:{tenant}"}], "resources ": 1, "resources": {}}' })))).toMatch(/duplicate key "resources"$/);
    expect(resolveConfig({}, {}, project({ 'tenantctl.config.json': '{"ttl": 30, "resources": {"ttl": 5}, "families": [{"name": "a", "pattern": "a:{tenant}"}, {"name": "b", "pattern": "b:{tenant}"}]}' })).ttl).toBe(30);
    // Lists of seeds stay accepted, and a numeric password is text.
    const c = resolveConfig({}, {}, project({ 'tenantctl.config.yaml': 'redis_cluster: [c1:7000, c2:7000]\nsentinel_password: 12345\n' }));
    expect(c.redis).toMatchObject({ topology: 'cluster', nodes: [{ host: 'c1', port: 7000 }, { host: 'c2', port: 7000 }] });
  });

  it('a timeout beyond 24 h is a usage error (Node\'s timers overflow past 2^31-1 ms and fire at once: "timed out" at once)', () => {
    const cwd = project();
    expect(usageMessage(() => resolveConfig({}, { REDIS_TIMEOUT_MS: '3000000000' }, cwd))).toMatch(/Redis timeout \(env REDIS_TIMEOUT_MS\) must be at most 86400000/);
    expect(usageMessage(() => resolveConfig({ registryTimeout: 2 ** 31 }, {}, cwd))).toMatch(/registry timeout \(--registry-timeout\) must be at most/);
    expect(resolveConfig({}, { REDIS_TIMEOUT_MS: '86400000' }, cwd).redisTimeoutMs).toBe(86_400_000);
  });

  it('db, username and password in a Redis URL\'s query are used (as redis-py and ioredis read them); other parameters are named as unused', () => {
    const cwd = project();
    const c = resolveConfig({}, { REDIS_URL: 'redis://127.0.0.1:7480?db=2&username=app&password=pw1&ssl_cert_reqs=none' }, cwd);
    expect(c.redis).toMatchObject({ db: 2, username: 'app', password: 'pw1' });
    expect(c.redis!.display).not.toContain('pw1');
    expect(c.notices.join('\n')).toMatch(/query parameter ssl_cert_reqs not used by tenantctl/);
    expect(resolveConfig({}, { REDIS_URL: 'redis://h:1/3?db=3' }, cwd).redis).toMatchObject({ db: 3 });
    expect(usageMessage(() => resolveConfig({}, { REDIS_URL: 'redis://h:1/3?db=4' }, cwd))).toMatch(/database 3 in the path and db=4 in the query/);
    expect(usageMessage(() => resolveConfig({}, { REDIS_URL: 'redis://h:1?db=x' }, cwd))).toMatch(/database "x" must be a number/);
  });

  it('a relative XDG_CACHE_HOME is ignored (the XDG spec says so: caches were written into the working directory)', () => {
    expect(userCacheDir({ XDG_CACHE_HOME: 'relcache', HOME: '/home/op' })).toBe(path.join('/home/op', '.cache', 'tenantctl'));
    expect(userCacheDir({ XDG_CACHE_HOME: '/var/cache/op', HOME: '/home/op' })).toBe(path.join('/var/cache/op', 'tenantctl'));
  });

  it('a home directory that does not exist (HOME=/nonexistent, a system user\'s) is never made for the caches: they are left out (it made /nonexistent/.cache/tenantctl as root)', () => {
    const base = project();
    const home = path.join(base, 'nonexistent');
    writeCacheFile(userCacheFile('probe.json', { HOME: home }), { x: 1 });
    expect(existsSync(home)).toBe(false);
    // A home that exists gets its .cache/tenantctl, as before.
    mkdirSync(home);
    writeCacheFile(userCacheFile('probe.json', { HOME: home }), { x: 1 });
    expect(existsSync(path.join(home, '.cache', 'tenantctl', 'probe.json'))).toBe(true);
    // An XDG_CACHE_HOME named is made whole, missing parents included (the XDG spec: they were left out).
    const xdg = path.join(base, 'not-yet', 'cache');
    writeCacheFile(userCacheFile('probe.json', { XDG_CACHE_HOME: xdg, HOME: home }), { x: 1 });
    expect(existsSync(path.join(xdg, 'tenantctl', 'probe.json'))).toBe(true);
  });

  it('TENANTCTL_DEBUG=0 (or false, no, off, empty) leaves debugging off', () => {
    for (const v of ['0', 'false', 'no', 'off', '', ' ', 'FALSE']) expect(debugFromEnv({ TENANTCTL_DEBUG: v }), v).toBe(false);
    for (const v of ['1', 'true', 'yes']) expect(debugFromEnv({ TENANTCTL_DEBUG: v }), v).toBe(true);
    expect(debugFromEnv({})).toBe(false);
  });
});

describe('a Redis URL beside a Cluster', () => {
  it('lends credentials, not its database: a Cluster has db 0 only (counts read db 0; a note says so)', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-cfgh-'));
    try {
      const c = resolveConfig({}, { REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_URL: 'redis://app:pw@ignored:6379/3' }, cwd);
      expect(c.redis).toMatchObject({ topology: 'cluster', username: 'app', password: 'pw' });
      expect(c.redis!.db).toBeUndefined();
      expect(c.notices.join('\n')).toMatch(/database .* is not used: a Cluster has database 0 only/);
      expect(resolveConfig({}, { REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_URL: 'redis://app:pw@ignored:6379/0' }, cwd).notices.join('\n')).not.toMatch(/Cluster has database 0/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('settings given but not used are named', () => {
  it('TLS files from the config file are named by key; a Sentinel master and password are marked when a URL on the command line wins', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-cfgh-'));
    try {
      writeFileSync(path.join(cwd, 'tenantctl.config.yaml'), 'redis_ca_cert: ca.pem\nredis_sentinel: s1:26379\nsentinel_master: prod\nsentinel_password: sp\n');
      const c = resolveConfig({ redisUrl: 'redis://127.0.0.1:6390' }, {}, cwd);
      expect(c.notices.join('\n')).toMatch(/^redis_ca_cert in tenantctl\.config\.yaml not used: the Redis URL \(--redis-url\) is redis:\/\//m);
      const byKey = Object.fromEntries(c.settings.map((st) => [st.key, st]));
      expect(byKey.redis_sentinel.overriddenBy).toBe('--redis-url');
      expect(byKey.sentinel_master.overriddenBy).toBe('--redis-url');
      expect(byKey.sentinel_password.overriddenBy).toBe('--redis-url');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
