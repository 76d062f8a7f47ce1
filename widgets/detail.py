"""Card detail: history plots (last hour, 24 hours, 7 days) with the card's faults and limits marked.

The four plots share one time axis (linked, same left-axis width, so a moment lines up across them)
and keep a minimum span per metric, so a flat line looks flat (issue 15): utilization 0–100 %, memory
0 to the card's total, temperature up to the crit threshold, power from 0 up to the vendor's limit.
Node text (fault evidence) is escaped before it reaches Qt's rich-text tooltips (issue 16 #9).
"""

from __future__ import annotations

import html
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.incidents import Thresholds
from console.links import CardLink, read_card_links
from console.live import History, read_history, read_with
from widgets.axes import DateAxis, TickGrid
from widgets.common import Task, shown_duration
from widgets.i18n import tr
from widgets.incidents import escaped, plain_text

RANGES = (("1 h", 3600.0), ("24 h", 86400.0), ("7 d", 7 * 86400.0))
PLOTS = (("temperature_c", "Temperature", "°C"), ("utilization_pct", "Utilization", "%"),
         ("memory_used_mib", "Memory used", "MiB"), ("power_w", "Power", "W"))
RAW_S = 86400.0             # read_history keeps raw samples up to this range; beyond it, hourly rollups
LINK_COLUMNS = ("Kind", "Link", "State", "Speed", "Peer", "Counters (increase)", "Last change")
COL_LINK_COUNTERS = LINK_COLUMNS.index("Counters (increase)")
LEFT_AXIS_PX = 62           # the same tick width on every plot, so their x axes line up
LATE_S = 120.0              # the newest point older than this is said in the label (nothing drawn after it)
MIN_SPAN = {"temperature_c": 20.0, "utilization_pct": 100.0, "memory_used_mib": 1024.0, "power_w": 50.0}
FAULT_COLOUR = QColor(215, 48, 39)
WARN_COLOUR = QColor(244, 160, 40)
LIMIT_COLOUR = QColor(150, 150, 150)


@dataclass(frozen=True, slots=True)
class CardHistory:
    """What the detail draws for one range: the history, how much of it is rollups, and the card's total."""

    history: History
    seconds: float
    rollups: int                    # hourly averages among the points (the rest are raw samples)
    memory_total_mib: float | None
    links: list[CardLink] = field(default_factory=list)      # the card's links and its node's NICs


def read_card_history(conn: sqlite3.Connection, card_id: int, seconds: float,
                      now: float | None = None) -> CardHistory:
    """The range's history; beyond 24 h the hourly rollups plus the raw samples not rolled up yet.

    The raw part of the last day is read too: its timestamps tell the rollups from the raw tail, and
    its memory total is the card's (rollups do not keep the total).
    """
    history = read_history(conn, card_id, seconds, now)
    raw = history if seconds <= RAW_S else read_history(conn, card_id, RAW_S, history.end)
    rollups = 0
    if seconds > RAW_S and len(history.t):
        raw_ts = set(raw.t.tolist())
        rollups = sum(1 for t in history.t.tolist() if t not in raw_ts)
    totals = raw.metrics["memory_total_mib"]
    finite = totals[np.isfinite(totals)]
    total = float(finite[-1]) if len(finite) and finite[-1] > 0 else None
    links = read_card_links(conn, card_id, history.start, history.end)
    return CardHistory(history, seconds, rollups, total, links)


def card_history_from(history: History, seconds: float) -> CardHistory:
    """A history read elsewhere (range queries, `gui --prometheus`) as the detail draws it: the card's total
    memory from its newest finite point."""
    totals = history.metrics.get("memory_total_mib", np.array([]))
    finite = totals[np.isfinite(totals)]
    total = float(finite[-1]) if len(finite) and finite[-1] > 0 else None
    return CardHistory(history, seconds, 0, total)


def value_range(key: str, values: np.ndarray, limits: list[float], memory_total: float | None) -> tuple[float, float]:
    """The y range of one plot: the data and its limit lines, never narrower than the metric's minimum span."""
    finite = values[np.isfinite(values)] if len(values) else values
    lo_data = float(finite.min()) if len(finite) else None
    hi_data = float(finite.max()) if len(finite) else None
    if key == "utilization_pct":
        return 0.0, max(100.0, hi_data or 0.0)
    if key == "memory_used_mib":
        top = max(memory_total or 0.0, hi_data or 0.0)
        return 0.0, top * 1.03 if top > 0 else MIN_SPAN[key]
    if key == "power_w":
        top = max([hi_data or 0.0, *limits])
        return 0.0, max(top * 1.08, MIN_SPAN[key])
    # temperature: the data with a margin, up to just above the crit line, at least MIN_SPAN wide
    lo = 20.0 if lo_data is None else min(lo_data - 5.0, 20.0 if hi_data is None else hi_data - 5.0)
    hi = max([(hi_data or lo) + 5.0, *(v + 3.0 for v in limits)])
    if hi - lo < MIN_SPAN[key]:
        hi = lo + MIN_SPAN[key]
    return math.floor(max(lo, -40.0)), math.ceil(hi)


def status_text(data: CardHistory, label: str) -> str:
    """What the plots show, honestly: the span of history held, rollups and samples, faults, N/A."""
    h = data.history
    n = len(h.t)
    faults = f"{len(h.faults)} {tr('fault') if len(h.faults) == 1 else tr('faults')}"
    if n == 0:
        return f"{tr(label)}: {tr('no history in the database for this range')} · {faults}"
    first = float(h.t[0]) - (1800.0 if data.rollups else 0.0)     # a rollup point stands for its whole hour
    held = max(0.0, h.end - first)
    parts = [f"{tr(label)}: " + tr("%1 of history").replace("%1", shown_duration(held))]
    if held < data.seconds - max(600.0, 0.02 * data.seconds):
        parts[0] += f" ({tr('the database holds less than the range')})"
    quiet = h.end - float(h.t[-1])
    if quiet > LATE_S:
        parts[0] += f", {tr('last sample %1 ago').replace('%1', shown_duration(quiet))}"
    raw = n - data.rollups
    counts = []
    if data.rollups:
        counts.append(f"{data.rollups} {tr('hourly average') if data.rollups == 1 else tr('hourly averages')}")
    if raw:
        counts.append(f"{raw} {tr('sample') if raw == 1 else tr('samples')}")
    parts.append(" + ".join(counts))
    parts.append(faults)
    missing = int(n - np.isfinite(h.metrics["temperature_c"]).sum())
    if missing:
        parts.append(f"{missing} N/A")
    return " · ".join(parts)


def fault_tooltip(ts: float, code: str, message: str) -> str:
    """A fault marker's tooltip: Qt shows tooltips as rich text, so every node character is escaped."""
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    return f"<p style='white-space:pre-wrap'><b>{escaped(code)}</b> · {when}<br>{escaped(message)}</p>"


HistoryReader = Callable[[int, float], CardHistory]       # (card id, seconds) → the range, run in the pool


class CardDetail(QDialog):
    """History of one card; opened from a click in the room view.

    `thresholds` and `vendor` give the warn/crit temperature lines and the vendor's power limit; without
    them the defaults (85/95 °C) are drawn and no power limit. The history is read from the database at
    `db_path`, or, given `history` (`gui --prometheus`: range queries), by that callable in the pool.
    """

    loaded = Signal()

    def __init__(self, db_path: str | None, card_id: int, title: str, parent: QWidget | None = None,
                 pool: QThreadPool | None = None, *, vendor: str | None = None,
                 thresholds: Thresholds | None = None, history: HistoryReader | None = None) -> None:
        super().__init__(parent)
        if db_path is None and history is None:
            raise ValueError("CardDetail needs a database or a history reader")
        self.pool = pool or QThreadPool.globalInstance()
        self.db_path = db_path
        self.history_reader = history
        self.card_id = card_id
        self.vendor = vendor
        self.thresholds = thresholds or Thresholds()
        self.history: History | None = None
        self.data: CardHistory | None = None
        self.range_index = 0
        self.setWindowTitle(plain_text(title))
        self.resize(900, 720)
        self.header = QLabel(plain_text(title))
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.status = QLabel(tr("Loading…"))
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QHBoxLayout()
        self.group = QButtonGroup(self)
        for i, (label, _seconds) in enumerate(RANGES):
            b = QPushButton(tr(label))
            b.setCheckable(True)
            self.group.addButton(b, i)
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.status.setWordWrap(True)
        self.group.idClicked.connect(self.load_range)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.limit_lines: dict[str, list[pg.InfiniteLine]] = {}
        self.fault_lines: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []
        self.na_labels: dict[str, pg.TextItem] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        first: pg.PlotWidget | None = None
        for key, label, unit in PLOTS:
            w = pg.PlotWidget(axisItems={"bottom": DateAxis()})
            item = w.getPlotItem()
            left = item.getAxis("left")
            left.enableAutoSIPrefix(False)          # "80000 MiB", never "80 kMiB"
            w.setLabel("left", f"{tr(label)} ({tr(unit)})")
            left.setWidth(LEFT_AXIS_PX)
            if key == PLOTS[-1][0]:
                w.setLabel("bottom", tr("Time"))            # once, under the last plot: the axes are linked
            w.addItem(TickGrid(item), ignoreBounds=True)
            w.setMouseEnabled(x=True, y=False)
            item.hideButtons()
            if first is None:
                first = w
            else:
                w.setXLink(first)
            self.curves[key] = w.plot([], [], pen=pg.mkPen((80, 170, 255), width=1.5), connect="finite")
            na = pg.TextItem(tr("N/A (not reported)"), color=(160, 160, 160), anchor=(0.5, 0.5))
            na.setVisible(False)
            w.addItem(na, ignoreBounds=True)
            self.na_labels[key] = na
            self.limit_lines[key] = []
            self.plots[key] = w
            layout.addWidget(w, 1)
        # the card's links: QTableWidgetItem text is plain text, never rich text from node data
        self.links = QTableWidget(0, len(LINK_COLUMNS))
        self.links.setHorizontalHeaderLabels([tr(c) for c in LINK_COLUMNS])
        self.links.verticalHeader().setVisible(False)
        self.links.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.links.setMaximumHeight(140)
        layout.addWidget(self.links)
        self.group.button(0).setChecked(True)
        self.load_range(0)

    def show_card(self, card_id: int, title: str, vendor: str | None = None) -> None:
        """Show another card in this dialog (the window reuses closed details: building four plots costs
        the GUI thread ~150 ms, and pyqtgraph's teardown of them leaked references)."""
        self.card_id, self.vendor = card_id, vendor
        self.history = None
        self.data = None
        self.setWindowTitle(plain_text(title))
        self.header.setText(plain_text(title))
        self.group.button(0).setChecked(True)
        self.load_range(0)

    def _show_links(self, links: list[CardLink]) -> None:
        """One row per link: kind, link, state, speed, peer, counters' increase over the range, last change."""
        na = tr("N/A")
        self.links.clearSpans()
        if not links:                        # said, not an empty grid that reads as "still loading"
            self.links.setRowCount(1)
            self.links.setItem(0, 0, QTableWidgetItem(tr("no links reported")))
            self.links.setSpan(0, 0, 1, self.links.columnCount())
            return
        self.links.setRowCount(len(links))
        for r, x in enumerate(links):
            # a counter's name in the UI language ("link counter: crc_errors" in the catalogue), the name as the
            # vendor tool prints it in the cell's tooltip (what an operator greps the tool's output for)
            counters = ", ".join(f"{tr(k, 'link counter')} +{v}" for k, v in x.counters.items()) or "—"
            raw = ", ".join(f"{k} +{v}" for k, v in x.counters.items())
            cells = (x.kind, x.link, tr(x.state, "link"), na if x.speed_gbps is None else f"{x.speed_gbps:g} Gb/s",
                     x.peer or na, counters,
                     na if x.last_change is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(x.last_change)))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == COL_LINK_COUNTERS and raw and raw != text:
                    # a tooltip is rich text when it looks like it, and the names come from node text: escaped
                    item.setToolTip(f"<p style='white-space:pre'>{html.escape(raw)}</p>")
                self.links.setItem(r, c, item)
        self.links.resizeColumnsToContents()

    def load_range(self, which: int) -> None:
        """Read the chosen range in the background; plots update when it arrives."""
        self.range_index = which
        seconds = RANGES[which][1]
        self.status.setText(tr("Loading…"))
        path, card, reader = self.db_path, self.card_id, self.history_reader
        if reader is not None:
            loader = Task(lambda: reader(card, seconds))
        else:
            assert path is not None
            loader = Task(lambda: read_with(path, lambda conn: read_card_history(conn, card, seconds)))
        loader.signals.done.connect(self.show_history)
        loader.signals.failed.connect(self.status.setText)
        loader.start(self.pool)

    def _limits(self, key: str, memory_total: float | None) -> list[tuple[float, str, QColor]]:
        """The horizontal lines of one plot: (value, label, colour)."""
        if key == "temperature_c":
            warn, crit = self.thresholds.temp_limits(self.vendor)
            return [(warn, f"{tr('warn')} {warn:g} °C", WARN_COLOUR), (crit, f"{tr('crit')} {crit:g} °C", FAULT_COLOUR)]
        if key == "memory_used_mib" and memory_total:
            return [(memory_total, f"{tr('total')} {memory_total:g} MiB", LIMIT_COLOUR)]
        if key == "power_w":
            limit = self.thresholds.power_warn_w.get(self.vendor or "")
            if limit:
                return [(limit, f"{tr('power limit')} {limit:g} W", WARN_COLOUR)]
        return []

    def show_history(self, data: object) -> None:
        """Draw the plots, the limit lines and the fault markers."""
        if isinstance(data, History):                  # a plain History (older callers): no rollup count
            data = CardHistory(data, data.end - data.start, 0, None)
        if not isinstance(data, CardHistory) or data.history.card_id != self.card_id:
            return                                      # a late answer for the card shown before
        self.data = data
        history = self.history = data.history
        self._show_links(data.links)
        # Lines are kept and reused (shown, moved, hidden): creating and removing pyqtgraph items for
        # every load cost GUI time and leaked references over a shift.
        for _w, line in self.fault_lines:
            line.setVisible(False)
        used = 0
        for key, w in self.plots.items():
            y = history.metrics[key]
            has_values = bool(len(y)) and bool(np.isfinite(y).any())
            self.curves[key].setData(history.t, y, connect="finite")
            limits = self._limits(key, data.memory_total_mib)
            pool = self.limit_lines[key]
            while len(pool) < len(limits):
                # each line's label further along, so warn and crit lines close together do not overprint
                line = pg.InfiniteLine(pos=0.0, angle=0, label="",
                                       labelOpts={"position": 0.02 + 0.18 * len(pool), "anchors": [(0, 0), (0, 0)],
                                                  "fill": (0, 0, 0, 170)})
                w.addItem(line)
                pool.append(line)
            for k, line in enumerate(pool):
                if k >= len(limits):
                    line.setVisible(False)
                    continue
                value, label, colour = limits[k]
                line.setPen(pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
                line.setValue(value)
                line.label.setFormat(label.replace("{", "{{").replace("}", "}}"))
                line.label.setColor(colour)
                line.setVisible(True)
            for ts, code, message in history.faults:
                if used >= len(self.fault_lines):
                    line = pg.InfiniteLine(pos=ts, angle=90, pen=pg.mkPen(FAULT_COLOUR, width=1.5), label="",
                                           labelOpts={"position": 0.9, "color": FAULT_COLOUR, "fill": (0, 0, 0, 170)})
                    self.fault_lines.append((w, line))
                    w.addItem(line)
                owner, line = self.fault_lines[used]
                if owner is not w:                      # a pooled line of another plot: move it here
                    owner.removeItem(line)
                    w.addItem(line)
                    self.fault_lines[used] = (w, line)
                used += 1
                safe_code = plain_text(code).replace("{", "{{").replace("}", "}}")   # the label is a format string
                line.setValue(ts)
                line.label.setFormat(safe_code if key == "temperature_c" else "")
                line.setToolTip(fault_tooltip(ts, code, message))
                line.setVisible(True)
            lo, hi = value_range(key, y, [v for v, _l, _c in limits], data.memory_total_mib)
            w.setYRange(lo, hi, padding=0.02)
            w.setXRange(history.start, history.end, padding=0.01)
            na = self.na_labels[key]
            na.setVisible(not has_values)
            na.setPos((history.start + history.end) / 2, (lo + hi) / 2)
        label = next((name for name, seconds in RANGES if seconds == data.seconds), RANGES[self.range_index][0])
        self.status.setText(status_text(data, label))
        self.loaded.emit()
