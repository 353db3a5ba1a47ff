"""Command-line helpers: `gateway keys init|rotate` and `gateway proof verify FILE` (offline).

Each returns a one-line message for stdout. Failures of the key store raise `KeyStoreError`
(exit 1); `verify_file` answers `(False, why)` for a proof that does not verify or cannot be read,
and raises `ValueError` only for a usage error (exit 2: no key given, or both kinds given).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.domain.proof import SKL_TYPE, b64url_decode, document_type, format_code, normalize_code, validation_code

from .keys import KeyStore
from .signing import verify

MAX_INPUT_BYTES = 1024 * 1024  # a proof answer is about 1 KB; anything this big is not one


def keys_init(key_dir: str | os.PathLike[str], *, now: Callable[[], datetime] | None = None) -> str:
    store = KeyStore(key_dir, now=now)
    existing = store.current_kid()
    kid = store.init()
    if existing is not None:
        return f"signing key {kid} already exists in {key_dir}; nothing changed"
    return f"signing key {kid} created in {key_dir}"


def keys_rotate(key_dir: str | os.PathLike[str], *, now: Callable[[], datetime] | None = None) -> str:
    store = KeyStore(key_dir, now=now)
    previous = store.current_kid()
    kid = store.rotate()
    return f"signing key {kid} is now current in {key_dir}; {previous} stays published for older proofs"


def verify_file(proof_path: str, public_key_b64url: str | None, keys_path: str | None) -> tuple[bool, str]:
    """Check a saved proof against a public key given inline or in a saved `/v1/proofs/keys` answer.

    FILE holds `{"proof": {...}, "signature": ...}` (a payment answer) or `{"document": {...},
    "signature": ...}` (a saved proof, or a Surat Keterangan Lunas as the staff service saves it: its document
    has `"type":"skl"` and is verified exactly as a payment proof). No network is used.
    """
    if (public_key_b64url is None) == (keys_path is None):
        raise ValueError("give exactly one of --public-key B64URL or --keys FILE")
    try:
        wrapper = _read_json(proof_path)
    except ValueError as exc:
        return False, f"INVALID: {exc}"
    if not isinstance(wrapper, Mapping):
        return False, f"INVALID: {proof_path} does not hold a JSON object"
    document = wrapper.get("proof", wrapper.get("document"))
    signature = wrapper.get("signature")
    if not isinstance(document, Mapping) or not isinstance(signature, str):
        return False, f"INVALID: {proof_path} has no proof document (proof or document) and signature"
    kid = document.get("kid")
    ntpd = document.get("ntpd")
    try:
        kind = document_type(document)
    except ValueError as exc:
        return False, f"INVALID: {exc} - NTPD {ntpd}"
    name = f"SKL {document.get('number')} of NTPD {ntpd}" if kind == SKL_TYPE else f"NTPD {ntpd}"
    if not isinstance(kid, str):
        return False, f"INVALID: the document names no key (kid) - {name}"
    try:
        signature_bytes = b64url_decode(signature)
    except ValueError:
        return False, f"INVALID: the signature is not base64url - {name}, key {kid}"
    code = format_code(validation_code(signature_bytes))
    about = f"{name}, key {kid}, validation code {code}"

    if public_key_b64url is not None:
        public_key, why = _public_key(public_key_b64url, "--public-key")
    else:
        assert keys_path is not None  # exactly one of the two was given (checked above)
        public_key, why = _key_from_list(keys_path, kid)
    if public_key is None:
        return False, f"INVALID: {why} - {about}"
    if not verify(document, signature, public_key):
        return False, f"INVALID: the signature does not match the document - {about}"
    # The wrapper's own kid and validation code are not signed; a receipt printed from a file whose
    # code differs from the signature's would fail the public check, so say so.
    stated_kid = wrapper.get("kid")
    if stated_kid is not None and stated_kid != kid:
        return False, f"INVALID: the file says key {stated_kid!r} but the document names {kid} - {about}"
    stated_code = wrapper.get("validation_code")
    if stated_code is not None and normalize_code(str(stated_code)) != code.replace("-", ""):
        return False, f"INVALID: the file's validation code {stated_code} is not the signature's - {about}"
    return True, f"VALID: signature verified - {about}"


def _read_json(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise ValueError(f"{path} is larger than {MAX_INPUT_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None


def _public_key(text: object, where: str) -> tuple[Ed25519PublicKey | None, str]:
    try:
        raw = b64url_decode(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        return None, f"{where} is not a 32-byte base64url Ed25519 public key"
    return Ed25519PublicKey.from_public_bytes(raw), ""


def _key_from_list(keys_path: str, kid: str) -> tuple[Ed25519PublicKey | None, str]:
    try:
        keys = _read_json(keys_path)
    except ValueError as exc:
        return None, str(exc)
    if isinstance(keys, Mapping):  # tolerate {"keys": [...]} as well as the bare list
        keys = keys.get("keys")
    if not isinstance(keys, list):
        return None, f"{keys_path} is not a list of public keys (save the /v1/proofs/keys answer)"
    for entry in keys:
        if isinstance(entry, Mapping) and entry.get("kid") == kid:
            if entry.get("alg", "Ed25519") != "Ed25519":
                return None, f"key {kid} in {keys_path} is not Ed25519"
            return _public_key(entry.get("public_key"), f"key {kid} in {keys_path}")
    return None, f"no public key {kid} in {keys_path}"
