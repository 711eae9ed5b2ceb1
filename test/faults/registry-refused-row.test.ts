import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshPostgresDatabase, runCli, tenantYaml, TEST_DATABASE_URL, workspace, type Workspace } from '../helpers/setup.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * A services' tenants table with a rule of its own (a CHECK constraint, a trigger that RAISEs) refusing one
 * tenant's row: that tenant is the one error item, with the server's words, and every other tenant (of its
 * batch too, and of the batches after it) is written and has its cache invalidated. Before, the whole batch
 * of 500 failed with one message naming no tenant, the run stopped there, and a rerun stopped at the same
 * place; where the bad row was in the first batch, exit 3 "nothing was written" (a probe).
 */
describe.runIf(TEST_DATABASE_URL)('migrate-yaml into a registry that refuses one row (PostgreSQL: a CHECK constraint, a trigger)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let redis: RedisServer;
  let client: Redis;
  let admin: pg.Client;
  let ws: Workspace;
  const N = 1200;
  const id = (n: number) => `rr${String(n).padStart(4, '0')}`;

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    redis = await startRedis();
    client = new Redis(redis.url);
    ws = workspace({}, { registry: false });
    // The schema first (no tenants), then the services' own rules on it.
    expect((await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('ALTER TABLE tenants ADD CONSTRAINT currency_iso CHECK (currency IS NULL OR char_length(currency) = 3)');
    await admin.query(`CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = '${id(1100)}' THEN RAISE EXCEPTION 'policy: % is on hold', NEW.id; END IF; RETURN NEW; END $$`);
    await admin.query('CREATE TRIGGER refuse_one BEFORE INSERT OR UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION refuse_one()');
    for (let n = 1; n <= N; n++) {
      // Bad: one in the first batch, one in the second (the CHECK), one in the third (the trigger).
      const currency = n === 7 || n === 700 ? 'EURO' : 'EUR';
      ws.writeTenant(id(n), tenantYaml(id(n), `Tenant ${n}`, `  currency: ${currency}\n`));
    }
    const keys = Array.from({ length: N }, (_, i) => `tenant_config:${id(i + 1)}`);
    await client.mset(Object.fromEntries(keys.map((k) => [k, '{}'])));
  });
  afterAll(async () => {
    await admin?.end();
    client?.disconnect();
    await redis?.stop();
    ws?.cleanup();
    await db?.drop();
  });

  it('the refused tenants are the error items, named with the server\'s reason; the rest written and invalidated (exit 4); a rerun refuses them alone', async () => {
    const r = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout) as { items: Array<{ id: string; action: string; reason?: string; written?: boolean }>; counts: Record<string, number> };
    const errors = report.items.filter((i) => i.action === 'error');
    expect(errors.map((i) => i.id).sort()).toEqual([id(7), id(700), id(1100)]);
    expect(errors.find((i) => i.id === id(7))!.reason).toMatch(/^refused by the registry: .*violates check constraint "currency_iso"/);
    expect(errors.find((i) => i.id === id(1100))!.reason).toMatch(/^refused by the registry: .*policy: rr1100 is on hold/);
    expect(report.counts).toMatchObject({ create: N - 3, error: 3 });
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM tenants');
    expect(rows[0].n).toBe(N - 3);
    // Every written tenant's entry is gone; the refused ones' stay (nothing of theirs changed).
    expect(await client.dbsize()).toBe(3);
    expect(await client.exists(`tenant_config:${id(7)}`, `tenant_config:${id(700)}`, `tenant_config:${id(1100)}`)).toBe(3);
    const again = await runCli(['--registry', db.url, '--redis-url', redis.url, 'migrate-yaml', '--json'], { cwd: ws.dir });
    expect(again.code, again.stderr).toBe(4);
    expect(JSON.parse(again.stdout).counts).toMatchObject({ unchanged: N - 3, error: 3 });
  });
});
