import type { Registry } from '../../src/registry/registry-store.js';
import { inject } from 'vitest';
import { Tenantctl } from '../../src/tenantctl.js';
import type { PopulatePolicy } from '../../src/services/tenant-config-service.js';

/** The library's services wired as the CLI wires them (the same composition root), for in-process tests. */
export function wireServices(options: { redisUrl?: string; registry: () => Promise<Registry>; tenantsDir?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; populate?: PopulatePolicy }) {
  const warnings: string[] = [];
  const t = new Tenantctl({
    flags: { redisUrl: options.redisUrl, redisTimeout: options.timeoutMs ?? 1000, tenantsDir: options.tenantsDir, registry: 'memory:' },
    env: options.env ?? { XDG_CACHE_HOME: inject('cacheHome') },
    cwd: options.cwd ?? options.tenantsDir!,
    warn: (m) => warnings.push(m),
    ...(options.populate && { populate: () => options.populate! }),
  });
  // Tests hand in their own registry (or a failing one) instead of the configured one.
  t.registry = options.registry;
  t.writableRegistry = async () => {
    const r = await options.registry();
    await r.ensureSchema();
    return r;
  };
  return { ...t, tenants: t.tenants, migration: t.migration, admin: t.admin, cache: t.cache, warnings, close: () => t.cache.close() };
}
