-- A payment's posting in one statement (store/money.post_payment): this guard runs first inside it and
-- takes, until the statement commits, the locks the transaction path takes (payment/posting.py): the lock on
-- the original (bank, STAN, field 7, year) that a reversal takes too, the business date's row FOR KEY SHARE
-- (a close waits for the payment), and the bill's row FOR NO KEY UPDATE. It never waits for one: a lock held
-- by anybody else (a payment or reversal of the same bill or original, a close, an import) makes it answer
-- false, and the transaction path waits, bounded, where the client's end of a wait is a rollback. An
-- autocommitted statement that waited could commit after its client had given up and answered 91.
-- A volatile PL/pgSQL function reads with a new snapshot at each statement, so the tombstone check after the
-- lock sees a reversal committed before it. True when the payment may be written: no tombstone, the date
-- open, and the bill still the unpaid version the caller read (same updated_at), so the amount it assessed
-- and the proof it signed still hold. False: the caller takes the transaction path, which decides.
CREATE FUNCTION gw_payment_guard(p_origin_lock text, p_bank text, p_stan text, p_transmitted text,
                                 p_transmitted_year smallint, p_day date, p_bill bigint, p_seen timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF p_origin_lock IS NOT NULL THEN
        IF NOT pg_try_advisory_xact_lock(hashtextextended(p_origin_lock, 7)) THEN
            RETURN false;
        END IF;
        IF EXISTS (SELECT 1 FROM tombstones t WHERE t.bank_code = p_bank AND t.stan = p_stan
                   AND t.transmitted = p_transmitted AND t.transmitted_year = p_transmitted_year) THEN
            RETURN false;
        END IF;
    END IF;
    PERFORM 1 FROM business_dates d WHERE d.business_date = p_day AND d.state = 'open'
        FOR KEY SHARE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM bills b WHERE b.id = p_bill AND b.status = 'unpaid' AND b.updated_at = p_seen
        FOR NO KEY UPDATE SKIP LOCKED;
    RETURN FOUND;
END $$;
