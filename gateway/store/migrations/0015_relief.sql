-- Relief programs (spec/domain.md "Relief programs"): a quote and a payment keep the reduction they were
-- given beside the amounts to pay, and the program it came from (id, name, decree as configured then), so a
-- payment of a live quote is booked, proved, printed and reported with that breakdown after the window has
-- closed or the program has left the configuration. principal and penalty stay the amounts paid: the ledger
-- and every existing sum are unchanged; the reductions are never negative money.
ALTER TABLE quotes
    ADD COLUMN discount       bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    ADD COLUMN penalty_waived bigint NOT NULL DEFAULT 0 CHECK (penalty_waived >= 0),
    ADD COLUMN relief_id      text,
    ADD COLUMN relief_name    text,
    ADD COLUMN relief_decree  text,
    ADD CONSTRAINT quotes_relief_named CHECK (relief_id IS NOT NULL OR (discount = 0 AND penalty_waived = 0));

ALTER TABLE payments
    ADD COLUMN discount       bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    ADD COLUMN penalty_waived bigint NOT NULL DEFAULT 0 CHECK (penalty_waived >= 0),
    ADD COLUMN relief_id      text,
    ADD COLUMN relief_name    text,
    ADD COLUMN relief_decree  text,
    ADD CONSTRAINT payments_relief_named CHECK (relief_id IS NOT NULL OR (discount = 0 AND penalty_waived = 0));

-- A program may reduce a bill to nothing (a 100 % discount with no penalty, or with the penalty waived too):
-- the bank still posts it, for Rp 0, so that the bill is settled, proved and reported like any other. Only a
-- payment reduced by a program may be zero; a reversal of it returns zero.
ALTER TABLE payments DROP CONSTRAINT payments_check;  -- total = principal + penalty AND total > 0 (0001)
ALTER TABLE payments ADD CONSTRAINT payments_total_check
    CHECK (total = principal + penalty AND (total > 0 OR relief_id IS NOT NULL));
ALTER TABLE reversals DROP CONSTRAINT reversals_amount_check;
ALTER TABLE reversals ADD CONSTRAINT reversals_amount_check CHECK (amount >= 0);
