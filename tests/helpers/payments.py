"""Typed payment requests as a bank's ISO 8583 messages make them, for the engine and settlement tests."""
from __future__ import annotations

from datetime import date

from gateway.service.requests import IsoOrigin, MessageKey, PbbPayment

DAY = date(2026, 11, 23)


def key(stan: str, content: str, cls: str = "02") -> MessageKey:
    return MessageKey.iso(stan, "1123021500", cls, content)


def pbb(bank: str, nop: str, stan: str, amount: int = 154_500) -> PbbPayment:
    return PbbPayment(bank=bank, nop=nop, tax_year=2026, amount=amount, ntb="NTB" + stan, channel="atm",
                      key=key(stan, f"{bank}|{nop}|{amount}"),
                      origin=IsoOrigin(stan=stan, transmitted="1123021500", rrn="RRN" + stan, terminal_id="ATM1"))
