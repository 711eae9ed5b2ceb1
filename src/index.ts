/**
 * tenantctl as a library: the same key names, TTLs, JSON format and rules
 * as the CLI, for applications that read and write the same cache and registry.
 */
export { Tenantctl, type TenantctlOptions } from './tenantctl.js';
export * from './errors.js';
export { resolveConfig, type TenantctlConfig, type ConfigFlags, type FlagNaming } from './config/config.js';
export { maskUrl } from './redact.js';
export type { RegistrySpec } from './registry/registry-spec.js';
export { isValidId, parseId, ID_PATTERN } from './keys/ids.js';
export { escapeGlob } from './keys/glob.js';
export {
  KeySpace, buildFamilies, validatePattern, patternToGlob, DEFAULT_RESOURCES, TENANT_CONFIG_FAMILY, PERMISSIONS_FAMILY,
  type KeyFamily, type KeyOwner,
} from './keys/key-families.js';
export { Cache, type Attempt, type OpenStore } from './cache/cache.js';
// Thrown by Cache.writeJson for a value the services would write as other bytes (nothing is written).
export { NotServicesJson, servicesJson } from './json/services-json.js';
export type { CacheStore, SweepRequest, SweepResult, SweepAction, SweepBatch } from './cache/cache-store.js';
export { parseRedisSpec, type RedisSpec, type RedisSettings, type RedisSettingNames } from './cache/redis-spec.js';
export { openIoredisStore } from './cache/ioredis-store.js';
export type { RegistryStore, TenantRow, TenantWrite, Registry, PermissionStore, PendingInvalidation } from './registry/registry-store.js';
export { CommitOutcomeUnknownError, outcomeUnknown } from './registry/registry-store.js';
export { openRegistry, type OpenRegistryOptions } from './registry/open-registry.js';
export { schemaSql } from './registry/sql-store.js';
export { YamlTenantSource, type TenantDocument } from './tenants/tenant-source.js';
export { substitute, substituteString } from './tenants/substitution.js';
export { stripSecrets, maskSecrets, isSecretKey, resolveAbsentSecrets, SECRET_KEY_NAMES } from './tenants/secrets.js';
export { rowFromConfig, configFromRow } from './tenants/registry-mapping.js';
export { TenantConfigService, type TenantConfig, type TenantListing, type ConfigSource, type StoredConfig, type PopulatePolicy } from './services/tenant-config-service.js';
export { InvalidationOutbox, type DrainResult } from './services/invalidation-outbox.js';
export { CacheAdmin, type TenantInvalidation, type InvalidateAllResult, type TestRedisResult, type TestRedisStep } from './services/cache-admin.js';
export { collectCacheInfo, toPrometheus, type CacheInfo } from './services/cache-info.js';
export { Migration, migrationExitCode, migrationFailure, catalogueHash, subscriptionHash, type MigrationReport, type MigrationItem, type MigrationAction, type MigrationKind, type MigrationOptions } from './services/migration.js';
export { PermissionService, parseFeature, type PermissionCheck, type PermissionLookup, type PermissionSource } from './services/permission-service.js';
export { SubscriptionService, type SubscriptionChange, type ChangeResult } from './services/subscription-service.js';
export * from './permissions/model.js';
export { computePermissions, expireCachedRecord, cacheTtlFor } from './permissions/rules.js';
export { loadTiersFile } from './permissions/tiers-file.js';
export { CacheVerifier, VERIFIED_FAMILIES, type VerifyDeps, type VerifyEntry, type VerifyOptions, type VerifyReport, type VerifyStatus, type VerifySummary, type FieldDiff } from './services/verify.js';
export { Watcher, installWatch, uninstallWatch, watchableUrl, type WatchDeps, type WatchEvent, type WatchOptions } from './services/watch.js';
export { WatchMetrics, serveMetrics, parseListenAddress } from './services/watch-metrics.js';
export { parseChangePayload, type ChangeKind, type RegistryChange } from './registry/change-feed.js';
export { CHANGE_CHANNEL, watchTriggerSql, type TriggerChange } from './registry/watch-triggers.js';
