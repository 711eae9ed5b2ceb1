import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tenantctl } from '../../src/tenantctl.js';
import { UsageError } from '../../src/errors.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * The library called from plain JavaScript (no types to stop a wrong argument): a wrong kind of value is a
 * UsageError that changes nothing, never a TypeError from deep inside, nor a different operation.
 */
describe('library arguments of the wrong kind', () => {
  let redis: RedisServer;
  let cwd: string;
  let t: Tenantctl;
  const keys = ['tenant_config:a', 'tenant_config:c', 'tenant_config:m', 'tenant_config:e', 'tenant_config:acme', 'products:x:1', 'products:y:2', 'products:z:3'];

  beforeAll(async () => {
    redis = await startRedis();
    cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-args-'));
    t = new Tenantctl({ cwd, env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });
  const fill = async () => {
    for (const k of keys) await redis.command('SET', k, '{}');
  };
  const count = async () => Number((await redis.command('DBSIZE')).replace(/^:/, ''));
  const usage = async (work: () => Promise<unknown>, message: RegExp) => {
    const err = await work().then(() => 'resolved', (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  };
  const loosely = <T>(v: unknown) => v as T;

  it('invalidateTenants given one id as a string (not a list): refused; it deleted the keys of tenants a, c, m and e, and left acme\'s', async () => {
    await fill();
    await usage(() => t.admin.invalidateTenants(loosely<string[]>('acme')), /list of tenant ids/);
    await usage(() => t.admin.invalidateTenants(loosely<string[]>(undefined)), /list of tenant ids/);
    await usage(() => t.admin.invalidateTenants(loosely<string[]>([5])), /invalid tenant id/);
    expect(await count()).toBe(keys.length);
  });

  it('invalidateAll with maxKeys that is not a whole number >= 1: refused (-1 deleted every key, 1.5 every key too)', async () => {
    await fill();
    for (const maxKeys of [-1, 0, 1.5, Number.NaN, Infinity, loosely<number>('2')]) {
      await usage(() => t.admin.invalidateAll({ maxKeys }), /maxKeys must be a whole number >= 1/);
    }
    expect(await count()).toBe(keys.length);
    // A good one still caps the run.
    expect((await t.admin.invalidateAll({ maxKeys: 2 })).total).toBe(2);
    expect(await count()).toBe(keys.length - 2);
  });

  it('a feature, a subscription change or migration ids of the wrong kind: UsageError, not TypeError', async () => {
    await usage(() => t.permissions.check('acme', loosely<string>(undefined)), /invalid feature/);
    await usage(() => t.permissions.check('acme', loosely<string>(5)), /invalid feature/);
    await usage(() => t.permissions.explain('acme', loosely<string>(null)), /invalid feature/);
    await usage(() => t.subscriptions.setSubscription('acme', loosely<{ tier?: string }>(undefined)), /the change must be an object/);
    await usage(() => t.migration.run({ ids: loosely<string[]>('acme') }), /ids must be a list of tenant ids/);
  });
});
