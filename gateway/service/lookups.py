"""The short reads the HTTP edge needs besides the money path: a bank's nonce, a payment with its proof, the
public proof check (payment proofs and Surat Keterangan Lunas alike), readiness. Each is one bounded connection
use (store.db.bounded): an answer within the request deadline whatever the database does."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.config import DatabaseConfig
from gateway.domain.errors import FormatError
from gateway.domain.ntpd import parse_ntpd
from gateway.domain.proof import SKL_TYPE, is_skl_number, mask_bill_id, mask_name, parse_skl_number
from gateway.store import migrate, nonces
from gateway.store import skl as skl_store
from gateway.store.db import bounded
from gateway.store.proofs import payment_with_proof


@dataclass(frozen=True)
class ProofCheck:
    """What the public check shows of a payment whose NTPD and validation code match (masked), or of a Surat
    Keterangan Lunas whose number and code match (``type`` "skl", ``issued_at``; ``ntpd`` is its payment's)."""

    status: str  # "valid" or "reversed"
    ntpd: str
    tax: str
    bill_masked: str
    tax_year: int
    taxpayer_masked: str
    total: int
    business_date: str
    bank: str
    type: str | None = None  # "skl" for a certificate; a payment proof's answer has no type (as its document)
    issued_at: str | None = None

    def answer(self) -> dict[str, Any]:
        """The JSON answer of the public check (http-api.md): an SKL's adds ``type`` and ``issued_at``."""
        body = {"status": self.status, "ntpd": self.ntpd, "tax": self.tax, "bill_masked": self.bill_masked,
                "tax_year": self.tax_year, "taxpayer_masked": self.taxpayer_masked, "total": self.total,
                "business_date": self.business_date, "bank": self.bank}
        if self.type is not None:
            body.update(type=self.type, issued_at=self.issued_at)
        return body


class Lookups:
    def __init__(self, pool: asyncpg.Pool, settings: DatabaseConfig):
        self.pool = pool
        self.settings = settings

    async def claim_nonce(self, bank_code: str, nonce: str) -> bool:
        """False when the bank already used ``nonce`` (a replay)."""
        async with bounded(self.pool, self.settings) as conn:
            return await nonces.claim(conn, bank_code, nonce)

    async def payment(self, ntpd: str) -> asyncpg.Record | None:
        """A payment with its proof and reversal, or None."""
        async with bounded(self.pool, self.settings) as conn:
            return await payment_with_proof(conn, ntpd)

    async def check_proof(self, raw_ntpd: str, code: str | None) -> ProofCheck | None:
        """The public check: None for an unknown NTPD and for a wrong code alike, so that the check never
        reveals that a payment exists. ``SKL-<NTPD>-<nn>`` is a Surat Keterangan Lunas's number."""
        if is_skl_number(raw_ntpd):
            return await self._check_skl(raw_ntpd, code)
        try:
            ntpd = parse_ntpd(raw_ntpd)
        except FormatError:
            return None
        if code is None:
            return None
        row = await self.payment(ntpd)
        if row is None or row["validation_code"] is None or row["validation_code"] != code:
            return None
        document = json.loads(row["document"])
        return ProofCheck(
            status="reversed" if row["reversed_at"] else "valid", ntpd=ntpd, tax=row["tax"],
            bill_masked=mask_bill_id(document["bill"]), tax_year=document["tax_year"],
            taxpayer_masked=mask_name(document["taxpayer"]), total=document["total"],
            business_date=document["business_date"], bank=document["bank"])

    async def _check_skl(self, number: str, code: str | None) -> ProofCheck | None:
        try:
            parse_skl_number(number)
        except FormatError:
            return None
        if code is None:
            return None
        async with bounded(self.pool, self.settings) as conn:
            row = await skl_store.by_number(conn, number)
        if row is None or row["validation_code"] != code:
            return None
        document = json.loads(row["document"])
        return ProofCheck(
            status="reversed" if row["reversed_at"] else "valid", ntpd=document["ntpd"], tax=document["tax"],
            bill_masked=mask_bill_id(document["bill"]), tax_year=document["tax_year"],
            taxpayer_masked=mask_name(document["taxpayer"]), total=document["total"],
            business_date=document["business_date"], bank=document["bank"], type=SKL_TYPE,
            issued_at=document["issued_at"])

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database answers and its schema is the one this code expects."""
        body: dict[str, Any] = {"database": "unreachable", "migrations": None}
        try:
            async with bounded(self.pool, self.settings) as conn:
                version = await migrate.current_version(conn)
        except Exception as exc:  # noqa: BLE001 - readiness says why, never raises
            body["error"] = type(exc).__name__
            return False, body
        expected = migrate.latest_version()
        body["database"] = "ok"
        body["migrations"] = {"current": version, "expected": expected}
        return version == expected, body

    def pool_sizes(self) -> tuple[int, int]:
        return self.pool.get_size(), self.pool.get_idle_size()
