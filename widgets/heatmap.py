"""The room as operators know it: rows of racks, each rack its node slots, each node its cards.

One RGBA image, one pixel block per card, recoloured with numpy on every snapshot: a lookup from
card to colour, then one gather into the image through a pixel→palette index computed once per
layout. N/A (the vendor gives no value), stale (the node gives no recent answer) and failed (the node
answered with an error or not at all) are patterns, not colours of the scale, so they can never be
read as a cold or idle card; at low zoom, where a 2-pixel pattern cannot survive, they become flat
colours outside every scale. Card health is drawn over every colour mode as markers of a fixed
screen size (critical: a red cross, warning: a small amber diamond), so a card that fell off the
bus is never just "N/A".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QCursor,
    QFont,
    QFontMetrics,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QPolygonF,
    QShortcut,
)
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from console.live import Snapshot
from widgets.common import shown_duration
from widgets.i18n import current_language, tr, vendor_name

CELL = 4            # pixels per card side
PITCH = CELL + 1    # card cell plus its gap
RACK_GAP = 6
ROW_GAP = 16
CARDS_PER_ROW = 8   # cards drawn side by side per node line
LOW_ZOOM_PX = 3.0   # below this many screen pixels per card, patterns become flat colours

RGBA = tuple[int, int, int, int]

# Room colours for the default (dark) palette; the view takes background and empty slots from its
# widget palette, so they follow the theme. None of these is a colour of any scale.
BACKGROUND: RGBA = (24, 26, 30, 255)
EMPTY_SLOT: RGBA = (40, 43, 50, 255)
# Patterns at readable zoom: A is the base, B the pattern pixels (2-pixel blocks / stripes in a 4 px card).
NA_A, NA_B = (200, 200, 200, 255), (112, 112, 112, 255)          # checked grey: value not reported
STALE_A, STALE_B = (30, 30, 30, 255), (150, 150, 150, 255)        # grey hatch: no recent answer
FAILED_A, FAILED_B = (40, 0, 10, 255), (240, 50, 110, 255)        # red hatch: the node failed (error)
# At low zoom (a card is 1–2 screen pixels): flat, far from each other and from every scale.
NA_LOW: RGBA = (160, 160, 160, 255)
STALE_LOW: RGBA = (84, 84, 84, 255)
FAILED_LOW: RGBA = (150, 20, 70, 255)
# Health markers (drawn over the image in every mode) and the search highlight.
CRITICAL_MARK = QColor(255, 32, 32)
WARNING_MARK = QColor(255, 176, 0)
HIGHLIGHT = QColor(255, 230, 0)


@dataclass(frozen=True, slots=True)
class Metric:
    """A colourable card metric with its scale and thresholds (alarm: the blue→red scale)."""

    key: str
    label: str
    unit: str
    lo: float
    hi: float
    warn: float | None = None
    crit: float | None = None
    alarm: bool = False


METRICS: dict[str, Metric] = {
    # Temperature has warn/crit (console.incidents.Thresholds defaults): the alarm scale. Busy is not
    # an alarm: utilization, memory and power use a sequential scale (memory marks the engine's
    # memory-full threshold, 99 %, in the legend).
    "temperature_c": Metric("temperature_c", "Temperature", "°C", 25.0, 100.0, 85.0, 95.0, alarm=True),
    "utilization_pct": Metric("utilization_pct", "Utilization", "%", 0.0, 100.0),
    "memory_used_pct": Metric("memory_used_pct", "Memory used", "%", 0.0, 100.0, 99.0),
    "power_w": Metric("power_w", "Power", "W", 0.0, 700.0),
    "health": Metric("health", "Health", "", 0.0, 2.0),
    "vendor": Metric("vendor", "Vendor", "", 0.0, 1.0),
    # the worst link state of each card (console.links.read_link_states); node-level NICs count for every card
    "links": Metric("links", "Links", "", 0.0, 2.0),
}

# Twelve vendors, pairwise distinct (CIE76 ΔE ≥ 30, tested); none grey (grey is N/A).
VENDOR_COLOURS = {
    "nvidia": (118, 185, 0), "ascend": (215, 0, 30), "hygon": (0, 100, 210), "cambricon": (125, 60, 205),
    "metax": (0, 190, 190), "mthreads": (255, 140, 0), "iluvatar": (245, 120, 200), "enflame": (240, 225, 40),
    "kunlunxin": (140, 195, 255), "denglin": (150, 95, 45), "amd": (165, 0, 110), "biren": (0, 120, 70),
}
HEALTH_COLOURS = np.array([(26, 152, 80, 255), (253, 174, 97, 255), (215, 48, 39, 255), NA_A], dtype=np.uint8)


def _lut(stops: list[float], colours: list[tuple[int, int, int]]) -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    c = np.array(colours, float)
    lut = np.empty((256, 4), dtype=np.uint8)
    for ch in range(3):
        lut[:, ch] = np.interp(x, stops, c[:, ch]).astype(np.uint8)
    lut[:, 3] = 255
    return lut


# Alarm scale (thresholded metrics): cool blue through green and yellow to red; no greys in it.
SCALE = _lut([0.0, 0.3, 0.55, 0.75, 1.0], [(49, 54, 149), (69, 160, 200), (120, 198, 121), (254, 204, 60), (215, 25, 28)])
# Sequential scale (load, no alarm): deep blue → blue → cyan → pale cyan; no red, no yellow, no grey.
SEQ_SCALE = _lut([0.0, 0.35, 0.7, 1.0], [(35, 50, 130), (30, 105, 205), (30, 180, 225), (110, 230, 245)])


def scale_of(metric: Metric) -> np.ndarray:
    """The colour scale a metric is drawn with."""
    return SCALE if metric.alarm else SEQ_SCALE


def _cell_classes() -> np.ndarray:
    """Pattern class of each pixel of a card cell: bit 0 checker (2 px blocks), bit 1 hatch (2 px stripes)."""
    cy, cx = np.indices((CELL, CELL))
    check = ((cx // 2) + (cy // 2)) % 2 == 1
    hatch = (cx + cy) % 4 < 2
    return (check.astype(np.int32) + 2 * hatch.astype(np.int32))


CELL_CLASSES = _cell_classes()
N_SPECIAL = 2          # background, empty slot


@dataclass(slots=True)
class Geometry:
    """Where every card of the room is drawn, computed once per set of racks/nodes/cards."""

    width: int
    height: int
    pix: np.ndarray                   # (H, W) int32: palette index (card or special) + class × stride
    card_at: np.ndarray               # (H, W) int32: card position under the pixel, -1 for none
    card_origin: np.ndarray           # (N, 2) x, y of each card's top-left pixel
    node_rect: dict[str, QRectF]
    rack_labels: list[tuple[str, float, float]]
    row_labels: list[tuple[str, float, float]]
    n_cards: int
    key: int
    node_at: np.ndarray | None = None          # (H, W) int32: node (index in node_names) under the pixel
    node_names: list[str] | None = None
    card_node_ix: np.ndarray | None = None     # (N,) node index of each card
    node_column: dict[str, QRectF] | None = None   # the node's rack column, its label row included
    cardless: list[tuple[int, int, int, int, int]] | None = None   # node index, x0, y0, x1, y1
    card_pos: np.ndarray | None = None         # (P,) the cards drawn, in the order of card_flat's columns
    card_flat: np.ndarray | None = None        # (CELL², P) flat pixel index of each cell pixel of each card

    @property
    def stride(self) -> int:
        """Palette entries per pixel class."""
        return self.n_cards + N_SPECIAL


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
    node_names = [node.name for node in snapshot.nodes]
    node_ix = {name: i for i, name in enumerate(node_names)}
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
    node_at = np.full((height, width), -1, dtype=np.int32)
    origin = np.zeros((n, 2), dtype=np.int32)
    card_node_ix = np.fromiter((node_ix.get(c, -1) for c in snapshot.card_node), dtype=np.int32, count=n)
    node_rect: dict[str, QRectF] = {}
    node_column: dict[str, QRectF] = {}
    cardless: list[tuple[int, int, int, int, int]] = []
    rack_labels: list[tuple[str, float, float]] = []
    row_labels: list[tuple[str, float, float]] = []
    placed: list[int] = []
    y0 = ROW_GAP
    for (row, rack_names), row_h in zip(rows.items(), row_heights, strict=True):
        row_labels.append((row, -4.0, float(y0)))
        for k, rack in enumerate(rack_names):
            x0 = k * (rack_w + RACK_GAP)
            rack_labels.append((rack, float(x0), float(y0 - 2)))
            column = QRectF(x0, y0, rack_w - 1, row_h - ROW_GAP)
            y = y0
            top_slot = max((s for s, _ in racks[rack]), default=1)
            pix[y0:y0 + top_slot * PITCH - 1, x0:x0 + rack_w - 1] = n + 1     # empty slots until filled
            for slot, name in sorted(racks[rack]):
                lines = node_lines.get(name, 1)
                ny = max(y0 + (slot - 1) * PITCH, y) if slot > 0 else y
                pix[ny:ny + lines * PITCH - 1, x0:x0 + rack_w - 1] = n
                node_at[ny:ny + lines * PITCH - 1, x0:x0 + rack_w - 1] = node_ix.get(name, -1)
                node_rect[name] = QRectF(x0, ny, rack_w - 1, lines * PITCH - 1)
                node_column[name] = column
                positions = cards_of.get(name, [])
                if not positions:
                    # a node whose cards were never seen: an empty slot while it answers, its node
                    # pattern (stale / failed) otherwise; the status changes without a re-layout
                    pix[ny:ny + CELL, x0:x0 + rack_w - 1] = n + 1
                    cardless.append((node_ix.get(name, -1), x0, ny, x0 + rack_w - 1, ny + CELL))
                else:
                    j = np.arange(len(positions))
                    origin[positions, 0] = x0 + (j % CARDS_PER_ROW) * PITCH
                    origin[positions, 1] = ny + (j // CARDS_PER_ROW) * PITCH
                    placed.extend(positions)
                y = ny + lines * PITCH
        y0 += row_h
    # Every card's CELL x CELL block in one vectorised assignment, with its pattern classes.
    if placed:
        pos = np.asarray(placed, dtype=np.int32)
        cell = np.arange(CELL)
        ys = origin[pos, 1][:, None, None] + cell[None, :, None]
        xs = origin[pos, 0][:, None, None] + cell[None, None, :]
        pix[ys, xs] = pos[:, None, None] + CELL_CLASSES[None, :, :] * (n + N_SPECIAL)
        card_at[ys, xs] = pos[:, None, None]
        card_flat = np.ascontiguousarray((ys * width + xs).reshape(len(pos), CELL * CELL).T)
    else:
        pos = np.zeros(0, dtype=np.int32)
        card_flat = np.zeros((CELL * CELL, 0), dtype=np.int32)
    return Geometry(width, height, pix, card_at, origin, node_rect, rack_labels, row_labels, n,
                    snapshot.layout_key, node_at, node_names, card_node_ix, node_column, cardless, pos, card_flat)


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


def failed_cards(snapshot: Snapshot) -> np.ndarray:
    """Cards whose node failed (answered with an error, or not at all), as opposed to merely stale (once per
    snapshot: every recolour of the room asks)."""
    cached = snapshot.derived.get("failed_cards")
    if isinstance(cached, np.ndarray):
        return cached
    failed = np.zeros(len(snapshot.card_node), dtype=bool)
    names = {r.name for r in snapshot.nodes if r.status == "failed"}
    if names:
        idx = np.flatnonzero(snapshot.stale)
        failed[idx] = [snapshot.card_node[i] in names for i in idx.tolist()]
    snapshot.derived["failed_cards"] = failed
    return failed


def card_colours(snapshot: Snapshot, metric: str, low_zoom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """RGBA per card: plain pixels (N, 4) and the pattern classes checker, hatch, both (3, N, 4)."""
    out = class_colours(snapshot, metric, low_zoom)
    return out[0], out[1:]


def class_colours(snapshot: Snapshot, metric: str, low_zoom: bool = False) -> np.ndarray:
    """RGBA (4, N, 4) of every card for each pixel class (plain, checker, hatch, both).

    A card with a value has one colour in all four; N/A is checked grey, a stale node's cards grey
    hatched, a failed node's cards red hatched; at low zoom each of those is one flat colour.
    """
    n = len(snapshot.card_node)
    if metric == "health":
        base = HEALTH_COLOURS[np.clip(snapshot.health, 0, 3)]
        na = snapshot.health == 3
    elif metric == "links":
        # ok / warning (degraded, errors, flapping) / critical (down) / N/A: no link reported (or not read)
        state = snapshot.link_state if snapshot.link_state is not None else np.full(n, 3, dtype=np.int8)
        base = HEALTH_COLOURS[np.clip(state, 0, 3)]
        na = state == 3
    elif metric == "vendor":
        cached = snapshot.derived.get("vendor_colours")
        if not isinstance(cached, tuple):
            lut = {v: (*VENDOR_COLOURS.get(v or "", (0, 0, 0)), 255) for v in set(snapshot.vendor)}
            cached = (np.array([lut[v] for v in snapshot.vendor], dtype=np.uint8).reshape(n, 4),
                      np.fromiter((v not in VENDOR_COLOURS for v in snapshot.vendor), dtype=bool, count=n))
            snapshot.derived["vendor_colours"] = cached
        base, na = cached
    else:
        spec = METRICS[metric]
        values = card_values(snapshot, metric)
        na = ~np.isfinite(values)
        scaled = np.nan_to_num((values - spec.lo) / (spec.hi - spec.lo), nan=0.0)
        base = scale_of(spec)[np.clip((scaled * 255.0).astype(np.int32), 0, 255)]
    out = np.empty((4, n, 4), dtype=np.uint8)
    out[:] = base[None]
    failed = failed_cards(snapshot)
    stale = np.asarray(snapshot.stale, dtype=bool) & ~failed
    out32 = out.view(np.uint32).reshape(4, n)
    # index arrays, not boolean masks: a few hundred special cards among 100,000 cost next to nothing
    for mask, a, b, flat, bit in ((na, NA_A, NA_B, NA_LOW, 1), (stale, STALE_A, STALE_B, STALE_LOW, 2),
                                  (failed, FAILED_A, FAILED_B, FAILED_LOW, 2)):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        for k in range(4):
            out32[k, idx] = _packed(flat if low_zoom else (b if k & bit else a))
    return out


def _packed(c: RGBA) -> np.uint32:
    """One RGBA colour as the uint32 the image buffers hold."""
    return np.array(c, dtype=np.uint8).view(np.uint32)[0]


def palette(plain: np.ndarray, patt: np.ndarray, special: tuple[RGBA, RGBA] = (BACKGROUND, EMPTY_SLOT)) -> np.ndarray:
    """Palette indexed by Geometry.pix: for each pixel class (plain, checker, hatch, both) the cards
    then the background and the empty slot."""
    extra = np.array(special, dtype=np.uint8)
    parts: list[np.ndarray] = [plain, extra]
    for k in range(patt.shape[0]):
        parts += [patt[k], extra]
    return np.concatenate(parts, axis=0)


def _swatch(a: RGBA, b: RGBA, bit: int, w: int = 16, h: int = 12) -> QImage:
    """A legend swatch drawn with the room's own pattern at 3× (so it reads at legend size)."""
    yy, xx = np.indices((h, w)) // 3
    classes = CELL_CLASSES[yy % CELL, xx % CELL]
    rgba = np.where(((classes & bit) != 0)[..., None], np.array(b, np.uint8), np.array(a, np.uint8))
    rgba = np.ascontiguousarray(rgba.astype(np.uint8))
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def _bar(lut: np.ndarray, w: int = 240, h: int = 12) -> QImage:
    row = lut[(np.arange(w) * 255 // (w - 1))]
    rgba = np.ascontiguousarray(np.repeat(row[None], h, axis=0))
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


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


def _cross_polygon(r: float) -> QPolygonF:
    """A filled diagonal cross (the critical marker) centred on 0, 0."""
    t = r * 0.38
    pts = [(0, -t), (r - t, -r), (r, -r + t), (t, 0), (r, r - t), (r - t, r), (0, t), (-r + t, r), (-r, r - t),
           (-t, 0), (-r, -r + t), (-r + t, -r)]
    return QPolygonF([QPointF(a, b) for a, b in pts])


def _diamond_polygon(r: float) -> QPolygonF:
    """A diamond (the warning marker) centred on 0, 0."""
    return QPolygonF([QPointF(0, -r), QPointF(r, 0), QPointF(0, r), QPointF(-r, 0)])


def _vendor_text(vendor: str | None, lang: str) -> str:
    """The vendor in a tooltip: its Chinese name in Chinese, the site file's name otherwise."""
    if not vendor:
        return ""
    return vendor_name(vendor, lang) if lang.startswith("zh") else vendor


def _qcolor(c: RGBA | tuple[int, int, int] | np.ndarray) -> QColor:
    return QColor(int(c[0]), int(c[1]), int(c[2]))


class Legend(QWidget):
    """Colour scale with units and thresholds (or the vendors present), and the swatches of the
    health markers, N/A, stale, failed and empty slots. Colours follow the widget palette."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = METRICS["temperature_c"]     # not `metric`: that is QPaintDevice's virtual
        self.vendors: list[str] = []
        # Everything painted is made once here: no Qt objects allocated per paint.
        self._bars = {True: _bar(SCALE), False: _bar(SEQ_SCALE)}
        self._swatches = {"na": _swatch(NA_A, NA_B, 1), "stale": _swatch(STALE_A, STALE_B, 2),
                          "failed": _swatch(FAILED_A, FAILED_B, 2)}
        self._health = [_qcolor(c) for c in HEALTH_COLOURS[:3]]
        self._vendor = {k: _qcolor(c) for k, c in VENDOR_COLOURS.items()}
        self._thr_pen = QPen(QColor(0, 0, 0), 2)
        self._mark_pen = QPen(QColor(0, 0, 0), 1.2)
        self._crit_brush, self._warn_brush = QBrush(CRITICAL_MARK), QBrush(WARNING_MARK)
        self._cross, self._diamond = _cross_polygon(6.5), _diamond_polygon(4.5)
        self.empty_colour = _qcolor(EMPTY_SLOT)
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(7.0, self._font.pointSizeF() - 1))
        self.setMinimumHeight(2 * self._line_height() + 4)

    def set_metric(self, metric: Metric) -> None:
        """Show the scale of another metric."""
        self.spec = metric
        self._fit_height()
        self.update()

    def set_vendors(self, vendors: list[str]) -> None:
        """The vendors present in the room (the vendor legend lists only those)."""
        if vendors != self.vendors:
            self.vendors = vendors
            self._fit_height()
            self.update()

    def items(self) -> list[str]:
        """The legend's texts, in order (for tests and screen readers)."""
        spec = self.spec
        texts: list[str]
        if spec.key == "health":
            texts = [tr("ok"), tr("warning"), tr("critical")]
        elif spec.key == "links":
            texts = [tr("links up"), tr("link degraded, errors or flapping"), tr("link down")]
        elif spec.key == "vendor":
            lang = current_language()
            texts = [vendor_name(v, lang) for v in self.vendors]
        else:
            unit = f" {spec.unit}" if spec.unit else ""
            texts = [f"{spec.lo:g}{unit}", f"{spec.hi:g}{unit}"]
            texts += [f"{name} ≥ {thr:g}{unit}" for thr, name in ((spec.warn, tr("warn")), (spec.crit, tr("crit")))
                      if thr is not None]
        return texts + [tr("critical (any colour)"), tr("warning (any colour)"), tr("N/A (not reported)"),
                        tr("stale (no recent answer)"), tr("failed (node error)"), tr("empty slot")]

    def _entries(self) -> list[tuple[str, object, str]]:
        """(kind, payload, text) of every legend entry; a "break" starts the second group."""
        spec = self.spec
        texts = self.items()
        out: list[tuple[str, object, str]] = []
        if spec.key in ("health", "links"):
            out += [("fill", c, t) for c, t in zip(self._health, texts[:3], strict=True)]
            rest = texts[3:]
        elif spec.key == "vendor":
            out += [("fill", self._vendor.get(v), t) for v, t in zip(self.vendors, texts, strict=False)]
            rest = texts[len(self.vendors):]
        else:
            n_marks = sum(t is not None for t in (spec.warn, spec.crit))
            out += [("text", None, texts[0]), ("bar", spec, ""), ("text", None, texts[1])]
            if n_marks:
                out.append(("text", None, "  ".join(texts[2:2 + n_marks])))
            rest = texts[2 + n_marks:]
        out.append(("break", None, ""))
        crit, warn, na, stale, failed, empty = rest
        out += [("cross", None, crit), ("diamond", None, warn), ("swatch", "na", na), ("swatch", "stale", stale),
                ("swatch", "failed", failed), ("empty", None, empty)]
        return out

    def _flow(self, width: int) -> tuple[list[tuple[int, int, str, object, str]], int]:
        """Entries placed left to right, wrapping at the widget's width: (x, line, …) and the line count."""
        fm = QFontMetrics(self._font)
        placed: list[tuple[int, int, str, object, str]] = []
        x, line = 6, 0
        for kind, payload, text in self._entries():
            if kind == "break":
                x, line = 6, line + 1
                continue
            if kind == "bar":
                w = self._bars[True].width() + 6
            elif kind == "text":
                w = fm.horizontalAdvance(text) + 8
            else:
                w = 20 + fm.horizontalAdvance(text) + 14
            if x > 6 and x + w > width:
                x, line = 6, line + 1
            placed.append((x, line, kind, payload, text))
            x += w
        return placed, line + 1

    def _line_height(self) -> int:
        return max(12, QFontMetrics(self._font).height()) + 4

    def _fit_height(self) -> None:
        _, lines = self._flow(self.width())
        self.setMinimumHeight(lines * self._line_height() + 4)

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        self._fit_height()
        super().resizeEvent(event)  # type: ignore[arg-type]

    def paintEvent(self, _event: object) -> None:  # noqa: N802 - Qt API
        fg = self.palette().color(QPalette.ColorRole.WindowText)
        placed, _lines = self._flow(self.width())
        line_h = self._line_height()
        p = QPainter(self)
        p.setFont(self._font)
        fm = p.fontMetrics()
        h = 12
        for x, line, kind, payload, text in placed:
            y = 2 + line * line_h
            top = y + (line_h - h) // 2
            base = y + (line_h + fm.ascent() - fm.descent()) // 2
            p.setPen(fg)
            if kind == "text":
                p.drawText(x, base, text)
                continue
            if kind == "bar":
                assert isinstance(payload, Metric)
                bar = self._bars[payload.alarm]
                p.drawImage(x, top, bar)
                p.setPen(self._thr_pen)
                for thr in (payload.warn, payload.crit):
                    if thr is not None:
                        tx = x + int((thr - payload.lo) / (payload.hi - payload.lo) * (bar.width() - 1))
                        p.drawLine(tx, top - 2, tx, top + h + 2)
                continue
            if kind == "fill":
                p.fillRect(x, top, 14, h, payload if isinstance(payload, QColor) else fg)
            elif kind in ("cross", "diamond"):
                p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                p.setPen(self._mark_pen)
                p.setBrush(self._crit_brush if kind == "cross" else self._warn_brush)
                cx, cy = x + 7, top + h / 2
                p.translate(cx, cy)
                p.drawPolygon(self._cross if kind == "cross" else self._diamond)
                p.translate(-cx, -cy)
                p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
                p.setPen(fg)
            elif kind == "swatch":
                p.drawImage(x, top, self._swatches[str(payload)])
            elif kind == "empty":
                p.fillRect(x, top, 16, h, self.empty_colour)
            p.drawText(x + 20, base, text)
        p.end()


class HeatmapView(QWidget):
    """Metric selector, search box, reset, legend and the zoomable room image."""

    card_clicked = Signal(str, int)   # node, card index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        self.geometry_: Geometry | None = None
        self.metric_key = "temperature_c"
        self.low_zoom = False
        self.metric_box = QComboBox()
        for key, spec in METRICS.items():
            self.metric_box.addItem(tr(spec.label), key)
        self.metric_box.currentIndexChanged.connect(self._metric_changed)
        self.search = QLineEdit()
        self.search.setPlaceholderText(tr("Find node or card serial…"))
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(lambda: self.find_text(self.search.text()))
        self.reset_button = QPushButton(tr("Reset view"))
        self.reset_button.setToolTip(tr("Show the whole room (Home or 0)"))
        self.reset_button.clicked.connect(self.reset_view)
        self.legend = Legend()
        top = QHBoxLayout()
        top.addWidget(QLabel(tr("Colour by:")))
        top.addWidget(self.metric_box)
        top.addSpacing(12)
        top.addWidget(self.search, 1)
        top.addWidget(self.reset_button)
        self.plot = pg.GraphicsLayoutWidget()
        self.view = self.plot.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = _Image(self)
        self.view.addItem(self.image)
        # Health over every colour mode: markers of a fixed screen size, visible at any zoom.
        self.warn_marks = pg.ScatterPlotItem(pxMode=True, symbol="d", size=9, pen=pg.mkPen(0, 0, 0, width=1.2),
                                             brush=pg.mkBrush(WARNING_MARK))
        # critical: a red cross edged white on a black halo, so it reads on red, white and dark cards
        self.crit_halo = pg.ScatterPlotItem(pxMode=True, symbol="x", size=18, pen=pg.mkPen(0, 0, 0, width=2.0),
                                            brush=pg.mkBrush(0, 0, 0))
        self.crit_marks = pg.ScatterPlotItem(pxMode=True, symbol="x", size=14, pen=pg.mkPen(255, 255, 255, width=1.2),
                                             brush=pg.mkBrush(CRITICAL_MARK))
        for z, item in ((5, self.warn_marks), (6, self.crit_halo), (7, self.crit_marks)):
            item.setZValue(z)
            item.setAcceptHoverEvents(False)
            self.view.addItem(item)
        self._marked: tuple[int, bytes] | None = None
        self._mark_size = 14
        self._vendors_key: int | None = None
        # The search highlight: 3 px bright yellow on a 7 px dark outline, in screen pixels at any zoom.
        self.highlight_outline = QGraphicsRectItem()
        self.highlight = QGraphicsRectItem()
        for item, colour, width, z in ((self.highlight_outline, QColor(0, 0, 0), 7.0, 10),
                                       (self.highlight, HIGHLIGHT, 3.0, 11)):
            pen = QPen(colour, width)
            pen.setCosmetic(True)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            item.setPen(pen)
            item.setZValue(z)
            item.hide()
            self.view.addItem(item)
        self._labels: list[pg.TextItem] = []
        self._row_items: list[tuple[pg.TextItem, float, float]] = []
        self._rack_items: list[pg.TextItem] = []
        self._label_spec: object = None
        self._buffers: list[np.ndarray] = []
        self._buffers_special: tuple[RGBA, RGBA] | None = None
        self._flip = 0
        self._special: tuple[RGBA, RGBA] = (BACKGROUND, EMPTY_SLOT)
        self._text_colour = QColor(230, 230, 230)
        self.view.sigRangeChanged.connect(self._on_view_range_changed)
        self.view.sigResized.connect(self._on_view_range_changed)
        for key in (Qt.Key.Key_Home, Qt.Key.Key_0):
            shortcut = QShortcut(QKeySequence(key), self.plot)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.reset_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        self.last_refresh_s = 0.0
        self.last_tooltip = ""
        self._apply_palette()

    # ---- theme ------------------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
            self._recolour()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        """Background, empty slots, labels and legend from the widget palette (dark or light theme)."""
        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Window)
        fg = pal.color(QPalette.ColorRole.WindowText)
        mix = 0.12                      # an empty slot: a step from the background towards the text
        empty = QColor(round(bg.red() + (fg.red() - bg.red()) * mix), round(bg.green() + (fg.green() - bg.green()) * mix),
                       round(bg.blue() + (fg.blue() - bg.blue()) * mix))
        self._special = ((bg.red(), bg.green(), bg.blue(), 255), (empty.red(), empty.green(), empty.blue(), 255))
        self._text_colour = QColor(fg)
        self.plot.setBackground(bg)
        self.legend.empty_colour = empty
        self.legend.update()
        fill = QColor(bg)
        fill.setAlpha(200)
        self._label_fill = pg.mkBrush(fill)
        for item in self._labels:
            item.setColor(self._text_colour)
            item.fill = self._label_fill
            item.update()

    # ---- data -------------------------------------------------------------------------------------

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Recolour for a new sweep; the layout is recomputed only when racks, nodes or cards change."""
        t0 = time.perf_counter()
        self.snapshot = snapshot
        if self.geometry_ is None or self.geometry_.key != snapshot.layout_key:
            ready = snapshot.derived.get("geometry")
            self.geometry_ = ready if isinstance(ready, Geometry) and ready.key == snapshot.layout_key \
                and ready.n_cards == len(snapshot.card_node) else compute_geometry(snapshot)
            self._buffers = []
            self._marked = None
            self._place_labels()
            self.reset_view()
        self._recolour()
        self._mark_health()
        if self._vendors_key != snapshot.layout_key:         # a card's vendor changes only with the layout
            self._vendors_key = snapshot.layout_key
            order = list(VENDOR_COLOURS)
            self.legend.set_vendors(sorted({v for v in snapshot.vendor if v in VENDOR_COLOURS}, key=order.index))
        self.last_refresh_s = time.perf_counter() - t0

    def _recolour(self) -> None:
        s, g = self.snapshot, self.geometry_
        if s is None or g is None:
            return
        colours = class_colours(s, self.metric_key, self.low_zoom)
        if not self._buffers or self._buffers_special != self._special:
            # New layout or theme: the whole image (background, empty slots, gaps) into both buffers.
            pal32 = palette(colours[0], colours[1:], self._special).view(np.uint32).reshape(-1)
            self._buffers = [np.take(pal32, g.pix) for _ in range(2)]
            self._buffers_special = self._special
        self._flip ^= 1
        out = self._buffers[self._flip]
        if g.card_pos is not None and g.card_flat is not None:
            # Only the card pixels change between sweeps: gather each card's class colours into its
            # cell pixels (a quarter of the image's pixels, and no palette of the whole image).
            per_card = colours.view(np.uint32).reshape(4, -1)[:, g.card_pos]
            out.reshape(-1)[g.card_flat] = per_card[CELL_CLASSES.reshape(-1)]
        img = out.view(np.uint8).reshape(g.height, g.width, 4)
        self._draw_cardless(img)
        self.image.setImage(img, autoLevels=False, levels=None)

    def _draw_cardless(self, img: np.ndarray) -> None:
        """Nodes whose cards were never seen: their node pattern while they are not ok."""
        s, g = self.snapshot, self.geometry_
        if s is None or g is None or not g.cardless:
            return
        status = {r.name: r.status for r in s.nodes}
        names = g.node_names or []
        for ix, x0, y0, x1, y1 in g.cardless:
            state = status.get(names[ix], "unknown") if ix >= 0 else "unknown"
            if state == "ok":
                img[y0:y1, x0:x1] = self._special[1]
                continue
            a, b, flat = (FAILED_A, FAILED_B, FAILED_LOW) if state == "failed" else (STALE_A, STALE_B, STALE_LOW)
            if self.low_zoom:
                img[y0:y1, x0:x1] = flat
            else:
                yy, xx = np.indices((y1 - y0, x1 - x0))
                img[y0:y1, x0:x1] = np.where(((xx + yy) % 4 < 2)[..., None], np.array(b, np.uint8), np.array(a, np.uint8))

    def _mark_health(self) -> None:
        """Critical and warning markers over the cards, renewed only when health changed."""
        s, g = self.snapshot, self.geometry_
        if s is None or g is None:
            return
        health = np.asarray(s.health, dtype=np.int8)
        key = (g.key, health.tobytes())
        if key == self._marked:
            return
        self._marked = key
        centre = g.card_origin.astype(np.float64) + CELL / 2
        sizes = (self._mark_size + 4, self._mark_size, max(9, self._mark_size * 9 // 14))
        for item, code, size in zip((self.crit_halo, self.crit_marks, self.warn_marks), (2, 2, 1), sizes, strict=True):
            idx = np.flatnonzero(health == code)
            item.setData(x=centre[idx, 0], y=centre[idx, 1], size=size)

    def _place_labels(self) -> None:
        assert self.geometry_ is not None
        wanted = (self.geometry_.rack_labels, self.geometry_.row_labels)
        if wanted == self._label_spec:
            return                      # same racks and rows: keep the label items (they are slow to make)
        self._label_spec = wanted
        for item in self._labels:
            self.view.removeItem(item)
        self._labels = []
        self._row_items = []
        self._rack_items = []
        for text, x, y in self.geometry_.rack_labels:
            item = pg.TextItem(text, color=self._text_colour, anchor=(0, 1))
            item.setPos(x, y)
            self.view.addItem(item)
            self._labels.append(item)
            self._rack_items.append(item)
        for text, x, y in self.geometry_.row_labels:
            item = pg.TextItem(f"{tr('Row')} {text}", color=self._text_colour, anchor=(1, 0), fill=self._label_fill)
            item.setZValue(8)
            item.setPos(x, y)
            self.view.addItem(item)
            self._labels.append(item)
            self._row_items.append((item, x, y))
        self._on_view_range_changed()

    def _metric_changed(self) -> None:
        self.set_metric(str(self.metric_box.currentData()))

    def set_metric(self, key: str) -> None:
        """Colour by another metric."""
        self.metric_key = key
        i = self.metric_box.findData(key)
        if i >= 0 and i != self.metric_box.currentIndex():
            blocked = self.metric_box.blockSignals(True)     # one recolour, not a second one from the box
            self.metric_box.setCurrentIndex(i)
            self.metric_box.blockSignals(blocked)
        self.legend.set_metric(METRICS[key])
        self._recolour()

    # ---- zoom -------------------------------------------------------------------------------------

    def screen_px_per_card(self) -> float:
        """How many screen pixels one card cell spans at the current zoom."""
        (x0, x1), _ = self.view.viewRange()
        width = self.view.boundingRect().width()
        return CELL * width / (x1 - x0) if x1 > x0 and width > 0 else float(CELL)

    def _on_view_range_changed(self, *_args: object) -> None:
        px = self.screen_px_per_card()
        low = px < LOW_ZOOM_PX
        if low != self.low_zoom:
            self.low_zoom = low
            self._recolour()
        # Markers: never smaller than 14/9 px, growing with the card when zoomed in (stepwise).
        size = int(max(14.0, min(48.0, 0.7 * px)) // 2 * 2)
        if size != self._mark_size:
            self._mark_size = size
            self.crit_marks.setSize(size)
            self.crit_halo.setSize(size + 4)
            self.warn_marks.setSize(max(9, size * 9 // 14))
        # Row labels stay readable: when the room's left edge is out of view, the label sits at the
        # view's left edge (on its own background) instead of being cut off.
        if not self._row_items:
            return
        (vx0, vx1), _ = self.view.viewRange()
        width = max(1.0, self.view.boundingRect().width())
        per_px = (vx1 - vx0) / width
        show_racks = ROW_GAP / per_px >= QFontMetrics(self.font()).height() - 2
        for item in self._rack_items:
            item.setVisible(show_racks)
        for item, x, y in self._row_items:
            text_w = item.boundingRect().width() * per_px
            if vx0 > x - text_w:
                item.setAnchor((0, 0))
                item.setPos(vx0 + 2 * per_px, y)
            else:
                item.setAnchor((1, 0))
                item.setPos(x, y)

    def reset_view(self) -> None:
        """Fit the whole room, its row and rack labels included."""
        g = self.geometry_
        if g is None:
            return
        fm = QFontMetrics(self.font())
        width = max(100.0, self.view.boundingRect().width() or float(self.plot.width()))
        label_w = max((fm.horizontalAdvance(f"{tr('Row')} {t}") for t, _, _ in g.row_labels), default=30) + 12
        scale = max(0.05, (width - label_w) / g.width)
        left = label_w / scale
        top = (fm.height() + 4) / scale
        self.view.setRange(QRectF(-left, -top, g.width + left, g.height + top), padding=0.02)

    def _zoom_to_column(self, column: QRectF) -> None:
        """Zoom so a whole rack column, its rack label above, is in view with margin."""
        vb = self.view
        w_px = max(100.0, vb.boundingRect().width() or float(self.plot.width()))
        h_px = max(100.0, vb.boundingRect().height() or float(self.plot.height()))
        label_px = QFontMetrics(self.font()).height() + 8
        margin_px = 24.0
        scale = min((h_px - label_px - 2 * margin_px) / max(1.0, column.height()),
                    (w_px - 2 * margin_px) / max(1.0, column.width()))
        scale = max(0.5, min(scale, 8.0))      # the neighbours stay in view as context
        m = margin_px / scale
        top = column.top() - (label_px + margin_px) / scale
        vb.setRange(QRectF(column.left() - m, top, column.width() + 2 * m, column.bottom() + m - top), padding=0)

    # ---- interaction ------------------------------------------------------------------------------

    def _pixel_index(self, x: float, y: float) -> tuple[int, int] | None:
        g = self.geometry_
        if g is None:
            return None
        xi, yi = int(math.floor(x)), int(math.floor(y))
        if not (0 <= xi < g.width and 0 <= yi < g.height):
            return None
        return xi, yi

    def card_at(self, x: float, y: float) -> int | None:
        """Card position under image coordinates, or None."""
        at = self._pixel_index(x, y)
        if at is None or self.geometry_ is None:
            return None
        pos = int(self.geometry_.card_at[at[1], at[0]])
        return pos if pos >= 0 else None

    def node_at(self, x: float, y: float) -> str | None:
        """Node name under image coordinates (its cards, the gaps between them, or its empty line)."""
        g = self.geometry_
        at = self._pixel_index(x, y)
        if at is None or g is None or g.node_at is None or not g.node_names:
            return None
        ix = int(g.node_at[at[1], at[0]])
        return g.node_names[ix] if 0 <= ix < len(g.node_names) else None

    def _node_lines(self, name: str) -> list[str]:
        """Status, last error and last seen of a node that is not ok ([] when it is)."""
        s = self.snapshot
        row = next((r for r in s.nodes if r.name == name), None) if s is not None else None
        if s is None or row is None or row.status == "ok":
            return []
        if row.status == "failed":
            lines = [tr("FAILED: the node did not answer or reported an error")]
        else:
            lines = [tr("STALE: no recent answer from the node")]
        lines.append(f"{tr('last error')}: {row.last_error or tr('none')}")
        seen = tr("never") if row.last_seen is None else tr("%1 ago").replace("%1", shown_duration(s.taken_at - row.last_seen))
        lines.append(f"{tr('last seen')}: {seen}")
        return lines

    def node_tooltip(self, name: str) -> str:
        """Node name, status, last error and last seen age (for a node without cards to hover)."""
        s = self.snapshot
        row = next((r for r in s.nodes if r.name == name), None) if s is not None else None
        status = tr(row.status) if row is not None else tr("unknown")
        return "\n".join([f"{name}  ({status})", *self._node_lines(name)])

    def tooltip_for(self, pos: int) -> str:
        """Node, card, vendor, model, the values with their age; the node's failure when it failed."""
        s = self.snapshot
        assert s is not None
        node = s.card_node[pos]
        na = tr("N/A")
        lang = current_language()
        lines = [f"{node}  {tr('card')} {int(s.card_idx[pos])}",
                 f"{_vendor_text(s.vendor[pos], lang) or na}  {s.model[pos] or na}  "
                 f"{tr('serial')} {s.serial[pos] or na}"]
        node_lines = self._node_lines(node)
        if node_lines:
            lines += node_lines
            lines.append(tr("values below are STALE (last known)"))
        elif s.stale[pos]:
            lines.append(tr("STALE: no recent answer from the node"))
        m = s.metrics

        def fmt(value: float, unit: str, digits: int = 0) -> str:
            return na if not math.isfinite(float(value)) else f"{float(value):.{digits}f} {unit}".strip()

        lines.append(f"{tr('Temperature')}: {fmt(m['temperature_c'][pos], '°C')}   "
                     f"{tr('Utilization')}: {fmt(m['utilization_pct'][pos], '%')}")
        lines.append(f"{tr('Memory')}: {fmt(m['memory_used_mib'][pos], '')} / {fmt(m['memory_total_mib'][pos], 'MiB')}"
                     f"   {tr('Power')}: {fmt(m['power_w'][pos], 'W', 1)}")
        health = ("ok", "warning", "critical", "unknown")[int(np.clip(s.health[pos], 0, 3))]
        ts = float(s.ts[pos])
        age = tr("never") if not math.isfinite(ts) else shown_duration(s.taken_at - ts)
        lines.append(f"{tr('Health')}: {tr(health)}   {tr('last sample %1 ago').replace('%1', age)}"
                     if math.isfinite(ts) else f"{tr('Health')}: {tr(health)}   {tr('no sample yet')}")
        if s.link_state is not None:
            link = ("links up", "link degraded, errors or flapping", "link down", "no links reported")
            state = int(np.clip(s.link_state[pos], 0, 3))
            # a stale node's links are not known to be up now (console.live.not_shown_up does it for a read;
            # this covers a snapshot marked stale afterwards, e.g. when the source went away)
            text = tr("links not known: the node is not answering") if s.stale[pos] and state in (0, 3) \
                else tr(link[state])
            lines.append(f"{tr('Links')}: {text}")
        return "\n".join(lines)

    def hover_at(self, x: float, y: float) -> None:
        """Show the tooltip of the card (or node) under image coordinates."""
        pos = self.card_at(x, y)
        node = self.node_at(x, y) if pos is None else None
        if self.snapshot is None or (pos is None and node is None):
            QToolTip.hideText()
            self.last_tooltip = ""
            return
        self.last_tooltip = self.tooltip_for(pos) if pos is not None else self.node_tooltip(node or "")
        QToolTip.showText(QCursor.pos(), self.last_tooltip, self.plot)

    def click_at(self, x: float, y: float) -> bool:
        """Open the card under image coordinates (emits card_clicked)."""
        pos = self.card_at(x, y)
        if pos is None or self.snapshot is None:
            return False
        self.card_clicked.emit(self.snapshot.card_node[pos], int(self.snapshot.card_idx[pos]))
        return True

    def find_text(self, text: str) -> bool:
        """Highlight a node (by name) or a card (by serial) and zoom to its rack column."""
        text = text.strip()
        s, g = self.snapshot, self.geometry_
        if not text or s is None or g is None:
            self._hide_highlight()
            return False
        if text in g.node_rect:
            return self.focus_node(text)
        low = text.lower()
        for pos, serial in enumerate(s.serial):
            if serial and serial.lower() == low:
                return self._focus_pos(pos)
        matches = [name for name in g.node_rect if low in name.lower()]
        if matches:
            return self.focus_node(matches[0])
        self._hide_highlight()
        return False

    def focus_card(self, node: str, idx: int) -> bool:
        """Highlight one card and zoom to its rack column."""
        s = self.snapshot
        if s is None or self.geometry_ is None:
            return False
        pos = s.index_of(node, idx)
        return False if pos is None else self._focus_pos(pos)

    def _focus_pos(self, pos: int) -> bool:
        g = self.geometry_
        assert g is not None and self.snapshot is not None
        x, y = (int(v) for v in g.card_origin[pos])
        self._show_highlight(QRectF(x - 1, y - 1, CELL + 2, CELL + 2), self.snapshot.card_node[pos])
        return True

    def focus_node(self, name: str) -> bool:
        """Highlight one node's cards and zoom to its rack column."""
        if self.geometry_ is None or name not in self.geometry_.node_rect:
            return False
        self._show_highlight(self.geometry_.node_rect[name].adjusted(-1, -1, 1, 1), name)
        return True

    def _hide_highlight(self) -> None:
        self.highlight.hide()
        self.highlight_outline.hide()

    def _show_highlight(self, rect: QRectF, node: str) -> None:
        for item in (self.highlight_outline, self.highlight):
            item.setRect(rect)
            item.show()
        g = self.geometry_
        column = g.node_column.get(node) if g is not None and g.node_column else None
        self._zoom_to_column(column if column is not None else rect)
