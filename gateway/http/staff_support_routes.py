"""Support staff's routes: transaction search and story, notes, and resolving reconciliation items
(spec/http-api.md "Staff routes", operations.md "Reconciliation report": items are resolved with a note,
never by editing payments)."""
from __future__ import annotations

import datetime
import json
from typing import Any

from aiohttp import web

from gateway.domain.errors import FormatError
from gateway.domain.nop import parse_nop
from gateway.http.bank_routes import json_body
from gateway.http.problems import Problem
from gateway.http.staff_auth import audit_staff, staff_user
from gateway.store import transactions as store

ALL = {"support", "treasury", "admin"}
RESOLUTIONS = ("accepted", "corrected", "escalated")


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


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


class StaffSupportRoutes:
    def __init__(self, services):
        self.s = services

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
        q = request.query
        filters: dict[str, Any] = {}
        try:
            if q.get("nop"):
                filters["nop"] = parse_nop(q["nop"])
            for name in ("registration_number", "ntpd", "rrn", "stan", "bank"):
                if q.get(name):
                    filters[name] = q[name].strip()
            if q.get("date"):
                filters["date"] = datetime.date.fromisoformat(q["date"])
            if q.get("before"):
                filters["before"] = int(q["before"])
        except (FormatError, ValueError) as exc:
            raise Problem(400, f"malformed search parameter: {exc}", "30") from None
        await audit_staff(request, user, "transactions.search", None, {k: str(v) for k, v in filters.items()})
        async with self.s.pool.acquire(timeout=3) as conn:
            rows = await store.search(conn, filters, q.get("rc") or None)
        return web.json_response({"transactions": [_record(r) for r in rows]})

    async def story(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        payment_id = _id(request)
        async with self.s.pool.acquire(timeout=3) as conn:
            found = await store.story(conn, payment_id)
        if found is None:
            raise Problem(404, "no such transaction")
        await audit_staff(request, user, "transactions.story", str(payment_id))
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
        text = json_body(request).get("note")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 2000:
            raise Problem(400, "note: 1-2000 characters required", "30")
        async with self.s.pool.acquire(timeout=3) as conn:
            added = await store.add_note(conn, payment_id, user.username, text.strip())
        if not added:
            raise Problem(404, "no such transaction")
        await audit_staff(request, user, "transactions.note", str(payment_id), {"note": text.strip()})
        return web.json_response({"payment_id": payment_id, "author": user.username, "note": text.strip()},
                                 status=201)

    async def items(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        day = None
        if request.query.get("date"):
            try:
                day = datetime.date.fromisoformat(request.query["date"])
            except ValueError:
                raise Problem(400, "date must be YYYY-MM-DD", "30") from None
        await audit_staff(request, user, "reconciliation.items", day.isoformat() if day else None)
        async with self.s.pool.acquire(timeout=3) as conn:
            rows = await store.open_items(conn, day)
        return web.json_response({"items": [_record(r) for r in rows]})

    async def resolve(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL)
        item_id = _id(request)
        body = json_body(request)
        resolution, note = body.get("resolution"), body.get("note")
        if resolution not in RESOLUTIONS:
            raise Problem(400, f"resolution: one of {', '.join(RESOLUTIONS)}", "30")
        if not isinstance(note, str) or not note.strip():
            raise Problem(400, "note: required", "30")
        async with self.s.pool.acquire(timeout=3) as conn:
            outcome = await store.resolve_item(conn, item_id, resolution, note.strip(), user.username)
        if outcome == "missing":
            raise Problem(404, "no such reconciliation item")
        if outcome == "already":
            raise Problem(409, "this item is already resolved")
        await audit_staff(request, user, "reconciliation.resolve", str(item_id),
                          {"resolution": resolution, "note": note.strip()})
        return web.json_response({"id": item_id, "status": "resolved", "resolution": resolution,
                                  "resolved_by": user.username})
