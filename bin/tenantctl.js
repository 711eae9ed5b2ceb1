#!/usr/bin/env node
// Launcher only: runs the bundled CLI (dist/cli-bundle, built from dist/cli by
// scripts/build-cli.mjs), so start-up opens one file, not dozens.
import { main } from '../dist/cli-bundle/main.js';

await main(process.argv);
// The command is done. Nothing should keep the process alive now; if something
// does, say so (tests catch the extra stderr line) and exit anyway.
setTimeout(() => {
  process.stderr.write('tenantctl: internal: an open handle kept the process alive after the command finished\n');
  process.exit();
}, 1000).unref();
