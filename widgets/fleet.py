"""The fleet table: every node with status, vendor, place, cards, last seen, last error, duration."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from console.live import NodeRow

_Index = QModelIndex | QPersistentModelIndex
STATUS_COLOURS = {"ok": QColor(26, 152, 80), "failed": QColor(215, 48, 39), "stale": QColor(120, 120, 120),
                  "unknown": QColor(120, 120, 120)}


def tr(text: str) -> str:
    """Translate a UI string (context 'mixops')."""
    return QCoreApplication.translate("mixops", text)


_STATUS_RANK = {"failed": 0, "stale": 1, "unknown": 2, "ok": 3}
COLUMNS = ("Node", "Status", "Vendor", "Rack", "Slot", "Cards", "Last seen", "Last error", "Duration (s)")


class FleetModel(QAbstractTableModel):
    """Nodes as rows; sort keys are the raw values (Qt.UserRole), display is formatted."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[NodeRow] = []
        self._now = time.time()

    def set_rows(self, rows: list[NodeRow], now: float | None = None) -> None:
        """Replace the rows (one model reset per snapshot; the proxy keeps sort and filter)."""
        self.beginResetModel()
        self._rows = list(rows)
        self._now = time.time() if now is None else now
        self.endResetModel()

    def row_name(self, row: int) -> str:
        """The node name of a source row."""
        return self._rows[row].name

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return tr(COLUMNS[section]) if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        col = index.column()
        raw: tuple[Any, ...] = (r.name, r.status, r.vendor, r.rack, r.slot, r.cards, r.last_seen, r.last_error,
                                r.duration_s)
        if not 0 <= col < len(raw):
            return None
        value = raw[col]
        if role == Qt.ItemDataRole.UserRole:
            if col == 1:
                return _STATUS_RANK.get(r.status, 2)
            return "" if value is None and col in (0, 1, 2, 3, 7) else (-1 if value is None else value)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 1:
                return tr(r.status)
            if col == 6:
                return "N/A" if value is None else _ago(self._now - float(value))
            if col == 8:
                return "N/A" if value is None else f"{float(value):.2f}"
            return "N/A" if value is None and col != 7 else ("" if value is None else str(value))
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return STATUS_COLOURS.get(r.status)
        if role == Qt.ItemDataRole.ToolTipRole and col == 7 and value:
            return str(value)
        return None


def _ago(seconds: float) -> str:
    if seconds < 90:
        return tr("%1 s ago").replace("%1", f"{max(0.0, seconds):.0f}")
    if seconds < 5400:
        return tr("%1 min ago").replace("%1", f"{seconds / 60:.0f}")
    return tr("%1 h ago").replace("%1", f"{seconds / 3600:.1f}")


class FleetView(QWidget):
    """Filter box plus the sortable table; double-click asks to show the node in the room."""

    node_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = FleetModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText(tr("Filter nodes (name, status, vendor, rack, error)…"))
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)   # failed first
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(self._activated)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)

    def set_rows(self, rows: list[NodeRow], now: float | None = None) -> None:
        """Show a new set of nodes."""
        self.model.set_rows(rows, now)
        if self.table.columnWidth(0) < 60:
            self.table.resizeColumnsToContents()

    def _activated(self, index: QModelIndex) -> None:
        source = self.proxy.mapToSource(index)
        if source.isValid():
            self.node_activated.emit(self.model.row_name(source.row()))
