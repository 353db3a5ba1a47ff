"""The text rules at the HTTP edge (gateway/http/edge.py): targets, JSON bodies, request ids."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.errors import FormatError
from gateway.http.edge import JSON_MAX_DEPTH, _nesting, parse_json, target_texts, usable_request_id
from gateway.http.problems import Problem


def test_targets_decode_strictly():
    assert target_texts("/v1/pbb/bills/327501000100100010/2026") == (
        ["", "v1", "pbb", "bills", "327501000100100010", "2026"], [])
    assert target_texts("/a/%C3%A9?x=1&y=a+b&z=%26&empty=&flag") == (
        ["", "a", "é"], [("x", "1"), ("y", "a b"), ("z", "&"), ("empty", ""), ("flag", "")])
    assert target_texts("/a?") == (["", "a"], [])
    # A "+" in a path is a plus, in a query a space.
    assert target_texts("/a+b?q=a+b") == (["", "a+b"], [("q", "a b")])


@pytest.mark.parametrize("target", [
    "/v1/payments/%00", "/v1/payments/%FF", "/v1/payments/%C3%28", "/v1/payments/%ED%A0%80", "/x/%0A",
    "/x/%7F", "/x/%C2%85", "/x/%", "/x/%Z0", "/x/%0", "/x?q=%00", "/x?q=%FF", "/x?q=%", "/x?%00=1",
    "/x?q=%1B[2J", "/x/\udcff", "/x?q=\udcc3", "/x/" + "a" * 256, "/x?q=" + "a" * 1025,
])
def test_unclean_targets_are_refused(target):
    with pytest.raises(FormatError):
        target_texts(target)


def test_request_ids():
    assert usable_request_id("abc-123_/:.") == "abc-123_/:."
    assert usable_request_id("r" * 128) == "r" * 128
    for unusable in (None, "", "r" * 129, "a b", "é", "a\x00", "a\udcff", "a\x7f", "a\t"):
        assert usable_request_id(unusable) is None


def test_json_bodies():
    assert parse_json(b'{"note": "line\\n\\tnext", "n": [1, {"k": "v"}]}', "30") == {
        "note": "line\n\tnext", "n": [1, {"k": "v"}]}
    for data in (b'{"a": "\\ud800"}', b'{"a": "\\u0000"}', b'{"a": ["\\u001b"]}', b'{"\\u0000": 1}',
                 b'{"a": "\\u0085"}', b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\xff"}', '{"a": 1}'.encode("utf-16"),
                 b"[" * 100_000, b"{" * 10, b'{"a": 1e99999999999}x'):
        with pytest.raises(Problem) as refused:
            parse_json(data, "30")
        assert (refused.value.status, refused.value.response_code) == (400, "30"), data[:30]
    nested = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert parse_json(nested.encode(), "30") is not None
    with pytest.raises(Problem):
        parse_json(("[" + nested + "]").encode(), "30")
    # Brackets inside strings are no nesting.
    assert parse_json(json.dumps({"a": "[" * 1000, "b": "\\\"{{{"}).encode(), "30")["a"] == "[" * 1000


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                    max_leaves=20))
def test_nesting_bound_is_never_below_the_real_depth(value):
    def depth(v) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    assert _nesting(json.dumps(value)) >= depth(value)
    assert _nesting(json.dumps(value, ensure_ascii=False)) >= depth(value)
