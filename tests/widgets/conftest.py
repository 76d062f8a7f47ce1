"""Fixtures of every GUI test."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def gui_garbage_collector(qapp) -> Iterator[None]:
    """As in the window (widgets.app.run_gui): Python's cycle collector runs from the event loop, not inside
    an allocation PySide6 makes under a Qt lock (an automatic collection there once hung CI for good: one
    thread waiting forever on a signal-slot mutex it held itself). What a test leaves is collected after it,
    from the test's own frame."""
    from widgets.common import GuiGarbageCollector

    collector = GuiGarbageCollector()
    try:
        yield
    finally:
        collector.stop()
        gc.collect()
