"""Checkpoint & resume panel (one row per training job, against the field's goals) above the timeline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QSplitter, QTableView, QVBoxLayout, QWidget

from console.continuity import GOAL_ETTR, GOAL_TTR_S
from console.fmt import duration
from console.jobview import JobRow
from widgets.common import Index, RowModel
from widgets.i18n import tr

if TYPE_CHECKING:
    from widgets.timeline import TimelineView

COLUMNS = ("Job", "Cards", "State", "Last step", "Step age", "Checkpoint", "Checkpoint age", "Last resume",
           "ETTR", "ETTR 24 h", "GPU-hours at risk", "Slurm")
RED, GREEN, ORANGE, GREY = QColor(215, 48, 39), QColor(26, 152, 80), QColor(230, 120, 30), QColor(120, 120, 120)
STATE_COLOURS = {"running": GREEN, "stalled": ORANGE, "down": RED, "resuming": QColor(150, 80, 190),
                 "cannot read": RED, "no progress pattern": RED, "no data": GREY, "finished": QColor(69, 117, 180)}


def _pct(value: float | None) -> str:
    return "N/A" if value is None else f"{100 * value:.1f} %"


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
        m = r.model
        ckpt_age = None if m.checkpoint_at is None else self.now - m.checkpoint_at
        if role == Qt.ItemDataRole.DisplayRole:
            slurm = "N/A" if r.slurm_state is None else r.slurm_state + (
                f" ({r.requeues} {tr('requeues')})" if r.requeues else "")
            values = (r.name, r.vendors or "N/A", tr(r.state),
                      "N/A" if m.last_step is None else f"{m.last_step:,}",
                      duration(None if m.last_progress_at is None else self.now - m.last_progress_at),
                      "N/A" if m.checkpoint_step is None else f"{m.checkpoint_step:,}", duration(ckpt_age),
                      duration(m.last_ttr_s), _pct(m.ettr), _pct(m.ettr_24h),
                      "N/A" if m.gpu_hours_at_risk is None else f"{m.gpu_hours_at_risk:,.0f}", slurm)
            return values[col] if 0 <= col < len(values) else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 2:
                return STATE_COLOURS.get(r.state)
            if col == 6 and ckpt_age is not None and m.checkpoint_interval_s:
                return RED if ckpt_age > 2 * m.checkpoint_interval_s else (
                    ORANGE if ckpt_age > 1.2 * m.checkpoint_interval_s else GREEN)
            if col == 7 and m.last_ttr_s is not None:
                return GREEN if m.last_ttr_s <= GOAL_TTR_S else RED
            if col in (8, 9):
                value = m.ettr if col == 8 else m.ettr_24h
                return None if value is None else GREEN if value >= GOAL_ETTR else RED
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1:
                return f"{r.cards} {tr('cards')}" if r.mix else None
            if col == 2:
                tip = r.problem or ""
                if r.unmatched:
                    tip += f"\n{r.unmatched} / {r.lines} {tr('log lines matched no pattern (skipped)')}"
                return tip.strip() or None
            if col == 6:
                lines = [f"{tr('median interval')}: {duration(m.checkpoint_interval_s)}",
                         f"{tr('median save')}: {duration(m.save_duration_s)}",
                         f"{tr('Young/Daly optimum')}: {duration(m.optimal_interval_s)}"] + [tr(f) for f in m.flags]
                return "\n".join(lines)
        return None


class JobsView(QWidget):
    """The panel with the goals spelled out, and the continuity timeline once pyqtgraph is loaded."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = JobModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._row_selected(cur.row()))
        self.empty = QLabel(tr("No training jobs with a log or checkpoint directory in the site file."))
        goals = QLabel(tr("Goals: resume ≤ 10 min · 15 days without interruption · ETTR ≥ 90 %"))
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.table)
        self.timeline: TimelineView | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(goals)
        layout.addWidget(self.split, 1)
        layout.addWidget(self.empty)

    def attach_timeline(self) -> None:
        """Add the timeline below the table (called after the first paint, when pyqtgraph may load)."""
        if self.timeline is not None:
            return
        from widgets.timeline import TimelineView

        self.timeline = TimelineView()
        self.timeline.job_selected.connect(self.select_job)
        self.split.addWidget(self.timeline)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 2)
        if self.model.rows:
            self.timeline.set_rows(self.model.rows, self.model.now)

    def set_rows(self, rows: list[JobRow], now: float) -> None:
        """New rows from a snapshot; the selected job stays selected."""
        current = self.table.currentIndex()
        selected = self.model.rows[current.row()].name if current.isValid() and current.row() < len(
            self.model.rows) else None
        self.model.set_rows(rows, now)
        self.empty.setVisible(not rows)
        if self.timeline is not None:
            self.timeline.set_rows(rows, now)
        if selected is not None:
            self.select_job(selected)

    def select_job(self, name: str, at: float | None = None) -> bool:
        """Select a job's row and lane (from an incident: centred on its time)."""
        row = next((i for i, r in enumerate(self.model.rows) if r.name == name), None)
        if row is None:
            return False
        if self.table.currentIndex().row() != row:
            self.table.selectRow(row)
        if self.timeline is not None:
            self.timeline.show_job(name, at)
        return True

    def _row_selected(self, row: int) -> None:
        if self.timeline is not None and 0 <= row < len(self.model.rows):
            self.timeline.show_job(self.model.rows[row].name)
