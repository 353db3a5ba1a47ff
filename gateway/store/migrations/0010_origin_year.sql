-- The year of an ISO 8583 origin (spec/iso8583.md "Keys"): field 7 is MMDDhhmmss, so (bank, STAN, field 7)
-- alone collides a year later with a message that happens to carry the same STAN at the same moment of the
-- year: a new payment would be refused as a duplicate, or by last year's tombstone, and a reversal by field
-- 90 would find last year's payment. The gateway takes the year nearest its clock
-- (gateway.domain.transmission); rows written before this migration get the year nearest their own time.
CREATE FUNCTION gw_transmission_year(transmitted text, near timestamptz) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    y integer := extract(year FROM near AT TIME ZONE 'UTC');
    best_year integer := y;
    best_distance double precision := 'infinity';
    moment timestamptz;
BEGIN
    FOR candidate IN y - 1 .. y + 1 LOOP
        BEGIN
            moment := make_timestamptz(candidate, substr(transmitted, 1, 2)::int, substr(transmitted, 3, 2)::int,
                                       substr(transmitted, 5, 2)::int, substr(transmitted, 7, 2)::int,
                                       substr(transmitted, 9, 2)::int, 'UTC');
        EXCEPTION WHEN others THEN
            CONTINUE;
        END;
        IF abs(extract(epoch FROM moment - near)) < best_distance THEN
            best_distance := abs(extract(epoch FROM moment - near));
            best_year := candidate;
        END IF;
    END LOOP;
    RETURN best_year;
END $$;

ALTER TABLE payments ADD COLUMN transmitted_year smallint;
ALTER TABLE tombstones ADD COLUMN transmitted_year smallint;
-- History is append-only; this one backfill of a derived column is the owner's, inside the migration.
ALTER TABLE payments DISABLE TRIGGER USER;
UPDATE payments SET transmitted_year = gw_transmission_year(transmitted, paid_at) WHERE stan IS NOT NULL;
ALTER TABLE payments ENABLE TRIGGER USER;
ALTER TABLE tombstones DISABLE TRIGGER USER;
UPDATE tombstones SET transmitted_year = gw_transmission_year(transmitted, created_at);
ALTER TABLE tombstones ENABLE TRIGGER USER;

ALTER TABLE payments ADD CONSTRAINT payments_origin_year CHECK ((stan IS NULL) = (transmitted_year IS NULL));
ALTER TABLE tombstones ALTER COLUMN transmitted_year SET NOT NULL;

DROP INDEX payments_iso_origin;
CREATE UNIQUE INDEX payments_iso_origin ON payments (bank_code, stan, transmitted_year, transmitted)
    WHERE stan IS NOT NULL;
ALTER TABLE tombstones DROP CONSTRAINT tombstones_bank_code_stan_transmitted_key;
ALTER TABLE tombstones ADD CONSTRAINT tombstones_origin UNIQUE (bank_code, stan, transmitted_year, transmitted);
