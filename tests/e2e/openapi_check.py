"""Checks an HTTP answer against the gateway's OpenAPI document (to be completed)."""
from __future__ import annotations

from typing import Any


def assert_conforms(method: str, path_qs: str, status: int, headers: Any, body: Any) -> None:
    """Raise AssertionError when the answer does not match the OpenAPI document."""
    return None
