/**
 * Every subcommand's name, for the launcher (bin/tenantctl.js), which picks a
 * V8 code cache per command before the CLI is compiled, so it cannot ask
 * commander. A test checks this list against the program's commands.
 */
export const COMMAND_NAMES: ReadonlySet<string> = new Set([
  'migrate-yaml', 'get-config', 'list-tenants', 'invalidate', 'invalidate-all', 'cache-info', 'test-redis', 'check-permission', 'get-permissions',
  'set-subscription', 'override', 'reactivate', 'schema', 'config', 'doctor', 'verify', 'watch', 'completion', '__complete',
  // commander's own
  'help',
]);
