import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { useOwnRedis } from '../helpers/redis-server.js';

/**
 * The services read `tenant_config:<id>` and use a hit as it is (seed 001:
 * `if cached: return cached`); on a miss they build the config from the
 * registry with secrets from their environment. After any tenantctl command a
 * service must get a miss or exactly what it would have built itself.
 */
describe('the services\' read path after every command that touches tenant_config:', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  const id = uniq('svc');
  const secrets = { OPENAI_API_KEY: 'sk-live-123', [`${id.toUpperCase()}_SMTP_PASSWORD`]: 'smtp-pw-456' };
  const extra = 'infrastructure:\n  openai: { model: gpt-4o-mini }\nemail:\n  primary: ops@x.example\n  smtp: { host: smtp.x.example }\n';
  const env = () => ({ REDIS_URL: own.server.url, ...secrets });

  beforeAll(async () => {
    ws = workspace({ [id]: tenantYaml(id, 'Service Co', extra) });
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir, env: env() })).code).toBe(0);
  });
  afterAll(() => ws.cleanup());

  /** What a service would build on a miss: the registry's config, secrets resolved from its environment. */
  const serviceBuilt = async () => {
    const r = await runCli(['get-config', id, '--no-cache', '--show-secrets', '--json'], { cwd: ws.dir, env: env() });
    const { _meta, ...rest } = JSON.parse(r.stdout).config;
    return { ...rest, _meta: { source: _meta.source } };
  };

  /** A service's read: the cached value as it is, or a miss. */
  const serviceSees = async () => {
    const raw = await own.client.get(`tenant_config:${id}`);
    return raw === null ? 'miss' : JSON.parse(raw);
  };

  const expectMissOrBuilt = async () => {
    const seen = await serviceSees();
    if (seen !== 'miss') expect(seen).toEqual(await serviceBuilt());
    return seen;
  };

  it('plain reads (get-config, list-tenants, check-permission) leave a miss', async () => {
    for (const args of [['get-config', id], ['get-config', id, '--json'], ['get-config', id, '--no-cache'], ['list-tenants'], ['check-permission', id, 'has_ai']]) {
      await runCli(args, { cwd: ws.dir, env: env() });
      expect(await expectMissOrBuilt(), args.join(' ')).toBe('miss');
    }
  });

  it('get-config --warm writes exactly what the service would build, secrets included', async () => {
    const r = await runCli(['get-config', id, '--warm', '--json'], { cwd: ws.dir, env: env() });
    expect(r.code).toBe(0);
    const seen = await expectMissOrBuilt();
    expect(seen).toMatchObject({ infrastructure: { openai: { api_key: 'sk-live-123' } }, email: { smtp: { password: 'smtp-pw-456' } } });
    expect(await own.client.ttl(`tenant_config:${id}`)).toBeGreaterThan(250);
  });

  it('--warm without the secrets in this environment writes nothing and says why', async () => {
    await own.client.del(`tenant_config:${id}`);
    const r = await runCli(['get-config', id, '--warm'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/not warmed: the secret\(s\) at .*infrastructure\.openai\.api_key.* without a value in this environment/);
    expect(await serviceSees()).toBe('miss');
  });

  it('--warm with no Redis configured says nothing was warmed, once, and no "not warmed" reason (it gave one per unresolved secret, with no cache at all)', async () => {
    const r = await runCli(['get-config', id, '--warm'], { cwd: ws.dir, env: {} });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: no Redis configured \(REDIS_URL, --redis-url, --redis-cluster or --redis-sentinel\): nothing warmed$/m);
    expect(r.stderr).not.toMatch(/not warmed/);
  });

  it('a migration that changes the tenant, and invalidate, leave a miss where the old entry was', async () => {
    await runCli(['get-config', id, '--warm'], { cwd: ws.dir, env: env() });
    ws.writeTenant(id, tenantYaml(id, 'Service Co Renamed', extra));
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir, env: env() })).code).toBe(0);
    expect(await expectMissOrBuilt()).toBe('miss');
    await runCli(['get-config', id, '--warm'], { cwd: ws.dir, env: env() });
    expect((await expectMissOrBuilt())).toMatchObject({ client: { name: 'Service Co Renamed' } });
    await runCli(['invalidate', id], { cwd: ws.dir, env: env() });
    expect(await serviceSees()).toBe('miss');
  });
});

describe('get-config --warm in a project with no registry yet (YAML only)', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  const id = uniq('yonly');
  beforeAll(() => {
    ws = workspace({ [id]: tenantYaml(id, 'YAML Only') }, { registry: false });
  });
  afterAll(() => ws.cleanup());

  it('the warmed entry stays (it was written, then taken back at once: no registry to re-read)', async () => {
    const r = await runCli(['get-config', id, '--warm'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
    expect(r.code, r.stderr).toBe(0);
    const raw = await own.client.get(`tenant_config:${id}`);
    expect(raw).not.toBeNull();
    expect(JSON.parse(raw!)).toMatchObject({ client: { id, name: 'YAML Only' }, _meta: { source: 'yaml' } });
  });
});

describe('get-config --warm writes the services\' own bytes, or nothing', () => {
  const own = useOwnRedis();
  let ws: Workspace;
  const [uni, legacy, big, whole, ports, below, literal] = [uniq('uni'), uniq('legacy'), uniq('big'), uniq('whole'), uniq('ports'), uniq('below'), uniq('literal')];
  beforeAll(() => {
    ws = workspace(
      {
        [uni]: tenantYaml(uni, 'Café Zürich', 'ratio: 0.00001\nlimits: { users: 5, share: 0.25 }\n'),
        // PyYAML reads `yes` as true: the services would cache true where tenantctl reads "yes".
        [legacy]: tenantYaml(legacy, 'Legacy', 'flags:\n  beta: yes\n'),
        [big]: tenantYaml(big, 'Big', 'ids:\n  account: 12345678901234567890\n'),
        // PyYAML reads 1.0 as a float, which json.dumps writes 1.0; to JavaScript it is the number 1.
        [whole]: tenantYaml(whole, 'Whole', 'api:\n  version: 1.0\n'),
        // The same below its key: the line cannot be tied to the path, and the entry is still not written.
        [below]: tenantYaml(below, 'Below', 'api:\n  version:\n    1.0\n'),
        // json.dumps keeps the file's order (name, then 443); a JavaScript object puts "443" first.
        [ports]: tenantYaml(ports, 'Ports', 'ports:\n  name: web\n  443: https\n'),
        // A literal secret: never kept here, and the services' entry would hold it.
        [literal]: tenantYaml(literal, 'Literal', 'webhook:\n  url: https://h.example\n  token: literal-tok\n'),
      },
      { registry: false },
    );
  });
  afterAll(() => ws.cleanup());
  const warm = (id: string) => runCli(['get-config', id, '--warm'], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });

  it('json.dumps\' text: ", " and ": ", non-ASCII as \\u escapes, a float in Python\'s repr (seed 001)', async () => {
    const r = await warm(uni);
    expect(r.code, r.stderr).toBe(0);
    expect(await own.client.get(`tenant_config:${uni}`)).toBe(
      `{"client": {"id": "${uni}", "name": "Caf\\u00e9 Z\\u00fcrich"}, "ratio": 1e-05, "limits": {"users": 5, "share": 0.25}, "_meta": {"source": "yaml"}}`,
    );
  });

  it('a value the services\' YAML 1.1 reader reads otherwise (yes), an integer past 2^53, a whole float (1.0: it was written 1), an integer key among others (it was written first): not warmed, said, exit 0', async () => {
    for (const [id, said] of [
      [legacy, /not warmed: flags\.beta \(line 5: yes\) reads otherwise/],
      [big, /not warmed: ids\.account: the integer/],
      [whole, /not warmed: api\.version \(line 5: 1\.0\) would be cached as 1, where the services write 1\.0/],
      [ports, /not warmed: ports\.443: an integer key among others/],
      [below, /not warmed: line 6 \(1\.0\) holds a float with a whole value, which the services write as 1\.0 and JSON from here as 1/],
      // It was written without the token (and said warmed).
      [literal, /not warmed: the literal secret at webhook\.token \(line 6\) is not kept by this tool, and the services' entry would hold it/],
    ] as const) {
      const r = await warm(id);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(said);
      expect(await own.client.exists(`tenant_config:${id}`)).toBe(0);
    }
  });
});
