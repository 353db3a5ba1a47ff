"""The search filters shared by the staff API and the console (gateway/staff/support.py search_filters)."""
from __future__ import annotations

import datetime as dt

import pytest

from gateway.domain.errors import FormatError
from gateway.staff.support import before_id, search_date, search_filters


def test_a_nop_in_display_form_or_digits_gives_the_same_filter():
    dotted, _ = search_filters({"nop": "32.75.010.001.001-0001.0"})
    plain, _ = search_filters({"nop": "327501000100100010"})
    assert dotted == plain == {"nop": "327501000100100010"}


def test_every_filter_and_the_rc():
    filters, rc = search_filters({"nop": "", "registration_number": " 20261100012356 ", "ntpd": "261123100000001210",
                                  "rrn": "261123000001", "stan": "000001", "bank": "110", "date": "2026-11-23",
                                  "before": "42", "rc": "00"})
    assert filters == {"registration_number": "20261100012356", "ntpd": "261123100000001210",
                       "rrn": "261123000001", "stan": "000001", "bank": "110", "date": dt.date(2026, 11, 23),
                       "before": 42}
    assert rc == "00"
    assert search_filters({}) == ({}, None)


@pytest.mark.parametrize("query, name", [
    ({"nop": "32.75.010"}, "nop"), ({"stan": "1234567"}, "stan"), ({"date": "20261123"}, "date"),
    ({"date": "2026-W48-1"}, "date"), ({"before": "0"}, "before"), ({"before": str(2**63)}, "before"),
    ({"rc": "0"}, "rc"), ({"rc": "ab"}, "rc"), ({"bank": "1\x00"}, "bank"),
])
def test_malformed_filters_name_the_field(query, name):
    with pytest.raises(FormatError) as raised:
        search_filters(query)
    assert name in str(raised.value)


def test_dates_and_paging_ids():
    assert search_date("2026-11-23") == dt.date(2026, 11, 23)
    with pytest.raises(FormatError):
        search_date("2026-02-30")
    assert before_id("9223372036854775807") == 2**63 - 1
    with pytest.raises(FormatError):
        before_id("-1")
