-- Surat Keterangan Lunas (spec/domain.md "Payment proof"): the signed certificate that a paid bill is paid,
-- issued by staff for a taxpayer whose receipt is lost. Each issue is a new document with its own number
-- (`SKL-` + the payment's NTPD + `-` + a 2-digit counter), kept as signed, never changed: the public check
-- finds it by number and code, and says `reversed` once its payment is reversed (read from `reversals`).
CREATE TABLE skl_certificates (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number          text NOT NULL UNIQUE CHECK (number ~ '^SKL-[0-9]{18}-[0-9]{2}$'),
    payment_id      bigint NOT NULL REFERENCES payments (id),
    counter         smallint NOT NULL CHECK (counter BETWEEN 1 AND 99),
    kid             text NOT NULL,
    document        jsonb NOT NULL,
    signature       text NOT NULL,
    validation_code char(16) NOT NULL,
    issued_by       text NOT NULL CHECK (length(issued_by) BETWEEN 1 AND 128),
    issued_at       timestamptz NOT NULL,
    UNIQUE (payment_id, counter),
    -- The number, the counter and the document agree with each other (the NTPD half is checked against the
    -- payment by the code that issues, which holds the payment row).
    CHECK (right(number, 2)::int = counter),
    CHECK (document ->> 'type' = 'skl' AND document ->> 'number' = number AND document ->> 'kid' = kid)
);
CREATE INDEX skl_certificates_payment ON skl_certificates (payment_id);
CREATE TRIGGER skl_certificates_append_only BEFORE UPDATE OR DELETE ON skl_certificates
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
CREATE TRIGGER skl_certificates_no_truncate BEFORE TRUNCATE ON skl_certificates
    FOR EACH STATEMENT EXECUTE FUNCTION gw_no_truncate();

-- The runtime role reads and appends certificates: gw_grant_runtime (0007), re-applied after this migration,
-- grants SELECT and INSERT on every table and nothing more, which is exactly what issuing and checking need.
