-- History guards (spec/operations.md "The database", "Records kept"): the database keeps its history by
-- itself, whoever is connected. The runtime role (0007) cannot TRUNCATE, run DDL or DELETE history at all;
-- these triggers hold for every role, the owner included (short of disabling them, which only the owner
-- can), and keep the rules that privileges cannot express: money only on an open business date, a closed
-- date stays closed, an active mark ends only by a reversal, message keys and quotes leave only through
-- the retention purge.
--
-- Refusals: insufficient_privilege for an operation a table never allows (TRUNCATE, UPDATE or DELETE of
-- history); check_violation, with a constraint name, for a row that breaks a rule of the data.

-- TRUNCATE skips every row trigger: refused on each table of history (audit_log has its own since 0005).
CREATE FUNCTION gw_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % keeps history: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['payments', 'reversals', 'tombstones', 'ledger_entries', 'quotes', 'proofs',
                             'message_keys', 'active_payments', 'business_dates', 'transaction_notes',
                             'recon_items', 'recon_reports'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION gw_no_truncate()',
                       t || '_no_truncate', t);
    END LOOP;
END $$;

-- Money is booked only on an open business date. Each date's row is locked FOR KEY SHARE, as the payment
-- path does (store/bills.py), so a close (FOR UPDATE) cannot slip between this check and the commit; in the
-- normal paths the transaction holds that lock already and the check costs one index lookup per date.
CREATE FUNCTION gw_require_open_dates(days date[], what text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d date;
    s text;
BEGIN
    FOREACH d IN ARRAY days LOOP
        SELECT state INTO s FROM business_dates WHERE business_date = d FOR KEY SHARE;
        IF s IS DISTINCT FROM 'open' THEN
            RAISE EXCEPTION '% refused: business date % is %; money is booked only on an open business date',
                            what, d, coalesce(s, 'unknown')
                USING ERRCODE = 'check_violation', CONSTRAINT = 'money_on_open_date';
        END IF;
    END LOOP;
END $$;

-- Statement-level AFTER triggers: they see every row of the statement, including the rows the same
-- data-modifying CTE wrote to other tables (the payment of a ledger entry, the reversal of an active mark).
CREATE FUNCTION gw_payments_open_date() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gw_require_open_dates(ARRAY(SELECT DISTINCT business_date FROM new_rows ORDER BY 1), 'payment');
    RETURN NULL;
END $$;
CREATE TRIGGER payments_open_date AFTER INSERT ON payments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gw_payments_open_date();

-- A reversal takes its money out of the payment's business date, whatever date it arrived on: that date
-- must still be open (a reversal received on a later date of an open date's payment is legal).
CREATE FUNCTION gw_reversals_open_date() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gw_require_open_dates(ARRAY(SELECT DISTINCT p.business_date FROM new_rows n
                                        JOIN payments p ON p.id = n.payment_id ORDER BY 1), 'reversal');
    RETURN NULL;
END $$;
CREATE TRIGGER reversals_open_date AFTER INSERT ON reversals REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gw_reversals_open_date();

-- Ledger entries carry their payment's business date (0001), a reversal's entries name that reversal's
-- payment, and the date must be open.
CREATE FUNCTION gw_ledger_open_date() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.payment_id, n.business_date, p.business_date AS payment_date INTO bad
    FROM new_rows n JOIN payments p ON p.id = n.payment_id LEFT JOIN reversals r ON r.id = n.reversal_id
    WHERE n.business_date <> p.business_date OR r.payment_id <> n.payment_id
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry refused: entries of payment % belong to its business date % and its own '
                        'reversal (got date %)', bad.payment_id, bad.payment_date, bad.business_date
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entry_of_its_payment';
    END IF;
    PERFORM gw_require_open_dates(ARRAY(SELECT DISTINCT business_date FROM new_rows ORDER BY 1), 'ledger entry');
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_open_date AFTER INSERT ON ledger_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gw_ledger_open_date();

-- Business dates: a closed date is final (state, totals, times, operator), and no date row is ever deleted.
-- 'closing' may go back to 'open': that is how a close that found a mismatch leaves the date.
CREATE FUNCTION gw_business_dates_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.business_date <> OLD.business_date THEN
        RAISE EXCEPTION 'business date % cannot be renamed', OLD.business_date
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.state = 'closed' AND NEW IS DISTINCT FROM OLD THEN
        RAISE EXCEPTION 'business date % is closed: reopening it or changing its totals is refused',
                        OLD.business_date
            USING ERRCODE = 'check_violation', CONSTRAINT = 'closed_date_is_final';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER business_dates_closed_final BEFORE UPDATE ON business_dates
    FOR EACH ROW EXECUTE FUNCTION gw_business_dates_update();
CREATE TRIGGER business_dates_no_delete BEFORE DELETE ON business_dates
    FOR EACH STATEMENT EXECUTE FUNCTION gw_append_only();

-- Active marks: written with their payment, ended only by that payment's reversal (the reversal CTE of
-- store/money.py inserts the reversal and deletes the mark in one statement; the AFTER trigger sees both),
-- never updated.
CREATE FUNCTION gw_active_payments_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT n.payment_id INTO bad FROM new_rows n LEFT JOIN payments p ON p.id = n.payment_id
    WHERE p.bill_id IS DISTINCT FROM n.bill_id
       OR EXISTS (SELECT 1 FROM reversals r WHERE r.payment_id = n.payment_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'active mark of payment % refused: it must name the payment''s own bill and the '
                        'payment must not be reversed', bad
            USING ERRCODE = 'check_violation', CONSTRAINT = 'active_mark_of_unreversed_payment';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER active_payments_insert AFTER INSERT ON active_payments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gw_active_payments_insert();

CREATE FUNCTION gw_active_payments_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT o.payment_id INTO bad FROM old_rows o
    WHERE NOT EXISTS (SELECT 1 FROM reversals r WHERE r.payment_id = o.payment_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'deleting the active mark of payment % refused: only a reversal of the payment ends it', bad
            USING ERRCODE = 'check_violation', CONSTRAINT = 'active_mark_ends_by_reversal';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER active_payments_delete AFTER DELETE ON active_payments REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gw_active_payments_delete();
CREATE TRIGGER active_payments_no_update BEFORE UPDATE ON active_payments
    FOR EACH STATEMENT EXECUTE FUNCTION gw_append_only();

-- Message keys and quotes: never updated; deleted only by the retention purge below, which runs as the
-- owner (SECURITY DEFINER) with gateway.retention set for its own duration. Both conditions are needed: the
-- runtime role can set the variable but is not the owner, and the owner's ad hoc DELETE has not set it.
CREATE FUNCTION gw_kept_until_retention() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('gateway.retention', true) = 'on'
       AND current_user = (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'table % is kept until its retention purge (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER quotes_append_only ON quotes;
CREATE TRIGGER quotes_append_only BEFORE UPDATE OR DELETE ON quotes
    FOR EACH STATEMENT EXECUTE FUNCTION gw_kept_until_retention();
CREATE TRIGGER message_keys_append_only BEFORE UPDATE OR DELETE ON message_keys
    FOR EACH STATEMENT EXECUTE FUNCTION gw_kept_until_retention();

-- The purge walks expired quotes in (expires_at, id) order, resuming where the previous batch stopped, so
-- the quotes kept for their payments are passed over once per run, not once per batch.
CREATE INDEX quotes_expiry ON quotes (expires_at, id);

-- Retention purges (gateway/store/retention.py calls them from housekeeping, on the runtime pool). Each
-- call deletes one bounded batch in the caller's transaction; the caller loops, one transaction per batch,
-- so no purge holds its locks long. The ages are fixed here, not passed in: the runtime role may run a
-- purge, never shorten what is kept. Rows locked by a transaction in flight are skipped until next time.
CREATE FUNCTION gw_retention_batch(batch integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT least(greatest(coalesce(batch, 1), 1), 10000)
$$;

-- Message keys: 40 days (the contract keeps them at least 35).
CREATE FUNCTION gw_purge_message_keys(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET gateway.retention = 'on' AS $$
DECLARE
    n integer;
BEGIN
    WITH old AS (SELECT id FROM message_keys WHERE created_at < now() - interval '40 days'
                 ORDER BY created_at LIMIT gw_retention_batch(batch) FOR UPDATE SKIP LOCKED)
    DELETE FROM message_keys k USING old WHERE k.id = old.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Quotes expired more than a day ago that no payment used (a payment keeps its quote forever). Returns the
-- rows deleted and the position of the last quote looked at (NULL when none was left after `after`).
CREATE FUNCTION gw_purge_quotes(batch integer, after_expires timestamptz, after_id bigint,
                                OUT purged integer, OUT last_expires timestamptz, OUT last_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET gateway.retention = 'on' AS $$
DECLARE
    cutoff timestamptz := now() - interval '1 day';
    start_expires timestamptz := coalesce(after_expires, '-infinity');
    start_id bigint := coalesce(after_id, 0);
BEGIN
    purged := 0;
    SELECT c.expires_at, c.id INTO last_expires, last_id
    FROM (SELECT expires_at, id FROM quotes
          WHERE expires_at < cutoff AND (expires_at, id) > (start_expires, start_id)
          ORDER BY expires_at, id LIMIT gw_retention_batch(batch)) c
    ORDER BY c.expires_at DESC, c.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    WITH doomed AS (
        SELECT q.id FROM quotes q
        WHERE q.expires_at < cutoff AND (q.expires_at, q.id) > (start_expires, start_id)
          AND (q.expires_at, q.id) <= (last_expires, last_id)
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.quote_id = q.id)
        FOR UPDATE OF q SKIP LOCKED)
    DELETE FROM quotes q USING doomed WHERE q.id = doomed.id;
    GET DIAGNOSTICS purged = ROW_COUNT;
END $$;

-- Nonces of signed bank requests: the replay window is minutes; 15 minutes covers it.
CREATE FUNCTION gw_purge_http_nonces(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH old AS (SELECT bank_code, nonce FROM http_nonces WHERE seen_at < now() - interval '15 minutes'
                 LIMIT gw_retention_batch(batch) FOR UPDATE SKIP LOCKED)
    DELETE FROM http_nonces h USING old WHERE h.bank_code = old.bank_code AND h.nonce = old.nonce;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Staff sessions expired or revoked more than a day ago.
CREATE FUNCTION gw_purge_staff_sessions(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH old AS (SELECT id FROM staff_sessions
                 WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'
                 LIMIT gw_retention_batch(batch) FOR UPDATE SKIP LOCKED)
    DELETE FROM staff_sessions s USING old WHERE s.id = old.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Failed staff sign-ins older than a day (the counting window is minutes). The table comes with a later
-- migration (0009); until it exists there is nothing to purge.
CREATE FUNCTION gw_purge_signin_failures(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF to_regclass('public.signin_failures') IS NULL THEN
        RETURN 0;
    END IF;
    WITH old AS (SELECT id FROM signin_failures WHERE at < now() - interval '1 day'
                 LIMIT gw_retention_batch(batch) FOR UPDATE SKIP LOCKED)
    DELETE FROM signin_failures f USING old WHERE f.id = old.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The message-log functions run as the owner since 0007, with the caller's arguments: the runtime role may
-- keep the partitions coming and drop old months, never drop a month younger than 400 days (the contract's
-- retention) nor create partitions without bound. Same bodies as 0002, with those bounds.
CREATE OR REPLACE FUNCTION gw_message_log_partitions(start date, months integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first date := date_trunc('month', start)::date;
    created integer := 0;
    m date;
    name text;
BEGIN
    FOR i IN 0 .. least(months, 24) - 1 LOOP
        m := (first + make_interval(months => i))::date;
        name := format('message_log_%s', to_char(m, 'YYYYMM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF message_log FOR VALUES FROM (%L) TO (%L)',
                           name, m, (m + interval '1 month')::date);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION gw_message_log_retention(now_ts timestamptz, keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    dropped integer := 0;
    horizon timestamptz := least(now_ts, now()) - make_interval(days => greatest(keep_days, 400));
BEGIN
    FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'message_log'::regclass AND c.relname ~ '^message_log_[0-9]{6}$' LOOP
        IF (to_date(substr(r.relname, 13), 'YYYYMM') + interval '1 month') < horizon THEN
            EXECUTE format('DROP TABLE %I', r.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

-- Functions run with their owner's rights only for the gateway: PUBLIC may call none of them.
REVOKE ALL ON FUNCTION gw_purge_message_keys(integer), gw_purge_quotes(integer, timestamptz, bigint),
                       gw_purge_http_nonces(integer), gw_purge_staff_sessions(integer),
                       gw_purge_signin_failures(integer), gw_message_log_partitions(date, integer),
                       gw_message_log_retention(timestamptz, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gw_purge_message_keys(integer), gw_purge_quotes(integer, timestamptz, bigint),
                          gw_purge_http_nonces(integer), gw_purge_staff_sessions(integer),
                          gw_purge_signin_failures(integer), gw_message_log_partitions(date, integer),
                          gw_message_log_retention(timestamptz, integer)
    TO gateway_runtime;
