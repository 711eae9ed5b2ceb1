import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tenantctl } from '../../src/tenantctl.js';
import { freshPostgresDatabase, tenantYaml, TEST_DATABASE_URL, workspace, type Workspace } from '../helpers/setup.js';

/**
 * A PostgreSQL database whose DateStyle is not ISO (ALTER DATABASE … SET datestyle, or the server's
 * default): pg reads timestamps in ISO form only. Every demo expiry read as none (a live demo denied, the
 * wrong record cached for the services), and the next subscription change wrote NULL back (a probe).
 */
describe.runIf(TEST_DATABASE_URL)('a registry database whose DateStyle is not ISO', () => {
  let db: { url: string; drop: () => Promise<void> };
  let ws: Workspace;
  const expiry = '2031-03-01T08:20:30.000Z';

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET datestyle = 'SQL, DMY'`);
    await c.end();
    const sub = `subscription:\n  tier: demo\n  status: active\n  demo_expires_at: "2031-03-01T08:20:30Z"\n`;
    ws = workspace(Object.fromEntries([0, 1, 2].map((i) => [`omega${i}`, tenantYaml(`omega${i}`, 'Omega', sub)])), { registry: false });
    // The demo tier grants nothing of its own: only a live demo grants has_ai (the whole catalogue).
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  demo: { features: [], max_devices: 1 }\n');
  });
  afterAll(async () => {
    ws?.cleanup();
    await db?.drop();
  });

  for (const [n, datestyle] of ['SQL, DMY', 'German', 'Postgres, MDY'].entries()) {
    const id = `omega${n}`;
    it(`${datestyle}: the demo expiry is read as stored, the demo granted, a rerun unchanged, a change keeps the expiry`, async () => {
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET datestyle = '${datestyle}'`);
      const t = new Tenantctl({ cwd: ws.dir, env: { DATABASE_URL: db.url } });
      try {
        const first = await t.migration.run();
        expect(first.items.filter((i) => i.action === 'error')).toEqual([]);
        const check = await t.permissions.check(id, 'has_ai');
        expect(new Date(check.record.demo_expires_at!).toISOString()).toBe(expiry);
        expect(check.granted).toBe(true);
        // A rerun finds nothing changed (a false conflict "edited in the registry" before).
        const again = await t.migration.run();
        expect(again.items.filter((i) => i.id === id && i.action !== 'unchanged').map((i) => `${i.kind}:${i.id}:${i.action}`)).toEqual([]);
        await t.subscriptions.setSubscription(id, { deviceLimit: 2 });
        const stored = await c.query('SELECT to_json(demo_expires_at) AS at FROM business_subscriptions WHERE business_id = $1', [id]);
        expect(new Date(stored.rows[0].at as string).toISOString()).toBe(expiry);
      } finally {
        await t.close();
        await c.end();
      }
    });
  }

  it("a demo expiry stored as 'infinity' or past year 9999 is a live demo, '-infinity' or before year 1 an expired one: answered, not a registry failure, and kept so by a change", async () => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const t = new Tenantctl({ cwd: ws.dir, env: { DATABASE_URL: db.url } });
    const stored = async (id: string) => (await c.query('SELECT demo_expires_at > now() AS live FROM business_subscriptions WHERE business_id = $1', [id])).rows[0].live as boolean;
    try {
      await t.migration.run();
      // 'infinity' was read as no expiry: an ordinary demo tier (nothing granted here), and a change wrote NULL.
      await c.query("UPDATE business_subscriptions SET demo_expires_at = 'infinity' WHERE business_id = 'omega0'");
      await c.query("UPDATE business_subscriptions SET demo_expires_at = '-infinity' WHERE business_id = 'omega1'");
      const live = await t.permissions.check('omega0', 'has_ai');
      expect(live.granted).toBe(true);
      expect(live.record.demo_expires_at).toMatch(/^9999-12-31T23:59:59/);
      expect((await t.permissions.check('omega1', 'has_ai')).granted).toBe(false);
      await t.subscriptions.setSubscription('omega0', { status: 'suspended' });
      await t.subscriptions.reactivate('omega0');
      expect(await stored('omega0')).toBe(true);
      expect((await t.permissions.check('omega0', 'has_ai')).granted).toBe(true);
      // The fix is still possible: a new expiry written over it.
      await t.subscriptions.setSubscription('omega1', { demoExpires: '2031-01-01T00:00:00Z' });
      expect((await t.permissions.check('omega1', 'has_ai')).granted).toBe(true);
      // A "never" of 9999-12-31 23:59:59 written west of UTC is stored in year 10000; a first day of year 1 written
      // east of UTC, in 1 BC. Each failed every command that read the subscription (exit 3; a whole migration batch).
      await c.query("SET timezone = 'America/New_York'");
      await c.query("UPDATE business_subscriptions SET demo_expires_at = '9999-12-31 23:59:59' WHERE business_id = 'omega1'");
      await c.query("SET timezone = 'Europe/Berlin'");
      await c.query("UPDATE business_subscriptions SET demo_expires_at = '0001-01-01 00:00:00' WHERE business_id = 'omega2'");
      expect((await t.permissions.check('omega1', 'has_ai')).granted).toBe(true);
      expect((await t.permissions.check('omega2', 'has_ai')).granted).toBe(false);
      const plan = await t.migration.run({ dryRun: true });
      expect(plan.items.filter((i) => i.action === 'error')).toEqual([]);
      await t.subscriptions.setSubscription('omega1', { deviceLimit: 3 });
      expect(await stored('omega1')).toBe(true);
    } finally {
      await t.close();
      await c.end();
    }
  });
});

describe.runIf(TEST_DATABASE_URL)('a services\' demo expiry column without a time zone, in a database whose time zone is not UTC', () => {
  it('is read as the instant written (read as UTC, each change moved the end of a demo by the offset, and a rerun saw a conflict: a review)', async () => {
    const db = await freshPostgresDatabase();
    const sub = `subscription:\n  tier: demo\n  status: active\n  demo_expires_at: "2030-01-31T00:00:00Z"\n`;
    const ws = workspace({ zoned: tenantYaml('zoned', 'Zoned', sub) }, { registry: false });
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  demo: { features: [], max_devices: 1 }\n');
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE business_subscriptions (business_id text PRIMARY KEY, tier text NOT NULL, status text NOT NULL, demo_expires_at timestamp, updated_at timestamp NOT NULL DEFAULT now())');
    await c.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET timezone = 'America/New_York'`);
    const t = new Tenantctl({ cwd: ws.dir, env: { DATABASE_URL: db.url } });
    try {
      expect((await t.migration.run()).items.filter((i) => i.action === 'error')).toEqual([]);
      const read = async () => (await t.permissions.check('zoned', 'has_ai')).record.demo_expires_at;
      expect(await read()).toBe('2030-01-31T00:00:00Z');
      await t.subscriptions.setSubscription('zoned', { deviceLimit: 2 });
      await t.subscriptions.setSubscription('zoned', { deviceLimit: 3 });
      expect(await read()).toBe('2030-01-31T00:00:00Z');
    } finally {
      await t.close();
      await c.end();
      ws.cleanup();
      await db.drop();
    }
  });
});
