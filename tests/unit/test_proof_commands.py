"""`gateway proof verify FILE [--public-key B64URL | --keys FILE]`: offline verification of a saved proof."""
import datetime
import json

import pytest

from gateway.domain.proof import proof_document
from gateway.proofs.commands import verify_file
from gateway.proofs.keys import KeyStore
from gateway.proofs.signing import sign

JAKARTA = datetime.timezone(datetime.timedelta(hours=7))


@pytest.fixture
def store(tmp_path):
    s = KeyStore(tmp_path / "keys", now=lambda: datetime.datetime(2026, 5, 1, tzinfo=JAKARTA))
    s.init()
    return s


def signed(store, **over):
    kid, key = store.current()
    args = dict(
        ntpd="261123100000001210", tax="PBB", bill="327501000100100010", tax_year=2026, taxpayer="SITI AMINAH",
        principal=150000, penalty=4500, total=154500, business_date=datetime.date(2026, 11, 23),
        paid_at=datetime.datetime(2026, 11, 23, 9, 15, 2, tzinfo=JAKARTA), bank="110", channel="atm",
        ntb="ABC123", region="3275", kid=kid,
    )
    args.update(over)
    return sign(proof_document(**args), key, kid)


def formatted(code):
    return "-".join(code[i:i + 4] for i in range(0, 16, 4))


def payment_answer(sp) -> dict:
    """The shape of the HTTP payment answer (http-api.md)."""
    return {"response_code": "00", "message": "approved", "business_date": "2026-11-23",
            "ntpd": sp.document["ntpd"], "validation_code": formatted(sp.validation_code),
            "proof": sp.document, "signature": sp.signature, "kid": sp.kid,
            "receipt_url": f"/v1/payments/{sp.document['ntpd']}/receipt.pdf"}


def write(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return str(path)


def keys_file(tmp_path, store):
    return write(tmp_path / "keys.json", store.public_keys())


def test_payment_answer_with_public_key(tmp_path, store):
    sp = signed(store)
    ok, message = verify_file(write(tmp_path / "p.json", payment_answer(sp)), store.public_keys()[0]["public_key"], None)
    assert ok, message
    assert message.startswith("VALID")
    assert "2026-1" in message and formatted(sp.validation_code) in message
    assert "\n" not in message


def test_document_with_keys_file_after_rotation(tmp_path, store):
    sp = signed(store)  # signed with 2026-1
    store.rotate()
    path = write(tmp_path / "p.json", {"document": sp.document, "signature": sp.signature})
    ok, message = verify_file(path, None, keys_file(tmp_path, store))
    assert ok, message
    assert "2026-1" in message


def test_keys_file_wrapped_in_an_object(tmp_path, store):
    sp = signed(store)
    path = write(tmp_path / "p.json", {"document": sp.document, "signature": sp.signature})
    ok, _ = verify_file(path, None, write(tmp_path / "k.json", {"keys": store.public_keys()}))
    assert ok


def test_non_ascii_taxpayer_survives_the_file(tmp_path, store):
    sp = signed(store, taxpayer="ŞAHİN NGUYỄN")
    ok, message = verify_file(write(tmp_path / "p.json", payment_answer(sp)), None, keys_file(tmp_path, store))
    assert ok, message


def test_forged_total_is_invalid(tmp_path, store):
    sp = signed(store)
    answer = payment_answer(sp)
    answer["proof"] = dict(sp.document, total=164500)
    ok, message = verify_file(write(tmp_path / "p.json", answer), None, keys_file(tmp_path, store))
    assert not ok
    assert message.startswith("INVALID") and "2026-1" in message and formatted(sp.validation_code) in message


def test_another_public_key_is_invalid(tmp_path, store, tmp_path_factory):
    other = KeyStore(tmp_path_factory.mktemp("other"))
    other.init()
    sp = signed(store)
    ok, message = verify_file(write(tmp_path / "p.json", payment_answer(sp)), other.public_keys()[0]["public_key"], None)
    assert not ok and message.startswith("INVALID")


def test_kid_missing_from_keys_file(tmp_path, store):
    sp = signed(store)
    write(tmp_path / "keys.json", [dict(store.public_keys()[0], kid="2025-1")])
    ok, message = verify_file(write(tmp_path / "p.json", payment_answer(sp)), None, str(tmp_path / "keys.json"))
    assert not ok and "no public key 2026-1" in message


def test_validation_code_in_the_file_must_match_the_signature(tmp_path, store):
    sp = signed(store)
    answer = dict(payment_answer(sp), validation_code="0000-0000-0000-0000")
    ok, message = verify_file(write(tmp_path / "p.json", answer), None, keys_file(tmp_path, store))
    assert not ok and "validation code" in message


def test_tampered_signature_is_invalid(tmp_path, store):
    sp = signed(store)
    flipped = ("B" if sp.signature[0] == "A" else "A") + sp.signature[1:]
    answer = dict(payment_answer(sp), signature=flipped, validation_code=None)
    ok, message = verify_file(write(tmp_path / "p.json", answer), None, keys_file(tmp_path, store))
    assert not ok and message.startswith("INVALID")


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"signature": "AAAA"}', '{"proof": {"kid": "2026-1"}}',
     '{"proof": {"ntpd": "1"}, "signature": "AAAA"}', '{"proof": {"kid": "2026-1"}, "signature": "A"}'],
)
def test_unreadable_files_are_invalid_not_crashes(tmp_path, store, content):
    (tmp_path / "p.json").write_text(content)
    ok, message = verify_file(str(tmp_path / "p.json"), None, keys_file(tmp_path, store))
    assert not ok and message.startswith("INVALID")


def test_missing_file(tmp_path, store):
    ok, message = verify_file(str(tmp_path / "nope.json"), None, keys_file(tmp_path, store))
    assert not ok and "nope.json" in message


@pytest.mark.parametrize("public_key", ["", "AAAA", "not base64 at all"])
def test_malformed_public_key(tmp_path, store, public_key):
    sp = signed(store)
    ok, message = verify_file(write(tmp_path / "p.json", payment_answer(sp)), public_key, None)
    assert not ok and "public key" in message


def test_exactly_one_key_source_is_required(tmp_path, store):
    path = write(tmp_path / "p.json", payment_answer(signed(store)))
    with pytest.raises(ValueError):
        verify_file(path, None, None)
    with pytest.raises(ValueError):
        verify_file(path, store.public_keys()[0]["public_key"], keys_file(tmp_path, store))
