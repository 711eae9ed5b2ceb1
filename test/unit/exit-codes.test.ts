import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { BackendUnavailableError, NotFoundError, UsageError } from '../../src/errors.js';

describe('exitCodeFor: the one place typed errors become exit codes and words (the flags are the CLI\'s alone)', () => {
  it('a login refused midway (WRONGPASS after a reconnect) is no "run again" (a rerun fails the same way), and says what to check', () => {
    const err = new BackendUnavailableError('redis', 'Redis UNLINK failed: WRONGPASS invalid username-password pair', { reason: 'refused-login', progress: { done: 12 } });
    expect(exitCodeFor(err)).toEqual({ code: 3, message: 'deleted 12 keys before Redis failed: Redis UNLINK failed: WRONGPASS invalid username-password pair (check the user and password of the Redis URL)' });
    // A server lost midway is one a rerun finishes.
    const lost = new BackendUnavailableError('redis', 'Redis UNLINK failed: Connection is closed.', { reason: 'failed', progress: { done: 12 } });
    expect(exitCodeFor(lost).message).toMatch(/^deleted at least 12 keys before Redis failed: .*; run again to finish$/);
    // A command the server answered with an error (a renamed UNLINK, MISCONF): nothing in doubt, so no "at least",
    // and no plain "run again" (it said so for a rerun that fails the same way).
    const rejected = new BackendUnavailableError('redis', "Redis UNLINK failed: ERR unknown command 'unlink'", { reason: 'rejected', progress: { done: 3 } });
    expect(exitCodeFor(rejected)).toEqual({ code: 3, message: "deleted 3 keys before Redis failed: Redis UNLINK failed: ERR unknown command 'unlink'; run again once Redis accepts the command" });
  });

  it('a refused login at the connect names what to check, for Redis and the registry', () => {
    expect(exitCodeFor(new BackendUnavailableError('registry', 'registry (postgres://u:****@h/db) refused the login: password authentication failed', { reason: 'refused-login' })).message)
      .toBe('registry (postgres://u:****@h/db) refused the login: password authentication failed (check the user and password of the registry URL, or the Supabase key)');
  });

  it('the service layer\'s typed reasons get the CLI\'s flag hints; its own words name no flag', () => {
    const cases: Array<[Error, RegExp]> = [
      [new UsageError('no tenants directory at /x/tenants: nothing to migrate', { reason: 'no-tenants-dir' }), / \(run from the project, or give --tenants-dir\)$/],
      [new NotFoundError('tenant a not found in the registry or YAML: there is no tenants directory at /x/tenants', { reason: 'no-tenants-dir' }), / \(run from the project, or give --tenants-dir\)$/],
      [new UsageError('deleting stale entries needs the registry to compare with: no registry', { reason: 'no-registry' }), /\(give --registry or DATABASE_URL; verify without --fix compares with YAML only\)$/],
      [new UsageError('the change triggers are not installed in postgres://h/db (missing 2 of 2)', { reason: 'watch-not-installed' }), /: run `tenantctl watch --install` first \(it needs the TRIGGER privilege on the tables\)$/],
    ];
    for (const [err, hint] of cases) {
      expect(err.message).not.toMatch(/--/);
      expect(exitCodeFor(err).message).toMatch(hint);
    }
  });
});
