#!/usr/bin/env node
// Launcher only: runs the CLI bundle (dist/cli-bundle/tenantctl.cjs, built by
// scripts/build-cli.mjs; see src/cli/load-bundle.ts for how and why).
import { endOnClosedPipe } from '../dist/cli/closed-pipe.js';
import { runBundle } from '../dist/cli/load-bundle.js';
import { VERSION } from '../dist/cli/version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Needs nothing of the CLI: answered without compiling it (as commander would print it).
  endOnClosedPipe();
  process.stdout.write(`${VERSION}\n`);
} else {
  const { main } = runBundle(new URL('../dist/cli-bundle/tenantctl.cjs', import.meta.url));
  await main(process.argv);
}
// The command is done. Nothing should keep the process alive now; if something
// does, say so (tests catch the extra stderr line) and exit anyway.
setTimeout(() => {
  process.stderr.write('tenantctl: internal: an open handle kept the process alive after the command finished\n');
  process.exit();
}, 1000).unref();
