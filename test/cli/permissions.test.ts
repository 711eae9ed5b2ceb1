import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, freshPostgresDatabase, runCli, sharedRedisUrl, tenantYaml, TEST_DATABASE_URL, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';

const TIERS = 'features: [has_payroll, has_ai, has_api_access, has_advanced_reporting]\ntiers:\n  demo: { features: [has_advanced_reporting], max_devices: 1 }\n  pilot_core: { features: [], max_devices: 2 }\n  pilot_pro: { features: [has_payroll, has_ai, has_api_access, has_advanced_reporting], max_devices: null }\n';
const TIMEOUT_MS = 500;


describe('permission commands', () => {
  let ws: Workspace;
  let redis: Redis;
  let downUrl: string;
  const [pro, core, demo, suspended] = [uniq('pro'), uniq('core'), uniq('demo'), uniq('susp')];
  const up = () => ({ REDIS_URL: sharedRedisUrl() });
  const down = () => ({ REDIS_URL: downUrl, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) });
  const cli = (args: string[], env: Record<string, string> = up()) => runCli(args, { cwd: ws.dir, env });

  beforeAll(async () => {
    ws = workspace({
      tiers: TIERS,
      [pro]: tenantYaml(pro, 'Pro', 'subscription: { tier: pilot_pro, overrides: { has_ai: false } }\n'),
      [core]: tenantYaml(core, 'Core', 'subscription: { tier: pilot_core }\n'),
      [demo]: tenantYaml(demo, 'Demo', 'subscription: { tier: demo, demo_expires_at: "2099-01-01T00:00:00Z" }\n'),
      [suspended]: tenantYaml(suspended, 'Susp', 'subscription: { tier: demo, status: suspended, demo_expires_at: "2099-01-01T00:00:00Z" }\n'),
    });
    redis = new Redis(sharedRedisUrl());
    downUrl = `redis://127.0.0.1:${await freePort()}`;
    const m = await runCli(['migrate-yaml', pro, core, demo, suspended], { cwd: ws.dir, env: up() });
    // Piped: the summary alone on stderr (no warning).
    expect(m.stderr).toBe('done: 9 create, 0 update, 0 unchanged, 0 conflict, 0 skip, 0 error\n');
    expect(m.code).toBe(0);
  });
  afterAll(() => {
    redis.disconnect();
    ws.cleanup();
  });

  describe('check-permission', () => {
    it('up: exit 0 when granted, 1 when denied; a live demo grants all, a suspended demo nothing', async () => {
      expect((await cli(['check-permission', pro, 'has_payroll'])).code).toBe(0);
      const denied = await cli(['check-permission', pro, 'has_ai']);
      expect(denied.code).toBe(1);
      expect(denied.stdout).toMatch(/has_ai: denied/);
      expect(denied.stderr).toMatch(/^\S+ has_ai: denied \(.+\)$/m);
      expectOneLineError(denied);
      expect((await cli(['check-permission', demo, 'has_payroll'])).code).toBe(0);
      expect((await cli(['check-permission', suspended, 'has_advanced_reporting'])).code).toBe(1);
      expect((await cli(['check-permission', uniq('nobody'), 'has_ai'])).code).toBe(1);
    });

    it('--explain says the tier, status, expiry, override and source; --json carries it', async () => {
      const r = await cli(['check-permission', pro, 'has_ai', '--explain', '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({
        granted: false, override: { feature: 'has_ai', value: false }, knownFeature: true,
        record: { tier: 'pilot_pro', status: 'active', demo_expires_at: null }, source: expect.stringMatching(/cache|registry/),
      });
      const table = await cli(['check-permission', pro, 'has_teleport', '--explain']);
      expect(table.code).toBe(1);
      expect(table.stdout).toMatch(/^feature in catalogue\tno$/m);
      // Piped, the rows come alone under their header; the verdict goes to stderr (it came before the header).
      expect(table.stdout).toMatch(/^explain\t/);
      // Denied, once: the error line with its reason (the summary said it too, without).
      expect(table.stderr).toMatch(new RegExp(`^${pro} has_teleport: denied \\(.+\\)$`, 'm'));
      expect(table.stderr.match(/has_teleport: denied/g)).toHaveLength(1);
      const granted = await cli(['check-permission', pro, 'has_payroll', '--explain']);
      expect(granted.code).toBe(0);
      expect(granted.stderr).toMatch(new RegExp(`^${pro} has_payroll: granted$`, 'm'));
      // Without --explain the verdict is the answer, on stdout.
      expect((await cli(['check-permission', pro, 'has_ai'])).stdout).toMatch(new RegExp(`^${pro} has_ai: denied$`, 'm'));
    });

    it('down: answers from the registry with one warning and the usual exit code', async () => {
      const r = await cli(['check-permission', pro, 'has_payroll'], down());
      expect(r.code).toBe(0);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/^warning: .*continuing without the cache/);
    });

    it('--explain of a cached record with the registry out of reach: the override is unknown, not "-" (read as none, beside a deny override)', async () => {
      expect((await cli(['check-permission', pro, 'has_payroll'])).code).toBe(0); // cached now
      expect(await redis.exists(`permissions:${pro}`)).toBe(1);
      const r = await cli(['check-permission', pro, 'has_ai', '--explain', '--registry', `postgres://127.0.0.1:${await freePort()}/x`]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^override\tunknown \(registry not consulted\)$/m);
      expect(r.stderr).toMatch(/the override and the catalogue are not known, only the cached record/);
    });

    it('--explain of a cached record the registry no longer gives: the note names a command that fixes it (it named invalidate --pending, which did nothing)', async () => {
      expect((await cli(['check-permission', core, 'has_ai'])).code).toBe(1); // cached now, denied
      const key = `permissions:${core}`;
      const record = JSON.parse((await redis.get(key))!);
      // As if the registry had been changed by hand after the record was cached.
      await redis.set(key, JSON.stringify({ ...record, granted_features: [...record.granted_features, 'has_ai'] }), 'EX', 300);
      const stale = await cli(['check-permission', core, 'has_ai', '--explain']);
      expect(stale.code).toBe(0);
      const note = new RegExp(`^note: the cached record is not what the registry gives now .*: the registry would answer denied; .*\\(\`tenantctl invalidate ${core}\`, or \`tenantctl verify --fix\` for every such entry\\)$`, 'm');
      expect(stale.stderr).toMatch(note);
      // The command it names does it.
      expect((await cli(['invalidate', core])).code).toBe(0);
      const fixed = await cli(['check-permission', core, 'has_ai', '--explain']);
      expect(fixed.code).toBe(1);
      expect(fixed.stderr).not.toMatch(/^note: the cached record/m);
    });

    it('a cached value that is JSON but no permission record is said, as a config entry\'s is (it was written over without a word)', async () => {
      const key = `permissions:${core}`;
      for (const [value, shape] of [['[1,2,3]', 'a list'], ['{"tier":"x"}', 'an object without the fields of one']]) {
        await redis.set(key, value, 'EX', 300);
        const r = await cli(['check-permission', core, 'has_ai']);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`warning: ${key} holds JSON that is not a permission record (${shape}): read as a miss`);
      }
    });

    it('neither cache nor registry: exit 3', async () => {
      const r = await runCli(['check-permission', pro, 'has_payroll', '--registry', `postgres://127.0.0.1:${await freePort()}/x`], { cwd: ws.dir, env: down() });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/error: registry .* unreachable/);
    });

    it('registry down with a warm cache: answers from the cache', async () => {
      await cli(['check-permission', core, 'has_ai']);
      const r = await runCli(['check-permission', core, 'has_ai', '--json', '--registry', `postgres://127.0.0.1:${await freePort()}/x`], { cwd: ws.dir, env: up() });
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ granted: false, source: 'cache' });
    });

    it('bad input: an invalid business id or feature exits 2', async () => {
      for (const args of [['check-permission', 'a b', 'has_ai'], ['check-permission', pro, 'payroll'], ['check-permission', pro]]) {
        const r = await cli(args);
        expect(r.code, args.join(' ')).toBe(2);
        expectOneLineError(r);
      }
    });
  });

  describe('get-permissions', () => {
    it('up: the whole record; down: from the registry with a warning; bad id: exit 2', async () => {
      const r = await cli(['get-permissions', pro, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ granted_features: ['has_advanced_reporting', 'has_api_access', 'has_payroll'], tier: 'pilot_pro', device_limit: 999999 });
      const table = await cli(['get-permissions', pro], down());
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^device_limit\t999999$/m);
      expect((await cli(['get-permissions', '*'])).code).toBe(2);
    });

    it('an unknown business: the "no subscription" record and exit 1, as check-permission (before: exit 0, as if it were an answer)', async () => {
      const r = await cli(['get-permissions', 'nobodyhere', '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ business: 'nobodyhere', tier: 'none', status: 'inactive', granted_features: [] });
      expect(r.stderr.trim()).toBe('error: business nobodyhere has no subscription');
    });
  });

  describe('set-subscription / override / reactivate', () => {
    it('up: each change is visible to the very next check (no stale read)', async () => {
      const id = uniq('chg');
      expect((await cli(['set-subscription', id, '--tier', 'pilot_core'])).code).toBe(0);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(1);
      expect((await cli(['override', id, 'has_ai', '--grant'])).code).toBe(0);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(0);
      expect((await cli(['set-subscription', id, '--status', 'cancelled'])).code).toBe(0);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(1);
      expect((await cli(['reactivate', id])).code).toBe(0);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(0);
      expect((await cli(['override', id, 'has_ai', '--clear'])).code).toBe(0);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(1);
      const limit = await cli(['set-subscription', id, '--device-limit', '7', '--demo-expires', '2031-05-01T00:00:00Z', '--json']);
      expect(JSON.parse(limit.stdout).subscription).toMatchObject({ demo_expires_at: '2031-05-01T00:00:00.000Z', overrides: { max_devices: 7 } });
      expect(JSON.parse((await cli(['get-permissions', id, '--json'])).stdout).device_limit).toBe(7);
      // The table shows whole seconds as get-permissions does (it showed .000Z).
      const shown = await cli(['set-subscription', id, '--demo-expires', '2031-05-01T00:00:00Z']);
      expect(shown.stdout).toMatch(/\t2031-05-01T00:00:00Z\t/);
      // On a tier other than demo, an expiry changes nothing granted: written as asked, and said.
      expect(shown.stderr).toBe(`warning: a demo expiry counts on tier demo only: ${id} on pilot_core is granted its tier's features whatever the date\n`);
    });

    it('a demo expiry in the past is written as asked and said: the demo grants nothing from now on (it was silent)', async () => {
      const id = 'demo_past';
      const live = await cli(['set-subscription', id, '--tier', 'demo', '--demo-expires', '2099-01-01']);
      expect(live.code, live.stderr).toBe(0);
      expect(live.stderr).toBe('');
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(0);
      const past = await cli(['set-subscription', id, '--demo-expires', '2020-01-01']);
      expect(past.code, past.stderr).toBe(0);
      expect(past.stderr).toBe(`warning: the demo expiry 2020-01-01T00:00:00Z is in the past: ${id}'s demo grants nothing from now on\n`);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(1);
      // Cleared: no warning.
      expect((await cli(['set-subscription', id, '--demo-expires', 'none'])).stderr).toBe('');
      // Moved to the demo tier onto a past expiry kept from before: said too (a review: silent, every feature gone).
      const other = 'demo_moved';
      expect((await cli(['set-subscription', other, '--tier', 'pilot_pro', '--demo-expires', '2020-01-01T00:00:00Z'])).stderr).toMatch(/counts on tier demo only/);
      const moved = await cli(['set-subscription', other, '--tier', 'demo']);
      expect(moved.code, moved.stderr).toBe(0);
      expect(moved.stderr).toBe(`warning: the demo expiry 2020-01-01T00:00:00Z is in the past: ${other}'s demo grants nothing from now on\n`);
    });

    it('bad input: unknown tier, status, feature, bad date, no/two override flags: exit 2 and nothing changed', async () => {
      const record = async () => {
        const { source: _source, ...rest } = JSON.parse((await cli(['get-permissions', core, '--json'])).stdout);
        return rest;
      };
      const before = await record();
      for (const args of [
        ['set-subscription', core, '--tier', 'gold'],
        ['set-subscription', core, '--status', 'paused'],
        ['set-subscription', core, '--demo-expires', '31/12/2030'],
        ['set-subscription', core, '--device-limit', 'lots'],
        ['override', core, 'has_teleport', '--grant'],
        ['override', core, 'has_ai'],
        ['override', core, 'has_ai', '--grant', '--deny'],
        ['set-subscription', 'bad id', '--tier', 'demo'],
      ]) {
        const r = await cli(args);
        expect(r.code, args.join(' ')).toBe(2);
        expectOneLineError(r);
      }
      expect(await record()).toEqual(before);
      const ghost = await cli(['reactivate', uniq('ghost')]);
      expect(ghost.code).toBe(1);
    });

    it('down: the registry is written, and the report says the cache was not invalidated (exit 4)', async () => {
      const id = uniq('dn');
      const r = await cli(['set-subscription', id, '--tier', 'pilot_pro', '--json'], down());
      expect(r.code).toBe(4);
      expect(JSON.parse(r.stdout)).toMatchObject({ cacheInvalidated: false, subscription: { tier: 'pilot_pro' }, cacheError: expect.stringMatching(/Redis/) });
      // One line for one problem: the error says what was done, what was not, why and what does it later
      // (a warning repeated the unreachable message before it).
      expectOneLineError(r);
      expect(r.stderr).toMatch(/registry updated, but permissions:\S+ was not invalidated .*invalidate --pending.*: Redis at/);
      expect((await cli(['check-permission', id, 'has_ai'])).code).toBe(0);
    });
  });

  describe.runIf(TEST_DATABASE_URL)('on the PostgreSQL registry', () => {
    it('migrates tiers and subscriptions, checks, changes and re-checks', async () => {
      const db = await freshPostgresDatabase();
      try {
        const env = { ...up(), DATABASE_URL: db.url };
        const m = await runCli(['migrate-yaml', pro, core], { cwd: ws.dir, env });
        expect(m.code).toBe(0);
        expect((await runCli(['check-permission', pro, 'has_payroll'], { cwd: ws.dir, env })).code).toBe(0);
        expect((await runCli(['check-permission', core, 'has_payroll'], { cwd: ws.dir, env })).code).toBe(1);
        expect((await runCli(['override', core, 'has_payroll', '--grant'], { cwd: ws.dir, env })).code).toBe(0);
        expect((await runCli(['check-permission', core, 'has_payroll'], { cwd: ws.dir, env })).code).toBe(0);
      } finally {
        await redis.del(`permissions:${core}`, `permissions:${pro}`);
        await db.drop();
      }
    });
  });
});

describe('a business id that starts with "-"', () => {
  it('the --explain note names a command that takes it (`invalidate -- -x`; `invalidate -x` is an unknown option)', async () => {
    const id = `-${uniq('dash')}`;
    const ws = workspace({ tiers: TIERS, [id]: tenantYaml(id, 'Dash', 'subscription: { tier: pilot_core }\n') });
    const redis = new Redis(sharedRedisUrl());
    const cli = (args: string[]) => runCli(args, { cwd: ws.dir, env: { REDIS_URL: sharedRedisUrl() } });
    try {
      expect((await cli(['migrate-yaml'])).code).toBe(0);
      expect((await cli(['check-permission', '--', id, 'has_ai'])).code).toBe(1);
      const key = `permissions:${id}`;
      const record = JSON.parse((await redis.get(key))!);
      await redis.set(key, JSON.stringify({ ...record, granted_features: ['has_ai'] }), 'EX', 300);
      const stale = await cli(['check-permission', '--explain', '--', id, 'has_ai']);
      expect(stale.stderr).toContain(`(\`tenantctl invalidate -- ${id}\`, or`);
      // The command as written works.
      expect((await cli(['invalidate', '--', id])).code).toBe(0);
      expect(await redis.exists(key)).toBe(0);
    } finally {
      redis.disconnect();
      ws.cleanup();
    }
  });
});
