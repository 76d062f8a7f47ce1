"""Work handed to the thread pool is freed once its result is delivered, with everything its slots capture.

PySide6 (6.11) keeps a reference from a QThreadPool to every QRunnable wrapper started with autoDelete
off, for the pool's lifetime: each report preview kept its closed dialog and the figures of 10,240 cards
(1.2 MiB), each card detail its history. These tests fail on such a leak.
"""

from __future__ import annotations

import gc
import weakref

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QWidget

from console import reports
from tests.widgets.test_report import demo_db, wait_built  # noqa: F401 - the module's database fixture
from widgets.common import Task
from widgets.report import ReportDialog


class _Result:
    pass


class _Receiver:
    def __init__(self) -> None:
        self.got: list[object] = []

    def take(self, value: object) -> None:
        self.got.append(value)


def test_a_delivered_task_is_freed_with_its_result_and_its_slots(qtbot):
    pool = QThreadPool()
    receiver = _Receiver()
    refs = []
    for _ in range(20):
        task = Task(_Result)
        task.signals.done.connect(receiver.take)
        refs.append(weakref.ref(task))
        task.start(pool)
        del task
    qtbot.waitUntil(lambda: len(receiver.got) == 20, timeout=10_000)
    qtbot.wait(50)                       # the task releases itself after the delivery's other slots ran
    results = [weakref.ref(r) for r in receiver.got]
    receiver.got.clear()
    gc.collect()
    assert sum(r() is not None for r in refs) == 0
    assert sum(r() is not None for r in results) == 0
    pool.waitForDone()


def test_a_failed_task_is_freed_too(qtbot):
    pool = QThreadPool()
    errors: list[str] = []

    def boom() -> object:
        raise ValueError("no such table: samples")

    task = Task(boom)
    task.signals.failed.connect(errors.append)
    ref = weakref.ref(task)
    task.start(pool)
    del task
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    qtbot.wait(50)
    gc.collect()
    assert errors == ["no such table: samples"]
    assert ref() is None


def test_closed_report_dialogs_are_freed(qtbot, demo_db):  # noqa: F811
    path, _start, _end = demo_db
    parent = QWidget()
    qtbot.addWidget(parent)
    pool = QThreadPool()
    for _ in range(3):
        dialog = ReportDialog(path, "en", "tester", parent, pool)
        wait_built(qtbot, dialog)
        dialog.deleteLater()
        del dialog
        qtbot.wait(50)
    pool.waitForDone()
    qtbot.wait(50)
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, reports.Report)] == []
