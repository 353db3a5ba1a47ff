"""Proof signing keys on disk (operations.md `gateway keys init` / `keys rotate`, `[proof] key_dir`)."""
import base64
import datetime
import json
import os
import stat

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import gateway.proofs.keys as keys_module
from gateway.domain.proof import proof_document
from gateway.proofs.commands import keys_init, keys_rotate
from gateway.proofs.keys import KeyStore, KeyStoreError
from gateway.proofs.signing import sign, verify, verify_with_store

JAKARTA = datetime.timezone(datetime.timedelta(hours=7))
IN_2026 = datetime.datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA)
IN_2027 = datetime.datetime(2027, 1, 2, 9, 0, tzinfo=JAKARTA)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def store_at(path, now=IN_2026) -> KeyStore:
    return KeyStore(path, now=lambda: now)


def document(kid: str, total: int = 154500) -> dict:
    return proof_document(
        ntpd="261123100000001210", tax="PBB", bill="327501000100100010", tax_year=2026, taxpayer="SITI AMINAH",
        principal=150000, penalty=total - 150000, total=total, business_date=datetime.date(2026, 11, 23),
        paid_at=datetime.datetime(2026, 11, 23, 9, 15, 2, tzinfo=JAKARTA), bank="110", channel="teller",
        ntb="ABC123", region="3275", kid=kid,
    )


def raw_public_key(entry: dict) -> Ed25519PublicKey:
    """The published key read with nothing but base64 and cryptography."""
    text = entry["public_key"]
    assert "=" not in text
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    assert len(raw) == 32
    return Ed25519PublicKey.from_public_bytes(raw)


def spec_canonical(doc: dict) -> bytes:
    # domain.md's own recipe, written here rather than imported.
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_init_creates_private_key_0600_in_dir_0700(tmp_path):
    key_dir = tmp_path / "var" / "keys"
    kid = store_at(key_dir).init()
    assert kid == "2026-1"
    assert mode(key_dir) == 0o700
    assert mode(key_dir / "2026-1.key") == 0o600
    pem = (key_dir / "2026-1.key").read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    assert isinstance(serialization.load_pem_private_key(pem, password=None), Ed25519PrivateKey)
    assert (key_dir / "current").read_text().strip() == "2026-1"
    assert sorted(p.name for p in key_dir.iterdir()) == ["2026-1.key", "2026-1.pub", "current"]  # no temp files


def test_private_key_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        store_at(tmp_path / "keys").init()
    finally:
        os.umask(old)
    assert mode(tmp_path / "keys" / "2026-1.key") == 0o600
    assert mode(tmp_path / "keys") == 0o700


def test_init_twice_keeps_the_key(tmp_path):
    first = store_at(tmp_path).init()
    pem = (tmp_path / "2026-1.key").read_bytes()
    again = store_at(tmp_path, now=IN_2027).init()
    assert again == first == "2026-1"
    assert (tmp_path / "2026-1.key").read_bytes() == pem
    assert [k["kid"] for k in store_at(tmp_path).public_keys()] == ["2026-1"]


def test_rotate_makes_a_new_current_key_and_keeps_the_old_one_published(tmp_path):
    store = store_at(tmp_path)
    store.init()
    old_signed = sign(document("2026-1"), store.current()[1], "2026-1")

    assert store.rotate() == "2026-2"
    kid, key = store.current()
    assert kid == "2026-2"
    published = store.public_keys()
    assert [k["kid"] for k in published] == ["2026-1", "2026-2"]
    assert all(k["alg"] == "Ed25519" for k in published)
    assert published[0]["public_key"] != published[1]["public_key"]
    # A proof signed before the rotation still verifies with its (still published) key.
    assert verify_with_store(old_signed.document, old_signed.signature, store)
    new_signed = sign(document(kid), key, kid)
    assert verify_with_store(new_signed.document, new_signed.signature, store)


def test_kid_counts_within_the_year(tmp_path):
    store_at(tmp_path).init()
    store_at(tmp_path).rotate()
    assert store_at(tmp_path, now=IN_2027).rotate() == "2027-1"
    assert store_at(tmp_path, now=IN_2027).rotate() == "2027-2"
    assert [k["kid"] for k in store_at(tmp_path).public_keys()] == ["2026-1", "2026-2", "2027-1", "2027-2"]


def test_kids_sort_numerically(tmp_path):
    store = store_at(tmp_path)
    store.init()
    for _ in range(10):
        store.rotate()
    assert [k["kid"] for k in store.public_keys()][-3:] == ["2026-9", "2026-10", "2026-11"]
    assert store.current()[0] == "2026-11"


def test_group_or_world_readable_private_key_is_refused(tmp_path):
    store_at(tmp_path).init()
    key_file = tmp_path / "2026-1.key"
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyStoreError) as info:
        store_at(tmp_path).current()
    assert str(key_file) in str(info.value)
    assert "chmod 600" in str(info.value)
    with pytest.raises(KeyStoreError):
        store_at(tmp_path).init()  # init checks the existing key too
    os.chmod(key_file, 0o640)
    with pytest.raises(KeyStoreError):
        store_at(tmp_path).current()
    os.chmod(key_file, 0o600)
    assert store_at(tmp_path).current()[0] == "2026-1"


def test_no_key_yet(tmp_path):
    store = store_at(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="run gateway keys init"):
        store.current()
    with pytest.raises(KeyStoreError, match="gateway keys init"):
        store.rotate()
    assert store.public_keys() == []
    assert store.public_key("2026-1") is None


def test_private_key_not_matching_its_public_key_is_refused(tmp_path):
    store_at(tmp_path).init()
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "2026-1.key").write_bytes(other)
    with pytest.raises(KeyStoreError, match="does not match"):
        store_at(tmp_path).current()


@pytest.mark.parametrize("kid", ["../2026-1", "2026-1/../2026-1", "2026-01", "2026-0", "26-1", "", "2026-1\n", None])
def test_public_key_of_a_malformed_kid_is_none(tmp_path, kid):
    store = store_at(tmp_path)
    store.init()
    assert store.public_key(kid) is None


def test_signature_verifies_with_the_published_raw_key_using_only_cryptography(tmp_path):
    store = store_at(tmp_path)
    kid, key = store.init(), store.current()[1]
    signed = sign(document(kid), key, kid)
    [entry] = store.public_keys()
    assert entry == {"kid": "2026-1", "alg": "Ed25519", "public_key": (tmp_path / "2026-1.pub").read_text().strip()}
    public = raw_public_key(entry)
    signature = base64.urlsafe_b64decode(signed.signature + "=" * (-len(signed.signature) % 4))
    assert len(signature) == 64
    public.verify(signature, spec_canonical(signed.document))  # raises if invalid

    forged = dict(signed.document, total=164500)  # one digit of total changed
    with pytest.raises(InvalidSignature):
        public.verify(signature, spec_canonical(forged))
    assert not verify(forged, signed.signature, store.public_key(kid))
    assert not verify_with_store(forged, signed.signature, store)


def test_sign_refuses_a_document_naming_another_key(tmp_path):
    store = store_at(tmp_path)
    store.init()
    with pytest.raises(AssertionError):
        sign(document("2026-2"), store.current()[1], "2026-1")


def test_verify_with_store_unknown_or_missing_kid(tmp_path):
    store = store_at(tmp_path)
    kid = store.init()
    signed = sign(document(kid), store.current()[1], kid)
    assert not verify_with_store(dict(signed.document, kid="2026-9"), signed.signature, store)
    no_kid = {k: v for k, v in signed.document.items() if k != "kid"}
    assert not verify_with_store(no_kid, signed.signature, store)


@pytest.mark.parametrize("bad", ["", "not base64!", "AA==", "A" * 85, "A" * 86 + "=="])
def test_verify_refuses_malformed_signatures(tmp_path, bad):
    store = store_at(tmp_path)
    kid = store.init()
    assert not verify(document(kid), bad, store.public_key(kid))


def test_command_messages(tmp_path):
    key_dir = tmp_path / "keys"
    created = keys_init(key_dir, now=lambda: IN_2026)
    assert "2026-1" in created and "created" in created
    again = keys_init(key_dir, now=lambda: IN_2026)
    assert "2026-1" in again and "nothing changed" in again
    rotated = keys_rotate(key_dir, now=lambda: IN_2026)
    assert "2026-2" in rotated and "2026-1" in rotated
    assert "\n" not in created + again + rotated
    with pytest.raises(KeyStoreError):
        keys_rotate(tmp_path / "empty")


def test_a_running_store_sees_another_process_rotate_within_the_recheck_time(tmp_path, monkeypatch):
    running, operator = store_at(tmp_path), store_at(tmp_path)
    running.init()
    clock = [1000.0]
    monkeypatch.setattr(keys_module.time, "monotonic", lambda: clock[0])
    assert running.current()[0] == "2026-1"
    assert operator.rotate() == "2026-2"
    assert running.current()[0] == "2026-1"  # not read again on every payment
    clock[0] += keys_module.CURRENT_RECHECK_S
    assert running.current()[0] == "2026-2"
    assert running.rotate() == "2026-3"
    assert running.current()[0] == "2026-3"  # its own rotation at once
