"""LogRow.record(): what COPY gets of a message-log row, column by column (gateway/domain/log_row.py)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.domain.log_row import COLUMNS, FIELD_VALUE_MAX, TEXT_MAX, LogRow

AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_a_usual_row_is_written_as_it_is_in_column_order():
    row = LogRow(logged_at=AT, channel="iso", direction="in", event="message", bank_code="110",
                 connection_id="iso-1", peer="127.0.0.1:5555", mti="0200", processing_code="171000", stan="000001",
                 transmitted="1201030000", rrn="RRN000000001", response_code="00", bill_id="3275010001001000102026",
                 ntpd="327520261201000001", message_key="iso|000001", elapsed_ms=3, fields={"t": "0200", "4": "154500"},
                 detail="fine")
    record = row.record()
    assert dict(zip(COLUMNS, record, strict=True)) == {
        "logged_at": AT, "channel": "iso", "direction": "in", "event": "message", "bank_code": "110",
        "connection_id": "iso-1", "peer": "127.0.0.1:5555", "mti": "0200", "processing_code": "171000",
        "stan": "000001", "transmitted": "1201030000", "rrn": "RRN000000001", "response_code": "00",
        "bill_id": "3275010001001000102026", "ntpd": "327520261201000001", "message_key": "iso|000001",
        "elapsed_ms": 3.0, "fields": '{"t": "0200", "4": "154500"}', "detail": "fine"}
    assert type(record[COLUMNS.index("elapsed_ms")]) is float


def test_every_text_column_is_made_writable_and_bounded():
    row = LogRow(logged_at=AT, channel="iso", direction="in", bank_code="1\x00\ud800", connection_id="c" * 500,
                 peer="p\ttab", mti="02\n00", rrn="r" * TEXT_MAX, message_key="k\udcff", detail="d" * 5000)
    values = dict(zip(COLUMNS, row.record(), strict=True))
    assert values["bank_code"] == "1\\x00\\ud800"
    assert values["connection_id"] == "c" * (TEXT_MAX - 1) + "…"
    assert values["rrn"] == "r" * TEXT_MAX                       # at the bound: kept whole
    assert values["peer"] == "p\ttab" and values["mti"] == "02\n00"   # TAB and LF are writable: kept
    assert values["message_key"] == "k\\udcff"
    assert values["detail"] == "d" * 1999 + "…"
    assert (values["fields"], values["elapsed_ms"], values["stan"]) == (None, None, None)


def test_fields_are_cleaned_keys_and_values_at_every_depth():
    fields = {"2": "601900******0001", "\x00key": "\ud83d", 7: "seven", "long": "x" * (FIELD_VALUE_MAX + 1),
              "nested": {"deep": ["\x07", 1.5, float("nan"), True, None, 3]},
              "d1": {"d2": {"d3": {"d4": {"d5": "too deep", "n": 1}}}}}
    cleaned = json.loads(LogRow(logged_at=AT, channel="iso", direction="in", fields=fields).record()[COLUMNS.index("fields")])
    assert cleaned == {
        "2": "601900******0001", "\\x00key": "\\ud83d", "7": "seven", "long": "x" * (FIELD_VALUE_MAX - 1) + "…",
        "nested": {"deep": ["\\x07", 1.5, "nan", True, None, 3]},
        "d1": {"d2": {"d3": {"d4": {"d5": "…", "n": "…"}}}}}
