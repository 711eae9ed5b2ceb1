import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cursorPosition, parseInfo, scansInHalves } from '../../src/cache/ioredis-store.js';
import { progressText } from '../../src/cli/progress.js';

/** INFO server as each server prints it (trimmed to the fields that matter, plus their neighbours). */
const REDIS_70 = '# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\nos:Linux 6.1 x86_64\r\ngcc_version:12.2.0\r\ntcp_port:6379\r\n';
const VALKEY_8 = '# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\nserver_mode:standalone\r\ngcc_version:12.2.0\r\n';
const DRAGONFLY = '# Server\r\nredis_version:7.2.0\r\ndragonfly_version:df-v1.21.0\r\nredis_mode:standalone\r\narch_bits:64\r\n';
const GARNET = '# Server\r\ngarnet_version:1.0.35\r\nredis_version:7.2.5\r\nredis_mode:standalone\r\nos:Linux\r\n';

describe('which servers a sweep walks in two cursor lanes', () => {
  it('Redis itself, standalone (a Sentinel-managed master says standalone too)', () => {
    expect(scansInHalves(parseInfo(REDIS_70))).toBe(true);
  });

  it('never a Cluster node, nor a server that names itself or reports another *_version, nor one that says nothing', () => {
    expect(scansInHalves(parseInfo(REDIS_70.replace('redis_mode:standalone', 'redis_mode:cluster')))).toBe(false);
    expect(scansInHalves(parseInfo(VALKEY_8))).toBe(false);
    expect(scansInHalves(parseInfo(VALKEY_8.replace('server_mode', 'redis_mode')))).toBe(false);
    expect(scansInHalves(parseInfo(DRAGONFLY))).toBe(false);
    expect(scansInHalves(parseInfo(GARNET))).toBe(false);
    expect(scansInHalves({})).toBe(false);
  });
});

describe('where a cursor is in its walk', () => {
  /** The cursor SCAN returns after k buckets of a table of 2^m: k's m bits reversed. */
  const cursorAfter = (k: number, m: number) => {
    let v = 0;
    for (let i = 0; i < m; i++) v = v * 2 + ((k >> i) & 1);
    return String(v);
  };

  it('is k / 2^m after k of 2^m buckets, at every table size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.nat(), (m, k0) => {
        const k = k0 % 2 ** m;
        expect(cursorPosition(cursorAfter(k, m))).toBeCloseTo(k / 2 ** m, 12);
      }),
    );
    expect(cursorPosition('0')).toBe(0);
    expect(cursorPosition('1')).toBe(0.5);
    expect(cursorPosition('18446744073709551615')).toBeCloseTo(1, 12);
  });
});

describe('the progress line', () => {
  it('says how far through the keyspace and how long is left where the cursors tell; else keys looked at and a rate', () => {
    expect(progressText({ scanned: 10, done: 120_000, walked: 0.25 }, 'deleted', 10)).toBe('25% of the keyspace walked, deleted 120,000 keys, ~30 s left');
    expect(progressText({ scanned: 10, done: 0, walked: 0.01 }, 'counted', 1)).toBe('1% of the keyspace walked, counted 0 keys');
    expect(progressText({ scanned: 50_000, done: 7 }, 'deleted', 2)).toBe('scanned 50,000 keys, deleted 7 (25,000 keys/s)');
  });
});
