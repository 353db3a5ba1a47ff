-- The message log (spec/operations.md "Records kept"): every ISO 8583 message and HTTP request/answer of
-- the bank routes, masked, with connection, bank, keys, RC and timings. Kept 400 days; partitioned by
-- month so old months drop cheaply.
CREATE TABLE message_log (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    logged_at      timestamptz NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('iso', 'http')),
    direction      text NOT NULL CHECK (direction IN ('in', 'out')),
    event          text NOT NULL DEFAULT 'message',   -- message, format_error, security, dropped …
    bank_code      text,
    connection_id  text,
    peer           text,
    mti            text,
    processing_code text,
    stan           text,
    transmitted    text,
    rrn            text,
    response_code  text,
    bill_id        text,
    ntpd           text,
    message_key    text,
    elapsed_ms     real,
    fields         jsonb,
    detail         text,
    PRIMARY KEY (id, logged_at)
) PARTITION BY RANGE (logged_at);

-- Rows whose month partition does not exist yet still land somewhere: never lose a log row.
CREATE TABLE message_log_default PARTITION OF message_log DEFAULT;

CREATE INDEX message_log_stan ON message_log (bank_code, stan, transmitted);
CREATE INDEX message_log_rrn ON message_log (rrn) WHERE rrn IS NOT NULL;
CREATE INDEX message_log_bill ON message_log (bill_id) WHERE bill_id IS NOT NULL;
CREATE INDEX message_log_ntpd ON message_log (ntpd) WHERE ntpd IS NOT NULL;
CREATE INDEX message_log_time ON message_log (logged_at);

-- Creates the monthly partitions from the month of `start` for `months` months (idempotent).
CREATE FUNCTION gw_message_log_partitions(start date, months integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', start)::date;
    created integer := 0;
    m date;
    name text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
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

-- Drops month partitions wholly older than `keep_days` (400 by the retention rule).
CREATE FUNCTION gw_message_log_retention(now_ts timestamptz, keep_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped integer := 0;
BEGIN
    FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'message_log'::regclass AND c.relname ~ '^message_log_[0-9]{6}$' LOOP
        IF (to_date(substr(r.relname, 13), 'YYYYMM') + interval '1 month') < now_ts - make_interval(days => keep_days) THEN
            EXECUTE format('DROP TABLE %I', r.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

SELECT gw_message_log_partitions(current_date - 31, 4);
