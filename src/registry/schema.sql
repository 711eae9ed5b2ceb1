-- tenantctl registry schema. Applied automatically to the embedded (PGlite)
-- and PostgreSQL registries; print it with `tenantctl schema` and run it in
-- the Supabase SQL editor for a hosted registry. Every statement is idempotent.

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
