import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';

/**
 * The services skip cache and registry for a hard-coded list of tenants
 * (YAML_ONLY_TENANTS, seed 001), whatever their files say. `yaml_only_tenants`
 * in the config file gives tenantctl the same list: those tenants are read
 * from YAML, never cached, never migrated, as if their files said yaml_only.
 */
describe('yaml_only_tenants: the services\' hard-coded YAML-only list', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  const [listed, other] = [uniq('listed'), uniq('other')];
  const config = (extra: string) => writeFileSync(path.join(ws.dir, 'tenantctl.config.yaml'), `tenants_dir: tenants\n${extra}`);
  const env = () => ({ REDIS_URL: own.server.url });

  beforeAll(() => {
    ws = workspace({ [listed]: tenantYaml(listed, 'Listed'), [other]: tenantYaml(other, 'Other') });
  });
  afterAll(() => ws.cleanup());

  it('a listed tenant is skipped by migrate-yaml, read from YAML, never warmed; the others migrate', async () => {
    config(`yaml_only_tenants: [${listed}, example]\n`);
    const m = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: env() });
    expect(m.code, m.stderr).toBe(0);
    const items = Object.fromEntries(JSON.parse(m.stdout).items.map((i: { id: string }) => [i.id, i]));
    expect(items[listed]).toMatchObject({ action: 'skip', reason: 'yaml_only' });
    expect(items[other]).toMatchObject({ action: 'create' });
    const g = await runCli(['get-config', listed, '--warm', '--json'], { cwd: ws.dir, env: { ...env(), OPENAI_API_KEY: 'x' } });
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout)).toMatchObject({ source: 'yaml', config: { _meta: { yaml_only: true } } });
    expect(await own.client.exists(`tenant_config:${listed}`)).toBe(0);
    const shown = await runCli(['config', '--json'], { cwd: ws.dir, env: env() });
    expect(shown.stdout).toContain(listed);
  });

  it('a listed tenant with no file is not found (exit 1), even with a registry row and a cached entry: YAML alone answers for it', async () => {
    config(`yaml_only_tenants: [${other}]\n`);
    await own.client.set(`tenant_config:${other}`, '{"client": {"id": "x", "name": "cached"}}');
    rmSync(path.join(ws.tenantsDir, `${other}.yaml`));
    try {
      const r = await runCli(['get-config', other], { cwd: ws.dir, env: env() });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/is YAML-only \(yaml_only_tenants\) and has no file/);
    } finally {
      ws.writeTenant(other, tenantYaml(other, 'Other'));
      await own.client.del(`tenant_config:${other}`);
    }
  });

  it('without the setting the file\'s own reading comes back (the parse cache kept the file, not the list)', async () => {
    config('');
    const m = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, env: env() });
    expect(m.code, m.stderr).toBe(0);
    const items = Object.fromEntries(JSON.parse(m.stdout).items.map((i: { id: string }) => [i.id, i]));
    expect(items[listed]).toMatchObject({ action: 'create' });
  });

  it('bad input: an id that is not valid is exit 2 naming the setting, nothing done', async () => {
    config('yaml_only_tenants: ["bad id!"]\n');
    const r = await runCli(['migrate-yaml'], { cwd: ws.dir, env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/yaml_only_tenants: "bad id!" is not a valid tenant id/);
  });
});
