import { describe, expect, it } from 'vitest';
import { parseInfo, scansInHalves } from '../../src/cache/ioredis-store.js';

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
