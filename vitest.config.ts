import { defineConfig } from 'vitest/config';
import LongestFirst from './test/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only fight over them (PGlite and redis-server need CPU too).
    maxWorkers: 2,
    fileParallelism: true,
    // A worker process runs file after file (not a new process and module graph per file: 2-4 s of
    // start-up each, while the other worker ran alone). Test files restore what they change
    // (environment, handlers); their servers and directories are their own.
    isolate: false,
    sequence: { sequencer: LongestFirst },
  },
});
