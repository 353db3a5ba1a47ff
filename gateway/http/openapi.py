"""The OpenAPI 3.1 document of the HTTP API (spec/http-api.md), served at /openapi.json.

The document is ``gateway/http/openapi.yaml``, the one source of the API's shapes. It is read once, at import,
and only what the code owns is filled in, so that it cannot drift from the code: the response-code table (RC
and message from gateway/domain/codes.py, the HTTP status of the non-200 codes from the HTTP layer's own
mapping, joined with the yaml's "when" texts, ``x-when``) and the channel enum (gateway/domain/bills.py). A
yaml that disagrees with the code stops the import with ``DocumentError``.

tests/unit/test_openapi_document.py validates every renderer's answers against the document; the e2e tests
and Schemathesis check a running gateway's answers (tests/helpers/openapi_check.py).
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from gateway.domain.bills import Channel
from gateway.domain.codes import RC, message
from gateway.http.bank_routes import PROBLEM_RC

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
RC_ROWS = "<!-- response code rows: filled in at load by gateway/http/openapi.py -->\n"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: 8 times faster

# The HTTP status of every response code that is not a business answer (HTTP 200): the bank routes' table,
# and 94, which BankRoutes._idempotent answers 422 (a key reused with another request) before that table.
HTTP_STATUS: dict[str, int] = {**{rc: status for rc, (status, _) in PROBLEM_RC.items()}, RC.DUPLICATE.value: 422}


class DocumentError(RuntimeError):
    """openapi.yaml disagrees with the code (or is not plain JSON): a programming error, found at import."""


def rc_table(when: dict[str, str]) -> list[tuple[str, str, str]]:
    """(RC, message, when) for every RC of the code, in its order; a non-200 code's status ends its "when"."""
    codes = [rc.value for rc in RC]
    if set(when) != set(codes):
        raise DocumentError(f"openapi.yaml x-when lists {list(when)}, the code's RC table is {codes}: "
                            f"missing {sorted(set(codes) - set(when))}, unknown {sorted(set(when) - set(codes))}")
    if set(HTTP_STATUS) - set(codes):
        raise DocumentError(f"HTTP statuses for unknown response codes: {sorted(set(HTTP_STATUS) - set(codes))}")
    rows = []
    for rc in codes:
        text = when[rc]
        if not isinstance(text, str) or not text.strip() or "(HTTP " in text:
            raise DocumentError(f"openapi.yaml x-when {rc}: a non-empty text without its HTTP status, got {text!r}")
        rows.append((rc, message(rc), f"{text} (HTTP {HTTP_STATUS[rc]})" if rc in HTTP_STATUS else text))
    return rows


def load(text: str) -> dict[str, Any]:
    """The served document: the yaml ``text`` with the code's tables filled in."""
    document = yaml.load(text, Loader=_LOADER)
    schemas = document["components"]["schemas"]
    code, channel = schemas["ResponseCode"], schemas["Channel"]
    if "enum" in code or "enum" in channel:
        raise DocumentError("openapi.yaml: the ResponseCode and Channel enums come from the code, not the yaml")
    rows = rc_table(code.pop("x-when"))

    info = document["info"]
    if info["description"].count(RC_ROWS) != 1:
        raise DocumentError(f"openapi.yaml info.description must hold the line {RC_ROWS.strip()!r} once")
    info["description"] = info["description"].replace(
        RC_ROWS, "".join(f"| `{rc}` | {text} | {when} |\n" for rc, text, when in rows))
    code["enum"] = [rc for rc, _, _ in rows]
    code["description"] += "\n\n" + "".join(f"- `{rc}` {text}: {when}\n" for rc, text, when in rows)
    channel["enum"] = [c.value for c in Channel]

    # Plain JSON only: an unquoted date or a numeric key in the yaml would be served differently than read.
    try:
        plain = json.loads(json.dumps(document)) == document
    except TypeError:
        plain = False
    if not plain:
        raise DocumentError("openapi.yaml is not plain JSON (an unquoted date or a numeric key?)")
    return document


DOCUMENT: dict[str, Any] = load(resources.files("gateway.http").joinpath("openapi.yaml").read_text("utf-8"))
_BODY = json.dumps(DOCUMENT)


def openapi_route() -> web.RouteDef:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=_BODY, content_type=JSON)

    return web.get("/openapi.json", handler)
