import { resolveConfig, type ConfigFlags, type TenantctlConfig } from '../config/config.js';
import { CacheProvider } from '../cache/cache-provider.js';
import { KeySpace } from '../cache/key-families.js';
import { openRegistry } from '../registry/open-registry.js';
import type { RegistryStore } from '../registry/registry-store.js';
import { YamlTenantSource } from '../tenants/tenant-source.js';
import { CacheAdmin } from '../services/cache-admin.js';
import { TenantConfigService } from '../services/tenant-config-service.js';
import { Migration } from '../services/migration.js';
import { Output } from './output.js';

export interface GlobalOptions extends ConfigFlags {
  json?: boolean;
}

/**
 * Everything a command needs, built once before its action runs: the
 * configuration, the cache (connected on first use), the registry (opened on
 * first use: PGlite and pg are heavy), the YAML source and the services.
 * `close()` runs in `finally`, whatever happened.
 */
export class CliContext {
  readonly config: TenantctlConfig;
  readonly out: Output;
  readonly cache: CacheProvider;
  readonly keys: KeySpace;
  readonly source: YamlTenantSource;
  readonly admin: CacheAdmin;
  private registryPromise: Promise<RegistryStore> | undefined;

  constructor(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env) {
    this.out = new Output(!!opts.json, process.stdout, process.stderr, env);
    this.config = resolveConfig(opts, env);
    this.cache = new CacheProvider(
      { url: this.config.redisUrl, clusterNodes: this.config.redisCluster, timeoutMs: this.config.redisTimeoutMs, caFile: env.REDIS_CA_CERT || undefined },
      (m) => this.out.warn(m),
    );
    this.keys = new KeySpace(this.config.families);
    this.source = new YamlTenantSource(this.config.tenantsDir, this.config.registryOnlyPrefix);
    this.admin = new CacheAdmin(this.cache, this.keys);
  }

  registry(): Promise<RegistryStore> {
    this.registryPromise ??= openRegistry(this.config.registry);
    return this.registryPromise;
  }

  tenants(): TenantConfigService {
    return new TenantConfigService({
      cache: this.cache,
      registry: () => this.registry(),
      source: this.source,
      keys: this.keys,
      admin: this.admin,
      ttl: this.config.ttl,
      warn: (m) => this.out.warn(m),
    });
  }

  migration(): Migration {
    return new Migration({ source: this.source, registry: () => this.registry(), admin: this.admin, cache: this.cache });
  }

  async close(): Promise<void> {
    this.cache.close();
    if (this.registryPromise) {
      const store = await this.registryPromise.catch(() => undefined);
      await store?.close();
    }
  }
}
