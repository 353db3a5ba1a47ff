"""One NOP's account for support staff (gateway/staff/tax_object.py) against real PostgreSQL, through the runtime
role's pool: every tax year with what is due today, the payments with their NTPD, the payment-history PDF, the
Surat Keterangan Lunas (issued only for a paid year, stored, audited, checkable) and the SALINAN reprint."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta, timezone

import pypdfium2
import pytest
import zxingcpp
from pypdf import PdfReader

from billdata import add_pbb
from gateway.domain.assessment import Amount
from gateway.domain.errors import FormatError
from gateway.engine import Engine
from gateway.proofs.keys import KeyStore
from gateway.proofs.signing import verify_with_store
from gateway.service.context import ServiceContext
from gateway.service.lookups import Lookups
from gateway.service.requests import IsoOrigin, MessageKey, PbbPayment, Reversal
from gateway.staff.support import Actor
from gateway.staff.tax_object import TaxObjectService
from gateway.store.db import create_pool

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
OTHER_NOP = "327501000100100030"
JAKARTA = timezone(timedelta(hours=7))
ACTOR = Actor("rina", via="session", source="10.9.8.7")
PUBLIC = "http://127.0.0.1:8080"  # the test configuration's [http] public_url


def iso_key(stan: str, content: str, cls: str = "02") -> MessageKey:
    return MessageKey.iso(stan, "1123021500", cls, content)


def pay(year: int, amount: int, stan: str, nop: str = NOP) -> PbbPayment:
    return PbbPayment(bank="110", nop=nop, tax_year=year, amount=amount, ntb="NTB" + stan, channel="teller",
                      key=iso_key(stan, f"{nop}{year}|{amount}"),
                      origin=IsoOrigin(stan=stan, transmitted="1123021500", rrn="RRN" + stan, terminal_id="TLR1"))


@pytest.fixture
async def keys(tmp_path, clock):
    store = KeyStore(tmp_path / "keys", now=clock.now)
    store.init()
    return store


@pytest.fixture
async def runtime_pool(db_url, config):
    pool = await create_pool(config.database, db_url)  # as gateway_runtime, as `gateway serve` runs it
    yield pool
    await pool.close()


@pytest.fixture
async def service(runtime_pool, config, keys, clock):
    return TaxObjectService(runtime_pool, config, keys, clock)


@pytest.fixture
async def account_data(db, pool, clock, config, keys):
    """Five years of one NOP, paid, reversed, cancelled and imported-paid, and another NOP's bill."""
    await add_pbb(db, year=2026, principal=150_000, due=date(2026, 8, 31))
    await add_pbb(db, year=2025, principal=140_000, due=date(2025, 8, 31))
    await add_pbb(db, year=2024, principal=130_000, due=date(2024, 8, 31))
    await add_pbb(db, year=2023, principal=120_000, due=date(2023, 8, 31), status="cancelled")
    await add_pbb(db, year=2022, principal=110_000, due=date(2022, 8, 31), status="paid")  # paid before the gateway
    await add_pbb(db, nop=OTHER_NOP, year=2025, principal=90_000, due=date(2025, 8, 31), name="BUDI")
    engine = Engine(ServiceContext(pool=pool, clock=clock, config=config, keys=keys))
    # 2026-11-23: 2025 is 15 started months late (1%), 2024 is capped at 24 months (1%).
    paid_2025 = await engine.pay_pbb(pay(2025, 161_000, "000001"))
    paid_2024 = await engine.pay_pbb(pay(2024, 161_200, "000002"))
    other = await engine.pay_pbb(pay(2025, 103_500, "000003", nop=OTHER_NOP))
    assert (paid_2025.rc, paid_2024.rc, other.rc) == ("00", "00", "00")
    reversed_ = await engine.reverse(Reversal("110", 161_200, iso_key("000004", "r", cls="04"), ntpd=paid_2024.ntpd))
    assert reversed_.rc == "00"
    return {"2025": paid_2025.ntpd, "2024": paid_2024.ntpd, "other": other.ntpd,
            "code_2025": paid_2025.validation_code}


async def audit_rows(db):
    rows = await db.fetch("SELECT actor, action, target, detail::text, source FROM audit_log ORDER BY id")
    return [(r["actor"], r["action"], r["target"], json.loads(r["detail"]), r["source"]) for r in rows]


def dashed(code: str) -> str:
    plain = code.replace("-", "")
    return "-".join(plain[i:i + 4] for i in range(0, 16, 4))


async def test_account_years_due_now_and_payments(service, db, account_data):
    account = await service.account(ACTOR, "32.75.010.001.001-0001.0")
    assert (account.nop, account.nop_display, account.taxpayer, account.object_address, account.business_date) == (
        NOP, "32.75.010.001.001-0001.0", "SITI AMINAH", "JL. MERDEKA NO. 1", date(2026, 11, 23))
    assert [(y.tax_year, y.status, y.principal, y.due, y.payable, y.ntpd, y.bank) for y in account.years] == [
        (2026, "unpaid", 150_000, Amount(150_000, 4_500, 154_500, 3), True, None, None),
        (2025, "paid", 140_000, Amount(140_000, 0, 0, 0), False, account_data["2025"], "110"),
        (2024, "unpaid", 130_000, Amount(130_000, 31_200, 161_200, 24), True, None, None),
        (2023, "cancelled", 120_000, Amount(120_000, 0, 0, 0), False, None, None),
        (2022, "paid", 110_000, Amount(110_000, 0, 0, 0), False, None, None),
    ]
    assert account.total_due == 154_500 + 161_200
    assert [(p.ntpd, p.tax_year, p.bank, p.channel, p.principal, p.penalty, p.total, p.business_date, p.status)
            for p in account.payments] == [
        (account_data["2025"], 2025, "110", "teller", 140_000, 21_000, 161_000, date(2026, 11, 23), "paid"),
        (account_data["2024"], 2024, "110", "teller", 130_000, 31_200, 161_200, date(2026, 11, 23), "reversed"),
    ]
    assert account.payments[0].validation_code == dashed(account_data["code_2025"])
    assert account.certificates == ()
    assert await audit_rows(db) == [("rina", "tax_object.view", NOP, {"via": "session"}, "10.9.8.7")]

    # Another region's NOP, or one with no bill: None, and nothing audited. A malformed one is a format error.
    assert await service.account(ACTOR, "3276" + NOP[4:]) is None
    assert await service.account(ACTOR, "327501000100100099") is None
    with pytest.raises(FormatError):
        await service.account(ACTOR, "3275")
    assert len(await audit_rows(db)) == 1


async def test_issue_skl_for_a_paid_year(service, db, account_data, keys, runtime_pool, config):
    ntpd = account_data["2025"]
    result = await service.issue_skl(ACTOR, NOP, 2025)
    assert (result.outcome, result.reason) == ("issued", "")
    skl = result.skl
    number = f"SKL-{ntpd}-01"
    assert skl.number == number
    issued_at = "2026-11-23T09:15:00+07:00"  # the test clock, in region time
    assert skl.document == {
        "v": 1, "type": "skl", "number": number, "ntpd": ntpd, "tax": "PBB", "bill": NOP, "tax_year": 2025,
        "taxpayer": "SITI AMINAH", "principal": 140_000, "penalty": 21_000, "total": 161_000,
        "business_date": "2026-11-23", "bank": "110", "region": "3275", "issued_at": issued_at, "issued_by": "rina",
        "kid": keys.current_kid()}
    assert verify_with_store(skl.document, skl.signature, keys)
    assert skl.verify_url == f"{PUBLIC}/v1/proofs/{number}?code={skl.validation_code.replace('-', '')}"
    stored = await db.fetchrow("SELECT number, counter, kid, document, signature, validation_code, issued_by, issued_at,"
                               " payment_id = (SELECT id FROM payments WHERE ntpd = $1) AS right_payment"
                               " FROM skl_certificates", ntpd)
    assert (stored["number"], stored["counter"], stored["kid"], json.loads(stored["document"]), stored["signature"],
            stored["validation_code"], stored["issued_by"], stored["issued_at"], stored["right_payment"]) == (
        number, 1, keys.current_kid(), skl.document, skl.signature, skl.validation_code.replace("-", ""), "rina",
        datetime(2026, 11, 23, 9, 15, tzinfo=JAKARTA), True)
    assert await audit_rows(db) == [("rina", "skl.issue", number,
                                     {"via": "session", "nop": NOP, "ntpd": ntpd, "tax_year": 2025},
                                     "10.9.8.7")]

    # A second issue gets the next counter; the account lists both.
    again = await service.issue_skl(ACTOR, NOP, "2025")
    assert again.skl.number == f"SKL-{ntpd}-02" and again.skl.validation_code != skl.validation_code
    account = await service.account(ACTOR, NOP)
    assert [(c.number, c.tax_year, c.ntpd, c.issued_by, c.reversed) for c in account.certificates] == [
        (number, 2025, ntpd, "rina", False), (f"SKL-{ntpd}-02", 2025, ntpd, "rina", False)]

    # The public check finds it by number and code: type skl and issued_at added; a wrong code is unknown.
    lookups = Lookups(runtime_pool, config.database)
    found = await lookups.check_proof(number, skl.validation_code.replace("-", ""))
    assert found.answer() == {"status": "valid", "ntpd": ntpd, "tax": "PBB", "bill_masked": "327501000100******",
                              "tax_year": 2025, "taxpayer_masked": "S*** A*****", "total": 161_000,
                              "business_date": "2026-11-23", "bank": "110", "type": "skl", "issued_at": issued_at}
    assert await lookups.check_proof(number, again.skl.validation_code.replace("-", "")) is None
    assert await lookups.check_proof(f"SKL-{ntpd}-03", skl.validation_code.replace("-", "")) is None
    assert await lookups.check_proof(f"SKL-{ntpd}-1", skl.validation_code.replace("-", "")) is None
    assert await lookups.check_proof(number, None) is None

    # The certificate's PDF: the document's data, and a QR code that opens the public check.
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(skl.pdf)).pages)
    for expected in ("SURAT KETERANGAN LUNAS", f"Nomor: {number}", "32.75.010.001.001-0001.0", "SITI AMINAH",
                     "Rp161.000", "110 BANK 10", ntpd, skl.validation_code, "23 November 2026 09:15:00 WIB"):
        assert expected in text, expected
    document = pypdfium2.PdfDocument(skl.pdf)
    try:
        image = document[0].render(scale=3).to_pil()
    finally:
        document.close()
    assert [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode] == [
        skl.verify_url]
    # A reprint is the same file, and is audited.
    assert await service.skl_pdf(ACTOR, number) == skl.pdf
    assert (await audit_rows(db))[-1][:3] == ("rina", "skl.reprint", number)
    assert await service.skl_pdf(ACTOR, f"SKL-{ntpd}-09") is None


@pytest.mark.parametrize(("year", "outcome", "reason"), [
    (2026, "unpaid", "Tahun pajak 2026 belum lunas."),
    (2024, "reversed", "Pembayaran tahun 2024 (NTPD {ntpd}) telah dibatalkan; tahun pajak ini belum lunas."),
    (2023, "cancelled", "Tagihan tahun 2023 dibatalkan: tidak ada pembayaran yang dapat diterangkan."),
    (2022, "no_payment", "Tahun pajak 2022 tercatat lunas di data impor, tanpa pembayaran melalui gateway: SKL tidak"
                         " dapat diterbitkan di sini."),
    (2019, "not_found", "Tidak ada tagihan PBB-P2 tahun 2019 untuk NOP 32.75.010.001.001-0001.0."),
])
async def test_issue_skl_refused(service, db, account_data, year, outcome, reason):
    result = await service.issue_skl(ACTOR, NOP, year)
    assert (result.outcome, result.reason, result.skl) == (outcome, reason.format(ntpd=account_data["2024"]), None)
    assert await db.fetchval("SELECT count(*) FROM skl_certificates") == 0
    assert await audit_rows(db) == []


async def test_reversed_after_issue_is_checked_as_reversed(service, account_data, pool, clock, config, keys,
                                                           runtime_pool):
    issued = (await service.issue_skl(ACTOR, NOP, 2025)).skl
    engine = Engine(ServiceContext(pool=pool, clock=clock, config=config, keys=keys))
    assert (await engine.reverse(Reversal("110", 161_000, iso_key("000005", "r", cls="04"),
                                          ntpd=account_data["2025"]))).rc == "00"
    found = await Lookups(runtime_pool, config.database).check_proof(issued.number,
                                                                     issued.validation_code.replace("-", ""))
    assert found.status == "reversed"
    reprint = await service.skl_pdf(ACTOR, issued.number)
    assert "SURAT INI TIDAK BERLAKU" in PdfReader(io.BytesIO(reprint)).pages[0].extract_text()
    assert (await service.issue_skl(ACTOR, NOP, 2025)).outcome == "reversed"


async def test_payment_history_pdf(service, db, account_data):
    pdf = await service.payment_history_pdf(ACTOR, NOP)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    # Layout mode keeps each printed line one line of text (the cells of a row in order).
    lines = [" ".join(line.split()) for line in reader.pages[0].extract_text(extraction_mode="layout").splitlines()]
    rows = [line for line in lines if line[:4].isdigit() and line[4:5] == " "]
    assert rows == [
        "2026 Belum lunas Rp150.000 - - - Rp4.500 Rp154.500",
        f"2025 Lunas Rp140.000 Rp161.000 {account_data['2025']} 23 November 2026 - Rp0",
        "2024 Belum lunas Rp130.000 - - - Rp31.200 Rp161.200",
        "2023 Dibatalkan Rp120.000 - - - - Rp0",
        "2022 Lunas Rp110.000 - - - - Rp0",
        f"2024 NTPD {account_data['2024']} Rp161.200 tanggal buku 23 November 2026 dibatalkan 23 November 2026"
        " 09:15:00 WIB",
    ]
    assert "Jumlah Rp161.000 Rp315.700" in lines
    text = "\n".join(lines)
    for expected in ("RIWAYAT PEMBAYARAN PBB-P2", "32.75.010.001.001-0001.0", "SITI AMINAH", "PEMERINTAH KOTA BEKASI",
                     "Dicetak 23 November 2026 09:15:00 WIB oleh rina."):
        assert expected in text, expected
    assert account_data["other"] not in text
    assert await audit_rows(db) == [("rina", "tax_object.history_pdf", NOP, {"via": "session"}, "10.9.8.7")]
    assert await service.payment_history_pdf(ACTOR, "327501000100100099") is None
    assert len(await audit_rows(db)) == 1


async def test_receipt_reprint_marked_salinan(service, db, account_data):
    pdf = await service.receipt_copy_pdf(ACTOR, account_data["2025"])
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "SALINAN" in text and account_data["2025"] in text and "Rp161.000" in text
    reversed_copy = await service.receipt_copy_pdf(ACTOR, account_data["2024"])
    assert "PEMBAYARAN INI TELAH DIBATALKAN." in PdfReader(io.BytesIO(reversed_copy)).pages[0].extract_text()
    assert [r[1:3] for r in await audit_rows(db)] == [("receipt.reprint", account_data["2025"]),
                                                      ("receipt.reprint", account_data["2024"])]
    assert await service.receipt_copy_pdf(ACTOR, "261123100000009999") is None
