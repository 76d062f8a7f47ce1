"""Checkpoint & resume panel: one row per training job, against the field's goals."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from console.continuity import GOAL_ETTR, GOAL_TTR_S
from console.fmt import duration
from console.jobview import JobRow
from widgets.common import Index, RowModel
from widgets.i18n import tr

COLUMNS = ("Job", "Cards", "State", "Last step", "Step age", "Checkpoint", "Checkpoint age", "Last resume",
           "ETTR", "GPU-hours at risk")
STATE_COLOURS = {"running": QColor(26, 152, 80), "stalled": QColor(244, 109, 67), "down": QColor(215, 48, 39),
                 "cannot read": QColor(215, 48, 39), "no data": QColor(120, 120, 120)}


class JobModel(RowModel):
    """Jobs as rows; N/A where the database has no value."""

    COLUMNS = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[JobRow] = []
        self.now = time.time()

    def set_rows(self, rows: list[JobRow], now: float) -> None:
        """Replace the rows."""
        self.beginResetModel()
        self.rows, self.now = list(rows), now
        self.endResetModel()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.row_at(index)
        if r is None:
            return None
        col = index.column()
        ckpt_age = None if r.checkpoint_at is None else self.now - r.checkpoint_at
        if role == Qt.ItemDataRole.DisplayRole:
            values = (r.name, f"{r.cards} ({r.vendors})" if r.vendors else str(r.cards), tr(r.state),
                      "N/A" if r.last_step is None else str(r.last_step),
                      duration(None if r.last_progress_at is None else self.now - r.last_progress_at),
                      "N/A" if r.checkpoint_step is None else str(r.checkpoint_step), duration(ckpt_age),
                      duration(r.last_ttr_s), "N/A" if r.ettr is None else f"{100 * r.ettr:.1f} %",
                      "N/A" if r.gpu_hours_at_risk is None else f"{r.gpu_hours_at_risk:,.0f}")
            return values[col] if 0 <= col < len(values) else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 2:
                return STATE_COLOURS.get(r.state)
            if col == 6 and ckpt_age is not None and r.checkpoint_interval_s:
                return QColor(215, 48, 39) if ckpt_age > 2 * r.checkpoint_interval_s else None
            if col == 7 and r.last_ttr_s is not None:
                return QColor(26, 152, 80) if r.last_ttr_s <= GOAL_TTR_S else QColor(215, 48, 39)
            if col == 8 and r.ettr is not None:
                return QColor(26, 152, 80) if r.ettr >= GOAL_ETTR else QColor(215, 48, 39)
        if role == Qt.ItemDataRole.ToolTipRole and col == 2 and r.problem:
            return r.problem
        return None


class JobsView(QWidget):
    """The panel, with the goals spelled out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = JobModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.empty = QLabel(tr("No training jobs with a log or checkpoint directory in the site file."))
        goals = QLabel(tr("Goals: resume ≤ 10 min · 15 days without interruption · ETTR ≥ 90 %"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(goals)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)

    def set_rows(self, rows: list[JobRow], now: float) -> None:
        """New rows from a snapshot."""
        self.model.set_rows(rows, now)
        self.empty.setVisible(not rows)
