"""The event-loop runner of long-lived work (the listeners, the bank simulator).

It lives outside ``gateway.cli`` so that ``gateway.banksim`` can use it without importing the command line,
which itself imports ``gateway.banksim`` for its arguments: the dependency stays one way (cli → banksim →
runtime).
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_fast(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived server on uvloop where it is installed (it halves the event loop's cost)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
