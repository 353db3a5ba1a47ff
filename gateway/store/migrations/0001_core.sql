-- Core schema: bills, quotes, payments, reversals, tombstones, ledger, message keys, business dates.
-- The database enforces the money invariants itself (spec/domain.md), so a bug in Python cannot double-post.

-- Append-only guard: rows of money are never updated or deleted (spec/operations.md "The database").
CREATE FUNCTION gw_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- One table for both taxes: a payment references one bill whatever its tax, so "at most one active
-- payment per bill" is one index. BPHTB-only columns are NULL for PBB rows and vice versa.
CREATE TABLE bills (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tax               text    NOT NULL CHECK (tax IN ('PBB', 'BPHTB')),
    -- PBB: NOP + tax year (22 digits); BPHTB: SSPD registration number (14 digits).
    bill_key          text    NOT NULL,
    nop               char(18) NOT NULL CHECK (nop ~ '^[0-9]{18}$'),
    tax_year          smallint NOT NULL CHECK (tax_year BETWEEN 1000 AND 9999),
    taxpayer_name     text    NOT NULL,
    object_address    text    NOT NULL DEFAULT '',
    kelurahan         text    NOT NULL DEFAULT '',
    kecamatan         text    NOT NULL DEFAULT '',
    land_area         bigint  NOT NULL DEFAULT 0 CHECK (land_area BETWEEN 0 AND 999999999999),
    building_area     bigint  NOT NULL DEFAULT 0 CHECK (building_area BETWEEN 0 AND 999999999999),
    -- Amounts fit the 12-digit ISO 8583 slots (field 4, field 62): a bill the channel cannot show is refused
    -- at import, not discovered after a payment has committed.
    principal         bigint  NOT NULL CHECK (principal BETWEEN 0 AND 999999999999),
    -- PBB: always 0 (the gateway computes the penalty); BPHTB: as imported (SKPDKB/STPD).
    penalty           bigint  NOT NULL DEFAULT 0 CHECK (penalty BETWEEN 0 AND 999999999999),
    due_date          date,
    valid_until       date,
    nik               char(16) CHECK (nik ~ '^[0-9]{16}$'),
    acquisition_type  smallint CHECK (acquisition_type BETWEEN 0 AND 99),
    acquisition_value bigint  CHECK (acquisition_value BETWEEN 0 AND 999999999999999),
    ppat_name         text,
    status            text    NOT NULL CHECK (status IN ('unpaid', 'paid', 'cancelled')),
    imported_at       timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tax, bill_key),
    CHECK (tax <> 'PBB' OR (due_date IS NOT NULL AND penalty = 0 AND bill_key = nop || lpad(tax_year::text, 4, '0'))),
    CHECK (tax <> 'BPHTB' OR (valid_until IS NOT NULL AND bill_key ~ '^[0-9]{14}$'))
);
CREATE INDEX bills_pbb_nop ON bills (nop, tax_year) WHERE tax = 'PBB';

-- Business dates: the row is the lock that orders payments against a close (settlement). A payment
-- holds FOR KEY SHARE on its date's row; closing takes FOR UPDATE (a plain UPDATE of state would take
-- only FOR NO KEY UPDATE, which does not wait for the payments in flight).
CREATE TABLE business_dates (
    business_date date PRIMARY KEY,
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closing', 'closed')),
    closing_at    timestamptz,
    closed_at     timestamptz,
    closed_by     text,
    totals        jsonb
);

-- Message keys: the exactly-once memory of every financial request, for both channels.
-- ISO 8583: key = STAN:field7:class; HTTP: the Idempotency-Key. Scoped per channel and bank.
CREATE TABLE message_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel      text NOT NULL CHECK (channel IN ('iso', 'http')),
    bank_code    text NOT NULL,
    key          text NOT NULL,
    content_hash bytea NOT NULL,
    operation    text NOT NULL,
    answer       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, bank_code, key)
);
CREATE INDEX message_keys_created ON message_keys (created_at);

-- Quotes: what an inquiry showed a bank; payable for quote_ttl (spec/domain.md "Quotes").
CREATE TABLE quotes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bill_id     bigint NOT NULL REFERENCES bills (id),
    bank_code   text   NOT NULL,
    principal   bigint NOT NULL CHECK (principal >= 0),
    penalty     bigint NOT NULL CHECK (penalty >= 0),
    total       bigint NOT NULL CHECK (total = principal + penalty),
    months_late smallint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at)
);
CREATE INDEX quotes_lookup ON quotes (bill_id, bank_code, expires_at);
CREATE TRIGGER quotes_append_only BEFORE UPDATE OR DELETE ON quotes
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();

CREATE SEQUENCE ntpd_serial MINVALUE 1 MAXVALUE 999999999 NO CYCLE;

-- Payments: immutable once written. Whether a payment is still active is derived from reversals and
-- kept in active_payments by the same transaction.
CREATE TABLE payments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ntpd            char(18) NOT NULL UNIQUE CHECK (ntpd ~ '^[0-9]{18}$'),
    bill_id         bigint NOT NULL REFERENCES bills (id),
    tax             text   NOT NULL CHECK (tax IN ('PBB', 'BPHTB')),
    bank_code       text   NOT NULL,
    channel         text   NOT NULL,
    via             text   NOT NULL CHECK (via IN ('iso', 'http')),
    ntb             text   NOT NULL CHECK (length(ntb) <= 32),
    terminal_id     text,
    rrn             text,
    stan            char(6),
    transmitted     char(10),
    principal       bigint NOT NULL CHECK (principal >= 0),
    penalty         bigint NOT NULL CHECK (penalty >= 0),
    total           bigint NOT NULL CHECK (total = principal + penalty AND total > 0),
    months_late     smallint NOT NULL DEFAULT 0,
    quote_id        bigint REFERENCES quotes (id),
    business_date   date   NOT NULL REFERENCES business_dates (business_date),
    paid_at         timestamptz NOT NULL,
    CHECK (substr(ntpd, 7, 1) = CASE tax WHEN 'PBB' THEN '1' ELSE '2' END)
);
CREATE INDEX payments_bill ON payments (bill_id);
CREATE INDEX payments_date_bank ON payments (business_date, bank_code);
CREATE UNIQUE INDEX payments_iso_origin ON payments (bank_code, stan, transmitted) WHERE stan IS NOT NULL;
CREATE TRIGGER payments_append_only BEFORE UPDATE OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();

-- Invariant 1: at most one active payment per bill, whatever channel, bank or instance.
CREATE TABLE active_payments (
    bill_id    bigint PRIMARY KEY REFERENCES bills (id),
    payment_id bigint NOT NULL UNIQUE REFERENCES payments (id)
);

-- Invariant 4: a reversal undoes exactly one payment, once.
CREATE TABLE reversals (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id      bigint NOT NULL UNIQUE REFERENCES payments (id),
    bank_code       text   NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    via             text   NOT NULL CHECK (via IN ('iso', 'http')),
    reason          text,
    -- The business date the reversal message arrived on; the money belongs to the payment's date.
    received_business_date date NOT NULL,
    reversed_at     timestamptz NOT NULL
);
CREATE TRIGGER reversals_append_only BEFORE UPDATE OR DELETE ON reversals
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();

-- Invariant 5: a reversal that names an unknown original wins; the original is refused when it comes.
CREATE TABLE tombstones (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_code       text    NOT NULL,
    stan            char(6) NOT NULL,
    transmitted     char(10) NOT NULL,
    forwarding      text    NOT NULL DEFAULT '',
    amount          bigint  NOT NULL,
    business_date   date    NOT NULL,
    created_at      timestamptz NOT NULL,
    UNIQUE (bank_code, stan, transmitted)
);
CREATE TRIGGER tombstones_append_only BEFORE UPDATE OR DELETE ON tombstones
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();

-- Double-entry ledger. Each payment writes: bank +total, principal -principal, penalty -penalty (sums to 0);
-- a reversal writes the mirror. Entries carry the payment's business date: a reversal takes money out of
-- the date the payment was booked on (settlement counts reversals of that date's payments).
CREATE TABLE ledger_entries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date date   NOT NULL,
    bank_code     text   NOT NULL,
    tax           text   NOT NULL CHECK (tax IN ('PBB', 'BPHTB')),
    account       text   NOT NULL CHECK (account IN ('bank', 'principal', 'penalty')),
    amount        bigint NOT NULL,
    payment_id    bigint NOT NULL REFERENCES payments (id),
    reversal_id   bigint REFERENCES reversals (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_date_bank ON ledger_entries (business_date, bank_code, tax);
CREATE INDEX ledger_payment ON ledger_entries (payment_id);
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
