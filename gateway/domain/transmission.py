"""The year of an ISO 8583 field 7 (transmission date and time, UTC, MMDDhhmmss), which carries none.

A message key (bank, STAN, field 7) and a payment's origin would otherwise collide a year later with a
message that happens to have the same STAN at the same moment of the year. The year is the one that puts
field 7 closest to the gateway's real clock (a bank's clock is never months away from ours): a message sent
at 23:59:59 on 31 December and received just after midnight keeps its year.
"""
from __future__ import annotations

from datetime import UTC, datetime

# Within half a year of ``now``, the moment in ``now``'s year is the nearest: the same moment in the year
# before or after is at least 365 days from it, so more than half a year from ``now``. A bank's field 7 is
# always so close: the usual answer costs one datetime, not three.
_HALF_YEAR_S = 182 * 86400


def transmission_year(mmddhhmmss: str, now: datetime) -> int:
    """The year of field 7 nearest ``now`` (UTC); ``now``'s year when field 7 is no valid moment at all."""
    now = now.astimezone(UTC)
    try:
        this_year = datetime(now.year, int(mmddhhmmss[0:2]), int(mmddhhmmss[2:4]), int(mmddhhmmss[4:6]),
                             int(mmddhhmmss[6:8]), int(mmddhhmmss[8:10]), tzinfo=UTC)
        if abs((this_year - now).total_seconds()) < _HALF_YEAR_S:
            return now.year
    except (ValueError, IndexError):
        pass
    best: tuple[float, int] | None = None
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            moment = datetime(year, int(mmddhhmmss[0:2]), int(mmddhhmmss[2:4]), int(mmddhhmmss[4:6]),
                              int(mmddhhmmss[6:8]), int(mmddhhmmss[8:10]), tzinfo=UTC)
        except (ValueError, IndexError):  # 29 February of a common year, or not a moment at all
            continue
        distance = abs((moment - now).total_seconds())
        if best is None or distance < best[0]:
            best = (distance, year)
    return best[1] if best is not None else now.year
