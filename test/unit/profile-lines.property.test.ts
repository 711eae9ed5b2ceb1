import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { profileLines } from '../../src/cache/ioredis-store.js';
import { TenantTally } from '../../src/services/tenant-tally.js';
import type { TtlClass } from '../../src/cache/cache-store.js';

/** A tenant slot as the sweep script captures it: id characters and non-ASCII bytes (never TAB or LF). */
const slotByte = fc.oneof(fc.constantFrom(...Buffer.from('AZaz09_.-')), fc.integer({ min: 0x80, max: 0xff }));
const tenantId = fc.array(slotByte, { minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1'));
const line = fc.record({
  tenant: tenantId,
  group: fc.integer({ min: 1, max: 500 }),
  ttl: fc.integer({ min: 0, max: 4 }).map((n) => n as TtlClass),
  bytes: fc.integer({ min: 0, max: 2 ** 40 }),
});

describe('the profile script reply (tenant TAB group TAB class TAB bytes LF per key)', () => {
  it('is read back exactly as the script wrote it, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 50 }), (lines) => {
        // What the Lua side builds: the tenant's bytes, then the numbers as decimal text.
        const text = Buffer.concat(lines.map((l) => Buffer.from(`${l.tenant}\t${l.group}\t${l.ttl}\t${l.bytes}\n`, 'latin1')));
        const batch = profileLines(text);
        const got: unknown[] = [];
        batch.forEach((group, buf, start, end, bytes, ttl) => got.push({ group: group + 1, tenant: buf.toString('latin1', start, end), ttl, bytes }));
        expect(got).toEqual(lines);
      }),
    );
  });
});

describe('the per-tenant tally', () => {
  it('sums exactly what a map keyed by the id bytes would, through any number of table growths', () => {
    // Few distinct ids among many keys, and many distinct ids (growth past 1,024 tenants).
    const ids = fc.oneof(fc.array(tenantId, { minLength: 1, maxLength: 5 }), fc.array(tenantId, { minLength: 1100, maxLength: 1300 }));
    fc.assert(
      fc.property(ids, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 1e6 })), { maxLength: 3000 }), (pool, keys) => {
        const tally = new TenantTally(4);
        const want = new Map<string, { keys: number; bytes: number; ttl: number[]; groups: number[] }>();
        // Every pool id at least once, then the random keys.
        const all = [...pool.map((t, i) => [i, i % 4, 4, 10] as const), ...keys.map(([n, g, c, b]) => [n % pool.length, g, c, b] as const)];
        for (const [n, g, c, b] of all) {
          const id = pool[n];
          // The id inside a larger buffer, as the reply holds it.
          const buf = Buffer.from(`xx${id}yy`, 'latin1');
          tally.add(g, buf, 2, buf.length - 2, b, c as TtlClass);
          const w = want.get(id) ?? { keys: 0, bytes: 0, ttl: [0, 0, 0, 0, 0], groups: [0, 0, 0, 0] };
          w.keys++;
          w.bytes += b;
          w.ttl[c]++;
          w.groups[g]++;
          want.set(id, w);
        }
        expect(tally.size).toBe(want.size);
        const names = ['a', 'b', 'c', 'd'];
        for (let i = 0; i < tally.size; i++) {
          const w = want.get(tally.id(i))!;
          expect(w).toBeDefined();
          const r = tally.row(i, names);
          expect([r.keys, r.bytes, r.ttl_under_minute, r.ttl_under_hour, r.ttl_later, r.no_ttl]).toEqual([w.keys, w.bytes, w.ttl[1], w.ttl[2], w.ttl[3], w.ttl[4]]);
          expect(r.families).toEqual(Object.fromEntries(names.map((n, g) => [n, w.groups[g]]).filter(([, k]) => k)));
        }
        // The largest, ties by id bytes: as a full sort would give them, with and without a filter.
        const ranked = [...want.entries()].sort(([a, x], [b, y]) => y.bytes - x.bytes || Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
        const odd = (id: string) => want.get(id)!.keys % 2 === 1;
        for (const limit of [0, 1, 3, tally.size + 1]) {
          expect(tally.largest(limit).map((i) => tally.id(i))).toEqual(ranked.slice(0, limit).map(([id]) => id));
          expect(tally.largest(limit, (i) => odd(tally.id(i))).map((i) => tally.id(i))).toEqual(ranked.filter(([id]) => odd(id)).slice(0, limit).map(([id]) => id));
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('tenant slots shown as text', () => {
  it('UTF-8 as it is; other bytes as \\xNN, so two different slots are never shown alike', async () => {
    const { shownTenant } = await import('../../src/services/cache-profile.js');
    const bin = (...b: number[]) => Buffer.from(b).toString('latin1');
    expect(shownTenant('acme')).toBe('acme');
    expect(shownTenant(Buffer.from('café', 'utf8').toString('latin1'))).toBe('café');
    expect(shownTenant(Buffer.from('a\uFFFDb', 'utf8').toString('latin1'))).toBe('a\uFFFDb');
    expect(shownTenant(bin(0x61, 0xfe))).toBe('a\\xfe');
    expect(shownTenant(bin(0x61, 0xfe))).not.toBe(shownTenant(bin(0x61, 0xff)));
    fc.assert(
      // No backslash: a slot never holds one (not an id character, not claimed by a family rule), and only a
      // literal "\xNN" in the slot could look like an escaped byte.
      fc.property(fc.uint8Array({ maxLength: 8 }).filter((a) => !a.includes(0x5c)), fc.uint8Array({ maxLength: 8 }).filter((a) => !a.includes(0x5c)), (a, b) => {
        fc.pre(!Buffer.from(a).equals(Buffer.from(b)));
        expect(shownTenant(Buffer.from(a).toString('latin1'))).not.toBe(shownTenant(Buffer.from(b).toString('latin1')));
      }),
    );
  });
});

describe('tenant slots and keys as the terminal and Prometheus show them', () => {
  // A tenant part U+0085 in UTF-8 (bytes c2 85) and one holding the byte 0x85 (not UTF-8) were both shown
  // `a\x85` once their control characters were made visible: alike in the table, one Prometheus series twice.
  const slot = fc.uint8Array({ maxLength: 8 }).filter((a) => !a.includes(0x5c)).map((a) => Buffer.from(a).toString('latin1'));

  it('two different slots are never shown alike, nor labelled alike in Prometheus', async () => {
    const { shownTenant, profileToPrometheus } = await import('../../src/services/cache-profile.js');
    const { showControls } = await import('../../src/redact.js');
    const c1 = Buffer.from('a\u0085b', 'utf8').toString('latin1');
    const byte = Buffer.from([0x61, 0x85, 0x62]).toString('latin1');
    expect(showControls(shownTenant(c1))).not.toBe(showControls(shownTenant(byte)));
    const row = (tenant: string) => ({ tenant, keys: 1, bytes: 1, ttl_under_minute: 0, ttl_under_hour: 0, ttl_later: 1, no_ttl: 0, families: {} });
    const text = profileToPrometheus({ by: 'tenant', families: [], tenants: [row(shownTenant(c1)), row(shownTenant(byte))], tenant_count: 2, total: { keys: 2, bytes: 2, no_ttl: 0 } } as never);
    const series = text.split('\n').filter((l) => l.startsWith('tenantctl_cache_tenant_keys{')).map((l) => l.replace(/ \d+$/, ''));
    expect(series).toHaveLength(2);
    expect(new Set(series).size).toBe(2);
    fc.assert(
      fc.property(slot, slot, (a, b) => {
        fc.pre(a !== b);
        expect(showControls(shownTenant(a))).not.toBe(showControls(shownTenant(b)));
      }),
    );
  });

  it('two different keys are never shown alike (keyText, then the controls made visible)', async () => {
    const { keyText } = await import('../../src/keys/key-text.js');
    const { showControls } = await import('../../src/redact.js');
    expect(showControls(keyText(Buffer.from('k:\u0085')))).not.toBe(showControls(keyText(Buffer.from([0x6b, 0x3a, 0x85]))));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
        fc.pre(!Buffer.from(a).equals(Buffer.from(b)));
        expect(showControls(keyText(Buffer.from(a)))).not.toBe(showControls(keyText(Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
  });
});
