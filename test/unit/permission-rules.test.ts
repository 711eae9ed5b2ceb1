import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NO_SUBSCRIPTION, STATUSES, UNLIMITED_DEVICES, canonicalInstant, type Catalogue, type Subscription } from '../../src/permissions/model.js';
import { cacheTtlFor, computePermissions, expireCachedRecord, isPermissionRecord } from '../../src/permissions/rules.js';

const catalogue: Catalogue = {
  features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'],
  tiers: {
    demo: { name: 'demo', features: ['has_advanced_reporting'], max_devices: 1 },
    pilot_core: { name: 'pilot_core', features: [], max_devices: 2 },
    pilot_pro: { name: 'pilot_pro', features: ['has_advanced_reporting', 'has_ai', 'has_api_access', 'has_payroll'], max_devices: null },
  },
};
const NOW = new Date('2026-06-01T12:00:00.000Z');
const sub = (over: Partial<Subscription> = {}): Subscription => ({ business_id: 'b', tier: 'pilot_core', status: 'active', demo_expires_at: null, overrides: {}, ...over });
const perms = (s: Subscription | undefined, now = NOW) => computePermissions(s, catalogue, now).record;

describe('permission rules (as the services compute them)', () => {
  it('no subscription: the services\' exact "none" record', () => {
    expect(perms(undefined)).toEqual({ granted_features: [], tier: 'none', status: 'inactive', demo_expires_at: null, device_limit: 0 });
    expect(perms(undefined)).toEqual(NO_SUBSCRIPTION);
  });

  it('an active subscription gets its tier\'s features and device limit; null max_devices is unlimited (999999)', () => {
    expect(perms(sub({ tier: 'pilot_pro' }))).toEqual({ granted_features: catalogue.features, tier: 'pilot_pro', status: 'active', demo_expires_at: null, device_limit: UNLIMITED_DEVICES });
    expect(perms(sub())).toMatchObject({ granted_features: [], device_limit: 2 });
    // A tier the catalogue does not have (renamed in tiers.yaml): nothing, and no devices (not unlimited).
    expect(perms(sub({ tier: 'pilot_gone' }))).toMatchObject({ granted_features: [], device_limit: 0 });
    expect(computePermissions(sub({ tier: 'pilot_gone' }), catalogue, NOW).basis.deviceLimitFrom).toBe('none');
    expect(perms(sub({ tier: 'pilot_gone', overrides: { max_devices: 3, has_ai: true } }))).toMatchObject({ granted_features: ['has_ai'], device_limit: 3 });
    // A live demo is granted by name: without a demo row in the catalogue it keeps the unlimited default.
    const noDemoRow: Catalogue = { features: catalogue.features, tiers: { pilot_pro: catalogue.tiers.pilot_pro } };
    const live = sub({ tier: 'demo', demo_expires_at: '2026-07-01T00:00:00Z' });
    expect(computePermissions(live, noDemoRow, NOW).record).toMatchObject({ granted_features: catalogue.features, device_limit: UNLIMITED_DEVICES });
  });

  it('any status but active grants nothing, whatever the overrides or a live demo say', () => {
    for (const status of STATUSES.filter((s) => s !== 'active')) {
      const r = perms(sub({ status, tier: 'pilot_pro', overrides: { has_ai: true, max_devices: 9 } }));
      expect(r, status).toMatchObject({ granted_features: [], status, device_limit: 0 });
      // The fix over the services: a suspended business on a live demo gets nothing.
      expect(perms(sub({ status, tier: 'demo', demo_expires_at: '2027-01-01T00:00:00.000Z' })).granted_features, `${status} demo`).toEqual([]);
    }
  });

  it('a live demo grants the whole catalogue; one second after expiry it grants nothing (clock injected)', () => {
    const expiry = '2026-06-01T12:00:00.000Z';
    const demo = sub({ tier: 'demo', demo_expires_at: expiry });
    const justBefore = new Date(Date.parse(expiry) - 1000);
    const atExpiry = new Date(Date.parse(expiry));
    const justAfter = new Date(Date.parse(expiry) + 1000);
    expect(perms(demo, justBefore)).toMatchObject({ granted_features: catalogue.features, device_limit: 1 });
    expect(perms(demo, atExpiry)).toMatchObject({ granted_features: [], device_limit: 0 });
    expect(perms(demo, justAfter)).toMatchObject({ granted_features: [], device_limit: 0, tier: 'demo', demo_expires_at: '2026-06-01T12:00:00Z' });
  });

  it('a demo tier without an expiry is an ordinary tier', () => {
    expect(perms(sub({ tier: 'demo' })).granted_features).toEqual(['has_advanced_reporting']);
  });

  it('overrides both ways, whatever the tier says; max_devices overrides the tier\'s limit', () => {
    const r = computePermissions(sub({ tier: 'pilot_pro', overrides: { has_ai: false, max_devices: 3 } }), catalogue, NOW);
    expect(r.record.granted_features).toEqual(['has_advanced_reporting', 'has_api_access', 'has_payroll']);
    expect(r.record.device_limit).toBe(3);
    expect(r.basis).toMatchObject({ rule: 'tier', appliedOverrides: { has_ai: false }, deviceLimitFrom: 'override' });
    const core = computePermissions(sub({ overrides: { has_payroll: true, has_ai: false } }), catalogue, NOW);
    expect(core.record.granted_features).toEqual(['has_payroll']);
    // has_ai: false on a tier without it changes nothing, so it is not reported as applied.
    expect(core.basis.appliedOverrides).toEqual({ has_payroll: true });
  });

  it('property: granted features are always within the catalogue, sorted, and empty unless active', () => {
    const feature = fc.constantFrom(...catalogue.features);
    const arbSub = fc.record({
      business_id: fc.constant('b'),
      tier: fc.constantFrom('demo', 'pilot_core', 'pilot_pro'),
      status: fc.constantFrom(...STATUSES),
      demo_expires_at: fc.option(fc.date({ min: new Date('2026-01-01'), max: new Date('2027-01-01'), noInvalidDate: true }).map((d) => d.toISOString()), { nil: null }),
      overrides: fc.dictionary(feature, fc.boolean()),
    });
    fc.assert(
      fc.property(arbSub, (s) => {
        const r = perms(s as Subscription);
        expect(r.granted_features).toEqual([...r.granted_features].sort());
        for (const f of r.granted_features) expect(catalogue.features).toContain(f);
        if (s.status !== 'active') expect(r.granted_features).toEqual([]);
        for (const [f, v] of Object.entries(s.overrides)) {
          const liveDemo = s.tier === 'demo' && s.demo_expires_at !== null && Date.parse(s.demo_expires_at) > NOW.getTime();
          if (s.status === 'active' && !liveDemo && !(s.tier === 'demo' && s.demo_expires_at !== null)) expect(r.granted_features.includes(f)).toBe(v);
        }
      }),
    );
  });
});

describe('cached records and the clock', () => {
  it('a cached live demo that has since expired is never served as granted', () => {
    const cached = perms(sub({ tier: 'demo', demo_expires_at: '2026-06-01T13:00:00.000Z' }));
    expect(expireCachedRecord(cached, NOW)).toBeUndefined();
    expect(expireCachedRecord(cached, new Date('2026-06-01T13:00:01Z'))).toMatchObject({ granted_features: [], device_limit: 0 });
    expect(expireCachedRecord(perms(sub({ tier: 'pilot_pro' })), new Date('2099-01-01'))).toBeUndefined();
    // One granting devices but no feature (a demo tier of devices only) loses its devices too.
    const devicesOnly = { ...cached, granted_features: [], device_limit: 5 };
    expect(expireCachedRecord(devicesOnly, new Date('2026-06-01T13:00:01Z'))).toMatchObject({ granted_features: [], device_limit: 0 });
  });

  it('a live demo is cached no longer than until its expiry', () => {
    const r = perms(sub({ tier: 'demo', demo_expires_at: '2026-06-01T12:01:00.000Z' }));
    expect(cacheTtlFor(r, 300, NOW)).toBe(60);
    expect(cacheTtlFor(perms(sub()), 300, NOW)).toBe(300);
    // Whole seconds down: 4.5 s left is 4 (a ceiling kept it cached past the expiry); under a second, not cached.
    expect(cacheTtlFor(perms(sub({ tier: 'demo', demo_expires_at: '2026-06-01T12:00:04.500Z' })), 300, NOW)).toBe(4);
    expect(cacheTtlFor(perms(sub({ tier: 'demo', demo_expires_at: '2026-06-01T12:00:00.500Z' })), 300, NOW)).toBe(0);
    // A real clock has milliseconds (the record's expiry is whole seconds): 3.7 s left is 3, never 4 (a ceiling
    // kept the full grant cached past the expiry; a mutation review: every case above had a whole-second now).
    const later = new Date('2026-06-01T12:00:00.300Z');
    expect(cacheTtlFor(perms(sub({ tier: 'demo', demo_expires_at: '2026-06-01T12:00:04Z' }), later), 300, later)).toBe(3);
  });

  it('canonicalises ISO 8601 instants and refuses anything else', () => {
    expect(canonicalInstant('2030-01-01')).toBe('2030-01-01T00:00:00.000Z');
    expect(canonicalInstant('2030-01-01T02:00:00+02:00')).toBe('2030-01-01T00:00:00.000Z');
    for (const bad of ['tomorrow', '2030-13-01', '01/02/2030', '', 42]) expect(canonicalInstant(bad)).toBeUndefined();
    // Days the calendar does not have are refused, not rolled over into March.
    for (const bad of ['2030-02-30', '2030-02-29', '2030-04-31T00:00:00Z']) expect(canonicalInstant(bad), String(bad)).toBeUndefined();
    expect(canonicalInstant('2028-02-29')).toBe('2028-02-29T00:00:00.000Z');
    // An instant that lands past year 9999 once in UTC (or before year 1) has no 4-digit form: PostgreSQL
    // refused "+010000-01-01T00:59:59.000Z" and the whole migration batch with it.
    for (const bad of ['9999-12-31T23:59:59-01:00', '9999-12-31T24:00:00Z', '0000-01-01T00:00:00Z', '0001-01-01T00:30:00+01:00', new Date(Date.UTC(10000, 0, 1))]) expect(canonicalInstant(bad), String(bad)).toBeUndefined();
    expect(canonicalInstant('9999-12-31T23:59:59Z')).toBe('9999-12-31T23:59:59.000Z');
    // Years 1-99 are years 1-99 (Date.UTC reads them as 1901-1999: year 30 was refused as no date).
    expect(canonicalInstant('0030-06-01')).toBe('0030-06-01T00:00:00.000Z');
    expect(canonicalInstant('0001-01-01T00:00:00Z')).toBe('0001-01-01T00:00:00.000Z');
    expect(canonicalInstant('0099-12-31T23:59:59+00:00')).toBe('0099-12-31T23:59:59.000Z');
    // Without a zone a date-time is UTC, whatever the machine's time zone (as a date alone is).
    const tz = process.env.TZ;
    process.env.TZ = 'Europe/Paris';
    try {
      expect(new Date('2030-01-31T00:00:00').toISOString()).toBe('2030-01-30T23:00:00.000Z'); // what JavaScript alone would store
      expect(canonicalInstant('2030-01-31T00:00:00')).toBe('2030-01-31T00:00:00.000Z');
      expect(canonicalInstant('2030-01-31 08:30')).toBe('2030-01-31T08:30:00.000Z');
      expect(canonicalInstant('2030-01-31T08:30:00+01:00')).toBe('2030-01-31T07:30:00.000Z');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});

describe('tier names that every JavaScript object has', () => {
  it('a subscription on toString / constructor / __proto__ is on no tier: nothing granted, 0 devices (before: unlimited)', async () => {
    const { computePermissions: compute } = await import('../../src/permissions/rules.js');
    const catalogue = { features: ['has_ai'], tiers: { pro: { name: 'pro', features: ['has_ai'], max_devices: null } } };
    for (const tier of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const { record } = compute({ business_id: 'b', tier, status: 'active', demo_expires_at: null, overrides: {} }, catalogue, new Date('2026-01-01T00:00:00Z'));
      expect(record, tier).toMatchObject({ granted_features: [], device_limit: 0 });
    }
  });
});

describe('a cached permission record', () => {
  const record = { granted_features: ['has_ai'], tier: 'demo', status: 'active', device_limit: 5, demo_expires_at: '2030-01-01T00:00:00.000Z' };
  it('is well formed only with an expiry that is a date or null: a garbled one is a miss (it read as never expiring, a demo granting everything)', () => {
    expect(isPermissionRecord(record)).toBe(true);
    expect(isPermissionRecord({ ...record, demo_expires_at: null })).toBe(true);
    for (const bad of ['garbage', '', 20300101, {}, '1', 'March 1, 2030']) expect(isPermissionRecord({ ...record, demo_expires_at: bad }), String(bad)).toBe(false);
    // The forms Python writes: microseconds, an offset, a space.
    for (const good of ['2030-01-01T00:00:00.123456+00:00', '2030-01-01 00:00:00+00:00', '2030-01-01T00:00:00Z']) expect(isPermissionRecord({ ...record, demo_expires_at: good }), good).toBe(true);
  });
});
