"""The text rules at the HTTP edge (spec/http-api.md "Staff routes", text rules; domain/text.py).

Every text that enters over HTTP passes here before any handler sees it: the request target (each path
segment and each query name and value, percent-decoded strictly as UTF-8), the header values the gateway
reads, and every string of a JSON body. A text that breaks the rules is refused with 400 (bank routes:
RC 30) and reaches neither a service nor PostgreSQL.

aiohttp decodes header values and the request target as UTF-8 with ``surrogateescape``: a byte that is
not UTF-8 arrives as a lone surrogate (U+DC80..U+DCFF), which the text rules refuse like any other lone
surrogate. Percent-escapes are decoded here, not by yarl: yarl leaves an undecodable ``%FF`` in a path as
is and turns it into U+FFFD in a query, and decodes ``%00`` to NUL.
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal, overload

from aiohttp import web

from gateway.domain.errors import FormatError
from gateway.domain.text import DEFAULT_MAX, check_text, is_clean
from gateway.http.problems import Problem

# Header values the gateway reads, and how long each may be. The signature headers keep their own, more
# precise checks (a malformed one is a 401); here they only have to be text at all.
READ_HEADERS: dict[str, int] = {
    "X-Bank-Code": 32, "X-Timestamp": 8192, "X-Nonce": 8192, "X-Signature": 8192,
    "Idempotency-Key": 8192, "Authorization": 1024, "Cookie": 4096, "X-CSRF-Token": 256,
}
REQUEST_ID_MAX = 128
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# A path segment or query value: generous, but bounded (the head is bounded anyway).
SEGMENT_MAX = 255
QUERY_VALUE_MAX = 1024
# JSON bodies: strings anywhere in them follow the multi-line rule (the fields' own, stricter rules are
# checked by the routes); nesting is bounded so that nothing recurses without limit.
JSON_MAX_DEPTH = 32
JSON_STRING_MAX = 65536


def usable_request_id(value: str | None) -> str | None:
    """The caller's X-Request-Id when it can be echoed and logged as it is: 1-128 visible ASCII."""
    return value if value and _REQUEST_ID.match(value) else None


def _unquote_strict(raw: str, name: str, *, plus_is_space: bool) -> str:
    """Percent-decode ``raw`` (as sent, surrogate-escaped) into text; FormatError for anything else."""
    try:
        data = raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise FormatError(name, "not valid UTF-8") from None
    if _PERCENT.search(data):
        raise FormatError(name, "malformed percent-encoding")
    if plus_is_space:
        data = data.replace(b"+", b" ")
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x25:  # '%': checked above to be followed by two hex digits
            out.append(int(data[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(byte)
            i += 1
    try:
        return bytes(out).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(name, "not valid UTF-8") from None


def target_texts(raw_target: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The decoded path segments and query pairs of a request target; FormatError if any is no text."""
    path, _, query = raw_target.partition("?")
    path = path.partition("#")[0]
    query = query.partition("#")[0]
    segments = [check_text(_unquote_strict(s, "path", plus_is_space=False), "path", SEGMENT_MAX, required=False)
                for s in path.split("/")]
    pairs = []
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        name = check_text(_unquote_strict(name, "query", plus_is_space=True), "query parameter name",
                          SEGMENT_MAX, required=False)
        value = check_text(_unquote_strict(value, name or "query", plus_is_space=True), name or "query",
                           QUERY_VALUE_MAX, required=False)
        pairs.append((name, value))
    return segments, pairs


def check_request(request: web.Request, rc: str | None) -> None:
    """Problem 400 unless the request target and every header value the gateway reads are clean text."""
    try:
        target_texts(request.raw_path)
        for name, max_len in READ_HEADERS.items():
            for value in request.headers.getall(name, ()):
                if not is_clean(value, max_len):
                    raise FormatError(name, f"must be text without control characters, at most {max_len}")
    except FormatError as exc:
        raise Problem(400, f"malformed request: {exc}", rc) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes, rc: str | None) -> Any:
    """A JSON body: strict UTF-8, no NaN/Infinity, nesting bounded, every string (keys included) free of
    NUL, lone surrogates and control characters other than TAB and line breaks. Problem 400 otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "body is not UTF-8", rc) from None
    if _nesting(text) > JSON_MAX_DEPTH:
        raise Problem(400, f"body is nested deeper than {JSON_MAX_DEPTH} levels", rc)
    try:
        body = json.loads(text or "null", parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Problem(400, "body is not valid JSON", rc) from None
    try:
        _check_strings(body)
    except FormatError as exc:
        raise Problem(400, str(exc), rc) from None
    return body


def _nesting(text: str) -> int:
    """An upper bound of the nesting depth of a JSON text, found without parsing it (brackets inside strings
    are skipped), so that a hostile body is refused before the parser recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > JSON_MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _check_strings(value: Any) -> None:
    stack = [("body", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            check_text(item, where, JSON_STRING_MAX, multiline=True, required=False)
        elif isinstance(item, dict):
            for key, member in item.items():
                check_text(key, "member name", SEGMENT_MAX, required=False)
                stack.append((key, member))
        elif isinstance(item, list):
            stack.extend((where, member) for member in item)


def json_object(request: web.Request, rc: str | None) -> dict[str, Any]:
    body = parse_json(request.get("body") or b"", rc)
    if not isinstance(body, dict):
        raise Problem(400, "body must be a JSON object", rc)
    return body


@overload
def text_field(body: dict[str, Any], name: str, max_len: int, rc: str | None, *, multiline: bool = False,
               required: Literal[True] = True) -> str: ...


@overload
def text_field(body: dict[str, Any], name: str, max_len: int, rc: str | None, *, multiline: bool = False,
               required: bool) -> str | None: ...


def text_field(body: dict[str, Any], name: str, max_len: int, rc: str | None, *, multiline: bool = False,
               required: bool = True) -> str | None:
    """A string member of a JSON body under the text rules: ``max_len`` characters, TAB and line breaks
    only when ``multiline``. Missing: Problem 400 when ``required``, else None."""
    value = body.get(name)
    if value is None:
        if required:
            raise Problem(400, f"{name}: missing", rc)
        return None
    if not isinstance(value, str):
        raise Problem(400, f"{name}: wrong type", rc)
    try:
        return check_text(value, name, max_len, multiline=multiline, required=required)
    except FormatError as exc:
        raise Problem(400, str(exc), rc) from None


__all__ = ["DEFAULT_MAX", "READ_HEADERS", "check_request", "json_object", "parse_json", "target_texts",
           "text_field", "usable_request_id"]
