"""The room heatmap offscreen (issue 15): health markers in every colour mode, failed vs stale nodes,
sequential load scale, low-zoom colours, focus zoom and highlight, vendor legend, reset view, theme
palette and the Chinese strings — checked on the image's and the screen's pixel colours."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPalette

from console.live import NodeRow, Snapshot
from widgets import heatmap as hm

NOW = 1_800_000_000.0
KEYS = ("temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w")


def _room(racks: int = 2, slots: int = 4, cards: int = 8) -> Snapshot:
    """racks × slots nodes of `cards` cards, all ok, every metric reported."""
    nodes, card_node, vendor = [], [], []
    vendors = ["nvidia", "ascend"]
    for r in range(racks):
        for s in range(1, slots + 1):
            name = f"n-a{r + 1:02d}-{s}"
            nodes.append(NodeRow(name, "ok", vendors[r % 2], f"A{r + 1:02d}", s, cards, NOW - 5, None, 0.1))
            card_node += [name] * cards
            vendor += [vendors[r % 2]] * cards
    m = len(card_node)
    metrics = {k: np.full(m, 50.0, dtype=np.float32) for k in KEYS}
    metrics["memory_total_mib"][:] = 100.0
    snap = Snapshot(NOW, card_node, np.tile(np.arange(cards, dtype=np.int32), len(nodes)),
                    np.arange(1, m + 1, dtype=np.int64), vendor, ["M"] * m, [f"SN{i}" for i in range(m)],
                    np.full(m, NOW - 5), metrics, np.zeros(m, dtype=np.int8), np.zeros(m, dtype=bool), nodes)
    snap.layout_key = hash((racks, slots, cards))
    return snap


def _set_node(snap: Snapshot, name: str, status: str, error: str | None, seen_ago: float) -> None:
    i = next(k for k, r in enumerate(snap.nodes) if r.name == name)
    r = snap.nodes[i]
    snap.nodes[i] = NodeRow(r.name, status, r.vendor, r.rack, r.slot, r.cards, NOW - seen_ago, error, None)
    if status != "ok":
        snap.stale[[c == name for c in snap.card_node]] = True


def _view(qtbot, snap: Snapshot, w: int = 900, h: int = 600) -> hm.HeatmapView:
    view = hm.HeatmapView()
    qtbot.addWidget(view)
    view.resize(w, h)
    view.show()
    qtbot.waitExposed(view)
    view.set_snapshot(snap)
    return view


def _img(view: hm.HeatmapView, pos: int, dx: int, dy: int) -> tuple[int, ...]:
    x, y = (int(v) for v in view.geometry_.card_origin[pos])
    return tuple(int(c) for c in view.image.image[y + dy, x + dx])


def _cell(view: hm.HeatmapView, pos: int) -> set[tuple[int, ...]]:
    return {_img(view, pos, dx, dy) for dx in range(hm.CELL) for dy in range(hm.CELL)}


def _screen(view: hm.HeatmapView, x: float, y: float) -> QColor:
    """Colour on screen at image coordinates x, y (the plot as painted)."""
    scene = view.view.mapViewToScene(QPointF(x, y))
    pt = view.plot.mapFromScene(scene)
    return view.plot.viewport().grab().toImage().pixelColor(pt)


def _card_centre(view: hm.HeatmapView, pos: int) -> tuple[float, float]:
    x, y = view.geometry_.card_origin[pos]
    return float(x) + hm.CELL / 2, float(y) + hm.CELL / 2


def _all_scale_colours() -> set[tuple[int, ...]]:
    return {tuple(int(c) for c in row) for lut in (hm.SCALE, hm.SEQ_SCALE) for row in lut}


@pytest.mark.parametrize("metric", list(hm.METRICS))
def test_critical_and_warning_visible_in_every_colour_mode(qtbot, metric):
    snap = _room()
    crit, warn, na = 3, 12, 20
    for k in KEYS:
        snap.metrics[k][crit] = np.nan            # Xid 79: fallen off the bus, nothing reported
        snap.metrics[k][na] = np.nan              # not reported, health ok
    snap.health[crit] = 2
    snap.health[warn] = 1
    view = _view(qtbot, snap)
    view.set_metric(metric)
    on_crit = _screen(view, *_card_centre(view, crit))
    on_warn = _screen(view, *_card_centre(view, warn))
    on_na = _screen(view, *_card_centre(view, na))
    assert on_crit.red() > 200 and on_crit.green() < 80 and on_crit.blue() < 80, on_crit.name()
    assert on_warn.red() > 200 and 120 < on_warn.green() < 210 and on_warn.blue() < 60, on_warn.name()
    if metric not in ("health", "vendor"):       # (those modes colour it by its health / vendor)
        assert on_na.red() == on_na.green() == on_na.blue(), "N/A without a fault stays plain grey"
    assert on_crit != on_na
    texts = view.legend.items()
    assert "critical (any colour)" in texts and "warning (any colour)" in texts


def test_critical_marker_stays_visible_at_low_zoom(qtbot):
    snap = _room(racks=20, slots=16)
    snap.health[77] = 2
    view = _view(qtbot, snap, 360, 300)
    assert view.low_zoom and view.screen_px_per_card() < hm.LOW_ZOOM_PX
    cx, cy = _card_centre(view, 77)
    colour = _screen(view, cx, cy)
    assert colour.red() > 200 and colour.green() < 80, colour.name()
    assert view.crit_marks.points()[0].size() >= 14        # screen pixels, whatever the zoom


def test_load_metrics_use_a_sequential_scale_and_temperature_keeps_its_thresholds(qtbot):
    snap = _room()
    snap.metrics["utilization_pct"][0] = 100.0
    snap.metrics["utilization_pct"][1] = 0.0
    view = _view(qtbot, snap)
    view.set_metric("utilization_pct")
    busy = _img(view, 0, 1, 1)
    assert busy == tuple(int(c) for c in hm.SEQ_SCALE[255])
    assert _img(view, 1, 1, 1) == tuple(int(c) for c in hm.SEQ_SCALE[0])
    for key in ("utilization_pct", "memory_used_pct", "power_w"):
        assert not hm.METRICS[key].alarm and hm.scale_of(hm.METRICS[key]) is hm.SEQ_SCALE
    # nothing red or amber in the load scale: blue is never below red, red never dominates
    seq = hm.SEQ_SCALE[:, :3].astype(int)
    assert (seq[:, 2] >= seq[:, 0]).all() and (seq[:, 2] >= 120).all()
    temp = hm.METRICS["temperature_c"]
    assert temp.alarm and (temp.warn, temp.crit) == (85.0, 95.0)
    view.set_metric("temperature_c")
    assert "warn ≥ 85 °C" in view.legend.items() or "warn ≥ 85 °C  crit ≥ 95 °C" in " ".join(view.legend.items())
    assert "crit ≥ 95 °C" in " ".join(view.legend.items())
    snap.metrics["temperature_c"][0] = 100.0
    view.set_snapshot(snap)
    assert _img(view, 0, 1, 1) == tuple(int(c) for c in hm.SCALE[255])


def test_failed_and_stale_nodes_drawn_apart_with_tooltips(qtbot):
    snap = _room()
    _set_node(snap, "n-a01-2", "failed", "connection timed out", 600)
    _set_node(snap, "n-a01-3", "stale", None, 95)
    view = _view(qtbot, snap)
    failed_pos = snap.card_node.index("n-a01-2")
    stale_pos = snap.card_node.index("n-a01-3")
    failed, stale = _cell(view, failed_pos), _cell(view, stale_pos)
    assert failed == {hm.FAILED_A, hm.FAILED_B}, "red hatch"
    assert stale == {hm.STALE_A, hm.STALE_B}, "grey hatch"
    assert not (failed | stale) & _all_scale_colours()
    ok = _cell(view, 0)
    assert len(ok) == 1 and not ok & (failed | stale)
    text = view.tooltip_for(failed_pos)
    assert "n-a01-2" in text and "FAILED" in text and "connection timed out" in text and "10 min ago" in text
    text = view.tooltip_for(stale_pos)
    assert "n-a01-3" in text and "STALE" in text and "last seen: 95 s ago" in text and "FAILED" not in text
    # hovering the gap between a failed node's cards still explains the node
    x, y = view.geometry_.card_origin[failed_pos]
    assert view.card_at(x + hm.CELL, y) is None and view.node_at(x + hm.CELL, y) == "n-a01-2"
    view.hover_at(x + hm.CELL + 0.5, y + 0.5)
    assert "connection timed out" in view.last_tooltip and "failed" in view.last_tooltip


def test_a_node_without_cards_follows_its_status_without_relayout(qtbot):
    snap = _room()
    keep = [i for i, c in enumerate(snap.card_node) if c != "n-a02-1"]
    gone = Snapshot(NOW, [snap.card_node[i] for i in keep], snap.card_idx[keep], snap.card_id[keep],
                    [snap.vendor[i] for i in keep], [snap.model[i] for i in keep], [snap.serial[i] for i in keep],
                    snap.ts[keep], {k: v[keep] for k, v in snap.metrics.items()}, snap.health[keep], snap.stale[keep],
                    list(snap.nodes))
    gone.layout_key = 42
    _set_node(gone, "n-a02-1", "failed", "host key changed", 30)
    view = _view(qtbot, gone)
    rect = view.geometry_.node_rect["n-a02-1"]
    x, y = int(rect.x()), int(rect.y())
    img = view.image.image
    assert {tuple(int(c) for c in img[y + j, x + i]) for i in range(4) for j in range(4)} == {hm.FAILED_A, hm.FAILED_B}
    assert "host key changed" in view.node_tooltip("n-a02-1")
    _set_node(gone, "n-a02-1", "ok", None, 5)
    view.set_snapshot(gone)
    assert tuple(int(c) for c in view.image.image[y, x]) == view._special[1], "an empty slot again"


def test_low_zoom_patterns_become_flat_colours_outside_every_scale(qtbot):
    snap = _room(racks=20, slots=16)
    snap.metrics["temperature_c"][:16] = np.nan      # two whole nodes not reporting it
    _set_node(snap, "n-a03-1", "failed", "refused", 60)
    _set_node(snap, "n-a04-1", "stale", None, 60)
    failed_pos, stale_pos = snap.card_node.index("n-a03-1"), snap.card_node.index("n-a04-1")
    view = _view(qtbot, snap, 360, 300)
    assert view.low_zoom
    assert _cell(view, 5) == {hm.NA_LOW} and _cell(view, failed_pos) == {hm.FAILED_LOW}
    assert _cell(view, stale_pos) == {hm.STALE_LOW}
    flats = {hm.NA_LOW, hm.STALE_LOW, hm.FAILED_LOW}
    assert not flats & _all_scale_colours() and len(flats) == 3
    specials = set(view._special)
    assert not flats & specials
    # far apart from each other, from the room's background and empty slots
    for a, b in itertools.combinations(list(flats) + list(specials), 2):
        assert math.dist(a[:3], b[:3]) > 40, (a, b)
    # what the screen shows at 1–2 px per card is that flat colour, not a sampled pattern pixel
    rect = view.geometry_.node_rect["n-a01-1"].united(view.geometry_.node_rect["n-a01-2"])
    assert _screen(view, rect.center().x(), rect.center().y()).getRgb() == hm.NA_LOW
    # zoomed in, the patterns return
    x, y = view.geometry_.card_origin[5]
    view.view.setRange(QRectF(float(x) - 10, float(y) - 10, 40, 40), padding=0)
    assert not view.low_zoom
    assert _cell(view, 5) == {hm.NA_A, hm.NA_B} and _cell(view, failed_pos) == {hm.FAILED_A, hm.FAILED_B}


def _label_rects(view: hm.HeatmapView, items) -> list[QRectF]:
    port = view.plot.viewport().rect()
    out = []
    for item in items:
        rect = view.plot.mapFromScene(item.sceneBoundingRect()).boundingRect()
        out.append((rect, port))
    return out


@pytest.mark.parametrize("how", ["node", "card", "find"])
def test_focus_zooms_to_the_whole_rack_column_with_labels(qtbot, how):
    snap = _room(racks=20, slots=16)
    view = _view(qtbot, snap, 900, 600)
    target = "n-a12-9"
    pos = snap.card_node.index(target)
    if how == "node":
        assert view.focus_node(target)
    elif how == "card":
        assert view.focus_card(target, 3)
    else:
        assert view.find_text(snap.serial[pos + 3])
    column = view.geometry_.node_column[target]
    (x0, x1), (y0, y1) = view.view.viewRange()
    assert x0 < column.left() - 1 and x1 > column.right() + 1 and y0 < column.top() - 4 and y1 > column.bottom() + 1
    view.plot.viewport().grab()                 # a real paint: the view applies its new transform
    port = view.plot.viewport().rect()
    rack_label = next(item for item in view._rack_items if item.textItem.toPlainText() == "A12")
    row_label = view._row_items[0][0]
    for item in (rack_label, row_label):
        assert item.isVisible()
        size = item.textItem.boundingRect().size()          # screen pixels (the text ignores the zoom)
        ax, ay = item.anchor.x(), item.anchor.y()
        at = view.plot.mapFromScene(item.scenePos())
        rect = QRectF(at.x() - ax * size.width(), at.y() - ay * size.height(), size.width(), size.height())
        assert QRectF(port).contains(rect), (item.textItem.toPlainText(), rect, port)
    # the highlight: 3 px bright yellow on a dark outline, in screen pixels
    pen = view.highlight.pen()
    assert view.highlight.isVisible() and view.highlight_outline.isVisible()
    assert pen.isCosmetic() and pen.widthF() >= 3 and pen.color().value() > 200 and pen.color().saturation() > 200
    outline = view.highlight_outline.pen()
    assert outline.isCosmetic() and outline.widthF() > pen.widthF() and outline.color().value() < 40
    edge = view.highlight.rect()
    on_screen = _screen(view, edge.left(), edge.center().y())
    assert (on_screen.red(), on_screen.green(), on_screen.blue()) == (255, 230, 0)


def test_reset_view_button_and_keys_fit_the_whole_room(qtbot):
    snap = _room(racks=20, slots=16)
    view = _view(qtbot, snap, 900, 600)
    g = view.geometry_

    def whole() -> bool:
        (x0, x1), (y0, y1) = view.view.viewRange()
        return x0 <= -10 and x1 >= g.width and y0 <= 0 and y1 >= g.height

    assert whole()
    view.focus_node("n-a12-9")
    assert not whole()
    qtbot.mouseClick(view.reset_button, Qt.MouseButton.LeftButton)
    assert whole()
    with qtbot.waitActive(view):
        view.activateWindow()
    for key in (Qt.Key.Key_Home, Qt.Key.Key_0):
        view.focus_node("n-a12-9")
        assert not whole()
        view.plot.setFocus()
        qtbot.keyClick(view.plot, key)
        assert whole(), key


def test_vendor_legend_lists_present_vendors_in_distinct_colours(qtbot):
    snap = _room()
    view = _view(qtbot, snap)
    view.set_metric("vendor")
    assert view.legend.vendors == ["nvidia", "ascend"]
    assert view.legend.items()[:2] == ["NVIDIA", "Ascend"]

    def lab(c):
        def f(u):
            u /= 255
            return ((u + 0.055) / 1.055) ** 2.4 if u > 0.04045 else u / 12.92
        r, g, b = (f(v) for v in c)
        x, y, z = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.9505, 0.2126 * r + 0.7152 * g + 0.0722 * b,
                   (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.089)
        t = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
        return 116 * t[1] - 16, 500 * (t[0] - t[1]), 200 * (t[1] - t[2])

    assert len(hm.VENDOR_COLOURS) == 12
    for (a, ca), (b, cb) in itertools.combinations(hm.VENDOR_COLOURS.items(), 2):
        assert math.dist(lab(ca), lab(cb)) >= 30, (a, b)
    for c in hm.VENDOR_COLOURS.values():
        assert max(c) - min(c) > 60, "no grey vendor (grey is N/A)"
    # the card of an unknown vendor is N/A, not a vendor colour
    snap = dataclasses.replace(snap, vendor=[None, *snap.vendor[1:]], derived={})    # the next snapshot
    view.set_snapshot(snap)
    assert _cell(view, 0) <= {hm.NA_A, hm.NA_B}


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_background_labels_and_legend_follow_the_palette(qtbot, theme):
    snap = _room()
    snap.metrics["temperature_c"][0] = 100.0
    view = _view(qtbot, snap)
    pal = QPalette(view.palette())
    bg, fg = (QColor(20, 22, 26), QColor(235, 235, 235)) if theme == "dark" else (QColor(246, 246, 246), QColor(10, 10, 10))
    pal.setColor(QPalette.ColorRole.Window, bg)
    pal.setColor(QPalette.ColorRole.WindowText, fg)
    view.setPalette(pal)
    assert view.plot.backgroundBrush().color() == bg
    label = view._rack_items[0]
    assert label.color == fg
    img = view.image.image
    assert tuple(int(c) for c in img[0, 0]) == (bg.red(), bg.green(), bg.blue(), 255)
    assert _img(view, 0, 1, 1) == tuple(int(c) for c in hm.SCALE[255]), "card colours do not change"
    assert _screen(view, -2.0, 3.0) == bg
    assert view.legend.empty_colour == QColor(*view._special[1][:3])
    legend = view.legend.grab().toImage()
    assert legend.pixelColor(legend.width() - 2, legend.height() - 2) == bg


def test_every_room_string_is_translated(qtbot):
    from widgets import i18n

    source = Path(hm.__file__).read_text(encoding="utf-8")
    strings = set(re.findall(r"""\btr\(["']([^"']+)["']\)""", source))
    strings |= {m.label for m in hm.METRICS.values()} | {"ok", "failed", "stale", "unknown", "warning", "critical"}
    catalog = i18n.catalog("zh_CN")
    missing = sorted(s for s in strings if s not in catalog)
    assert not missing, missing
    assert catalog["N/A"] == "无数据" and catalog["stale"] == "失联" and catalog["failed"] == "失败"
    app = QCoreApplication.instance()
    translator = i18n.install(app, "zh_CN")
    try:
        snap = _room()
        _set_node(snap, "n-a01-2", "failed", "connection timed out", 600)
        snap.metrics["power_w"][0] = np.nan
        view = _view(qtbot, snap)
        assert view.reset_button.text() == "重置视图"
        items = view.legend.items()
        assert "严重（任何着色下）" in items and "失败（节点出错）" in items and "失联（近期无应答）" in items
        assert any("°C" in t for t in items)
        text = view.tooltip_for(snap.card_node.index("n-a01-2"))
        assert "失败：节点无应答或报错" in text and "最后错误" in text and "最后在线" in text and "英伟达" in text
        assert "功耗: 无数据" in view.tooltip_for(0) or "功耗：无数据" in view.tooltip_for(0) or "无数据" in view.tooltip_for(0)
        view.set_metric("vendor")
        assert view.legend.items()[:2] == ["英伟达", "昇腾"]
    finally:
        if translator is not None:
            app.removeTranslator(translator)
        i18n.install(app, "en")


def test_a_sweep_changes_only_card_pixels_and_keeps_the_image_right(qtbot):
    """The incremental recolour gives the same image as the full palette gather."""
    snap = _room(racks=3, slots=5)
    rng = np.random.default_rng(3)
    view = _view(qtbot, snap)
    for metric in hm.METRICS:
        view.set_metric(metric)
        for _ in range(2):
            snap.metrics["temperature_c"][:] = rng.uniform(20, 100, len(snap.card_node))
            snap.metrics["temperature_c"][rng.random(len(snap.card_node)) < 0.1] = np.nan
            snap.health[:] = rng.integers(0, 4, len(snap.card_node))
            view.set_snapshot(snap)
            plain, patt = hm.card_colours(snap, metric, view.low_zoom)
            expected = hm.palette(plain, patt, view._special)[view.geometry_.pix]
            assert np.array_equal(view.image.image, expected), metric
