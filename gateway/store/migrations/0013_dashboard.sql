-- The console's Beranda (spec/operations.md "Support console"): what each gateway instance's ISO 8583 listener
-- holds right now, and the indexes that keep the dashboard's reads bounded on a day of a million payments
-- (docs/performance.md "Console dashboard").

-- Instances share only PostgreSQL, so each `gateway serve` publishes a snapshot of its open connections every
-- [iso8583] snapshot_interval_s, replacing its own rows in one transaction, and deletes them at shutdown. Not
-- history: a snapshot is replaced whole, so the runtime role may update and delete these two tables (and
-- nothing else it could not before). An instance that stops without deleting (SIGKILL, a lost host) leaves
-- rows whose updated_at ages: the dashboard marks them stale after three of the instance's intervals, and a
-- live instance purges them after an hour (gateway/store/dashboard.py).
CREATE TABLE gateway_instances (
    instance            text PRIMARY KEY CHECK (length(instance) BETWEEN 1 AND 200),  -- host:pid@start time
    started_at          timestamptz NOT NULL,
    snapshot_interval_s integer NOT NULL CHECK (snapshot_interval_s BETWEEN 1 AND 3600),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE iso_connections (
    instance        text NOT NULL REFERENCES gateway_instances (instance) ON DELETE CASCADE,
    connection_id   text NOT NULL CHECK (length(connection_id) BETWEEN 1 AND 64),
    bank_code       text NOT NULL CHECK (length(bank_code) BETWEEN 1 AND 11),
    peer            text NOT NULL CHECK (length(peer) <= 200),   -- as the message log writes it
    connected_at    timestamptz NOT NULL,
    signed_on       boolean NOT NULL,
    last_message_at timestamptz NOT NULL,                         -- last frame, keep-alive or answer
    in_flight       integer NOT NULL CHECK (in_flight >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, connection_id)
);

-- The runtime's privileges: whatever the previous definition of gw_grant_runtime granted (0007, or a later
-- migration's), then the snapshot tables' own. Wrapping the previous function rather than copying its body
-- keeps another migration's additions to the list.
ALTER FUNCTION gw_grant_runtime() RENAME TO gw_grant_runtime_before_0013;
CREATE FUNCTION gw_grant_runtime() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gw_grant_runtime_before_0013();
    EXECUTE 'GRANT UPDATE, DELETE ON gateway_instances TO gateway_runtime';
    EXECUTE 'GRANT DELETE ON iso_connections TO gateway_runtime';
END $$;

-- Today's totals per bank and channel: an index-only scan of the date's entries, already in group order
-- (bank, channel). It replaces payments_date_bank (0001), whose queries it serves as well: the payment path
-- keeps the same number of indexes to write.
CREATE INDEX payments_date_bank_channel ON payments (business_date, bank_code, channel) INCLUDE (total);
DROP INDEX payments_date_bank;

-- An index-only scan needs the visibility map set on today's pages. Autovacuum's default trigger for an
-- append-only table (20 % of its rows inserted) fires weeks apart on a table holding years of payments, so
-- a busy day's rows would stay unvisited and each be fetched from the heap: vacuum every 50,000 inserts
-- instead (an append-only vacuum visits only the pages written since the last one).
ALTER TABLE payments SET (autovacuum_vacuum_insert_threshold = 50000, autovacuum_vacuum_insert_scale_factor = 0);

-- Today's reversals per bank and channel: a reversal's 'bank' ledger entry carries its payment's business
-- date (a trigger of 0008 checks it), so the date's reversals are a small range of this partial index
-- rather than a probe of `reversals` for each of the date's payments.
CREATE INDEX ledger_reversals ON ledger_entries (business_date) WHERE reversal_id IS NOT NULL AND account = 'bank';

-- The last hour's answers by response code: the answers' own range of each month partition, with what the
-- count groups by (an index-only scan where the partition's pages are all-visible).
CREATE INDEX message_log_answers ON message_log (logged_at) INCLUDE (channel, response_code)
    WHERE direction = 'out' AND response_code IS NOT NULL;
