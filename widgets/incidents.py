"""The on-call view: open incidents by severity and age, a detail pane, and one-key actions.

A acknowledge · R resolve · N note · S silence · Enter show the card in the room. Actions and detail
reads run in a thread pool; the operator's name comes from the settings (View → Operator name).
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHeaderView,
    QInputDialog,
    QLabel,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console import incidents as engine
from console import knowledge
from console.fmt import duration
from console.live import IncidentDetail, IncidentRow, read_incident_detail, read_with
from console.store import connect
from widgets.common import Index, RowModel, Task
from widgets.i18n import tr

SEVERITY_COLOURS = {"P1": QColor(215, 48, 39), "P2": QColor(244, 109, 67), "P3": QColor(253, 174, 97),
                    "P4": QColor(145, 191, 219)}
COLUMNS = ("Severity", "Age", "State", "Title", "Node", "Card", "Job", "Action", "Repeats")


class IncidentModel(RowModel):
    """Open incidents, P1 first, oldest first within a severity."""

    COLUMNS = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[IncidentRow] = []
        self.now = time.time()

    def set_rows(self, rows: list[IncidentRow], now: float) -> None:
        """Replace the rows (a reset only when the set of incidents or their state changed)."""
        self.now = now
        if rows == self.rows:
            if rows:
                self.dataChanged.emit(self.index(0, 1), self.index(len(rows) - 1, 1))   # ages move on
            return
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.row_at(index)
        if r is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            state = tr(r.state) + (f" ({r.acknowledged_by})" if r.acknowledged_by and r.state == "acknowledged" else "")
            values = (r.severity, duration(self.now - r.opened_at), state, r.title, r.node or "-",
                      "-" if r.card_idx is None else str(r.card_idx), r.job or "-", tr(r.action or "-"),
                      str(r.count))
            return values[col] if 0 <= col < len(values) else None
        if role == Qt.ItemDataRole.BackgroundRole and col == 0:
            return SEVERITY_COLOURS.get(r.severity)
        if role == Qt.ItemDataRole.ForegroundRole and r.state == "silenced":
            return QColor(140, 140, 140)
        if role == Qt.ItemDataRole.ToolTipRole and col == 3:
            return r.title
        return None


def operator_name() -> str:
    """The operator's name from the settings, else the login name."""
    from widgets import i18n

    name = i18n.settings().value("operator", "", str)
    return str(name) or os.environ.get("USER") or "operator"


class IncidentsView(QWidget):
    """List + detail; emits show_card for Enter / double-click, changed after an action."""

    show_card = Signal(str, int)
    show_job = Signal(str, float)
    changed = Signal()

    def __init__(self, db_path: str, pool: QThreadPool, language: str = "en",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db_path = db_path
        self.pool = pool
        self.language = language
        self.model = IncidentModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        em = self.table.fontMetrics().horizontalAdvance("M")
        for col, chars in enumerate((3.5, 4, 7, 20, 8, 3, 5, 7, 3)):
            self.table.setColumnWidth(col, int(chars * em))
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.load_detail())
        self.detail = QTextBrowser()
        self.detail.setOpenExternalLinks(False)
        self.detail.setOpenLinks(False)
        self.detail.anchorClicked.connect(self._link)
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setMaximumHeight(180)
        self.plot.setTitle(tr("Snapshot: 15 min before and after"), size="9pt")
        self.status = QLabel(tr("A acknowledge · R resolve · N note · S silence · Enter show the card · J show the job"))
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.detail, 1)
        rl.addWidget(self.plot)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        self.current: IncidentDetail | None = None
        for key, slot in (("A", self.acknowledge), ("R", self.resolve), ("N", self.note), ("S", self.silence),
                          ("Return", self.open_selected), ("Enter", self.open_selected), ("J", self.open_job)):
            shortcut = QShortcut(QKeySequence(key), self.table)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # ---- data -------------------------------------------------------------------------------------

    def set_rows(self, rows: list[IncidentRow], now: float) -> None:
        """New list from a snapshot; the selection follows the incident, not the row number."""
        selected = self.selected()
        self.model.set_rows(rows, now)
        if selected is not None:
            for i, r in enumerate(self.model.rows):
                if r.id == selected.id:
                    self.table.selectRow(i)
                    break
        elif rows and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)

    def selected(self) -> IncidentRow | None:
        """The incident under the cursor."""
        index = self.table.currentIndex()
        if not index.isValid() or index.row() >= len(self.model.rows):
            return None
        return self.model.rows[index.row()]

    def _run(self, work: Callable[[], object], done: Callable[[object], None]) -> None:
        job = Task(work)
        job.signals.done.connect(done)
        job.signals.failed.connect(lambda text: self.status.setText(f"{tr('Not done')}: {text}"))
        self.pool.start(job)

    def load_detail(self) -> None:
        """Read the selected incident's detail in the pool."""
        row = self.selected()
        if row is None:
            self.detail.clear()
            return
        path = self.db_path
        self._run(lambda: read_with(path, lambda conn: read_incident_detail(conn, row.id)), self.show_detail)

    @staticmethod
    def _job_links(jobs: object) -> str:
        names = [j.strip() for j in str(jobs or "").split(",") if j.strip()]
        if not names:
            return "-"
        return ", ".join(f"<a href='job:{html.escape(j)}'>{html.escape(j)}</a>" for j in names) + \
            f" <small>({tr('J: open the job timeline')})</small>"

    def _link(self, url: QUrl) -> None:
        if url.scheme() == "job" and self.current is not None:
            self.show_job.emit(url.path(), float(str(self.current.row["opened_at"])))

    def open_job(self) -> None:
        """From the selected incident to its (first) job's lane in the timeline, at the incident's time."""
        row = self.selected()
        if row is not None and row.job:
            self.show_job.emit(row.job.split(",")[0].strip(), float(row.opened_at))

    def show_detail(self, detail: object) -> None:
        """Evidence, meaning, action, jobs, cards, the card's history and notes; the snapshot plot."""
        if not isinstance(detail, IncidentDetail):
            return
        self.current = detail
        r = detail.row
        entry = knowledge.lookup(str(r.get("code") or r.get("source") or ""))
        if r.get("source") == "node":
            entry = knowledge.lookup("NODE-UNREACHABLE")
        elif r.get("source") == "threshold":
            entry = knowledge.lookup(str(r.get("code")))
        lang = self.language
        esc = html.escape
        opened = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(r["opened_at"]))))
        parts = [f"<h3>{esc(str(r['severity']))} · {esc(str(r['title']))}</h3>",
                 f"<p><b>{tr('State')}:</b> {esc(tr(str(r['state'])))} · <b>{tr('Opened')}:</b> {opened} · "
                 f"<b>{tr('Repeats')}:</b> {r['count']}</p>",
                 f"<p><b>{tr('Evidence')}:</b><br><code>{esc(str(r.get('evidence') or ''))}</code></p>",
                 f"<p><b>{tr('Meaning')}:</b> {esc(entry.meaning(lang))}</p>",
                 f"<p><b>{tr('Recommended action')}:</b> {esc(tr(str(r.get('action') or '-')))} — "
                 f"{esc(entry.action(lang))}</p>",
                 f"<p><b>{tr('Affected job(s)')}:</b> {self._job_links(r.get('job'))} · <b>{tr('Node')}:</b> "
                 f"{esc(str(r.get('node') or '-'))} · <b>{tr('Card')}:</b> "
                 f"{esc(str(r.get('card_idx') if r.get('card_idx') is not None else r.get('cards') or '-'))}"
                 f" · <b>{tr('serial')}:</b> {esc(str(r.get('serial') or 'N/A'))}</p>"]
        if detail.history:
            parts.append(f"<p><b>{tr('History of this card')}:</b></p><ul>")
            parts += [f"<li>{time.strftime('%m-%d %H:%M', time.localtime(t))} {esc(sev)} {esc(title)} "
                      f"({esc(tr(state))})</li>" for t, sev, title, state in detail.history]
            parts.append("</ul>")
            if len(detail.history) >= 2:
                parts.append(f"<p style='color:#d73027'><b>{tr('Repeat offender: replace (RMA) candidate')}</b></p>")
        if detail.notes:
            parts.append(f"<p><b>{tr('Notes')}:</b></p><ul>")
            parts += [f"<li>{time.strftime('%m-%d %H:%M', time.localtime(t))} {esc(a or '?')}: {esc(text)}</li>"
                      for t, a, text in detail.notes]
            parts.append("</ul>")
        self.detail.setHtml("".join(parts))
        self.plot.clear()
        s = detail.samples
        if len(s["t"]):
            self.plot.plot(s["t"], s["temperature_c"], pen=pg.mkPen((215, 48, 39), width=1.5), connect="finite",
                           name="°C")
            self.plot.plot(s["t"], s["utilization_pct"], pen=pg.mkPen((80, 170, 255), width=1), connect="finite")
            self.plot.addItem(pg.InfiniteLine(pos=float(str(r["opened_at"])), angle=90,
                                              pen=pg.mkPen((255, 255, 255), style=Qt.PenStyle.DashLine)))

    # ---- actions ----------------------------------------------------------------------------------

    def _write(self, action: Callable[[Any], None], label: str) -> None:
        row = self.selected()
        if row is None:
            return
        path = self.db_path

        def work() -> object:
            db = connect(path)
            try:
                action(db.conn)
            finally:
                db.conn.close()
            return row.id

        self._run(work, lambda _id: (self.status.setText(f"#{row.id}: {label}"), self.changed.emit(),
                                     self.load_detail()))

    def acknowledge(self) -> None:
        """A: take the incident."""
        row, by = self.selected(), operator_name()
        if row is not None:
            self._write(lambda conn: engine.acknowledge(conn, row.id, by), tr("acknowledged"))

    def resolve(self) -> None:
        """R: resolve it."""
        row, by = self.selected(), operator_name()
        if row is not None:
            self._write(lambda conn: engine.resolve(conn, row.id, by), tr("resolved"))

    def note(self, text: str | None = None) -> None:
        """N: add a note (asked for when not given)."""
        row, by = self.selected(), operator_name()
        if row is None:
            return
        if text is None:
            text, ok = QInputDialog.getText(self, tr("Add note"), tr("Note for #%1").replace("%1", str(row.id)))
            if not ok:
                return
        note = text
        self._write(lambda conn: engine.add_note(conn, row.id, by, note), tr("note added"))

    def silence(self, minutes: int | None = None) -> None:
        """S: silence notifications for some minutes (asked for when not given)."""
        row, by = self.selected(), operator_name()
        if row is None:
            return
        if minutes is None:
            minutes, ok = QInputDialog.getInt(self, tr("Silence"), tr("Minutes"), 60, 5, 7 * 24 * 60)
            if not ok:
                return
        until = time.time() + 60 * minutes
        self._write(lambda conn: engine.silence(conn, row.id, until, by), tr("silenced"))

    def open_selected(self) -> None:
        """Enter: show the incident's card (or node) in the room."""
        row = self.selected()
        if row is not None and row.node:
            self.show_card.emit(row.node, -1 if row.card_idx is None else row.card_idx)
