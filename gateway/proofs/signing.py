"""Signing and verifying proof documents (domain.md "Payment proof": Ed25519 over the canonical bytes)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.domain.proof import b64url, b64url_decode, canonical_bytes, validation_code

from .keys import KeyStore

ED25519_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class SignedProof:
    document: dict[str, Any]
    signature: str  # base64url, no padding
    kid: str
    validation_code: str  # 16 Crockford characters, no dashes
    # The document as JSON text, the signed bytes themselves (what the proofs table stores).
    document_json: str = ""


def sign(document: Mapping[str, Any], private_key: Ed25519PrivateKey, kid: str) -> SignedProof:
    """Sign `document` with the key named `kid`, which must be the kid the document names."""
    if document.get("kid") != kid:
        # An assertion that survives `python -O`: a proof naming the wrong key could never be verified.
        raise AssertionError(f"document names key {document.get('kid')!r}, signing with {kid!r}")
    # A copy: the signed proof must not change if the caller goes on editing its dict.
    doc = dict(document)
    signed = canonical_bytes(doc)
    signature = private_key.sign(signed)
    return SignedProof(document=doc, signature=b64url(signature), kid=kid, validation_code=validation_code(signature),
                       document_json=signed.decode())


def verify(document: Mapping[str, Any], signature_b64url: str, public_key: Ed25519PublicKey) -> bool:
    """Whether the signature is the key's signature of the document's canonical bytes."""
    try:
        signature = b64url_decode(signature_b64url)
        if len(signature) != ED25519_SIGNATURE_BYTES:
            return False
        public_key.verify(signature, canonical_bytes(document))
    except (InvalidSignature, ValueError, TypeError):
        # ValueError/TypeError: bad base64url, or a document JSON cannot represent; neither verifies.
        return False
    return True


def verify_with_store(document: Mapping[str, Any], signature: str, store: KeyStore) -> bool:
    """`verify` with the public key the document's `kid` names; an unknown kid does not verify."""
    kid = document.get("kid") if isinstance(document, Mapping) else None
    public_key = store.public_key(kid) if isinstance(kid, str) else None
    if public_key is None:
        return False
    return verify(document, signature, public_key)
