import { describe, expect, it } from 'vitest';
import { failureReason } from '../../src/cache/ioredis-store.js';

/** A Redis error reply as ioredis hands it over (a ReplyError carries the server's text as its message). */
const reply = (text: string) => Object.assign(new Error(text), { name: 'ReplyError' });

/**
 * How the server's words map to a reason (and so to "run again" or not). A contract test: the wordings of
 * Redis 7.2 and Valkey are copied from their replies (only redis-server 7.0 runs here; its replies are
 * tested end to end in test/faults/redis-mid-deletion.test.ts and test/cli/redis-replica.test.ts).
 */
describe('failureReason: the server\'s words -> a reason', () => {
  it('an ACL refusal, of the script command itself or of a command or key inside it, in every wording', () => {
    for (const text of [
      "NOPERM this user has no permissions to run the 'unlink' command",
      "ERR The user executing the script can't run this command or subcommand script: b63c514a, on @user_script:15.",
      "ERR The user executing the script can't access at least one of the keys mentioned in the command script: b63c514a, on @user_script:15.",
      "ERR ACL failure in script: User nounlink has no permissions to run the 'unlink' command script: b63c514a, on @user_script:15.",
      "ERR ACL failure in script: No permissions to access a key script: b63c514a, on @user_script:15.",
    ]) {
      expect(failureReason(reply(text), 'standalone'), text).toBe('no-permission');
    }
  });

  it('READONLY: a replica given as the server (no rerun helps); a failover under way on a Sentinel or a Cluster (run again)', () => {
    const readonly = reply("READONLY You can't write against a read only replica. script: b63c514a, on @user_script:15.");
    expect(failureReason(readonly, 'standalone')).toBe('read-only');
    expect(failureReason(readonly, 'sentinel')).toBe('failed');
    expect(failureReason(readonly, 'cluster')).toBe('failed');
  });

  it('other replies and socket errors', () => {
    expect(failureReason(reply('WRONGPASS invalid username-password pair'), 'standalone')).toBe('refused-login');
    // An answer to this command alone (the connection is fine): not Redis down.
    expect(failureReason(reply('ERR unknown command'), 'standalone')).toBe('rejected');
    expect(failureReason(reply("OOM command not allowed when used memory > 'maxmemory'."), 'standalone')).toBe('rejected');
    expect(failureReason(reply('MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.'), 'cluster')).toBe('rejected');
    // A server that serves nothing for now: taken as down, as a lost connection is.
    for (const text of ['LOADING Redis is loading the dataset in memory', 'BUSY Redis is busy running a script.', 'CLUSTERDOWN The cluster is down', 'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to \'no\'.', 'TRYAGAIN Multiple keys request during rehashing of slot', 'NOREPLICAS Not enough good replicas to write.']) {
      expect(failureReason(reply(text), 'standalone'), text).toBe('failed');
    }
    // Not a reply (no ReplyError): a dropped connection's words.
    expect(failureReason(new Error('Connection is closed.'), 'standalone')).toBe('failed');
    expect(failureReason(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'cluster')).toBe('unreachable');
  });
});
