"""The Surat Keterangan Lunas document (spec/domain.md "Payment proof"): its number, its canonical bytes, its
signature and validation code, its offline verification, and the PDFs of this work (SKL, receipt SALINAN)."""
import base64
import datetime
import hashlib
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pypdf import PdfReader

from gateway.domain.errors import FormatError
from gateway.domain.proof import (
    canonical_bytes,
    document_type,
    is_skl_number,
    parse_skl_number,
    proof_document,
    skl_document,
    skl_number,
)
from gateway.http.public_routes import prefers_html
from gateway.proofs.commands import verify_file
from gateway.proofs.keys import KeyStore
from gateway.proofs.receipt import receipt_pdf
from gateway.proofs.signing import sign, verify
from gateway.proofs.skl_pdf import skl_pdf
from helpers.pdf import pdf_text, qr_codes

JAKARTA = datetime.timezone(datetime.timedelta(hours=7))
NTPD = "261123100000001210"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ISSUED_AT = datetime.datetime(2027, 2, 3, 10, 4, 5, 678, tzinfo=JAKARTA)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = KeyStore(tmp_path_factory.mktemp("keys"), now=lambda: datetime.datetime(2027, 1, 1, tzinfo=JAKARTA))
    s.init()
    return s


def proof(**over):
    args = dict(ntpd=NTPD, tax="PBB", bill="327501000100100010", tax_year=2026, taxpayer="SITI AMINAH",
                principal=150000, penalty=4500, total=154500, business_date=datetime.date(2026, 11, 23),
                paid_at=datetime.datetime(2026, 11, 23, 9, 15, 2, tzinfo=JAKARTA), bank="110", channel="atm",
                ntb="ABC123", region="3275", kid="2026-1")
    args.update(over)
    return proof_document(**args)


def skl(kid="2027-1", **over):
    args = dict(proof=proof(), counter=1, issued_at=ISSUED_AT, issued_by="rina", kid=kid)
    args.update(over)
    return skl_document(**args)


def test_skl_number():
    assert skl_number(NTPD, 1) == "SKL-261123100000001210-01"
    assert skl_number(NTPD, 99) == "SKL-261123100000001210-99"
    assert parse_skl_number("SKL-261123100000001210-07") == (NTPD, 7)
    for bad_counter in (0, 100, True, "1"):
        with pytest.raises(ValueError):
            skl_number(NTPD, bad_counter)
    with pytest.raises(FormatError):
        skl_number("261123100000001211", 1)  # wrong check digits
    for text in ("SKL-261123100000001210-00", "SKL-261123100000001211-01", "skl-261123100000001210-01",
                 "SKL-261123100000001210-1", "SKL-261123100000001210_01", "SKL-26112310000000121-001", NTPD,
                 "SKL-261123100000001210-0١"):
        with pytest.raises(FormatError):
            parse_skl_number(text)
    assert is_skl_number("SKL-x") and not is_skl_number(NTPD) and not is_skl_number(None)


def test_skl_document_and_canonical_bytes():
    doc = skl()
    assert doc == {"v": 1, "type": "skl", "number": "SKL-261123100000001210-01", "ntpd": NTPD, "tax": "PBB",
                   "bill": "327501000100100010", "tax_year": 2026, "taxpayer": "SITI AMINAH", "principal": 150000,
                   "penalty": 4500, "total": 154500, "business_date": "2026-11-23", "bank": "110", "region": "3275",
                   "issued_at": "2027-02-03T10:04:05+07:00", "issued_by": "rina", "kid": "2027-1"}
    assert canonical_bytes(doc) == (
        b'{"bank":"110","bill":"327501000100100010","business_date":"2026-11-23","issued_at":"2027-02-03T10:04:05'
        b'+07:00","issued_by":"rina","kid":"2027-1","ntpd":"261123100000001210","number":"SKL-261123100000001210-01",'
        b'"penalty":4500,"principal":150000,"region":"3275","tax":"PBB","tax_year":2026,"taxpayer":"SITI AMINAH",'
        b'"total":154500,"type":"skl","v":1}')
    assert document_type(doc) == "skl" and document_type(proof()) == "proof"
    with pytest.raises(ValueError):
        document_type({"type": "proof"})
    with pytest.raises(ValueError):
        document_type({"type": "receipt"})


def test_skl_of_bphtb_and_raw_utf8():
    bphtb = proof(ntpd="261123200000000235", tax="BPHTB", bill="20261100012356", nop="327501000100100020",
                  taxpayer="NYOMAN ÁRYA", channel="teller")
    doc = skl(proof=bphtb, counter=12)
    assert (doc["number"], doc["bill"], doc["nop"], doc["tax"]) == (
        "SKL-261123200000000235-12", "20261100012356", "327501000100100020", "BPHTB")
    assert '"taxpayer":"NYOMAN ÁRYA"'.encode() in canonical_bytes(doc)


def test_skl_refuses_what_it_cannot_certify():
    with pytest.raises(ValueError):
        skl(proof=skl())  # an SKL of an SKL
    with pytest.raises(ValueError):
        skl(proof={**proof(), "total": 1})  # a proof whose amounts do not add up
    with pytest.raises(ValueError):
        skl(issued_at=datetime.datetime(2027, 2, 3, 10, 4, 5))  # naive
    for who in ("", "a" * 129, "rina\n"):
        with pytest.raises(ValueError):
            skl(issued_by=who)


def test_signature_round_trip(store):
    kid, key = store.current()
    signed = sign(skl(kid=kid), key, kid)
    [published] = store.public_keys()
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(published["public_key"] + "="))
    raw_signature = base64.urlsafe_b64decode(signed.signature + "==")
    public.verify(raw_signature, canonical_bytes(signed.document))  # raises if not
    assert verify(signed.document, signed.signature, public)
    # The validation code is made as a proof's: SHA-256 of the signature, 5-bit groups, Crockford.
    bits = "".join(f"{b:08b}" for b in hashlib.sha256(raw_signature).digest())
    assert signed.validation_code == "".join(CROCKFORD[int(bits[i:i + 5], 2)] for i in range(0, 80, 5))
    for name, value in (("total", 154501), ("number", "SKL-261123100000001210-02"), ("issued_by", "budi"),
                        ("type", "proof")):
        assert not verify({**signed.document, name: value}, signed.signature, public), name
    # The payment's own proof signature does not cover the certificate, nor the reverse.
    proof_signed = sign(proof(kid=kid), key, kid)
    assert not verify(signed.document, proof_signed.signature, public)


def test_proof_verify_on_an_skl(store, tmp_path):
    kid, key = store.current()
    signed = sign(skl(kid=kid), key, kid)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(store.public_keys()))
    good = tmp_path / "skl.json"
    good.write_text(json.dumps({"document": signed.document, "signature": signed.signature}, ensure_ascii=False))
    ok, message = verify_file(str(good), None, str(keys))
    code = "-".join(signed.validation_code[i:i + 4] for i in range(0, 16, 4))
    assert (ok, message) == (True, f"VALID: signature verified - SKL SKL-261123100000001210-01 of NTPD {NTPD}, key {kid},"
                                   f" validation code {code}")
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps({"document": {**signed.document, "tax_year": 2025}, "signature": signed.signature}))
    ok, message = verify_file(str(bad), None, str(keys))
    assert not ok and message.startswith("INVALID: the signature does not match the document - SKL"), message
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"document": {**signed.document, "type": "memo"}, "signature": signed.signature}))
    assert verify_file(str(odd), None, str(keys)) == (False, f"INVALID: unknown document type 'memo' - NTPD {NTPD}")


def test_skl_pdf(store):
    kid, key = store.current()
    signed = sign(skl(kid=kid), key, kid)
    url = f"https://pajak.bekasikota.go.id/v1/proofs/SKL-261123100000001210-01?code={signed.validation_code}"
    pdf = skl_pdf(document=signed.document, validation_code=signed.validation_code, verify_url=url,
                  region_name="KOTA BEKASI", bank_name="BANK PEMBANGUNAN DAERAH")
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = pdf_text(pdf)
    code = "-".join(signed.validation_code[i:i + 4] for i in range(0, 16, 4))
    for expected in ("PEMERINTAH KOTA BEKASI", "SURAT KETERANGAN LUNAS", "Nomor: SKL-261123100000001210-01",
                     "32.75.010.001.001-0001.0", "SITI AMINAH", "Rp150.000", "Rp4.500", "Rp154.500",
                     "23 November 2026", "110 BANK PEMBANGUNAN DAERAH", NTPD, code,
                     "3 Februari 2027 10:04:05 WIB oleh petugas rina"):
        assert expected in text, expected
    assert "DIBATALKAN" not in text
    assert qr_codes(pdf) == [url]
    assert pdf == skl_pdf(document=signed.document, validation_code=signed.validation_code, verify_url=url,
                          region_name="KOTA BEKASI", bank_name="BANK PEMBANGUNAN DAERAH")  # a reprint is the same file
    gone = skl_pdf(document=signed.document, validation_code=signed.validation_code, verify_url=url,
                   region_name="KOTA BEKASI", status="reversed")
    assert "SURAT INI TIDAK BERLAKU" in pdf_text(gone) and qr_codes(gone) == [url]
    with pytest.raises(ValueError):
        skl_pdf(document=proof(), validation_code=signed.validation_code, verify_url=url, region_name="KOTA BEKASI")


@pytest.mark.parametrize("status", ["paid", "reversed"])
def test_receipt_copy_says_salinan(store, status):
    kid, key = store.current()
    signed = sign(proof(kid=kid), key, kid)
    url = f"https://pajak.bekasikota.go.id/v1/proofs/{NTPD}?code={signed.validation_code}"
    args = dict(proof=signed.document, validation_code=signed.validation_code, verify_url=url,
                region_name="KOTA BEKASI", status=status)
    original, copy = receipt_pdf(**args), receipt_pdf(**args, copy=True)
    assert "SALINAN" not in pdf_text(original)
    text = pdf_text(copy)
    assert text.count("SALINAN") == (3 if status == "paid" else 2), text  # label, footer (and the stamp)
    assert "SALINAN: dicetak ulang dari bukti pembayaran yang tersimpan." in text
    assert PdfReader(io.BytesIO(copy)).metadata.title == f"Salinan Bukti Pembayaran PBB-P2 {NTPD}"
    assert qr_codes(copy) == [url]


@pytest.mark.parametrize(("accept", "html"), [
    (None, False), ("", False), ("*/*", False), ("application/json", False), ("text/html", True),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True), ("text/*", True),
    ("application/json, text/html", False), ("application/json;q=0.9, text/html", True),
    ("text/html;q=0, */*", False), ("text/html;q=bad, application/json;q=0.1", False), ("image/png", False),
    ("TEXT/HTML", True), ("text/html;level=1;q=0.5, application/*;q=0.4", True),
])
def test_accept_negotiation(accept, html):
    assert prefers_html(accept) is html
