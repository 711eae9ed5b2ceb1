import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseProfileLines } from '../../src/cache/ioredis-store.js';

/** A tenant slot as the sweep script captures it: id characters and non-ASCII bytes (never TAB or LF). */
const slotByte = fc.oneof(fc.constantFrom(...Buffer.from('AZaz09_.-')), fc.integer({ min: 0x80, max: 0xff }));
const line = fc.record({
  tenant: fc.array(slotByte, { minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
  group: fc.integer({ min: 1, max: 500 }),
  ttlClass: fc.integer({ min: 0, max: 4 }),
  bytes: fc.integer({ min: 0, max: 2 ** 40 }),
});

describe('the profile script reply (tenant TAB group TAB class TAB bytes LF per key)', () => {
  it('parses back exactly what the script wrote, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 50 }), (lines) => {
        // What the Lua side builds: the tenant's bytes, then the numbers as decimal text.
        const text = Buffer.concat(lines.map((l) => Buffer.from(`${l.tenant}\t${l.group}\t${l.ttlClass}\t${l.bytes}\n`, 'latin1')));
        const rows = parseProfileLines(text);
        expect(rows).toEqual(
          lines.map((l) => ({
            group: l.group - 1, tenant: l.tenant, keys: 1, bytes: l.bytes,
            ttlUnderMinute: +(l.ttlClass === 1), ttlUnderHour: +(l.ttlClass === 2), ttlLater: +(l.ttlClass === 3), noTtl: +(l.ttlClass === 4),
          })),
        );
      }),
    );
  });
});
