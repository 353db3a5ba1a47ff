"""The payment proof document, its canonical bytes, validation codes and masks (domain.md "Payment proof").

Pure functions only: signing and key files live in `gateway.proofs`. What is here is everything a
verifier must reproduce bit for bit — the document layout, the canonical JSON, base64url, and the
validation code printed on receipts — plus the masks of the public proof check (http-api.md).

The Surat Keterangan Lunas (SKL) is a second document type of the same scheme: `"type":"skl"`, its own
number `SKL-<NTPD>-<nn>`, signed and coded exactly as a proof. A payment proof has no `type` member.
"""

import base64
import datetime
import hashlib
import json
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from ._digits import is_ascii_digits
from .bills import Channel, Tax
from .errors import FormatError
from .ntpd import NTPD_LENGTH, parse_ntpd

PROOF_VERSION = 1
# ISO field 18 6010..6017 order; the enum is the single source of truth.
CHANNELS = tuple(ch.value for ch in Channel)

# Crockford's base32 alphabet: no I, L, O, U, so a printed code cannot be misread as another one.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VALIDATION_CODE_LENGTH = 16  # 80 bits
_CODE_BITS = 5 * VALIDATION_CODE_LENGTH
# Crockford's decoding rules: the letters people confuse with digits read as those digits.
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CROCKFORD_SET = frozenset(CROCKFORD)
# A code typed into a form is 19 characters; anything much longer is not a code (limit the work).
_MAX_CODE_INPUT = 64

SKL_TYPE = "skl"
SKL_PREFIX = "SKL-"
MAX_SKL_COUNTER = 99  # the issue counter is 2 digits (domain.md)
SKL_NUMBER_LENGTH = len(SKL_PREFIX) + NTPD_LENGTH + 3
USERNAME_MAX_LENGTH = 128  # as audit_log.actor

NTB_MAX_LENGTH = 32
NOP_LENGTH = 18
REGISTRATION_LENGTH = 14
_MASKED_TAIL = 6
_B64URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def proof_document(
    *,
    ntpd: str,
    tax: str,
    bill: str,
    tax_year: int,
    taxpayer: str,
    principal: int,
    penalty: int,
    total: int,
    business_date: datetime.date,
    paid_at: datetime.datetime,
    bank: str,
    channel: str,
    ntb: str,
    region: str,
    kid: str,
    nop: str | None = None,
    discount: int = 0,
    penalty_waived: int = 0,
    relief: str | None = None,
) -> dict[str, Any]:
    """The proof document of an approved payment, exactly as domain.md lays it out; with a relief program,
    ``discount``, ``penalty_waived`` and ``relief`` (the program's id) are added, ``principal`` and ``penalty``
    staying the amounts paid.

    `bill` is the 18-digit NOP for PBB and the 14-digit SSPD registration number for BPHTB, whose
    `nop` is then required. For PBB the document has no `nop` key; passing `nop` equal to `bill`
    is tolerated (callers often hold the NOP of every bill) and anything else is refused.
    Everything is checked: a document that is signed cannot be taken back, so a caller bug must
    fail here rather than be published with the gateway's signature on it.
    """
    tax = Tax(tax).value  # ValueError for anything but PBB/BPHTB
    parse_ntpd(ntpd)
    if ntpd[6] != Tax(tax).digit:
        raise ValueError(f"NTPD {ntpd} was not issued for {tax}")
    if tax == Tax.PBB:
        _require_digits("bill (NOP)", bill, NOP_LENGTH)
        if nop is not None and nop != bill:
            raise ValueError("a PBB proof has no separate nop (the bill is the NOP)")
    else:
        _require_digits("bill (registration number)", bill, REGISTRATION_LENGTH)
        if nop is None:
            raise ValueError("a BPHTB proof needs the nop")
        _require_digits("nop", nop, NOP_LENGTH)
    _require_int("tax_year", tax_year, 1000, 9999)
    _require_text("taxpayer", taxpayer)
    _require_int("principal", principal, 0)
    _require_int("penalty", penalty, 0)
    _require_int("total", total, 0)
    if principal + penalty != total:
        # Payments record the principal and penalty they settled (quotes included), so the total
        # is always their sum; a document saying otherwise would be signed nonsense.
        raise ValueError(f"total {total} is not principal {principal} + penalty {penalty}")
    if not isinstance(business_date, datetime.date) or isinstance(business_date, datetime.datetime):
        raise ValueError("business_date must be a date")
    _require_text("bank", bank)
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    _require_text("ntb", ntb)
    if len(ntb) > NTB_MAX_LENGTH:
        raise ValueError(f"ntb is longer than {NTB_MAX_LENGTH} characters")
    _require_digits("region", region, 4)
    _require_text("kid", kid)
    _require_int("discount", discount, 0)
    _require_int("penalty_waived", penalty_waived, 0)
    if relief is None and (discount or penalty_waived):
        raise ValueError("a reduction needs the relief program that gave it")
    if relief is not None:
        _require_text("relief", relief)

    doc: dict[str, Any] = {
        "v": PROOF_VERSION,
        "ntpd": ntpd,
        "tax": tax,
        "bill": bill,
    }
    if tax == Tax.BPHTB:
        doc["nop"] = nop
    doc.update(
        tax_year=tax_year,
        taxpayer=taxpayer,
        principal=principal,
        penalty=penalty,
        total=total,
        business_date=business_date.isoformat(),
        paid_at=rfc3339_seconds(paid_at),
        bank=str(bank),
        channel=str(channel),
        ntb=ntb,
        region=region,
        kid=kid,
    )
    if relief is not None:
        doc.update(discount=discount, penalty_waived=penalty_waived, relief=relief)
    return doc


def skl_number(ntpd: str, counter: int) -> str:
    """`SKL-261123100000001210-01`: the SKL's own number, the payment's NTPD and a 2-digit issue counter."""
    parse_ntpd(ntpd)
    _require_int("counter", counter, 1, MAX_SKL_COUNTER)
    return f"{SKL_PREFIX}{ntpd}-{counter:02d}"


def parse_skl_number(text: str) -> tuple[str, int]:
    """(NTPD, counter) of an SKL number; FormatError for anything that is not exactly one."""
    if not (isinstance(text, str) and len(text) == SKL_NUMBER_LENGTH and text.startswith(SKL_PREFIX)
            and text[-3] == "-" and is_ascii_digits(text[-2:])):
        raise FormatError("skl_number", f"must be {SKL_PREFIX}<NTPD>-<2 digits>")
    ntpd = parse_ntpd(text[len(SKL_PREFIX):-3])
    counter = int(text[-2:])
    if counter < 1:
        raise FormatError("skl_number", "the issue counter starts at 01")
    return ntpd, counter


def is_skl_number(text: object) -> bool:
    """Whether `text` is written like an SKL number (the public check's path tells the two kinds apart)."""
    return isinstance(text, str) and text.startswith(SKL_PREFIX)


def skl_document(
    *,
    proof: Mapping[str, Any],
    counter: int,
    issued_at: datetime.datetime,
    issued_by: str,
    kid: str,
) -> dict[str, Any]:
    """The Surat Keterangan Lunas of the payment whose signed proof document is `proof` (domain.md): the
    bill, tax year, taxpayer, the payment's NTPD, amounts, business date and bank are the proof's own (so
    the certificate cannot say anything the payment's signature does not), with `type`, `number`,
    `issued_at`, `issued_by` and the signing `kid` of this issue. `v` and `region` are kept as the proof
    has them: the same scheme, and the Bapenda that certifies.
    """
    if not isinstance(proof, Mapping) or "type" in proof:
        raise ValueError("an SKL certifies a payment proof document (one without a type)")
    # Re-validate everything taken from the proof: it came out of the database, and what is signed here
    # cannot be taken back. The members go in unchecked (None when absent): proof_document refuses them.
    get: Callable[[str], Any] = proof.get
    checked = proof_document(
        ntpd=get("ntpd"), tax=get("tax"), bill=get("bill"), tax_year=get("tax_year"),
        taxpayer=get("taxpayer"), principal=get("principal"), penalty=get("penalty"),
        total=get("total"), business_date=_date(get("business_date")),
        paid_at=datetime.datetime.fromisoformat(str(get("paid_at"))), bank=get("bank"),
        channel=get("channel"), ntb=get("ntb"), region=get("region"), kid=get("kid"),
        nop=get("nop"))
    _require_text("issued_by", issued_by)
    if len(issued_by) > USERNAME_MAX_LENGTH or not issued_by.isprintable():
        raise ValueError(f"issued_by must be a staff username of at most {USERNAME_MAX_LENGTH} printable characters")
    _require_text("kid", kid)
    doc: dict[str, Any] = {
        "v": PROOF_VERSION,
        "type": SKL_TYPE,
        "number": skl_number(checked["ntpd"], counter),
        "ntpd": checked["ntpd"],
        "tax": checked["tax"],
        "bill": checked["bill"],
    }
    if "nop" in checked:
        doc["nop"] = checked["nop"]
    for name in ("tax_year", "taxpayer", "principal", "penalty", "total", "business_date", "bank", "region"):
        doc[name] = checked[name]
    doc.update(issued_at=rfc3339_seconds(issued_at, "issued_at"), issued_by=issued_by, kid=kid)
    return doc


def document_type(doc: Mapping[str, Any]) -> str:
    """`skl` for a Surat Keterangan Lunas, `proof` for a payment proof (which carries no `type`)."""
    kind = doc.get("type", "proof")
    if kind not in ("proof", SKL_TYPE) or (kind == "proof" and "type" in doc):
        raise ValueError(f"unknown document type {kind!r}")
    return kind


def _date(text: object) -> datetime.date:
    if not isinstance(text, str):
        raise ValueError("business_date must be YYYY-MM-DD text")
    return datetime.date.fromisoformat(text)


def rfc3339_seconds(moment: datetime.datetime, name: str = "paid_at") -> str:
    """`2026-11-23T09:15:02+07:00`: the moment's own offset, whole seconds (fractions dropped)."""
    if not isinstance(moment, datetime.datetime):
        raise ValueError(f"{name} must be a datetime")
    offset = moment.utcoffset()
    if offset is None:
        # A naive time has no offset to print, and guessing one would misdate the payment.
        raise ValueError(f"{name} must be timezone-aware")
    if offset.total_seconds() % 60:
        # RFC 3339 offsets are hours and minutes only (only pre-1924 LMT zones have seconds).
        raise ValueError(f"{name} offset {offset} is not a whole number of minutes")
    # Truncated rather than rounded: a proof never claims a moment later than the payment.
    return moment.replace(microsecond=0).isoformat()


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, raw UTF-8 (domain.md)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url`; ValueError for anything that is not its exact output.

    Padding, whitespace, the standard alphabet's `+/` and non-zero trailing bits are all refused,
    so one byte string has exactly one accepted text (a signature cannot be re-spelled).
    """
    if not isinstance(text, str) or not _B64URL_CHARS.issuperset(text):
        raise ValueError("not base64url text (alphabet A-Z a-z 0-9 - _, no padding)")
    if len(text) % 4 == 1:
        raise ValueError("base64url text has an impossible length")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError(f"bad base64url: {exc}") from None
    if b64url(data) != text:
        raise ValueError("base64url text is not canonical (non-zero trailing bits)")
    return data


def validation_code(signature: bytes) -> str:
    """The 16-character kode validasi of a signature, without dashes.

    SHA-256 of the signature bytes, the first 80 bits read most significant bit first in 5-bit
    groups, each mapped to Crockford's alphabet.
    """
    if not isinstance(signature, (bytes, bytearray)):
        raise TypeError("signature must be bytes")
    digest = hashlib.sha256(signature).digest()
    bits = int.from_bytes(digest[: _CODE_BITS // 8], "big")
    return "".join(
        CROCKFORD[(bits >> (_CODE_BITS - 5 * (i + 1))) & 0x1F] for i in range(VALIDATION_CODE_LENGTH)
    )


def normalize_code(text: str) -> str | None:
    """A typed validation code as its 16 plain characters, or None if it cannot be one.

    Dashes and whitespace go, case is ignored, and Crockford's decoding aliases apply (O reads as
    0, I and L as 1): the code is meant to be read off paper and typed by people.
    """
    if not isinstance(text, str) or len(text) > _MAX_CODE_INPUT:
        return None
    code = "".join(text.replace("-", "").split()).upper().translate(_CROCKFORD_ALIASES)
    if len(code) != VALIDATION_CODE_LENGTH or not _CROCKFORD_SET.issuperset(code):
        return None
    return code


def format_code(code: str) -> str:
    """`XXXX-XXXX-XXXX-XXXX`, the printed form; ValueError if `code` is not a validation code."""
    plain = normalize_code(code)
    if plain is None:
        raise ValueError(f"not a validation code: {code!r}")
    return "-".join(plain[i : i + 4] for i in range(0, VALIDATION_CODE_LENGTH, 4))


def mask_bill_id(bill: str) -> str:
    """The bill id with its last 6 characters as `*` (`327501000100******`); shorter ids fully masked."""
    if not isinstance(bill, str):
        raise ValueError("bill must be text")
    kept = max(len(bill) - _MASKED_TAIL, 0)
    return bill[:kept] + "*" * (len(bill) - kept)


def mask_name(name: str) -> str:
    """Every letter of each word but its first becomes `*` (`SITI AMINAH` -> `S*** A*****`).

    Words are separated by whitespace, which is kept as it is; characters that are not letters
    (dots, apostrophes, hyphens) stay, so `H. ABDUL` -> `H. A****`. Combining marks after the
    first letter are masked with it, so a decomposed accent cannot leak through.
    """
    if not isinstance(name, str):
        raise ValueError("name must be text")
    out = []
    seen_letter = False
    for ch in name:
        if ch.isspace():
            seen_letter = False
            out.append(ch)
        elif ch.isalpha() or unicodedata.category(ch).startswith("M"):
            out.append("*" if seen_letter else ch)
            seen_letter = seen_letter or ch.isalpha()
        else:
            out.append(ch)
    return "".join(out)


def _require_digits(name: str, value: object, length: int) -> None:
    if not (isinstance(value, str) and len(value) == length and is_ascii_digits(value)):
        raise ValueError(f"{name} must be {length} digits, got {value!r}")


def _require_int(name: str, value: object, low: int, high: int | None = None) -> None:
    # bool is an int subclass: True must not become 1 rupiah in a signed document.
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be non-empty text")
