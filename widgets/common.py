"""Pieces every view uses: work off the GUI thread, and a table model over a list of rows."""

from __future__ import annotations

import csv
import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import QTableView

from console.fmt import duration
from widgets.i18n import tr

Index = QModelIndex | QPersistentModelIndex


def shown_duration(seconds: float | None) -> str:
    """console.fmt.duration with its unit in the UI's language (`12 min` → `12 分钟`); N/A as is."""
    text = duration(seconds)
    value, _, unit = text.rpartition(" ")
    return f"{value} {tr(unit)}" if value else text


class GuiGarbageCollector:
    """Python's cycle collector, run from the GUI thread's event loop instead of inside whatever allocation
    crosses its threshold.

    An automatic collection can start inside any allocation, and PySide6 allocates while Qt holds its own
    locks: QObject::disconnect holds the signal-slot mutexes while it asks the Python wrapper for a
    `disconnectNotify` override, that lookup allocates, the collection frees a dead widget, and the widget's
    ~QObject waits for a mutex of the same pool, held by this very thread: the process hangs for good (seen
    in CI: pyqtgraph's setParentItem → disconnect → gc → ~QAction, one thread on a futex). A collection
    from a timer runs with no Qt lock held, in the GUI thread, at the thresholds Python would have used.
    (The pattern of pyqtgraph's util.GarbageCollector, with a stop that gives the collector back.)"""

    FULL_EVERY_S = 60.0    # the oldest generation at most this often: Python's own rule (a full collection only
    #                        once the objects waiting for it reach a quarter of the long-lived ones) is not
    #                        visible from Python, and a full pass over a 10,240-card window's objects is a stall

    def __init__(self, interval_ms: int = 500) -> None:
        self.threshold = gc.get_threshold()
        self.full_at = time.monotonic()
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer()
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds, youngest first."""
        l0, l1, l2 = gc.get_count()
        if l0 > self.threshold[0]:
            gc.collect(0)
            if l1 > self.threshold[1]:
                gc.collect(1)
                if l2 > self.threshold[2] and time.monotonic() - self.full_at >= self.FULL_EVERY_S:
                    gc.collect(2)
                    self.full_at = time.monotonic()

    def stop(self) -> None:
        """Stop the timer and let Python collect by itself again (if it did before)."""
        self.timer.stop()
        if self.was_enabled:
            gc.enable()


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


class Task:
    """One piece of work (a database read or write) for a QThreadPool; its result or its one-line error
    arrives on `signals` in the GUI thread. Start it with `task.start(pool)`.

    A task keeps itself alive until its result has been delivered: if the caller dropped it while it
    ran (a newer preview replacing an older one), its signals object would die under the worker's emit.
    Then it is released. It is not a QRunnable on purpose: PySide6 (6.11) keeps a reference from the
    pool to every QRunnable wrapper started with autoDelete off, for the pool's lifetime, and with it
    the task's signals, their slots and everything those capture (a closed report dialog and its
    10,240-card figures, 1.2 MiB per preview; a card detail's history). The pool gets a callable instead,
    which PySide wraps in a runnable of its own and frees after it ran.
    """

    _alive: set[Task] = set()

    def __init__(self, work: Callable[[], object]) -> None:
        self.work = work
        self.signals = _Signals()
        Task._alive.add(self)
        self.signals.done.connect(self._release)
        self.signals.failed.connect(self._release)

    def start(self, pool: QThreadPool) -> None:
        """Run in one of the pool's threads."""
        pool.start(self.run)

    def _release(self, *_args: object) -> None:
        # after the other slots of this delivery have run (GUI thread)
        QTimer.singleShot(0, lambda: Task._alive.discard(self))

    def run(self) -> None:
        try:
            self.signals.done.emit(self.work())
        except Exception as exc:  # noqa: BLE001 - shown to the operator as one line
            self.signals.failed.emit(str(exc))


class RowModel(QAbstractTableModel):
    """A flat table of `rows` under translated `COLUMNS`; subclasses give `data`."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Any] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.COLUMNS):
            return tr(self.COLUMNS[section])
        return None

    def row_at(self, index: Index) -> Any | None:
        """The row under a valid index, else None."""
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        return self.rows[index.row()]


def write_csv(path: str | Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a CSV file atomically (a temporary file beside it, then renamed). UTF-8 with a BOM so
    spreadsheet programs read the Chinese; a cell a spreadsheet would run as a formula is quoted with '."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as f:
            out = csv.writer(f)
            out.writerow(header)
            for row in rows:
                out.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") and c != "-" else c for c in row])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def table_csv(view: QTableView) -> tuple[list[str], list[list[str]]]:
    """A table view's header and rows as shown (the model behind any proxy: filters and order kept)."""
    model = view.model()
    header = [str(model.headerData(c, Qt.Orientation.Horizontal) or "") for c in range(model.columnCount())]
    rows = [[str(model.data(model.index(r, c)) or "") for c in range(model.columnCount())]
            for r in range(model.rowCount())]
    return header, rows
