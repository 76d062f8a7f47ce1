"""Python's cycle collector in the GUI runs from the event loop (widgets.common.GuiGarbageCollector): an
automatic collection inside an allocation PySide6 made under a Qt lock hung a process for good."""

from __future__ import annotations

import gc
import weakref

from widgets.common import GuiGarbageCollector


class _Node:
    def __init__(self) -> None:
        self.me = self                     # a cycle: only the cycle collector frees it


def test_cycles_are_freed_from_the_event_loop_not_at_allocation(qtbot) -> None:
    assert not gc.isenabled(), "the GUI tests run as the window does (tests/widgets/conftest.py)"
    first = _Node()
    ref = weakref.ref(first)
    del first
    for _ in range(gc.get_threshold()[0] * 3):
        _Node()                            # far past the threshold: nothing collects inside these allocations
    assert ref() is not None
    qtbot.waitUntil(lambda: ref() is None, timeout=5_000)      # the timer's collection freed it


def test_stop_gives_the_collector_back(qapp) -> None:
    enabled = gc.isenabled()
    gc.enable()
    try:
        collector = GuiGarbageCollector()
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        (gc.enable if enabled else gc.disable)()
