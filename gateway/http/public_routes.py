"""Public routes: the proof check anyone can make, the published keys, health, readiness, metrics."""
from __future__ import annotations

import datetime
import functools
import math
import time
from collections import OrderedDict
from typing import Any

import jinja2
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import metrics
from gateway.domain.proof import normalize_code
from gateway.http.auth import peer_address
from gateway.http.problems import Problem
from gateway.proofs.text import AGENCY_NAME, TAX_TITLES, government, rupiah, tanggal, waktu

# The HTML answer of the proof check is a page opened from a receipt's QR code: it loads nothing (no script, no
# image, no font, no stylesheet but its own inline one), may not be framed, and tells no other site where the
# reader came from. Every header below is a promise the page keeps.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",  # a valid proof may be reversed later: never show a stale "SAH"
}
# An Accept header is a handful of media ranges; a header of hundreds is not a browser's (bounded work).
_MAX_MEDIA_RANGES = 32
_MAX_SHOWN_NUMBER = 64


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests, refilled continuously. Bounded memory:
    the least recently seen addresses are forgotten first."""

    def __init__(self, per_minute: int, max_clients: int = 100_000):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        tokens, last = self.buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


class PublicRoutes:
    def __init__(self, services):
        self.s = services
        self.limiter = RateLimiter(services.config.http.proof_checks_per_minute)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/proofs/keys", self.keys),
            web.get("/v1/proofs/{ntpd}", self.proof),
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.s.keys.public_keys())

    async def proof(self, request: web.Request) -> web.Response:
        wait = self.limiter.check(peer_address(request))
        if wait:
            raise Problem(429, "too many proof checks from this address", headers={"Retry-After": str(math.ceil(wait))})
        raw = request.match_info["ntpd"]
        found = await self.s.lookups.check_proof(raw, normalize_code(request.query.get("code", "")))
        # A wrong code answers exactly like an unknown NTPD: the check never reveals that a payment exists.
        answer = {"status": "unknown", "ntpd": raw} if found is None else found.answer()
        # The answer depends on Accept: a cache in between must keep the page and the JSON apart.
        if prefers_html(request.headers.get("Accept")):
            page = proof_page(answer, raw, self.s.config.region.name, self._bank_name(answer.get("bank")))
            return web.Response(text=page, content_type="text/html", charset="utf-8",
                                headers={**HTML_HEADERS, "Vary": "Accept"})
        return web.json_response(answer, headers={"Vary": "Accept"})

    def _bank_name(self, code: Any) -> str:
        bank = self.s.config.bank(code) if isinstance(code, str) else None
        return bank.name if bank is not None else ""

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready, found = await self.s.lookups.readiness()
        status = 200 if ready else 503
        body = {"database": found["database"], "migrations": found["migrations"],
                "clock_offset_seconds": self.s.config.clock_offset_seconds}
        if "error" in found:
            body["error"] = found["error"]
        if self.s.message_log is not None:
            # The writer's backlog and what it could not write (spec/operations.md "Records kept").
            body["message_log"] = self.s.message_log.status()
        body["status"] = "ready" if status == 200 else "not ready"
        return web.json_response(body, status=status)

    async def metrics(self, request: web.Request) -> web.Response:
        size, idle = self.s.lookups.pool_sizes()
        metrics.POOL_SIZE.set(size)
        metrics.POOL_IDLE.set(idle)
        if self.s.message_log is not None:
            metrics.MESSAGE_LOG_DROPPED.set(self.s.message_log.dropped)
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


# -- the HTML answer ---------------------------------------------------------------------------------------

def prefers_html(accept: str | None) -> bool:
    """Whether ``Accept`` prefers ``text/html`` to ``application/json`` (RFC 9110 section 12.5.1: each type
    takes the quality of the most specific range that matches it). A tie, no header, or one that accepts
    neither keeps the JSON answer, as before there was a page."""
    if not accept:
        return False
    ranges = _media_ranges(accept)
    return _quality(ranges, "text", "html") > _quality(ranges, "application", "json")


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    ranges = []
    for item in accept.split(",")[:_MAX_MEDIA_RANGES]:
        media, *params = item.split(";")
        kind, _, sub = media.strip().lower().partition("/")
        if not kind or not sub:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a weight that cannot be read accepts nothing
                if not 0.0 <= quality <= 1.0:
                    quality = 0.0
        ranges.append((kind, sub, quality))
    return ranges


def _quality(ranges: list[tuple[str, str, float]], kind: str, sub: str) -> float:
    best_specificity, quality = -1, 0.0
    for r_kind, r_sub, r_quality in ranges:
        if (r_kind, r_sub) == (kind, sub):
            specificity = 2
        elif r_kind == kind and r_sub == "*":
            specificity = 1
        elif (r_kind, r_sub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, quality = specificity, r_quality
    return quality


@functools.cache
def _templates() -> jinja2.Environment:
    # Our own environment (not the console's aiohttp-jinja2 set-up): autoescape everywhere, and a missing
    # value is an error rather than an empty cell on a page people trust.
    return jinja2.Environment(loader=jinja2.PackageLoader("gateway.http", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


_WORDS = {
    "valid": ("SAH", "Bukti pembayaran ini sah: pembayarannya tercatat di {agency}.",
              "Surat Keterangan Lunas ini sah: pembayaran yang diterangkannya tercatat di {agency}."),
    "reversed": ("DIBATALKAN", "Pembayaran ini telah dibatalkan. Bukti pembayaran ini tidak berlaku lagi.",
                 "Pembayaran yang diterangkan surat ini telah dibatalkan. Surat Keterangan Lunas ini tidak"
                 " berlaku lagi."),
}
_UNKNOWN = ("TIDAK DITEMUKAN", "Tidak ada dokumen dengan nomor dan kode validasi ini. Periksa kembali nomor dan"
            " kode validasi yang tertera pada dokumen; bila tetap tidak ditemukan, hubungi {agency}.")


def proof_page(answer: dict[str, Any], number: str, region_name: str, bank_name: str = "") -> str:
    """The proof check's answer (the JSON body) for ``number`` (the NTPD or SKL number of the path) as a page in
    Bahasa Indonesia. It shows what the JSON shows and the bank's name, nothing more: an unknown answer shows
    only the number that was asked about."""
    agency = f"Bapenda {' '.join(region_name.split()).title()}"
    is_skl = answer.get("type") == "skl"
    status = answer["status"]
    if status in _WORDS:
        word, proof_text, skl_text = _WORDS[status]
        explanation = (skl_text if is_skl else proof_text).format(agency=agency)
        rows = _rows(answer, number, bank_name)
    else:
        status = "unknown"
        word, explanation = _UNKNOWN[0], _UNKNOWN[1].format(agency=agency)
        rows = []
    if len(number) > _MAX_SHOWN_NUMBER:
        number = number[:_MAX_SHOWN_NUMBER] + "…"
    return _templates().get_template("proof_check.html").render(
        title="Cek Surat Keterangan Lunas" if is_skl else "Cek Bukti Pembayaran Pajak Daerah",
        government=government(region_name), agency=AGENCY_NAME, agency_title=AGENCY_NAME.title(),
        region_title=" ".join(region_name.split()).title(), status=status, word=word, explanation=explanation,
        rows=rows, number=number)


def _rows(answer: dict[str, Any], number: str, bank_name: str) -> list[tuple[str, str, bool]]:
    tax = answer["tax"]
    rows: list[tuple[str, str, bool]] = []
    if answer.get("type") == "skl":
        rows.append(("Nomor SKL", number, True))
        rows.append(("Diterbitkan", waktu(datetime.datetime.fromisoformat(answer["issued_at"])), False))
    rows += [
        ("NTPD", answer["ntpd"], True),
        ("Jenis Pajak", TAX_TITLES.get(tax, tax), False),
        ("NOP" if tax == "PBB" else "No. Registrasi", answer["bill_masked"], True),
        ("Tahun Pajak", str(answer["tax_year"]), False),
        ("Nama Wajib Pajak", answer["taxpayer_masked"], False),
        ("Jumlah Dibayar", rupiah(answer["total"]), False),
        ("Tanggal Buku", tanggal(datetime.date.fromisoformat(answer["business_date"])), False),
        ("Bank", f"{answer['bank']} {bank_name}".strip(), False),
    ]
    return rows
