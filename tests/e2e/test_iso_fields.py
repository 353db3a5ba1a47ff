"""What the answers carry, field by field (spec/iso8583.md "Fields", "Field 62"), over real TCP."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from billdata import add_bphtb, add_pbb
from gateway.domain.ntpd import parse_ntpd
from gateway.domain.transmission import transmission_year
from gateway.iso8583.profiles import parse_bphtb_profile, parse_pbb_profile
from helpers.dates import JAKARTA, today

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
BPHTB_NOP = "327501000100100020"
PRINCIPAL = 150_000
FAR_DUE = date(2099, 8, 31)

PAN = "4111111111111111"
OPTIONAL = {"2": PAN, "33": "00000000777", "42": "MERCHANT0000001",
            "43": "KANTOR CABANG BEKASI TIMUR JL. AHMAD YAN"}  # 40 characters: the whole ans40 slot

# The E columns of the field table.
E_0210 = ("2", "3", "7", "11", "12", "13", "18", "32", "33", "37", "41", "42", "43", "49", "61")
E_0210_PAYMENT = E_0210 + ("4", "48")
E_0410 = E_0210 + ("4", "47", "48", "90")
E_0810 = ("7", "11", "32", "70")


def local_today() -> date:
    return datetime.now(UTC).astimezone(JAKARTA).date()


def months_late(due: date, paid_on: date, max_months: int = 24) -> int:
    """spec/domain.md "Penalty", written out independently of the gateway's code."""
    if paid_on <= due:
        return 0
    m = (paid_on.year - due.year) * 12 + (paid_on.month - due.month)
    if paid_on.day > due.day:
        m += 1
    return min(m, max_months)


def pbb_penalty(principal: int, due: date, paid_on: date) -> tuple[int, int]:
    rate = Decimal("0.02") if due < date(2024, 1, 1) else Decimal("0.01")
    m = months_late(due, paid_on)
    return int((principal * rate * m).quantize(Decimal(1), rounding=ROUND_HALF_UP)), m


def with_optional(request: dict[str, str]) -> dict[str, str]:
    request.update(OPTIONAL)
    return request


def assert_echoed(answer: dict[str, str], request: dict[str, str], fields: tuple[str, ...]) -> None:
    for field in fields:
        assert field in request, f"test bug: request has no field {field}"
        assert answer.get(field) == request[field], f"field {field}: {answer.get(field)!r} != {request[field]!r}"


def assert_no_extra(answer: dict[str, str], allowed: set[str]) -> None:
    present = set(answer) - {"t", "_raw"}
    assert present <= allowed, f"unexpected fields {sorted(present - allowed, key=int)}"


# -- echo of E fields ------------------------------------------------------------------------------


async def test_every_answer_echoes_its_e_fields(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    mmdd = today().strftime("%m%d")
    async with gateway.client() as bank:
        inq = with_optional(bank.inquiry("pbb", NOP + "2026"))
        ans = await bank.request(inq)
        assert ans["t"] == "0210" and ans["39"] == "00"
        assert_echoed(ans, inq, E_0210)
        assert ans["15"] == mmdd
        assert_no_extra(ans, set(E_0210) | {"4", "15", "39", "62"})

        pay = with_optional(bank.payment("pbb", NOP + "2026", PRINCIPAL, ntb="NTB/2026/ABC-1"))
        ans = await bank.request(pay)
        assert ans["t"] == "0210" and ans["39"] == "00"
        assert_echoed(ans, pay, E_0210_PAYMENT)
        assert ans["15"] == mmdd
        assert_no_extra(ans, set(E_0210_PAYMENT) | {"15", "39", "47", "62", "63"})
        ntpd = ans["47"]

        rev = with_optional(bank.reversal(pay, ntpd=ntpd))
        assert rev["90"][31:42] == "00000000777"  # the original's forwarding institution
        ans = await bank.request(rev)
        assert ans["t"] == "0410" and ans["39"] == "00"
        assert_echoed(ans, rev, E_0410)
        assert ans["15"] == mmdd
        assert_no_extra(ans, set(E_0410) | {"15", "39"})

        net = bank.network("301")
        ans = await bank.request(net)
        assert ans["t"] == "0810" and ans["39"] == "00"
        assert_echoed(ans, net, E_0810)
        assert_no_extra(ans, set(E_0810) | {"39"})

        # The echo holds on refusals too (here RC 14 and a reversal by field 90 that leaves a tombstone).
        missing = with_optional(bank.inquiry("pbb", NOP + "2019"))
        ans = await bank.request(missing)
        assert ans["39"] == "14"
        assert_echoed(ans, missing, E_0210)
        tomb = with_optional(bank.reversal(with_optional(bank.payment("pbb", NOP + "2019", PRINCIPAL))))
        ans = await bank.request(tomb)
        assert ans["39"] == "00" and ans["t"] == "0410"
        assert_echoed(ans, tomb, tuple(f for f in E_0410 if f != "47"))
    assert await db.fetchval("SELECT forwarding FROM tombstones") == "777"


async def test_payment_answer_carries_the_validation_code(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        ans = await bank.request(bank.payment("pbb", NOP + "2026", PRINCIPAL))
        assert ans["39"] == "00"
        code = ans.get("63", "")
        assert len(code) == 16 and set(code) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    # the code is the one of the proof signed in the payment's transaction
    row = await db.fetchrow("SELECT validation_code, document->>'ntpd' AS ntpd FROM proofs")
    assert (row["validation_code"], row["ntpd"]) == (code, ans["47"])


# -- field 62, 4, 47 -------------------------------------------------------------------------------


async def test_pbb_inquiry_and_payment_profile_layout(gateway, db):
    by = today().year
    due = date(by - 1, 8, 31)  # late, in the 1 %/month period
    name = "SITI AMINAH BINTI HAJI ABDULLAH SOEKARNO PUTRI"  # longer than 35: cut
    await add_pbb(db, year=by, due=due, name=name)
    for year, status in ((by - 1, "unpaid"), (by - 2, "unpaid"), (by - 3, "cancelled"), (by - 4, "paid"),
                         (by - 5, "unpaid"), (by - 6, "unpaid")):
        await add_pbb(db, year=year, due=date(year, 8, 31), status=status)
    penalty, months = pbb_penalty(PRINCIPAL, due, local_today())
    assert penalty > 0
    total = PRINCIPAL + penalty
    async with gateway.client() as bank:
        ans = await bank.request(bank.inquiry("pbb", f"{NOP}{by}"))
        assert ans["39"] == "00"
        assert ans["4"] == f"{total:012d}"  # field 4 = total due = profile field 13
        p = ans["62"]
        assert len(p) == 287
        assert p[0:18] == NOP
        assert p[18:22] == str(by)
        assert p[22:57] == name[:35]
        assert p[57:92] == "JL. MERDEKA NO. 1".ljust(35)
        assert p[92:127] == "MARGAHAYU".ljust(35)
        assert p[127:162] == "BEKASI TIMUR".ljust(35)
        assert p[162:197] == "KOTA BEKASI".ljust(35)
        assert p[197:209] == "000000000120"
        assert p[209:221] == "000000000090"
        assert p[221:229] == due.strftime("%Y%m%d")
        assert p[229:241] == f"{PRINCIPAL:012d}"
        assert p[241:253] == f"{penalty:012d}"
        assert p[253:265] == f"{total:012d}" == ans["4"]
        assert p[265:267] == f"{months:02d}"
        # Other unpaid years: newest first; cancelled, paid and out-of-window years left out.
        assert p[267:287] == f"{by - 1}{by - 2}{by - 5}00000000"
        parsed = parse_pbb_profile(p)
        assert parsed["other_unpaid_years"] == [by - 1, by - 2, by - 5]

        pay = bank.payment("pbb", f"{NOP}{by}", total)
        ans = await bank.request(pay)
        assert ans["39"] == "00" and ans["4"] == f"{total:012d}"
        ntpd = ans["47"]
        assert len(ntpd) == 18 and parse_ntpd(ntpd) == ntpd
        assert ntpd[:7] == today().strftime("%y%m%d") + "1"
        assert ans["62"] == p  # the same bill, the same amounts
        row = await db.fetchrow("SELECT ntpd, principal, penalty, total, months_late FROM payments")
        assert tuple(row) == (ntpd, PRINCIPAL, penalty, total, months)


async def test_pbb_other_unpaid_years_newest_five(gateway, db):
    by = today().year
    for year in range(by - 6, by + 1):
        await add_pbb(db, year=year, due=FAR_DUE)
    async with gateway.client() as bank:
        ans = await bank.request(bank.inquiry("pbb", f"{NOP}{by - 6}"))
        assert ans["39"] == "00"
        assert ans["62"][267:287] == "".join(str(y) for y in range(by, by - 5, -1))
        ans = await bank.request(bank.inquiry("pbb", f"{NOP}{by}"))
        assert ans["62"][267:287] == "".join(str(y) for y in range(by - 1, by - 6, -1))


async def test_bphtb_profile_layout(gateway, db):
    valid_until = date(2099, 12, 31)
    registration = await add_bphtb(db, principal=5_000_000, penalty=250_000, valid_until=valid_until)
    async with gateway.client() as bank:
        ans = await bank.request(bank.inquiry("bphtb", registration + BPHTB_NOP + "2026"))
        assert ans["39"] == "00"
        assert ans["4"] == "000005250000"
        p = ans["62"]
        assert len(p) == 312
        assert p[0:14] == registration
        assert p[14:32] == BPHTB_NOP
        assert p[32:36] == "2026"
        assert p[36:71] == "BUDI SANTOSO".ljust(35)
        assert p[71:87] == "327501******0004"
        assert p[87:122] == "JL. AHMAD YANI 5".ljust(35)
        assert p[122:157] == "MARGAHAYU".ljust(35)
        assert p[157:192] == "BEKASI TIMUR".ljust(35)
        assert p[192:194] == "01"
        assert p[194:209] == "000000180000000"
        assert p[209:221] == "000000000200"
        assert p[221:233] == "000000000150"
        assert p[233:268] == "NOTARIS RINA, S.H.".ljust(35)
        assert p[268:276] == "20991231"
        assert p[276:288] == "000005000000"
        assert p[288:300] == "000000250000"
        assert p[300:312] == "000005250000" == ans["4"]
        assert parse_bphtb_profile(p)["nik_masked"] == "327501******0004"
        assert "3275011203800004" not in ans["_raw"]

        ans = await bank.request(bank.payment("bphtb", registration, 5_250_000))
        assert ans["39"] == "00"
        assert parse_ntpd(ans["47"])[6] == "2"
        assert ans["62"] == p


# -- message log -----------------------------------------------------------------------------------


async def poll(db, query: str, *args, expect: int, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await db.fetch(query, *args)
        if len(rows) >= expect or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def test_message_log_rows_of_a_payment(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = with_optional(bank.payment("pbb", NOP + "2026", PRINCIPAL))
        pay["35"] = PAN + "=29121010000000000"  # track 2: never stored
        ans = await bank.request(pay)
        assert ans["39"] == "00"
    rows = await poll(db, "SELECT * FROM message_log WHERE stan = $1 ORDER BY direction", pay["11"], expect=2)
    assert [r["direction"] for r in rows] == ["in", "out"]
    inbound, outbound = rows
    for row in rows:
        assert row["channel"] == "iso" and row["event"] == "message"
        assert row["bank_code"] == "110"
        assert row["stan"] == pay["11"] and row["transmitted"] == pay["7"] and row["rrn"] == pay["37"]
        assert row["processing_code"] == "541019"
        assert row["connection_id"] == inbound["connection_id"] and row["connection_id"]
        assert row["peer"].startswith("127.0.0.1:")
        fields = json.loads(row["fields"])
        assert fields["2"] == "411111******1111"
        assert fields.get("35") == ({"len": len(pay["35"])} if row is inbound else None)  # by length only
        assert PAN not in row["fields"]
    assert inbound["mti"] == "0200" and inbound["response_code"] is None
    assert json.loads(inbound["fields"])["61"] == NOP + "2026"
    assert outbound["mti"] == "0210" and outbound["response_code"] == "00"
    assert outbound["ntpd"] == ans["47"]
    assert outbound["bill_id"] == NOP + "2026"
    assert outbound["message_key"] == f"{pay['11']}:{transmission_year(pay['7'], datetime.now(UTC))}{pay['7']}:02"
    assert outbound["elapsed_ms"] is not None and 0 <= outbound["elapsed_ms"] < 15_000
    out_fields = json.loads(outbound["fields"])
    assert out_fields["39"] == "00" and out_fields["47"] == ans["47"] and out_fields["62"] == ans["62"]
