"""The OpenAPI 3.1 document of the HTTP API (spec/http-api.md), served at /openapi.json.

It is the reference a bank's developer reads, and the end-to-end tests check every answer of a running
gateway against it (tests/e2e/openapi_check.py). It is a plain dict built by the small helpers below; the
shared schemas live under ``components/schemas`` and JSON Schema is OpenAPI 3.1's dialect (Draft 2020-12).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.domain.bills import Channel
from gateway.domain.codes import RC, message

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

# The "when" column of the response code table (spec/iso8583.md "Response codes").
RC_WHEN = {
    "00": "inquiry answered, payment posted, reversal done (or nothing left to reverse)",
    "05": "tax not enabled for the bank, bank disabled, or a request from outside the bank's `allow` list "
          "(HTTP 403)",
    "12": "a payment whose reversal already arrived; reversal of another bank's payment",
    "13": "payment amount is neither the total due nor a live quote; reversal amount differs from the payment",
    "14": "no such NOP + year or SSPD registration in this region, the optional NOP / tax year of a BPHTB "
          "request disagree with the registration, or (reversal) no such NTPD",
    "30": "a mandatory field missing or malformed: bad NOP / registration format or check digits, bad year, "
          "amount, channel… (HTTP 400)",
    "33": "bill cancelled, or BPHTB registration past its valid-until date (payable through that date, "
          "compared with the business date)",
    "57": "the payment's business date is already closed",
    "88": "the bill has an active payment, or was imported as paid",
    "90": "the business date is being closed; try again shortly (HTTP 503)",
    "91": "database unreachable, or a payment's outcome is unknown — reverse or repeat it "
          "(HTTP 503)",
    "94": "an `Idempotency-Key` reused with a different request (HTTP 422)",
    "96": "any other failure (HTTP 500)",
}

# Nonce, timestamp and signature rules of spec/http-api.md "Bank authentication".
SIGNING = (
    "Lower-case hex HMAC-SHA256, keyed with the bank's API secret, over the signing string\n\n"
    "```\nMETHOD + \"\\n\" + PATH_WITH_QUERY + \"\\n\" + X-Timestamp + \"\\n\" + X-Nonce + \"\\n\" "
    "+ hex(SHA-256(body))\n```\n\n"
    "`METHOD` is upper case (`GET`, `POST`); `PATH_WITH_QUERY` is the request target exactly as sent "
    "(e.g. `/v1/bphtb/bills/20261100012356?tax_year=2026`); the body hash is lower-case hex, and an empty "
    "body hashes as the empty string (`e3b0c442…b855`). Example in Python:\n\n"
    "```python\nmsg = \"\\n\".join((method, path_qs, ts, nonce, hashlib.sha256(body).hexdigest()))\n"
    "sig = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()\n```"
)

DESCRIPTION = """\
JSON / HTTP API of the PBB-P2 and BPHTB payment gateway, for banks that integrate over HTTP instead of
ISO 8583, for teller applications, and for the public proof check. Same rules, same response codes and same
database as the ISO 8583 channel: a payment made on one channel is seen, reversed or refused as a duplicate
on the other.

## Conventions

- JSON bodies, UTF-8, `Content-Type: application/json`. Money in whole rupiah as JSON **integers** (never
  strings or floats). Dates `YYYY-MM-DD`; timestamps RFC 3339 with offset (`2026-11-23T09:30:00+07:00`).
- Every business answer is **HTTP 200** with a body holding `response_code` and `message`: a refused payment
  (13, 14, 33, 88, …) is still a 200.
- Other failures are RFC 9457 problem details (`application/problem+json`) with `type`, `title`, `status`,
  `detail` and, where the table says so, `response_code`:

  | status | when | response_code |
  | --- | --- | --- |
  | 400 | malformed JSON, missing or malformed field (NOP, year, registration, amount…) | `30` |
  | 401 | missing, wrong or stale signature; unknown bank; a replayed nonce | – |
  | 403 | a bank request from outside its `allow` list; tax not enabled for the bank | `05` |
  | 404 | unknown route, or a payment/NTPD this caller may not see | – |
  | 409 | an `Idempotency-Key` whose first request is still being processed | – |
  | 413 | body over 1 MiB | – |
  | 422 | an `Idempotency-Key` reused with a different request | `94` |
  | 429 | too many public proof checks from one address (see `Retry-After`) | – |
  | 503 | RC 90 or 91 | `90` / `91` |
  | 500 | anything else | `96` |

- Every response carries `X-Request-Id`, echoing the caller's (first 128 characters) or a new one; it
  appears in the gateway's logs, so quote it when asking for support.
- Every `GET` route also answers `HEAD`.

## Response codes

| RC | message | when |
| --- | --- | --- |
""" + "".join(f"| `{rc.value}` | {message(rc)} | {RC_WHEN[rc.value]} |\n" for rc in RC) + """
## Bank authentication

Each bank has an API secret. Requests to `/v1/pbb`, `/v1/bphtb`, `/v1/reversals` and `/v1/payments` carry
four headers (the four security schemes below, all required together):

- `X-Bank-Code`: the bank code;
- `X-Timestamp`: Unix seconds; refused when more than 300 s from the gateway's real clock;
- `X-Nonce`: 16–64 characters of `[A-Za-z0-9_-]`, new for every request;
- `X-Signature`: lower-case hex HMAC-SHA256 with the bank's secret over
  `METHOD + "\\n" + PATH_WITH_QUERY + "\\n" + X-Timestamp + "\\n" + X-Nonce + "\\n" + hex(SHA-256(body))`
  (empty body → hash of the empty string); see the `Signature` security scheme for an example.

Checks run in this order: source address outside the bank's `allow` list → 403 (RC 05); missing or
malformed header, unknown bank, stale timestamp, wrong signature → 401; a nonce the bank already used within
the 300 s window (a replay) → 401. Where a client certificate is configured for a bank, TLS client
authentication is also required.

## Idempotency

`POST /v1/pbb/payments`, `POST /v1/bphtb/payments` and `POST /v1/reversals` require an `Idempotency-Key`
header (1–64 visible ASCII characters), scoped to the bank; missing or malformed → 400 with `response_code`
`30`. It is the JSON channel's message key:

- same key, same body → the original status and body again, with `Idempotent-Replayed: true`;
- same key, different body → 422 with `response_code` `94`;
- same key while the first is still running → 409.

Keys are kept at least 35 days. Answers that say "try again" (503 with RC 90/91, 500 with RC 96) are not
kept: repeating the request with the same key processes it afresh.
"""


# -- schema helpers ----------------------------------------------------------------------------------------

def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], required: list[str] | None = None, *, description: str | None = None,
        additional: bool = False, **extra: Any) -> dict[str, Any]:
    """A JSON object; closed (no other members) unless ``additional``."""
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = properties
    out["required"] = list(required if required is not None else properties)
    if not additional:
        out["additionalProperties"] = False
    out.update(extra)
    return out


def string(description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string"}
    if description:
        out["description"] = description
    out.update(extra)
    return out


def integer(description: str | None = None, minimum: int | None = 0, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer"}
    if description:
        out["description"] = description
    if minimum is not None:
        out["minimum"] = minimum
    out.update(extra)
    return out


def money(description: str) -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Money", "description": description}


def date(description: str) -> dict[str, Any]:
    return string(description, format="date")


def timestamp(description: str) -> dict[str, Any]:
    return string(description, format="date-time")


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or JSON null (3.1 has no ``nullable``)."""
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


def rc(*codes: str, description: str = "The response code; see the table in the introduction.") -> dict:
    return {"$ref": "#/components/schemas/ResponseCode", "enum": list(codes), "description": description}


def when(codes: tuple[str, ...] | str, then: dict[str, Any]) -> dict[str, Any]:
    """A rule for the answers with the given response codes."""
    codes = (codes,) if isinstance(codes, str) else codes
    return {"if": {"properties": {"response_code": {"enum": list(codes)}}, "required": ["response_code"]},
            "then": then}


# -- shared examples (spec/http-api.md, spec/domain.md) ----------------------------------------------------

PBB_BILL_EXAMPLE = {
    "tax": "PBB", "nop": "327501000100100010", "nop_display": "32.75.010.001.001-0001.0", "tax_year": 2026,
    "taxpayer_name": "SITI AMINAH", "object_address": "JL. MERDEKA NO. 1", "kelurahan": "MARGAHAYU",
    "kecamatan": "BEKASI TIMUR", "region": "KOTA BEKASI", "land_area": 120, "building_area": 90,
    "due_date": "2026-08-31", "status": "unpaid",
}
BPHTB_BILL_EXAMPLE = {
    "tax": "BPHTB", "registration_number": "20261100012356", "nop": "327501000100100020",
    "nop_display": "32.75.010.001.001-0002.0", "tax_year": 2026, "taxpayer_name": "BUDI SANTOSO",
    "nik_masked": "327501******0004", "object_address": "JL. AHMAD YANI 5", "kelurahan": "MARGAHAYU",
    "kecamatan": "BEKASI TIMUR", "region": "KOTA BEKASI", "acquisition_type": 1,
    "acquisition_value": 180000000, "land_area": 200, "building_area": 150, "ppat_name": "NOTARIS RINA, S.H.",
    "valid_until": "2026-12-31", "status": "unpaid",
}
PROOF_EXAMPLE = {
    "v": 1, "ntpd": "261123100000001210", "tax": "PBB", "bill": "327501000100100010", "tax_year": 2026,
    "taxpayer": "SITI AMINAH", "principal": 150000, "penalty": 4500, "total": 154500,
    "business_date": "2026-11-23", "paid_at": "2026-11-23T09:15:02+07:00", "bank": "110", "channel": "teller",
    "ntb": "ABC123", "region": "3275", "kid": "2026-1",
}
SIGNATURE_EXAMPLE = "Zm9v" * 21 + "YQ"

# -- components/schemas ------------------------------------------------------------------------------------

CHANNEL_NAMES = [c.value for c in Channel]

SCHEMAS: dict[str, Any] = {
    "ResponseCode": {
        "type": "string",
        "enum": [c.value for c in RC],
        "description": "Response code, the same as ISO 8583 field 39:\n\n"
                       + "".join(f"- `{c.value}` {message(c)}: {RC_WHEN[c.value]}\n" for c in RC),
    },
    "Message": string("Short English text of the response code (`approved`, `bill not found`, …), for people; "
                      "programs read `response_code`.", minLength=1, examples=["approved"]),
    "BusinessDate": date("The gateway's business date the answer belongs to (region time zone, after the "
                         "daily cut-off the next day)."),
    "Money": integer("Whole rupiah, a JSON integer (never a string or a float).", maximum=2**63 - 1,
                     examples=[154500]),
    "Nop": string("NOP (Nomor Objek Pajak), 18 plain digits.", pattern="^[0-9]{18}$",
                  examples=["327501000100100010"]),
    "NopDisplay": string("The NOP as printed on the SPPT: `PP.KK.CCC.DDD.BBB-NNNN.J`.",
                         pattern=r"^[0-9]{2}\.[0-9]{2}\.[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{4}\.[0-9]$",
                         examples=["32.75.010.001.001-0001.0"]),
    "TaxYear": integer("Tax year, four digits.", minimum=1000, maximum=9999, examples=[2026]),
    "RegistrationNumber": string("SSPD registration number of a BPHTB bill: 14 digits (`YYYY` `MM` serial, "
                                 "2 check digits).", pattern="^[0-9]{14}$", examples=["20261100012356"]),
    "Ntpd": string("NTPD (Nomor Transaksi Penerimaan Daerah), the payment proof number: 18 digits, "
                   "`YYMMDD` business date, tax digit (1 = PBB, 2 = BPHTB), 9-digit serial, 2 check digits.",
                   pattern="^[0-9]{18}$", examples=["261123100000001210"]),
    "ValidationCode": string("Kode validasi printed on every receipt: 16 characters of Crockford's base32 "
                             "alphabet in 4 groups of 4, derived from the proof's signature. Compared without "
                             "dashes, case-insensitively.",
                             pattern="^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$",
                             examples=["7K2Q-9MZD-03XH-PA4T"]),
    "Channel": string("The channel the payment came by (ISO 8583 field 18 `6010`…`6017` in this order).",
                      enum=CHANNEL_NAMES),
    "Ntb": string("NTB, the bank's own transaction reference: 1–32 ASCII characters.", minLength=1,
                  maxLength=32, examples=["ABC123"]),
    "Kid": string("Key id of the Ed25519 key that signed a proof: year `-` number.",
                  pattern="^[0-9]{4}-[1-9][0-9]{0,5}$", examples=["2026-1"]),
    "Signature": string("Ed25519 signature over the proof's canonical bytes, base64url without padding.",
                        pattern="^[A-Za-z0-9_-]{86}$", examples=[SIGNATURE_EXAMPLE]),
    "BillStatus": string("`unpaid`, `paid` (an active payment, or imported as paid) or `cancelled`.",
                         enum=["unpaid", "paid", "cancelled"]),
    "PbbBill": obj({
        "tax": string("Always `PBB`.", const="PBB"),
        "nop": ref("Nop"),
        "nop_display": ref("NopDisplay"),
        "tax_year": ref("TaxYear"),
        "taxpayer_name": string("Taxpayer (wajib pajak) as on the SPPT."),
        "object_address": string("Address of the tax object."),
        "kelurahan": string("Kelurahan / desa of the object."),
        "kecamatan": string("Kecamatan of the object."),
        "region": string("Region (kabupaten / kota) the gateway serves."),
        "land_area": integer("Land area, m²."),
        "building_area": integer("Building area, m²."),
        "due_date": date("Due date (jatuh tempo); a penalty is charged per started month after it."),
        "status": ref("BillStatus"),
    }, description="A PBB-P2 bill (one NOP and tax year).", examples=[PBB_BILL_EXAMPLE]),
    "BphtbBill": obj({
        "tax": string("Always `BPHTB`.", const="BPHTB"),
        "registration_number": ref("RegistrationNumber"),
        "nop": ref("Nop"),
        "nop_display": ref("NopDisplay"),
        "tax_year": ref("TaxYear"),
        "taxpayer_name": string("Taxpayer (the acquirer)."),
        "nik_masked": nullable(string("The taxpayer's NIK with digits 7–12 masked.",
                                      pattern=r"^[0-9]{6}\*{6}[0-9]{4}$")),
        "object_address": string("Address of the tax object."),
        "kelurahan": string("Kelurahan / desa of the object."),
        "kecamatan": string("Kecamatan of the object."),
        "region": string("Region (kabupaten / kota) the gateway serves."),
        "acquisition_type": nullable(integer("Type of acquisition (jenis perolehan) code.", maximum=99)),
        "acquisition_value": nullable(integer("Acquisition value (NPOP), whole rupiah.")),
        "land_area": integer("Land area, m²."),
        "building_area": integer("Building area, m²."),
        "ppat_name": nullable(string("The PPAT / notary who registered the transfer.")),
        "valid_until": date("Last date the registration is payable (compared with the business date)."),
        "status": ref("BillStatus"),
    }, description="A BPHTB bill (one SSPD registration).", examples=[BPHTB_BILL_EXAMPLE]),
    "Bill": {
        "description": "A PBB-P2 or a BPHTB bill, told apart by `tax`.",
        "oneOf": [ref("PbbBill"), ref("BphtbBill")],
        "discriminator": {"propertyName": "tax", "mapping": {"PBB": "#/components/schemas/PbbBill",
                                                             "BPHTB": "#/components/schemas/BphtbBill"}},
    },
    "Amount": obj({
        "principal": money("Principal (pokok)."),
        "penalty": money("Penalty (denda)."),
        "total": money("Total due: principal + penalty. The payment must carry exactly this amount, or a live "
                       "quote."),
    }, description="What a bill owes (a paid or cancelled bill: the principal, penalty 0, total 0), or what a "
                   "payment settled.", examples=[{"principal": 150000, "penalty": 4500, "total": 154500}]),
    "PbbAmount": obj({
        "principal": money("Principal (pokok)."),
        "penalty": money("Penalty (denda) for the months started since the due date, capped."),
        "total": money("Total due today: principal + penalty."),
        "months_late": integer("Months charged a penalty (0 when paid on time, or for a paid / cancelled "
                               "bill)."),
    }, description="What a PBB-P2 bill owes today (a paid or cancelled bill: the principal, penalty 0, "
                   "total 0, months_late 0).",
        examples=[{"principal": 150000, "penalty": 4500, "total": 154500, "months_late": 3}]),
    "Quote": obj({
        "total": money("The quoted total, payable by this bank until `expires_at` even if the penalty changes "
                       "meanwhile."),
        "expires_at": timestamp("When the quote expires."),
    }, description="The amount this inquiry showed the bank, recorded as a quote.",
        examples=[{"total": 154500, "expires_at": "2026-11-23T09:30:00+07:00"}]),
    "ProofDocument": {
        **obj({
            "v": integer("Document version.", const=1),
            "ntpd": ref("Ntpd"),
            "tax": string("`PBB` or `BPHTB`.", enum=["PBB", "BPHTB"]),
            "bill": string("PBB: the 18-digit NOP; BPHTB: the 14-digit SSPD registration number.",
                           pattern="^([0-9]{18}|[0-9]{14})$"),
            "nop": ref("Nop"),
            "tax_year": ref("TaxYear"),
            "taxpayer": string("Taxpayer name at payment time.", minLength=1),
            "principal": money("Principal paid."),
            "penalty": money("Penalty paid."),
            "total": money("Total paid: principal + penalty."),
            "business_date": date("Business date of the payment."),
            "paid_at": timestamp("When the gateway posted the payment, whole seconds, region offset."),
            "bank": string("Code of the bank that collected the payment.", minLength=1),
            "channel": ref("Channel"),
            "ntb": ref("Ntb"),
            "region": string("Region code (province + regency, 4 digits).", pattern="^[0-9]{4}$"),
            "kid": ref("Kid"),
        }, required=["v", "ntpd", "tax", "bill", "tax_year", "taxpayer", "principal", "penalty", "total",
                     "business_date", "paid_at", "bank", "channel", "ntb", "region", "kid"]),
        "description": "The signed payment proof (spec domain.md \"Payment proof\"). `signature` is Ed25519 over "
                       "its canonical bytes: the JSON with keys sorted, separators `,` and `:` without "
                       "whitespace, non-ASCII characters as raw UTF-8 — in Python "
                       "`json.dumps(doc, sort_keys=True, separators=(\",\", \":\"), ensure_ascii=False)"
                       ".encode()`. It verifies with the public key `kid` of `GET /v1/proofs/keys`. For BPHTB, "
                       "`bill` is the registration number and `nop` is added; a PBB document has no `nop`.",
        "allOf": [
            {"if": {"properties": {"tax": {"const": "BPHTB"}}},
             "then": {"required": ["nop"], "properties": {"bill": {"pattern": "^[0-9]{14}$"}}},
             "else": {"not": {"required": ["nop"]}, "properties": {"bill": {"pattern": "^[0-9]{18}$"}}}},
        ],
        "examples": [PROOF_EXAMPLE],
    },
    "Problem": obj({
        "type": string("URI naming the problem type.", format="uri-reference",
                       examples=["https://gateway.bapenda/problems/400"]),
        "title": string("Short summary of the problem type (the HTTP reason phrase)."),
        "status": integer("The HTTP status code.", minimum=400, maximum=599),
        "detail": string("What went wrong with this request, for people."),
        "response_code": rc("05", "30", "90", "91", "94", "96",
                            description="The response code, where the status has one (see the table in the "
                                        "introduction)."),
    }, required=["type", "title", "status", "detail"], additional=True,
        description="RFC 9457 problem details."),
    # -- inquiries ----------------------------------------------------------------------------------------
    "PbbInquiryAnswer": None,  # filled in below (needs the helpers for answers)
    "BphtbInquiryAnswer": None,
    "ArrearsLine": obj({"bill": ref("PbbBill"), "amount": ref("PbbAmount")},
                       description="One tax year of the NOP with what it owes today."),
    "ArrearsAnswer": None,
    # -- payments and reversals ---------------------------------------------------------------------------
    "PbbPaymentRequest": obj({
        "nop": string("The NOP, 18 digits plain or in display form (`32.75.010.001.001-0001.0`).",
                      examples=["327501000100100010"]),
        "tax_year": {"description": "Tax year: a JSON integer (a 4-digit string is tolerated).",
                     "oneOf": [ref("TaxYear"), string(pattern="^[0-9]{4}$")]},
        "amount": money("Exactly the total due (principal + penalty) or the total of a live quote of this "
                        "bank; anything else is RC 13."),
        "ntb": ref("Ntb"),
        "channel": ref("Channel"),
        "terminal_id": string("The teller / ATM / EDC terminal, stored with the payment."),
    }, required=["nop", "tax_year", "amount", "ntb", "channel"], additional=True,
        description="Pay one PBB-P2 bill. Other members are ignored.",
        examples=[{"nop": "327501000100100010", "tax_year": 2026, "amount": 154500, "ntb": "ABC123",
                   "channel": "teller", "terminal_id": "TLR0001"}]),
    "BphtbPaymentRequest": obj({
        "registration_number": ref("RegistrationNumber"),
        "nop": string("Optional cross-check: the NOP of the registration (else RC 14).",
                      examples=["327501000100100020"]),
        "tax_year": {"description": "Optional cross-check: the tax year of the registration (else RC 14).",
                     "oneOf": [ref("TaxYear"), string(pattern="^[0-9]{4}$")]},
        "amount": money("Exactly the total due (principal + penalty); anything else is RC 13."),
        "ntb": ref("Ntb"),
        "channel": ref("Channel"),
        "terminal_id": string("The teller / ATM / EDC terminal, stored with the payment."),
    }, required=["registration_number", "amount", "ntb", "channel"], additional=True,
        description="Pay one BPHTB bill. Other members are ignored.",
        examples=[{"registration_number": "20261100012356", "nop": "327501000100100020", "tax_year": 2026,
                   "amount": 5000000, "ntb": "ABC124", "channel": "teller"}]),
    "PaymentAnswer": None,
    "ReversalRequest": obj({
        "ntpd": ref("Ntpd"),
        "amount": money("The payment's total; a different amount is RC 13."),
        "reason": string("Why the payment is reversed, kept with the reversal."),
    }, required=["ntpd", "amount"], additional=True, description="Reverse one payment of this bank.",
        examples=[{"ntpd": "261123100000001210", "amount": 154500, "reason": "customer cancelled at teller"}]),
    "ReversalAnswer": None,
    "PaymentStatus": obj({
        "ntpd": ref("Ntpd"),
        "status": string("`paid`, or `reversed` once a reversal was posted.", enum=["paid", "reversed"]),
        "tax": string("`PBB` or `BPHTB`.", enum=["PBB", "BPHTB"]),
        "bill_id": string("The bill: PBB, the NOP followed by the tax year (22 digits); BPHTB, the registration "
                          "number (14 digits).", pattern="^([0-9]{22}|[0-9]{14})$"),
        "tax_year": ref("TaxYear"),
        "business_date": date("Business date of the payment."),
        "paid_at": timestamp("When the payment was posted."),
        "reversed_at": nullable(timestamp("When the reversal was posted; null while paid.")),
        "amount": ref("Amount"),
        "channel": ref("Channel"),
        "ntb": ref("Ntb"),
        "proof": nullable(ref("ProofDocument")),
        "signature": nullable(ref("Signature")),
        "kid": nullable(ref("Kid")),
        "validation_code": nullable(ref("ValidationCode")),
    }, description="One payment of the calling bank."),
    # -- public -------------------------------------------------------------------------------------------
    "ProofCheck": {
        "description": "The public proof check. `unknown` for an NTPD that does not exist, a wrong validation "
                       "code or a malformed request alike: the check never reveals that a payment exists.",
        "oneOf": [ref("ProofCheckFound"), ref("ProofCheckUnknown")],
        "discriminator": {"propertyName": "status",
                          "mapping": {"valid": "#/components/schemas/ProofCheckFound",
                                      "reversed": "#/components/schemas/ProofCheckFound",
                                      "unknown": "#/components/schemas/ProofCheckUnknown"}},
    },
    "ProofCheckFound": obj({
        "status": string("`valid`, or `reversed` when the payment was reversed (its proof no longer holds).",
                         enum=["valid", "reversed"]),
        "ntpd": ref("Ntpd"),
        "tax": string("`PBB` or `BPHTB`.", enum=["PBB", "BPHTB"]),
        "bill_masked": string("The bill id (NOP or registration number) with its last 6 characters as `*`.",
                              pattern=r"^[0-9]*\*{6}$", examples=["327501000100******"]),
        "tax_year": ref("TaxYear"),
        "taxpayer_masked": string("The taxpayer's name, every letter but the first of each word as `*`.",
                                  examples=["S*** A*****"]),
        "total": money("Total paid."),
        "business_date": date("Business date of the payment."),
        "bank": string("Code of the bank that collected the payment."),
    }, description="A payment whose NTPD and validation code match.",
        examples=[{"status": "valid", "ntpd": "261123100000001210", "tax": "PBB",
                   "bill_masked": "327501000100******", "tax_year": 2026, "taxpayer_masked": "S*** A*****",
                   "total": 154500, "business_date": "2026-11-23", "bank": "110"}]),
    "ProofCheckUnknown": obj({
        "status": string("Always `unknown`.", const="unknown"),
        "ntpd": string("The NTPD as given in the path."),
    }, description="No payment with this NTPD and validation code.",
        examples=[{"status": "unknown", "ntpd": "261123100000001210"}]),
    "PublicKey": obj({
        "kid": ref("Kid"),
        "alg": string("Always `Ed25519`.", const="Ed25519"),
        "public_key": string("The raw 32-byte public key, base64url without padding.",
                             pattern="^[A-Za-z0-9_-]{43}$"),
    }, description="A proof-signing public key. Old keys stay published after rotation."),
    "PublicKeys": {"type": "array", "items": ref("PublicKey"), "description": "Every published key, oldest first.",
                   "examples": [[{"kid": "2026-1", "alg": "Ed25519",
                                  "public_key": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]]},
    "Health": obj({"status": string("Always `ok`.", const="ok")}, description="The process is alive."),
    "Readiness": obj({
        "status": string("`ready` (HTTP 200) or `not ready` (HTTP 503).", enum=["ready", "not ready"]),
        "database": string("Whether the database answered.", enum=["ok", "unreachable"]),
        "migrations": nullable(obj({"current": integer("Schema version of the database."),
                                    "expected": integer("Schema version this gateway needs.")})),
        "clock_offset_seconds": integer("The `[testing]` clock offset in force (0 in production).",
                                        minimum=None),
        "error": string("Why the database check failed (an exception class name)."),
    }, required=["status", "database", "migrations", "clock_offset_seconds"],
        description="Readiness: database reachable and migrations current."),
    "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"],
                        "properties": {"openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"}},
                        "description": "This OpenAPI 3.1 document."},
}


def _head(codes: tuple[str, ...], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "response_code": rc(*codes),
        "message": ref("Message"),
        "business_date": {**ref("BusinessDate"),
                          "description": "The business date; present whenever the request reached the bill "
                                         "store."},
        **extra,
    }


def _inquiry_answer(tax: str, bill: str, amount: str, example: dict[str, Any]) -> dict[str, Any]:
    codes = ("00", "14", "33", "88")
    return obj(_head(codes, {
        "bill": ref(bill),
        "amount": ref(amount),
        "other_unpaid_years": {"type": "array", "items": ref("TaxYear"),
                               "description": "RC 00: other unpaid tax years of the same NOP within the current "
                                              "year and the five before it (the years of ISO field 62 slot 15)."},
        "quote": ref("Quote"),
        "ntpd": {**ref("Ntpd"), "description": "RC 88, for the bank that paid it: the NTPD of the payment."},
    }), required=["response_code", "message"], description=(
        f"A {tax} inquiry answer. RC 00 carries the bill, the amount due today, the other unpaid years and a "
        "quote; RC 88 carries the bill (status `paid`), `amount` with the principal, penalty 0, total 0 and, for "
        "the bank that paid it, `ntpd`; RC 33 carries the bill; RC 14 carries no bill."),
        allOf=[
            when("00", {"required": ["business_date", "bill", "amount", "other_unpaid_years", "quote"],
                        "properties": {"bill": {"properties": {"status": {"const": "unpaid"}}}}}),
            when("88", {"required": ["business_date", "bill", "amount"],
                        "properties": {"bill": {"properties": {"status": {"const": "paid"}}},
                                       "amount": {"properties": {"penalty": {"const": 0}, "total": {"const": 0}}}}}),
            when("33", {"required": ["business_date", "bill"]}),
            when("14", {"not": {"anyOf": [{"required": ["bill"]}, {"required": ["amount"]}]}}),
            when(("14", "33", "88"), {"not": {"anyOf": [{"required": ["quote"]},
                                                        {"required": ["other_unpaid_years"]}]}}),
        ],
        examples=[example])


def _payment_answer(example: dict[str, Any]) -> dict[str, Any]:
    codes = ("00", "12", "13", "14", "33", "88")
    return obj(_head(codes, {
        "ntpd": {**ref("Ntpd"), "description": "RC 00: the new payment's NTPD. RC 88, for the bank that paid "
                                               "the bill: the NTPD of that payment."},
        "validation_code": ref("ValidationCode"),
        "bill": ref("Bill"),
        "amount": {**ref("Amount"), "description": "RC 00: what the payment settled. RC 88: the bill's "
                                                   "principal, penalty 0, total 0 (nothing is due)."},
        "proof": ref("ProofDocument"),
        "signature": ref("Signature"),
        "kid": ref("Kid"),
        "receipt_url": string("Where the teller receipt (PDF) of this payment is.", format="uri-reference",
                              pattern=r"^/v1/payments/[0-9]{18}/receipt\.pdf$"),
    }), required=["response_code", "message"], description=(
        "A payment answer (PBB-P2 and BPHTB alike). RC 00: the payment is posted; the answer carries the NTPD, "
        "the validation code, the bill (status `paid`), the amounts settled, the signed proof with its "
        "signature and key id, and the receipt's URL. RC 13, 33 and 88 carry the bill; RC 88 also the amount "
        "(principal, nothing due) and, for the bank that paid it, the NTPD. A refused payment is still HTTP 200."),
        allOf=[
            when("00", {"required": ["business_date", "ntpd", "validation_code", "bill", "amount", "proof",
                                     "signature", "kid", "receipt_url"],
                        "properties": {"bill": {"properties": {"status": {"const": "paid"}}}}}),
            when(("12", "13", "14", "33", "88"),
                 {"not": {"anyOf": [{"required": [name]} for name in
                                    ("validation_code", "proof", "signature", "kid", "receipt_url")]}}),
            when(("12", "13", "14", "33"), {"not": {"required": ["amount"]}}),
            when("88", {"properties": {"amount": {"properties": {"total": {"const": 0}, "penalty": {"const": 0}}}}}),
        ],
        examples=[example])


PBB_INQUIRY_EXAMPLE = {
    "response_code": "00", "message": "approved", "business_date": "2026-11-23", "bill": PBB_BILL_EXAMPLE,
    "amount": {"principal": 150000, "penalty": 4500, "total": 154500, "months_late": 3},
    "other_unpaid_years": [2024], "quote": {"total": 154500, "expires_at": "2026-11-23T09:30:00+07:00"},
}
PBB_PAYMENT_EXAMPLE = {
    "response_code": "00", "message": "approved", "business_date": "2026-11-23", "ntpd": "261123100000001210",
    "validation_code": "7K2Q-9MZD-03XH-PA4T", "bill": {**PBB_BILL_EXAMPLE, "status": "paid"},
    "amount": {"principal": 150000, "penalty": 4500, "total": 154500}, "proof": PROOF_EXAMPLE,
    "signature": SIGNATURE_EXAMPLE, "kid": "2026-1", "receipt_url": "/v1/payments/261123100000001210/receipt.pdf",
}

SCHEMAS["PbbInquiryAnswer"] = _inquiry_answer("PBB-P2", "PbbBill", "PbbAmount", PBB_INQUIRY_EXAMPLE)
SCHEMAS["BphtbInquiryAnswer"] = _inquiry_answer("BPHTB", "BphtbBill", "Amount", {
    "response_code": "00", "message": "approved", "business_date": "2026-11-23", "bill": BPHTB_BILL_EXAMPLE,
    "amount": {"principal": 5000000, "penalty": 0, "total": 5000000}, "other_unpaid_years": [],
    "quote": {"total": 5000000, "expires_at": "2026-11-23T09:30:00+07:00"},
})
SCHEMAS["ArrearsAnswer"] = obj(_head(("00", "14"), {
    "nop": ref("Nop"),
    "bills": {"type": "array", "items": ref("ArrearsLine"),
              "description": "Bills of the current tax year and the five before it, newest first."},
    "total_due": money("Sum of the totals of the unpaid bills."),
}), required=["response_code", "message"], description=(
    "PBB-P2 arrears of one NOP: its bills of the current tax year and the five before it, newest first, with "
    "status and amount due today. Paid and cancelled years are listed with the bill's principal, penalty 0, "
    "total 0 and months_late 0; `total_due` sums the unpaid ones. Read-only: no quote. A NOP with no bill at "
    "all is RC 14."),
    allOf=[when("00", {"required": ["business_date", "nop", "bills", "total_due"]}),
           when("14", {"not": {"anyOf": [{"required": ["bills"]}, {"required": ["total_due"]}]}})],
    examples=[{"response_code": "00", "message": "approved", "business_date": "2026-11-23",
               "nop": "327501000100100010",
               "bills": [{"bill": PBB_BILL_EXAMPLE,
                          "amount": {"principal": 150000, "penalty": 4500, "total": 154500, "months_late": 3}}],
               "total_due": 154500}])
SCHEMAS["PaymentAnswer"] = _payment_answer(PBB_PAYMENT_EXAMPLE)
SCHEMAS["ReversalAnswer"] = obj(_head(("00", "12", "13", "14", "57"), {
    "ntpd": {**ref("Ntpd"), "description": "The payment named by the request."},
    "amount": money("The payment's total."),
    "already_reversed": {"type": "boolean",
                         "description": "RC 00: true when the payment had been reversed before (nothing done)."},
}), required=["response_code", "message"], description=(
    "A reversal answer: the same rules as an ISO 8583 0400, answered as business results. RC 00: reversed, or "
    "already reversed (`already_reversed`: true); 12: another bank's payment; 13: the amount differs from the "
    "payment; 14: no such NTPD; 57: the payment's business date is closed."),
    allOf=[when("00", {"required": ["business_date", "ntpd", "amount", "already_reversed"]}),
           when(("13", "57"), {"required": ["business_date", "ntpd", "amount"]})],
    examples=[{"response_code": "00", "message": "approved", "business_date": "2026-11-23",
               "ntpd": "261123100000001210", "amount": 154500, "already_reversed": False}])


# -- headers, parameters, responses ------------------------------------------------------------------------

HEADERS = {
    "X-Request-Id": {"description": "The caller's `X-Request-Id` (first 128 characters), or a new id. It appears "
                                    "in the gateway's logs.",
                     "required": True, "schema": string(minLength=1, maxLength=128)},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer of an earlier request with "
                                           "the same `Idempotency-Key` and the same body; absent otherwise.",
                            "schema": string(enum=["true"])},
    "Retry-After": {"description": "Seconds to wait before the next proof check from this address.",
                    "required": True, "schema": integer(minimum=1)},
    "Content-Disposition": {"description": "`inline; filename=\"NTPD.pdf\"`.", "schema": string()},
    "WWW-Authenticate": {"description": "`Bearer realm=\"gateway staff\"` where one is sent.", "schema": string()},
    "Set-Cookie": {"description": "`gw_session=…; HttpOnly; Max-Age=43200; Path=/; SameSite=Strict` (and "
                                  "`Secure` over TLS): the session, valid for 12 hours.",
                   "required": True, "schema": string()},
}


def header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


PARAMETERS = {
    "RequestId": {"name": "X-Request-Id", "in": "header", "required": False,
                  "description": "Your own id for this request, echoed in the answer and written to the logs.",
                  "schema": string(maxLength=128)},
    "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": True,
                       "description": "The request's key, 1–64 visible ASCII characters, unique per bank for at "
                                      "least 35 days. A repeat with the same key and body gets the first answer "
                                      "again (`Idempotent-Replayed: true`); the same key with another body is 422 "
                                      "(RC 94); while the first is still running, 409. Missing or malformed: 400 "
                                      "(RC 30).",
                       "schema": string(pattern="^[\\x21-\\x7e]{1,64}$", examples=["pay-20261123-000123"])},
    "Nop": {"name": "nop", "in": "path", "required": True,
            "description": "The NOP: 18 digits, plain or in display form (`32.75.010.001.001-0001.0`). Wrong "
                           "length or characters: 400 (RC 30); a NOP of another region: RC 14.",
            "schema": string(pattern="^[0-9. -]+$"), "examples": {"plain": {"value": "327501000100100010"},
                                                                 "display": {"value": "32.75.010.001.001-0001.0"}}},
    "TaxYear": {"name": "tax_year", "in": "path", "required": True, "description": "The tax year, 4 digits.",
                "schema": string(pattern="^[0-9]{4}$"), "example": "2026"},
    "RegistrationNumber": {"name": "registration_number", "in": "path", "required": True,
                           "description": "The SSPD registration number (14 digits, check digits verified: "
                                          "else 400, RC 30).", "schema": ref("RegistrationNumber")},
    "Ntpd": {"name": "ntpd", "in": "path", "required": True, "description": "The payment's NTPD.",
             "schema": ref("Ntpd")},
}


def problem(status: int, description: str, codes: tuple[str, ...] = (),
            headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """The problem-details response of ``status``; ``codes``: its `response_code` values (none: absent)."""
    constraint: dict[str, Any] = {"properties": {"status": {"const": status}}}
    if codes:
        constraint["required"] = ["response_code"]
        constraint["properties"]["response_code"] = {"enum": list(codes)}
    else:
        constraint["not"] = {"required": ["response_code"]}
    return {
        "description": description,
        "headers": {"X-Request-Id": header("X-Request-Id"), **(headers or {})},
        "content": {PROBLEM_JSON: {"schema": {"allOf": [ref("Problem"), constraint]}}},
    }


RESPONSES = {
    "BadRequest": problem(400, "Malformed JSON, a missing or malformed field (NOP, year, registration, amount, "
                               "channel, NTB…) or a missing `Idempotency-Key`: RC 30.", ("30",)),
    "Unauthorized": problem(401, "Missing or malformed `X-Bank-Code`, `X-Timestamp`, `X-Nonce` or `X-Signature`, "
                                 "unknown bank, stale timestamp, wrong signature, a replayed nonce, or a required "
                                 "TLS client certificate missing."),
    "Forbidden": problem(403, "Not allowed: a request from outside the bank's `allow` list, a tax not enabled "
                              "for the bank, or a disabled bank: RC 05.", ("05",)),
    "NotFound": problem(404, "No such payment, or another bank's: a bank never learns whether another bank's "
                             "NTPD exists."),
    "Conflict": problem(409, "The first request with this `Idempotency-Key` is still being processed: wait for "
                             "it, then repeat the request to get its answer."),
    "PayloadTooLarge": problem(413, "Body over 1 MiB."),
    "UnprocessableContent": problem(422, "`Idempotency-Key` reused with a different request: RC 94.", ("94",)),
    "TooManyRequests": problem(429, "Too many proof checks from this address (default 60 a minute).",
                               headers={"Retry-After": header("Retry-After")}),
    "InternalServerError": problem(500, "System malfunction: RC 96. For a payment, check its outcome before "
                                        "repeating it.", ("96",)),
    "ServiceUnavailable": problem(503, "RC 90: the business date is being closed, try again shortly. RC 91: the "
                                       "host is unavailable; the outcome of a payment may be unknown — reverse "
                                       "or repeat it (with the same `Idempotency-Key`).", ("90", "91")),
    "StaffBadRequest": problem(400, "Malformed JSON or a missing `username` / `password`; or signing out "
                                    "without a session."),
    "StaffUnauthorized": problem(401, "No staff credential (a bank's signature is none), an unknown or revoked "
                                      "bearer token, an unknown, expired or ended session, or a wrong username "
                                      "or password.", headers={"WWW-Authenticate": header("WWW-Authenticate")}),
    "StaffForbidden": {
        "description": "An unsafe request of a session without its `X-CSRF-Token`, or a role not allowed this "
                       "route: RC 05.",
        "headers": {"X-Request-Id": header("X-Request-Id")},
        "content": {PROBLEM_JSON: {"schema": {"allOf": [ref("Problem"), {
            "properties": {"status": {"const": 403}, "response_code": {"enum": ["05"]}}}]}}}},
}


def problems(*names: str) -> dict[str, Any]:
    status = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403", "NotFound": "404",
              "StaffBadRequest": "400", "StaffUnauthorized": "401", "StaffForbidden": "403",
              "Conflict": "409", "PayloadTooLarge": "413", "UnprocessableContent": "422",
              "TooManyRequests": "429", "InternalServerError": "500", "ServiceUnavailable": "503"}
    return {status[n]: {"$ref": f"#/components/responses/{n}"} for n in names}


def ok(schema: dict[str, Any], description: str, *, media: str = JSON,
       headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "headers": {"X-Request-Id": header("X-Request-Id"), **(headers or {})},
            "content": {media: {"schema": schema}}}


BANK_SECURITY = [{"BankCode": [], "Timestamp": [], "Nonce": [], "Signature": []}]
BANK_PROBLEMS = ("Unauthorized", "Forbidden", "InternalServerError", "ServiceUnavailable")
IDEMPOTENT_PROBLEMS = ("BadRequest", "Conflict", "PayloadTooLarge", "UnprocessableContent")


def bank_operation(operation_id: str, tag: str, summary: str, description: str, responses: dict[str, Any], *,
                   parameters: list[dict[str, Any]] | None = None, body: str | None = None,
                   idempotent: bool = False, bad_request: bool = True, not_found: bool = False) -> dict[str, Any]:
    names = list(BANK_PROBLEMS)
    if idempotent:
        names += IDEMPOTENT_PROBLEMS
    elif bad_request:
        names.append("BadRequest")
    if not_found:
        names.append("NotFound")
    out: dict[str, Any] = {
        "operationId": operation_id, "tags": [tag], "summary": summary, "description": description,
        "security": BANK_SECURITY,
        "parameters": [*(parameters or []), *([param("IdempotencyKey")] if idempotent else []), param("RequestId")],
    }
    if body:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    out["responses"] = {**responses, **dict(sorted(problems(*names).items()))}
    return out


def public_operation(operation_id: str, tag: str, summary: str, description: str, responses: dict[str, Any],
                     *, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"operationId": operation_id, "tags": [tag], "summary": summary, "description": description,
            "security": [], "parameters": [*(parameters or []), param("RequestId")], "responses": responses}


STAFF_SECURITY = [{"StaffBearer": []}, {"StaffSession": []}]
STAFF_PROBLEMS = ("StaffUnauthorized", "StaffForbidden", "InternalServerError", "ServiceUnavailable")


def staff_operation(operation_id: str, summary: str, description: str, responses: dict[str, Any], *,
                    csrf: bool = False, security: list | None = None,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
    parameters = [param("RequestId")]
    if csrf:
        parameters.insert(0, {"name": "X-CSRF-Token", "in": "header", "required": False,
                              "description": "The session's `csrf_token`: required with a session cookie "
                                             "(403 without it), not with a bearer token.",
                              "schema": string()})
    out: dict[str, Any] = {"operationId": operation_id, "tags": ["Staff"], "summary": summary,
                           "description": description,
                           "security": STAFF_SECURITY if security is None else security,
                           "parameters": parameters}
    if body:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    out["responses"] = dict(sorted(responses.items()))
    return out


def _with_date(operation: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
    operation["parameters"] = [{"name": "date", "in": "path", "required": True,
                                "description": "The business date, YYYY-MM-DD.", "schema": string(format="date")},
                               *extra, *operation["parameters"]]
    return operation


_SETTLEMENT_ROW = {"type": "object", "description": "The settlement report's columns as members (operations.md)."}
_SETTLEMENT = obj({
    "business_date": string(format="date"), "status": string(enum=["open", "closing", "closed"]),
    "closed_at": {"type": ["string", "null"], "format": "date-time"}, "closed_by": {"type": ["string", "null"]},
    "rows": {"type": "array", "items": _SETTLEMENT_ROW}, "total": _SETTLEMENT_ROW})
_RECON = obj({"summary": {"type": "object", "additionalProperties": {"type": "integer"}},
              "new_items": integer(), "rows": {"type": "array", "items": {"type": "object"}}})

SETTLEMENT_PATHS: dict[str, Any] = {
    "/v1/settlements/{date}": {"get": _with_date(staff_operation(
        "settlementStatus", "A business date's settlement",
        "Status (open, closing, closed), close time and operator, and the totals per bank and tax (running "
        "totals while the date is open). Roles: support, treasury, admin. Audited.",
        {"200": ok(_SETTLEMENT, "The settlement."), **problems("StaffBadRequest", *STAFF_PROBLEMS)}))},
    "/v1/settlements/{date}/close": {"post": _with_date(staff_operation(
        "settlementClose", "Close a business date",
        "The five steps of operations.md: refused before the date's cut-off (409); while closing, financial "
        "messages of the date get RC 90; an invariant mismatch aborts the close and leaves the date open (409); "
        "closing a closed date answers the frozen totals again. Roles: treasury, admin. Audited.",
        {"200": ok(_SETTLEMENT, "The closed date."),
         "409": ok(ref("Problem"), "Not closable now: before the cut-off, or an invariant mismatch.",
                   media="application/problem+json"),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}, csrf=True))},
    "/v1/settlements/{date}/reconciliations": {
        "post": _with_date(staff_operation(
            "reconciliationUpload", "Reconcile a bank's file",
            "Body: the bank's reconciliation CSV (text/csv, up to 64 MiB). Answers the summary per class and the "
            "report rows; anything but `matched` opens a reconciliation item (once: importing the same file "
            "again opens none). A malformed file → 400 naming line and column. Roles: treasury, admin. Audited.",
            {"200": ok(_RECON, "The reconciliation report."), **problems("StaffBadRequest", *STAFF_PROBLEMS)},
            csrf=True), {"name": "bank", "in": "query", "required": True, "description": "The bank's code.",
                         "schema": string()}),
        "get": _with_date(staff_operation(
            "reconciliationReports", "Reconciliation reports of a date",
            "The reports made for the date, oldest first. Roles: support, treasury, admin.",
            {"200": ok(obj({"reports": {"type": "array", "items": {"type": "object"}}}), "The reports."),
             **problems("StaffBadRequest", *STAFF_PROBLEMS)})),
    },
    "/v1/settlements/{date}/report.csv": {"get": _with_date(staff_operation(
        "settlementReportCsv", "Settlement report (CSV)", "The treasury statement as CSV (operations.md).",
        {"200": ok(string("CSV."), "The report.", media="text/csv"),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}))},
    "/v1/settlements/{date}/report.pdf": {"get": _with_date(staff_operation(
        "settlementReportPdf", "Settlement report (PDF)",
        "The treasury statement as PDF: a table per bank and tax with totals, close time, operator and a "
        "signature line.",
        {"200": ok(string("PDF."), "The report.", media="application/pdf"),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}))},
}


def _with_params(operation: dict[str, Any], *params: dict[str, Any]) -> dict[str, Any]:
    operation["parameters"] = [*params, *operation["parameters"]]
    return operation


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": string(**schema) if not schema.get("type") else schema}


_ID = {"name": "id", "in": "path", "required": True, "description": "The transaction's (payment's) id.",
       "schema": string(pattern="^[0-9]{1,18}$")}
_TRANSACTION = obj({
    "id": integer(), "tax": string(enum=["PBB", "BPHTB"]), "bill_id": string(), "tax_year": integer(),
    "bank": string(), "ntpd": string(), "rrn": {"type": ["string", "null"]}, "stan": {"type": ["string", "null"]},
    "status": string(enum=["paid", "reversed"]), "business_date": string(format="date"), "amount": integer(),
    "last_response_code": string(), "updated_at": string(format="date-time")})

SUPPORT_PATHS: dict[str, Any] = {
    "/v1/transactions": {"get": _with_params(staff_operation(
        "transactionSearch", "Search transactions",
        "Payments by NOP (any form), registration number, NTPD, RRN, STAN, bank, business date or last response "
        "code; newest first, at most 100 (`before=ID` pages on). Roles: support, treasury, admin. Audited.",
        {"200": ok(obj({"transactions": {"type": "array", "items": _TRANSACTION}}), "The transactions."),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}),
        _query("nop", "NOP, digits or display form."), _query("registration_number", "SSPD registration number."),
        _query("ntpd", "NTPD."), _query("rrn", "Retrieval reference number."), _query("stan", "STAN."),
        _query("bank", "Bank code."), _query("date", "Business date.", format="date"),
        _query("rc", "Last response code sent about the payment."), _query("before", "Page on: ids below this."))},
    "/v1/transactions/{id}": {"get": _with_params(staff_operation(
        "transactionStory", "The story of a transaction",
        "Every message in and out (masked), the quotes, the payment, its reversal, tombstones, reconciliation "
        "results and staff notes, in time order. Roles: support, treasury, admin. Audited.",
        {"200": ok({"type": "object"}, "The story."), **problems(*STAFF_PROBLEMS)}), _ID)},
    "/v1/transactions/{id}/notes": {"post": _with_params(staff_operation(
        "transactionNote", "Annotate a transaction",
        "Adds a staff note (append-only). Roles: support, treasury, admin. Audited.",
        {"201": ok(obj({"payment_id": integer(), "author": string(), "note": string()}), "The note."),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}, csrf=True,
        body=obj({"note": string(minLength=1, maxLength=2000)})), _ID)},
    "/v1/reconciliation-items": {"get": _with_params(staff_operation(
        "reconciliationItems", "Open reconciliation items",
        "The work queue: every open item (anything a reconciliation did not find `matched`), optionally of one "
        "business date. Roles: support, treasury, admin. Audited.",
        {"200": ok(obj({"items": {"type": "array", "items": {"type": "object"}}}), "The open items."),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}), _query("date", "Business date.", format="date"))},
    "/v1/reconciliation-items/{id}/resolve": {"post": _with_params(staff_operation(
        "reconciliationResolve", "Resolve a reconciliation item",
        "Resolved with a note — accepted, corrected (by a reversal made through the bank channel) or escalated; "
        "payments are never edited. A resolved item → 409. Roles: support, treasury, admin. Audited.",
        {"200": ok(obj({"id": integer(), "status": string(enum=["resolved"]),
                        "resolution": string(enum=["accepted", "corrected", "escalated"]),
                        "resolved_by": string()}), "Resolved."),
         "409": ok(ref("Problem"), "Already resolved.", media="application/problem+json"),
         **problems("StaffBadRequest", *STAFF_PROBLEMS)}, csrf=True,
        body=obj({"resolution": string(enum=["accepted", "corrected", "escalated"]), "note": string(minLength=1)})),
        {"name": "id", "in": "path", "required": True, "description": "The item's id.",
         "schema": string(pattern="^[0-9]{1,18}$")})},
}


REPLAYED = {"Idempotent-Replayed": header("Idempotent-Replayed")}

PATHS: dict[str, Any] = {
    "/v1/pbb/bills/{nop}/{tax_year}": {"get": bank_operation(
        "pbbInquiry", "PBB-P2", "PBB-P2 inquiry",
        "The bill of one NOP and tax year with the amount due today (principal + penalty for the months started "
        "since the due date) and a quote the bank may pay until it expires. `other_unpaid_years` lists the "
        "same years as ISO field 62 slot 15. RC 88 answers carry `bill` (status `paid`), `amount` with the "
        "principal, penalty 0, total 0, and, for the bank that paid it, `ntpd`. RC 33 (cancelled) carries the "
        "bill; RC 14 carries none. Answers RC 90 (HTTP 503) while the business date is being closed.",
        {"200": ok(ref("PbbInquiryAnswer"), "A business answer: RC 00, 14, 33 or 88.")},
        parameters=[param("Nop"), param("TaxYear")])},
    "/v1/pbb/bills/{nop}": {"get": bank_operation(
        "pbbArrears", "PBB-P2", "PBB-P2 arrears of a NOP",
        "Bills of the current tax year and the five before it for the NOP, newest first, with status and amount "
        "due today. Read-only: no quote is recorded. Paid and cancelled years are listed with the bill's "
        "principal, penalty 0, total 0 and months_late 0; `total_due` sums the unpaid ones. A NOP with no bill "
        "at all → RC 14.",
        {"200": ok(ref("ArrearsAnswer"), "A business answer: RC 00 or 14.")},
        parameters=[param("Nop")])},
    "/v1/pbb/payments": {"post": bank_operation(
        "pbbPayment", "PBB-P2", "Pay a PBB-P2 bill",
        "Posts one payment of one bill. `amount` must be exactly the total due now or the total of a live quote "
        "of this bank (RC 13 otherwise: no partial payment, no overpayment). A paid bill is RC 88, a cancelled "
        "one RC 33. On RC 00 the answer carries the NTPD, the validation code, the signed proof and the receipt "
        "URL. Exactly once per `Idempotency-Key`.",
        {"200": ok(ref("PaymentAnswer"), "A business answer: RC 00, 12, 13, 14, 33 or 88.",
                   headers=REPLAYED)},
        body="PbbPaymentRequest", idempotent=True)},
    "/v1/bphtb/bills/{registration_number}": {"get": bank_operation(
        "bphtbInquiry", "BPHTB", "BPHTB inquiry",
        "The BPHTB bill of one SSPD registration with the amount due and a quote. The optional query `nop` and "
        "`tax_year` cross-check the registration (mismatch → RC 14). A registration past its valid-until date "
        "(compared with the business date) or cancelled is RC 33.",
        {"200": ok(ref("BphtbInquiryAnswer"), "A business answer: RC 00, 14, 33 or 88.")},
        parameters=[param("RegistrationNumber"),
                    {"name": "nop", "in": "query", "required": False,
                     "description": "Cross-check: the NOP of the registration, 18 digits (plain or display form).",
                     "schema": string(pattern="^[0-9. -]+$")},
                    {"name": "tax_year", "in": "query", "required": False,
                     "description": "Cross-check: the tax year of the registration.",
                     "schema": string(pattern="^[0-9]{4}$")}])},
    "/v1/bphtb/payments": {"post": bank_operation(
        "bphtbPayment", "BPHTB", "Pay a BPHTB bill",
        "Posts one payment of one BPHTB registration; `nop` and `tax_year` are optional cross-checks (RC 14 on "
        "a mismatch). Answer as for PBB-P2. Exactly once per `Idempotency-Key`.",
        {"200": ok(ref("PaymentAnswer"), "A business answer: RC 00, 12, 13, 14, 33 or 88.",
                   headers=REPLAYED)},
        body="BphtbPaymentRequest", idempotent=True)},
    "/v1/reversals": {"post": bank_operation(
        "reversal", "Payments", "Reverse a payment",
        "The same rules as an ISO 8583 0400, answered as business results (HTTP 200): another bank's payment → "
        "RC 12, amount differs → RC 13, business date closed → RC 57, already reversed → RC 00 again "
        "(`already_reversed`: true). An NTPD that does not exist → RC 14. A payment made over ISO 8583 can be "
        "reversed here by its NTPD, and the other way round. Exactly once per `Idempotency-Key`.",
        {"200": ok(ref("ReversalAnswer"), "A business answer: RC 00, 12, 13, 14 or 57.", headers=REPLAYED)},
        body="ReversalRequest", idempotent=True)},
    "/v1/payments/{ntpd}": {"get": bank_operation(
        "paymentStatus", "Payments", "A payment of this bank",
        "Status (`paid` / `reversed`), amounts, proof, signature, business date and timestamps of one of the "
        "calling bank's payments. Another bank's NTPD, or a malformed one → 404.",
        {"200": ok(ref("PaymentStatus"), "The payment.")},
        parameters=[param("Ntpd")], bad_request=False, not_found=True)},
    "/v1/payments/{ntpd}/receipt.pdf": {"get": bank_operation(
        "paymentReceipt", "Payments", "Teller receipt (PDF)",
        "A one-page A6 PDF: region and Bapenda header, tax, bill, taxpayer, amounts, business date, bank, NTB, "
        "NTPD, validation code, and a QR code of the public verification URL "
        "(`/v1/proofs/{ntpd}?code=…`). A reversed payment's receipt says so. Another bank's NTPD, or a "
        "payment without a signed proof → 404.",
        {"200": ok({"type": "string", "contentMediaType": "application/pdf"}, "The receipt.",
                   media="application/pdf", headers={"Content-Disposition": header("Content-Disposition")})},
        parameters=[param("Ntpd")], bad_request=False, not_found=True)},
    "/v1/proofs/keys": {"get": public_operation(
        "proofKeys", "Public", "Proof-signing public keys",
        "The Ed25519 public keys that sign payment proofs, oldest first; old keys stay published after "
        "rotation. No authentication.",
        {"200": ok(ref("PublicKeys"), "The keys."), **problems("InternalServerError")})},
    "/v1/proofs/{ntpd}": {"get": public_operation(
        "proofCheck", "Public", "Check a receipt",
        "Anyone can check a receipt by its NTPD and validation code: `valid`, `reversed` or `unknown`, showing "
        "only masked personal data — the bill id keeps all but its last 6 characters, which become `*`; in the "
        "name every letter but the first of each word becomes `*`. With `unknown` only `status` and `ntpd`. A "
        "wrong code is `unknown` (it never reveals that the NTPD exists). No authentication; rate-limited per "
        "client address (default 60 a minute, then 429 with `Retry-After`).",
        {"200": ok(ref("ProofCheck"), "The check's result."),
         **problems("TooManyRequests", "InternalServerError", "ServiceUnavailable")},
        parameters=[{"name": "ntpd", "in": "path", "required": True, "description": "The NTPD on the receipt.",
                     "schema": string()},
                    {"name": "code", "in": "query", "required": False,
                     "description": "The validation code on the receipt, `XXXX-XXXX-XXXX-XXXX`; dashes, spaces "
                                    "and case do not matter, and O, I, L read as 0, 1, 1. Missing or wrong → "
                                    "`unknown`.",
                     "schema": string(maxLength=64), "example": "7K2Q-9MZD-03XH-PA4T"}])},
    "/healthz": {"get": public_operation(
        "healthz", "Operations", "Liveness", "The process is alive.",
        {"200": ok(ref("Health"), "Alive.")})},
    "/readyz": {"get": public_operation(
        "readyz", "Operations", "Readiness",
        "The database is reachable and its migrations are current. 503 (with the same body) otherwise: take "
        "the instance out of the load balancer.",
        {"200": ok(ref("Readiness"), "Ready."),
         "503": ok(ref("Readiness"), "Not ready: database unreachable or migrations not current.")})},
    "/metrics": {"get": public_operation(
        "metrics", "Operations", "Prometheus metrics",
        "Prometheus text exposition format: messages by MTI / processing code / RC / channel / bank, latency "
        "histograms, in-flight requests, connections, database pool.",
        {"200": ok(string("Prometheus text format."), "The metrics.", media="text/plain")})},
    "/v1/staff/session": {
        "post": staff_operation(
            "staffSignIn", "Staff sign-in",
            "Sign in with a password: sets the HttpOnly, SameSite=Strict session cookie `gw_session` (12 hours) "
            "and answers the session's CSRF token, which every unsafe request of the session sends as "
            "`X-CSRF-Token`. Wrong credentials → 401. Audited.",
            {"200": ok(obj({"csrf_token": string("Send as `X-CSRF-Token` on unsafe requests.", minLength=1)}),
                       "Signed in.", headers={"Set-Cookie": header("Set-Cookie")}),
             **problems("StaffBadRequest", "StaffUnauthorized", "PayloadTooLarge", "InternalServerError",
                        "ServiceUnavailable")},
            security=[], body=obj({"username": string(minLength=1), "password": string(minLength=1)})),
        "delete": staff_operation(
            "staffSignOut", "Staff sign-out",
            "End this session (needs its `X-CSRF-Token`). Audited.",
            {"204": {"description": "Signed out; the cookie is cleared.",
                     "headers": {"X-Request-Id": header("X-Request-Id")}},
             **problems("StaffBadRequest", *STAFF_PROBLEMS)}, csrf=True),
    },
    "/v1/staff/me": {"get": staff_operation(
        "staffMe", "The signed-in staff user", "Who the credential belongs to, and their role. Audited.",
        {"200": ok(obj({"username": string(minLength=1), "role": string(enum=["support", "treasury", "admin"])}),
                   "The staff user."),
         **problems(*STAFF_PROBLEMS)})},
    **SETTLEMENT_PATHS,
    **SUPPORT_PATHS,
    "/openapi.json": {"get": public_operation(
        "openapi", "Operations", "This document", "The OpenAPI 3.1 document of this API.",
        {"200": ok(ref("OpenApiDocument"), "This document.")})},
}

SECURITY_SCHEMES = {
    "BankCode": {"type": "apiKey", "in": "header", "name": "X-Bank-Code",
                 "description": "The bank code. An unknown bank → 401; a request from outside the bank's `allow` "
                                "list → 403 (RC 05)."},
    "Timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp",
                  "description": "Unix seconds (digits only); refused (401) when more than 300 s from the "
                                 "gateway's real clock."},
    "Nonce": {"type": "apiKey", "in": "header", "name": "X-Nonce",
              "description": "16–64 characters of `[A-Za-z0-9_-]`, new for every request; a nonce the bank "
                             "already used within the 300 s window is a replay → 401."},
    "Signature": {"type": "apiKey", "in": "header", "name": "X-Signature", "description": SIGNING},
    "StaffBearer": {"type": "http", "scheme": "bearer",
                    "description": "A staff bearer token from `gateway staff token USER`, valid until "
                                   "`gateway staff revoke USER`."},
    "StaffSession": {"type": "apiKey", "in": "cookie", "name": "gw_session",
                     "description": "The session cookie of `POST /v1/staff/session`; unsafe requests also send "
                                    "`X-CSRF-Token`."},
}

DOCUMENT: dict = {
    "openapi": "3.1.0",
    "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "info": {"title": "PBB-P2 / BPHTB payment gateway", "version": "1", "description": DESCRIPTION},
    "tags": [
        {"name": "PBB-P2", "description": "Land and building tax (Pajak Bumi dan Bangunan Perdesaan dan "
                                          "Perkotaan): inquiry, arrears, payment. Bank-authenticated."},
        {"name": "BPHTB", "description": "Land and building acquisition duty (Bea Perolehan Hak atas Tanah dan "
                                         "Bangunan): inquiry, payment. Bank-authenticated."},
        {"name": "Payments", "description": "Reversals, a bank's own payments and their receipts. "
                                            "Bank-authenticated."},
        {"name": "Public", "description": "The public proof check and its keys. No authentication."},
        {"name": "Staff", "description": "Staff sign-in and accounts: a bearer token or a session cookie. "
                                         "Every staff action is audited."},
        {"name": "Operations", "description": "Health, readiness, metrics and this document."},
    ],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": RESPONSES,
        "parameters": PARAMETERS,
        "headers": HEADERS,
        "securitySchemes": SECURITY_SCHEMES,
    },
}


def openapi_route() -> web.RouteDef:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(DOCUMENT)

    return web.get("/openapi.json", handler)
