"""The OpenAPI document (gateway/http/openapi.yaml, as served by gateway/http/openapi.py): valid OpenAPI 3.1,
the code's own tables filled in, the same routes as the app, schemas that can fail, and every answer the HTTP
renderers (gateway/http/render.py) and problem details (gateway/http/problems.py) give valid against the
schema of the operation and status it is served with. No database, no network."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from importlib import resources
from types import SimpleNamespace

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from multidict import CIMultiDict
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from gateway.config import build_config
from gateway.domain.assessment import Amount
from gateway.domain.bills import Channel, Tax
from gateway.domain.codes import RC, message
from gateway.domain.ntpd import make_ntpd
from gateway.domain.proof import proof_document
from gateway.domain.sspd import make_registration
from gateway.http import bank_routes, openapi, render
from gateway.http.app import BANK_PREFIXES, HttpServices, build_app
from gateway.http.openapi import DOCUMENT, DocumentError
from gateway.http.problems import TITLES, Problem, problem_response
from gateway.proofs.signing import sign
from gateway.service.results import ArrearsLine, ArrearsResult, InquiryResult, PaymentResult, QuoteView, ReversalResult
from gateway.service.views import bill_view
from helpers.openapi_check import assert_conforms, find_path, schema_errors

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "X-Request-Id": "r1"}
PROBLEM_HEADERS = {"Content-Type": "application/problem+json", "X-Request-Id": "r1"}
INQUIRY = "/v1/pbb/bills/327501000100100010/2026"
# aiohttp's advice to type the keys of app and request storage; the routes use plain strings.
pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web")


def headers(base: dict[str, str], **extra: str) -> CIMultiDict:
    return CIMultiDict({**base, **{k.replace("_", "-"): v for k, v in extra.items()}})


def problem(status: int, rc: str | None = None) -> dict:
    body = {"type": f"https://gateway.bapenda/problems/{status}", "title": "t", "status": status, "detail": "d"}
    if rc is not None:
        body["response_code"] = rc
    return body


def schema(name: str) -> str:
    return f"#/components/schemas/{name}"


CONFIG = build_config({}, {})
PBB_INQUIRY_EXAMPLE = DOCUMENT["components"]["schemas"]["PbbInquiryAnswer"]["examples"][0]
PBB_PAYMENT_EXAMPLE = DOCUMENT["components"]["schemas"]["PaymentAnswer"]["examples"][0]


# -- the document ------------------------------------------------------------------------------------------

def test_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)


def test_document_is_plain_json():
    assert json.loads(json.dumps(DOCUMENT)) == DOCUMENT


def test_every_schema_example_matches_its_schema():
    checked = 0
    for name, definition in DOCUMENT["components"]["schemas"].items():
        for example in definition.get("examples", []):
            errors = schema_errors(schema(name), example)
            assert not errors, f"{name}: {[e.message for e in errors]}"
            checked += 1
    assert checked >= 15


def test_every_reference_resolves():
    text = json.dumps(DOCUMENT)
    for target in set(re.findall(r'"\$ref": "(#/[^"]+)"', text)):
        node = DOCUMENT
        for part in target[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert node is not None, target


def test_response_codes_are_the_rc_table():
    assert DOCUMENT["components"]["schemas"]["ResponseCode"]["enum"] == [rc.value for rc in RC]


def test_every_operation_documents_x_request_id_on_every_response():
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary") and operation.get("description"), (method, path)
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                assert "X-Request-Id" in response["headers"], (method, path, status)


def test_idempotent_posts_require_the_key_and_document_replays():
    for path in ("/v1/pbb/payments", "/v1/bphtb/payments", "/v1/reversals"):
        operation = DOCUMENT["paths"][path]["post"]
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in operation["parameters"]
        assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
        assert {"400", "409", "413", "422"} <= set(operation["responses"])


def test_bank_routes_need_the_signature_staff_routes_a_staff_credential_public_ones_nothing():
    bank_security = [{"BankCode": [], "Timestamp": [], "Nonce": [], "Signature": []}]
    staff_security = [{"StaffBearer": []}, {"StaffSession": []}]
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            bank = path.startswith(("/v1/pbb/", "/v1/bphtb/", "/v1/reversals", "/v1/payments"))
            staff_path = path.startswith(("/v1/staff/", "/v1/settlements/", "/v1/transactions",
                                          "/v1/reconciliation-items"))
            sign_in = path == "/v1/staff/session" and method == "post"
            expected = bank_security if bank else (staff_security if staff_path and not sign_in else [])
            assert operation["security"] == expected, path
            assert ("401" in operation["responses"]) == (bank or staff_path), path


def _responses(operation: dict) -> dict[str, dict]:
    """The operation's responses, each through its ``$ref``."""
    out = {}
    for status, response in operation["responses"].items():
        if "$ref" in response:
            response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        out[status] = response
    return out


def _operations():
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _problem_schema(response: dict) -> dict:
    return response["content"]["application/problem+json"]["schema"]


def test_every_operation_may_answer_431_and_400_with_rc_30():
    """The HTTP parser refuses a head over `max_head_bytes` (431) or with bad bytes (400) on any route, and
    every 400 of the gateway carries RC 30 (spec http-api.md, the status table)."""
    for method, path, operation in _operations():
        responses = _responses(operation)
        assert "431" in responses, (method, path)
        assert "400" in responses, (method, path)
        constraint = _problem_schema(responses["400"])["allOf"][1]
        assert constraint["required"] == ["response_code"], (method, path)
        assert constraint["properties"]["response_code"] == {"enum": ["30"]}, (method, path)


def test_bank_routes_document_503_with_rc_90_or_91_and_staff_routes_401():
    for method, path, operation in _operations():
        responses = _responses(operation)
        if path.startswith(("/v1/pbb/", "/v1/bphtb/", "/v1/reversals", "/v1/payments")):
            constraint = _problem_schema(responses["503"])["allOf"][1]
            assert constraint["properties"]["response_code"] == {"enum": ["90", "91"]}, (method, path)
        if operation["security"] == [{"StaffBearer": []}, {"StaffSession": []}]:
            assert "401" in responses, (method, path)


def test_rate_limited_routes_document_429_with_retry_after():
    for method, path in (("post", "/v1/staff/session"), ("get", "/v1/proofs/{ntpd}")):
        response = _responses(DOCUMENT["paths"][path][method])["429"]
        assert response["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}, path
    assert DOCUMENT["components"]["headers"]["Retry-After"]["required"] is True


def test_staff_routes_with_an_id_document_404():
    for method, path in (("get", "/v1/transactions/{id}"), ("post", "/v1/transactions/{id}/notes"),
                         ("post", "/v1/reconciliation-items/{id}/resolve")):
        assert DOCUMENT["paths"][path][method]["responses"]["404"] == {
            "$ref": "#/components/responses/StaffNotFound"}, path


def test_reconciliation_upload_takes_csv():
    body = DOCUMENT["paths"]["/v1/settlements/{date}/reconciliations"]["post"]["requestBody"]
    assert list(body["content"]) == ["text/csv"]


# -- the app's routes and the document's ---------------------------------------------------------------

def _services(engine=None) -> HttpServices:
    """HttpServices of stand-ins (None) but for the configuration (the built-in defaults) and ``engine``:
    build_app and the bank routes only keep the services for later requests."""
    required = {f.name: None for f in dataclasses.fields(HttpServices)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return HttpServices(**{**required, "config": CONFIG, "engine": engine})


def _app_routes() -> set[tuple[str, str]]:
    """The API's routes: everything the app serves but the console, whose HTML pages (a sub-application
    under /console/, spec/operations.md) are for people in a browser and no part of the API document."""
    app = build_app(_services())
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path == "/console" or path.startswith("/console/"):
            continue
        routes.add((route.method.lower(), path))
    return routes


@pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")
def test_every_app_route_is_documented_and_vice_versa():
    app_routes = _app_routes()
    documented = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item
                  if method in METHODS}
    # aiohttp adds HEAD to every GET (the document says so in its introduction).
    served = {(m, p) for m, p in app_routes if not (m == "head" and ("get", p) in app_routes)}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_literal_paths_win_over_templates():
    assert find_path("/v1/proofs/keys") == "/v1/proofs/keys"
    assert find_path("/v1/proofs/261123100000001210") == "/v1/proofs/{ntpd}"
    assert find_path("/v1/payments/261123100000001210/receipt.pdf") == "/v1/payments/{ntpd}/receipt.pdf"
    assert find_path("/v1/pbb/bills/327501000100100010") == "/v1/pbb/bills/{nop}"
    assert find_path("/v1/pbb/bills/32.75.010.001.001-0001.0/2026") == "/v1/pbb/bills/{nop}/{tax_year}"
    assert find_path("/v1/settlements/2026-11-23") == "/v1/settlements/{date}"
    assert find_path("/v1/transactions/1") == "/v1/transactions/{id}"
    assert find_path("/v1/console/") is None  # the console is HTML under /console/, not in the API


# -- the check passes good answers and fails wrong ones ------------------------------------------------

def test_the_spec_examples_conform():
    assert_conforms("GET", INQUIRY, 200, headers(JSON_HEADERS), PBB_INQUIRY_EXAMPLE)
    assert_conforms("POST", "/v1/pbb/payments", 200, headers(JSON_HEADERS, Idempotent_Replayed="true"),
                    PBB_PAYMENT_EXAMPLE)
    assert_conforms("GET", INQUIRY, 200, headers(JSON_HEADERS),
                    {"response_code": "14", "message": "bill not found", "business_date": "2026-11-23"})
    assert_conforms("GET", "/v1/proofs/261123100000001210?code=x", 200, headers(JSON_HEADERS),
                    {"status": "unknown", "ntpd": "261123100000001210"})
    assert_conforms("POST", "/v1/reversals", 422, headers(PROBLEM_HEADERS), problem(422, "94"))
    assert_conforms("GET", "/v1/proofs/x", 429, headers(PROBLEM_HEADERS, Retry_After="2"), problem(429))
    assert_conforms("POST", "/v1/staff/session", 429, headers(PROBLEM_HEADERS, Retry_After="900"), problem(429))
    assert_conforms("GET", "/metrics", 431, headers(PROBLEM_HEADERS), problem(431))
    assert_conforms("POST", "/v1/pbb/payments", 431, headers(PROBLEM_HEADERS), problem(431))
    assert_conforms("GET", "/healthz", 400, headers(PROBLEM_HEADERS), problem(400, "30"))
    assert_conforms("DELETE", "/v1/staff/session", 400, headers(PROBLEM_HEADERS), problem(400, "30"))
    assert_conforms("GET", "/v1/payments/261123100000001210", 400, headers(PROBLEM_HEADERS), problem(400, "30"))
    assert_conforms("POST", "/v1/reconciliation-items/7/resolve", 404, headers(PROBLEM_HEADERS), problem(404))
    assert_conforms("POST", "/v1/reconciliation-items/7/resolve", 409, headers(PROBLEM_HEADERS), problem(409))
    assert_conforms("GET", "/v1/payments/261123100000001210/receipt.pdf", 200,
                    headers({"Content-Type": "application/pdf", "X-Request-Id": "r"}), b"%PDF-1.4 ...")
    assert_conforms("GET", "/metrics", 200, headers({"Content-Type": "text/plain; version=1.0.0; charset=utf-8",
                                                     "X-Request-Id": "r"}), b"# HELP x\n")


def _with(body: dict, path: str, value) -> dict:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()

WRONG_INQUIRIES = {
    "amount as a string": ("amount.total", "154500", "$.amount.total"),
    "a float amount": ("amount.principal", 150000.5, "$.amount.principal"),
    "missing response_code": ("response_code", _DELETE, "$"),
    "unknown response_code": ("response_code", "99", "$.response_code"),
    "tax year as a string": ("bill.tax_year", "2026", "$.bill.tax_year"),
    "date not YYYY-MM-DD": ("bill.due_date", "31-08-2026", "$.bill.due_date"),
    "timestamp without offset": ("quote.expires_at", "2026-11-23T09:30:00", "$.quote.expires_at"),
    "undocumented member": ("surprise", 1, "$"),
    "RC 00 without a quote": ("quote", _DELETE, "$"),
    "bill of the wrong tax": ("bill.tax", "BPHTB", "$.bill.tax"),
}


@pytest.mark.parametrize("case", WRONG_INQUIRIES)
def test_wrong_inquiry_answers_fail(case):
    path, value, where = WRONG_INQUIRIES[case]
    with pytest.raises(AssertionError) as failure:
        assert_conforms("GET", INQUIRY, 200, headers(JSON_HEADERS), _with(PBB_INQUIRY_EXAMPLE, path, value))
    assert f"at {where}" in str(failure.value) and "/v1/pbb/bills/{nop}/{tax_year}" in str(failure.value)


WRONG_PAYMENTS = {
    "validation code with I": ("validation_code", "7K2Q-9MZD-03XH-PA4I", "$.validation_code"),
    "validation code without dashes": ("validation_code", "7K2Q9MZD03XHPA4T", "$.validation_code"),
    "float amount in the proof": ("proof.total", 154500.0, "$.proof.total"),
    "unknown channel in the proof": ("proof.channel", "branch", "$.proof.channel"),
    "PBB proof with a nop": ("proof.nop", "327501000100100010", "$.proof"),
    "RC 00 without the receipt": ("receipt_url", _DELETE, "$"),
    "bill still unpaid": ("bill.status", "unpaid", "$.bill.status"),
}


@pytest.mark.parametrize("case", WRONG_PAYMENTS)
def test_wrong_payment_answers_fail(case):
    path, value, where = WRONG_PAYMENTS[case]
    with pytest.raises(AssertionError) as failure:
        assert_conforms("POST", "/v1/pbb/payments", 200, headers(JSON_HEADERS),
                        _with(PBB_PAYMENT_EXAMPLE, path, value))
    assert f"at {where}" in str(failure.value)


def test_refused_payment_must_not_carry_a_proof():
    body = {"response_code": "13", "message": "invalid amount", "business_date": "2026-11-23",
            "proof": PBB_PAYMENT_EXAMPLE["proof"]}
    with pytest.raises(AssertionError):
        assert_conforms("POST", "/v1/pbb/payments", 200, headers(JSON_HEADERS), body)


@pytest.mark.parametrize(("method", "path", "status", "body", "message"), [
    ("GET", INQUIRY, 400, problem(400), "response_code"),  # 400 needs RC 30
    ("GET", INQUIRY, 401, problem(401, "05"), "$"),  # 401 has no response code
    ("GET", INQUIRY, 503, problem(503, "96"), "$.response_code"),
    ("GET", INQUIRY, 500, problem(503, "96"), "$.status"),
    ("GET", INQUIRY, 404, problem(404), "status 404 is not documented"),
    ("GET", "/v1/transactions/1", 400, problem(400), "response_code"),  # staff 400s carry RC 30 too
    ("GET", "/healthz", 400, problem(400, "96"), "$.response_code"),
    ("GET", "/v1/transactions/1", 404, problem(404, "30"), "$"),
    ("GET", "/healthz", 431, problem(431, "30"), "$"),
    ("GET", "/v1/staff/me", 404, problem(404), "status 404 is not documented"),
    ("GET", "/healthz", 401, problem(401), "status 401 is not documented"),
    ("POST", "/v1/pbb/bills/327501000100100010", 200, {}, "POST is not documented"),
    ("GET", "/v1/console/items", 200, {}, "matches no route"),
])
def test_wrong_problems_and_undocumented_answers_fail(method, path, status, body, message):
    with pytest.raises(AssertionError) as failure:
        assert_conforms(method, path, status, headers(PROBLEM_HEADERS), body)
    assert message in str(failure.value)


def test_wrong_content_type_or_missing_headers_fail():
    with pytest.raises(AssertionError, match="content type"):
        assert_conforms("GET", INQUIRY, 400, headers(JSON_HEADERS), problem(400, "30"))
    with pytest.raises(AssertionError, match="X-Request-Id"):
        assert_conforms("GET", INQUIRY, 200, headers({"Content-Type": "application/json"}), PBB_INQUIRY_EXAMPLE)
    with pytest.raises(AssertionError, match="Retry-After"):
        assert_conforms("GET", "/v1/proofs/x", 429, headers(PROBLEM_HEADERS), problem(429))
    with pytest.raises(AssertionError, match="Retry-After"):
        assert_conforms("POST", "/v1/staff/session", 429, headers(PROBLEM_HEADERS), problem(429))
    with pytest.raises(AssertionError, match="X-Request-Id"):
        assert_conforms("GET", "/healthz", 200, headers(JSON_HEADERS, X_Request_Id="has space"), {"status": "ok"})
    with pytest.raises(AssertionError, match="Idempotent-Replayed"):
        assert_conforms("POST", "/v1/reversals", 200, headers(JSON_HEADERS, Idempotent_Replayed="yes"),
                        {"response_code": "14", "message": "bill not found"})
    with pytest.raises(AssertionError, match="not a PDF"):
        assert_conforms("GET", "/v1/payments/261123100000001210/receipt.pdf", 200,
                        headers({"Content-Type": "application/pdf", "X-Request-Id": "r"}), b"<html>")


def test_request_schemas_reject_wrong_bodies():
    good = {"nop": "327501000100100010", "tax_year": 2026, "amount": 154500, "ntb": "ABC123", "channel": "atm"}
    assert schema_errors(schema("PbbPaymentRequest"), good) == []
    assert schema_errors(schema("PbbPaymentRequest"), {**good, "tax_year": "2026", "extra": True}) == []
    for wrong in ({**good, "amount": "154500"}, {**good, "amount": 1.5}, {**good, "channel": "branch"},
                  {k: v for k, v in good.items() if k != "ntb"}, {**good, "ntb": "x" * 33}):
        assert schema_errors(schema("PbbPaymentRequest"), wrong), wrong
    # Optional members: null counts as absent; their documented lengths hold.
    assert schema_errors(schema("PbbPaymentRequest"), {**good, "terminal_id": None}) == []
    assert schema_errors(schema("PbbPaymentRequest"), {**good, "terminal_id": "T" * 17})
    assert schema_errors(schema("ReversalRequest"), {"ntpd": "261123100000001210", "amount": 1}) == []
    assert schema_errors(schema("ReversalRequest"), {"ntpd": "261123100000001210", "amount": 1, "reason": None}) == []
    assert schema_errors(schema("ReversalRequest"), {"ntpd": "261123100000001210", "amount": 1, "reason": "r" * 256})
    assert schema_errors(schema("ReversalRequest"), {"ntpd": "261123100000001210"})


# -- the loader: the code's tables are filled in; a yaml that disagrees with the code does not load -----------

YAML_TEXT = resources.files("gateway.http").joinpath("openapi.yaml").read_text("utf-8")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
ROW = re.compile(r"^\| `([0-9]{2})` \| ([^|]+) \| (.+) \|$", re.MULTILINE)


async def _code_rc_statuses() -> dict[str, int]:
    """The HTTP status of each RC, as the bank routes' own code answers it, the same at every route."""
    statuses: dict[str, set[int]] = {}
    for operation_id, cases in CASES.items():
        for result in cases.values():
            statuses.setdefault(str(result.rc), set()).add((await _serve(operation_id, result)).status)
    assert all(len(found) == 1 for found in statuses.values()), statuses
    return {rc.value: statuses[rc.value].pop() for rc in RC}


async def test_the_response_code_table_is_the_codes():
    statuses = await _code_rc_statuses()
    when = yaml.load(YAML_TEXT, Loader=LOADER)["components"]["schemas"]["ResponseCode"]["x-when"]
    expected = [(rc.value, message(rc), when[rc.value] + (f" (HTTP {statuses[rc.value]})"
                                                          if statuses[rc.value] != 200 else "")) for rc in RC]
    assert ROW.findall(DOCUMENT["info"]["description"]) == expected
    response_code = DOCUMENT["components"]["schemas"]["ResponseCode"]
    assert response_code["enum"] == [rc.value for rc in RC]
    assert response_code["description"].endswith(":\n\n" + "".join(f"- `{c}` {m}: {w}\n" for c, m, w in expected))
    assert "x-when" not in response_code
    # The statuses the loader writes are the ones the code answers.
    assert openapi.HTTP_STATUS == {rc: status for rc, status in statuses.items() if status != 200}


def test_the_channel_enum_is_the_codes():
    assert DOCUMENT["components"]["schemas"]["Channel"]["enum"] == [c.value for c in Channel]


async def test_the_route_serves_the_document():
    response = await openapi.openapi_route().handler(make_mocked_request("GET", "/openapi.json"))
    assert response.content_type == "application/json"
    assert json.loads(response.body) == DOCUMENT
    assert openapi.load(YAML_TEXT) == DOCUMENT


def _yaml_with(change) -> str:
    document = yaml.load(YAML_TEXT, Loader=LOADER)
    change(document)
    return yaml.dump(document, Dumper=DUMPER, sort_keys=False, allow_unicode=True)


def _when(document: dict) -> dict:
    return document["components"]["schemas"]["ResponseCode"]["x-when"]


BROKEN_YAML = {
    "an RC missing": (lambda d: _when(d).pop("57"), r"missing \['57'\]"),
    "an RC the code does not have": (lambda d: _when(d).update({"99": "never"}), r"unknown \['99'\]"),
    "a response code enum": (lambda d: d["components"]["schemas"]["ResponseCode"].update(enum=["00"]), "enums"),
    "a channel enum": (lambda d: d["components"]["schemas"]["Channel"].update(enum=["teller"]), "enums"),
    "a status written by hand": (lambda d: _when(d).update({"05": "refused (HTTP 403)"}), "HTTP status"),
    "an empty when": (lambda d: _when(d).update({"12": ""}), "x-when 12"),
    "no place for the rows": (lambda d: d["info"].update(description="no table"), "response code rows"),
    "an unquoted date": (lambda d: d["components"]["schemas"]["BusinessDate"].update(examples=[date(2026, 11, 23)]),
                         "not plain JSON"),
}


@pytest.mark.parametrize("case", BROKEN_YAML)
def test_a_yaml_that_disagrees_with_the_code_does_not_load(case):
    change, error = BROKEN_YAML[case]
    with pytest.raises(DocumentError, match=error):
        openapi.load(_yaml_with(change))


# -- every answer of the renderers, through the bank routes, against its operation and status ---------------

TZ = CONFIG.region.tz
BUSINESS_DATE = date(2026, 11, 23)
REGION = "KOTA BEKASI"
BANK = "110"
NOP = "327501000100100010"
REGISTRATION = make_registration(2026, 11, 123)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PBB_ROW = {
    "tax": "PBB", "bill_key": NOP + "2026", "nop": NOP, "tax_year": 2026, "taxpayer_name": "SITI AMINAH",
    "object_address": "JL. MERDEKA NO. 1", "kelurahan": "MARGAHAYU", "kecamatan": "BEKASI TIMUR", "land_area": 120,
    "building_area": 90, "status": "unpaid", "principal": 150_000, "due_date": date(2026, 8, 31), "nik": None,
    "acquisition_type": None, "acquisition_value": None, "ppat_name": None, "valid_until": None,
}
BPHTB_ROW = {
    "tax": "BPHTB", "bill_key": REGISTRATION, "nop": "327501000100100020", "tax_year": 2026,
    "taxpayer_name": "BUDI SANTOSO", "object_address": "JL. AHMAD YANI 5", "kelurahan": "MARGAHAYU",
    "kecamatan": "BEKASI TIMUR", "land_area": 200, "building_area": 150, "status": "unpaid", "principal": 5_000_000,
    "due_date": None, "nik": "3275011203800004", "acquisition_type": 1, "acquisition_value": 180_000_000,
    "ppat_name": "NOTARIS RINA, S.H.", "valid_until": date(2026, 12, 31),
}
# A registration imported without the optional members (NIK, acquisition, PPAT).
BPHTB_BARE_ROW = {**BPHTB_ROW, "nik": None, "acquisition_type": None, "acquisition_value": None, "ppat_name": None}
PBB_DUE = Amount(150_000, 4_500, 154_500, 3)
BPHTB_DUE = Amount(5_000_000, 0, 5_000_000, 0)
PBB_NTPD = make_ntpd(BUSINESS_DATE, Tax.PBB, 121)
BPHTB_NTPD = make_ntpd(BUSINESS_DATE, Tax.BPHTB, 122)
QUOTE = QuoteView(154_500, datetime(2026, 11, 23, 2, 30, tzinfo=UTC))


def bill(row: dict, **changes):
    return bill_view({**row, **changes}, REGION)


def nothing_due(row: dict) -> Amount:
    return Amount(row["principal"], 0, 0, 0)


def approved(row: dict, amount: Amount, ntpd: str, channel: Channel = Channel.TELLER, **changes) -> PaymentResult:
    """An approved payment as the posting service returns it, its proof signed with a test key."""
    bphtb = row["tax"] == "BPHTB"
    paid_at = datetime(2026, 11, 23, 2, 15, 2, tzinfo=UTC)
    document = proof_document(
        ntpd=ntpd, tax=row["tax"], bill=row["bill_key"] if bphtb else row["nop"], tax_year=row["tax_year"],
        taxpayer=row["taxpayer_name"], principal=amount.principal, penalty=amount.penalty, total=amount.total,
        business_date=BUSINESS_DATE, paid_at=paid_at.astimezone(TZ), bank=BANK, channel=channel.value, ntb="ABC123",
        region="3275", kid="2026-1", nop=row["nop"] if bphtb else None)
    signed = sign(document, KEY, "2026-1")
    result = PaymentResult(rc=RC.APPROVED, business_date=BUSINESS_DATE, ntpd=ntpd, bill=bill(row, status="paid"),
                           amount=amount, paid_at=paid_at, bank=BANK, channel=channel.value, ntb="ABC123",
                           proof=signed.document, signature=signed.signature, kid=signed.kid,
                           validation_code=signed.validation_code)
    return replace(result, **changes)


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: str  # the BankRoutes method
    renderer: str  # the gateway/http/render.py function it answers with
    match_info: dict
    body: dict | None = None


OPERATIONS = {
    "pbbInquiry": Operation("GET", f"/v1/pbb/bills/{NOP}/2026", "pbb_inquiry", "inquiry_json",
                            {"nop": NOP, "tax_year": "2026"}),
    "pbbArrears": Operation("GET", f"/v1/pbb/bills/{NOP}", "pbb_arrears", "arrears_json", {"nop": NOP}),
    "bphtbInquiry": Operation("GET", f"/v1/bphtb/bills/{REGISTRATION}", "bphtb_inquiry", "inquiry_json",
                              {"registration_number": REGISTRATION}),
    "pbbPayment": Operation("POST", "/v1/pbb/payments", "pbb_payment", "payment_json", {},
                            {"nop": NOP, "tax_year": 2026, "amount": 154_500, "ntb": "ABC123", "channel": "teller"}),
    "bphtbPayment": Operation("POST", "/v1/bphtb/payments", "bphtb_payment", "payment_json", {},
                              {"registration_number": REGISTRATION, "amount": 5_000_000, "ntb": "ABC124",
                               "channel": "atm"}),
    "reversal": Operation("POST", "/v1/reversals", "reversal", "reversal_json", {},
                          {"ntpd": PBB_NTPD, "amount": 154_500, "reason": "customer cancelled at teller"}),
}


class _Engine:
    """Answers every service call with ``result``, as the real engine would have."""

    def __init__(self, result):
        self.result = result

    def __getattr__(self, name: str):
        async def call(request):
            return self.result

        return call


async def _serve(operation_id: str, result, rendered: list[str] | None = None):
    """The answer of the bank route of ``operation_id`` when its service returns ``result``: the route's own
    rendering, a Problem rendered as the middleware renders it, and the middleware's ``X-Request-Id``."""
    op = OPERATIONS[operation_id]
    request = make_mocked_request(op.method, op.path, headers={"Idempotency-Key": "pay-20261123-000123"},
                                  match_info=op.match_info)
    request["bank"] = SimpleNamespace(code=BANK)
    request["body"] = json.dumps(op.body).encode() if op.body is not None else b""
    routes = bank_routes.BankRoutes(_services(_Engine(result)))
    original = getattr(bank_routes, op.renderer)

    def spy(*args, **kwargs):
        if rendered is not None:
            rendered.append(op.renderer)
        return original(*args, **kwargs)

    try:
        setattr(bank_routes, op.renderer, spy)
        response = await getattr(routes, op.handler)(request)
    except Problem as p:
        response = problem_response(p.status, p.detail, p.response_code, p.headers)
    finally:
        setattr(bank_routes, op.renderer, original)
    response.headers["X-Request-Id"] = "teller-0001-20261123-000123"
    return response


# The answers each route's service can give (gateway/inquiry, gateway/payment, gateway/service/unit.py): every
# RC, with and without the optional parts. The non-200 ones are problem details (the RC table).
OUTCOMES = {
    RC.DO_NOT_HONOUR: "bank disabled or tax not enabled", RC.FORMAT_ERROR: "a field does not parse",
    RC.HOST_UNAVAILABLE: "database away", RC.SYSTEM_ERROR: "unexpected failure",
}
INQUIRY_CASES = {
    "00 with penalty, quote and other unpaid years": InquiryResult(
        RC.APPROVED, BUSINESS_DATE, bill(PBB_ROW), PBB_DUE, (2024, 2025), QUOTE),
    "00 on time": InquiryResult(RC.APPROVED, BUSINESS_DATE, bill(PBB_ROW), Amount(150_000, 0, 150_000, 0), (),
                                replace(QUOTE, total=150_000)),
    "14 no such bill": InquiryResult(RC.BILL_NOT_FOUND, BUSINESS_DATE),
    "14 a NOP of another region": InquiryResult(RC.BILL_NOT_FOUND),
    "33 cancelled": InquiryResult(RC.NOT_PAYABLE, BUSINESS_DATE, bill(PBB_ROW, status="cancelled")),
    "88 paid by this bank": InquiryResult(RC.ALREADY_PAID, BUSINESS_DATE, bill(PBB_ROW, status="paid"),
                                          nothing_due(PBB_ROW), ntpd=PBB_NTPD),
    "88 paid by another bank": InquiryResult(RC.ALREADY_PAID, BUSINESS_DATE, bill(PBB_ROW, status="paid"),
                                             nothing_due(PBB_ROW)),
    "90 date closing": InquiryResult(RC.CUTOFF_IN_PROGRESS, BUSINESS_DATE),
    **{f"{rc} {why}": InquiryResult(rc) for rc, why in OUTCOMES.items()},
}
BPHTB_INQUIRY_CASES = {
    "00": InquiryResult(RC.APPROVED, BUSINESS_DATE, bill(BPHTB_ROW), BPHTB_DUE, (), replace(QUOTE, total=5_000_000)),
    "00 without NIK, acquisition and PPAT": InquiryResult(
        RC.APPROVED, BUSINESS_DATE, bill(BPHTB_BARE_ROW), Amount(5_000_000, 250_000, 5_250_000, 0), (),
        replace(QUOTE, total=5_250_000)),
    "14 no such registration, or the NOP / year disagree": InquiryResult(RC.BILL_NOT_FOUND, BUSINESS_DATE),
    "33 past valid-until": InquiryResult(RC.NOT_PAYABLE, BUSINESS_DATE,
                                         bill(BPHTB_ROW, valid_until=date(2026, 11, 20))),
    "33 cancelled": InquiryResult(RC.NOT_PAYABLE, BUSINESS_DATE, bill(BPHTB_ROW, status="cancelled")),
    "88 paid by this bank": InquiryResult(RC.ALREADY_PAID, BUSINESS_DATE, bill(BPHTB_ROW, status="paid"),
                                          nothing_due(BPHTB_ROW), ntpd=BPHTB_NTPD),
    "88 paid by another bank": InquiryResult(RC.ALREADY_PAID, BUSINESS_DATE, bill(BPHTB_ROW, status="paid"),
                                             nothing_due(BPHTB_ROW)),
    "90 date closing": InquiryResult(RC.CUTOFF_IN_PROGRESS, BUSINESS_DATE),
    **{f"{rc} {why}": InquiryResult(rc) for rc, why in OUTCOMES.items()},
}
ARREARS_CASES = {
    "00 unpaid, paid and cancelled years": ArrearsResult(
        RC.APPROVED, BUSINESS_DATE, NOP,
        (ArrearsLine(bill(PBB_ROW), PBB_DUE),
         ArrearsLine(bill(PBB_ROW, tax_year=2025, bill_key=NOP + "2025", status="paid"), nothing_due(PBB_ROW)),
         ArrearsLine(bill(PBB_ROW, tax_year=2024, bill_key=NOP + "2024", status="cancelled"), nothing_due(PBB_ROW))),
        PBB_DUE.total),
    "00 nothing due": ArrearsResult(
        RC.APPROVED, BUSINESS_DATE, NOP, (ArrearsLine(bill(PBB_ROW, status="paid"), nothing_due(PBB_ROW)),), 0),
    "14 a NOP without bills": ArrearsResult(RC.BILL_NOT_FOUND, BUSINESS_DATE),
    "14 a NOP of another region": ArrearsResult(RC.BILL_NOT_FOUND),
    **{f"{rc} {why}": ArrearsResult(rc) for rc, why in OUTCOMES.items()},
}
# Payments are run under their Idempotency-Key: 94 is a key reused with another request.
PAYMENT_OUTCOMES = {**OUTCOMES, RC.DUPLICATE: "key reused with another request",
                    RC.CUTOFF_IN_PROGRESS: "date closing"}


def _payment_cases(row: dict, due: Amount, ntpd: str) -> dict[str, PaymentResult]:
    paid = bill(row, status="paid")
    return {
        "00": approved(row, due, ntpd),
        "00 a replay": approved(row, due, ntpd, repeated=True),
        "00 by mobile, with a quote": approved(row, due, ntpd, Channel.MOBILE, quote_used=True),
        "12 reversed before it arrived": PaymentResult(RC.INVALID_TRANSACTION, BUSINESS_DATE),
        "13 not the amount due": PaymentResult(RC.INVALID_AMOUNT, BUSINESS_DATE, bill=bill(row)),
        "13 a replay": PaymentResult(RC.INVALID_AMOUNT, BUSINESS_DATE, bill=bill(row), repeated=True),
        "14 no such bill": PaymentResult(RC.BILL_NOT_FOUND, BUSINESS_DATE),
        "14 outside the region": PaymentResult(RC.BILL_NOT_FOUND),
        "33 cancelled": PaymentResult(RC.NOT_PAYABLE, BUSINESS_DATE, bill=bill(row, status="cancelled")),
        "88 paid by this bank": PaymentResult(RC.ALREADY_PAID, BUSINESS_DATE, ntpd, paid, nothing_due(row)),
        "88 paid by another bank": PaymentResult(RC.ALREADY_PAID, BUSINESS_DATE, bill=paid, amount=nothing_due(row)),
        **{f"{rc} {why}": PaymentResult(rc, BUSINESS_DATE if rc == RC.CUTOFF_IN_PROGRESS else None)
           for rc, why in PAYMENT_OUTCOMES.items()},
    }


BPHTB_PAYMENT_CASES = {
    **_payment_cases(BPHTB_ROW, BPHTB_DUE, BPHTB_NTPD),
    "00 without NIK, acquisition and PPAT": approved(BPHTB_BARE_ROW, BPHTB_DUE, BPHTB_NTPD),
    "33 past valid-until": PaymentResult(RC.NOT_PAYABLE, BUSINESS_DATE,
                                         bill=bill(BPHTB_ROW, valid_until=date(2026, 11, 20))),
}
_REVERSED = {"business_date": BUSINESS_DATE, "ntpd": PBB_NTPD, "amount": 154_500,
             "payment_business_date": BUSINESS_DATE}
REVERSAL_CASES = {
    "00 reversed": ReversalResult(RC.APPROVED, **_REVERSED),
    "00 already reversed": ReversalResult(RC.APPROVED, already_reversed=True, **_REVERSED),
    "00 a replay": ReversalResult(RC.APPROVED, repeated=True, **_REVERSED),
    "12 another bank's payment": ReversalResult(RC.INVALID_TRANSACTION, BUSINESS_DATE),
    "13 not the payment's amount": ReversalResult(RC.INVALID_AMOUNT, **_REVERSED),
    "14 no such NTPD": ReversalResult(RC.BILL_NOT_FOUND, BUSINESS_DATE, PBB_NTPD),
    "57 the payment's date is closed": ReversalResult(
        RC.REVERSAL_NOT_PERMITTED, **{**_REVERSED, "payment_business_date": date(2026, 11, 20)}),
    "90 the payment's date is closing": ReversalResult(RC.CUTOFF_IN_PROGRESS, **_REVERSED),
    **{f"{rc} {why}": ReversalResult(rc) for rc, why in PAYMENT_OUTCOMES.items() if rc != RC.CUTOFF_IN_PROGRESS},
}

CASES = {
    "pbbInquiry": INQUIRY_CASES,
    "bphtbInquiry": BPHTB_INQUIRY_CASES,
    "pbbArrears": ARREARS_CASES,
    "pbbPayment": _payment_cases(PBB_ROW, PBB_DUE, PBB_NTPD),
    "bphtbPayment": BPHTB_PAYMENT_CASES,
    "reversal": REVERSAL_CASES,
}
# Every RC each route's service can answer (read from gateway/inquiry/service.py, gateway/payment/*.py and the
# unit of work): the cases above must cover them all.
SERVICE_RCS = {
    "pbbInquiry": "00 05 14 30 33 88 90 91 96", "bphtbInquiry": "00 05 14 30 33 88 90 91 96",
    "pbbArrears": "00 05 14 30 91 96",
    "pbbPayment": "00 05 12 13 14 30 33 88 90 91 94 96", "bphtbPayment": "00 05 12 13 14 30 33 88 90 91 94 96",
    "reversal": "00 05 12 13 14 30 57 90 91 94 96",
}


def test_the_cases_cover_every_rc_of_every_route_and_every_renderer():
    for operation_id, cases in CASES.items():
        assert {str(result.rc) for result in cases.values()} == set(SERVICE_RCS[operation_id].split()), operation_id
    renderers = {name for name, function in inspect.getmembers(render, inspect.isfunction)
                 if function.__module__ == render.__name__ and name.endswith("_json")}
    parts = {"bill_json", "amount_json"}  # pieces of the answers, validated inside them
    assert {op.renderer for op in OPERATIONS.values()} == renderers - parts


@pytest.mark.parametrize(("operation_id", "case"), [(op, case) for op, cases in CASES.items() for case in cases])
async def test_every_rendered_answer_matches_its_operation_and_status(operation_id, case):
    result = CASES[operation_id][case]
    op = OPERATIONS[operation_id]
    rendered: list[str] = []
    response = await _serve(operation_id, result, rendered)
    # The route rendered the answer with its renderer (94 is refused before any rendering).
    assert rendered == ([] if result.rc == RC.DUPLICATE else [op.renderer])
    assert (response.status == 200) == (result.rc not in openapi.HTTP_STATUS), response.status
    assert_conforms(op.method, op.path, response.status, response.headers, response.body, require_schema=True)
    if response.status == 200:
        assert json.loads(response.body)["response_code"] == result.rc
        assert ("Idempotent-Replayed" in response.headers) == getattr(result, "repeated", False)


# -- every problem kind of problems.py, at every route that answers it ----------------------------------------

STAFF_PREFIXES = ("/v1/staff/", "/v1/settlements/", "/v1/transactions", "/v1/reconciliation-items")
SIGN_IN = ("post", "/v1/staff/session")
IDEMPOTENT = {("post", "/v1/pbb/payments"), ("post", "/v1/bphtb/payments"), ("post", "/v1/reversals")}


def _bank(method: str, path: str) -> bool:
    return path.startswith(BANK_PREFIXES)


def _staff(method: str, path: str) -> bool:
    return path.startswith(STAFF_PREFIXES)


def _staff_unsafe(method: str, path: str) -> bool:
    return _staff(method, path) and method != "get" and (method, path) != SIGN_IN


def _any(method: str, path: str) -> bool:
    return True


def _one_of(*routes: tuple[str, str]):
    return lambda method, path: (method, path) in routes


# (status, response_code, headers, the routes that answer it), as the code raises them: the middleware
# (gateway/http/app.py), the parser's refusals (gateway/http/protocol.py), authentication (http/auth.py,
# http/staff_auth.py) and the routes.
PROBLEM_KINDS = {
    "400 text rules, malformed body or field": (400, "30", {}, _any),
    "401 bank signature": (401, None, {}, _bank),
    "401 staff credential": (401, None, {"WWW-Authenticate": 'Bearer realm="gateway staff"'}, _staff),
    "403 bank not allowed": (403, "05", {}, _bank),
    "403 staff role": (403, "05", {}, lambda m, p: _staff(m, p) and (m, p) != SIGN_IN),
    "403 session without its CSRF token": (403, None, {}, _staff_unsafe),
    "404 another bank's payment, no such id": (404, None, {}, _one_of(
        ("get", "/v1/payments/{ntpd}"), ("get", "/v1/payments/{ntpd}/receipt.pdf"), ("get", "/v1/transactions/{id}"),
        ("post", "/v1/transactions/{id}/notes"), ("post", "/v1/reconciliation-items/{id}/resolve"))),
    "409 key in flight, date not closable, item resolved": (409, None, {}, _one_of(
        *IDEMPOTENT, ("post", "/v1/settlements/{date}/close"), ("post", "/v1/reconciliation-items/{id}/resolve"))),
    "413 body too large": (413, None, {}, _one_of(
        *IDEMPOTENT, SIGN_IN, ("post", "/v1/transactions/{id}/notes"),
        ("post", "/v1/reconciliation-items/{id}/resolve"), ("post", "/v1/settlements/{date}/reconciliations"))),
    "422 key reused": (422, "94", {}, _one_of(*IDEMPOTENT)),
    "429 proof checks, sign-ins": (429, None, {"Retry-After": "17"}, _one_of(("get", "/v1/proofs/{ntpd}"), SIGN_IN)),
    "431 head too large": (431, None, {}, _any),
    "500 failure": (500, "96", {}, lambda m, p: _bank(m, p) or _staff(m, p) or p.startswith("/v1/proofs/")),
    "503 date closing": (503, "90", {}, _bank),
    "503 database away": (503, "91", {}, lambda m, p: _bank(m, p) or _staff(m, p) or p == "/v1/proofs/{ntpd}"),
}


def _example_path(template: str) -> str:
    values = {"nop": NOP, "tax_year": "2026", "registration_number": REGISTRATION, "ntpd": PBB_NTPD,
              "date": "2026-11-23", "id": "7"}
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], template)


def test_every_problem_status_has_a_case():
    # 405 answers a method a route does not have: no operation to document it (test below).
    assert {status for status, *_ in PROBLEM_KINDS.values()} | {405} == set(TITLES)


@pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")
@pytest.mark.parametrize("kind", PROBLEM_KINDS)
def test_every_problem_matches_its_operation_and_status(kind):
    status, rc, extra, answered_at = PROBLEM_KINDS[kind]
    response = problem_response(status, "what went wrong", rc, extra or None)
    response.headers["X-Request-Id"] = "teller-0001-20261123-000123"
    # The documented routes (that every API route is documented is the test above's to say).
    routes = sorted((m, p) for m, p in _app_routes() if m != "head" and p in DOCUMENT["paths"] and answered_at(m, p))
    assert routes, kind
    for method, template in routes:
        assert_conforms(method.upper(), _example_path(template), status, response.headers, response.body,
                        require_schema=True)


@pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")
def test_a_method_a_route_does_not_have_is_a_problem_no_operation_documents():
    served = _app_routes()
    for path, item in DOCUMENT["paths"].items():
        for method in ("get", "post", "delete"):
            if (method, path) not in served:
                assert method not in item, (method, path)
    response = problem_response(405, "Method Not Allowed", headers={"Allow": "GET,HEAD"})
    assert schema_errors(schema("Problem"), json.loads(response.body)) == []
