"""Readable rendering of ISO 8583 answers for ``gateway bank-sim``."""
from __future__ import annotations

from gateway.domain.codes import message
from gateway.iso8583.profiles import parse_bphtb_profile, parse_pbb_profile

FIELD_NAMES = {
    "t": "MTI", "2": "PAN", "3": "processing code", "4": "amount", "7": "transmission (UTC)", "11": "STAN",
    "12": "local time", "13": "local date", "15": "business date", "18": "channel", "32": "acquirer",
    "33": "forwarder", "37": "RRN", "39": "response code", "41": "terminal", "42": "card acceptor",
    "43": "acceptor name", "47": "NTPD", "48": "NTB", "49": "currency", "61": "bill id", "62": "bill profile",
    "63": "validation code", "64": "MAC", "70": "network code", "90": "original data", "128": "MAC",
}


def _order(key: str) -> int:
    return -1 if key == "t" else int(key)


def render_answer(fields: dict[str, str]) -> str:
    lines = []
    for key in sorted((k for k in fields if not k.startswith("_")), key=_order):
        value = fields[key]
        label = FIELD_NAMES.get(key, f"field {key}")
        if key == "39":
            value = f"{value} ({message(value)})"
        if key == "62":
            lines.append(f"{key:>4} {label:<20}")
            profile = _profile(fields.get("3", ""), value)
            lines += [f"{'':>4}   {name:<20} {item}" for name, item in profile.items()]
            continue
        lines.append(f"{key:>4} {label:<20} {value}")
    return "\n".join(lines)


def _profile(processing_code: str, value: str) -> dict:
    try:
        return parse_bphtb_profile(value) if processing_code.endswith("066") else parse_pbb_profile(value)
    except ValueError:
        return {"raw": value}
