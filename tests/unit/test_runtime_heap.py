"""settle_heap: what a started server allocated is frozen out of the collector, and young collections are rarer."""
from __future__ import annotations

import gc

import pytest

from gateway.runtime import HEAP_THRESHOLDS, settle_heap


@pytest.fixture
def collector():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_heap_freezes_what_exists_and_raises_the_young_threshold(collector):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    kept = [[i] for i in range(1000)]  # long-lived objects of a started server
    settle_heap()
    assert gc.get_threshold() == HEAP_THRESHOLDS == (10_000, 20, 10)
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_count()[0] < 100  # a collection ran first: nothing young is frozen by accident


def test_objects_made_after_settling_are_still_collected(collector):
    settle_heap()

    class Node:
        pass

    before = sum(1 for o in gc.get_objects() if type(o) is Node)
    for _ in range(100):  # reference cycles, which only the collector frees
        a, b = Node(), Node()
        a.other, b.other = b, a
    del a, b
    gc.collect()
    assert sum(1 for o in gc.get_objects() if type(o) is Node) == before == 0
