"""Typed service results. Each carries a response code; the adapters render them as ISO fields or JSON.

Results of financial requests are stored with their message key and returned unchanged for a repeat,
so they round-trip through JSON (``to_json`` / ``from_json``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.domain.assessment import Amount


@dataclass(frozen=True)
class BillView:
    tax: str
    bill_key: str
    nop: str
    tax_year: int
    taxpayer_name: str
    object_address: str
    kelurahan: str
    kecamatan: str
    region: str
    land_area: int
    building_area: int
    status: str
    principal: int
    due_date: date | None = None
    # BPHTB only
    registration_number: str | None = None
    nik_masked: str | None = None
    acquisition_type: int | None = None
    acquisition_value: int | None = None
    ppat_name: str | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class QuoteView:
    total: int
    expires_at: datetime


@dataclass(frozen=True)
class InquiryResult:
    rc: str
    business_date: date | None = None
    bill: BillView | None = None
    amount: Amount | None = None
    other_unpaid_years: tuple[int, ...] = ()
    quote: QuoteView | None = None
    ntpd: str | None = None  # RC 88, for the bank that paid it
    repeated: bool = False


@dataclass(frozen=True)
class ArrearsLine:
    bill: BillView
    amount: Amount


@dataclass(frozen=True)
class ArrearsResult:
    rc: str
    business_date: date | None = None
    nop: str | None = None
    bills: tuple[ArrearsLine, ...] = ()
    total_due: int = 0


@dataclass(frozen=True)
class PaymentResult:
    rc: str
    business_date: date | None = None
    ntpd: str | None = None
    bill: BillView | None = None
    amount: Amount | None = None
    paid_at: datetime | None = None
    bank: str | None = None
    channel: str | None = None
    ntb: str | None = None
    other_unpaid_years: tuple[int, ...] = ()
    quote_used: bool = False
    # The signed proof (spec/domain.md "Payment proof"), on RC 00.
    proof: dict[str, Any] | None = None
    signature: str | None = None
    kid: str | None = None
    validation_code: str | None = None
    repeated: bool = False


@dataclass(frozen=True)
class ReversalResult:
    rc: str
    business_date: date | None = None  # the date the reversal message belongs to
    ntpd: str | None = None
    amount: int | None = None
    payment_business_date: date | None = None
    tombstone: bool = False
    already_reversed: bool = False
    repeated: bool = False


def to_json(result: Any) -> dict[str, Any]:
    """``result`` as JSON values: dataclasses as objects, dates as ISO text, tuples as lists; anything else
    (text, numbers, a proof's dict) as it is. Runs for every approved request (its stored answer)."""
    return _convert(result)


_AS_IS = frozenset((str, int, bool, float, type(None)))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}     # per result class, looked up once


def _convert(value: Any) -> Any:
    cls = type(value)
    if cls in _AS_IS:
        return value
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    if names is not None:
        out = {}
        for name in names:
            item = getattr(value, name)
            out[name] = item if type(item) in _AS_IS else _convert(item)
        return out
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_convert(v) for v in value]
    return value


def from_json(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{name: _decode(hints[name], value) for name, value in data.items() if name in hints})


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(inner[0], value)
    if origin is tuple:
        (item, _) = typing.get_args(hint)
        return tuple(_decode(item, v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a hint is a class, never an instance
        return from_json(hint, value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    return value
