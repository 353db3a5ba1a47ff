-- Unmatched reversals (tombstones) in support's work queue (spec/operations.md "Support console"): a
-- tombstone is history and never changes, so its resolution is a row of its own, at most one per tombstone,
-- written with its audit row; a resolved tombstone leaves the queue. Append-only, like the notes.
CREATE TABLE tombstone_resolutions (
    tombstone_id    bigint PRIMARY KEY REFERENCES tombstones (id),
    resolution      text   NOT NULL CHECK (resolution IN ('accepted', 'corrected', 'escalated')),
    resolution_note text   NOT NULL CHECK (length(resolution_note) BETWEEN 1 AND 2000),
    resolved_by     text   NOT NULL,
    resolved_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER tombstone_resolutions_append_only BEFORE UPDATE OR DELETE ON tombstone_resolutions
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
CREATE TRIGGER tombstone_resolutions_no_truncate BEFORE TRUNCATE ON tombstone_resolutions
    FOR EACH STATEMENT EXECUTE FUNCTION gw_no_truncate();
