import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheStore } from '../../src/cache/cache-store.js';
import { openIoredisStore } from '../../src/cache/ioredis-store.js';
import { parseRedisSpec } from '../../src/cache/redis-spec.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';
import { useOwnRedis } from '../helpers/redis-server.js';

/**
 * The sweep script (Lua, on the server) and the client's RegExps must put every
 * key in the same family with the same tenant: the script files rules under a
 * key's bytes up to its first `:` and matches only the bytes after them, with
 * `find` where the tenant is not needed (count, unlink) and a capture where it
 * is (collect), and where two families claim a key the first declared wins on
 * both sides. Random keys built from the families' own pieces, near misses,
 * `:` in odd places and non-ASCII bytes, on a real redis-server.
 */
const keys = new KeySpace(
  buildFamilies({
    ttl: 300,
    extra: [
      // Literal text after the dispatch prefix (`fastapi_template:`), and a family with no `:` before the tenant (no dispatch prefix).
      { name: 'app_cache', patterns: ['fastapi_template:tenant-{tenant}:*'], ttl: 60 },
      { name: 'legacy', patterns: ['legacy|{tenant}'], ttl: 60 },
      // Two families that both claim `ova:a`: the one declared first owns it, on the server as on the client.
      { name: 'ov_any', patterns: ['ov{tenant}:*'], ttl: 60 },
      { name: 'ov_prefixed', patterns: ['ova:{tenant}'], ttl: 60 },
      // The other order: a prefixed family first, then one with no dispatch prefix claiming its keys (`ox:a`).
      // The script must still stop at the first declared (a mutation review: only the order above was tried).
      { name: 'ox_exact', patterns: ['ox:{tenant}'], ttl: 60 },
      { name: 'ox_any', patterns: ['ox*:{tenant}'], ttl: 60 },
    ],
  }),
);

const piece = (list: string[]) => fc.constantFrom(...list);
const head = piece(['tenant_config:', 'permissions:', 'dashboard_kpis:', 'dashboard_trends:', 'fastapi_template:', 'fastapi_template:tenant-', 'legacy|', 'ova:', 'ov', 'ox:', 'oxq:', 'ox', 'sessions:', 'tenant_config', 'products:', ':', '']);
// Each edge of the slot's byte ranges (A-Z a-z 0-9 _ . - and 128-255) and a byte just outside it.
const slot = fc.string({ unit: piece([...'abzAZ09_-.'.split(''), ':', '*', ' ', '@', '[', '`', '{', '/', ',', '\x7f', '\x80', '\xe9', '\xff', '|']), maxLength: 6 });
const tail = piece(['', ':days:30', ':', ':x', '::', 'x', ':page:1']);
/** A key as a binary string (one char per byte). */
const key = fc.tuple(head, slot, tail).map(([h, s, t]) => h + s + t);

describe('sweep script classification', () => {
  const own = useOwnRedis();
  let store: CacheStore;
  beforeAll(async () => {
    store = await openIoredisStore(parseRedisSpec({ url: { value: own.server.url, where: 'test' }, timeoutMs: 5000 })!);
  });
  afterAll(() => store?.close());

  it('property: counts, collects and deletes exactly what the client-side RegExps classify, family and tenant', async () => {
    const rules = keys.rules();
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(key, { minLength: 1, maxLength: 40 }), async (list) => {
        await own.client.flushdb();
        await own.client.mset(...list.flatMap((k) => [Buffer.from(k, 'latin1'), '1']));
        const want = rules.groups.map(() => 0);
        const wantEntries: string[] = [];
        for (const k of list) {
          const owner = keys.classify(k);
          if (!owner) continue;
          want[rules.groups.indexOf(owner.family)]++;
          wantEntries.push(`${k}|${owner.family}|${owner.tenant}`);
        }
        const counted = await store.sweep({ rules, action: 'count' });
        expect(counted.via).toBe('script');
        expect(counted.groups).toEqual(want);
        const got: string[] = [];
        await store.sweep({
          rules,
          action: 'collect',
          onBatch: (b) => {
            for (const e of b.keys ?? []) got.push(`${e.key.toString('latin1')}|${rules.groups[e.group]}|${e.tenant.toString('latin1')}`);
          },
        });
        expect([...new Set(got)].sort()).toEqual(wantEntries.sort());
        // Deleting (one UNLINK per page here, each family counted from the page's claimed keys): the same
        // counts, and exactly the keys no family claims are left.
        const deleted = await store.sweep({ rules, action: 'unlink' });
        expect(deleted.via).toBe('script');
        expect(deleted.groups).toEqual(want);
        const left = (await own.client.keysBuffer('*')).map((k) => k.toString('latin1')).sort();
        expect(left).toEqual(list.filter((k) => !keys.classify(k)).sort());
      }),
      { numRuns: 80 },
    );
  });
});
