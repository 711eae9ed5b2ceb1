import { endOnClosedPipe, exitIfOutputLost, unwrittenOutput } from './closed-pipe.js';
import { loadBundle } from './load-bundle.js';
import { COMMAND_NAMES } from './command-names.js';
import { compileWasmOnce, keepYoungGenerationSmall, SWEEPING_COMMANDS } from './v8-flags.js';
import { VERSION } from './version.js';
import { EXIT } from './exit-values.js';
import { debugFromEnv } from './debug-env.js';

/**
 * What bin/tenantctl.js runs: the CLI bundle (dist/cli-bundle/tenantctl.cjs,
 * built by scripts/build-cli.mjs) through V8's code cache (load-bundle.ts).
 * Built into a CommonJS file of its own (dist/cli-bundle/launcher.cjs), so
 * that the entry is CommonJS: for an ES module entry Node 20 first sets up
 * its ES module loader (~50 internal modules), a cost every command paid.
 */
/** The CLI bundle's content hash, defined by scripts/build-cli.mjs when it builds the launcher (absent when run unbundled). */
declare const __TENANTCTL_BUNDLE_HASH__: string | undefined;

export function run(argv: string[]): void {
  // As an ES module's top-level await did: a launch that fails, or never
  // finishes, exits non-zero whatever the process's unhandled-rejection mode
  // (NODE_OPTIONS, a preloaded agent's handler).
  let settled = false;
  process.once('beforeExit', () => {
    if (settled) return;
    process.stderr.write('tenantctl: internal: the command never finished (nothing left to wait for)\n');
    process.exitCode = EXIT.INTERNAL;
  });
  launch(argv).then(
    () => {
      settled = true;
    },
    (err: unknown) => {
      settled = true;
      process.stderr.write(`tenantctl: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = EXIT.INTERNAL;
    },
  );
}

export async function launch(argv: string[]): Promise<void> {
  const args = argv.slice(2);
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    // Needs nothing of the CLI: answered without compiling it (as commander would print it).
    endOnClosedPipe();
    process.stdout.write(`${VERSION}\n`);
    await exitIfOutputLost();
  } else {
    // V8 flags before compiling: a code cache is only valid under the flags it was made with.
    compileWasmOnce();
    // The command named first (an option's value or a tenant id named like a command comes after it, or only
    // changes which cache is used). Each command keeps a code cache of its own: V8 caches the functions the
    // run that wrote it compiled, so one written by migrate-yaml left get-config compiling most of its own.
    const command = args.find((a) => COMMAND_NAMES.has(a));
    if (command !== undefined && SWEEPING_COMMANDS.has(command)) keepYoungGenerationSmall();
    // A run without a command word (--help) compiles far less than a command: a cache of its own too.
    const kind = command ? `command-${command}` : args.some((a) => !a.startsWith('-')) ? 'command' : 'bare';
    // Beside this file both as compiled (dist/cli/) and as bundled (dist/cli-bundle/).
    const contentHash = typeof __TENANTCTL_BUNDLE_HASH__ === 'string' ? __TENANTCTL_BUNDLE_HASH__ : undefined;
    const cli = loadBundle<{ main(argv: string[]): Promise<void> }>(new URL('../cli-bundle/tenantctl.cjs', import.meta.url), { kind, contentHash });
    if (debugFromEnv() || args.includes('--debug')) process.stderr.write(`debug: code cache ${cli.codeCache} (${cli.cacheFile})\n`);
    await cli.exports.main(argv);
    cli.saveCodeCache();
  }
  // The command is done. Nothing should keep the process alive now; if something
  // does, say so (tests catch the extra stderr line) and exit anyway. Counted from when
  // its output has been taken: a pipe whose reader is slow holds what did not fit in it
  // (64 KB), and an exit a second after the command cut a large JSON document there (exit 0).
  const exitIfStillAlive = () => {
    process.stderr.write('tenantctl: internal: an open handle kept the process alive after the command finished\n');
    process.exit();
  };
  // A stream its reader closed (`| head`) takes nothing more: none of it is waited for.
  const whenWritten = () => {
    if (unwrittenOutput() > 0) setTimeout(whenWritten, 50).unref();
    else setTimeout(exitIfStillAlive, 1000).unref();
  };
  whenWritten();
}
