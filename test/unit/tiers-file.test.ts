import { afterAll, describe, expect, it } from 'vitest';
import { TenantFileError } from '../../src/errors.js';
import { loadTiersFile } from '../../src/permissions/tiers-file.js';
import { subscriptionFromConfig } from '../../src/permissions/subscription-block.js';
import { lineOfPath } from '../../src/yaml/yaml-file.js';
import { workspace } from '../helpers/setup.js';

describe('tiers.yaml and subscription blocks', () => {
  const ws = workspace({}, { registry: false });
  afterAll(() => ws.cleanup());
  const good = 'features: [has_payroll, has_ai]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: null }\n';

  it('loads the catalogue and the tiers', () => {
    const c = loadTiersFile(ws.writeTenant('tiers', good));
    expect(c).toEqual({
      features: ['has_ai', 'has_payroll'],
      tiers: { core: { name: 'core', features: ['has_ai'], max_devices: 2 }, pro: { name: 'pro', features: ['has_ai', 'has_payroll'], max_devices: null } },
    });
  });

  it('a tier named like a built-in property of every JavaScript object (toString, __proto__) is refused', () => {
    for (const name of ['toString', '__proto__', 'constructor']) {
      expect(() => loadTiersFile(ws.writeTenant('tiers', `features: [has_ai]\ntiers:\n  ${name}: { features: [has_ai] }\n`)), name).toThrow(/is reserved/);
    }
  });

  it('a tier naming a feature outside the catalogue is file:line: reason', () => {
    const file = ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  core: { features: [has_ai] }\n  pro:\n    features: [has_ai, has_teleport]\n');
    expect(() => loadTiersFile(file)).toThrow(TenantFileError);
    expect(() => loadTiersFile(file)).toThrow(/tiers\.yaml:5: tier pro names feature "has_teleport", which is not in the catalogue/);
    expect(() => loadTiersFile(ws.writeTenant('tiers', 'features: [payroll]\ntiers: {}\n'))).toThrow(/must look like has_something/);
    expect(() => loadTiersFile(ws.writeTenant('tiers', 'features: []\ntiers: { x: { max_devices: -1 } }\n'))).toThrow(/max_devices/);
    // Past what the registry's integer column holds: refused here (it failed the whole batch it was written with).
    expect(() => loadTiersFile(ws.writeTenant('tiers', 'features: []\ntiers: { x: { max_devices: 3000000000 } }\n'))).toThrow(/max_devices must be a whole number from 0 to 2147483647/);
    expect(loadTiersFile(ws.writeTenant('tiers', 'features: []\ntiers: { x: { max_devices: 2147483647 } }\n')).tiers.x.max_devices).toBe(2147483647);
  });

  it('validates a tenant\'s subscription block against the catalogue, with the line', () => {
    const catalogue = loadTiersFile(ws.writeTenant('tiers', good));
    const where = (text: string) => ({ file: '/t/acme.yaml', lineOf: (p: string[]) => lineOfPath(text, p) });
    const text = 'client: {id: acme, name: A}\nsubscription:\n  tier: core\n  status: active\n  demo_expires_at: 2030-01-01\n  overrides: { has_payroll: true, max_devices: 3 }\n';
    const cfg = { subscription: { tier: 'core', status: 'active', demo_expires_at: '2030-01-01', overrides: { has_payroll: true, max_devices: 3 } } };
    expect(subscriptionFromConfig('acme', cfg, catalogue, where(text))).toEqual({
      business_id: 'acme', tier: 'core', status: 'active', demo_expires_at: '2030-01-01T00:00:00.000Z', overrides: { has_payroll: true, max_devices: 3 },
    });
    expect(subscriptionFromConfig('acme', {}, catalogue, where(''))).toBeUndefined();
    const bad = (sub: unknown, re: RegExp) => expect(() => subscriptionFromConfig('acme', { subscription: sub }, catalogue, where(text))).toThrow(re);
    bad({ tier: 'gold' }, /acme\.yaml:3: subscription\.tier "gold" is not a tier/);
    bad({ tier: 'core', status: 'paused' }, /acme\.yaml:4: .*must be one of active, suspended, cancelled, expired/);
    bad({ tier: 'core', demo_expires_at: 'soon' }, /acme\.yaml:5: .*not an ISO 8601 date/);
    bad({ tier: 'core', overrides: { has_teleport: true } }, /acme\.yaml:6: override "has_teleport" is not a feature/);
    bad({ tier: 'core', overrides: { has_ai: 'yes' } }, /must be true or false/);
    bad({ tier: 'core', overrides: { max_devices: 1.5 } }, /whole number/);
  });
});
