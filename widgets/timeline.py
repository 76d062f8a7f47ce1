"""Continuity timeline: one lane per training job over up to 30 days (pyqtgraph, date axis).

Each lane draws the job's stored segments (running, checkpointing, stalled, down, resuming), a tick per
committed checkpoint and a marker per P1/P2 incident of the job; hovering names what is under the
cursor. The lane's label shows the job against the field's goals: resume ≤ 10 min, 15 days without
interruption, ETTR ≥ 90 %. Drawing is three items for all lanes (bars, ticks, markers), rebuilt from
numpy arrays when a snapshot arrives.
"""

from __future__ import annotations

import bisect
import html
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from console.continuity import goals
from console.fmt import duration
from console.jobview import JobRow
from widgets.i18n import tr

SEGMENT_COLOURS = {"running": (26, 152, 80), "checkpointing": (69, 117, 180), "stalled": (253, 174, 97),
                   "down": (215, 48, 39), "resuming": (171, 110, 200)}
BRUSHES = {kind: pg.mkBrush(*rgb) for kind, rgb in SEGMENT_COLOURS.items()}
OTHER_BRUSH = pg.mkBrush(150, 150, 150)
NO_PEN = pg.mkPen(None)
RANGE_S = 30 * 86400.0
DEFAULT_VIEW_S = 15 * 86400.0
LANE_H = 0.6


def _fmt_time(ts: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(ts))


def goal_text(row: JobRow) -> str:
    """`TTR ≤ 10 min ✓ · 15 d ✗ · ETTR 93.1 % ✓` for one job (N/A where there is nothing to judge)."""
    g = goals(row.model)
    mark = {True: "✓", False: "✗", None: "–"}
    ttrs = [i.time_to_resume_s for i in row.model.interruptions if i.time_to_resume_s is not None]
    ettr = "N/A" if row.model.ettr is None else f"{100 * row.model.ettr:.1f} %"
    return (f"{tr('worst resume')} {duration(max(ttrs) if ttrs else None)} {mark[g['ttr_le_10_min']]} · "
            f"{tr('longest run')} {duration(row.model.longest_run_s)} {mark[g['15_days_uninterrupted']]} · "
            f"ETTR {ettr} {mark[g['ettr_ge_90']]}")


class TimelineView(QWidget):
    """The lanes; `job_selected` when a lane is clicked."""

    job_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[JobRow] = []
        self.now = time.time()
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setBackground("w")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(pg.mkPen(90, 90, 90))
            self.plot.getAxis(axis).setTextPen(pg.mkPen(40, 40, 40))
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.getAxis("left").setWidth(8)
        self.plot.getAxis("left").setStyle(showValues=False)
        self.plot.getViewBox().invertY(True)
        self.bars: pg.BarGraphItem | None = None
        self.ticks = pg.ScatterPlotItem(symbol="|", size=8, pen=pg.mkPen(69, 117, 180), brush=None)
        self.markers = pg.ScatterPlotItem(symbol="t", size=11, pen=pg.mkPen(120, 0, 0), brush=pg.mkBrush(215, 48, 39))
        self.plot.addItem(self.ticks)
        self.plot.addItem(self.markers)
        self.labels: list[pg.TextItem] = []
        self.highlight = pg.LinearRegionItem(orientation="horizontal", movable=False,
                                             brush=pg.mkBrush(255, 220, 90, 70), pen=pg.mkPen(None))
        self.highlight.setZValue(-10)
        self.highlight.hide()
        self.plot.addItem(self.highlight, ignoreBounds=True)
        self.hover = QLabel(tr("Hover a lane for details · drag to pan · wheel to zoom (up to 30 days)"))
        self.hover.setTextFormat(Qt.TextFormat.RichText)
        self.hover.setWordWrap(True)
        legend = " ".join(f"<span style='color:rgb{c}'>■</span> {tr(k)}" for k, c in SEGMENT_COLOURS.items())
        self.legend = QLabel(legend + " &nbsp; | " + tr("checkpoint") + " &nbsp; <span style='color:#d73027'>▼</span> "
                             + tr("incident"))
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover)
        self._lane_segments: list[tuple[list[float], list[tuple[str, float, float]]]] = []
        self._view_set = False
        self.plot.scene().sigMouseMoved.connect(self._moved)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.getViewBox().sigXRangeChanged.connect(lambda *_: self._place_labels())

    # ---- data -------------------------------------------------------------------------------------

    def set_rows(self, rows: list[JobRow], now: float) -> None:
        """Redraw every lane from a snapshot's jobs."""
        self.rows, self.now = list(rows), now
        x0: list[float] = []
        x1: list[float] = []
        ys: list[float] = []
        hs: list[float] = []
        brushes: list[Any] = []
        tick_x: list[float] = []
        tick_y: list[float] = []
        mark_x: list[float] = []
        mark_y: list[float] = []
        mark_data: list[str] = []
        self._lane_segments = []
        start = now - RANGE_S
        for lane, row in enumerate(self.rows):
            segs = sorted(((s.kind, max(s.start, start), now if s.end is None else s.end)
                           for s in row.model.segments if (s.end is None or s.end >= start)),
                          key=lambda s: s[1])
            for kind, a, b in segs:
                thin = kind == "checkpointing"
                x0.append(a)
                x1.append(max(b, a + 1.0))
                ys.append(lane - (LANE_H / 2 if not thin else LANE_H / 6))
                hs.append(LANE_H if not thin else LANE_H / 3)
                brushes.append(BRUSHES.get(kind, OTHER_BRUSH))
            self._lane_segments.append(([s[1] for s in segs], segs))
            for ts, _step in row.checkpoints:
                tick_x.append(ts)
                tick_y.append(lane - LANE_H / 2 - 0.08)
            for m in row.markers:
                mark_x.append(m.ts)
                mark_y.append(lane + LANE_H / 2 + 0.12)
                mark_data.append(f"{m.severity} · {m.title}")
            for i in row.model.interruptions:      # a cause without an incident of its own gets a marker too
                if i.cause and not any(abs(i.detected_at - m.ts) < 120 for m in row.markers):
                    mark_x.append(i.detected_at)
                    mark_y.append(lane + LANE_H / 2 + 0.12)
                    mark_data.append(f"{tr('cause')}: {i.cause[:160]}")
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        if x0:
            a0, a1 = np.asarray(x0), np.asarray(x1)
            self.bars = pg.BarGraphItem(x0=a0, x1=a1, y0=np.asarray(ys), height=np.asarray(hs), brushes=brushes,
                                        pens=[NO_PEN] * len(x0))
            self.plot.addItem(self.bars)
        self.ticks.setData(tick_x, tick_y)
        self.markers.setData(mark_x, mark_y, data=mark_data)
        self._make_labels()
        lanes = max(1, len(self.rows))
        vb = self.plot.getViewBox()
        vb.setLimits(xMin=start, xMax=now + 3600.0, minXRange=600.0, maxXRange=RANGE_S + 3600.0,
                     yMin=-1.0, yMax=lanes + 0.2)
        vb.setYRange(-1.0, lanes - 0.2, padding=0)
        if not self._view_set and self.rows:
            vb.setXRange(now - DEFAULT_VIEW_S, now + 1800.0, padding=0)
            self._view_set = True
        self._place_labels()

    def _make_labels(self) -> None:
        for item in self.labels:
            self.plot.removeItem(item)
        self.labels = []
        for row in self.rows:
            colour = "#1a9850" if row.state == "running" else "#d73027"
            text = (f"<span style='font-weight:600'>{html.escape(row.name)}</span> "
                    f"<span style='color:{colour}'>{html.escape(tr(row.state))}</span> · "
                    + (f"{html.escape(row.vendors)} · " if row.vendors else "") + html.escape(goal_text(row)))
            item = pg.TextItem(html=f"<div style='background:rgba(255,255,255,200);font-size:8pt'>{text}</div>",
                               anchor=(0, 1))
            self.plot.addItem(item, ignoreBounds=True)
            self.labels.append(item)

    def _place_labels(self) -> None:
        (x_left, _x_right), _ = self.plot.getViewBox().viewRange()
        for lane, item in enumerate(self.labels):
            item.setPos(x_left, lane - LANE_H / 2 - 0.14)

    # ---- interaction ------------------------------------------------------------------------------

    def show_job(self, name: str, at: float | None = None) -> bool:
        """Highlight a job's lane; with `at`, centre the view on that time (6 h either side)."""
        lane = next((i for i, r in enumerate(self.rows) if r.name == name), None)
        if lane is None:
            return False
        self.highlight.setRegion((lane - 0.5, lane + 0.5))
        self.highlight.show()
        if at is not None:
            self.plot.getViewBox().setXRange(at - 6 * 3600.0, at + 6 * 3600.0, padding=0)
            self._view_set = True
        return True

    def describe(self, x: float, y: float) -> str | None:
        """What is under view coordinates (x, y): a segment, a checkpoint or a marker."""
        lane = int(round(y))
        if not 0 <= lane < len(self.rows):
            return None
        row = self.rows[lane]
        span = self.plot.getViewBox().viewRange()[0]
        near = (span[1] - span[0]) / 150.0
        for m in row.markers:
            if abs(m.ts - x) <= near:
                return f"<b>{html.escape(row.name)}</b> · {_fmt_time(m.ts)} · {html.escape(m.severity)} {html.escape(m.title)}"
        for ts, step in row.checkpoints:
            if abs(ts - x) <= near:
                return f"<b>{html.escape(row.name)}</b> · {tr('checkpoint')} {tr('step')} {step} · {_fmt_time(ts)}"
        starts, segs = self._lane_segments[lane]
        k = bisect.bisect_right(starts, x) - 1
        best = None
        for kind, a, b in segs[max(0, k - 3):k + 1]:
            if a <= x <= b and (best is None or kind == "checkpointing"):
                best = (kind, a, b)
        if best is None:
            return f"<b>{html.escape(row.name)}</b> · {tr('no data')}"
        kind, a, b = best
        text = (f"<b>{html.escape(row.name)}</b> · <span style='color:rgb{SEGMENT_COLOURS.get(kind)}'>{tr(kind)}</span> "
                f"{_fmt_time(a)} → {_fmt_time(b)} ({duration(b - a)})")
        for i in row.model.interruptions:
            end = i.resumed_at if i.resumed_at is not None else self.now
            if i.stopped_at <= x <= end:
                text += (f"<br>{tr('stopped at step')} {i.last_step} · {tr('detected after')} "
                         f"{duration(i.time_to_detect_s)} · {tr('resumed after')} {duration(i.time_to_resume_s)} · "
                         f"{tr('lost work')} {i.lost_steps if i.lost_steps is not None else 'N/A'} {tr('steps')} "
                         f"({duration(i.lost_s)})")
                if i.cause:
                    text += f"<br>{tr('cause')}: {html.escape(i.cause[:200])}"
                break
        return text

    def _moved(self, pos: QPointF) -> None:
        vb = self.plot.getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos):
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
