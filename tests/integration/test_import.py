"""``bills import``: CSV files into a real PostgreSQL (gateway.bills.importer)."""
from __future__ import annotations

import asyncio
import datetime
import io
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from gateway.bills import importer
from gateway.bills.importer import ImportFileError, import_file
from gateway.bills.rows import BPHTB_COLUMNS, PBB_COLUMNS
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.domain.sspd import make_registration

pytestmark = pytest.mark.integration

PBB_HEADER = ",".join(PBB_COLUMNS)
BPHTB_HEADER = ",".join(BPHTB_COLUMNS)
GOOD_PBB = [
    PBB_HEADER,
    "327501000100100010,2026,SITI AMINAH,JL. MERDEKA NO. 5,JATIBENING,PONDOKGEDE,120,90,150000,2026-08-31,",
    '32.75.010.001.001-0002.0,2026,"BUDI SANTOSO, H.",JL. MAWAR NO. 7,JATIBENING,PONDOKGEDE,200,0,275000,'
    "2026-09-30,paid",
    "327501000100100010,2025,SITI AMINAH,JL. MERDEKA NO. 5,JATIBENING,PONDOKGEDE,120,90,140000,2025-08-31,cancelled",
]
BILL_COLUMNS = "bill_key, nop, tax_year, taxpayer_name, object_address, land_area, building_area, principal, " \
               "penalty, due_date, status"


def write(tmp_path: Path, lines: list[str], name: str = "bills.csv", *, bom: bool = False) -> str:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode())
    return str(path)


async def run(db, path: str, tax: str = "pbb", strict: bool = False):
    err = io.StringIO()
    report = await import_file(db, tax, path, strict=strict, region_code="3275", err=err)
    return report, err.getvalue().splitlines()


async def bills(db, tax: str = "PBB") -> list[tuple]:
    rows = await db.fetch(f"SELECT {BILL_COLUMNS} FROM bills WHERE tax = $1 ORDER BY bill_key", tax)
    return [tuple(r) for r in rows]


async def pay(db, bill_key: str, serial: int = 1) -> str:
    """An active gateway payment for a bill, as the payment engine records it (gateway.store.money)."""
    ntpd = make_ntpd(datetime.date(2026, 11, 23), Tax.PBB, serial)
    bill_id, principal = await db.fetchrow(
        "UPDATE bills SET status = 'paid', updated_at = now() WHERE tax = 'PBB' AND bill_key = $1"
        " RETURNING id, principal", bill_key)
    await db.execute("INSERT INTO business_dates (business_date) VALUES ('2026-11-23') ON CONFLICT DO NOTHING")
    payment_id = await db.fetchval(
        "INSERT INTO payments (ntpd, bill_id, tax, bank_code, channel, via, ntb, principal, penalty, total,"
        " business_date, paid_at) VALUES ($1, $2, 'PBB', '110', 'teller', 'http', 'NTB1', $3, 0, $3,"
        " '2026-11-23', now()) RETURNING id", ntpd, bill_id, principal)
    await db.execute("INSERT INTO active_payments (bill_id, payment_id) VALUES ($1, $2)", bill_id, payment_id)
    return ntpd


# --- good files ----------------------------------------------------------------------------------


async def test_good_pbb_file_loads(db, tmp_path):
    path = write(tmp_path, GOOD_PBB)
    report, err = await run(db, path)
    assert (report.loaded, report.updated, report.invalid, report.conflicts, report.exit_code) == (3, 0, 0, 0, 0)
    assert err == [f"{path}: 3 rows read", "loaded 3, updated 0, invalid 0, conflicts 0"]
    assert await bills(db) == [
        ("3275010001001000102025", "327501000100100010", 2025, "SITI AMINAH", "JL. MERDEKA NO. 5", 120, 90, 140000,
         0, datetime.date(2025, 8, 31), "cancelled"),
        ("3275010001001000102026", "327501000100100010", 2026, "SITI AMINAH", "JL. MERDEKA NO. 5", 120, 90, 150000,
         0, datetime.date(2026, 8, 31), "unpaid"),
        ("3275010001001000202026", "327501000100100020", 2026, "BUDI SANTOSO, H.", "JL. MAWAR NO. 7", 200, 0, 275000,
         0, datetime.date(2026, 9, 30), "paid"),
    ]


async def test_columns_in_any_order_with_bom_and_crlf(db, tmp_path):
    columns = list(reversed(PBB_COLUMNS))
    values = dict(zip(PBB_COLUMNS, GOOD_PBB[1].split(",")))
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (",".join(columns) + "\r\n" + ",".join(values[c] for c in columns)
                                       + "\r\n").encode())
    report, err = await run(db, str(path))
    assert report.exit_code == 0, err
    assert [r[0] for r in await bills(db)] == ["3275010001001000102026"]


async def test_header_only_file_loads_nothing(db, tmp_path):
    path = write(tmp_path, [PBB_HEADER])
    report, err = await run(db, path)
    assert report.exit_code == 0
    assert err == [f"{path}: 0 rows read", "loaded 0, updated 0, invalid 0, conflicts 0"]


# --- bad rows ------------------------------------------------------------------------------------

MIXED = [
    PBB_HEADER,                                                                                          # 1
    "327501000100100010,2026,SITI AMINAH,JL. MERDEKA NO. 5,JATIBENING,PONDOKGEDE,120,90,150000,2026-08-31,",  # 2
    '327501000100100020,2026,BUDI,"JL. MAWAR',                                                           # 3
    'NO. 7",JATIBENING,PONDOKGEDE,200,0,275000,2026-08-31,unpaid',                                        # 4
    "327501000100100030,2026,,JL. X,JATIBENING,PONDOKGEDE,10,0,0,2026-02-30,unpaid",                     # 5
    "327501000100100040,2026,RINA,JL. Y,JATIBENING,PONDOKGEDE,10,0,50000,2026-08-31,unpaid",             # 6
    "320101000100100050,2026,ANI,JL. Z,JATIBENING,PONDOKGEDE,10,0,50000,2026-08-31,unpaid",              # 7
    "32.75.010.001.001-0001.0,2026,SITI AMINAH,JL. MERDEKA NO. 5,JATIBENING,PONDOKGEDE,120,90,1,2026-08-31,",  # 8
    "327501000100100060,2026,TOO,FEW",                                                                   # 9
    "",                                                                                                  # 10
    "327501000100100070,26,DEDI,JL. W,JATIBENING,PONDOKGEDE,-1,0,50000,2026-08-31,lunas",                # 11
]


def mixed_errors(path: str) -> list[str]:
    return [
        f"{path}:5: taxpayer_name: must not be empty",
        f"{path}:5: amount: must be greater than 0",
        f"{path}:5: due_date: no such date",
        f"{path}:7: nop: is in region 3201, this gateway serves 3275",
        f"{path}:8: nop: duplicate of line 2",
        f"{path}:9: row: has 4 fields, the header has 11",
        f"{path}:11: tax_year: must be a 4-digit year",
        f"{path}:11: land_area: must not be negative",
        f"{path}:11: status: must be unpaid, paid or cancelled",
    ]


async def test_mixed_file_reports_each_bad_column_and_loads_the_rest(db, tmp_path):
    path = write(tmp_path, MIXED)
    report, err = await run(db, path)
    assert err == mixed_errors(path) + [f"{path}: 8 rows read", "loaded 3, updated 0, invalid 5, conflicts 0"]
    assert (report.loaded, report.invalid, report.exit_code) == (3, 5, 1)
    assert [(r[0], r[4], r[7]) for r in await bills(db)] == [
        ("3275010001001000102026", "JL. MERDEKA NO. 5", 150000),
        ("3275010001001000202026", "JL. MAWAR NO. 7", 275000),
        ("3275010001001000402026", "JL. Y", 50000),
    ]


async def test_strict_loads_nothing_but_reports_everything(db, tmp_path):
    path = write(tmp_path, MIXED)
    report, err = await run(db, path, strict=True)
    assert err == mixed_errors(path) + [f"{path}: 8 rows read", "loaded 0, updated 0, invalid 5, conflicts 0"]
    assert (report.loaded, report.updated, report.exit_code) == (0, 0, 1)
    assert await bills(db) == []


async def test_strict_with_a_clean_file_loads(db, tmp_path):
    report, _ = await run(db, write(tmp_path, GOOD_PBB), strict=True)
    assert (report.loaded, report.exit_code) == (3, 0)


async def test_header_columns_in_another_order_report_in_file_order(db, tmp_path):
    columns = ["status", "amount", *[c for c in PBB_COLUMNS if c not in ("status", "amount")]]
    row = dict(zip(PBB_COLUMNS, MIXED[-1].split(",")))
    path = write(tmp_path, [",".join(columns), ",".join(row[c] for c in columns)])
    _, err = await run(db, path)
    assert err[:3] == [f"{path}:2: status: must be unpaid, paid or cancelled",
                       f"{path}:2: tax_year: must be a 4-digit year",
                       f"{path}:2: land_area: must not be negative"]


# --- re-import and conflicts ---------------------------------------------------------------------


async def test_reimport_updates(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    changed = [GOOD_PBB[0], GOOD_PBB[1].replace("150000", "160000").replace("SITI AMINAH", "SITI AMINAH BINTI ALI"),
               *GOOD_PBB[2:]]
    path = write(tmp_path, changed, "again.csv")
    report, err = await run(db, path)
    assert err[-1] == "loaded 0, updated 3, invalid 0, conflicts 0"
    assert report.exit_code == 0
    rows = await db.fetch("SELECT bill_key, taxpayer_name, principal, updated_at > imported_at AS touched"
                          " FROM bills ORDER BY bill_key")
    assert [tuple(r) for r in rows] == [
        ("3275010001001000102025", "SITI AMINAH", 140000, False),       # unchanged rows are not rewritten
        ("3275010001001000102026", "SITI AMINAH BINTI ALI", 160000, True),
        ("3275010001001000202026", "BUDI SANTOSO, H.", 275000, False),
    ]
    assert await db.fetchval("SELECT count(*) FROM bills") == 3


async def test_reimport_moves_bills_paid_outside_the_gateway(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    flipped = [GOOD_PBB[0], GOOD_PBB[1] + "paid", GOOD_PBB[2].replace(",paid", ",unpaid").replace("275000", "280000")]
    report, err = await run(db, write(tmp_path, flipped, "flipped.csv"))
    assert err[-1] == "loaded 0, updated 2, invalid 0, conflicts 0"
    assert [(r[0], r[7], r[10]) for r in await bills(db)] == [
        ("3275010001001000102025", 140000, "cancelled"),
        ("3275010001001000102026", 150000, "paid"),
        ("3275010001001000202026", 280000, "unpaid"),
    ]


async def test_bill_with_active_payment_is_a_conflict_and_keeps_status_and_amount(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    ntpd = await pay(db, "3275010001001000102026")
    assert ntpd[6] == "1" and len(ntpd) == 18
    lines = [
        GOOD_PBB[0],
        # the bill the gateway holds as paid: file says unpaid with another amount and a new name
        "327501000100100010,2026,SITI AMINAH BINTI ALI,JL. MERDEKA NO. 5,JATIBENING,PONDOKGEDE,120,90,175000,"
        "2026-08-31,unpaid",
        GOOD_PBB[2],
        GOOD_PBB[3],
    ]
    path = write(tmp_path, lines, "conflict.csv")
    report, err = await run(db, path)
    assert err == [
        f"{path}: 3 rows read",
        f"{path}:2: conflict: bill has an active payment (NTPD {ntpd}); status and amount kept",
        "loaded 0, updated 2, invalid 0, conflicts 1",
    ]
    assert (report.conflicts, report.updated, report.exit_code) == (1, 2, 1)
    row = await db.fetchrow("SELECT taxpayer_name, principal, status FROM bills WHERE bill_key = $1",
                            "3275010001001000102026")
    assert tuple(row) == ("SITI AMINAH BINTI ALI", 150000, "paid")


async def test_row_agreeing_with_the_paid_bill_is_an_update(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    await pay(db, "3275010001001000102026")
    agreeing = [GOOD_PBB[0], GOOD_PBB[1].replace("JL. MERDEKA NO. 5", "JL. MERDEKA NO. 5A") + "paid"]
    report, err = await run(db, write(tmp_path, agreeing, "agree.csv"))
    assert err[-1] == "loaded 0, updated 1, invalid 0, conflicts 0"
    row = await db.fetchrow("SELECT object_address, principal, status FROM bills WHERE bill_key = $1",
                            "3275010001001000102026")
    assert tuple(row) == ("JL. MERDEKA NO. 5A", 150000, "paid")


async def test_cancelling_a_bill_with_an_active_payment_is_a_conflict(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    ntpd = await pay(db, "3275010001001000102026", serial=7)
    path = write(tmp_path, [GOOD_PBB[0], GOOD_PBB[1] + "cancelled"], "cancel.csv")
    report, err = await run(db, path)
    assert err[-2:] == [f"{path}:2: conflict: bill has an active payment (NTPD {ntpd}); status and amount kept",
                        "loaded 0, updated 0, invalid 0, conflicts 1"]
    assert await db.fetchval("SELECT status FROM bills WHERE bill_key = '3275010001001000102026'") == "paid"


async def test_payment_committed_while_the_import_updates_is_kept_and_a_conflict(db, db_url, tmp_path):
    """The update's snapshot predates a payment that commits while the update waits for the bill row."""
    await run(db, write(tmp_path, GOOD_PBB))
    key = "3275010001001000102026"
    path = write(tmp_path, [GOOD_PBB[0], GOOD_PBB[1].replace("150000", "999000"), *GOOD_PBB[2:]], "race.csv")
    payer = await asyncpg.connect(db_url)
    try:
        payment = payer.transaction()
        await payment.start()
        await payer.execute("SELECT id FROM bills WHERE tax = 'PBB' AND bill_key = $1 FOR UPDATE", key)
        importing = asyncio.create_task(run(db, path))
        for _ in range(400):
            waiting = await payer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND wait_event = 'transactionid'")
            if waiting:
                break
            await asyncio.sleep(0.025)
        assert waiting, "the import never waited for the bill row"
        ntpd = await pay(payer, key, serial=9)
        await payment.commit()
        report, err = await asyncio.wait_for(importing, 30)
    finally:
        await payer.close()
    assert err[-2:] == [f"{path}:2: conflict: bill has an active payment (NTPD {ntpd}); status and amount kept",
                        "loaded 0, updated 2, invalid 0, conflicts 1"]
    row = await db.fetchrow("SELECT principal, status FROM bills WHERE bill_key = $1", key)
    assert tuple(row) == (150000, "paid")


# --- batches ---------------------------------------------------------------------------------------

GOOD_PBB_ROWS = [
    ("3275010001001000102025", "327501000100100010", 2025, "SITI AMINAH", "JL. MERDEKA NO. 5", 120, 90, 140000,
     0, datetime.date(2025, 8, 31), "cancelled"),
    ("3275010001001000102026", "327501000100100010", 2026, "SITI AMINAH", "JL. MERDEKA NO. 5", 120, 90, 150000,
     0, datetime.date(2026, 8, 31), "unpaid"),
    ("3275010001001000202026", "327501000100100020", 2026, "BUDI SANTOSO, H.", "JL. MAWAR NO. 7", 200, 0, 275000,
     0, datetime.date(2026, 9, 30), "paid"),
]


async def test_batches_are_key_ranges_committed_one_by_one(db, db_url, tmp_path):
    path = write(tmp_path, GOOD_PBB)
    seen = []
    observer = await asyncpg.connect(db_url)

    async def after_batch(batch):
        # Committed: another session sees the batch's bills, and none of the bills is locked.
        async with observer.transaction():
            rows = await observer.fetch("SELECT bill_key FROM bills ORDER BY bill_key FOR NO KEY UPDATE NOWAIT")
        seen.append((batch.number, batch.first_key, batch.last_key, batch.rows, [r[0] for r in rows]))

    try:
        err = io.StringIO()
        report = await import_file(db, "pbb", path, strict=False, region_code="3275", err=err, rows_per_batch=2,
                                   after_batch=after_batch)
    finally:
        await observer.close()
    assert seen == [
        (1, "3275010001001000102025", "3275010001001000102026", 2, ["3275010001001000102025", "3275010001001000102026"]),
        (2, "3275010001001000202026", "3275010001001000202026", 1, [r[0] for r in GOOD_PBB_ROWS]),
    ]
    assert err.getvalue().splitlines() == [f"{path}: 3 rows read", "loaded 3, updated 0, invalid 0, conflicts 0"]
    assert report.exit_code == 0
    assert await bills(db) == GOOD_PBB_ROWS
    # the session keeps neither the staging table nor the import's advisory lock
    assert await db.fetchval("SELECT to_regclass('pg_temp.gw_bill_staging')") is None
    assert await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0


async def test_conflicts_of_several_batches_are_reported_in_line_order(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    first = await pay(db, "3275010001001000202026", serial=1)     # line 2 below, last batch
    second = await pay(db, "3275010001001000102025", serial=2)    # line 3 below, first batch
    lines = [GOOD_PBB[0], GOOD_PBB[2].replace("275000", "1000"), GOOD_PBB[3].replace(",cancelled", ",unpaid"),
             GOOD_PBB[1]]
    path = write(tmp_path, lines, "again.csv")
    err = io.StringIO()
    report = await import_file(db, "pbb", path, strict=False, region_code="3275", err=err, rows_per_batch=1)
    assert err.getvalue().splitlines() == [
        f"{path}: 3 rows read",
        f"{path}:2: conflict: bill has an active payment (NTPD {first}); status and amount kept",
        f"{path}:3: conflict: bill has an active payment (NTPD {second}); status and amount kept",
        "loaded 0, updated 1, invalid 0, conflicts 2",
    ]
    assert report.exit_code == 1


async def test_strict_validates_the_whole_file_before_the_first_batch(db, tmp_path):
    # The only bad row is the last one, in a file of one-row batches: still nothing is loaded.
    path = write(tmp_path, GOOD_PBB + [GOOD_PBB[1].replace("327501000100100010", "327501000100100090")
                                       .replace("150000", "0")])
    batches = []

    async def after_batch(batch):
        batches.append(batch)

    err = io.StringIO()
    report = await import_file(db, "pbb", path, strict=True, region_code="3275", err=err, rows_per_batch=1,
                               after_batch=after_batch)
    assert err.getvalue().splitlines() == [f"{path}:5: amount: must be greater than 0", f"{path}: 4 rows read",
                                           "loaded 0, updated 0, invalid 1, conflicts 0"]
    assert (report.exit_code, batches) == (1, [])
    assert await bills(db) == []


async def test_a_failing_batch_leaves_the_batches_before_loaded_and_a_rerun_completes(db, tmp_path):
    await db.execute("CREATE FUNCTION refuse_bill() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN"
                     " IF NEW.bill_key = '3275010001001000202026' THEN RAISE EXCEPTION 'refused by the test'; END IF;"
                     " RETURN NEW; END$$")
    await db.execute("CREATE TRIGGER refuse BEFORE INSERT ON bills FOR EACH ROW EXECUTE FUNCTION refuse_bill()")
    path = write(tmp_path, GOOD_PBB)
    err = io.StringIO()
    report = await import_file(db, "pbb", path, strict=False, region_code="3275", err=err, rows_per_batch=1)
    assert err.getvalue().splitlines() == [
        f"{path}: 3 rows read",
        f"{path}: stopped after 2 of 3 valid rows (RaiseError: refused by the test); those rows are loaded, the rest"
        " are not: importing the file again completes the load",
        "loaded 2, updated 0, invalid 0, conflicts 0",
    ]
    assert (report.loaded, report.exit_code) == (2, 1)
    assert await bills(db) == GOOD_PBB_ROWS[:2]         # the batches in key order before the failing one
    assert await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0

    await db.execute("DROP TRIGGER refuse ON bills")
    report, err_lines = await run(db, path)
    assert err_lines == [f"{path}: 3 rows read", "loaded 1, updated 2, invalid 0, conflicts 0"]
    assert report.exit_code == 0
    assert await bills(db) == GOOD_PBB_ROWS


async def test_an_interrupted_import_says_how_far_it_got(db, tmp_path):
    path = write(tmp_path, GOOD_PBB)

    async def interrupt(batch):
        raise asyncio.CancelledError()          # e.g. Ctrl-C in `gateway bills import`

    err = io.StringIO()
    with pytest.raises(asyncio.CancelledError):
        await import_file(db, "pbb", path, strict=False, region_code="3275", err=err, rows_per_batch=1,
                          after_batch=interrupt)
    assert err.getvalue().splitlines() == [
        f"{path}: 3 rows read",
        f"{path}: stopped after 1 of 3 valid rows (interrupted: CancelledError); those rows are loaded, the rest"
        " are not: importing the file again completes the load",
        "loaded 1, updated 0, invalid 0, conflicts 0",
    ]
    assert await bills(db) == GOOD_PBB_ROWS[:1]
    assert await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    report, _ = await run(db, path)
    assert (report.loaded, report.updated, report.exit_code) == (2, 1, 0)


async def test_import_refuses_to_run_inside_a_transaction(db, tmp_path):
    path = write(tmp_path, GOOD_PBB)
    async with db.transaction():
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await run(db, path)


# --- BPHTB ---------------------------------------------------------------------------------------


def bphtb_line(registration: str, **changes) -> str:
    row = {
        "registration_number": registration, "nop": "327501000100100010", "tax_year": "2026",
        "taxpayer_name": "BUDI SANTOSO", "nik": "3275012505800001", "object_address": "JL. MAWAR NO. 1",
        "kelurahan": "JATIBENING", "kecamatan": "PONDOKGEDE", "acquisition_type": "01",
        "acquisition_value": "500000000", "land_area": "120", "building_area": "90",
        "ppat_name": "PPAT RINA MARLINA", "amount": "21000000", "penalty": "", "valid_until": "2026-12-31",
        "status": "",
    }
    row.update(changes)
    return ",".join(row[c] for c in BPHTB_COLUMNS)


async def test_bphtb_good_and_bad_check_digits(db, tmp_path):
    good = make_registration(2026, 11, 123)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    path = write(tmp_path, [BPHTB_HEADER, bphtb_line(good, penalty="420000"), bphtb_line(bad)], "bphtb.csv")
    report, err = await run(db, path, tax="bphtb")
    assert err == [f"{path}:3: registration_number: wrong check digits", f"{path}: 2 rows read",
                   "loaded 1, updated 0, invalid 1, conflicts 0"]
    assert report.exit_code == 1
    row = await db.fetchrow(
        "SELECT tax, bill_key, nop, tax_year, nik, acquisition_type, acquisition_value, ppat_name, principal, penalty,"
        " valid_until, due_date, status FROM bills")
    assert tuple(row) == ("BPHTB", "20261100012356", "327501000100100010", 2026, "3275012505800001", 1, 500000000,
                          "PPAT RINA MARLINA", 21000000, 420000, datetime.date(2026, 12, 31), None, "unpaid")


async def test_bphtb_reimport_updates_penalty(db, tmp_path):
    reg = make_registration(2026, 10, 5)
    await run(db, write(tmp_path, [BPHTB_HEADER, bphtb_line(reg)], "a.csv"), tax="bphtb")
    report, err = await run(db, write(tmp_path, [BPHTB_HEADER, bphtb_line(reg, penalty="100")], "b.csv"),
                            tax="bphtb")
    assert err[-1] == "loaded 0, updated 1, invalid 0, conflicts 0"
    assert await db.fetchval("SELECT penalty FROM bills WHERE bill_key = $1", reg) == 100


async def test_pbb_and_bphtb_keys_do_not_collide(db, tmp_path):
    await run(db, write(tmp_path, GOOD_PBB))
    report, _ = await run(db, write(tmp_path, [BPHTB_HEADER, bphtb_line(make_registration(2026, 1, 1))], "b.csv"),
                          tax="bphtb")
    assert report.loaded == 1
    assert await db.fetchval("SELECT count(*) FROM bills") == 4


# --- unusable files ------------------------------------------------------------------------------


async def test_missing_file(db, tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(ImportFileError) as exc:
        await run(db, path)
    assert str(exc.value) == f"{path}: cannot read: No such file or directory"


async def test_not_utf8(db, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((PBB_HEADER + "\n").encode() + GOOD_PBB[1].replace("SITI", "SÏTI").encode("latin-1") + b"\n")
    with pytest.raises(ImportFileError) as exc:
        await run(db, str(path))
    assert str(exc.value) == f"{path}:2: not UTF-8 (byte 0xcf)"
    assert await bills(db) == []


async def test_empty_file(db, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ImportFileError) as exc:
        await run(db, str(path))
    assert str(exc.value) == f"{path}: empty file, expected a header line"


@pytest.mark.parametrize("header,problem", [
    (PBB_HEADER + ",note", "unknown column(s) 'note'"),
    (PBB_HEADER.replace(",status", ""), "missing column(s) status"),
    (BPHTB_HEADER, "unknown column(s) 'registration_number', 'nik', 'acquisition_type', 'acquisition_value', "
                   "'ppat_name', 'penalty', 'valid_until'; missing column(s) due_date"),
])
async def test_wrong_header(db, tmp_path, header, problem):
    path = write(tmp_path, [header, GOOD_PBB[1]])
    with pytest.raises(ImportFileError) as exc:
        await run(db, path)
    assert str(exc.value) == f"{path}:1: wrong header: {problem} (expected {PBB_HEADER})"


async def test_broken_quoting_is_a_file_error_and_loads_nothing(db, tmp_path):
    path = write(tmp_path, [PBB_HEADER, GOOD_PBB[1], '327501000100100020,2026,"BUDI"X,JL,K,K,1,1,1,2026-08-31,'])
    with pytest.raises(ImportFileError) as exc:
        await run(db, path)
    assert str(exc.value) == f"{path}:3: malformed CSV: ',' expected after '\"'"
    assert await bills(db) == []


# --- progress ------------------------------------------------------------------------------------


async def test_plain_progress_lines(db, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 2)
    path = write(tmp_path, [PBB_HEADER] + [
        f"3275010001001{n:04d}0,2026,A,B,C,D,1,1,1000,2026-08-31," for n in range(1, 6)])
    _, err = await run(db, path)
    assert err == [f"{path}: 2 rows read", f"{path}: 4 rows read", f"{path}: 5 rows read",
                   "loaded 5, updated 0, invalid 0, conflicts 0"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


async def test_progress_bar_on_a_terminal(db, tmp_path):
    path = write(tmp_path, MIXED)
    err = _Terminal()
    await import_file(db, "pbb", path, strict=False, region_code="3275", err=err)
    text = err.getvalue()
    assert f"\r{path}: [" + "#" * 30 + "] 100% 8 rows\n" in text
    assert text.endswith("\nloaded 3, updated 0, invalid 5, conflicts 0\n")
    assert f"{path}:5: taxpayer_name: must not be empty\n" in text


# --- the command line ----------------------------------------------------------------------------


def _gateway(args: list[str], db_url: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATABASE_URL"] = db_url
    exe = Path(sys.executable).with_name("gateway")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_reports_bad_row_and_exits_1(db_url, tmp_path):
    path = write(tmp_path, [GOOD_PBB[0], GOOD_PBB[1], GOOD_PBB[2].replace("275000", "0")])
    done = _gateway(["bills", "import", "pbb", path], db_url, tmp_path)
    assert done.stderr.splitlines() == [f"{path}:3: amount: must be greater than 0", f"{path}: 2 rows read",
                                        "loaded 1, updated 0, invalid 1, conflicts 0"]
    assert done.stdout == ""
    assert done.returncode == 1


def test_cli_unusable_file_exits_2(db_url, tmp_path):
    path = str(tmp_path / "missing.csv")
    done = _gateway(["bills", "import", "bphtb", path, "--strict"], db_url, tmp_path)
    assert done.stderr.splitlines() == [f"gateway: {path}: cannot read: No such file or directory"]
    assert done.returncode == 2
