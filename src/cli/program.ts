import { Command, Option } from 'commander';
import { intArg } from './action.js';
import { clipLongRuns, maskArgument, maskUrlsIn, showControls } from '../redact.js';
import { OUTPUT_FORMATS } from './output-formats.js';
import { register as migrateYaml } from './commands/migrate-yaml.js';
import { register as getConfig } from './commands/get-config.js';
import { register as listTenants } from './commands/list-tenants.js';
import { register as invalidate } from './commands/invalidate.js';
import { register as invalidateAll } from './commands/invalidate-all.js';
import { register as cacheInfo } from './commands/cache-info.js';
import { register as testRedis } from './commands/test-redis.js';
import { register as schema } from './commands/schema.js';
import { register as checkPermission } from './commands/check-permission.js';
import { register as getPermissions } from './commands/get-permissions.js';
import { register as setSubscription } from './commands/set-subscription.js';
import { register as override } from './commands/override.js';
import { register as reactivate } from './commands/reactivate.js';
import { register as completion } from './commands/completion.js';
import { register as config } from './commands/config.js';
import { register as doctor } from './commands/doctor.js';
import { register as verify } from './commands/verify.js';
import { register as watch } from './commands/watch.js';
import { VERSION } from './version.js';

/**
 * commander's error line, as the tool's own are: commander quotes a rejected value whole and raw
 * ("command-argument value '<value>' is invalid", "unknown command '<value>'"), so a huge argument is cut
 * (counted as typed) and its control characters (ESC, CR, a line feed) are shown as \xNN: one line, never
 * a sequence the terminal obeys. Its "(Did you mean ...?)", a second line of its own, joins the error's
 * line (a bad input is one line on stderr, as every other usage error): it names the tool's own commands
 * and options.
 */
export function commanderErrorText(text: string): string {
  const [, message, suggestion = ''] = /^([\s\S]*?)(?:\n\((Did you mean [^\n]*\?)\))?\n?$/.exec(text) ?? [, text];
  // A value it quotes may be a URL with a password (`--redis_url=redis://u:pw@h`, an unknown option): masked.
  // Each argument of this run that holds credentials is replaced whole first (a password with a quote or a
  // blank in it escaped the patterns below: a review).
  let said = message ?? '';
  for (const arg of process.argv.slice(2)) {
    if (!arg.includes('@')) continue;
    // The argument, the value of `--x=value` or `-oVALUE` alone, each also as JSON writes it (a quote escaped).
    const values = [arg, ...(/^--[^=]+=/.test(arg) ? [arg.slice(arg.indexOf('=') + 1)] : []), ...(/^-[A-Za-z]./.test(arg) ? [arg.slice(2), arg.slice(2).replace(/^=/, '')] : [])];
    for (const v of values.filter((x) => x.length > 3)) {
      for (const form of [v, JSON.stringify(v).slice(1, -1)]) if (said.includes(form)) said = said.split(form).join(maskArgument(v));
    }
  }
  const masked = maskUrlsIn(said).replace(/(^|['"\s=/])([^\s/:@'"]*):[^\s@'"]*@/g, '$1$2:****@');
  return `${showControls(clipLongRuns(masked))}${suggestion && ` (d${suggestion.slice(1)})`}\n`;
}

const errorOutput = { outputError: (text: string, write: (s: string) => void) => write(commanderErrorText(text)) };

/** The commander program: names, flags and help only; each subcommand lives in its own file. */
export function buildProgram(): Command {
  const program = new Command('tenantctl')
    .description('administer the tenant registry and the per-tenant Redis cache of a multi-tenant service')
    .version(VERSION)
    .option('--redis-url <url>', 'Redis URL, redis:// or rediss:// (env REDIS_URL; none = cache disabled)')
    .option('--redis-cluster <nodes>', 'Redis Cluster seeds host:port,... (env REDIS_CLUSTER_NODES)')
    .option('--redis-sentinel <nodes>', 'Redis Sentinels host:port,... (env REDIS_SENTINEL_NODES; with --sentinel-master)')
    .option('--sentinel-master <name>', 'the master the Sentinels monitor (env REDIS_SENTINEL_MASTER)')
    .addOption(new Option('--redis-timeout <ms>', 'Redis connect and command timeout (env REDIS_TIMEOUT_MS, default 1000)').argParser(intArg('--redis-timeout')))
    .option('--registry <where>', 'postgres://..., https://<project>.supabase.co, or a directory (default: .tenantctl/registry of the project)')
    .addOption(new Option('--registry-timeout <ms>', 'registry connect, lock and statement timeout (env REGISTRY_TIMEOUT_MS, default 5000)').argParser(intArg('--registry-timeout')))
    .option('--tenants-dir <dir>', 'tenant YAML directory (env TENANTS_DIR, default: tenants/ of the project)')
    .addOption(new Option('--ttl <seconds>', 'cache TTL (env CACHE_TTL, default 300)').argParser(intArg('--ttl')))
    .option('--audit-log <file>', 'append one JSON line per write or deletion (env TENANTCTL_AUDIT_LOG)')
    .addOption(new Option('-o, --output <format>', 'table (on a terminal), plain (tab-separated, when piped), wide, json, yaml; prometheus for cache-info').choices([...OUTPUT_FORMATS]))
    .option('--json', 'short for -o json')
    .option('--debug', 'timings per step and full errors on stderr (also TENANTCTL_DEBUG=1)')
    .showSuggestionAfterError(true)
    // A subcommand's help lists the global options too (--redis-url, --registry, -o, ...): an operator reading
    // `tenantctl invalidate --help` at 3 a.m. should not have to know they live on the top-level help.
    .configureHelp({ showGlobalOptions: true })
    // commander quotes a rejected value in full and raw: cut and escaped (commanderErrorText).
    .configureOutput(errorOutput)
    .exitOverride();
  for (const register of [migrateYaml, getConfig, listTenants, invalidate, invalidateAll, cacheInfo, testRedis, checkPermission, getPermissions, setSubscription, override, reactivate, schema, config, doctor, verify, watch, completion]) {
    register(program);
  }
  // Subcommands inherit exitOverride (commander never calls process.exit itself) and the escaped error output.
  for (const cmd of program.commands) cmd.exitOverride().configureOutput(errorOutput);
  refuseUnknownHelpTopic(program);
  return program;
}

/** The parts of commander's help command used below (its own, not in its typings; a test pins the behaviour). */
interface HelpDispatch {
  _dispatchHelpCommand(name?: string): unknown;
  _findCommand(name: string): Command | undefined;
  /** commander's own help command, made when first asked for (so _findCommand does not know it). */
  _getHelpCommand(): Command | null;
  unknownCommand(): never;
  args: string[];
}

/**
 * `tenantctl help nosuch` printed the whole help (exit 2) without saying what
 * was wrong: now it is refused as `tenantctl nosuch` is, "unknown command",
 * with the nearest name when there is one.
 */
function refuseUnknownHelpTopic(program: Command): void {
  const help = program as unknown as HelpDispatch;
  const dispatch = help._dispatchHelpCommand.bind(help);
  help._dispatchHelpCommand = (name?: string) => {
    // `help help` is the help (commander printed it as an error, exit 2).
    const own = help._getHelpCommand();
    if (name !== undefined && own && (own.name() === name || own.aliases().includes(name))) return dispatch(undefined);
    if (name !== undefined && !help._findCommand(name)) {
      // unknownCommand names this.args[0], which is "help" here.
      help.args = [name];
      help.unknownCommand();
    }
    return dispatch(name);
  };
}
