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
        """The row as COPY takes it, every text made writable and bounded."""
        values: list[Any] = []
        for name in COLUMNS:  # not dataclasses.fields(): this runs for every message
            value = getattr(self, name)
            if name == "fields":
                value = None if value is None else json.dumps(_clean_json(value, depth=0))
            elif name == "detail":
                value = loggable(value, DETAIL_MAX)
            elif isinstance(value, str):
                value = loggable(value, TEXT_MAX)
            elif name == "elapsed_ms" and value is not None:
                value = float(value)
            values.append(value)
        return tuple(values)

    def quarantined(self, reason: str) -> tuple:
        """What is known to be writable of a row the database refused: when, where, and why not."""
        return LogRow(logged_at=self.logged_at, channel=self.channel if self.channel in ("iso", "http") else "iso",
                      direction=self.direction if self.direction in ("in", "out") else "in",
                      event="quarantined", detail=f"row could not be written: {reason}").record()


COLUMNS = [f.name for f in fields(LogRow)]


def _clean_json(value: Any, depth: int) -> Any:
    """``fields`` as JSON PostgreSQL accepts (jsonb refuses ``\\u0000``), bounded in depth and size."""
    if depth > 4:
        return "…"
    if isinstance(value, str):  # the usual value, first
        return loggable(value, FIELD_VALUE_MAX)
    if isinstance(value, dict):
        return {loggable(str(k), 64): _clean_json(v, depth + 1) for k, v in list(value.items())[:FIELDS_MAX]}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v, depth + 1) for v in list(value)[:FIELDS_MAX]]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return loggable(str(value), FIELD_VALUE_MAX)
