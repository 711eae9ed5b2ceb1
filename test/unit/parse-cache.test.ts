import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { TenantFileError } from '../../src/errors.js';
import { ParseCache } from '../../src/tenants/parse-cache.js';
import { YamlTenantSource } from '../../src/tenants/tenant-source.js';
import { tenantYaml, workspace, type Workspace } from '../helpers/setup.js';

/** Parsed tenant files kept between runs: never stale, never holding a literal secret. */
describe('the parse cache', () => {
  const cacheHome = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-xdg-'));
  const env = { XDG_CACHE_HOME: cacheHome };
  const ws = workspace({}, { registry: false });
  afterAll(() => {
    ws.cleanup();
    rmSync(cacheHome, { recursive: true, force: true });
  });

  /**
   * Writes a tenant file as one written a minute ago: a file whose content changed within the last
   * seconds is not persisted (a same-size rewrite in the same timestamp tick would keep its stamp).
   */
  const write = (...args: Parameters<Workspace['writeTenant']>) => {
    const file = ws.writeTenant(...args);
    const past = new Date(Date.now() - 60_000);
    utimesSync(file, past, past);
    return file;
  };

  const configsFile = () => path.join(cacheHome, 'tenantctl', readdirName(cacheHome).replace(/\.json$/, '.configs.json'));

  /** A new process's view: a fresh source and the cache as saved on disk. */
  const fresh = () => {
    const source = new YamlTenantSource(ws.tenantsDir);
    source.useParseCache(ParseCache.open(ws.tenantsDir, env));
    return source;
  };

  it('gives back what parsing gave, without the literal secrets, and finds lines again when asked', () => {
    const file = write('acme', tenantYaml('acme', 'Acme', 'smtp:\n  password: hunter2\n  host: h\n'));
    const first = fresh();
    const parsed = first.read('acme')!;
    first.saveParseCache();
    for (const name of readdirSync(path.join(cacheHome, 'tenantctl'))) {
      expect(readFileSync(path.join(cacheHome, 'tenantctl', name), 'utf8')).not.toContain('hunter2');
      expect(statSync(path.join(cacheHome, 'tenantctl', name)).mode & 0o077).toBe(0);
    }
    expect(existsSync(configsFile())).toBe(true);
    const again = fresh().read('acme')!;
    expect(again.config).toEqual(parsed.config);
    expect(again.warnings).toEqual(parsed.warnings);
    expect(again.warnings[0]).toMatch(/acme\.yaml:5: literal secret smtp\.password stripped/);
    expect(again.lineOf(['smtp', 'host'])).toBe(6);
    expect(again.file).toBe(file);
  });

  it('an edit is seen even when the mtime is put back (ctime and size change), and a bad file stays a file:line error', () => {
    const file = write('beta', tenantYaml('beta', 'Beta'));
    const first = fresh();
    expect(first.read('beta')!.config.client).toMatchObject({ name: 'Beta' });
    first.saveParseCache();
    const { atime, mtime } = statSync(file);
    writeFileSync(file, tenantYaml('beta', 'Beta Renamed'));
    utimesSync(file, atime, mtime);
    const second = fresh();
    expect(second.read('beta')!.config.client).toMatchObject({ name: 'Beta Renamed' });
    second.saveParseCache();
    // The same length, the mtime put back (cp -p, rsync -t): only the ctime tells (a mutation review: the
    // edit above changed the size too, so a stamp without the ctime passed).
    const { atime: a2, mtime: m2 } = statSync(file);
    writeFileSync(file, tenantYaml('beta', 'Beta Renaxed'));
    utimesSync(file, a2, m2);
    const sameSize = fresh();
    expect(sameSize.read('beta')!.config.client).toMatchObject({ name: 'Beta Renaxed' });
    sameSize.saveParseCache();
    writeFileSync(file, 'client:\n  id: beta\n  name: [x\n');
    const third = fresh();
    expect(() => third.read('beta')).toThrow(TenantFileError);
    third.saveParseCache();
    const err = (() => {
      try {
        fresh().read('beta');
      } catch (e) {
        return e as TenantFileError;
      }
    })();
    expect(err).toBeInstanceOf(TenantFileError);
    expect(err!.message).toMatch(/beta\.yaml:\d+: /);
  });

  it('configs lost, or of another generation (killed between the two writes), are parsed again from the files', () => {
    write('delta', tenantYaml('delta', 'Delta', 'features:\n  a: 1\n'));
    const s = fresh();
    const want = structuredClone(s.read('delta')!.config);
    s.saveParseCache();
    // Another generation: the configs file of a later save whose index never landed.
    const configs = JSON.parse(readFileSync(configsFile(), 'utf8'));
    writeFileSync(configsFile(), JSON.stringify({ ...configs, generation: 'other', configs: { [path.join(ws.tenantsDir, 'delta.yaml')]: { client: { id: 'delta', name: 'Wrong' } } } }));
    const doc = fresh().read('delta')!;
    expect(doc.rowHash).toBeDefined();
    expect(doc.config).toEqual(want);
    rmSync(configsFile());
    expect(fresh().read('delta')!.config).toEqual(want);
  });

  it('a config that no longer matches what its index entry says is an error, never served', () => {
    write('eps', tenantYaml('eps', 'Eps'));
    const s = fresh();
    s.read('eps');
    s.saveParseCache();
    rmSync(configsFile());
    // As if the file had changed between the stat and the read: the entry's row hash is not the file's.
    const index = path.join(cacheHome, 'tenantctl', readdirName(cacheHome));
    const data = JSON.parse(readFileSync(index, 'utf8'));
    // (Entries are [stamp, row hash, flags, ...] under the file's name in the tenants directory.)
    data.entries['eps.yaml'][1] = 'f'.repeat(64);
    writeFileSync(index, JSON.stringify(data));
    const doc = fresh().read('eps')!;
    expect(() => doc.config).toThrow(/changed while it was being read; run again/);
  });

  it('serves configs from its own file without parsing the tenant files again, and only for the stamp they were parsed at', () => {
    write('zeta', tenantYaml('zeta', 'Zeta'));
    const s = fresh();
    const want = structuredClone(s.read('zeta')!.config);
    s.saveParseCache();
    const parse = vi.spyOn(YamlTenantSource.prototype as unknown as { parse: () => unknown }, 'parse');
    try {
      const again = fresh();
      const doc = again.read('zeta')!;
      expect(doc.config).toEqual(want);
      expect(parse).not.toHaveBeenCalled();
      // The cache asked for another stamp than its config's: nothing served.
      const cache = ParseCache.open(ws.tenantsDir, env);
      expect(cache.config(path.join(ws.tenantsDir, 'zeta.yaml'), 'another stamp')).toBeUndefined();
    } finally {
      parse.mockRestore();
    }
  });

  it('a second save of one cache keeps every config (the generation moves on with it)', () => {
    write('eta', tenantYaml('eta', 'Eta'));
    write('theta', tenantYaml('theta', 'Theta'));
    const first = fresh();
    first.read('eta');
    first.read('theta');
    first.saveParseCache();
    const cache = ParseCache.open(ws.tenantsDir, env);
    const source = new YamlTenantSource(ws.tenantsDir);
    source.useParseCache(cache);
    write('eta', tenantYaml('eta', 'Eta v2'));
    source.read('eta');
    source.saveParseCache();
    write('iota', tenantYaml('iota', 'Iota'));
    source.read('iota');
    source.saveParseCache();
    const parse = vi.spyOn(YamlTenantSource.prototype as unknown as { parse: () => unknown }, 'parse');
    try {
      const last = fresh();
      expect(['eta', 'theta', 'iota'].map((id) => (last.read(id)!.config.client as { name: string }).name)).toEqual(['Eta v2', 'Theta', 'Iota']);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it('keeps both layouts and every kind of result (secrets stripped, yaml_only, a bad file) exactly as parsing gave them', () => {
    mkdirSync(path.join(ws.tenantsDir, 'kappa'), { recursive: true });
    write('kappa', tenantYaml('kappa', 'Kappa', 'smtp:\n  password: hunter2\n'), path.join('kappa', 'client.yaml'));
    write('lambda', tenantYaml('lambda', 'Lambda', 'yaml_only: true\n'));
    write('mu', 'client:\n  id: mu\n  name: [x\n');
    const first = fresh();
    const want = ['kappa', 'lambda'].map((id) => first.read(id)!);
    const badMessage = (() => {
      try {
        first.read('mu');
      } catch (e) {
        return (e as Error).message;
      }
    })();
    first.saveParseCache();
    const parse = vi.spyOn(YamlTenantSource.prototype as unknown as { parse: () => unknown }, 'parse');
    try {
      const again = fresh();
      const got = ['kappa', 'lambda'].map((id) => again.read(id)!);
      for (const [i, doc] of got.entries()) {
        const { id, file, yamlOnly, warnings, strippedSecrets, rowHash, hasSubscription, config } = doc;
        expect({ id, file, yamlOnly, warnings, strippedSecrets, rowHash, hasSubscription, config }).toEqual({ ...pick(want[i]), rowHash: want[i].rowHash });
      }
      expect(got[1].yamlOnly).toBe(true);
      expect(() => again.read('mu')).toThrow(badMessage);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it('a file whose content changed in the last seconds is parsed but not kept (racily clean), then kept once it is older', () => {
    const file = ws.writeTenant('racy', tenantYaml('racy', 'Just written'));
    const first = fresh();
    expect(first.load('racy')?.config).toMatchObject({ client: { name: 'Just written' } });
    first.saveParseCache();
    const parse = vi.spyOn(YamlTenantSource.prototype as unknown as { parse: () => unknown }, 'parse');
    try {
      fresh().load('racy');
      expect(parse).toHaveBeenCalledTimes(1); // not kept: parsed again
      const past = new Date(Date.now() - 60_000);
      utimesSync(file, past, past);
      const settled = fresh();
      settled.load('racy');
      settled.saveParseCache();
      parse.mockClear();
      fresh().load('racy');
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it('a corrupt or foreign cache file is ignored, never trusted', () => {
    write('gamma', tenantYaml('gamma', 'Gamma'));
    const s = fresh();
    s.read('gamma');
    s.saveParseCache();
    writeFileSync(path.join(cacheHome, 'tenantctl', readdirName(cacheHome)), '{ not json');
    expect(fresh().read('gamma')!.config.client).toMatchObject({ name: 'Gamma' });
  });
});

/** The index file (the configs sit beside it in `<same name>.configs.json`). */
function readdirName(home: string): string {
  return readdirSync(path.join(home, 'tenantctl')).find((f: string) => f.endsWith('.json') && !f.endsWith('.configs.json'))!;
}

/** The fields of a parsed tenant document that the parse cache must give back. */
function pick(d: { id: string; file: string; yamlOnly: boolean; warnings: string[]; strippedSecrets: unknown[]; hasSubscription: boolean; config: unknown }) {
  const { id, file, yamlOnly, warnings, strippedSecrets, hasSubscription, config } = d;
  return { id, file, yamlOnly, warnings, strippedSecrets, hasSubscription, config };
}
