#!/usr/bin/env node
// Launcher only: runs the compiled CLI (no TypeScript loader, so start-up stays fast).
import { main } from '../dist/cli/main.js';

await main(process.argv);
// The command is done. Nothing should keep the process alive now; if something
// does, say so (tests catch the extra stderr line) and exit anyway.
setTimeout(() => {
  process.stderr.write('tenantctl: internal: an open handle kept the process alive after the command finished\n');
  process.exit();
}, 1000).unref();
