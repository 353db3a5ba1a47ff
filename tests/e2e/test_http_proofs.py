"""Payment proofs over real HTTP (spec/domain.md "Payment proof", spec/http-api.md public routes).

The verification here uses only ``cryptography``, ``json``, ``base64`` and ``hashlib``: the canonical
bytes, the validation code and the masks are rebuilt from the spec, not from the gateway's code.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pypdf
import pypdfium2
import pytest
import zxingcpp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from billdata import add_bphtb, add_pbb
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from helpers.dates import today
from helpers.gateway import ONE_WORKER, start
from helpers.http import (
    BPHTB_NOP,
    FAR_DUE,
    NOP,
    PRINCIPAL,
    YEAR,
    assert_business,
    assert_problem,
    check_rfc3339_local,
    pbb_body,
)

pytestmark = pytest.mark.integration

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def unb64url(text: str) -> bytes:
    assert "=" not in text and "+" not in text and "/" not in text, text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def code_of(signature: bytes) -> str:
    """SHA-256 of the signature, as a bit string read 5 bits at a time, MSB first; first 16 symbols."""
    bits = "".join(f"{byte:08b}" for byte in hashlib.sha256(signature).digest())
    return "".join(CROCKFORD[int(bits[i:i + 5], 2)] for i in range(0, 80, 5))


def verify(keys: list[dict], doc: dict, signature_b64: str, data: bytes | None = None) -> None:
    """Raises InvalidSignature unless the document verifies with the published key it names."""
    [key] = [k for k in keys if k["kid"] == doc["kid"]]
    assert key["alg"] == "Ed25519"
    raw = unb64url(key["public_key"])
    assert len(raw) == 32
    Ed25519PublicKey.from_public_bytes(raw).verify(unb64url(signature_b64), canonical(doc) if data is None else data)


async def public_check(client, ntpd: str, code: str | None = None):
    path = f"/v1/proofs/{ntpd}" + (f"?code={code}" if code is not None else "")
    status, headers, body = await client.call("GET", path, sign=False)
    assert status == 200, (status, body)
    return body


async def test_proofs_verify_offline_and_codes_match(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE, name="NYOMAN ÁRYA Ñ")
    registration = await add_bphtb(db, principal=5_000_000, penalty=0)
    bank = http_client()
    status, _, keys = await bank.call("GET", "/v1/proofs/keys", sign=False)
    assert status == 200 and isinstance(keys, list) and keys
    assert all(set(k) == {"kid", "alg", "public_key"} for k in keys)

    paid = assert_business(await bank.pbb_payment("p1", **pbb_body(ntb="NTB-P1")), "00")
    proof, signature = paid["proof"], paid["signature"]
    paid_at = check_rfc3339_local(proof.pop("paid_at"))
    assert abs(paid_at - datetime.now(UTC)) < timedelta(seconds=30)
    assert proof == {"v": 1, "ntpd": paid["ntpd"], "tax": "PBB", "bill": NOP, "tax_year": YEAR,
                     "taxpayer": "SITI AMINAH", "principal": PRINCIPAL, "penalty": 0, "total": PRINCIPAL,
                     "business_date": today().isoformat(), "bank": "110", "channel": "teller", "ntb": "NTB-P1",
                     "region": "3275", "kid": paid["kid"]}
    proof["paid_at"] = paid_at.isoformat()
    verify(keys, proof, signature)
    assert code_of(unb64url(signature)) == paid["validation_code"].replace("-", "")

    # One digit of an amount changed, or another field: the signature no longer holds.
    for name, value in (("total", PRINCIPAL + 10_000), ("principal", 160_000), ("bank", "120"),
                        ("ntpd", paid["ntpd"][:-1] + str((int(paid["ntpd"][-1]) + 1) % 10))):
        with pytest.raises(InvalidSignature):
            verify(keys, dict(proof, **{name: value}), signature)

    # A taxpayer name beyond ASCII: signed as raw UTF-8, not as \\u escapes.
    other = assert_business(await bank.pbb_payment("p2", **pbb_body(year=YEAR - 1)), "00")
    assert other["proof"]["taxpayer"] == "NYOMAN ÁRYA Ñ"
    verify(keys, other["proof"], other["signature"])
    escaped = json.dumps(other["proof"], sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(InvalidSignature):
        verify(keys, other["proof"], other["signature"], escaped)
    with pytest.raises(InvalidSignature):
        verify(keys, other["proof"], signature)  # another payment's signature

    # An ISO 8583 payment: field 63 is the same code, and its proof (read over HTTP) verifies.
    async with gateway.client() as iso:
        ans = await iso.request(iso.payment("bphtb", registration, 5_000_000))
    assert ans["39"] == "00"
    status, _, view = await bank.call("GET", f"/v1/payments/{ans['47']}")
    assert status == 200
    verify(keys, view["proof"], view["signature"])
    assert code_of(unb64url(view["signature"])) == ans["63"] == view["validation_code"].replace("-", "")
    assert (view["proof"]["tax"], view["proof"]["bill"], view["proof"]["nop"], view["proof"]["channel"],
            view["proof"]["total"]) == ("BPHTB", registration, BPHTB_NOP, "atm", 5_000_000)
    rows = await db.fetch("SELECT p.ntpd, pr.validation_code FROM proofs pr JOIN payments p ON p.id = pr.payment_id"
                          " ORDER BY p.id")
    assert [tuple(r) for r in rows] == [(paid["ntpd"], paid["validation_code"].replace("-", "")),
                                        (other["ntpd"], other["validation_code"].replace("-", "")),
                                        (ans["47"], ans["63"])]


async def test_public_check_masks_and_statuses(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE, name="H. ABDUL  ÁRYA")
    registration = await add_bphtb(db, principal=5_000_000, penalty=0)
    bank = http_client()
    anyone = http_client(secret="unused")
    paid = assert_business(await bank.pbb_payment("p1", **pbb_body()), "00")
    ntpd, code = paid["ntpd"], paid["validation_code"]
    valid = {"status": "valid", "ntpd": ntpd, "tax": "PBB", "bill_masked": "327501000100******", "tax_year": YEAR,
             "taxpayer_masked": "S*** A*****", "total": PRINCIPAL, "business_date": today().isoformat(),
             "bank": "110"}
    plain = code.replace("-", "")
    for typed in (code, plain, plain.lower(), code.lower()):
        assert await public_check(anyone, ntpd, typed) == valid, typed
    # A wrong code, no code, an unknown or malformed NTPD: "unknown", and nothing else.
    wrong = plain[:-1] + ("0" if plain[-1] != "0" else "1")
    assert await public_check(anyone, ntpd, wrong) == {"status": "unknown", "ntpd": ntpd}
    assert await public_check(anyone, ntpd) == {"status": "unknown", "ntpd": ntpd}
    assert await public_check(anyone, ntpd, "not-a-code") == {"status": "unknown", "ntpd": ntpd}
    other_ntpd = make_ntpd(today(), Tax.PBB, 999_999_998)  # well-formed, no such payment
    assert await public_check(anyone, other_ntpd, code) == {"status": "unknown", "ntpd": other_ntpd}
    assert await public_check(anyone, "12345", code) == {"status": "unknown", "ntpd": "12345"}

    second = assert_business(await bank.pbb_payment("p2", **pbb_body(year=YEAR - 1)), "00")
    body = await public_check(anyone, second["ntpd"], second["validation_code"])
    assert (body["status"], body["taxpayer_masked"], body["tax_year"]) == ("valid", "H. A****  Á***", YEAR - 1)
    # One payment's code does not validate another's NTPD.
    assert await public_check(anyone, second["ntpd"], code) == {"status": "unknown", "ntpd": second["ntpd"]}

    async with gateway.client() as iso:
        ans = await iso.request(iso.payment("bphtb", registration, 5_000_000))
    assert await public_check(anyone, ans["47"], ans["63"]) == {
        "status": "valid", "ntpd": ans["47"], "tax": "BPHTB", "bill_masked": registration[:8] + "******",
        "tax_year": 2026, "taxpayer_masked": "B*** S******", "total": 5_000_000,
        "business_date": today().isoformat(), "bank": "110"}

    assert_business(await bank.reversal("r1", ntpd=ntpd, amount=PRINCIPAL), "00")
    assert await public_check(anyone, ntpd, code) == dict(valid, status="reversed")
    assert await public_check(anyone, ntpd, wrong) == {"status": "unknown", "ntpd": ntpd}


async def test_proof_check_rate_limit(make_gateway, http_client):
    # The allowance is each worker's own: measured against one process.
    anyone = http_client(secret="unused", gw=await start(make_gateway, env=ONE_WORKER))
    ntpd = today().strftime("%y%m%d") + "1" + "000000001" + "00"
    started = time.monotonic()
    answers = await asyncio.gather(*(public_check(anyone, ntpd, "AAAA-AAAA-AAAA-AAAA") for _ in range(60)))
    assert answers == [{"status": "unknown", "ntpd": ntpd}] * 60
    # The 61st is refused. (The allowance refills at one check a second: on a machine so slow that the
    # first 60 took seconds, as many more may pass, never more.)
    passed = 0
    while (answer := await anyone.call("GET", f"/v1/proofs/{ntpd}?code=AAAAAAAAAAAAAAAA", sign=False))[0] == 200:
        passed += 1
        assert passed <= int(time.monotonic() - started), passed
    assert_problem(answer, 429)
    retry_after = answer[1]["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after
    # The keys and health are not limited; another address has its own allowance.
    assert (await anyone.call("GET", "/v1/proofs/keys", sign=False))[0] == 200
    elsewhere = http_client(secret="unused")
    spare = elsewhere.session
    elsewhere.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
    try:
        assert await public_check(elsewhere, ntpd, "AAAA") == {"status": "unknown", "ntpd": ntpd}
    finally:
        await spare.close()
    assert_problem(await anyone.call("GET", f"/v1/proofs/{ntpd}", sign=False), 429)


async def test_receipt_pdf(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    bank = http_client()
    paid = assert_business(await bank.pbb_payment("p1", **pbb_body(ntb="NTB-RCPT")), "00")
    ntpd, code = paid["ntpd"], paid["validation_code"]
    status, headers, pdf = await bank.call("GET", paid["receipt_url"])
    assert status == 200 and headers["Content-Type"] == "application/pdf"

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    assert abs(width - 297.6) < 0.5 and abs(height - 419.5) < 0.5, (width, height)  # A6, portrait
    text = page.extract_text()
    for expected in (ntpd, code, "NTB-RCPT", "KOTA BEKASI"):
        assert expected in text, (expected, text)

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=4).to_pil()
    finally:
        document.close()
    found = [b.text for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(found) == 1, found
    url = urlsplit(found[0])
    public = urlsplit(gateway.http_url)  # the gateway's [http] public_url
    assert (url.scheme, url.netloc, url.path) == (public.scheme, public.netloc, f"/v1/proofs/{ntpd}")
    [typed] = parse_qs(url.query)["code"]
    assert set(parse_qs(url.query)) == {"code"} and typed.replace("-", "") == code.replace("-", "")
    # The QR code's URL is the public check, and it says valid.
    assert (await public_check(bank, ntpd, typed))["status"] == "valid"
