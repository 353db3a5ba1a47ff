"""The event-loop runner of long-lived work (the listeners, the bank simulator).

It lives outside ``gateway.cli`` so that ``gateway.banksim`` can use it without importing the command line,
which itself imports ``gateway.banksim`` for its arguments: the dependency stays one way (cli → banksim →
runtime).
"""
from __future__ import annotations

import asyncio
import gc
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


# The collector's thresholds once a server is up (CPython's defaults: 700, 10, 10): a young collection per
# 10,000 net allocations instead of 700, an older one per 20 of them.
HEAP_THRESHOLDS = (10_000, 20, 10)


def settle_heap() -> None:
    """Once a server is up: what it allocated to start is moved out of the collector's sight, and the
    young generation collected less often.

    A worker keeps tens of thousands of long-lived objects (modules, settings, metrics) and allocates a few
    hundred short-lived ones per request, most of them freed by reference counting. CPython's defaults
    (a collection per 700 net allocations, a full one scanning every long-lived object) then spend about 3 %
    of a worker's time in the collector, and every few seconds stop it for 30-50 ms with a full collection
    in the middle of requests (docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*HEAP_THRESHOLDS)
