"""Checks an HTTP answer against the gateway's OpenAPI document (gateway/http/openapi.yaml, as served by
gateway/http/openapi.py).

``assert_conforms`` finds the operation by matching the request path against the document's path templates
(literal paths first, as OpenAPI requires), the response by status (else ``NXX``, else ``default``), checks
the content type, validates a JSON body against its schema with JSON Schema Draft 2020-12 (OpenAPI 3.1's
dialect; ``#/components/...`` references resolve against the whole document) and checks the documented
response headers. An undocumented route, method or status fails; with ``require_schema`` a JSON body whose
response documents no schema fails too.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import extend
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from gateway.http.openapi import DOCUMENT

DOCUMENT_URI = "urn:gateway:openapi"
_JSON_TYPE = re.compile(r"^application/(.+\+)?json$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

FORMATS = FormatChecker()

# Money and years are JSON integers, never floats: `154500.0` (a float once parsed) is refused by the gateway,
# although JSON Schema counts a number with a zero fraction as an integer.
StrictValidator = extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)))


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"{value!r} is not YYYY-MM-DD")
    date.fromisoformat(value)
    return True


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp with offset")
    datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    return True


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _get(document: dict, pointer: str) -> Any:
    assert pointer.startswith("#/"), f"only local references are supported, got {pointer}"
    node: Any = document
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def follow(pointer: str, document: dict = DOCUMENT) -> tuple[str, Any]:
    """The OpenAPI object at ``pointer`` (responses, headers…), through its ``$ref``s: (its pointer, it)."""
    node = _get(document, pointer)
    for _ in range(32):
        if not (isinstance(node, dict) and "$ref" in node):
            return pointer, node
        pointer = node["$ref"]
        node = _get(document, pointer)
    raise AssertionError(f"reference loop at {pointer}")


_REGISTRIES: dict[int, tuple[dict, Registry]] = {}


def validator_for(pointer: str, document: dict = DOCUMENT) -> Draft202012Validator:
    """A Draft 2020-12 validator of the schema at ``pointer`` (a ``#/...`` JSON pointer into ``document``);
    the schema's ``#/components/...`` references resolve against the whole document."""
    kept = _REGISTRIES.get(id(document))
    if kept is None or kept[0] is not document:
        kept = (document, Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document)))
        _REGISTRIES[id(document)] = kept
    return StrictValidator({"$ref": DOCUMENT_URI + pointer}, registry=kept[1], format_checker=FORMATS)


def schema_errors(pointer: str, instance: Any, document: dict = DOCUMENT) -> list[ValidationError]:
    return list(validator_for(pointer, document).iter_errors(instance))


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors that explain ``error``: for a failed oneOf / anyOf, those of the alternative its
    discriminator names, else of the one that came closest (fewest errors)."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    closest = min(branches.values(), key=len)
    discriminator = error.schema.get("discriminator") if isinstance(error.schema, dict) else None
    if discriminator and isinstance(error.instance, dict):
        target = discriminator.get("mapping", {}).get(error.instance.get(discriminator["propertyName"]))
        refs = [branch.get("$ref") for branch in error.schema.get(error.validator, [])]
        if target in refs and refs.index(target) in branches:
            closest = branches[refs.index(target)]
    return [leaf for sub in closest for leaf in _leaves(sub)]


def describe(errors: list[ValidationError]) -> str:
    """Where the body fails, the most relevant failure first, each with its path inside the body."""
    leaves = [leaf for error in errors for leaf in _leaves(error)]
    best = best_match(leaves)
    ordered = [best] + sorted((e for e in leaves if e is not best), key=lambda e: e.json_path)
    return "\n".join(f"  at {e.json_path}: {_short(e.message)} (schema …/{'/'.join(map(str, e.schema_path))})"
                     for e in ordered[:8])


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p) + "$")


def find_path(path: str, document: dict = DOCUMENT) -> str | None:
    """The document's path template for a request path; literal templates win over templated ones."""
    candidates = sorted(document["paths"], key=lambda t: (t.count("{"), -len(t)))
    for template in candidates:
        if _template_regex(template).match(path):
            return template
    return None


def find_response(template: str, method: str, status: int, document: dict = DOCUMENT) -> tuple[str, dict] | None:
    """(pointer, response object) of ``status`` (else ``NXX``, else ``default``) for the operation."""
    responses = document["paths"][template][method].get("responses", {})
    for key in (str(status), f"{status // 100}XX", "default"):
        if key in responses:
            return follow(_pointer("paths", template, method, "responses", key), document)
    return None


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    if hasattr(headers, "getone"):  # a CIMultiDict (aiohttp): case-insensitive already
        return headers.get(name)
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return value
    return None


def _check_header(where: str, name: str, spec: dict, value: str | None, document: dict,
                  pointer: str) -> None:
    if value is None:
        assert not spec.get("required"), f"{where}: required header {name} is missing"
        return
    kind = spec.get("schema", {}).get("type")
    instance: Any = value
    if kind == "integer":
        assert re.fullmatch(r"-?[0-9]+", value.strip()), f"{where}: header {name}: {value!r} is not an integer"
        instance = int(value)
    errors = schema_errors(pointer + "/schema", instance, document)
    assert not errors, f"{where}: header {name}: {value!r}:\n{describe(errors)}"


def assert_conforms(method: str, path_qs: str, status: int, headers: Any, body: Any,
                    document: dict = DOCUMENT, *, require_schema: bool = False) -> None:
    """Raise AssertionError when the answer does not match the OpenAPI document (``require_schema``: nor
    when its JSON body has no schema to match)."""
    raw_path = urlsplit(path_qs).path
    # A path parameter may hold an encoded "/" (%2F): match the segments as sent, then as decoded.
    template = find_path(raw_path, document) or find_path(unquote(raw_path), document)
    where = f"{method.upper()} {path_qs} → {status}"
    assert template is not None, f"{where}: the path matches no route of the OpenAPI document"
    operation = document["paths"][template].get(method.lower())
    assert operation is not None, f"{where}: {method.upper()} is not documented for {template}"
    where = f"{method.upper()} {template} ({path_qs}) → {status}"
    found = find_response(template, method.lower(), status, document)
    assert found is not None, (f"{where}: status {status} is not documented "
                               f"(documented: {', '.join(operation.get('responses', {}))})")
    response_pointer, response = found

    for name in response.get("headers", {}):
        header_pointer, spec = follow(f"{response_pointer}/headers/{name}", document)
        _check_header(where, name, spec, _header(headers, name), document, header_pointer)

    content = response.get("content")
    raw_type = _header(headers, "Content-Type") or ""
    media_type = raw_type.split(";")[0].strip().lower()
    if not content:
        assert body in (None, b"", ""), f"{where}: no body is documented, got {media_type or 'a body'}"
        return
    assert media_type in content, (f"{where}: content type {raw_type!r} is not documented "
                                   f"(documented: {', '.join(content)})")
    schema_pointer = f"{response_pointer}/content/{media_type.replace('~', '~0').replace('/', '~1')}/schema"
    if _JSON_TYPE.match(media_type):
        if isinstance(body, (bytes, bytearray, str)):
            try:
                body = json.loads(body)
            except ValueError as exc:
                raise AssertionError(f"{where}: {media_type} body is not JSON: {exc}") from None
        if "schema" not in content[media_type]:
            assert not require_schema, f"{where}: no {media_type} schema is documented"
            return
        errors = schema_errors(schema_pointer, body, document)
        assert not errors, f"{where}: the body does not match {media_type} schema:\n{describe(errors)}"
        return
    assert isinstance(body, (bytes, bytearray, str)), f"{where}: a {media_type} body must be bytes or text"
    if media_type == "application/pdf":
        data = body if isinstance(body, (bytes, bytearray)) else body.encode()
        assert data.startswith(b"%PDF-"), f"{where}: the body is not a PDF"
    elif media_type.startswith("text/"):
        try:
            text = body.decode() if isinstance(body, (bytes, bytearray)) else body
        except UnicodeDecodeError:
            raise AssertionError(f"{where}: the {media_type} body is not UTF-8") from None
        errors = schema_errors(schema_pointer, text, document) if "schema" in content[media_type] else []
        assert not errors, f"{where}: the body does not match {media_type} schema:\n{describe(errors)}"
