-- tenantctl watch: change notifications for event-driven cache invalidation.
-- Installed by `tenantctl watch --install` in one transaction (under an
-- advisory lock, with the registry timeout as lock_timeout), removed by
-- `tenantctl watch --uninstall`. Every statement is idempotent.
--
-- The triggers are AFTER triggers that return NULL: they never change a row,
-- so no column the services use is touched. pg_notify is transactional: a
-- notification is delivered when its transaction commits, and never for one
-- that rolls back. Payload (JSON text, channel tenantctl_changes):
--   {"t": table, "op": INSERT|UPDATE|DELETE|TRUNCATE|CHANGE, "id": row id,
--    "old_id": id before an UPDATE that changed it, "at": the row's updated_at,
--    "ts": milliseconds since the epoch when the trigger ran}
-- A catalogue change carries no id and the transaction's start time as "ts",
-- so PostgreSQL folds a transaction's catalogue notifications into one
-- (identical payloads in one transaction are delivered once).

CREATE OR REPLACE FUNCTION tenantctl_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $tenantctl$
DECLARE
  r jsonb;
  o jsonb;
  msg jsonb;
BEGIN
  IF TG_LEVEL = 'STATEMENT' OR TG_NARGS = 0 THEN
    PERFORM pg_notify('tenantctl_changes', jsonb_build_object(
      't', TG_TABLE_NAME,
      'op', CASE WHEN TG_OP = 'TRUNCATE' THEN 'TRUNCATE' ELSE 'CHANGE' END,
      'ts', floor(extract(epoch FROM transaction_timestamp()) * 1000))::text);
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
  msg := jsonb_build_object(
    't', TG_TABLE_NAME,
    'op', TG_OP,
    'id', r ->> TG_ARGV[0],
    'at', r ->> 'updated_at',
    'ts', floor(extract(epoch FROM clock_timestamp()) * 1000));
  IF TG_OP = 'UPDATE' THEN
    o := to_jsonb(OLD);
    IF (o ->> TG_ARGV[0]) IS DISTINCT FROM (r ->> TG_ARGV[0]) THEN
      msg := msg || jsonb_build_object('old_id', o ->> TG_ARGV[0]);
    END IF;
  END IF;
  PERFORM pg_notify('tenantctl_changes', msg::text);
  RETURN NULL;
END
$tenantctl$;

-- A tenants row: every key family of that tenant.
DROP TRIGGER IF EXISTS tenantctl_watch ON tenants;
CREATE TRIGGER tenantctl_watch AFTER INSERT OR UPDATE OR DELETE ON tenants
  FOR EACH ROW EXECUTE FUNCTION tenantctl_notify_change('id');
DROP TRIGGER IF EXISTS tenantctl_watch_truncate ON tenants;
CREATE TRIGGER tenantctl_watch_truncate AFTER TRUNCATE ON tenants
  FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_notify_change();

-- A subscription or one of its overrides: permissions:<business>.
DROP TRIGGER IF EXISTS tenantctl_watch ON business_subscriptions;
CREATE TRIGGER tenantctl_watch AFTER INSERT OR UPDATE OR DELETE ON business_subscriptions
  FOR EACH ROW EXECUTE FUNCTION tenantctl_notify_change('business_id');
DROP TRIGGER IF EXISTS tenantctl_watch_truncate ON business_subscriptions;
CREATE TRIGGER tenantctl_watch_truncate AFTER TRUNCATE ON business_subscriptions
  FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_notify_change();

DROP TRIGGER IF EXISTS tenantctl_watch ON business_feature_overrides;
CREATE TRIGGER tenantctl_watch AFTER INSERT OR UPDATE OR DELETE ON business_feature_overrides
  FOR EACH ROW EXECUTE FUNCTION tenantctl_notify_change('business_id');
DROP TRIGGER IF EXISTS tenantctl_watch_truncate ON business_feature_overrides;
CREATE TRIGGER tenantctl_watch_truncate AFTER TRUNCATE ON business_feature_overrides
  FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_notify_change();

-- The catalogue (features, tiers): every permissions: entry.
DROP TRIGGER IF EXISTS tenantctl_watch ON permission_features;
CREATE TRIGGER tenantctl_watch AFTER INSERT OR UPDATE OR DELETE ON permission_features
  FOR EACH ROW EXECUTE FUNCTION tenantctl_notify_change();
DROP TRIGGER IF EXISTS tenantctl_watch_truncate ON permission_features;
CREATE TRIGGER tenantctl_watch_truncate AFTER TRUNCATE ON permission_features
  FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_notify_change();

DROP TRIGGER IF EXISTS tenantctl_watch ON permission_tiers;
CREATE TRIGGER tenantctl_watch AFTER INSERT OR UPDATE OR DELETE ON permission_tiers
  FOR EACH ROW EXECUTE FUNCTION tenantctl_notify_change();
DROP TRIGGER IF EXISTS tenantctl_watch_truncate ON permission_tiers;
CREATE TRIGGER tenantctl_watch_truncate AFTER TRUNCATE ON permission_tiers
  FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_notify_change();
