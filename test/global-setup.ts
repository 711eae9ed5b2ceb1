import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRedis, type RedisServer } from './helpers/redis-server.js';

let redis: RedisServer | undefined;
let templateRoot: string | undefined;
let cacheHome: string | undefined;

/**
 * One redis-server for the whole run (tests that kill or pause a server start
 * their own), and one pre-initialised PGlite data directory that tests copy:
 * making one costs ~1 s and ~300 MB (unpacked from the build's data directory; initdb ~5 s
 * and ~750 MB), a copy a few milliseconds.
 */
export default async function setup(project: TestProject) {
  redis = await startRedis();
  templateRoot = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-pglite-template-'));
  const dir = path.join(templateRoot, 'registry');
  const { openPgliteStore } = await import('../src/registry/pglite-store.js');
  const store = await openPgliteStore(dir, { create: true });
  await store.ensureSchema();
  await store.close();
  project.provide('redisUrl', redis.url);
  project.provide('redisPort', redis.port);
  project.provide('pgliteTemplate', dir);
  // The tool's caches (parsed files, content hashes) go here, never to the user's ~/.cache.
  cacheHome = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-test-cache-'));
  project.provide('cacheHome', cacheHome);
  return async () => {
    await redis?.stop();
    if (templateRoot) rmSync(templateRoot, { recursive: true, force: true });
    if (cacheHome) rmSync(cacheHome, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisPort: number;
    pgliteTemplate: string;
    cacheHome: string;
  }
}

