-- Settlement and reconciliation (spec/operations.md "Settlement", "Reconciliation report").
-- The frozen totals of a closed date live in business_dates.totals (0001); this adds the records of
-- bank reconciliation: one report per import, and the open items support staff resolve with a note.

CREATE TABLE recon_reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date date   NOT NULL,
    bank_code     text   NOT NULL,
    file_name     text   NOT NULL,
    file_sha256   bytea  NOT NULL,
    counts        jsonb  NOT NULL,
    report_csv    text   NOT NULL,
    new_items     integer NOT NULL DEFAULT 0,
    imported_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_reports_date_bank ON recon_reports (business_date, bank_code);

-- An item is keyed by what it is about (the payment's NTPD, or the bank row's identity), so importing
-- the same file again opens no duplicate. Items are resolved, never deleted; payments are never edited.
CREATE TABLE recon_items (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date   date   NOT NULL,
    bank_code       text   NOT NULL,
    class           text   NOT NULL CHECK (class IN ('amount_mismatch', 'status_mismatch',
                                                     'missing_at_gateway', 'missing_at_bank')),
    item_key        text   NOT NULL,
    ntpd            text,
    tax             text,
    bill_id         text,
    gateway_amount  bigint,
    bank_amount     bigint,
    gateway_status  text,
    bank_status     text,
    line            integer,
    report_id       bigint NOT NULL REFERENCES recon_reports (id),
    status          text   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution      text   CHECK (resolution IN ('accepted', 'corrected', 'escalated')),
    resolution_note text,
    resolved_by     text,
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (business_date, bank_code, class, item_key),
    CHECK (status = 'open' OR (resolution IS NOT NULL AND resolution_note IS NOT NULL AND resolved_at IS NOT NULL))
);
CREATE INDEX recon_items_open ON recon_items (business_date, bank_code) WHERE status = 'open';
