import { it } from 'vitest';
import { startRedis } from '../helpers/redis-server.js';
import { Cache } from '../../src/cache/cache.js';
import { CacheAdmin } from '../../src/services/cache-admin.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';
it('x', async () => {
  const r = await startRedis();
  const N = 4000;
  await r.command('EVAL', "for i = 1, 300000 do redis.call('SET', 'sessions:' .. i, 'x') end", '0');
  await r.command('EVAL', "for i = 1, 4000 do redis.call('SET', 'tenant_config:bulk' .. i, '{}'); redis.call('SET', 'dashboard_kpis:bulk' .. i .. ':days:30', '{}') end", '0');
  const cache = new Cache(parseRedisSpec({ url: { value: r.url, where: 't' }, timeoutMs: 2000 })!);
  const admin = new CacheAdmin(cache, new KeySpace(buildFamilies({ ttl: 300 })));
  for (const wait of [30, 60, 100, 150]) {
    await r.command('EVAL', "for i = 1, 4000 do redis.call('SET', 'tenant_config:bulk' .. i, '{}'); redis.call('SET', 'dashboard_kpis:bulk' .. i .. ':days:30', '{}') end", '0');
    const ac = new AbortController();
    setTimeout(() => ac.abort('SIGTERM'), wait);
    let reported = -1;
    try { const res = await admin.invalidateTenants(Array.from({ length: N }, (_, i) => `bulk${i + 1}`), { signal: ac.signal }); reported = res.reduce((n, x) => n + x.total, 0); } catch (e) { reported = (e as any).progress?.done; console.log('err', (e as Error).message); }
    const size = Number((await r.command('DBSIZE')).replace(/\D/g, ''));
    console.log('wait', wait, 'reported', reported, 'actual', 300000 + 2 * N - size);
  }
  cache.close(); await r.stop();
}, 60000);
