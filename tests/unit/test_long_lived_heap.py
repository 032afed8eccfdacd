"""The cyclic collector's settings for a run: set around the dataflow, undone after it."""

from __future__ import annotations

import gc

from engine.flow.runner import COLLECTOR_THRESHOLDS, long_lived_heap


def test_the_collector_is_tuned_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    assert before != COLLECTOR_THRESHOLDS
    loaded = [[index] for index in range(1000)]  # alive before the block: frozen by it
    with long_lived_heap():
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert gc.get_freeze_count() >= len(loaded)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_failing_run_restores_the_collector_too() -> None:
    before = gc.get_threshold()
    try:
        with long_lived_heap():
            raise RuntimeError("the dataflow failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
