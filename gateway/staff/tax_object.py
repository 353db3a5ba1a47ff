"""One NOP's account ("Objek pajak", spec/operations.md "Support console"): every PBB-P2 tax year with its state
and what is due now, the payments with their NTPD, the payment-history print-out, the Surat Keterangan Lunas
(spec/domain.md "Payment proof") and receipt reprints marked SALINAN.

What is due is the domain's assessment (gateway/domain/assessment.py), exactly as an inquiry computes it, on the
region's business date and local calendar date; nothing here re-states a rule. As in support.py, each action and
its audit row are one transaction; an action that finds nothing, or is refused, writes nothing at all.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from gateway.clock import Clock
from gateway.config import Config
from gateway.domain.assessment import Amount, assess, nothing_due
from gateway.domain.business_day import business_date, local_now
from gateway.domain.codes import RC
from gateway.domain.nop import display_nop, in_region, parse_nop, parse_tax_year
from gateway.domain.proof import MAX_SKL_COUNTER, format_code, skl_document
from gateway.domain.relief import ReliefProgram
from gateway.proofs.keys import KeyStore
from gateway.proofs.signing import sign
from gateway.service.views import relief_of
from gateway.staff.accounts import audit
from gateway.staff.support import Actor
from gateway.store import proofs as proof_store
from gateway.store import skl as skl_store
from gateway.store import tax_objects as store


@dataclass(frozen=True)
class YearLine:
    """One tax year's bill: ``status`` as the bill has it (unpaid / paid / cancelled), ``due`` what it owes
    today (nothing when paid or cancelled), ``payable`` whether a bank may collect it now, and the NTPD and
    bank of its active payment."""

    tax_year: int
    status: str
    principal: int
    due_date: date | None
    due: Amount
    payable: bool
    ntpd: str | None
    bank: str | None


@dataclass(frozen=True)
class PaymentLine:
    ntpd: str
    tax_year: int
    bank: str
    channel: str
    ntb: str
    principal: int
    penalty: int
    total: int
    business_date: date
    paid_at: datetime
    reversed_at: datetime | None
    validation_code: str | None  # dashed; None for a payment made without a signing key
    payment_id: int  # the transaction's id (the console links its story)

    @property
    def status(self) -> str:
        return "reversed" if self.reversed_at else "paid"


@dataclass(frozen=True)
class CertificateLine:
    number: str
    tax_year: int
    ntpd: str
    issued_by: str
    issued_at: datetime
    reversed: bool  # its payment was reversed since: the public check says so


@dataclass(frozen=True)
class TaxObjectAccount:
    nop: str
    nop_display: str
    taxpayer: str  # as on the newest year's bill
    object_address: str
    kelurahan: str
    kecamatan: str
    business_date: date
    years: tuple[YearLine, ...]  # newest first
    payments: tuple[PaymentLine, ...]
    certificates: tuple[CertificateLine, ...]
    total_due: int  # what the payable years owe today


@dataclass(frozen=True)
class IssuedSkl:
    number: str
    document: dict[str, Any]
    signature: str
    kid: str
    validation_code: str  # dashed, as printed
    verify_url: str
    pdf: bytes

    def saved(self) -> dict[str, Any]:
        """The certificate as a file that ``gateway proof verify`` checks offline."""
        return {"document": self.document, "signature": self.signature, "kid": self.kid,
                "validation_code": self.validation_code}


@dataclass(frozen=True)
class SklResult:
    """``outcome`` ``issued`` (``skl`` set) or why not: ``not_found``, ``unpaid``, ``reversed``, ``cancelled``,
    ``no_payment`` (paid by import, not through the gateway), ``limit`` (99 issued already); ``reason`` says
    it in Bahasa Indonesia for the console."""

    outcome: str
    reason: str = ""
    skl: IssuedSkl | None = None


class TaxObjectService:
    def __init__(self, pool: asyncpg.Pool, config: Config, keys: KeyStore | None, clock: Clock | None = None,
                 acquire_timeout_s: float = 3.0,
                 relief: Callable[[], tuple[ReliefProgram, ...]] | None = None):
        self.pool = pool
        self.config = config
        # The relief programs in force now (they change on SIGHUP): what is due shows them as an inquiry does.
        self.relief = relief or (lambda: config.relief)
        self.keys = keys
        self.clock = clock or Clock(config.clock_offset_seconds)
        self.acquire_timeout_s = acquire_timeout_s

    async def _audit(self, conn: asyncpg.Connection, actor: Actor, action: str, target: str | None,
                     detail: dict[str, Any] | None = None) -> None:
        await audit(conn, actor.username, action, target, actor.detail(detail), actor.source)

    # -- the account ---------------------------------------------------------------------------------------

    async def account(self, actor: Actor, nop: str) -> TaxObjectAccount | None:
        """The NOP's account, or None when the region has no PBB bill for it (nothing audited). A malformed NOP
        raises FormatError (the adapter's 400)."""
        nop = parse_nop(nop)
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            found = await self._read(conn, nop)
            if found is not None:
                await self._audit(conn, actor, "tax_object.view", nop)
            return found

    async def payment_history_pdf(self, actor: Actor, nop: str) -> bytes | None:
        """Riwayat pembayaran: per tax year what was paid and what is still owed today, as a PDF."""
        from gateway.proofs.history_pdf import HistoryYear, ReversedPayment, history_pdf

        nop = parse_nop(nop)
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            found = await self._read(conn, nop)
            if found is None:
                return None
            await self._audit(conn, actor, "tax_object.history_pdf", nop)
        paid = {p.ntpd: p for p in found.payments}
        years = [HistoryYear(
            tax_year=y.tax_year, status=y.status, principal=y.principal,
            paid_total=paid[y.ntpd].total if y.ntpd in paid else 0, ntpd=y.ntpd if y.ntpd in paid else None,
            paid_on=paid[y.ntpd].business_date if y.ntpd in paid else None,
            owed_penalty=y.due.penalty if y.payable else 0, owed_total=y.due.total if y.payable else 0)
            for y in found.years]
        gone = [ReversedPayment(tax_year=p.tax_year, ntpd=p.ntpd, total=p.total, business_date=p.business_date,
                                reversed_at=p.reversed_at.astimezone(self.config.region.tz))
                for p in found.payments if p.reversed_at is not None]
        return history_pdf(nop=nop, taxpayer=found.taxpayer, object_address=found.object_address, years=years,
                           reversed_payments=gone, region_name=self.config.region.name,
                           printed_at=local_now(self.clock.now(), self.config.region.tz), printed_by=actor.username)

    async def _read(self, conn: asyncpg.Connection, nop: str) -> TaxObjectAccount | None:
        if not in_region(nop, self.config.region.code):
            return None
        rows = await store.pbb_years(conn, nop)
        if not rows:
            return None
        now = self.clock.now()
        tz = self.config.region.tz
        today = business_date(now, tz, self.config.region.cutoff_time)
        paid_on = local_now(now, tz).date()
        years = []
        for row in rows:
            verdict = assess(row, today, paid_on, self.config.penalty_pbb, self.relief())
            years.append(YearLine(
                tax_year=row["tax_year"], status=row["status"], principal=row["principal"], due_date=row["due_date"],
                due=verdict.amount if verdict.amount is not None else nothing_due(row),
                payable=verdict.rc == RC.APPROVED, ntpd=row["active_ntpd"], bank=row["active_bank"]))
        payments = tuple(PaymentLine(
            ntpd=p["ntpd"], tax_year=p["tax_year"], bank=p["bank_code"], channel=p["channel"], ntb=p["ntb"],
            principal=p["principal"], penalty=p["penalty"], total=p["total"], business_date=p["business_date"],
            paid_at=p["paid_at"], reversed_at=p["reversed_at"],
            validation_code=format_code(p["validation_code"]) if p["validation_code"] else None,
            payment_id=p["id"])
            for p in await store.pbb_payments(conn, nop))
        certificates = tuple(CertificateLine(
            number=s["number"], tax_year=s["tax_year"], ntpd=s["ntpd"], issued_by=s["issued_by"],
            issued_at=s["issued_at"], reversed=s["reversed_at"] is not None) for s in await skl_store.of_nop(conn, nop))
        newest = rows[0]
        return TaxObjectAccount(
            nop=nop, nop_display=display_nop(nop), taxpayer=newest["taxpayer_name"],
            object_address=newest["object_address"], kelurahan=newest["kelurahan"], kecamatan=newest["kecamatan"],
            business_date=today, years=tuple(years), payments=payments, certificates=certificates,
            total_due=sum(y.due.total for y in years if y.payable))

    # -- Surat Keterangan Lunas ------------------------------------------------------------------------------

    async def issue_skl(self, actor: Actor, nop: str, tax_year: int | str) -> SklResult:
        """Issue a Surat Keterangan Lunas for the NOP's paid tax year: signed, stored and audited in one
        transaction, or refused with the reason and nothing written."""
        nop = parse_nop(nop)
        year = parse_tax_year(tax_year)
        if self.keys is None:
            raise RuntimeError("no signing key store: an SKL cannot be signed")
        kid, private_key = self.keys.current()
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            row = await skl_store.paid_pbb_bill(conn, nop, year) if in_region(nop, self.config.region.code) else None
            refusal = _refusal(row, nop, year)
            if refusal is not None:
                return refusal
            assert row is not None  # _refusal refuses a missing bill
            counter = await skl_store.next_counter(conn, row["payment_id"], row["ntpd"])
            if counter > MAX_SKL_COUNTER:
                return SklResult("limit", f"Sudah {MAX_SKL_COUNTER} SKL diterbitkan untuk pembayaran {row['ntpd']}.")
            issued_at = local_now(self.clock.now(), self.config.region.tz)
            document = skl_document(proof=json.loads(row["document"]), counter=counter, issued_at=issued_at,
                                    issued_by=actor.username, kid=kid)
            signed = sign(document, private_key, kid)
            number = document["number"]
            await skl_store.insert(conn, number=number, payment_id=row["payment_id"], counter=counter, kid=kid,
                                   document=json.dumps(signed.document, ensure_ascii=False),
                                   signature=signed.signature, validation_code=signed.validation_code,
                                   issued_by=actor.username, issued_at=issued_at)
            await self._audit(conn, actor, "skl.issue", number, {"nop": nop, "tax_year": year, "ntpd": row["ntpd"]})
        verify_url = self._verify_url(number, signed.validation_code)
        pdf = self._skl_pdf(signed.document, signed.validation_code, verify_url, "valid")
        return SklResult("issued", skl=IssuedSkl(
            number=number, document=signed.document, signature=signed.signature, kid=kid,
            validation_code=format_code(signed.validation_code), verify_url=verify_url, pdf=pdf))

    async def skl_pdf(self, actor: Actor, number: str) -> bytes | None:
        """An issued certificate printed again (the same document and code; marked if its payment was reversed),
        or None when there is no such certificate."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            row = await skl_store.by_number(conn, number)
            if row is None:
                return None
            await self._audit(conn, actor, "skl.reprint", number)
        code = row["validation_code"]
        return self._skl_pdf(json.loads(row["document"]), code, self._verify_url(number, code),
                             "reversed" if row["reversed_at"] else "valid")

    async def skl_saved(self, actor: Actor, number: str) -> dict[str, Any] | None:
        """An issued certificate as the file ``gateway proof verify`` checks offline (IssuedSkl.saved's shape),
        or None when there is no such certificate."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            row = await skl_store.by_number(conn, number)
            if row is None:
                return None
            await self._audit(conn, actor, "skl.download", number)
        return {"document": json.loads(row["document"]), "signature": row["signature"], "kid": row["kid"],
                "validation_code": format_code(row["validation_code"])}

    async def receipt_copy_pdf(self, actor: Actor, ntpd: str) -> bytes | None:
        """A payment's receipt printed again, marked SALINAN; None when there is no such payment with a proof."""
        from gateway.proofs.receipt import receipt_pdf

        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            row = await proof_store.payment_with_proof(conn, ntpd)
            if row is None or row["document"] is None:
                return None
            await self._audit(conn, actor, "receipt.reprint", ntpd)
        code = row["validation_code"]
        return receipt_pdf(proof=json.loads(row["document"]), validation_code=code,
                           verify_url=self._verify_url(ntpd, code), region_name=self.config.region.name,
                           bank_name=self._bank_name(row["bank_code"]),
                           status="reversed" if row["reversed_at"] else "paid", copy=True, relief=relief_of(row))

    def _verify_url(self, number: str, code: str) -> str:
        return f"{self.config.http.public_url.rstrip('/')}/v1/proofs/{number}?code={code}"

    def _bank_name(self, code: str) -> str:
        bank = self.config.bank(code)
        return bank.name if bank is not None else ""

    def _skl_pdf(self, document: dict[str, Any], code: str, verify_url: str, status: str) -> bytes:
        from gateway.proofs.skl_pdf import skl_pdf

        return skl_pdf(document=document, validation_code=code, verify_url=verify_url,
                       region_name=self.config.region.name, bank_name=self._bank_name(document["bank"]),
                       status=status)


def _refusal(row: asyncpg.Record | None, nop: str, year: int) -> SklResult | None:
    """Why no certificate can be issued for this bill, or None when its year is paid through the gateway."""
    if row is None:
        return SklResult("not_found", f"Tidak ada tagihan PBB-P2 tahun {year} untuk NOP {display_nop(nop)}.")
    if row["status"] == "cancelled":
        return SklResult("cancelled", f"Tagihan tahun {year} dibatalkan: tidak ada pembayaran yang dapat diterangkan.")
    if row["status"] != "paid":
        if row["reversed_ntpd"] is not None:
            return SklResult("reversed", f"Pembayaran tahun {year} (NTPD {row['reversed_ntpd']}) telah dibatalkan;"
                                         " tahun pajak ini belum lunas.")
        return SklResult("unpaid", f"Tahun pajak {year} belum lunas.")
    if row["payment_id"] is None or row["document"] is None:
        return SklResult("no_payment", f"Tahun pajak {year} tercatat lunas di data impor, tanpa pembayaran melalui"
                                       " gateway: SKL tidak dapat diterbitkan di sini.")
    return None
