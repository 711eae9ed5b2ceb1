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
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  demo: { features: [has_ai], max_devices: 1 }\n');
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

  it("a demo expiry stored as 'infinity' never expires, '-infinity' has always expired: answered, not a registry failure (exit 3 for every command, set-subscription included)", async () => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const t = new Tenantctl({ cwd: ws.dir, env: { DATABASE_URL: db.url } });
    try {
      await t.migration.run();
      await c.query("UPDATE business_subscriptions SET demo_expires_at = 'infinity' WHERE business_id = 'omega0'");
      await c.query("UPDATE business_subscriptions SET demo_expires_at = '-infinity' WHERE business_id = 'omega1'");
      expect((await t.permissions.check('omega0', 'has_ai')).granted).toBe(true);
      expect((await t.permissions.check('omega1', 'has_ai')).granted).toBe(false);
      // The fix is still possible: a new expiry written over it.
      await t.subscriptions.setSubscription('omega1', { demoExpires: '2031-01-01T00:00:00Z' });
      expect((await t.permissions.check('omega1', 'has_ai')).granted).toBe(true);
      const plan = await t.migration.run({ dryRun: true });
      expect(plan.items.filter((i) => i.action === 'error')).toEqual([]);
    } finally {
      await t.close();
      await c.end();
    }
  });
});
