-- tenantctl registry schema. Commands that write apply it to the embedded
-- (PGlite) and PostgreSQL registries only when it is missing or older than
-- this version (checked in the catalog first; applied under an advisory lock
-- with the registry timeout as lock_timeout); reads never change the schema.
-- Print it with `tenantctl schema` and run it in the Supabase SQL editor for a
-- hosted registry. Every statement is idempotent.

-- The tenants table the services already read (columns as they define them).
CREATE TABLE IF NOT EXISTS tenants (
  id               text PRIMARY KEY,
  name             text NOT NULL,
  short_name       text,
  timezone         text,
  currency         text,
  primary_email    text,
  gcp_project_id   text,
  gcp_dataset      text,
  config_source    text NOT NULL DEFAULT 'yaml',
  tenant_config    jsonb NOT NULL DEFAULT '{}'::jsonb,
  status           text NOT NULL DEFAULT 'active',
  plan             text,
  features_enabled jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- tenantctl's own column: the content hash of what it last migrated, so an
-- edit made in the registry since then is detected (a conflict) rather than overwritten.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS tenantctl_hash text;

-- Permissions (feature catalogue, tiers, subscriptions, overrides). Names are
-- prefixed so they never collide with a service's own `subscriptions` table.
CREATE TABLE IF NOT EXISTS permission_features (
  name text PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS permission_tiers (
  name        text PRIMARY KEY,
  features    jsonb NOT NULL DEFAULT '[]'::jsonb,
  max_devices integer            -- null = unlimited
);

CREATE TABLE IF NOT EXISTS business_subscriptions (
  business_id     text PRIMARY KEY,
  tier            text NOT NULL,
  status          text NOT NULL CHECK (status IN ('active', 'suspended', 'cancelled', 'expired')),
  demo_expires_at timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  tenantctl_hash  text           -- content hash of the last migration (conflict detection)
);

-- A services' own subscriptions table, made before tenantctl's: the same column added (every migration
-- and set-subscription failed on it, "column tenantctl_hash does not exist", while doctor said current).
ALTER TABLE business_subscriptions ADD COLUMN IF NOT EXISTS tenantctl_hash text;

CREATE TABLE IF NOT EXISTS business_feature_overrides (
  business_id text NOT NULL REFERENCES business_subscriptions (business_id) ON DELETE CASCADE,
  feature     text NOT NULL,     -- has_* feature, or max_devices
  value       jsonb NOT NULL,    -- true / false, or the device limit
  PRIMARY KEY (business_id, feature)
);

-- tenantctl's own bookkeeping (the catalogue's content hash).
CREATE TABLE IF NOT EXISTS tenantctl_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- Invalidations still owed to the cache (an outbox): recorded in the same
-- transaction as the write they follow, deleted once done, so a run killed or
-- cut off from Redis between its write and its invalidation leaves them here
-- for the next write command (or `tenantctl invalidate --pending`) to finish.
-- kind: 'tenant' (every key family of the tenant), 'permissions'
-- (permissions:<target>), 'permissions-all' (target '*').
CREATE SEQUENCE IF NOT EXISTS tenantctl_outbox_seq;
CREATE TABLE IF NOT EXISTS tenantctl_outbox (
  kind       text NOT NULL,
  target     text NOT NULL,
  seq        bigint NOT NULL DEFAULT nextval('tenantctl_outbox_seq'),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, target)
);
