"""The proof signing keys: Ed25519 key files in `[proof] key_dir` (operations.md `gateway keys init/rotate`).

Layout of the directory (mode 0700):

    2026-1.key   private key, PEM PKCS8 unencrypted, mode 0600
    2026-1.pub   public key, the raw 32 bytes as base64url text (what /v1/proofs/keys publishes)
    current      the kid that signs new proofs

Key ids are `YYYY-N`: the year the key was made and a counter from 1 within that year. Files are
never rewritten: a rotation adds a key and then switches `current` with an atomic rename, so a
crash at any point leaves either the old or the new key current, and every public key that ever
signed a proof stays published.
"""
from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.domain.proof import b64url, b64url_decode

ALG = "Ed25519"
CURRENT_FILE = "current"
# Strict on purpose: kids arrive from untrusted proof documents and become file names.
_KID_RE = re.compile(r"\A([0-9]{4})-([1-9][0-9]{0,5})\Z")
_KEY_FILE_RE = re.compile(r"\A([0-9]{4})-([1-9][0-9]{0,5})\.(?:key|pub)\Z")
_MAX_KEY_FILE_BYTES = 64 * 1024
# How often a running gateway looks at `current` again (seconds).
CURRENT_RECHECK_S = 1.0
# Concurrent `rotate` calls race for the next N with O_EXCL; a handful of retries settles any race.
_CREATE_ATTEMPTS = 10


class KeyStoreError(Exception):
    """The key directory cannot be used as it is; the message says what to do."""


def is_kid(text: object) -> bool:
    """Whether `text` is a well-formed key id (`2026-1`)."""
    return isinstance(text, str) and _KID_RE.match(text) is not None


class KeyStore:
    """Ed25519 signing keys in one directory. `now` (aware or naive) gives the year of new kids."""

    def __init__(self, key_dir: str | os.PathLike[str], *, now: Callable[[], datetime] | None = None):
        self.key_dir = Path(key_dir)
        self._now = now or (lambda: datetime.now(UTC))
        # Loaded private keys by kid; key files never change once written, so this never goes stale.
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._current: str | None = None
        self._current_until = 0.0

    # -- commands -------------------------------------------------------------------------------

    def init(self) -> str:
        """Create the first key unless there is a current one; return the current kid."""
        existing = self.current_kid()
        if existing is not None:
            self.current()  # an unusable store (bad mode, missing file) is reported now, not at payment time
            return existing
        self._ensure_dir()
        kid = self._create_key()
        self._set_current(kid)
        return kid

    def rotate(self) -> str:
        """Make a new key current; the previous ones stay published. Returns the new kid."""
        if self.current_kid() is None:
            raise KeyStoreError(f"no signing key in {self.key_dir}: run gateway keys init first")
        self._ensure_dir()
        kid = self._create_key()
        self._set_current(kid)
        return kid

    # -- reading --------------------------------------------------------------------------------

    def current_kid(self) -> str | None:
        """The kid named by `current`, or None when the store has no key yet."""
        path = self.key_dir / CURRENT_FILE
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"cannot read {path}: {exc}") from None
        if not is_kid(text):
            raise KeyStoreError(f"{path} does not name a key (got {text[:40]!r})")
        return text

    def current(self) -> tuple[str, Ed25519PrivateKey]:
        """The kid and private key that sign new proofs.

        Called for every payment: `current` is read again at most every CURRENT_RECHECK_S, not on each
        call, so a `gateway keys rotate` reaches a running gateway within that time (a proof signed by the
        previous key meanwhile stays valid: its public key stays published)."""
        clock = time.monotonic()
        kid = self._current
        if kid is None or clock >= self._current_until:
            kid = self.current_kid()
            self._current, self._current_until = kid, clock + CURRENT_RECHECK_S
        if kid is None:
            raise KeyStoreError(f"no proof signing key in {self.key_dir}: run gateway keys init")
        key = self._private.get(kid)
        if key is None:
            key = self._load_private(kid)
            self._private[kid] = key
        return kid, key

    def public_keys(self) -> list[dict[str, str]]:
        """Every published key, oldest first: `[{"kid", "alg": "Ed25519", "public_key"}]`."""
        out = []
        for kid in self._kids(suffix=".pub"):
            out.append({"kid": kid, "alg": ALG, "public_key": b64url(self._read_public_raw(kid))})
        return out

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key named `kid`, or None if there is none (or `kid` is not a kid at all)."""
        if not is_kid(kid):
            return None
        try:
            raw = self._read_public_raw(kid)
        except FileNotFoundError:
            return None
        return Ed25519PublicKey.from_public_bytes(raw)

    # -- files ----------------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        try:
            self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyStoreError(f"cannot create key directory {self.key_dir}: {exc}") from None
        if not self.key_dir.is_dir():
            raise KeyStoreError(f"{self.key_dir} is not a directory")

    def _kids(self, suffix: str) -> list[str]:
        try:
            names = os.listdir(self.key_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyStoreError(f"cannot list {self.key_dir}: {exc}") from None
        found = []
        for name in names:
            m = _KEY_FILE_RE.match(name)
            if m and name.endswith(suffix):
                found.append((int(m.group(1)), int(m.group(2))))
        return [f"{year}-{n}" for year, n in sorted(found)]

    def _next_kid(self) -> str:
        year = self._now().year
        taken = [int(kid.split("-")[1]) for kid in self._kids("") if kid.startswith(f"{year:04d}-")]
        return f"{year:04d}-{max(taken, default=0) + 1}"

    def _create_key(self) -> str:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        for _ in range(_CREATE_ATTEMPTS):
            kid = self._next_kid()
            path = self.key_dir / f"{kid}.key"
            try:
                # Created 0600 in one step: the key is never readable by others, not even briefly.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except FileExistsError:
                continue  # another process took this kid; count again
            except OSError as exc:
                raise KeyStoreError(f"cannot create {path}: {exc}") from None
            try:
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_atomic(f"{kid}.pub", (b64url(raw_public) + "\n").encode("ascii"))
            self._private[kid] = key
            return kid
        raise KeyStoreError(f"could not pick a new key id in {self.key_dir} (too many concurrent rotations)")

    def _set_current(self, kid: str) -> None:
        self._current = None  # this process's own rotation is seen at once
        self._write_atomic(CURRENT_FILE, (kid + "\n").encode("ascii"))

    def _write_atomic(self, name: str, data: bytes) -> None:
        final = self.key_dir / name
        tmp = self.key_dir / f".{name}.tmp-{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            _fsync_dir(self.key_dir)
        except OSError as exc:
            raise KeyStoreError(f"cannot write {final}: {exc}") from None

    def _load_private(self, kid: str) -> Ed25519PrivateKey:
        path = self.key_dir / f"{kid}.key"
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise KeyStoreError(f"{path} is missing (named by {self.key_dir / CURRENT_FILE})") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot open {path}: {exc}") from None
        try:
            # fstat of the open file, not stat of the name: what is checked is what is read.
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                raise KeyStoreError(
                    f"{path} is readable by other users (mode {mode:04o}); "
                    f"a signing key must be private: chmod 600 {path}"
                )
            data = os.read(fd, _MAX_KEY_FILE_BYTES)
        finally:
            os.close(fd)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"{path} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} is not an Ed25519 key")
        raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            published = self._read_public_raw(kid)
        except FileNotFoundError:
            pub = self.key_dir / f"{kid}.pub"
            raise KeyStoreError(f"{pub} is missing; proofs signed now could not be checked") from None
        if published != raw_public:
            raise KeyStoreError(f"{path} does not match the published {kid}.pub")
        return key

    def _read_public_raw(self, kid: str) -> bytes:
        path = self.key_dir / f"{kid}.pub"
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise  # the callers decide: "no such key" or "store is broken"
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"cannot read {path}: {exc}") from None
        try:
            raw = b64url_decode(text)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise KeyStoreError(f"{path} does not hold a 32-byte base64url public key")
        return raw


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is; not every platform can open a dir.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
