-- The same rules, cheaper: "exactly N digits" written as a length and the absence of a non-digit instead of
-- the bounded repetition '^[0-9]{N}$', which PostgreSQL's regular expression engine expands into N states
-- and runs at about 2 µs per value (measured on 1,000,000 NOPs: 1.97 s against 0.56 s). The NOP check runs
-- for every bill an import inserts or rewrites and for every payment's and reversal's update of its bill;
-- the NTPD check for every payment. A char(N) value shorter than N is blank-padded, and both length() and
-- the cast to text the operator applies ignore the padding: '123' is refused as before, so is '12 34...'.
ALTER TABLE bills
    DROP CONSTRAINT bills_nop_check,
    ADD CONSTRAINT bills_nop_check CHECK (length(nop) = 18 AND nop !~ '[^0-9]'),
    DROP CONSTRAINT bills_nik_check,
    ADD CONSTRAINT bills_nik_check CHECK (length(nik) = 16 AND nik !~ '[^0-9]'),
    DROP CONSTRAINT bills_check1,
    ADD CONSTRAINT bills_check1
        CHECK (tax <> 'BPHTB' OR (valid_until IS NOT NULL AND length(bill_key) = 14 AND bill_key !~ '[^0-9]'));

ALTER TABLE payments
    DROP CONSTRAINT payments_ntpd_check,
    ADD CONSTRAINT payments_ntpd_check CHECK (length(ntpd) = 18 AND ntpd !~ '[^0-9]');
