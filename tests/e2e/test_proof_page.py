"""The public proof check as a page for people (spec/http-api.md "Public routes": a request whose ``Accept``
prefers ``text/html`` gets the answer as a readable page in Bahasa Indonesia, JSON otherwise), over real HTTP;
and a Surat Keterangan Lunas issued by staff, checked at the same route and verified offline by
``gateway proof verify``.

The page is read with the standard library's HTML parser: the status word, the rows of the table, and that
nothing in it loads anything (no script, no link, no image, no external URL).
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from html.parser import HTMLParser

import aiohttp
import pytest

from billdata import add_pbb
from gateway.config import build_config
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.proofs.keys import KeyStore
from gateway.staff.support import Actor
from gateway.staff.tax_object import TaxObjectService
from gateway.store.db import create_pool
from helpers.dates import today
from helpers.http import FAR_DUE, NOP, PRINCIPAL, YEAR, assert_business, pbb_body
from helpers.openapi_check import assert_conforms

pytestmark = pytest.mark.integration

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class Page(HTMLParser):
    """The parts of the proof page a person reads, and every tag and attribute it has."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.word = ""
        self.rows: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._in: str | None = None
        self._cell: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)
        classes = (dict(attrs).get("class") or "").split()
        if tag == "p" and "word" in classes:
            self._in = "word"
        elif tag in ("th", "td"):
            self._in, self._cell = tag, []

    def handle_endtag(self, tag):
        if tag == "th":
            self._th = "".join(self._cell).strip()
            self._in = None
        elif tag == "td":
            self.rows.append((self._th, "".join(self._cell).strip()))
            self._in = None
        elif tag == "p" and self._in == "word":
            self._in = None

    def handle_data(self, data):
        self.text.append(data)
        if self._in == "word":
            self.word += data.strip()
        elif self._in in ("th", "td"):
            self._cell.append(data)


async def fetch(gateway, path: str, accept: str | None):
    """(status, headers, body) of a public GET; ``accept=None`` sends no Accept header at all."""
    headers = {} if accept is None else {"Accept": accept}
    async with aiohttp.ClientSession(skip_auto_headers=("Accept",)) as session:
        async with session.get(gateway.http_url + path, headers=headers) as resp:
            body = await resp.read()
            status, got = resp.status, resp.headers.copy()
    assert_conforms("GET", path, status, got, body)
    return status, got, body


async def page(gateway, path: str, accept: str = BROWSER) -> tuple[Page, bytes]:
    status, headers, body = await fetch(gateway, path, accept)
    assert status == 200, (status, body)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert {name: headers.get(name) for name in PAGE_HEADERS} == PAGE_HEADERS
    assert headers["Vary"] == "Accept"
    parsed = Page(body.decode("utf-8"))
    # Nothing is loaded from anywhere, nothing runs.
    assert not {"script", "link", "img", "iframe", "object", "embed", "form", "base"} & set(parsed.tags)
    assert not [a for a in parsed.attributes if a[0] in ("src", "href", "action") or a[0].startswith("on")]
    assert "http" not in body.decode("utf-8").lower().replace("http-equiv", "")
    assert "PEMERINTAH KOTA BEKASI" in parsed.text and "BADAN PENDAPATAN DAERAH" in [t.strip() for t in parsed.text]
    return parsed, body


async def json_answer(gateway, path: str, accept: str | None) -> dict:
    status, headers, body = await fetch(gateway, path, accept)
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8", (status, headers)
    return json.loads(body)


def tanggal(day) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


async def test_proof_page_valid_reversed_unknown_and_json_unchanged(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    paid = assert_business(await bank.pbb_payment("p1", **pbb_body()), "00")
    ntpd, code = paid["ntpd"], paid["validation_code"]
    path = f"/v1/proofs/{ntpd}?code={code}"
    rows = [("NTPD", ntpd), ("Jenis Pajak", "PBB-P2"), ("NOP", NOP[:12] + "******"), ("Tahun Pajak", str(YEAR)),
            ("Nama Wajib Pajak", "S*** A*****"), ("Jumlah Dibayar", "Rp150.000"), ("Tanggal Buku", tanggal(today())),
            ("Bank", "110 BANK PEMBANGUNAN DAERAH")]

    valid, _ = await page(gateway, path)
    assert (valid.word, valid.rows) == ("SAH", rows)
    # Proper negotiation: any Accept that prefers HTML gets the page, one that does not gets the JSON.
    for accept in ("text/html", "text/*", "application/json;q=0.5, text/html", "*/*;q=0.1, text/html;q=0.2"):
        assert (await page(gateway, path, accept))[0].rows == rows, accept
    json_valid = {"status": "valid", "ntpd": ntpd, "tax": "PBB", "bill_masked": NOP[:12] + "******", "tax_year": YEAR,
                  "taxpayer_masked": "S*** A*****", "total": PRINCIPAL, "business_date": today().isoformat(),
                  "bank": "110"}
    for accept in ("application/json", None, "*/*", "application/json, text/html", "text/html;q=0, */*",
                   "image/png"):
        assert await json_answer(gateway, path, accept) == json_valid, accept

    # A wrong code and an NTPD that does not exist: the same page, which shows only the number asked about.
    plain = code.replace("-", "")
    wrong = plain[:-1] + ("0" if plain[-1] != "0" else "1")
    not_found, wrong_body = await page(gateway, f"/v1/proofs/{ntpd}?code={wrong}")
    assert (not_found.word, not_found.rows) == ("TIDAK DITEMUKAN", [("Nomor yang diperiksa", ntpd)])
    assert (await page(gateway, f"/v1/proofs/{ntpd}"))[1] == wrong_body  # no code at all: byte for byte the same
    other = make_ntpd(today(), Tax.PBB, 999_999_998)
    unknown, unknown_body = await page(gateway, f"/v1/proofs/{other}?code={code}")
    assert (unknown.word, unknown.rows) == ("TIDAK DITEMUKAN", [("Nomor yang diperiksa", other)])
    assert unknown_body == wrong_body.replace(ntpd.encode(), other.encode())
    assert await json_answer(gateway, f"/v1/proofs/{ntpd}?code={wrong}", None) == {"status": "unknown", "ntpd": ntpd}
    # What the caller typed is shown as text, never as markup.
    hostile, body = await page(gateway, "/v1/proofs/%3Cb%3Ex%3C%2Fb%3E?code=" + code)
    assert hostile.rows == [("Nomor yang diperiksa", "<b>x</b>")] and b"<b>" not in body

    assert_business(await bank.reversal("r1", ntpd=ntpd, amount=PRINCIPAL), "00")
    reversed_, _ = await page(gateway, path)
    assert (reversed_.word, reversed_.rows) == ("DIBATALKAN", rows)
    assert "Pembayaran ini telah dibatalkan. Bukti pembayaran ini tidak berlaku lagi." in reversed_.text
    assert await json_answer(gateway, path, "application/json") == dict(json_valid, status="reversed")
    assert await json_answer(gateway, path, None) == dict(json_valid, status="reversed")


def proof_verify(path, keys_path, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "proof", "verify", str(path), "--keys", str(keys_path)],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


async def test_skl_checked_online_and_verified_offline(gateway, db, db_url, http_client, tmp_path):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    paid = assert_business(await bank.pbb_payment("p1", **pbb_body()), "00")
    ntpd = paid["ntpd"]

    # Support issues the certificate, as the console will: the same database, the gateway's signing keys.
    config = build_config({"http": {"public_url": gateway.http_url}, "banks": [
        {"code": "110", "name": "BANK PEMBANGUNAN DAERAH"}]}, env={}, source="test")
    pool = await create_pool(config.database, db_url)
    try:
        service = TaxObjectService(pool, config, KeyStore(tmp_path / "keys"))
        result = await service.issue_skl(Actor("rina"), NOP, YEAR)
    finally:
        await pool.close()
    assert result.outcome == "issued", result.reason
    skl = result.skl
    number = f"SKL-{ntpd}-01"
    assert skl.number == number
    path = f"/v1/proofs/{number}?code={skl.validation_code}"
    assert skl.verify_url == gateway.http_url + f"/v1/proofs/{number}?code={skl.validation_code.replace('-', '')}"
    issued_at = skl.document["issued_at"]
    assert abs(datetime.fromisoformat(issued_at) - datetime.now().astimezone()) < timedelta(seconds=60)

    answer = {"status": "valid", "ntpd": ntpd, "tax": "PBB", "bill_masked": NOP[:12] + "******", "tax_year": YEAR,
              "taxpayer_masked": "S*** A*****", "total": PRINCIPAL, "business_date": today().isoformat(),
              "bank": "110", "type": "skl", "issued_at": issued_at}
    assert await json_answer(gateway, path, None) == answer
    assert await json_answer(gateway, path, "application/json") == answer
    moment = datetime.fromisoformat(issued_at)
    rows = [("Nomor SKL", number), ("Diterbitkan", f"{tanggal(moment.date())} {moment:%H:%M:%S} WIB"),
            ("NTPD", ntpd), ("Jenis Pajak", "PBB-P2"), ("NOP", NOP[:12] + "******"), ("Tahun Pajak", str(YEAR)),
            ("Nama Wajib Pajak", "S*** A*****"), ("Jumlah Dibayar", "Rp150.000"), ("Tanggal Buku", tanggal(today())),
            ("Bank", "110 BANK PEMBANGUNAN DAERAH")]
    valid, _ = await page(gateway, path)
    assert (valid.word, valid.rows) == ("SAH", rows)
    assert "Cek Surat Keterangan Lunas" in valid.text
    # The payment's own code does not open the certificate, nor a number that was never issued.
    assert await json_answer(gateway, f"/v1/proofs/{number}?code={paid['validation_code']}", None) == {
        "status": "unknown", "ntpd": number}
    other = f"SKL-{ntpd}-02"
    assert await json_answer(gateway, f"/v1/proofs/{other}?code={skl.validation_code}", None) == {
        "status": "unknown", "ntpd": other}
    unknown, _ = await page(gateway, f"/v1/proofs/{other}?code={skl.validation_code}")
    assert (unknown.word, unknown.rows) == ("TIDAK DITEMUKAN", [("Nomor yang diperiksa", other)])

    # Offline: the saved certificate verifies with the published keys; a tampered copy does not.
    status, _, keys = await bank.call("GET", "/v1/proofs/keys", sign=False)
    assert status == 200
    keys_path = tmp_path / "published-keys.json"
    keys_path.write_text(json.dumps(keys))
    saved = tmp_path / "skl.json"
    saved.write_text(json.dumps(skl.saved(), ensure_ascii=False), encoding="utf-8")
    done = proof_verify(saved, keys_path, tmp_path)
    assert (done.returncode, done.stdout) == (0, f"VALID: signature verified - SKL {number} of NTPD {ntpd}, key "
                                                 f"{skl.kid}, validation code {skl.validation_code}\n"), done.stderr
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**skl.saved(), "document": {**skl.document, "tax_year": YEAR - 1}}))
    done = proof_verify(tampered, keys_path, tmp_path)
    assert done.returncode == 1 and done.stdout.startswith(
        f"INVALID: the signature does not match the document - SKL {number}"), (done.stdout, done.stderr)

    # The payment reversed: the certificate is checked as reversed, in JSON and in the page.
    assert_business(await bank.reversal("r1", ntpd=ntpd, amount=PRINCIPAL), "00")
    assert await json_answer(gateway, path, None) == dict(answer, status="reversed")
    gone, _ = await page(gateway, path)
    assert (gone.word, gone.rows) == ("DIBATALKAN", rows)
