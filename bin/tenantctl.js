#!/usr/bin/env node
// Launcher only: runs the CLI bundle (dist/cli-bundle/tenantctl.cjs, built by
// scripts/build-cli.mjs; see src/cli/load-bundle.ts for how and why).
import { runBundle } from '../dist/cli/load-bundle.js';

const { main } = runBundle(new URL('../dist/cli-bundle/tenantctl.cjs', import.meta.url));
await main(process.argv);
// The command is done. Nothing should keep the process alive now; if something
// does, say so (tests catch the extra stderr line) and exit anyway.
setTimeout(() => {
  process.stderr.write('tenantctl: internal: an open handle kept the process alive after the command finished\n');
  process.exit();
}, 1000).unref();
