"""Typed service requests. The ISO 8583 and HTTP adapters build these; the service validates their raw
fields (NOP, year, amount …) so that no format rule is written twice."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.domain.transmission import transmission_year

# The adapter's message-log row of an approval's answer, written by the payment's own transaction
# (spec/operations.md "Records kept"): result -> LogRow. Not part of a request's identity.
AnswerLog = Callable[[Any], Any] | None


@dataclass(frozen=True)
class MessageKey:
    """The exactly-once identity of a financial request (spec/iso8583.md "Keys", http-api.md "Idempotency").

    ``key`` is unique per (channel, bank); ``content`` is what must be identical in a repeat.
    """

    channel: str  # "iso" | "http"
    key: str
    content: str

    def content_hash(self) -> bytes:
        return hashlib.sha256(self.content.encode()).digest()

    @staticmethod
    def iso(stan: str, transmitted: str, mti_class: str, content: str) -> "MessageKey":
        """STAN, field 7 with its year (the one nearest the real clock) and the MTI class: without the year
        a key would collide with the same STAN at the same moment a year later."""
        year = transmission_year(transmitted, datetime.now(UTC))
        return MessageKey("iso", f"{stan}:{year}{transmitted}:{mti_class}", content)


@dataclass(frozen=True)
class IsoOrigin:
    """Where an ISO 8583 payment came from; reversals by field 90 find it by these."""

    stan: str
    transmitted: str  # field 7, MMDDhhmmss
    rrn: str = ""
    terminal_id: str = ""

    @property
    def year(self) -> int:
        return transmission_year(self.transmitted, datetime.now(UTC))


@dataclass(frozen=True)
class PbbInquiry:
    bank: str | None  # None: an operator's look-up, no quote recorded
    nop: str
    tax_year: str | int
    key: MessageKey | None = None


@dataclass(frozen=True)
class BphtbInquiry:
    bank: str | None
    registration_number: str
    nop: str | None = None
    tax_year: str | int | None = None
    key: MessageKey | None = None


@dataclass(frozen=True)
class PbbArrears:
    bank: str | None
    nop: str


@dataclass(frozen=True)
class PbbPayment:
    bank: str
    nop: str
    tax_year: str | int
    amount: str | int
    ntb: str
    channel: str  # a Channel name: teller, atm, …
    key: MessageKey | None
    via: str = "iso"  # "iso" | "http"
    origin: IsoOrigin | None = None
    terminal_id: str = ""
    answer_log: AnswerLog = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BphtbPayment:
    bank: str
    registration_number: str
    amount: str | int
    ntb: str
    channel: str
    key: MessageKey | None
    nop: str | None = None
    tax_year: str | int | None = None
    via: str = "iso"
    origin: IsoOrigin | None = None
    terminal_id: str = ""
    answer_log: AnswerLog = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class OriginalRef:
    """Field 90 of a reversal: the original payment's STAN, field 7 and institutions."""

    stan: str
    transmitted: str
    acquirer: str
    forwarding: str = ""

    @property
    def year(self) -> int:
        return transmission_year(self.transmitted, datetime.now(UTC))


@dataclass(frozen=True)
class Reversal:
    bank: str
    amount: str | int
    key: MessageKey | None
    ntpd: str | None = None  # by NTPD (HTTP always; ISO when field 47 holds one)
    original: OriginalRef | None = None  # else by field 90
    tax: str | None = None  # the tax the processing code names, when known
    via: str = "iso"
    reason: str = ""
    answer_log: AnswerLog = field(default=None, compare=False, repr=False)
