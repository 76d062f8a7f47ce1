"""The room as operators know it: rows of racks, each rack its node slots, each node its cards.

One RGBA image, one pixel block per card, recoloured with numpy on every snapshot: a lookup from
card to colour, then one gather into the image through a pixel→card index computed once per
layout. N/A (the vendor gives no value) and stale (the node does not answer) are patterns, not
colours of the scale, so they can never be read as a cold or idle card.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from console.fmt import duration
from console.live import Snapshot
from widgets.i18n import tr

CELL = 4            # pixels per card side
PITCH = CELL + 1    # card cell plus its gap
RACK_GAP = 6
ROW_GAP = 16
CARDS_PER_ROW = 8   # cards drawn side by side per node line

# Special colour slots of the palette (after the per-card entries).
BACKGROUND = (24, 26, 30, 255)
EMPTY_SLOT = (44, 47, 54, 255)
STALE_A, STALE_B = (20, 20, 20, 255), (150, 150, 150, 255)      # hatched: node not answering
NA_A, NA_B = (205, 205, 205, 255), (120, 120, 120, 255)          # checked: value not reported


@dataclass(frozen=True, slots=True)
class Metric:
    """A colourable card metric with its scale and thresholds."""

    key: str
    label: str
    unit: str
    lo: float
    hi: float
    warn: float | None = None
    crit: float | None = None


METRICS: dict[str, Metric] = {
    # warn/crit as the incident engine's defaults (console.incidents.Thresholds)
    "temperature_c": Metric("temperature_c", "Temperature", "°C", 25.0, 100.0, 85.0, 95.0),
    "utilization_pct": Metric("utilization_pct", "Utilization", "%", 0.0, 100.0),
    "memory_used_pct": Metric("memory_used_pct", "Memory used", "%", 0.0, 100.0, 95.0),
    "power_w": Metric("power_w", "Power", "W", 0.0, 700.0),
    "health": Metric("health", "Health", "", 0.0, 2.0),
    "vendor": Metric("vendor", "Vendor", "", 0.0, 1.0),
}

VENDOR_COLOURS = {
    "nvidia": (118, 185, 0), "ascend": (199, 0, 11), "hygon": (0, 112, 192), "cambricon": (111, 66, 193),
    "metax": (0, 170, 170), "mthreads": (255, 140, 0), "iluvatar": (220, 90, 160), "enflame": (230, 200, 40),
    "kunlunxin": (80, 140, 255), "denglin": (160, 110, 60), "amd": (237, 28, 36), "biren": (90, 200, 120),
}
HEALTH_COLOURS = np.array([(26, 152, 80, 255), (253, 174, 97, 255), (215, 48, 39, 255), NA_A], dtype=np.uint8)


def _scale_lut() -> np.ndarray:
    """256-entry RGBA scale from cool blue through green and yellow to red; no greys in it."""
    stops = np.array([0.0, 0.3, 0.55, 0.75, 1.0])
    colours = np.array([(49, 54, 149), (69, 160, 200), (120, 198, 121), (254, 204, 60), (215, 25, 28)], float)
    x = np.linspace(0.0, 1.0, 256)
    lut = np.empty((256, 4), dtype=np.uint8)
    for ch in range(3):
        lut[:, ch] = np.interp(x, stops, colours[:, ch]).astype(np.uint8)
    lut[:, 3] = 255
    return lut


SCALE = _scale_lut()


@dataclass(slots=True)
class Geometry:
    """Where every card of the room is drawn, computed once per set of racks/nodes/cards."""

    width: int
    height: int
    pix: np.ndarray                   # (H, W) int32: palette index of each pixel (card, or special)
    card_at: np.ndarray               # (H, W) int32: card position under the pixel, -1 for none
    card_origin: np.ndarray           # (N, 2) x, y of each card's top-left pixel
    node_rect: dict[str, QRectF]
    rack_labels: list[tuple[str, float, float]]
    row_labels: list[tuple[str, float, float]]
    n_cards: int
    key: int


def compute_geometry(snapshot: Snapshot) -> Geometry:
    """Lay out rows of racks; each rack a column of slots; each node a block of card cells."""
    racks: dict[str, list[tuple[int, str]]] = {}
    row_of: dict[str, str] = {}
    unplaced: list[str] = []
    for node in snapshot.nodes:
        if node.rack is None:
            unplaced.append(node.name)
            continue
        racks.setdefault(node.rack, []).append((node.slot or 0, node.name))
        row_of.setdefault(node.rack, (node.rack.rstrip("0123456789") or "?"))
    if unplaced:
        racks["(no rack)"] = [(i + 1, n) for i, n in enumerate(unplaced)]
        row_of["(no rack)"] = "?"
    status_of = {node.name: node.status for node in snapshot.nodes}
    cards_of: dict[str, list[int]] = {}
    for pos, node in enumerate(snapshot.card_node):
        cards_of.setdefault(node, []).append(pos)
    rows: dict[str, list[str]] = {}
    for rack in sorted(racks):
        rows.setdefault(row_of[rack], []).append(rack)
    node_lines = {n.name: max(1, math.ceil(len(cards_of.get(n.name, [])) / CARDS_PER_ROW)) for n in snapshot.nodes}
    rack_w = CARDS_PER_ROW * PITCH
    per_row = max((len(v) for v in rows.values()), default=1)
    row_heights = []
    for rack_names in rows.values():
        slots = max(max((s for s, _ in racks[r]), default=1) for r in rack_names)
        lines = max(sum(node_lines[n] for _, n in racks[r]) for r in rack_names)
        row_heights.append(max(slots, lines) * PITCH + ROW_GAP)
    width = max(1, per_row * (rack_w + RACK_GAP))
    height = max(1, sum(row_heights) + ROW_GAP)
    n = len(snapshot.card_node)
    pix = np.full((height, width), n, dtype=np.int32)          # n → background
    card_at = np.full((height, width), -1, dtype=np.int32)
    origin = np.zeros((n, 2), dtype=np.int32)
    node_rect: dict[str, QRectF] = {}
    rack_labels: list[tuple[str, float, float]] = []
    row_labels: list[tuple[str, float, float]] = []
    placed: list[int] = []
    y0 = ROW_GAP
    # A checker/hatch selector per pixel inside a cell: (x - y) % 4 == 0 for stale stripes is
    # handled by the palette offset below.
    for (row, rack_names), row_h in zip(rows.items(), row_heights, strict=True):
        row_labels.append((row, -4.0, float(y0)))
        for k, rack in enumerate(rack_names):
            x0 = k * (rack_w + RACK_GAP)
            rack_labels.append((rack, float(x0), float(y0 - 2)))
            y = y0
            top_slot = max((s for s, _ in racks[rack]), default=1)
            pix[y0:y0 + top_slot * PITCH - 1, x0:x0 + rack_w - 1] = n + 1     # empty slots until filled
            for slot, name in sorted(racks[rack]):
                lines = node_lines.get(name, 1)
                ny = max(y0 + (slot - 1) * PITCH, y) if slot > 0 else y
                pix[ny:ny + lines * PITCH - 1, x0:x0 + rack_w - 1] = n
                node_rect[name] = QRectF(x0, ny, rack_w - 1, lines * PITCH - 1)
                positions = cards_of.get(name, [])
                if not positions:
                    # a node whose cards were never seen: stale if it is not answering, else empty
                    status = status_of.get(name, "unknown")
                    pix[ny:ny + CELL, x0:x0 + rack_w - 1] = n + 1 if status == "ok" else n + 2
                if positions:
                    j = np.arange(len(positions))
                    origin[positions, 0] = x0 + (j % CARDS_PER_ROW) * PITCH
                    origin[positions, 1] = ny + (j // CARDS_PER_ROW) * PITCH
                    placed.extend(positions)
                y = ny + lines * PITCH
        y0 += row_h
    # Every card's CELL x CELL block in one vectorised assignment.
    if placed:
        pos = np.asarray(placed, dtype=np.int32)
        cell = np.arange(CELL)
        ys = origin[pos, 1][:, None, None] + cell[None, :, None]
        xs = origin[pos, 0][:, None, None] + cell[None, None, :]
        pix[ys, xs] = pos[:, None, None]
        card_at[ys, xs] = pos[:, None, None]
    # Pattern pixels use the second half of the palette: stripes for stale, checks for N/A are
    # chosen per card by which colour pair it gets; the pixel only says "pattern or not".
    yy, xx = np.indices((height, width))
    pattern = ((xx - yy) % 3 == 0)
    pix = np.where(pattern, pix + n + 3, pix).astype(np.int32)
    return Geometry(width, height, pix, card_at, origin, node_rect, rack_labels, row_labels, n,
                    snapshot.layout_key)


_last_geometry: Geometry | None = None


def attach_geometry(snapshot: Snapshot) -> None:
    """Precompute the room layout in the reader thread (only when racks, nodes or cards changed)."""
    global _last_geometry
    geometry = _last_geometry
    if geometry is None or geometry.key != snapshot.layout_key:
        geometry = compute_geometry(snapshot)
        _last_geometry = geometry
    snapshot.derived["geometry"] = geometry


def card_values(snapshot: Snapshot, metric: str) -> np.ndarray:
    """The metric of every card as float (NaN = not reported)."""
    m = snapshot.metrics
    if metric == "memory_used_pct":
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * m["memory_used_mib"] / m["memory_total_mib"]
    return m[metric]


def card_colours(snapshot: Snapshot, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Two RGBA arrays (plain pixels, pattern pixels) per card: equal except for N/A and stale cards."""
    n = len(snapshot.card_node)
    if metric == "health":
        base = HEALTH_COLOURS[np.clip(snapshot.health, 0, 3)]
        na = snapshot.health == 3
    elif metric == "vendor":
        base = np.array([(*VENDOR_COLOURS.get(v or "", (128, 128, 128)), 255) for v in snapshot.vendor],
                        dtype=np.uint8).reshape(n, 4)
        na = np.zeros(n, dtype=bool)
    else:
        spec = METRICS[metric]
        values = card_values(snapshot, metric)
        na = ~np.isfinite(values)
        scaled = np.nan_to_num((values - spec.lo) / (spec.hi - spec.lo), nan=0.0)
        base = SCALE[np.clip((scaled * 255.0).astype(np.int32), 0, 255)]
    plain = base.copy()
    patt = base.copy()
    plain[na] = NA_A
    patt[na] = NA_B
    plain[snapshot.stale] = STALE_B
    patt[snapshot.stale] = STALE_A
    return plain, patt


def palette(plain: np.ndarray, patt: np.ndarray) -> np.ndarray:
    """Palette: cards, background, empty slot, then the same for pattern pixels."""
    special = np.array([BACKGROUND, EMPTY_SLOT, STALE_B], dtype=np.uint8)
    special_patt = np.array([BACKGROUND, EMPTY_SLOT, STALE_A], dtype=np.uint8)
    return np.concatenate([plain, special, patt, special_patt], axis=0)


class _Image(pg.ImageItem):
    """The card image: reports hover and clicks in image coordinates."""

    def __init__(self, owner: HeatmapView) -> None:
        super().__init__(axisOrder="row-major")
        self._owner = owner
        self.setAcceptHoverEvents(True)

    def hoverEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        if getattr(ev, "isExit", lambda: True)():
            QToolTip.hideText()
            return
        pos = ev.pos()  # type: ignore[attr-defined]
        self._owner.hover_at(pos.x(), pos.y())

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        if ev.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            pos = ev.pos()  # type: ignore[attr-defined]
            if self._owner.click_at(pos.x(), pos.y()):
                ev.accept()  # type: ignore[attr-defined]


class Legend(QWidget):
    """Colour scale with units and thresholds, and the swatches of N/A, stale and empty."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = METRICS["temperature_c"]     # not `metric`: that is QPaintDevice's virtual
        self.setMinimumHeight(34)

    def set_metric(self, metric: Metric) -> None:
        """Show the scale of another metric."""
        self.spec = metric
        self.update()

    def paintEvent(self, _event: object) -> None:  # noqa: N802 - Qt API
        pal = self.palette()
        fg = QColor(pal.color(pal.ColorRole.WindowText))
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        p.setFont(font)
        x, y, h = 6, 4, 12
        spec = self.spec
        if spec.key == "health":
            for i, name in enumerate((tr("ok"), tr("warning"), tr("critical"))):
                c = HEALTH_COLOURS[i]
                p.fillRect(x, y, 14, h, QColor(int(c[0]), int(c[1]), int(c[2])))
                p.drawText(x + 18, y + h - 1, name)
                x += 30 + p.fontMetrics().horizontalAdvance(name)
        elif spec.key == "vendor":
            for name, c in VENDOR_COLOURS.items():
                p.fillRect(x, y, 14, h, QColor(*c))
                p.drawText(x + 18, y + h - 1, name)
                x += 26 + p.fontMetrics().horizontalAdvance(name)
        else:
            width = 240
            for i in range(width):
                c = SCALE[int(i * 255 / (width - 1))]
                p.setPen(QColor(int(c[0]), int(c[1]), int(c[2])))
                p.drawLine(x + i, y, x + i, y + h)
            p.setPen(fg)
            unit = f" {spec.unit}" if spec.unit else ""
            p.drawText(x, y + h + 13, f"{spec.lo:g}{unit}")
            p.drawText(x + width - 40, y + h + 13, f"{spec.hi:g}{unit}")
            marks = []
            for thr, name in ((spec.warn, tr("warn")), (spec.crit, tr("crit"))):
                if thr is None:
                    continue
                tx = x + int((thr - spec.lo) / (spec.hi - spec.lo) * (width - 1))
                p.setPen(QPen(QColor(0, 0, 0), 2))
                p.drawLine(tx, y - 2, tx, y + h + 2)
                marks.append(f"{name} ≥ {thr:g}{unit}")
            p.setPen(fg)
            x += width + 10
            if marks:
                text = "  ".join(marks)
                p.drawText(x, y + h - 1, text)
                x += p.fontMetrics().horizontalAdvance(text) + 16
        for label, a, b in ((tr("N/A (not reported)"), NA_A, NA_B), (tr("stale (node not answering)"), STALE_A, STALE_B),
                            (tr("empty slot"), EMPTY_SLOT, EMPTY_SLOT)):
            for i in range(14):
                for j in range(h):
                    c = b if (i - j) % 3 == 0 else a
                    p.setPen(QColor(c[0], c[1], c[2]))
                    p.drawPoint(x + i, y + j)
            p.setPen(fg)
            p.drawText(x + 18, y + h - 1, label)
            x += 32 + p.fontMetrics().horizontalAdvance(label)
        p.end()


class HeatmapView(QWidget):
    """Metric selector, search box, legend and the zoomable room image."""

    card_clicked = Signal(str, int)   # node, card index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        self.geometry_: Geometry | None = None
        self.metric_key = "temperature_c"
        self.metric_box = QComboBox()
        for key, spec in METRICS.items():
            self.metric_box.addItem(tr(spec.label), key)
        self.metric_box.currentIndexChanged.connect(self._metric_changed)
        self.search = QLineEdit()
        self.search.setPlaceholderText(tr("Find node or card serial…"))
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(lambda: self.find_text(self.search.text()))
        self.legend = Legend()
        top = QHBoxLayout()
        top.addWidget(QLabel(tr("Colour by:")))
        top.addWidget(self.metric_box)
        top.addSpacing(12)
        top.addWidget(self.search, 1)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground(QColor(*BACKGROUND[:3]))
        self.view = self.plot.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = _Image(self)
        self.view.addItem(self.image)
        self.highlight = pg.QtWidgets.QGraphicsRectItem()
        self.highlight.setPen(QPen(QColor(255, 255, 255), 0.8))
        self.highlight.setZValue(10)
        self.highlight.hide()
        self.view.addItem(self.highlight)
        self._labels: list[pg.TextItem] = []
        self._label_spec: object = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        self.last_refresh_s = 0.0
        self.last_tooltip = ""

    # ---- data -------------------------------------------------------------------------------------

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Recolour for a new sweep; the layout is recomputed only when racks, nodes or cards change."""
        t0 = time.perf_counter()
        self.snapshot = snapshot
        if self.geometry_ is None or self.geometry_.key != snapshot.layout_key:
            ready = snapshot.derived.get("geometry")
            self.geometry_ = ready if isinstance(ready, Geometry) and ready.key == snapshot.layout_key \
                else compute_geometry(snapshot)
            self._place_labels()
            self.view.setRange(QRectF(-30, 0, self.geometry_.width + 30, self.geometry_.height), padding=0.02)
        self._recolour()
        self.last_refresh_s = time.perf_counter() - t0

    def _recolour(self) -> None:
        if self.snapshot is None or self.geometry_ is None:
            return
        plain, patt = card_colours(self.snapshot, self.metric_key)
        img = palette(plain, patt)[self.geometry_.pix]
        self.image.setImage(img, autoLevels=False, levels=None)

    def _place_labels(self) -> None:
        assert self.geometry_ is not None
        wanted = (self.geometry_.rack_labels, self.geometry_.row_labels)
        if wanted == self._label_spec:
            return                      # same racks and rows: keep the label items (they are slow to make)
        self._label_spec = wanted
        for item in self._labels:
            self.view.removeItem(item)
        self._labels = []
        assert self.geometry_ is not None
        for text, x, y in self.geometry_.rack_labels:
            item = pg.TextItem(text, color=(200, 200, 200), anchor=(0, 1))
            item.setPos(x, y)
            self.view.addItem(item)
            self._labels.append(item)
        for text, x, y in self.geometry_.row_labels:
            item = pg.TextItem(f"{tr('Row')} {text}", color=(240, 240, 240), anchor=(1, 0))
            item.setPos(x, y)
            self.view.addItem(item)
            self._labels.append(item)

    def _metric_changed(self) -> None:
        self.set_metric(str(self.metric_box.currentData()))

    def set_metric(self, key: str) -> None:
        """Colour by another metric."""
        self.metric_key = key
        i = self.metric_box.findData(key)
        if i >= 0 and i != self.metric_box.currentIndex():
            self.metric_box.setCurrentIndex(i)
        self.legend.set_metric(METRICS[key])
        self._recolour()

    # ---- interaction ------------------------------------------------------------------------------

    def card_at(self, x: float, y: float) -> int | None:
        """Card position under image coordinates, or None."""
        g = self.geometry_
        if g is None:
            return None
        xi, yi = int(math.floor(x)), int(math.floor(y))
        if not (0 <= xi < g.width and 0 <= yi < g.height):
            return None
        pos = int(g.card_at[yi, xi])
        return pos if pos >= 0 else None

    def tooltip_for(self, pos: int) -> str:
        """Node, card, vendor, model, the values with their age."""
        s = self.snapshot
        assert s is not None
        node = s.card_node[pos]
        lines = [f"{node}  {tr('card')} {int(s.card_idx[pos])}",
                 f"{s.vendor[pos] or 'N/A'}  {s.model[pos] or 'N/A'}  {tr('serial')} {s.serial[pos] or 'N/A'}"]
        if s.stale[pos]:
            status = next((r for r in s.nodes if r.name == node), None)
            why = status.last_error if status and status.last_error else tr("no recent answer")
            lines.append(f"{tr('STALE: node not answering')} ({why})")
        m = s.metrics

        def fmt(value: float, unit: str, digits: int = 0) -> str:
            return "N/A" if not math.isfinite(float(value)) else f"{float(value):.{digits}f} {unit}".strip()

        lines.append(f"{tr('Temperature')}: {fmt(m['temperature_c'][pos], '°C')}   "
                     f"{tr('Utilization')}: {fmt(m['utilization_pct'][pos], '%')}")
        lines.append(f"{tr('Memory')}: {fmt(m['memory_used_mib'][pos], '')} / {fmt(m['memory_total_mib'][pos], 'MiB')}"
                     f"   {tr('Power')}: {fmt(m['power_w'][pos], 'W', 1)}")
        health = ("ok", "warning", "critical", "unknown")[int(s.health[pos])]
        ts = float(s.ts[pos])
        age = tr("never") if not math.isfinite(ts) else duration(s.taken_at - ts)
        lines.append(f"{tr('Health')}: {tr(health)}   {tr('sample age')}: {age}")
        return "\n".join(lines)

    def hover_at(self, x: float, y: float) -> None:
        pos = self.card_at(x, y)
        if pos is None or self.snapshot is None:
            QToolTip.hideText()
            self.last_tooltip = ""
            return
        self.last_tooltip = self.tooltip_for(pos)
        QToolTip.showText(QCursor.pos(), self.last_tooltip, self.plot)

    def click_at(self, x: float, y: float) -> bool:
        pos = self.card_at(x, y)
        if pos is None or self.snapshot is None:
            return False
        self.card_clicked.emit(self.snapshot.card_node[pos], int(self.snapshot.card_idx[pos]))
        return True

    def find_text(self, text: str) -> bool:
        """Highlight a node (by name) or a card (by serial) and centre on it."""
        text = text.strip()
        s, g = self.snapshot, self.geometry_
        if not text or s is None or g is None:
            self.highlight.hide()
            return False
        if text in g.node_rect:
            return self.focus_node(text)
        low = text.lower()
        for pos, serial in enumerate(s.serial):
            if serial and serial.lower() == low:
                x, y = (int(v) for v in g.card_origin[pos])
                self._show_highlight(QRectF(x - 1, y - 1, CELL + 2, CELL + 2))
                return True
        matches = [name for name in g.node_rect if low in name.lower()]
        if matches:
            return self.focus_node(matches[0])
        self.highlight.hide()
        return False

    def focus_card(self, node: str, idx: int) -> bool:
        """Highlight one card and centre the view on it."""
        s, g = self.snapshot, self.geometry_
        if s is None or g is None:
            return False
        pos = s.index_of(node, idx)
        if pos is None:
            return False
        x, y = (int(v) for v in g.card_origin[pos])
        self._show_highlight(QRectF(x - 1, y - 1, CELL + 2, CELL + 2))
        return True

    def focus_node(self, name: str) -> bool:
        """Highlight one node's cards and centre the view on them."""
        if self.geometry_ is None or name not in self.geometry_.node_rect:
            return False
        rect = self.geometry_.node_rect[name]
        self._show_highlight(rect.adjusted(-1, -1, 1, 1))
        return True

    def _show_highlight(self, rect: QRectF) -> None:
        self.highlight.setRect(rect)
        self.highlight.show()
        centre = rect.center()
        span = max(60.0, rect.width() * 6)
        self.view.setRange(QRectF(QPointF(centre.x() - span, centre.y() - span * 0.6),
                                  QPointF(centre.x() + span, centre.y() + span * 0.6)), padding=0)

