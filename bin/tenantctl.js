#!/usr/bin/env node
// Launcher only: runs the CLI bundle (dist/cli-bundle/tenantctl.cjs, built by
// scripts/build-cli.mjs) through V8's code cache (see src/cli/load-bundle.ts).
import { endOnClosedPipe } from '../dist/cli/closed-pipe.js';
import { loadBundle } from '../dist/cli/load-bundle.js';
import { COMMAND_NAMES } from '../dist/cli/command-names.js';
import { compileWasmOnce, keepYoungGenerationSmall, SWEEPING_COMMANDS } from '../dist/cli/v8-flags.js';
import { VERSION } from '../dist/cli/version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Needs nothing of the CLI: answered without compiling it (as commander would print it).
  endOnClosedPipe();
  process.stdout.write(`${VERSION}\n`);
} else {
  // V8 flags before compiling: a code cache is only valid under the flags it was made with.
  compileWasmOnce();
  // The command named first (an option's value or a tenant id named like a command comes after it, or only
  // changes which cache is used). Each command keeps a code cache of its own: V8 caches the functions the
  // run that wrote it compiled, so one written by migrate-yaml left get-config compiling most of its own.
  const command = args.find((a) => COMMAND_NAMES.has(a));
  if (SWEEPING_COMMANDS.has(command)) keepYoungGenerationSmall();
  // A run without a command word (--help) compiles far less than a command: a cache of its own too.
  const kind = command ? `command-${command}` : args.some((a) => !a.startsWith('-')) ? 'command' : 'bare';
  const cli = loadBundle(new URL('../dist/cli-bundle/tenantctl.cjs', import.meta.url), { kind });
  if (process.env.TENANTCTL_DEBUG || args.includes('--debug')) process.stderr.write(`debug: code cache ${cli.codeCache} (${cli.cacheFile})\n`);
  await cli.exports.main(process.argv);
  cli.saveCodeCache();
}
// The command is done. Nothing should keep the process alive now; if something
// does, say so (tests catch the extra stderr line) and exit anyway.
setTimeout(() => {
  process.stderr.write('tenantctl: internal: an open handle kept the process alive after the command finished\n');
  process.exit();
}, 1000).unref();
