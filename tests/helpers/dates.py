"""Dates and times of the gateway's region: the business date of a request made now, Jakarta wall-clock times."""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from gateway.domain.business_day import business_date

JAKARTA = ZoneInfo("Asia/Jakarta")


def today() -> date:
    """The business date the gateway gives a request made now (default region Asia/Jakarta, cut-off 23:00)."""
    return business_date(datetime.now(UTC), JAKARTA, time(23, 0))


def jakarta(year: int, month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    """That wall-clock time in Asia/Jakarta, as a UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=JAKARTA).astimezone(UTC)
