import { CommanderError } from 'commander';
import { BackendUnavailableError, InterruptedError, NotFoundError, TenantctlError, UsageError, describeError, type BackendReason } from '../errors.js';
import { EXIT } from './exit-values.js';
import { plural } from './charts.js';

export { EXIT };

/**
 * What a person should do about a backend failure: the library's errors carry
 * a typed reason, and only the CLI knows its own flags and commands.
 */
export function backendHint(backend: BackendUnavailableError['backend'], reason: BackendReason | undefined): string {
  const err = { backend, reason };
  if (err.backend === 'redis' && err.reason === 'not-configured') return ': set REDIS_URL, --redis-url, --redis-cluster or --redis-sentinel';
  if (err.backend === 'registry' && err.reason === 'not-configured') {
    return ' (looked from the working directory up to the first tenantctl.config.* or .tenantctl/): run `tenantctl migrate-yaml` there to create it, or give --registry / DATABASE_URL';
  }
  if (err.backend === 'redis' && err.reason === 'no-permission') return ' (the Redis ACL user lacks a right this command needs)';
  if (err.backend === 'redis' && err.reason === 'cluster-node') return ': give the Cluster\'s nodes with --redis-cluster host:port,... (or REDIS_CLUSTER_NODES)';
  if (err.backend === 'redis' && err.reason === 'read-only') return ' (a replica takes no writes: give its master\'s address, or its Sentinels with --redis-sentinel)';
  if (err.backend === 'redis' && err.reason === 'unknown-master') return ' (check --sentinel-master / REDIS_SENTINEL_MASTER)';
  if (err.backend === 'registry' && err.reason === 'no-schema') return ' (apply `tenantctl schema` in the SQL editor)';
  if (err.backend === 'redis' && err.reason === 'refused-login') return ' (check the user and password of the Redis URL)';
  if (err.backend === 'registry' && err.reason === 'refused-login') return ' (check the user and password of the registry URL, or the Supabase key)';
  if (err.backend === 'registry' && err.reason === 'no-permission') {
    // The server's message names the table; this says which rights a command needs (it named the read rights only,
    // for a write refused its DELETE on tenantctl_outbox).
    return ' (the registry role lacks a right: CONNECT on the database and SELECT on tenants and on tenantctl\'s tables to read; a command that writes needs INSERT, UPDATE and DELETE on them too; `tenantctl schema` lists them)';
  }
  return '';
}

const hint = (err: BackendUnavailableError) => backendHint(err.backend, err.reason);

/** The flag a usage (or not-found) error from the service layer is about (the services do not know the CLI's flags). */
const USAGE_HINTS: Record<string, string> = {
  'bad-demo-expiry': ' (--demo-expires takes ISO 8601, or "none")',
  'bad-device-limit': ' (--device-limit takes a whole number, or "none")',
  'needs-tier': ': give --tier',
  'no-working-directory': ': cd to an existing directory and run again',
  'bad-tls-file': ' (REDIS_CA_CERT, REDIS_TLS_CERT, REDIS_TLS_KEY or redis_ca_cert / redis_tls_cert / redis_tls_key in the config file)',
  'no-tenants-dir': ' (run from the project, or give --tenants-dir)',
  'no-project': ' (run from the project, or give --tenants-dir / --registry)',
  'other-project': '; nothing was created (run from that project, or give --registry)',
  'registry-elsewhere': ' (run from the project directory, or give --registry)',
  'bad-metrics': ' (--metrics)',
  'no-registry': ' (give --registry or DATABASE_URL; verify without --fix compares with YAML only)',
  'watch-unsupported': '; use --registry postgres://… or DATABASE_URL',
  'watch-not-installed': ': run `tenantctl watch --install` first (it needs the TRIGGER privilege on the tables)',
};

/**
 * The one place errors become exit codes and one-line messages. Expected
 * failures never print a stack; an unexpected one prints it only with
 * --debug or TENANTCTL_DEBUG=1.
 */
export function exitCodeFor(err: unknown): { code: number; message?: string } {
  if (err instanceof CommanderError) {
    // commander has already printed its one-line message (or the help: asked for, exit 0; shown
    // because no command was given, 'commander.help' with a non-zero code: a usage error, exit 2).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return { code: EXIT.OK };
    return { code: err.exitCode === 0 ? EXIT.OK : EXIT.USAGE };
  }
  if (err instanceof BackendUnavailableError && err.backend === 'redis' && err.progress && err.reason === 'failed-over') {
    // Deleted on a master being failed over: not "deleted at least N" (they may come back); the message says to run again.
    return { code: err.exitCode, message: `${plural(err.progress.done, 'key')} deleted on a master that was failing over, so they may come back: ${describeError(err)}` };
  }
  if (err instanceof BackendUnavailableError && err.backend === 'redis' && err.progress) {
    // A rerun finishes what a lost or stalled server cut short; one refused (rights, or the login) fails the same way
    // again, and one answered with an error (a renamed UNLINK, MISCONF) until what the error names is mended.
    const next = err.refused ? `${hint(err)}` : err.answered ? '; run again once Redis accepts the command' : '; run again to finish';
    // A call in flight when the server stalled or died may still have deleted keys after it: at least N. One the
    // server answered left nothing in flight (a sweep reports after every lane has stopped).
    return { code: err.exitCode, message: `deleted ${err.answered ? '' : 'at least '}${plural(err.progress.done, 'key')} before Redis failed: ${describeError(err)}${next}` };
  }
  if (err instanceof BackendUnavailableError) return { code: err.exitCode, message: `${describeError(err)}${hint(err)}` };
  if ((err instanceof UsageError || err instanceof NotFoundError) && err.reason && USAGE_HINTS[err.reason]) return { code: err.exitCode, message: `${describeError(err)}${USAGE_HINTS[err.reason]}` };
  if (err instanceof InterruptedError) return { code: err.exitCode, message: err.message };
  if (err instanceof TenantctlError) return { code: err.exitCode, message: describeError(err) };
  return { code: EXIT.INTERNAL, message: `internal error: ${describeError(err)}` };
}
