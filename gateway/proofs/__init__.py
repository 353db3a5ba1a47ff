"""Payment proofs: signing keys, signatures and validation codes, the teller receipt PDF.

The document layout, canonical bytes and validation code are pure rules in `gateway.domain.proof`;
this package adds what needs I/O or third-party code (key files, Ed25519, PDF, QR).
The receipt module is not imported here, so signing does not pull in reportlab.
"""

from .keys import KeyStore, KeyStoreError
from .signing import SignedProof, sign, verify, verify_with_store

__all__ = ["KeyStore", "KeyStoreError", "SignedProof", "sign", "verify", "verify_with_store"]
