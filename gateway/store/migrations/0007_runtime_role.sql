-- The runtime role (spec/operations.md "[database]"): the gateway's pool acts as `gateway_runtime`, which
-- owns nothing and so can run no DDL, cannot TRUNCATE, cannot disable a trigger and cannot DELETE history.
-- The owner (the role that runs `db migrate`) keeps the schema. A separate login role for the runtime URL
-- is made a member: GRANT gateway_runtime TO app_user; with one URL the pool simply SETs the role.
DO $$
BEGIN
    CREATE ROLE gateway_runtime NOLOGIN;
EXCEPTION
    -- Roles are cluster-wide: another database's migration may have created it, even concurrently.
    WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- What the runtime may do, table by table. Re-applied after every migration run (gw_grant_runtime), so a
-- table added later is covered by editing this one list.
CREATE FUNCTION gw_grant_runtime() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO gateway_runtime';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gateway_runtime';
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition LOOP
        EXECUTE format('REVOKE ALL ON %I FROM gateway_runtime', t.relname);
        IF t.relname = 'schema_migrations' THEN
            EXECUTE format('GRANT SELECT ON %I TO gateway_runtime', t.relname);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT ON %I TO gateway_runtime', t.relname);
        END IF;
    END LOOP;
    -- State kept beside the append-only history, updated by the same transactions.
    EXECUTE 'GRANT UPDATE ON bills, business_dates, recon_items, recon_reports, staff_users, staff_tokens,'
            ' staff_sessions TO gateway_runtime';
    -- A reversal ends the active mark (a trigger checks that the reversal exists); nonces expire.
    EXECUTE 'GRANT DELETE ON active_payments, http_nonces TO gateway_runtime';
END $$;

-- Answers are replayed byte for byte (http-api.md "Idempotency"): json keeps the text as written, jsonb
-- would reorder the members of the stored answer.
ALTER TABLE message_keys ALTER COLUMN answer TYPE json USING answer::json;

-- Old quotes are purged (retention); the payments that used one keep pointing at it, and the purge must
-- find those without a scan of every payment.
CREATE INDEX payments_quote ON payments (quote_id) WHERE quote_id IS NOT NULL;

-- Housekeeping runs on the runtime pool but creates and drops message-log partitions (DDL): as the owner.
ALTER FUNCTION gw_message_log_partitions(date, integer) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION gw_message_log_retention(timestamptz, integer) SECURITY DEFINER SET search_path = public, pg_temp;
