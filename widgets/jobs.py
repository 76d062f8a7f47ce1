"""Checkpoint & resume panel (one row per training job, against the field's goals) above the timeline.

The table is as tall as its rows (every job visible, in any language and font), up to `MAX_FIT_ROWS`
rows before it scrolls; the timeline below takes the rest of the height.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QSplitter, QTableView, QVBoxLayout, QWidget

from console.continuity import GOAL_ETTR, GOAL_TTR_S
from console.jobview import JobRow
from widgets.common import Index, RowModel, shown_duration
from widgets.i18n import tr, vendor_mix

if TYPE_CHECKING:
    from widgets.timeline import TimelineView

COLUMNS = ("Job", "Cards", "State", "Last step", "Step age", "Checkpoint", "Checkpoint age", "Last resume",
           "ETTR", "ETTR 24 h", "GPU-hours at risk", "Slurm")
RED, GREEN, ORANGE, GREY = QColor(215, 48, 39), QColor(26, 152, 80), QColor(230, 120, 30), QColor(120, 120, 120)
STATE_COLOURS = {"running": GREEN, "stalled": ORANGE, "down": RED, "resuming": QColor(150, 80, 190),
                 "cannot read": RED, "no progress pattern": RED, "no data": GREY, "finished": QColor(69, 117, 180)}
MAX_FIT_ROWS = 12           # beyond this many jobs the table scrolls and the timeline keeps its height


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
            values = (r.name, vendor_mix(r.mix) or "N/A", tr(r.state),
                      "N/A" if m.last_step is None else f"{m.last_step:,}",
                      shown_duration(None if m.last_progress_at is None else self.now - m.last_progress_at),
                      "N/A" if m.checkpoint_step is None else f"{m.checkpoint_step:,}", shown_duration(ckpt_age),
                      shown_duration(m.last_ttr_s), _pct(m.ettr), _pct(m.ettr_24h),
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
                lines = [f"{tr('median interval')}: {shown_duration(m.checkpoint_interval_s)}",
                         f"{tr('median save')}: {shown_duration(m.save_duration_s)}",
                         f"{tr('Young/Daly optimum')}: {shown_duration(m.optimal_interval_s)}"] + [tr(f) for f in m.flags]
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
        # rows as tall as their text (CJK fonts are taller than the default section size)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._row_selected(cur.row()))
        self.table.horizontalScrollBar().rangeChanged.connect(lambda *_: self._fit_table())
        self.empty = QLabel(tr("No training jobs with a log or checkpoint directory in the site file."))
        self.goals = QLabel(tr("Goals: resume ≤ 10 min · 15 days without interruption · ETTR ≥ 90 %"))
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.table)
        self.timeline: TimelineView | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.goals)
        layout.addWidget(self.split, 1)
        layout.addWidget(self.empty)
        self._fit_table()

    def attach_timeline(self) -> None:
        """Add the timeline below the table (called after the first paint, when pyqtgraph may load)."""
        if self.timeline is not None:
            return
        from widgets.timeline import TimelineView

        self.timeline = TimelineView()
        self.timeline.job_selected.connect(self.select_job)
        self.split.addWidget(self.timeline)
        self.split.setStretchFactor(0, 0)
        self.split.setStretchFactor(1, 1)
        if self.model.rows:
            self.timeline.set_rows(self.model.rows, self.model.now)
        self._fit_table()

    def set_rows(self, rows: list[JobRow], now: float) -> None:
        """New rows from a snapshot; the selected job stays selected."""
        current = self.table.currentIndex()
        selected = self.model.rows[current.row()].name if current.isValid() and current.row() < len(
            self.model.rows) else None
        count = len(self.model.rows)
        self.model.set_rows(rows, now)
        self.empty.setVisible(not rows)
        if self.timeline is not None:
            self.timeline.set_rows(rows, now)
        if selected is not None:
            self.select_job(selected)
        if len(rows) != count:
            self._fit_table()

    def table_height(self, rows: int | None = None, resize: bool = True) -> int:
        """The height that shows the header and `rows` rows (all of them by default), with the scroll bar
        when the columns are wider than the table (`resize`: measure the rows' text first)."""
        table = self.table
        n = self.model.rowCount() if rows is None else rows
        if resize:
            table.resizeRowsToContents()
        header = table.horizontalHeader()
        height = header.sizeHint().height() if header.isVisible() else 0
        row_h = table.verticalHeader().defaultSectionSize()
        height += sum(table.rowHeight(i) if i < self.model.rowCount() else row_h for i in range(n))
        if header.length() > table.viewport().width() or table.horizontalScrollBar().maximum() > 0:
            height += table.horizontalScrollBar().sizeHint().height()
        return height + 2 * table.frameWidth()

    def _fit_table(self, force: bool = False) -> None:
        """Make the table exactly as tall as its rows (up to MAX_FIT_ROWS of them, then it scrolls).

        Measuring every cell's text costs the GUI thread ~10 ms per job table at each call, and the tab's
        show, resizes and scroll-range changes all ask: done again only when what it depends on changed."""
        table = self.table
        if not self.isVisible():
            # a hidden table's rows are not measured (the tab not shown yet, or the window rebuilt in another
            # language): fit when it is shown, not to heights that are not there
            self._fitted = None
            return
        key = (self.model.rowCount(), table.viewport().width(), table.horizontalHeader().length(),
               table.font().key(), self.timeline is not None, tuple(self.split.sizes()))
        if not force and key == getattr(self, "_fitted", None):
            return
        shown = max(1, min(self.model.rowCount(), MAX_FIT_ROWS))
        full = self.table_height()
        fit = self.table_height(shown, resize=False)
        self.table.setMinimumHeight(fit)
        self.table.setMaximumHeight(max(fit, full))
        if self.timeline is not None:
            sizes = self.split.sizes()
            if len(sizes) == 2 and sizes[0] != fit:
                total = sum(sizes)
                self.split.setSizes([fit, max(0, total - fit)])
        self._fitted = (self.model.rowCount(), table.viewport().width(), table.horizontalHeader().length(),
                        table.font().key(), self.timeline is not None, tuple(self.split.sizes()))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            QTimer.singleShot(0, self, lambda: self._fit_table(force=True))
        elif event.type() == QEvent.Type.LanguageChange:
            self.empty.setText(tr("No training jobs with a log or checkpoint directory in the site file."))
            self.goals.setText(tr("Goals: resume ≤ 10 min · 15 days without interruption · ETTR ≥ 90 %"))
            self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
            self.model.dataChanged.emit(self.model.index(0, 0),
                                        self.model.index(max(0, self.model.rowCount() - 1), len(COLUMNS) - 1))
            QTimer.singleShot(0, self, lambda: self._fit_table(force=True))
        super().changeEvent(event)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit_table()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self._fit_table()

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
