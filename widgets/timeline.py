"""Continuity timeline: one lane per training job over up to 30 days (pyqtgraph, date axis).

Each lane draws the job's stored segments (running, checkpointing, stalled, down, resuming), a tick per
committed checkpoint and a marker per P1/P2 incident of the job (and per cause without an incident);
hovering names what is under the cursor, in that order: a marker, an outage (down, stalled, resuming),
a checkpoint tick, the segment. The lane labels sit in their own column left of the plot, with the
job against the field's goals: resume ≤ 10 min, 15 days without interruption, ETTR ≥ 90 %.

Drawing is one bar item per segment kind (one shared brush each), one tick item, one marker item, a
"now" line and the label items, all made once and fed new arrays when a snapshot arrives. An outage
is drawn at least `MIN_OUTAGE_PX` wide at every zoom, so a 3-minute stop stays visible at 30 days.
Text and background colours come from the widget's palette (light or dark theme).
"""

from __future__ import annotations

import bisect
import html
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from console.continuity import goals
from console.jobview import JobRow
from widgets.axes import DateAxis, TickGrid
from widgets.common import shown_duration
from widgets.i18n import tr, vendor_mix

SEGMENT_COLOURS = {"running": (26, 152, 80), "checkpointing": (69, 117, 180), "stalled": (253, 174, 97),
                   "down": (215, 48, 39), "resuming": (171, 110, 200)}
# drawn in this order, so an outage widened to its minimum width lies on top of the running around it
DRAW_ORDER = ("other", "running", "checkpointing", "resuming", "stalled", "down")
OUTAGES = ("down", "stalled", "resuming")           # pick priority among overlapping outages
BRUSHES = {kind: pg.mkBrush(*rgb) for kind, rgb in SEGMENT_COLOURS.items()} | {"other": pg.mkBrush(150, 150, 150)}
NO_PEN = pg.mkPen(None)
NO_BRUSH = pg.mkBrush(None)
MARKER_BRUSH = pg.mkBrush(215, 48, 39)
RANGE_S = 30 * 86400.0
DEFAULT_VIEW_S = 15 * 86400.0
RANGES = (("6 h", 6 * 3600.0), ("24 h", 86400.0), ("7 d", 7 * 86400.0), ("15 d", 15 * 86400.0),
          ("30 d", 30 * 86400.0))
DEFAULT_RANGE = "15 d"
FIT = "Fit"
RIGHT_MARGIN = 0.02         # of the span, right of the now line
TOP = -0.9                  # view y of the plot's top: a strip above the first lane for the now label
LANE_H = 0.6                # bar height; lanes are 1 apart
TICK_DY = LANE_H / 2 + 0.08     # tick row above the bar
MARK_DY = LANE_H / 2 + 0.12     # marker row below the bar
MIN_OUTAGE_PX = 4.0         # an outage is never narrower than this on screen
MARKER_PICK_PX = 8.0        # a marker is under the mouse within this distance of its centre
SEGMENT_PICK_PX = 2.0       # an outage is picked this far beside its drawn edges
TICK_PICK_PX = 4.0          # a tick is picked within this, once ticks are TICK_SPARSE_PX apart
TICK_SPARSE_PX = 10.0
MAX_LANE_PX = 120           # a lane is at most this tall on screen
LABEL_W = 250               # the label column, in pixels
NOW_REFRESH_MS = 5000


def _fmt_time(ts: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(ts))


def goal_parts(row: JobRow) -> list[str]:
    """`worst resume 12 min ✓`, `longest run 4.3 d ✗`, `ETTR 93.1 % ✓` (N/A and – where nothing to judge)."""
    g = goals(row.model)
    mark = {True: "✓", False: "✗", None: "–"}
    ttrs = [i.time_to_resume_s for i in row.model.interruptions if i.time_to_resume_s is not None]
    ettr = "N/A" if row.model.ettr is None else f"{100 * row.model.ettr:.1f} %"
    return [f"{tr('worst resume')} {shown_duration(max(ttrs) if ttrs else None)} {mark[g['ttr_le_10_min']]}",
            f"{tr('longest run')} {shown_duration(row.model.longest_run_s)} {mark[g['15_days_uninterrupted']]}",
            f"ETTR {ettr} {mark[g['ettr_ge_90']]}"]


def goal_text(row: JobRow) -> str:
    """The goals of one job on one line."""
    return " · ".join(goal_parts(row))


@dataclass(frozen=True, slots=True)
class Pick:
    """What the mouse is over: `kind` marker | outage | tick | segment | none, in one lane."""

    kind: str
    lane: int
    ts: float = 0.0                 # marker or tick time
    end: float = 0.0
    segment: str = ""               # segment kind
    text: str = ""                  # marker text
    step: int = 0                   # tick step


@dataclass(slots=True)
class _Lane:
    # the lane's segments in two sorted layers that do not overlap within themselves: the states
    # (running, outages) and the checkpoint saves drawn thin inside them
    starts: list[float] = field(default_factory=list)
    segments: list[tuple[str, float, float]] = field(default_factory=list)
    save_starts: list[float] = field(default_factory=list)
    saves: list[tuple[str, float, float]] = field(default_factory=list)
    outages: list[tuple[str, float, float]] = field(default_factory=list)
    ticks: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    markers: list[tuple[float, str]] = field(default_factory=list)      # sorted by time


def drawn_extent(a: float, b: float, px: float) -> tuple[float, float]:
    """Where an outage [a, b] is drawn when one pixel is `px` seconds: at least MIN_OUTAGE_PX wide, centred."""
    width = MIN_OUTAGE_PX * px
    if b - a >= width:
        return a, b
    mid = (a + b) / 2
    return mid - width / 2, mid + width / 2


class TimelineView(QWidget):
    """The lanes; `job_selected` when a lane is clicked."""

    job_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[JobRow] = []
        self.now = time.time()
        self._now_wall = time.time()            # wall clock when `now` was set: the now line moves on from it
        self.preset: str | None = DEFAULT_RANGE     # the range button in force; None once wheel/drag moved it
        self._lanes: list[_Lane] = []
        self._bar_data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._bar_px = 0.0                      # seconds per pixel the outage widths were made for
        self._label_level = -1
        self._applying_range = False

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.ci.layout.setContentsMargins(0, 0, 4, 0)
        self.canvas.ci.layout.setHorizontalSpacing(0)
        self.label_box = pg.ViewBox(enableMouse=False, enableMenu=False, invertY=True)
        self.label_box.setMinimumWidth(LABEL_W)
        self.label_box.setMaximumWidth(LABEL_W)
        self.label_box.setXRange(0, 1, padding=0)
        self.plot = pg.PlotItem(axisItems={"bottom": DateAxis()})
        self.canvas.addItem(self.label_box, 0, 0)
        self.canvas.addItem(self.plot, 0, 1)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.addItem(TickGrid(self.plot, y=False, alpha=0.15), ignoreBounds=True)
        self.plot.getAxis("left").setWidth(6)
        self.plot.getAxis("left").setStyle(showValues=False, tickLength=0)
        self.plot.getAxis("left").setTicks([[], []])
        vb = self.plot.getViewBox()
        vb.invertY(True)
        self.label_box.setYLink(vb)

        self.bars: dict[str, pg.BarGraphItem] | None = None
        self._bar_items = {kind: pg.BarGraphItem(x0=np.zeros(0), x1=np.zeros(0), y0=np.zeros(0), height=np.zeros(0),
                                                 brush=BRUSHES[kind], pen=NO_PEN) for kind in DRAW_ORDER}
        for z, kind in enumerate(DRAW_ORDER):
            self._bar_items[kind].setZValue(z)
            self.plot.addItem(self._bar_items[kind])
        self._tick_pen = pg.mkPen(69, 117, 180)
        self.ticks = pg.ScatterPlotItem(symbol="|", size=8, pen=self._tick_pen, brush=NO_BRUSH)
        self.markers = pg.ScatterPlotItem(symbol="t", size=11, pen=pg.mkPen(120, 0, 0), brush=MARKER_BRUSH)
        self.ticks.setZValue(10)
        self.markers.setZValue(11)
        self.plot.addItem(self.ticks)
        self.plot.addItem(self.markers)
        self._now_pen = pg.mkPen(40, 40, 40, width=1.5, style=Qt.PenStyle.DashLine)
        self.now_line = pg.InfiniteLine(self.now, angle=90, movable=False, pen=self._now_pen, label=tr("now"),
                                        labelOpts={"position": 0.02, "anchors": [(1, 0), (1, 0)]})
        self.now_line.setZValue(12)
        self.plot.addItem(self.now_line, ignoreBounds=True)
        self.labels: list[pg.TextItem] = []
        self._label_html: list[str] = []
        self.highlight = pg.LinearRegionItem(orientation="horizontal", movable=False,
                                             brush=pg.mkBrush(255, 220, 90, 70), pen=NO_PEN)
        self.highlight.setZValue(-10)
        self.highlight.hide()
        self.plot.addItem(self.highlight, ignoreBounds=True)

        self.hover = QLabel()
        self.hover.setTextFormat(Qt.TextFormat.RichText)
        self.hover.setWordWrap(True)
        # room for a stop's three lines, so the plot does not jump as the mouse moves
        self.hover.setMinimumHeight(3 * self.hover.fontMetrics().lineSpacing())
        self.hover.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.range_buttons: dict[str, QToolButton] = {}
        self._range_group = QButtonGroup(self)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.legend, 1)
        for name in [r[0] for r in RANGES] + [FIT]:
            button = QToolButton()
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _checked=False, n=name: self.set_range(n))
            self._range_group.addButton(button)
            self.range_buttons[name] = button
            top.addWidget(button)
        self.range_buttons[DEFAULT_RANGE].setChecked(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.hover)
        self._retranslate()
        self._apply_palette()

        self.canvas.scene().sigMouseMoved.connect(self._moved)
        self.canvas.scene().sigMouseClicked.connect(self._clicked)
        vb.sigXRangeChanged.connect(self._on_view_x_range_changed)
        vb.sigYRangeChanged.connect(self._on_view_y_range_changed)
        vb.sigResized.connect(self._on_view_resized)
        vb.sigRangeChangedManually.connect(self._on_view_range_changed_manually)
        self.clock = QTimer(self)
        self.clock.timeout.connect(self.advance_now)
        self.clock.start(NOW_REFRESH_MS)

    # ---- data -------------------------------------------------------------------------------------

    def set_rows(self, rows: list[JobRow], now: float) -> None:
        """Redraw every lane from a snapshot's jobs (the items stay; their data is replaced)."""
        self.rows, self.now, self._now_wall = list(rows), now, time.time()
        bars: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {
            k: ([], [], [], []) for k in DRAW_ORDER}
        tick_x: list[float] = []
        tick_y: list[float] = []
        mark_x: list[float] = []
        mark_y: list[float] = []
        mark_data: list[str] = []
        self._lanes = []
        start = now - RANGE_S
        for lane, row in enumerate(self.rows):
            info = _Lane()
            segs = sorted(((s.kind, max(s.start, start), now if s.end is None else s.end)
                           for s in row.model.segments if (s.end is None or s.end >= start)),
                          key=lambda s: s[1])
            for kind, a, b in segs:
                key = kind if kind in BRUSHES else "other"
                thin = kind == "checkpointing"
                x0, x1, y0, h = bars[key]
                x0.append(a)
                x1.append(max(b, a + 1.0))
                y0.append(lane - (LANE_H / 2 if not thin else LANE_H / 6))
                h.append(LANE_H if not thin else LANE_H / 3)
                if kind in OUTAGES:
                    info.outages.append((kind, a, b))
            info.segments = [s for s in segs if s[0] != "checkpointing"]
            info.starts = [s[1] for s in info.segments]
            info.saves = [s for s in segs if s[0] == "checkpointing"]
            info.save_starts = [s[1] for s in info.saves]
            for ts, step in row.checkpoints:
                info.ticks.append(ts)
                info.steps.append(step)
                tick_x.append(ts)
                tick_y.append(lane - TICK_DY)
            marks = [(m.ts, f"{html.escape(m.severity)} · {html.escape(m.title)}") for m in row.markers]
            for i in row.model.interruptions:      # a cause without an incident of its own gets a marker too
                if i.cause and not any(abs(i.detected_at - m.ts) < 120 for m in row.markers):
                    marks.append((i.detected_at, f"{tr('cause')}: {html.escape(i.cause[:160])}"))
            info.markers = sorted(marks)
            for ts, text in info.markers:
                mark_x.append(ts)
                mark_y.append(lane + MARK_DY)
                mark_data.append(text)
            self._lanes.append(info)
        self._bar_data = {}
        for kind, (x0, x1, y0, h) in bars.items():
            self._bar_data[kind] = (np.asarray(x0, dtype=np.float64), np.asarray(x1, dtype=np.float64),
                                    np.asarray(y0, dtype=np.float64), np.asarray(h, dtype=np.float64))
        self._bar_px = 0.0
        self.bars = dict(self._bar_items) if any(len(d[0]) for d in self._bar_data.values()) else None
        self.ticks.setData(tick_x, tick_y)
        self.markers.setData(mark_x, mark_y, data=mark_data)
        self._sync_labels()
        vb = self.plot.getViewBox()
        vb.setLimits(xMin=start, xMax=now + RIGHT_MARGIN * RANGE_S, minXRange=600.0,
                     maxXRange=(1 + RIGHT_MARGIN) * RANGE_S)
        self._fit_lanes()
        self.now_line.setValue(now)
        if self.preset is not None:
            self._apply_preset()
        self._update_bars(force=True)
        self._place_labels()

    def current_now(self) -> float:
        """The snapshot's now, moved on by the wall time since it arrived."""
        return self.now + max(0.0, time.time() - self._now_wall)

    def advance_now(self, now: float | None = None) -> None:
        """Move the now line to `now` (default: the clock); a view that follows a range button follows it."""
        at = self.current_now() if now is None else now
        self.now_line.setValue(at)
        if self.preset is not None and self.rows:
            self._apply_preset(at)

    # ---- range ------------------------------------------------------------------------------------

    def set_range(self, name: str) -> None:
        """Show the last `name` ("6 h" … "30 d") up to now, or all the data ("Fit"); the view then follows now."""
        self.preset = name
        button = self.range_buttons.get(name)
        if button is not None and not button.isChecked():
            button.setChecked(True)
        self._apply_preset()

    def _apply_preset(self, now: float | None = None) -> None:
        at = self.now_line.value() if now is None else now
        spans = dict(RANGES)
        if self.preset == FIT:
            first = [lane.starts[0] for lane in self._lanes if lane.starts]
            first += [lane.ticks[0] for lane in self._lanes if lane.ticks]
            first += [lane.markers[0][0] for lane in self._lanes if lane.markers]
            span = min(RANGE_S, max(3600.0, at - min(first))) if first else DEFAULT_VIEW_S
        else:
            span = spans.get(self.preset or "", DEFAULT_VIEW_S)
        self._applying_range = True
        try:
            self.plot.getViewBox().setXRange(at - span, at + RIGHT_MARGIN * span, padding=0)
        finally:
            self._applying_range = False

    def _clear_preset(self) -> None:
        self.preset = None
        checked = self._range_group.checkedButton()
        if checked is not None:
            self._range_group.setExclusive(False)
            checked.setChecked(False)
            self._range_group.setExclusive(True)

    def _on_view_range_changed_manually(self, *_args: Any) -> None:
        if not self._applying_range:
            self._clear_preset()

    def _on_view_x_range_changed(self, *_args: Any) -> None:
        self._update_bars()

    def _on_view_y_range_changed(self, *_args: Any) -> None:
        self._place_labels()

    def _on_view_resized(self, *_args: Any) -> None:
        self._fit_lanes()
        self._update_bars()
        self._place_labels()

    def _fit_lanes(self) -> None:
        """All lanes in view from the top, none taller than MAX_LANE_PX (a few jobs do not make fat bars)."""
        vb = self.plot.getViewBox()
        lanes = float(max(1, len(self.rows)))
        if vb.height() > 1:
            lanes = max(lanes, vb.height() / MAX_LANE_PX)
        if vb.viewRange()[1] != [TOP, lanes - 0.4]:
            vb.setLimits(yMin=TOP, yMax=lanes - 0.4)
            vb.setYRange(TOP, lanes - 0.4, padding=0)

    # ---- drawing ----------------------------------------------------------------------------------

    def seconds_per_pixel(self) -> float:
        """The x scale of the plot now (a guess from the range while the view has no size yet)."""
        vb = self.plot.getViewBox()
        (x0, x1), _ = vb.viewRange()
        width = vb.width()
        return (x1 - x0) / width if width > 1 else (x1 - x0) / 800.0

    def lane_pixels(self) -> float:
        """The height of one lane on screen."""
        vb = self.plot.getViewBox()
        _, (y0, y1) = vb.viewRange()
        return vb.height() / (y1 - y0) if vb.height() > 1 and y1 > y0 else 0.0

    def _update_bars(self, force: bool = False) -> None:
        """Feed the bars, widening each outage to MIN_OUTAGE_PX at the current zoom (only when it changed)."""
        if not self._bar_data:
            return
        px = self.seconds_per_pixel()
        if not force and self._bar_px > 0 and abs(px / self._bar_px - 1.0) < 0.02:
            return
        self._bar_px = px
        width = MIN_OUTAGE_PX * px
        for kind, (x0, x1, y0, h) in self._bar_data.items():
            if kind in OUTAGES and len(x0):
                mid = (x0 + x1) / 2
                narrow = (x1 - x0) < width
                x0 = np.where(narrow, mid - width / 2, x0)
                x1 = np.where(narrow, mid + width / 2, x1)
            self._bar_items[kind].setOpts(x0=x0, x1=x1, y0=y0, height=h)

    def drawn_bars(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """The x extents the bars of one kind are drawn with now (tests read them)."""
        opts = self._bar_items[kind].opts
        return np.asarray(opts["x0"]), np.asarray(opts["x1"])

    def _lane_label(self, row: JobRow, level: int) -> str:
        fg = self.palette().color(QPalette.ColorRole.WindowText)
        colour = "#1a9850" if row.state == "running" else "#4575b4" if row.state == "finished" else "#d73027"
        if fg.lightness() > 128:            # dark theme: lighter shades of the same hues
            colour = "#66bd63" if row.state == "running" else "#74add1" if row.state == "finished" else "#f46d43"
        head = (f"<b>{html.escape(row.name)}</b> <span style='color:{colour}'>{html.escape(tr(row.state))}</span>")
        if level == 0:
            return head
        parts = [html.escape(p) for p in goal_parts(row)]
        if level == 1:
            return head + "<br>" + " · ".join(parts)
        vendors = f"<br>{html.escape(vendor_mix(row.mix))}" if row.mix else ""
        return head + vendors + "<br>" + "<br>".join(parts)

    def _sync_labels(self) -> None:
        """One label item per lane, made once and reused; the text follows the lane's height on screen."""
        while len(self.labels) < len(self.rows):
            item = pg.TextItem(anchor=(0, 0.5), color=self.palette().color(QPalette.ColorRole.WindowText))
            item.setTextWidth(LABEL_W - 10)
            self.label_box.addItem(item, ignoreBounds=True)
            self.labels.append(item)
            self._label_html.append("")
        while len(self.labels) > len(self.rows):
            self.label_box.removeItem(self.labels.pop())
            self._label_html.pop()
        lane_px = self.lane_pixels()
        line_px = self.fontMetrics().height()
        level = 2 if lane_px >= 6 * line_px else 1 if lane_px >= 3 * line_px else 0
        self._label_level = level
        for lane, (item, row) in enumerate(zip(self.labels, self.rows, strict=True)):
            text = f"<div style='font-size:8pt'>{self._lane_label(row, level)}</div>"
            if text != self._label_html[lane]:
                item.setHtml(text)
                item.setToolTip(f"{row.name} · {tr(row.state)}\n{vendor_mix(row.mix)}\n" + "\n".join(goal_parts(row)))
                self._label_html[lane] = text
            item.setPos(6.0 / LABEL_W, lane)

    def _place_labels(self) -> None:
        lane_px = self.lane_pixels()
        line_px = self.fontMetrics().height()
        level = 2 if lane_px >= 6 * line_px else 1 if lane_px >= 3 * line_px else 0
        if level != self._label_level and self.rows:
            self._sync_labels()

    def _apply_palette(self) -> None:
        """Background, axes, labels and the now line from the palette; ticks lighter on a dark background."""
        pal = self.palette()
        base, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        dark = base.lightness() < 128
        self.canvas.setBackground(base)
        axis_pen = pg.mkPen(pal.color(QPalette.ColorRole.Mid))
        text_pen = pg.mkPen(fg)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(axis_pen)
            self.plot.getAxis(axis).setTextPen(text_pen)
        self._tick_pen = pg.mkPen(116, 173, 209) if dark else pg.mkPen(69, 117, 180)
        self.ticks.setPen(self._tick_pen)
        self.markers.setPen(pg.mkPen(255, 220, 210) if dark else pg.mkPen(120, 0, 0))
        self._now_pen = pg.mkPen(fg, width=1.5, style=Qt.PenStyle.DashLine)
        self.now_line.setPen(self._now_pen)
        self.now_line.label.setColor(fg)
        highlight = QColor(pal.color(QPalette.ColorRole.Highlight))
        highlight.setAlpha(45)
        self.highlight.setBrush(pg.mkBrush(highlight))
        for item in self.labels:
            item.setColor(fg)
        self._label_html = [""] * len(self.labels)
        if self.rows:
            self._sync_labels()

    def _retranslate(self) -> None:
        legend = " ".join(f"<span style='color:rgb{c}'>■</span> {html.escape(tr(k))}" for k, c in SEGMENT_COLOURS.items())
        self.legend.setText(legend + " &nbsp; <span style='color:rgb(69,117,180)'>|</span> " + html.escape(tr("checkpoint"))
                            + " &nbsp; <span style='color:#d73027'>▼</span> " + html.escape(tr("incident"))
                            + " &nbsp; ┆ " + html.escape(tr("now")))
        self.hover.setText(tr("Hover a lane for details · drag to pan · wheel to zoom (up to 30 days)"))
        for name, button in self.range_buttons.items():
            button.setText(tr(name))
            button.setToolTip(tr("Show the whole history") if name == FIT else tr("Show the last") + " " + tr(name))
        self.now_line.label.setFormat(tr("now"))
        self._label_html = [""] * len(self.labels)
        if self.rows:
            self._sync_labels()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        elif event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    # ---- interaction ------------------------------------------------------------------------------

    def show_job(self, name: str, at: float | None = None) -> bool:
        """Highlight a job's lane; with `at`, centre the view on that time (6 h either side)."""
        lane = next((i for i, r in enumerate(self.rows) if r.name == name), None)
        if lane is None:
            return False
        self.highlight.setRegion((lane - 0.5, lane + 0.5))
        self.highlight.show()
        if at is not None:
            self._clear_preset()
            self.plot.getViewBox().setXRange(at - 6 * 3600.0, at + 6 * 3600.0, padding=0)
        return True

    def pick(self, x: float, y: float) -> Pick | None:
        """What is under view coordinates (x, y), by priority: a marker under the mouse, an outage drawn
        there, a checkpoint tick (within a few pixels once ticks are apart, else exactly under the cursor
        on the tick row), the segment; None outside the lanes."""
        lane = int(round(y))
        if not 0 <= lane < len(self._lanes):
            return None
        info = self._lanes[lane]
        px = self.seconds_per_pixel()
        py_px = self.lane_pixels() or 100.0          # pixels per lane
        k = bisect.bisect_left(info.markers, (x - MARKER_PICK_PX * px, ""))
        dy_mark = abs(y - (lane + MARK_DY)) * py_px
        best: tuple[float, float, str] | None = None
        for ts, text in info.markers[k:]:
            if ts > x + MARKER_PICK_PX * px:
                break
            dist = ((ts - x) / px) ** 2 + dy_mark ** 2
            if dist <= MARKER_PICK_PX ** 2 and (best is None or dist < best[0]):
                best = (dist, ts, text)
        if best is not None:
            return Pick("marker", lane, ts=best[1], text=best[2])
        on_bar = abs(y - lane) * py_px <= LANE_H / 2 * py_px + SEGMENT_PICK_PX
        if on_bar:
            outage: tuple[float, int, str, float, float] | None = None
            for kind, a, b in info.outages:
                lo, hi = drawn_extent(a, b, px)
                gap = max(0.0, lo - x, x - hi) / px
                if gap <= SEGMENT_PICK_PX:
                    key = (gap, OUTAGES.index(kind), kind, a, b)
                    if outage is None or key[:2] < outage[:2]:
                        outage = key
            if outage is not None:
                return Pick("outage", lane, ts=outage[3], end=outage[4], segment=outage[2])
        if info.ticks:
            j = bisect.bisect_left(info.ticks, x)
            near = [i for i in (j - 1, j) if 0 <= i < len(info.ticks)]
            i = min(near, key=lambda n: abs(info.ticks[n] - x))
            gaps = [abs(info.ticks[n] - info.ticks[i]) for n in (i - 1, i + 1) if 0 <= n < len(info.ticks)]
            sparse = not gaps or min(gaps) / px >= TICK_SPARSE_PX
            on_row = abs(y - (lane - TICK_DY)) * py_px <= 5.0
            dx_px = abs(info.ticks[i] - x) / px
            if (sparse and dx_px <= TICK_PICK_PX) or (on_row and dx_px <= 0.5):
                return Pick("tick", lane, ts=info.ticks[i], step=info.steps[i])
        seg = None
        for starts, layer in ((info.save_starts, info.saves), (info.starts, info.segments)):
            k = bisect.bisect_right(starts, x) - 1
            seg = next((layer[i] for i in range(k, max(-1, k - 4), -1) if layer[i][1] <= x <= layer[i][2]), None)
            if seg is not None:
                break
        if seg is None:
            return Pick("none", lane)
        return Pick("segment", lane, ts=seg[1], end=seg[2], segment=seg[0])

    def describe(self, x: float, y: float) -> str | None:
        """The hover text for view coordinates (x, y): a marker, a segment with its stop, or a checkpoint."""
        hit = self.pick(x, y)
        if hit is None:
            return None
        row = self.rows[hit.lane]
        name = f"<b>{html.escape(row.name)}</b>"
        if hit.kind == "marker":
            return f"{name} · {_fmt_time(hit.ts)} · {hit.text}"
        if hit.kind == "tick":
            return f"{name} · {tr('checkpoint')} {tr('step')} {hit.step:,} · {_fmt_time(hit.ts)}"
        if hit.kind == "none":
            return f"{name} · {tr('no data')}"
        kind, a, b = hit.segment, hit.ts, hit.end
        rgb = SEGMENT_COLOURS.get(kind, (150, 150, 150))
        text = (f"{name} · <span style='color:rgb{rgb}'>{html.escape(tr(kind))}</span> "
                f"{_fmt_time(a)} → {_fmt_time(b)} ({shown_duration(b - a)})")
        for i in row.model.interruptions:
            end = i.resumed_at if i.resumed_at is not None else self.now
            if (i.stopped_at <= b and a <= end) if hit.kind == "outage" else (i.stopped_at <= x <= end):
                lost = "N/A" if i.lost_steps is None else f"{i.lost_steps:,}"
                text += (f"<br>{tr('stopped at step %1').replace('%1', f'{i.last_step:,}')} · {tr('detected after')} "
                         f"{shown_duration(i.time_to_detect_s)} · {tr('resumed after')} "
                         f"{shown_duration(i.time_to_resume_s)} · {tr('lost work')} {lost} {tr('steps')} "
                         f"({shown_duration(i.lost_s)})")
                if i.cause:
                    text += f"<br>{tr('cause')}: {html.escape(i.cause[:200])}"
                break
        return text

    def _moved(self, pos: QPointF) -> None:
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        text = self.describe(p.x(), p.y())
        if text is not None:
            self.hover.setText(text)

    def _clicked(self, event: Any) -> None:
        p = self.plot.getViewBox().mapSceneToView(event.scenePos())
        lane = int(round(p.y()))
        if 0 <= lane < len(self.rows):
            self.show_job(self.rows[lane].name)
            self.job_selected.emit(self.rows[lane].name)
