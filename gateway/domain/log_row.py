"""One row of the message log, made writable: every text without NUL, lone surrogates or other controls
(shown escaped), every value cut to a bound, ``fields`` serialised once (spec/operations.md "Records kept").

Pure data and rules: the channels build rows, the store writes them (gateway/store/message_log.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from .text import loggable

# Bounds of what one row may store: generous for a message, tiny beside a hostile 1 MiB path.
TEXT_MAX = 200
DETAIL_MAX = 2000
FIELD_VALUE_MAX = 1000
FIELDS_MAX = 200


@dataclass
class LogRow:
    logged_at: datetime
    channel: str
    direction: str
    event: str = "message"
    bank_code: str | None = None
    connection_id: str | None = None
    peer: str | None = None
    mti: str | None = None
    processing_code: str | None = None
    stan: str | None = None
    transmitted: str | None = None
    rrn: str | None = None
    response_code: str | None = None
    bill_id: str | None = None
    ntpd: str | None = None
    message_key: str | None = None
    elapsed_ms: float | None = None
    fields: dict[str, Any] | None = None
    detail: str | None = None

    def record(self) -> tuple:
        """The row as COPY takes it (in COLUMNS' order), every text made writable and bounded."""
        # Written out column by column: this runs twice for every message, and the usual text (printable,
        # within its bound) is kept as it is without a call.
        return (
            self.logged_at, _text(self.channel), _text(self.direction), _text(self.event), _text(self.bank_code),
            _text(self.connection_id), _text(self.peer), _text(self.mti), _text(self.processing_code),
            _text(self.stan), _text(self.transmitted), _text(self.rrn), _text(self.response_code),
            _text(self.bill_id), _text(self.ntpd), _text(self.message_key),
            None if self.elapsed_ms is None else float(self.elapsed_ms),
            None if self.fields is None else json.dumps(_clean_json(self.fields, depth=0)),
            loggable(self.detail, DETAIL_MAX),
        )

    def quarantined(self, reason: str) -> tuple:
        """What is known to be writable of a row the database refused: when, where, and why not."""
        return LogRow(logged_at=self.logged_at, channel=self.channel if self.channel in ("iso", "http") else "iso",
                      direction=self.direction if self.direction in ("in", "out") else "in",
                      event="quarantined", detail=f"row could not be written: {reason}").record()


COLUMNS = [f.name for f in fields(LogRow)]
# record() names the columns itself, in this order.
if COLUMNS != ["logged_at", "channel", "direction", "event", "bank_code", "connection_id", "peer", "mti",
               "processing_code", "stan", "transmitted", "rrn", "response_code", "bill_id", "ntpd", "message_key",
               "elapsed_ms", "fields", "detail"]:
    raise ImportError("LogRow's fields and LogRow.record() disagree")


def _text(value: Any) -> Any:
    """A text column's value: the usual one as it is, any other text through ``loggable`` (not text: as is)."""
    if type(value) is str and len(value) <= TEXT_MAX and value.isprintable():
        return value
    return loggable(value, TEXT_MAX) if isinstance(value, str) else value


def _clean_json(value: Any, depth: int) -> Any:
    """``fields`` as JSON PostgreSQL accepts (jsonb refuses ``\\u0000``), bounded in depth and size."""
    if depth > 4:
        return "…"
    if isinstance(value, str):  # the usual value, first
        return value if len(value) <= FIELD_VALUE_MAX and value.isprintable() else loggable(value, FIELD_VALUE_MAX)
    if isinstance(value, dict):
        # A message's fields: short printable keys and values, kept as they are without a call each.
        out: dict[str, Any] = {}
        for k, v in list(value.items())[:FIELDS_MAX]:
            key = k if type(k) is str and len(k) <= 64 and k.isprintable() else (loggable(str(k), 64) or "")
            out[key] = v if depth < 4 and type(v) is str and len(v) <= FIELD_VALUE_MAX and v.isprintable() \
                else _clean_json(v, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_clean_json(v, depth + 1) for v in list(value)[:FIELDS_MAX]]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return loggable(str(value), FIELD_VALUE_MAX)
