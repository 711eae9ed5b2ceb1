/**
 * tenantctl as a library: the same key names, TTLs, JSON format and rules
 * as the CLI, for applications that read and write the same cache and registry.
 */
export { Tenantctl, type TenantctlOptions } from './tenantctl.js';
export * from './errors.js';
export { resolveConfig, type TenantctlConfig, type ConfigFlags } from './config/config.js';
export { maskUrl, type RegistrySpec } from './config/registry-spec.js';
export { isValidId, parseId, ID_PATTERN } from './cache/ids.js';
export { escapeGlob } from './cache/glob.js';
export {
  KeySpace, buildFamilies, validatePattern, patternToGlob, DEFAULT_RESOURCES, TENANT_CONFIG_FAMILY, PERMISSIONS_FAMILY,
  type KeyFamily, type KeyOwner,
} from './cache/key-families.js';
export { RedisConnection, type RedisConnectionOptions } from './cache/redis-connection.js';
export { RedisCache } from './cache/redis-cache.js';
export { CacheProvider } from './cache/cache-provider.js';
export type { RegistryStore, TenantRow, TenantWrite } from './registry/registry-store.js';
export { openRegistry } from './registry/open-registry.js';
export { schemaSql } from './registry/sql-store.js';
export { YamlTenantSource, type TenantDocument } from './tenants/tenant-source.js';
export { substitute, substituteString } from './tenants/substitution.js';
export { stripSecrets, maskSecrets, isSecretKey, resolveAbsentSecrets, SECRET_KEY_NAMES } from './tenants/secrets.js';
export { rowFromConfig, configFromRow } from './tenants/registry-mapping.js';
export { TenantConfigService, type TenantConfig, type TenantListing, type ConfigSource } from './services/tenant-config-service.js';
export { CacheAdmin, type TenantInvalidation, type InvalidateAllResult, type TestRedisResult } from './services/cache-admin.js';
export { collectCacheInfo, toPrometheus, type CacheInfo } from './services/cache-info.js';
export { Migration, migrationExitCode, migrationFailure, catalogueHash, subscriptionHash, type MigrationReport, type MigrationItem, type MigrationAction, type MigrationKind } from './services/migration.js';
export { PermissionService, parseFeature, type PermissionCheck, type PermissionLookup } from './services/permission-service.js';
export { SubscriptionService, type SubscriptionChange, type ChangeResult } from './services/subscription-service.js';
export * from './permissions/model.js';
export { computePermissions, expireCachedRecord, cacheTtlFor } from './permissions/rules.js';
export { loadTiersFile } from './permissions/tiers-file.js';
