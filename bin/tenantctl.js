#!/usr/bin/env node
// Launcher only: runs the compiled CLI (no TypeScript loader, so start-up stays fast).
import { main } from '../dist/cli/main.js';

await main(process.argv);
// Safety net: a command has finished; if some handle still holds the process open, end it.
setTimeout(() => process.exit(), 1500).unref();
