"""The on-call view: open incidents by severity and age, a detail pane, and one-key actions.

A acknowledge · R resolve · N note · S silence · Enter show the card in the room. Actions and detail
reads run in a thread pool; the operator's name comes from the settings (View → Operator name), asked
for once when it was never set. The list filters by text (title, node, code, job), severity and state,
and exports to CSV. Text from nodes (titles, evidence, notes, job names) is never interpreted as rich
text: control sequences are dropped and the rest escaped (issue 16 #9). Incident titles are stored in
English by console/incidents.py; the Chinese UI translates the known title patterns at display time.
"""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console import incidents as engine
from console import knowledge
from console.incidents import IncidentRow
from console.live import IncidentDetail, read_incident_detail, read_with
from console.store import connect
from widgets.axes import DateAxis, TickGrid
from widgets.common import Index, RowModel, Task, shown_duration, write_csv
from widgets.i18n import tr, vendor_name

SEVERITY_COLOURS = {"P1": QColor(215, 48, 39), "P2": QColor(244, 109, 67), "P3": QColor(253, 174, 97),
                    "P4": QColor(145, 191, 219)}
COLUMNS = ("Severity", "Age", "State", "Title", "Node", "Card", "Job", "Action", "Repeats")
COL_SEVERITY, COL_AGE, COL_STATE, COL_TITLE, COL_NODE, COL_CARD, COL_JOB, COL_ACTION, COL_REPEATS = range(9)
MIN_CHARS = (4, 5, 7, 16, 8, 3, 5, 7, 4)        # column minimums (in "M" widths) before content sizing
STATES = ("open", "acknowledged", "silenced")
SEVERITIES = ("P1", "P2", "P3", "P4")

# ---- node text: never markup, never terminal control -----------------------------------------------

_CONTROL = re.compile(r"\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"        # OSC … BEL / ST (window titles, links)
                      r"|\x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"         # 8-bit OSC
                      r"|\x1b\[[0-?]*[ -/]*[@-~]"                           # CSI (colours, cursor moves)
                      r"|\x1b[@-_]?"                                          # any other escape
                      r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")                     # the remaining C0/C1 controls


def plain_text(text: object) -> str:
    """Node text with terminal control sequences (OSC, CSI, other ESC, C0/C1 controls) removed."""
    return _CONTROL.sub("", str(text))


def escaped(text: object) -> str:
    """Node text ready to go inside Qt rich text: control sequences removed, markup escaped."""
    return html.escape(plain_text(text), quote=True)


# ---- Chinese display of English titles and vendor names -------------------------------------------

# The title formats of console/incidents.py (read there, not imported: they are f-strings), most specific
# first. Each English template is a catalogue key; its Chinese keeps the {fields} verbatim.
_NODE = r"(?P<node>.+?)"
# a link: "node [card N] kind link", as console/incidents.py writes it
_LINK = r"(?P<where>.+? (?:nvlink|hccs|roce|ib|mlulink|metaxlink|mtlink|xgmi|pcie|\w+link) \S+)"
TITLE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(rx, re.DOTALL), template) for rx, template in (
    (r"job (?P<job>.+?): training stopped \((?P<state>[\w ]+)\)", "job {job}: training stopped ({state})"),
    (_NODE + r": SSH host key CHANGED", "{node}: SSH host key CHANGED"),
    (_NODE + r": vendor tool failed", "{node}: vendor tool failed"),
    (_NODE + r": output mixops cannot fully read", "{node}: output mixops cannot fully read"),
    (r"Prometheus source (?P<url>.+?): (?P<count>\d+) node\(s\) not read", "Prometheus source {url}: {count} node(s) not read"),
    (r"links not collected on (?P<count>\d+) node\(s\): (?P<what>.+)", "links not collected on {count} node(s): {what}"),
    (r"P1 → P2: job (?P<job>.+?) trains again since this opened \(or has finished\)",
     "P1 → P2: job {job} trains again since this opened (or has finished)"),
    (_LINK + r": flapping \((?P<count>\d+) changes in (?P<min>[\d.]+) min\)", "{where}: flapping ({count} changes in {min} min)"),
    (_LINK + r": down since (?P<since>.+) UTC", "{where}: down since {since} UTC"),
    (_LINK + r": down", "{where}: down"),
    (_LINK + r": errors at (?P<rate>\d+)/min over (?P<min>[\d.]+) min \((?P<names>.+); limit (?P<limit>[\d.e+]+)/min\)",
     "{where}: errors at {rate}/min over {min} min ({names}; limit {limit}/min)"),
    (_LINK + r": slower than its peers \((?P<speed>[\d.e+]+) Gb/s, best of its kind on the node (?P<best>[\d.e+]+) Gb/s\)",
     "{where}: slower than its peers ({speed} Gb/s, best of its kind on the node {best} Gb/s)"),
    (_NODE + r": (?P<count>\d+) links \((?P<counts>.+)\)", "{node}: {count} links ({counts})"),
    (r"rack (?P<rack>.+?): (?P<count>\d+) nodes not answering", "rack {rack}: {count} nodes not answering"),
    (_NODE + r": not answering \(jobs: (?P<jobs>.+)\)", "{node}: not answering (jobs: {jobs})"),
    (_NODE + r": not answering", "{node}: not answering"),
    (_NODE + r" card (?P<card>\d+): temperature (?P<value>[-+\d.e]+) °C", "{node} card {card}: temperature {value} °C"),
    (_NODE + r" card (?P<card>\d+): power (?P<value>[-+\d.e]+) W", "{node} card {card}: power {value} W"),
    (_NODE + r" card (?P<card>\d+): memory full", "{node} card {card}: memory full"),
    (_NODE + r" card (?P<card>\d+): health critical", "{node} card {card}: health critical"),
    (_NODE + r": (?P<code>.+?) on (?P<count>\d+) cards", "{node}: {code} on {count} cards"),
    (_NODE + r" card (?P<card>\d+): (?P<code>.+)", "{node} card {card}: {code}"),
))


def display_title(title: str) -> str:
    """An incident title in the UI's language: a known pattern translated with its node, card, code and
    values kept verbatim; an unknown title as stored. Control sequences are dropped either way."""
    title = plain_text(title)
    for pattern, template in TITLE_PATTERNS:
        m = pattern.fullmatch(title)
        if m is None:
            continue
        translated = QCoreApplication.translate("mixops", template)
        if not translated or translated == template:
            return title
        fields = m.groupdict()
        if "state" in fields:
            fields["state"] = tr(fields["state"])
        if fields.get("names"):          # a link's error counters, as the engine's group_concat lists them
            fields["names"] = "、".join(tr(n.strip(), "link counter") for n in fields["names"].split(","))
        if fields.get("where"):
            fields["where"] = re.sub(r" card (\d+) ", lambda c: f" {tr('card')} {c.group(1)} ", fields["where"])
        # fields are substituted by name, so a node called "{card}" stays "{card}"
        return re.sub(r"\{(\w+)\}", lambda f, values=fields: values.get(f.group(1)) or f.group(0), translated)
    return title


class IncidentModel(RowModel):
    """Open incidents, P1 first, oldest first within a severity."""

    COLUMNS = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[IncidentRow] = []
        self.now = time.time()

    def set_rows(self, rows: list[IncidentRow], now: float) -> bool:
        """Replace the rows (a reset only when the set of incidents or their state changed); True on a reset."""
        self.now = now
        if rows == self.rows:
            if rows:
                self.dataChanged.emit(self.index(0, COL_AGE), self.index(len(rows) - 1, COL_AGE))   # ages move on
            return False
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()
        return True

    def display(self, r: IncidentRow, col: int) -> str:
        """The text of one cell, as shown (and exported)."""
        if col == COL_SEVERITY:
            return r.severity
        if col == COL_AGE:
            return shown_duration(self.now - r.opened_at)
        if col == COL_STATE:
            by = plain_text(r.acknowledged_by or "")
            return tr(r.state) + (f" ({by})" if by and r.state == "acknowledged" else "")
        if col == COL_TITLE:
            return display_title(r.title)
        if col == COL_NODE:
            return plain_text(r.node or "-")
        if col == COL_CARD:
            return "-" if r.card_idx is None else str(r.card_idx)
        if col == COL_JOB:
            return plain_text(r.job or "-")
        if col == COL_ACTION:
            return tr(r.action or "-")
        if col == COL_REPEATS:
            return str(r.count)
        return ""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.row_at(index)
        if r is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display(r, col) if 0 <= col < len(COLUMNS) else None
        if role == Qt.ItemDataRole.UserRole:            # sort keys
            keys: tuple[object, ...] = (r.severity, -r.opened_at, r.state, display_title(r.title), r.node or "",
                                        -1 if r.card_idx is None else r.card_idx, r.job or "", r.action or "", r.count)
            return keys[col] if 0 <= col < len(keys) else None
        if role == Qt.ItemDataRole.BackgroundRole and col == COL_SEVERITY:
            return SEVERITY_COLOURS.get(r.severity)
        if role == Qt.ItemDataRole.ForegroundRole and r.state == "silenced":
            return QColor(140, 140, 140)
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_TITLE:
            # tooltips are rich text when they look like it: escape, and wrap so they always are
            shown, stored = display_title(r.title), plain_text(r.title)
            return f"<p>{html.escape(shown)}" + (f"<br><i>{html.escape(stored)}</i>" if stored != shown else "") + "</p>"
        return None


class IncidentFilter(QSortFilterProxyModel):
    """Filters the list by text (title as shown and as stored, node, code, job), severity and state."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.severity = ""          # "" all, else "P1".."P4": that severity and worse
        self.state = ""             # "" all, else one state
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def _refilter(self) -> None:
        self.invalidateRowsFilter()      # Qt 6.9 (pinned) has beginFilterChange but not yet endFilterChange

    def set_filters(self, text: str | None = None, severity: str | None = None, state: str | None = None) -> None:
        """Change one or more filters ("" clears one)."""
        if text is not None:
            self.text = text.strip().casefold()
        if severity is not None:
            self.severity = severity
        if state is not None:
            self.state = state
        self._refilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802 - Qt API
        model = self.sourceModel()
        if not isinstance(model, IncidentModel) or not 0 <= source_row < len(model.rows):
            return False
        r = model.rows[source_row]
        if self.severity and r.severity > self.severity:
            return False
        if self.state and r.state != self.state:
            return False
        if self.text:
            haystack = " ".join(str(v) for v in (r.title, display_title(r.title), r.node, r.code, r.job, r.serial,
                                                  f"#{r.id}") if v)
            return all(word in haystack.casefold() for word in self.text.split())
        return True


def operator_name() -> str:
    """The operator's name from the settings, else the login name (never asks; see ask_operator_name)."""
    from widgets import i18n

    name = i18n.settings().value("operator", "", str)
    return str(name) or os.environ.get("USER") or "operator"


def ask_operator_name(parent: QWidget | None) -> str | None:
    """The stored operator name; when none was ever set, asked once (prefilled with the login name) and
    remembered. None when the operator cancels or gives no name: the action is then not done."""
    from widgets import i18n

    stored = str(i18n.settings().value("operator", "", str) or "").strip()
    if stored:
        return stored
    name, ok = QInputDialog.getText(parent, tr("Operator name"), tr("Name shown on acknowledgements and notes"),
                                    text=os.environ.get("USER", ""))
    name = plain_text(name).strip() if ok else ""
    if not name:
        return None
    i18n.settings().setValue("operator", name)
    return name


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
        self.proxy = IncidentFilter()
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)     # the source's order: P1 first, oldest first
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.sectionResized.connect(self._on_header_section_resized)
        em = self.table.fontMetrics().horizontalAdvance("M")
        self._min_widths = [int(chars * em) for chars in MIN_CHARS]
        self._max_fit = 24 * em
        header.setMinimumSectionSize(int(2.5 * em))
        for col, width in enumerate(self._min_widths):
            if col != COL_TITLE:
                self.table.setColumnWidth(col, width)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.load_detail())
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._on_table_context_menu_requested)
        self.search = QLineEdit()
        self.search.setPlaceholderText(tr("Filter: title, node, code, job"))
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda text: self.proxy.set_filters(text=text))
        self.severity_filter = QComboBox()
        self.severity_filter.addItem(tr("All severities"), "")
        for sev in SEVERITIES[:-1]:
            self.severity_filter.addItem(tr("%1 and worse").replace("%1", sev), sev)
        self.severity_filter.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filters(severity=str(self.severity_filter.currentData())))
        self.state_filter = QComboBox()
        self.state_filter.addItem(tr("All states"), "")
        for state in STATES:
            self.state_filter.addItem(tr(state), state)
        self.state_filter.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filters(state=str(self.state_filter.currentData())))
        self.export_button = QPushButton(tr("Export CSV…"))
        self.export_button.clicked.connect(lambda _checked=False: self.export_csv())
        self.shown_label = QLabel()
        self.shown_label.setTextFormat(Qt.TextFormat.PlainText)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                       self.proxy.layoutChanged):
            signal.connect(self._update_shown)
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.severity_filter)
        filters.addWidget(self.state_filter)
        filters.addWidget(self.shown_label)
        filters.addWidget(self.export_button)
        self.detail = QTextBrowser()
        self.detail.setOpenExternalLinks(False)
        self.detail.setOpenLinks(False)
        self.detail.anchorClicked.connect(self._link)
        self.snapshot_title = QLabel(tr("Snapshot: 15 min before and after"))
        self._build_plot()
        self.status = QLabel(tr("A acknowledge · R resolve · N note · S silence · Enter show the card · J show the job"))
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(filters)
        ll.addWidget(self.table, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.detail, 1)
        rl.addWidget(self.snapshot_title)
        rl.addWidget(self.plot_widget)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 1)
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
        self._update_shown()
        self.table.viewport().installEventFilter(self)

    def _build_plot(self) -> None:
        """The snapshot plot: temperature and utilization on the left axis, power on its own right axis; the
        legend in its own row above the plot, so it never covers the curves."""
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setMaximumHeight(240)
        self.plot_widget.setMinimumHeight(190)
        self.legend = pg.LegendItem(colCount=4, labelTextSize="8pt", verSpacing=-6)
        self.plot_widget.addItem(self.legend, row=0, col=0)
        item = self.plot = self.plot_widget.addPlot(row=1, col=0, axisItems={"bottom": DateAxis()})
        self.plot_widget.ci.layout.setRowStretchFactor(1, 10)
        item.setLabel("left", f"{tr('Temperature')} (°C) · {tr('Utilization')} (%)")
        item.setLabel("bottom", tr("Time"))
        item.getAxis("left").enableAutoSIPrefix(False)
        item.addItem(TickGrid(item), ignoreBounds=True)
        item.hideButtons()
        item.setMouseEnabled(x=True, y=False)
        self.power_box = pg.ViewBox()
        self.power_box.setMouseEnabled(x=False, y=False)
        item.showAxis("right")
        item.scene().addItem(self.power_box)
        right = item.getAxis("right")
        right.linkToView(self.power_box)
        right.enableAutoSIPrefix(False)
        right.setLabel(f"{tr('Power')} (W)")
        self.power_box.setXLink(item)
        item.vb.sigResized.connect(lambda *_: self.power_box.setGeometry(item.vb.sceneBoundingRect()))
        self.temp_curve = item.plot([], [], pen=pg.mkPen((215, 48, 39), width=1.5), connect="finite")
        self.util_curve = item.plot([], [], pen=pg.mkPen((80, 170, 255), width=1.2), connect="finite")
        self.power_curve = pg.PlotDataItem([], [], pen=pg.mkPen((120, 200, 120), width=1.2), connect="finite")
        self.power_box.addItem(self.power_curve)
        self.opened_line = pg.InfiniteLine(angle=90, pen=pg.mkPen((230, 230, 230), style=Qt.PenStyle.DashLine))
        self.opened_line.setVisible(False)
        item.addItem(self.opened_line, ignoreBounds=True)
        self.opened_legend = pg.PlotDataItem([], [], pen=pg.mkPen((230, 230, 230), style=Qt.PenStyle.DashLine))
        for curve, name in ((self.temp_curve, f"{tr('Temperature')} (°C)"),
                            (self.util_curve, f"{tr('Utilization')} (%)"),
                            (self.power_curve, f"{tr('Power')} (W)"), (self.opened_legend, tr("opened"))):
            self.legend.addItem(curve, name)

    # ---- data -------------------------------------------------------------------------------------

    def set_rows(self, rows: list[IncidentRow], now: float) -> None:
        """New list from a snapshot; the selection follows the incident, not the row number."""
        selected = self.selected()
        reset = self.model.set_rows(rows, now)
        if reset:
            self.fit_columns()
        if selected is not None:
            for i, r in enumerate(self.model.rows):
                if r.id == selected.id:
                    self._select_source_row(i)
                    break
        elif rows and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)

    def fit_columns(self) -> None:
        """Every column but Title as wide as its content (never below its minimum, at most 24 em by itself,
        never narrowed under the operator's own widening); Title takes the rest."""
        for col, minimum in enumerate(self._min_widths):
            if col == COL_TITLE:
                continue
            content = min(max(self.table.sizeHintForColumn(col), self.table.horizontalHeader().sectionSizeHint(col)),
                          self._max_fit)      # one absurd node name does not push every other column away
            if content > self.table.columnWidth(col) or self.table.columnWidth(col) < minimum:
                self.table.setColumnWidth(col, max(minimum, content))
        self._fit_title()

    def _fit_title(self) -> None:
        """Title takes the width the other columns leave, never less than its minimum (then the table
        scrolls sideways instead of cutting every column)."""
        others = sum(self.table.columnWidth(c) for c in range(len(COLUMNS)) if c != COL_TITLE)
        self.table.setColumnWidth(COL_TITLE, max(self._min_widths[COL_TITLE], self.table.viewport().width() - others))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_title()
        return super().eventFilter(watched, event)

    def _on_header_section_resized(self, col: int, _old: int, _new: int) -> None:
        if col != COL_TITLE:
            self._fit_title()

    def _select_source_row(self, source_row: int) -> None:
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if index.isValid():
            self.table.selectRow(index.row())

    def _update_shown(self, *_args: object) -> None:
        self.shown_label.setText(tr("%1 of %2 shown").replace("%1", str(self.proxy.rowCount()))
                                 .replace("%2", str(self.model.rowCount())))

    def selected(self) -> IncidentRow | None:
        """The incident under the cursor."""
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        source = self.proxy.mapToSource(index)
        return self.model.row_at(source)

    def visible_rows(self) -> list[IncidentRow]:
        """The incidents as the table shows them (filtered, in the table's order)."""
        out = []
        for row in range(self.proxy.rowCount()):
            r = self.model.row_at(self.proxy.mapToSource(self.proxy.index(row, 0)))
            if r is not None:
                out.append(r)
        return out

    def _run(self, work: Callable[[], object], done: Callable[[object], None]) -> None:
        job = Task(work)
        job.signals.done.connect(done)
        job.signals.failed.connect(lambda text: self.status.setText(f"{tr('Not done')}: {plain_text(text)}"))
        job.start(self.pool)

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
        names = [plain_text(j).strip() for j in str(jobs or "").split(",") if plain_text(j).strip()]
        if not names:
            return "-"
        return ", ".join(f"<a href='job:{QUrl.toPercentEncoding(j).data().decode()}'>{escaped(j)}</a>"
                         for j in names) + f" <small>({tr('J: open the job timeline')})</small>"

    def _link(self, url: QUrl) -> None:
        if url.scheme() == "job" and self.current is not None:
            self.show_job.emit(url.path(QUrl.ComponentFormattingOption.FullyDecoded),
                               float(str(self.current.row["opened_at"])))

    def open_job(self) -> None:
        """From the selected incident to its (first) job's lane in the timeline, at the incident's time."""
        row = self.selected()
        if row is not None and row.job:
            self.show_job.emit(row.job.split(",")[0].strip(), float(row.opened_at))

    def show_detail(self, detail: object) -> None:
        """Evidence, meaning, action, jobs, cards, the card's history and notes; the snapshot plot.

        Every value that came from a node or the database goes through `escaped` (controls dropped,
        markup escaped); only this method's own tags are markup."""
        if not isinstance(detail, IncidentDetail):
            return
        chosen = self.selected()
        if chosen is not None and chosen.id != detail.id:
            return              # a slower read for the row selected before: the newer one is shown
        self.current = detail
        r = detail.row
        entry = knowledge.lookup(str(r.get("code") or r.get("source") or ""))
        if r.get("source") == "node":
            entry = knowledge.lookup("NODE-UNREACHABLE")
        elif r.get("source") == "threshold":
            entry = knowledge.lookup(str(r.get("code")))
        lang = self.language
        esc = escaped
        opened = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(r["opened_at"]))))
        card = r.get("card_idx") if r.get("card_idx") is not None else r.get("cards") or "-"
        parts = [f"<h3>{esc(r['severity'])} · {esc(display_title(str(r['title'])))}</h3>",
                 f"<p><b>{tr('State')}:</b> {esc(tr(str(r['state'])))} · <b>{tr('Opened')}:</b> {opened} · "
                 f"<b>{tr('Repeats')}:</b> {esc(r['count'])}</p>",
                 f"<p><b>{tr('Evidence')}:</b><br><code style='white-space:pre-wrap'>{esc(r.get('evidence') or '')}"
                 f"</code></p>",
                 f"<p><b>{tr('Meaning')}:</b> {esc(entry.meaning(lang))}</p>",
                 f"<p><b>{tr('Recommended action')}:</b> {esc(tr(str(r.get('action') or '-')))} — "
                 f"{esc(entry.action(lang))}</p>",
                 f"<p><b>{tr('Affected job(s)')}:</b> {self._job_links(r.get('job'))} · <b>{tr('Node')}:</b> "
                 f"{esc(r.get('node') or '-')} · <b>{tr('Card')}:</b> {esc(card)}"
                 f" · <b>{tr('Vendor')}:</b> {esc(vendor_name(str(r.get('vendor') or '') or None, lang))}"
                 f" · <b>{tr('serial')}:</b> {esc(r.get('serial') or 'N/A')}</p>"]
        if detail.history:
            parts.append(f"<p><b>{tr('History of this card')}:</b></p><ul>")
            parts += [f"<li>{time.strftime('%m-%d %H:%M', time.localtime(t))} {esc(sev)} {esc(display_title(title))} "
                      f"({esc(tr(state))})</li>" for t, sev, title, state in detail.history]
            parts.append("</ul>")
            if len(detail.history) >= 2:
                parts.append(f"<p style='color:#d73027'><b>{tr('Repeat offender: replace (RMA) candidate')}</b></p>")
        if detail.notes:
            parts.append(f"<p><b>{tr('Notes')}:</b></p><ul>")
            parts += [f"<li>{time.strftime('%m-%d %H:%M', time.localtime(t))} {esc(a or '?')}: "
                      f"<span style='white-space:pre-wrap'>{esc(display_title(text) if a == 'mixops' else text)}"
                      "</span></li>" for t, a, text in detail.notes]
            parts.append("</ul>")
        self.detail.setHtml("".join(parts))
        s = detail.samples
        t = s["t"]
        self.temp_curve.setData(t, s["temperature_c"], connect="finite")
        self.util_curve.setData(t, s["utilization_pct"], connect="finite")
        self.power_curve.setData(t, s["power_w"], connect="finite")
        opened_at = float(str(r["opened_at"]))
        self.opened_line.setPos(opened_at)
        self.opened_line.setVisible(True)
        item = self.plot
        item.setXRange(opened_at - engine.SNAPSHOT_S, opened_at + engine.SNAPSHOT_S, padding=0.01)
        left = np.concatenate([s["temperature_c"], s["utilization_pct"]]) if len(t) else np.zeros(0)
        left = left[np.isfinite(left)]
        item.setYRange(0.0, max(100.0, float(left.max()) if len(left) else 0.0) * 1.05, padding=0)
        power = s["power_w"][np.isfinite(s["power_w"])] if len(t) else np.zeros(0)
        self.power_box.setYRange(0.0, max(50.0, float(power.max()) * 1.1 if len(power) else 0.0), padding=0)
        self.power_box.setGeometry(item.vb.sceneBoundingRect())

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
        """A: take the incident (the operator's name is asked for once when it was never set)."""
        row = self.selected()
        if row is None:
            return
        by = ask_operator_name(self)
        if by is None:
            self.status.setText(f"#{row.id}: {tr('not acknowledged: no operator name')}")
            return
        self._write(lambda conn: engine.acknowledge(conn, row.id, by), tr("acknowledged"))

    def resolve(self) -> None:
        """R: resolve it."""
        row = self.selected()
        by = ask_operator_name(self) if row is not None else None
        if row is not None and by is not None:
            self._write(lambda conn: engine.resolve(conn, row.id, by), tr("resolved"))

    def note(self, text: str | None = None) -> None:
        """N: add a note (asked for when not given)."""
        row = self.selected()
        if row is None:
            return
        by = ask_operator_name(self)
        if by is None:
            return
        if text is None:
            text, ok = QInputDialog.getText(self, tr("Add note"), tr("Note for #%1").replace("%1", str(row.id)))
            if not ok:
                return
        note = text
        self._write(lambda conn: engine.add_note(conn, row.id, by, note), tr("note added"))

    def silence(self, minutes: int | None = None) -> None:
        """S: silence notifications for some minutes (asked for when not given)."""
        row = self.selected()
        if row is None:
            return
        by = ask_operator_name(self)
        if by is None:
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

    # ---- export -----------------------------------------------------------------------------------

    def _on_table_context_menu_requested(self, pos: QPoint) -> None:
        menu = QMenu(self)
        export = QAction(tr("Export CSV…"), menu)
        export.triggered.connect(lambda _checked=False: self.export_csv())
        menu.addAction(export)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def export_csv(self, path: str | None = None) -> str | None:
        """Export the incidents as shown (filters and order kept) to CSV; asks for the file when not given.
        Returns the path written, None when cancelled or failed (the reason is in the status line)."""
        if path is None:
            default = str(Path.home() / time.strftime("mixops-incidents-%Y%m%d-%H%M.csv"))
            path, _filter = QFileDialog.getSaveFileName(self, tr("Export CSV…"), default, tr("CSV files (*.csv)"))
            if not path:
                return None
            if not path.lower().endswith(".csv"):
                path += ".csv"
        header = ["id", tr("Opened"), *(tr(c) for c in COLUMNS), tr("Code"), tr("serial")]
        rows = [[str(r.id), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.opened_at)),
                 *(self.model.display(r, col) for col in range(len(COLUMNS))),
                 plain_text(r.code or ""), plain_text(r.serial or "")] for r in self.visible_rows()]
        try:
            write_csv(path, header, rows)
        except OSError as exc:
            self.status.setText(f"{tr('Not done')}: {path}: {exc.strerror or exc}")
            return None
        self.status.setText(tr("%1 incidents exported to %2").replace("%1", str(len(rows))).replace("%2", path))
        return path
