"""Support's pages: search, a transaction's story and its notes, the work queue."""
from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.console.common import _bank_filter, _banks, _day, _id, _notice, _services
from gateway.console.format import ISO_FIELDS, PROFILE_SLOTS, RECON_CLASS, RESOLUTION, local_time, rupiah
from gateway.console.web import (
    PREFIX,
    Refused,
    actor,
    form,
    redirect,
    render,
    require,
    text,
)
from gateway.domain.errors import FormatError
from gateway.domain.ntpd import parse_ntpd
from gateway.domain.text import NOTE_MAX
from gateway.iso8583.profiles import parse_bphtb_profile, parse_pbb_profile
from gateway.staff.support import RESOLUTIONS, SEARCH_PAGE, search_filters

SEARCH_FIELDS = ("nop", "registration_number", "ntpd", "rrn", "stan", "bank", "date", "rc")


async def search(request: web.Request) -> web.Response:
    user = await require(request)
    q = request.query
    values = {name: q.get(name, "") for name in SEARCH_FIELDS}
    context: dict[str, Any] = {"values": values, "banks": _banks(request), "rows": None, "error": None,
                               "next_url": None}
    if any(q.get(name) for name in (*SEARCH_FIELDS, "cari", "before")):
        try:
            filters, rc = search_filters(q)
        except FormatError as exc:
            context["error"] = f"Isian pencarian tidak valid: {exc}"
            return render(request, "search.html", context, status=400)
        rows = await _services(request).support.search(actor(request, user), filters, rc)
        context["rows"] = rows
        if len(rows) >= SEARCH_PAGE:
            kept = {k: v for k, v in values.items() if v}
            context["next_url"] = PREFIX + "/transaksi?" + urlencode({**kept, "cari": "1", "before": rows[-1]["id"]})
    return render(request, "search.html", context)


# -- Riwayat transaksi ---------------------------------------------------------------------------------


def _fields(raw: Any) -> list[tuple[str, str, str]]:
    """A logged message's fields as (number or key, name, value as logged)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [("", "", raw)]
    if not isinstance(raw, dict):
        return []

    def order(key: str) -> tuple[int, Any]:
        return (0, int(key)) if key.isdigit() else (1, key)

    out = []
    for key in sorted(raw, key=order):
        value = raw[key]
        if isinstance(value, dict) and set(value) == {"len"}:
            shown = f"(disembunyikan, {value['len']} karakter)"
        else:
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out.append((key, ISO_FIELDS.get(key, ""), shown))
        if key == "62" and isinstance(value, str):
            out.extend(_profile(value))
    return out


def _profile(text: str) -> list[tuple[str, str, str]]:
    """Field 62 decoded with the ISO channel's own layout tables (a PBB-P2 or a BPHTB profile, told apart by
    length); a value that is neither is shown only as logged."""
    parse = {287: parse_pbb_profile, 312: parse_bphtb_profile}.get(len(text))
    if parse is None:
        return []
    try:
        slots = parse(text)
    except ValueError:
        return []
    rows = []
    for slot, value in slots.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        elif slot in ("principal", "penalty", "total", "acquisition_value"):
            value = rupiah(value)
        rows.append((f"62.{slot}", PROFILE_SLOTS.get(slot, slot), str(value)))
    return rows


def timeline(found: dict[str, Any], tz: ZoneInfo) -> list[dict[str, Any]]:
    """The story's steps in time order, each with the time since the step before it."""
    steps: list[dict[str, Any]] = []

    def add(at, kind: str, title: str, details: list[tuple[str, Any]], fields=None, css: str = "") -> None:
        steps.append({"at": at, "kind": kind, "title": title, "details": [(k, v) for k, v in details
                                                                           if v not in (None, "")],
                      "fields": fields or [], "css": css})

    for m in found["messages"]:
        inbound = m["direction"] == "in"
        channel = "ISO 8583" if m["channel"] == "iso" else "HTTP"
        kind = ("Pesan masuk" if inbound else "Pesan keluar") + f" ({channel})"
        title = " ".join(str(x) for x in (m["mti"], m["processing_code"]) if x)
        if m["response_code"]:
            title += f" — RC {m['response_code']}"
        if m["event"] and m["event"] != "message":  # a plain message is the rule; others say what they were
            title += f" [{m['event']}]"
        add(m["logged_at"], kind, title,
            [("Bank", m["bank_code"]), ("STAN", m["stan"]), ("RRN", m["rrn"]), ("NTPD", m["ntpd"]),
             ("Kunci pesan", m["message_key"]),
             ("Lama proses", f"{m['elapsed_ms']:.1f} ms".replace(".", ",") if m["elapsed_ms"] is not None else None),
             ("Keterangan", m["detail"])], _fields(m["fields"]), "message")
    for q in found["quotes"]:
        add(q["created_at"], "Kutipan tagihan (quote)", f"Bank {q['bank_code']}",
            [("Pokok", rupiah(q["principal"])), ("Denda", rupiah(q["penalty"])), *_relief_facts(q),
             ("Jumlah", rupiah(q["total"])), ("Bulan terlambat", q["months_late"]),
             ("Berlaku sampai", local_time(q["expires_at"], tz))], css="quote")
    p = found["payment"]
    add(p["paid_at"], "Pembayaran", f"NTPD {p['ntpd']}",
        [("Bank", p["bank_code"]), ("Kanal", p["channel"]), ("Lewat", p["via"].upper()), ("NTB", p["ntb"]),
         ("Pokok", rupiah(p["principal"])), ("Denda", rupiah(p["penalty"])), *_relief_facts(p),
         ("Jumlah", rupiah(p["total"])), ("Tanggal bisnis", p["business_date"].isoformat()),
         ("STAN", p["stan"]), ("RRN", p["rrn"])], css="payment")
    r = found["reversal"]
    if r is not None:
        add(r["reversed_at"], "Reversal", f"Bank {r['bank_code']}",
            [("Jumlah", rupiah(r["amount"])), ("Lewat", (r["via"] or "").upper()), ("Alasan", r["reason"])],
            css="reversal")
    for t in found["tombstones"]:
        add(t["created_at"], "Tombstone (reversal tanpa transaksi asal)", f"Bank {t['bank_code']}",
            [("STAN", t["stan"]), ("Waktu transmisi", t["transmitted"]), ("Jumlah", rupiah(t["amount"]))],
            css="reversal")
    for item in found["reconciliation"]:
        add(item["created_at"], "Rekonsiliasi", f"Item #{item['id']}: " + ("item terbuka" if item["status"] == "open"
                                                                          else "item selesai"),
            [("Kelas", RECON_CLASS.get(item["class"], item["class"]))], css="recon")
        if item["resolved_at"] is not None:
            add(item["resolved_at"], "Rekonsiliasi diselesaikan", f"Item #{item['id']} oleh {item['resolved_by']}",
                [("Penyelesaian", RESOLUTION.get(item["resolution"], item["resolution"])),
                 ("Catatan", item["resolution_note"])], css="recon")
    for n in found["notes"]:
        add(n["created_at"], "Catatan staf", n["author"], [("Catatan", n["note"])], css="note")
    steps.sort(key=lambda step: step["at"])
    previous = None
    for step in steps:
        step["since"] = (step["at"] - previous).total_seconds() if previous is not None else None
        previous = step["at"]
    return steps


async def story(request: web.Request) -> web.Response:
    user = await require(request)
    found = await _services(request).support.story(actor(request, user), _id(request))
    if found is None:
        raise Refused(404, "Transaksi ini tidak ditemukan.")
    return render(request, "story.html", {"head": found["head"], "steps": timeline(found, _services(request).config.region.tz),
                                          "notice": _notice(request), "error": None})


async def note(request: web.Request) -> web.Response:
    user = await require(request)
    payment_id = _id(request)
    body = text(await form(request), "catatan", NOTE_MAX, multiline=True)
    if not body:
        raise Refused(400, "Catatan tidak boleh kosong.")
    if not await _services(request).support.add_note(actor(request, user), payment_id, body):
        raise Refused(404, "Transaksi ini tidak ditemukan.")
    return redirect(f"{PREFIX}/transaksi/{payment_id}?pesan=catatan#catatan")


async def reprint(request: web.Request) -> web.Response:
    """The payment's receipt printed again, marked SALINAN (TaxObjectService.receipt_copy_pdf audits it)."""
    user = await require(request)
    try:
        ntpd = parse_ntpd(request.match_info["ntpd"])
    except FormatError:
        raise Refused(404, "Transaksi ini tidak ditemukan.") from None
    body = await _services(request).tax_objects.receipt_copy_pdf(actor(request, user), ntpd)
    if body is None:
        raise Refused(404, "Bukti pembayaran transaksi ini tidak ditemukan.")
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="struk-{ntpd}-salinan.pdf"'})


# -- Antrian kerja -------------------------------------------------------------------------------------


def _queue_filters(request: web.Request, values) -> tuple[date | None, str | None]:
    raw_day = values.get("tanggal", "")
    return (_day(raw_day) if raw_day else None), _bank_filter(request, values.get("bank", ""))


async def queue(request: web.Request) -> web.Response:
    user = await require(request)
    day, bank = _queue_filters(request, request.query)
    found = await _services(request).support.work_queue(actor(request, user), day, bank)
    return render(request, "queue.html", {"items": found["items"], "tombstones": found["tombstones"],
                                          "tanggal": day.isoformat() if day else "", "bank": bank or "",
                                          "banks": _banks(request), "resolutions": RESOLUTIONS,
                                          "notice": _notice(request)})


async def _resolution(request: web.Request) -> tuple[Any, str, str, str]:
    user = await require(request)
    fields = await form(request)
    resolution = fields.get("resolution")
    if resolution not in RESOLUTIONS:
        raise Refused(400, "Pilih penyelesaian: diterima, dikoreksi atau dieskalasi.")
    note_text = text(fields, "catatan", NOTE_MAX, multiline=True)
    if not note_text:
        raise Refused(400, "Penyelesaian memerlukan catatan.")
    _queue_filters(request, fields)  # the filters to return to must be well-formed too
    back = {k: fields[k] for k in ("tanggal", "bank") if isinstance(fields.get(k), str) and fields[k]}
    return user, resolution, note_text, PREFIX + "/antrian?" + urlencode({**back, "pesan": "selesai"})


async def resolve_item(request: web.Request) -> web.Response:
    user, resolution, note_text, back = await _resolution(request)
    outcome = await _services(request).support.resolve(actor(request, user), _id(request), resolution, note_text)
    return _resolved(outcome, back)


async def resolve_tombstone(request: web.Request) -> web.Response:
    user, resolution, note_text, back = await _resolution(request)
    outcome = await _services(request).support.resolve_tombstone(actor(request, user), _id(request), resolution,
                                                                 note_text)
    return _resolved(outcome, back)


def _resolved(outcome: str, back: str) -> web.Response:
    if outcome == "missing":
        raise Refused(404, "Item ini tidak ditemukan.")
    if outcome == "already":
        raise Refused(409, "Item ini sudah diselesaikan sebelumnya.")
    return redirect(back)


def _relief_facts(row) -> list[tuple[str, str]]:
    """What a relief program took off a quote or payment (Pokok and Denda above are the amounts to pay), or
    nothing without one."""
    if not row["relief_id"]:
        return []
    return [("Pengurangan pokok", rupiah(row["discount"])), ("Denda dihapus", rupiah(row["penalty_waived"])),
            ("Program keringanan", f"{row['relief_name']} ({row['relief_id']}) — {row['relief_decree']}")]
