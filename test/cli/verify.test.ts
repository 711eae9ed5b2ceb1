import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { expectOneLineError, freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, useOwnRedis } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';

const TIERS = 'features: [has_payroll, has_ai]\ntiers:\n  pilot_core: { features: [], max_devices: 2 }\n  pilot_pro: { features: [has_payroll, has_ai], max_devices: null }\n';

/**
 * `tenantctl verify` as cron and CI run it: the built CLI against an own
 * redis-server, on the embedded registry and on PostgreSQL. The cache is
 * filled the way it is in production (get-config --warm writes what the
 * services would, check-permission caches the record), then the registry is
 * changed behind tenantctl's back (plain SQL, as a service would).
 */
describe('tenantctl verify', () => {
  const own = useOwnRedis();
  afterEach(async () => {
    await own.client.flushall();
  });

  function suite(kind: 'embedded' | 'postgres') {
    let ws: Workspace;
    let registryArgs: string[] = [];
    let sql: (text: string, params?: unknown[]) => Promise<void>;
    let drop = async () => undefined as void;
    const [a, b, c] = [uniq('va'), uniq('vb'), uniq('vc')];
    const cli = (args: string[], env: Record<string, string> = {}) => runCli([...registryArgs, ...args], { cwd: ws.dir, env: { REDIS_URL: own.server.url, ...env } });

    beforeAll(async () => {
      ws = workspace({
        tiers: TIERS,
        [a]: tenantYaml(a, 'Alpha', 'subscription: { tier: pilot_pro }\nbranding: { color: blue }\n'),
        [b]: tenantYaml(b, 'Beta', 'subscription: { tier: pilot_pro }\n'),
        [c]: tenantYaml(c, 'Gamma', 'subscription: { tier: pilot_core }\n'),
      });
      if (kind === 'postgres') {
        const db = await freshPostgresDatabase();
        drop = db.drop;
        registryArgs = ['--registry', db.url];
        const { default: pg } = await import('pg');
        sql = async (text, params) => {
          const client = new pg.Client({ connectionString: db.url });
          await client.connect();
          try {
            await client.query(text, params);
          } finally {
            await client.end();
          }
        };
      } else {
        sql = async (text, params) => {
          const store = await openPgliteStore(ws.registryDir);
          try {
            await store.db.query(text, params);
          } finally {
            await store.close();
          }
        };
      }
      const m = await cli(['migrate-yaml']);
      expect(m.code, m.stderr).toBe(0);
    });
    afterAll(async () => {
      ws?.cleanup();
      await drop();
    });

    /**
     * The cache as production has it: each tenant's config as the services
     * build it (get-config --warm) and its permissions record (check-permission),
     * made once by the CLI and put back before each test.
     */
    let production: Record<string, string> = {};
    async function warm() {
      if (!Object.keys(production).length) {
        for (const id of [a, b, c]) {
          expect((await cli(['get-config', id, '--warm'])).code).toBe(0);
          await cli(['check-permission', id, 'has_ai']);
        }
        const keys = await own.client.keys('*');
        production = Object.fromEntries(await Promise.all(keys.map(async (k) => [k, (await own.client.get(k))!])));
      } else {
        await own.client.mset(production);
      }
      expect(await own.client.dbsize()).toBe(6);
    }

    it('everything as the registry says: exit 0, no row (piped: the header line), one summary line', async () => {
      await warm();
      const r = await cli(['verify']);
      expect(r.code).toBe(0);
      // Piped (plain): the header line and no row (README: rows under a header line; it wrote nothing); the summary is on stderr.
      expect(r.stdout).toBe('key\tstatus\tdetail\n');
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^verified 6 cached entries: 6 ok, 0 stale, 0 orphan \(\d+\.\d s\)$/)]);
    });

    it('a registry change and a ghost entry: exit 1; the table lists only them, with the fields that differ', async () => {
      await warm();
      await sql("UPDATE tenants SET name = 'Alpha Renamed' WHERE id = $1", [a]);
      await sql("UPDATE business_subscriptions SET tier = 'pilot_core' WHERE business_id = $1", [b]);
      const ghost = uniq('ghost');
      await own.client.set(`tenant_config:${ghost}`, '{"client":{"id":"g"}}');
      const r = await cli(['verify']);
      expect(r.code).toBe(1);
      // On stderr: the summary (plain form), then the one-line answer.
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^verified 7 cached entries/), '2 stale and 1 orphan cache entries found; --fix deletes them']);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe('key\tstatus\tdetail');
      expect(lines.slice(1).sort()).toEqual([
        `permissions:${b}\tstale\tdiffers in granted_features, tier, device_limit (values: -o wide or --json)`,
        `tenant_config:${a}\tstale\tclient.name: "Alpha" -> "Alpha Renamed"`,
        `tenant_config:${ghost}\torphan\tin neither the registry nor YAML`,
      ].sort());
      expect(r.stderr).toMatch(/^verified 7 cached entries: 4 ok, 2 stale, 1 orphan/m);

      const json = await cli(['verify', '--json']);
      expect(json.code).toBe(1);
      const report = JSON.parse(json.stdout);
      expect(report.summary).toMatchObject({ checked: 7, ok: 4, stale: 2, orphan: 1, fixed: 0 });
      expect(report.entries).toContainEqual({
        key: `permissions:${b}`, family: 'permissions', tenant: b, status: 'stale',
        fields: [
          { field: 'granted_features', cached: ['has_ai', 'has_payroll'], current: [] },
          { field: 'tier', cached: 'pilot_pro', current: 'pilot_core' },
          { field: 'device_limit', cached: 999999, current: 2 },
        ],
      });
      // Put the registry back for the other tests.
      await sql("UPDATE tenants SET name = 'Alpha' WHERE id = $1", [a]);
      await sql("UPDATE business_subscriptions SET tier = 'pilot_pro' WHERE business_id = $1", [b]);
    });

    it('integers past 2^53 are compared digit by digit: one cached that rounds like the registry\'s is stale, shown with its digits; the same digits are ok (they compared equal as numbers: README\'s known-and-left)', async () => {
      await warm();
      // The services write the row's digits (their JSON reader keeps every one); JSON here rounds both alike.
      await sql(`UPDATE tenants SET tenant_config = tenant_config || '{"limits": {"quota": 12345678901234567, "list": [1, 98765432109876543]}}'::jsonb WHERE id = $1`, [a]);
      const key = `tenant_config:${a}`;
      const cachedWith = (quota: string, second: string) => `{"limits": {"quota": ${quota}, "list": [1, ${second}]}, ${production[key].slice(1)}`;
      try {
        await own.client.set(key, cachedWith('12345678901234567', '98765432109876543'));
        const same = await cli(['verify', '--json', a]);
        expect(same.code, same.stderr).toBe(0);
        expect(JSON.parse(same.stdout).summary).toMatchObject({ ok: 2, stale: 0 });
        await own.client.set(key, cachedWith('12345678901234568', '98765432109876542'));
        const off = await cli(['verify', '--json', a]);
        expect(off.code, off.stderr).toBe(1);
        expect(JSON.parse(off.stdout).entries).toEqual([
          expect.objectContaining({
            key, status: 'stale',
            fields: [
              { field: 'limits.quota', cached: '12345678901234568', current: '12345678901234567' },
              { field: 'limits.list[1]', cached: '98765432109876542', current: '98765432109876543' },
            ],
          }),
        ]);
        // Written as a float (a float to the services' reader, never the integer they write): stale too (it was ok).
        await own.client.set(key, cachedWith('1.2345678901234568e+16', '98765432109876543'));
        const float = await cli(['verify', '--json', a]);
        expect(float.code, float.stderr).toBe(1);
        expect(JSON.parse(float.stdout).entries[0].fields).toEqual([{ field: 'limits.quota', cached: '1.2345678901234568e+16', current: '12345678901234567' }]);
      } finally {
        await sql("UPDATE tenants SET tenant_config = tenant_config - 'limits' WHERE id = $1", [a]);
      }
    });

    it('integers past 2^53 of a tenant file are compared by the digits the file writes, as the services\' YAML reader keeps them', async () => {
      const y = uniq('vy');
      const file = ws.writeTenant(y, tenantYaml(y, 'Yankee', 'limits: { quota: 12345678901234567 }\n'));
      try {
        const shown = await cli(['get-config', y, '--json']);
        expect(shown.code, shown.stderr).toBe(0);
        // The entry the services write: the file's digits (get-config shows the rounded number JSON here reads).
        const text = JSON.stringify(JSON.parse(shown.stdout).config).replace('12345678901234568', '12345678901234567');
        expect(text).toContain('"quota":12345678901234567');
        const key = `tenant_config:${y}`;
        await own.client.set(key, text);
        const same = await cli(['verify', '--json', y]);
        expect(same.code, same.stdout).toBe(0);
        await own.client.set(key, text.replace('12345678901234567', '12345678901234568'));
        const off = await cli(['verify', '--json', y]);
        expect(off.code, off.stderr).toBe(1);
        expect(JSON.parse(off.stdout).entries).toEqual([
          expect.objectContaining({ key, status: 'stale', fields: [{ field: 'limits.quota', cached: '12345678901234568', current: '12345678901234567' }] }),
        ]);
      } finally {
        rmSync(file);
      }
    });

    it('a difference is shown even where a value equals a secret-named variable the tenant does not reference (masking those hid the drift: POSTGRES_PASSWORD=postgres)', async () => {
      await warm();
      const key = `tenant_config:${a}`;
      const entry = JSON.parse(production[key]) as Record<string, Record<string, unknown>>;
      await own.client.set(key, JSON.stringify({ ...entry, branding: { ...entry.branding, color: 'postgres' } }));
      const r = await cli(['verify', '--json'], { POSTGRES_PASSWORD: 'postgres', PWD: '/srv/app' });
      expect(r.code, r.stderr).toBe(1);
      expect(JSON.parse(r.stdout).entries).toContainEqual(expect.objectContaining({ key, status: 'stale', fields: [{ field: 'branding.color', cached: 'postgres', current: 'blue' }] }));
    });

    it('--fix deletes the stale and orphan entries only, with an audit line; a second run is clean', async () => {
      await warm();
      await sql("UPDATE tenants SET tenant_config = jsonb_set(tenant_config, '{branding,color}', '\"red\"') WHERE id = $1", [a]);
      await sql("UPDATE tenants SET status = 'suspended' WHERE id = $1", [c]);
      await own.client.set(`dashboard_kpis:${a}:days:30`, '{}');
      const audit = path.join(ws.dir, 'audit.log');
      const r = await cli(['verify', '--fix', '--audit-log', audit]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`^tenant_config:${a}\\tstale\\tbranding.color: "blue" -> "red"\\tdeleted$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^tenant_config:${c}\\torphan\\tregistry status is suspended\\tdeleted$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^permissions:${c}\\torphan\\tregistry status is suspended\\tdeleted$`, 'm'));
      expect(r.stderr).toMatch(/; 3 deleted \(/);
      expect(await own.client.exists(`tenant_config:${a}`, `tenant_config:${c}`, `permissions:${c}`)).toBe(0);
      // Entries that were right, and other families, stay.
      expect(await own.client.exists(`permissions:${a}`, `tenant_config:${b}`, `permissions:${b}`, `dashboard_kpis:${a}:days:30`)).toBe(4);
      const line = JSON.parse(readFileSync(audit, 'utf8').trim());
      expect(line).toMatchObject({ command: 'verify --fix', scope: { tenants: 'all' }, counts: { checked: 6, stale: 1, orphan: 2, deleted: 3 }, exit_code: 1 });
      const again = await cli(['verify']);
      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/^verified 3 cached entries: 3 ok/);
      await sql("UPDATE tenants SET status = 'active', tenant_config = jsonb_set(tenant_config, '{branding,color}', '\"blue\"') WHERE id = ANY($1::text[])", [[a, c]]);
    });

    if (kind === 'postgres') it('from a directory without the tenants directory (a cron job without its cd): said, and --fix leaves the entries of tenants only YAML may know (it deleted them as orphans)', async () => {
      await warm();
      const yamlOnly = uniq('vyaml');
      ws.writeTenant(yamlOnly, tenantYaml(yamlOnly, 'Only in YAML'));
      await own.client.set(`tenant_config:${yamlOnly}`, JSON.stringify({ client: { id: yamlOnly, name: 'Only in YAML' }, _meta: { source: 'yaml' } }));
      // Garbage of a tenant known nowhere: wrong whatever the tenants directory would say, so deleted even from here.
      const junk = uniq('vjunk');
      await own.client.set(`tenant_config:${junk}`, 'garbage');
      await own.client.set(`permissions:${junk}`, 'garbage');
      await sql("UPDATE tenants SET name = 'Alpha Elsewhere' WHERE id = $1", [a]);
      const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-elsewhere-'));
      try {
        const r = await runCli([...registryArgs, 'verify', '--fix'], { cwd: elsewhere, env: { REDIS_URL: own.server.url } });
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toMatch(/^note: no tenants directory at .*tenants: an entry of a tenant only YAML knows reads as an orphan, and --fix leaves those/m);
        expect(r.stdout).toMatch(new RegExp(`^tenant_config:${yamlOnly}\\torphan\\tin neither the registry nor YAML; left: no tenants directory at .*$`, 'm'));
        // The registry's own verdicts are acted on.
        expect(r.stdout).toMatch(new RegExp(`^tenant_config:${a}\\tstale\\t.*\\tdeleted$`, 'm'));
        expect(await own.client.exists(`tenant_config:${yamlOnly}`)).toBe(1);
        expect(await own.client.exists(`tenant_config:${a}`)).toBe(0);
        // (A review: reported as orphans left for the missing directory, they stayed, exit 1 on every cron run.)
        // Stale (no directory could say whether YAML knows them), and deleted: wrong either way.
        expect(r.stdout).toMatch(new RegExp(`^tenant_config:${junk}\\tstale\\tnot a JSON object\\tdeleted$`, 'm'));
        expect(r.stdout).toMatch(new RegExp(`^permissions:${junk}\\tstale\\tnot a permission record\\tdeleted$`, 'm'));
        expect(await own.client.exists(`tenant_config:${junk}`, `permissions:${junk}`)).toBe(0);
        // From the project, the same entry is right.
        const here = await cli(['verify', yamlOnly]);
        expect(here.code, here.stdout).toBe(0);
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
        await own.client.del(`tenant_config:${yamlOnly}`);
        await sql("UPDATE tenants SET name = 'Alpha' WHERE id = $1", [a]);
      }
    });

    if (kind === 'postgres') it('a registry row nested too deep to copy (jsonb written by SQL): that entry is an error, the others verified; get-config says it, exit 2 (both exited 70, "Maximum call stack size exceeded")', async () => {
      await warm();
      const deep = uniq('vdeep');
      const depth = 6000;
      await sql(`INSERT INTO tenants (id, name, tenant_config, config_source) VALUES ($1, 'Deep', ('{"x": ' || repeat('[', ${depth}) || '1' || repeat(']', ${depth}) || '}')::jsonb, 'database')`, [deep]);
      try {
        await own.client.set(`tenant_config:${deep}`, '{"x": 1}');
        const r = await cli(['verify', '--json']);
        expect(r.code, r.stderr).toBe(4);
        const report = JSON.parse(r.stdout) as { summary: Record<string, number>; entries: Array<{ key: string; status: string; reason?: string }> };
        expect(report.entries).toEqual([expect.objectContaining({ key: `tenant_config:${deep}`, status: 'error', reason: expect.stringMatching(/its registry row cannot be used: tenant_config nests deeper than 64 levels/) })]);
        expect(report.summary).toMatchObject({ checked: 7, ok: 6, error: 1 });
        const g = await cli(['get-config', deep, '--no-cache']);
        expect({ code: g.code, stderr: g.stderr.trim() }).toEqual({ code: 2, stderr: expect.stringMatching(new RegExp(`^error: tenant ${deep}: its registry row cannot be used`)) });
        // Past the cache's own 64 levels (copyable, but every read of such an entry refuses it): not served,
        // not cached by --warm (a review: cached, then verify called it stale, "not a JSON object").
        await sql(`UPDATE tenants SET tenant_config = ('{"x": ' || repeat('[', 100) || '1' || repeat(']', 100) || '}')::jsonb WHERE id = $1`, [deep]);
        await own.client.del(`tenant_config:${deep}`);
        const warm = await cli(['get-config', deep, '--warm']);
        expect({ code: warm.code, stderr: warm.stderr.trim() }).toEqual({ code: 2, stderr: expect.stringMatching(/its registry row cannot be used: tenant_config nests deeper than 64 levels/) });
        expect(await own.client.exists(`tenant_config:${deep}`)).toBe(0);
      } finally {
        await own.client.del(`tenant_config:${deep}`);
        await sql('DELETE FROM tenants WHERE id = $1', [deep]);
      }
    });

    it('entries whose tenant part is no valid id (café, bytes that are not UTF-8) are orphans, and --fix deletes them (they were skipped: never removed)', async () => {
      await warm();
      const cafe = Buffer.from('tenant_config:café');
      const bytes = Buffer.concat([Buffer.from('tenant_config:'), Buffer.from([0xff, 0xfe])]);
      await own.client.set(cafe, '{}');
      await own.client.set(bytes, '{}');
      const r = await cli(['verify', '--json']);
      expect(r.code, r.stderr).toBe(1);
      const orphans = JSON.parse(r.stdout).entries.filter((e: { status: string }) => e.status === 'orphan');
      expect(orphans.map((e: { tenant: string }) => e.tenant).sort()).toEqual(['café', '\\xff\\xfe'].sort());
      // Keys said as text, not as their bytes one char each.
      expect(orphans.map((e: { key: string }) => e.key)).toContain('tenant_config:café');
      // Bytes that are not UTF-8 as \xNN (they were U+FFFD: a name no key has).
      expect(orphans.map((e: { key: string }) => e.key)).toContain('tenant_config:\\xff\\xfe');
      const fix = await cli(['verify', '--fix']);
      expect(fix.code).toBe(1);
      expect(await own.client.exists(cafe, bytes)).toBe(0);
      // The tool's own entries stay.
      expect(await own.client.exists(`tenant_config:${a}`, `tenant_config:${b}`)).toBe(2);
      expect((await cli(['verify'])).code).toBe(0);
    });

    it('Redis stalls while --fix deletes (writes paused past the deadline): exit 4, the entries said maybe deleted, not exit 3 "before any deletion"', async () => {
      const ghosts = [uniq('ghost'), uniq('ghost')];
      for (const g of ghosts) await own.client.set(`tenant_config:${g}`, '{"client":{"id":"g"}}');
      // Reads go on; the compare-and-delete waits on the server, past the command's deadline, then runs.
      await own.client.call('CLIENT', 'PAUSE', '20000', 'WRITE');
      let r;
      try {
        r = await cli(['verify', '--fix', ...ghosts, '--redis-timeout', '400', '--json']);
      } finally {
        await own.client.call('CLIENT', 'UNPAUSE');
      }
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/after 0 stale or orphan entries were deleted, and 2 more may have been \(Redis did not answer while deleting them\)/);
      expect(JSON.parse(r.stdout).summary).toMatchObject({ fixed: 0, in_doubt: 2, orphan: 2 });
      // (Here they were not: the server drops a paused call whose client has gone.) A rerun finishes.
      const again = await cli(['verify', '--fix', ...ghosts]);
      expect(again.code, again.stderr).toBe(1);
      expect(again.stderr).toMatch(/2 orphan cache entries found \(2 deleted\)/);
      expect(await own.client.exists(...ghosts.map((g) => `tenant_config:${g}`))).toBe(0);
    });

    it('a server that answers the deletion with an error (UNLINK renamed away): exit 3, nothing in doubt (it said "2 more may have been", "Redis did not answer", exit 4)', async () => {
      const ghosts = [uniq('ghost'), uniq('ghost')];
      const renamed = await startRedis(['--rename-command', 'UNLINK', '']);
      try {
        for (const g of ghosts) await renamed.command('SET', `tenant_config:${g}`, '{"client":{"id":"g"}}');
        const r = await cli(['verify', '--fix', ...ghosts, '--json'], { REDIS_URL: renamed.url });
        expect(r.code, r.stderr).toBe(3);
        expect(r.stderr).not.toMatch(/may have been|did not answer/);
        expect(r.stderr).toMatch(/unknown.*command/i);
        expect(await renamed.command('EXISTS', ...ghosts.map((g) => `tenant_config:${g}`))).toMatch(/^:2/);
      } finally {
        await renamed.stop();
      }
    });

    it('named tenants: only their entries', async () => {
      await warm();
      await sql("UPDATE tenants SET name = 'Beta 2' WHERE id = $1", [b]);
      const r = await cli(['verify', a, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).summary).toMatchObject({ checked: 2, ok: 2 });
      const rb = await cli(['verify', b, '--json']);
      expect(rb.code).toBe(1);
      expect(JSON.parse(rb.stdout).entries.map((e: { key: string }) => e.key)).toEqual([`tenant_config:${b}`]);
      // Only the kind found, in the singular (it said "1 stale and 0 orphan cache entry found").
      expect(rb.stderr).toMatch(/^1 stale cache entry found; --fix deletes them$/m);
      await sql("UPDATE tenants SET name = 'Beta' WHERE id = $1", [b]);
    });
  }

  describe('on the embedded registry', () => suite('embedded'));
  describe.runIf(TEST_DATABASE_URL)('on PostgreSQL', () => suite('postgres'));

  describe('backends down', () => {
    let ws: Workspace;
    beforeAll(() => {
      ws = workspace({ x: tenantYaml('x') });
    });
    afterAll(() => ws.cleanup());

    it('Redis down or not configured: exit 3, one line', async () => {
      const down = await runCli(['verify'], { cwd: ws.dir, env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, REDIS_TIMEOUT_MS: '300' } });
      expect(down.code).toBe(3);
      expectOneLineError(down);
      expect(down.stderr).toMatch(/^error: Redis at .* is unreachable/);
      const none = await runCli(['verify'], { cwd: ws.dir });
      expect(none.code).toBe(3);
      expect(none.stderr).toMatch(/no Redis configured/);
    });

    it('no registry found (YAML only): registry-only tenants and permission records are undecided (exit 4); --fix is refused (exit 2) and deletes nothing', async () => {
      const yamlOnly = workspace({ y: tenantYaml('y', 'Tenant y') }, { registry: false });
      try {
        await own.client.set('tenant_config:tn_only', '{"client":{"id":"tn_only","name":"Registry only"}}');
        await own.client.set('permissions:y', '{"granted_features":["has_ai"],"tier":"pilot_pro","status":"active","demo_expires_at":null,"device_limit":5}');
        await own.client.set('tenant_config:ghost', '{"client":{"id":"ghost","name":"Nobody"}}');
        await own.client.set('permissions:tn_only', 'garbage');
        const r = await runCli(['verify', '--json'], { cwd: yamlOnly.dir, env: { REDIS_URL: own.server.url } });
        expect(r.code, r.stderr).toBe(4);
        expect(r.stderr).toMatch(/comparing with YAML only/);
        const byKey = Object.fromEntries(JSON.parse(r.stdout).entries.map((e: { key: string }) => [e.key, e]));
        expect(byKey['tenant_config:tn_only']).toMatchObject({ status: 'error', reason: expect.stringMatching(/registry-only tenant/) });
        expect(byKey['permissions:y']).toMatchObject({ status: 'error', reason: expect.stringMatching(/no registry is configured to compute permissions/) });
        expect(byKey['tenant_config:ghost']).toMatchObject({ status: 'orphan' });
        // Malformed, with no registry to ask whom it belongs to: stale, not "in neither the registry nor YAML" (a review).
        expect(byKey['permissions:tn_only']).toMatchObject({ status: 'stale', reason: 'not a permission record' });
        expect(JSON.parse(r.stdout).summary.yaml_only).toBe(true);
        // Only an orphan found: its advice is the registry, not --fix, which refuses here (a probe: "--fix deletes them").
        const ghost = await runCli(['verify', 'ghost'], { cwd: yamlOnly.dir, env: { REDIS_URL: own.server.url } });
        expect(ghost.code, ghost.stderr).toBe(1);
        expect(ghost.stderr).toMatch(/^1 orphan cache entry found; judged against the YAML files alone: --fix needs the registry \(--registry or DATABASE_URL\)$/m);
        // --fix judged against YAML alone would delete a live registry tenant's entries (a cron job without its
        // DATABASE_URL): refused, nothing deleted.
        const fix = await runCli(['verify', '--fix'], { cwd: yamlOnly.dir, env: { REDIS_URL: own.server.url } });
        expect(fix.code, fix.stderr).toBe(2);
        expectOneLineError(fix);
        expect(fix.stderr).toMatch(/deleting stale entries needs the registry to compare with: .* \(give --registry or DATABASE_URL; verify without --fix compares with YAML only\)/);
        expect(await own.client.exists('tenant_config:tn_only', 'permissions:y', 'tenant_config:ghost', 'permissions:tn_only')).toBe(4);
        // The same usage error with Redis silent: exit 2 at once (it was exit 3 after the Redis timeout).
        const hole = net.createServer(() => undefined);
        await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
        try {
          const silent = await runCli(['verify', '--fix'], { cwd: yamlOnly.dir, env: { REDIS_URL: `redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`, REDIS_TIMEOUT_MS: '5000' } });
          expect(silent.code, silent.stderr).toBe(2);
          expectOneLineError(silent);
          expect(silent.stderr).toMatch(/deleting stale entries needs the registry to compare with: .* \(give --registry or DATABASE_URL; verify without --fix compares with YAML only\)/);
          // Not after the 5 s Redis timeout: the connect under way is given up when the command ends.
          expect(silent.ms).toBeLessThan(4000);
        } finally {
          hole.close();
        }
      } finally {
        await own.client.del('tenant_config:tn_only', 'permissions:y', 'tenant_config:ghost', 'permissions:tn_only');
        yamlOnly.cleanup();
      }
    });

    it('registry unreachable: exit 3 (nothing can be compared), not every entry an orphan', async () => {
      await own.client.set('tenant_config:x', '{"client":{"id":"x","name":"Tenant x"}}');
      const r = await runCli(['verify', '--registry', `postgres://127.0.0.1:${await freePort()}/x`], { cwd: ws.dir, env: { REDIS_URL: own.server.url } });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^error: registry .* unreachable/);
    });
  });
});
