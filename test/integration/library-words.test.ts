import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tenantctl } from '../../src/tenantctl.js';
import { UsageError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';

/** Issue 8: errors carry a typed cause, not CLI flag names; the CLI alone turns them into advice. */
describe('the library\'s errors name no CLI flag', () => {
  it('a subscription write with no registry where it looked: reason registry-elsewhere, no --registry; the CLI adds it', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-words-'));
    const t = new Tenantctl({ cwd, env: {} });
    try {
      const err = await t.subscriptions.setSubscription('acme', { tier: 'bogus' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect(err).toMatchObject({ reason: 'registry-elsewhere', message: expect.stringMatching(/^no embedded registry at .*: /) });
      expect((err as Error).message).not.toMatch(/--/);
      expect(exitCodeFor(err).message).toMatch(/ \(run from the project directory, or give --registry\)$/);
    } finally {
      await t.close();
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('settings given as options are named as options: flags.sentinelMaster, not --sentinel-master', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-words-'));
    try {
      expect(() => new Tenantctl({ cwd, env: {}, flags: { sentinelMaster: 'mymaster' } })).toThrow(/^flags\.sentinelMaster needs Sentinels among the flags too: flags\.redisSentinel host:port,\.\.\.$/);
      expect(() => new Tenantctl({ cwd, env: {}, flags: { tenantsDir: ' ' } })).toThrow(/^flags\.tenantsDir is empty/);
      // The CLI names its own flags (it says so: flagNames).
      expect(() => new Tenantctl({ cwd, env: {}, flags: { tenantsDir: ' ' }, flagNames: 'command-line' })).toThrow(/^--tenants-dir is empty/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
