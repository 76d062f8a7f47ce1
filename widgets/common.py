"""Pieces every view uses: work off the GUI thread, and a table model over a list of rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    QTimer,
    Signal,
)

from widgets.i18n import tr

Index = QModelIndex | QPersistentModelIndex


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """One piece of work (a database read or write) for a QThreadPool; its result or its one-line error
    arrives on `signals` in the GUI thread.

    A task keeps itself alive until its result has been delivered: if the caller dropped it while it
    ran (a newer preview replacing an older one), its signals object would die under the worker's emit.
    """

    _alive: set[Task] = set()

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.work = work
        self.signals = _Signals()
        Task._alive.add(self)
        self.signals.done.connect(self._release)
        self.signals.failed.connect(self._release)

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
