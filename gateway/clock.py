"""The gateway's notion of "now": real UTC time plus the ``[testing]`` offset.

Business dates, penalties, cut-off and quote expiry all read this clock, so certification runs can
exercise a due date or a closed day without waiting for the calendar. Authentication never does.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, offset_seconds: int = 0):
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FixedClock(Clock):
    """A clock that stands still until moved; for tests."""

    def __init__(self, at: datetime):
        assert at.tzinfo is not None, "FixedClock needs an aware datetime"
        super().__init__(0)
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)
