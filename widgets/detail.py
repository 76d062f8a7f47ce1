"""Card detail: history plots (last hour, 24 hours, 7 days) with the card's faults marked."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QButtonGroup, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from console.live import History, read_history, read_with
from widgets.common import Task
from widgets.i18n import tr

RANGES = (("1 h", 3600.0), ("24 h", 86400.0), ("7 d", 7 * 86400.0))
PLOTS = (("temperature_c", "Temperature", "°C"), ("utilization_pct", "Utilization", "%"),
         ("memory_used_mib", "Memory used", "MiB"), ("power_w", "Power", "W"))


class CardDetail(QDialog):
    """History of one card; opened from a click in the room view."""

    loaded = Signal()

    def __init__(self, db_path: str, card_id: int, title: str, parent: QWidget | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.db_path = db_path
        self.card_id = card_id
        self.history: History | None = None
        self.setWindowTitle(title)
        self.resize(900, 680)
        self.header = QLabel(title)
        self.status = QLabel(tr("Loading…"))
        buttons = QHBoxLayout()
        self.group = QButtonGroup(self)
        for i, (label, _seconds) in enumerate(RANGES):
            b = QPushButton(tr(label))
            b.setCheckable(True)
            self.group.addButton(b, i)
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.status)
        self.group.idClicked.connect(self.load_range)
        self.plots: dict[str, pg.PlotWidget] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(buttons)
        first: pg.PlotWidget | None = None
        for key, label, unit in PLOTS:
            w = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
            w.setLabel("left", tr(label), units=None)
            w.getPlotItem().setTitle(f"{tr(label)} ({unit})", size="9pt")
            w.showGrid(x=True, y=True, alpha=0.2)
            w.setMouseEnabled(x=True, y=False)
            if first is None:
                first = w
            else:
                w.setXLink(first)
            self.plots[key] = w
            layout.addWidget(w, 1)
        self.group.button(0).setChecked(True)
        self.load_range(0)

    def load_range(self, which: int) -> None:
        """Read the chosen range in the background; plots update when it arrives."""
        seconds = RANGES[which][1]
        self.status.setText(tr("Loading…"))
        path, card = self.db_path, self.card_id
        loader = Task(lambda: read_with(path, lambda conn: read_history(conn, card, seconds)))
        loader.signals.done.connect(self.show_history)
        loader.signals.failed.connect(self.status.setText)
        self.pool.start(loader)

    def show_history(self, history: History) -> None:
        """Draw the plots and the fault markers."""
        self.history = history
        for key, w in self.plots.items():
            w.clear()
            y = history.metrics[key]
            if len(history.t):
                w.plot(history.t, y, pen=pg.mkPen((80, 170, 255), width=1.5), connect="finite")
            for ts, code, message in history.faults:
                line = pg.InfiniteLine(pos=ts, angle=90, pen=pg.mkPen(QColor(215, 48, 39), width=1.5),
                                       label=code if key == "temperature_c" else None,
                                       labelOpts={"position": 0.9, "color": (215, 48, 39)})
                line.setToolTip(message)
                w.addItem(line)
            w.setXRange(history.start, history.end, padding=0.01)
        n = len(history.t)
        kind = tr("hourly averages") if history.rolled_up else tr("samples")
        finite = np.isfinite(history.metrics["temperature_c"]) if n else np.zeros(0, bool)
        missing = int(n - finite.sum())
        self.status.setText(f"{n} {kind}, {len(history.faults)} {tr('faults')}"
                            + (f", {missing} N/A" if missing else ""))
        self.loaded.emit()
