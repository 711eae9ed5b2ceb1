import { describe, expect, it } from 'vitest';
import { substitute } from '../../src/tenants/substitution.js';
import { maskSecrets, stripSecrets } from '../../src/tenants/secrets.js';
import { comparableConfig } from '../../src/services/config-comparison.js';

/**
 * JSON.parse (a cached entry, a registry row) makes a key named "__proto__"
 * an own property. Every walk that copies a config keeps it one: a plain
 * assignment would set the copy's prototype and lose the key (and the
 * masked view would then disagree with --show-secrets).
 */
describe('an own "__proto__" key survives every copy of a config', () => {
  const parsed = () => JSON.parse('{"client":{"id":"a"},"__proto__":{"password":"hunter2","host":"${H:-h}"}}') as Record<string, unknown>;
  const own = (o: unknown) => Object.getOwnPropertyDescriptor(o, '__proto__')?.value as Record<string, unknown> | undefined;

  it('substitute', () => {
    const { value } = substitute(parsed(), {});
    expect(own(value)).toEqual({ password: 'hunter2', host: 'h' });
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it('maskSecrets', () => {
    const masked = maskSecrets(parsed());
    expect(own(masked)).toEqual({ password: '****', host: '${H:-h}' });
    expect(JSON.stringify(masked)).toBe('{"client":{"id":"a"},"__proto__":{"password":"****","host":"${H:-h}"}}');
  });

  it('stripSecrets', () => {
    const { config, stripped } = stripSecrets(parsed());
    expect(own(config)).toEqual({ host: '${H:-h}' });
    expect(stripped).toEqual([{ path: ['__proto__', 'password'], kind: 'literal-removed' }]);
  });

  it("verify's comparable form", () => {
    expect(own(comparableConfig(parsed()))).toEqual({ host: '${H:-h}' });
  });
});
