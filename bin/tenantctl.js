#!/usr/bin/env node
// Launcher only: see src/cli/launch.ts. CommonJS (bin/package.json), as is
// what it requires: an ES module entry makes Node set up its ES module loader.
'use strict';
require('../dist/cli-bundle/launcher.cjs').run(process.argv);
