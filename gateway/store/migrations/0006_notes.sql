-- Staff notes on a transaction (spec/http-api.md: support may annotate). Append-only, like the audit log.
CREATE TABLE transaction_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id  bigint NOT NULL REFERENCES payments (id),
    author      text   NOT NULL,
    note        text   NOT NULL CHECK (length(note) BETWEEN 1 AND 2000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transaction_notes_payment ON transaction_notes (payment_id);
CREATE TRIGGER transaction_notes_append_only BEFORE UPDATE OR DELETE ON transaction_notes
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
