import { CacheProvider } from '../../src/cache/cache-provider.js';
import { buildFamilies, KeySpace } from '../../src/cache/key-families.js';
import type { RegistryStore } from '../../src/registry/registry-store.js';
import { CacheAdmin } from '../../src/services/cache-admin.js';
import { Migration } from '../../src/services/migration.js';
import { TenantConfigService } from '../../src/services/tenant-config-service.js';
import { YamlTenantSource } from '../../src/tenants/tenant-source.js';

/** The library's services wired as the CLI wires them, for in-process tests. */
export function wireServices(options: { redisUrl?: string; registry: () => Promise<RegistryStore>; tenantsDir: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }) {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const cache = new CacheProvider({ url: options.redisUrl, timeoutMs: options.timeoutMs ?? 1000 }, warn);
  const keys = new KeySpace(buildFamilies({ ttl: 300 }));
  const source = new YamlTenantSource(options.tenantsDir);
  const admin = new CacheAdmin(cache, keys);
  const tenants = new TenantConfigService({ cache, registry: options.registry, source, keys, admin, ttl: 300, env: options.env ?? {}, warn });
  const migration = new Migration({ source, registry: options.registry, admin, cache });
  return { cache, keys, source, admin, tenants, migration, warnings, close: () => cache.close() };
}
