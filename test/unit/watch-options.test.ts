import { describe, expect, it } from 'vitest';
import { Watcher, type WatchDeps, type WatchOptions } from '../../src/services/watch.js';
import { UsageError } from '../../src/errors.js';
import { buildFamilies, KeySpace } from '../../src/keys/key-families.js';

/** The library's Watcher (exported): durations its timers and PostgreSQL's timestamps cannot hold are refused. */
describe('Watcher options', () => {
  const deps = { keys: new KeySpace(buildFamilies({ ttl: 300 })) } as unknown as WatchDeps;
  const full = (o: Partial<WatchOptions>): WatchOptions => ({ signal: new AbortController().signal, onEvent: () => undefined, onNotice: () => undefined, ...o });
  it('refuses a heartbeat or reconnect wait past 24 h, an overlap past 365 days, and fractions', () => {
    for (const options of <Array<Partial<WatchOptions>>>[{ heartbeatMs: 3e9 }, { heartbeatMs: 1.5 }, { heartbeatMs: 0 }, { reconnect: { initialMs: 100, maxMs: 2 ** 31 } }, { overlapMs: Number.MAX_SAFE_INTEGER }, { overlapMs: -1 }, { startupLookbackMs: 1e15 }]) {
      expect(() => new Watcher(deps, full(options)), JSON.stringify(options)).toThrow(UsageError);
    }
    for (const options of <Array<Partial<WatchOptions>>>[{}, { heartbeatMs: 86_400_000 }, { overlapMs: 0 }, { reconnect: { initialMs: 100, maxMs: 5000 } }]) {
      expect(() => new Watcher(deps, full(options)), JSON.stringify(options)).not.toThrow();
    }
  });
});
