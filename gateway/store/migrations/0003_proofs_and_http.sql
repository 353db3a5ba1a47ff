-- Payment proofs (spec/domain.md "Payment proof"): the signed document of every approved payment, written
-- by the payment's own transaction. Kept as signed: the taxpayer's name on the proof is the one at payment
-- time, whatever a later import says.
CREATE TABLE proofs (
    payment_id      bigint PRIMARY KEY REFERENCES payments (id),
    ntpd            char(18) NOT NULL UNIQUE,
    kid             text NOT NULL,
    document        jsonb NOT NULL,
    signature       text NOT NULL,
    validation_code char(16) NOT NULL
);
CREATE TRIGGER proofs_append_only BEFORE UPDATE OR DELETE ON proofs
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();

-- Nonces of signed bank HTTP requests, for replay refusal within the timestamp window (shared by every
-- gateway instance). Old rows are deleted by housekeeping.
CREATE TABLE http_nonces (
    bank_code text NOT NULL,
    nonce     text NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank_code, nonce)
);
CREATE INDEX http_nonces_seen ON http_nonces (seen_at);
