"""The OpenAPI document itself: valid OpenAPI 3.1, the same routes as the app, schemas that can fail."""
from __future__ import annotations

import copy
import json
import re

import pytest
from multidict import CIMultiDict
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from gateway.domain.codes import RC
from gateway.http.app import HttpServices, build_app
from gateway.http.openapi import DOCUMENT, PBB_INQUIRY_EXAMPLE, PBB_PAYMENT_EXAMPLE
from e2e.openapi_check import assert_conforms, find_path, schema_errors

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "X-Request-Id": "r1"}
PROBLEM_HEADERS = {"Content-Type": "application/problem+json", "X-Request-Id": "r1"}
INQUIRY = "/v1/pbb/bills/327501000100100010/2026"


def headers(base: dict[str, str], **extra: str) -> CIMultiDict:
    return CIMultiDict({**base, **{k.replace("_", "-"): v for k, v in extra.items()}})


def problem(status: int, rc: str | None = None) -> dict:
    body = {"type": f"https://gateway.bapenda/problems/{status}", "title": "t", "status": status, "detail": "d"}
    if rc is not None:
        body["response_code"] = rc
    return body


def schema(name: str) -> str:
    return f"#/components/schemas/{name}"


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


# -- the app's routes and the document's ---------------------------------------------------------------

def _app_routes() -> set[tuple[str, str]]:
    # build_app only keeps the services for later requests: stand-ins do, since none is made.
    app = build_app(HttpServices(engine=None, pool=None, config=None, keys=None))
    routes = set()
    for route in app.router.routes():
        routes.add((route.method.lower(), route.resource.canonical))
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
    assert find_path("/v1/console/") is None  # not served yet


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
    assert schema_errors(schema("ReversalRequest"), {"ntpd": "261123100000001210", "amount": 1}) == []
    assert schema_errors(schema("ReversalRequest"), {"ntpd": "261123100000001210"})
