"""Support staff's routes: transaction search and story, notes, and resolving reconciliation items
(spec/http-api.md "Staff routes", operations.md "Reconciliation report": items are resolved with a note,
never by editing payments)."""
from __future__ import annotations

import datetime
import json
from typing import Any, overload

from aiohttp import web

from gateway.domain.errors import FormatError
from gateway.domain.text import NOTE_MAX
from gateway.http.bank_routes import json_body
from gateway.http.edge import text_field
from gateway.http.problems import Problem
from gateway.http.staff_auth import actor, staff_user
from gateway.staff.support import RESOLUTIONS, search_date
from gateway.staff.support import search_filters as parse_search

ALL = {"support", "treasury", "admin"}


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


@overload
def _record(row: None, *, json_fields: tuple[str, ...] = ()) -> None: ...


@overload
def _record(row: Any, *, json_fields: tuple[str, ...] = ()) -> dict[str, Any]: ...


def _record(row, *, json_fields: tuple[str, ...] = ()) -> dict[str, Any] | None:
    if row is None:
        return None
    out = {k: _plain(v) for k, v in dict(row).items()}
    for name in json_fields:
        if isinstance(out.get(name), str):
            out[name] = json.loads(out[name])
    return out


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Problem(404, "no such transaction")
    return int(raw)


def search_filters(q) -> tuple[dict[str, Any], str | None]:
    """The filters of ``GET /v1/transactions`` and the response code asked for, or Problem 400 (RC 30); the
    parsing is the support service's, shared with the console's search form."""
    try:
        return parse_search(q)
    except FormatError as exc:
        raise Problem(400, f"malformed search parameter: {exc}", "30") from None


class StaffSupportRoutes:
    """The routes translate; the use cases (and their audit rows, in the same transaction) are the
    support service's."""

    def __init__(self, services):
        self.support = services.support

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/transactions", self.search),
            web.get("/v1/transactions/{id}", self.story),
            web.post("/v1/transactions/{id}/notes", self.note),
            web.get("/v1/reconciliation-items", self.items),
            web.post("/v1/reconciliation-items/{id}/resolve", self.resolve),
        ]

    async def search(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        filters, rc = search_filters(request.query)
        rows = await self.support.search(actor(request, user), filters, rc)
        return web.json_response({"transactions": [_record(r) for r in rows]})

    async def story(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        found = await self.support.story(actor(request, user), _id(request))
        if found is None:
            raise Problem(404, "no such transaction")
        return web.json_response({
            **_record(found["head"]),
            "payment": _record(found["payment"]),
            "messages": [_record(m, json_fields=("fields",)) for m in found["messages"]],
            "quotes": [_record(q) for q in found["quotes"]],
            "reversal": _record(found["reversal"]),
            "tombstones": [_record(t) for t in found["tombstones"]],
            "reconciliation": [_record(r) for r in found["reconciliation"]],
            "notes": [_record(n) for n in found["notes"]],
        })

    async def note(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        payment_id = _id(request)
        text = text_field(json_body(request), "note", NOTE_MAX, "30", multiline=True).strip()
        if not await self.support.add_note(actor(request, user), payment_id, text):
            raise Problem(404, "no such transaction")
        return web.json_response({"payment_id": payment_id, "author": user.username, "note": text}, status=201)

    async def items(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        day = None
        if request.query.get("date"):
            try:
                day = search_date(request.query["date"])
            except FormatError:
                raise Problem(400, "date must be YYYY-MM-DD", "30") from None
        rows = await self.support.open_items(actor(request, user), day)
        return web.json_response({"items": [_record(r) for r in rows]})

    async def resolve(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        item_id = _id(request)
        body = json_body(request)
        resolution = body.get("resolution")
        if resolution not in RESOLUTIONS:
            raise Problem(400, f"resolution: one of {', '.join(RESOLUTIONS)}", "30")
        note = text_field(body, "note", NOTE_MAX, "30", multiline=True).strip()
        outcome = await self.support.resolve(actor(request, user), item_id, resolution, note)
        if outcome == "missing":
            raise Problem(404, "no such reconciliation item")
        if outcome == "already":
            raise Problem(409, "this item is already resolved")
        return web.json_response({"id": item_id, "status": "resolved", "resolution": resolution,
                                  "resolved_by": user.username})
