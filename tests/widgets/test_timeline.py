"""The continuity timeline on a real SQLite file, offscreen (issue 15): what the hover picks at long
zooms, outages wide enough to see at 30 days, the now line, lane labels beside the plot, the range
buttons, items reused across snapshots, palette colours (dark theme) and Chinese units."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.widgets import jobdata
from widgets import i18n
from widgets import timeline as tl


@pytest.fixture
def story_db(tmp_path):
    path = tmp_path / "ops.db"
    story = jobdata.build(path)
    return path, story


@pytest.fixture
def view(qtbot, story_db) -> tl.TimelineView:
    path, _story = story_db
    widget = tl.TimelineView()
    qtbot.addWidget(widget)
    widget.resize(1280, 560)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_rows(jobdata.rows(path), jobdata.NOW)
    return widget


@pytest.fixture
def chinese() -> Iterator[None]:
    app = QCoreApplication.instance()
    translator = i18n.install(app, "zh_CN")
    try:
        yield
    finally:
        if translator is not None:
            app.removeTranslator(translator)
        i18n.install(app, "en")


def _scene(view: tl.TimelineView, x: float, y: float) -> QPointF:
    return view.plot.getViewBox().mapViewToScene(QPointF(x, y))


def _hover(view: tl.TimelineView, x: float, y: float) -> str:
    """A mouse move over view coordinates (x, y), through the canvas' viewport; the hover line's text.

    (QTest's mouseMove does not always reach a QGraphicsView offscreen; a sent move event does. pyqtgraph's
    scene drops moves closer than 1/60 s to the last one: the test forgets the last one, not waits.)"""
    viewport = view.canvas.viewport()
    view.canvas.scene()._lastMoveEventTime = 0
    point = QPointF(view.canvas.mapFromScene(_scene(view, x, y)))
    event = QMouseEvent(QEvent.Type.MouseMove, point, QPointF(viewport.mapToGlobal(point)), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)
    return view.hover.text()


def _px(view: tl.TimelineView) -> float:
    return view.seconds_per_pixel()


def test_hover_at_15_days_picks_outage_and_incident_not_dense_ticks(view, story_db):
    _path, story = story_db
    view.set_range("15 d")
    px = _px(view)
    assert jobdata.CKPT_EVERY_S / px < 2.0, "the ticks are dense at this zoom (the defect's situation)"
    mid = story.outage_at + 90.0
    # on the bar over the 3-minute outage: the outage, with its stop, not a checkpoint tick
    hit = view.pick(mid, 0.0)
    assert hit is not None and hit.kind == "outage" and hit.segment == "down"
    text = _hover(view, mid, 0.0)
    assert "down" in text and "resumed after" in text and "NCCL watchdog" in text and "checkpoint" not in text
    # the outage is drawn wider than 3 minutes at this zoom: its drawn edge plus a pixel still picks it
    lo, hi = tl.drawn_extent(story.outage_at, story.outage_at + 180.0, px)
    assert (hi - lo) / px == pytest.approx(tl.MIN_OUTAGE_PX)
    assert view.pick(hi + 1.0 * px, 0.1).kind == "outage"
    # the incident marker under the mouse wins over the outage below it ...
    marker_y = 0 + tl.MARK_DY
    hit = view.pick(story.outage_incident_at, marker_y)
    assert hit.kind == "marker" and "Xid 79" in hit.text
    assert "Xid 79" in _hover(view, story.outage_incident_at, marker_y)
    # ... and a lone incident is picked within a few pixels of its marker
    assert view.pick(story.incident_at + 5 * px, marker_y).kind == "marker"
    assert view.pick(story.incident_at + 20 * px, marker_y).kind != "marker"
    # dense ticks: the bar over running is the running segment even exactly at a tick's time
    tick_ts = next(ts for ts, _ in view.rows[0].checkpoints if ts > jobdata.NOW - 3 * jobdata.DAY)
    assert view.pick(tick_ts, 0.0).kind == "segment" and view.pick(tick_ts, 0.0).segment in (
        "running", "checkpointing")
    # ... a tick only exactly under the cursor on the tick row
    hit = view.pick(tick_ts, -tl.TICK_DY)
    assert hit.kind == "tick" and hit.ts == tick_ts
    assert "checkpoint step" in _hover(view, tick_ts, -tl.TICK_DY)


def test_ticks_are_picked_with_a_tolerance_once_zoomed_in(view, story_db):
    _path, story = story_db
    view.set_range("6 h")
    view.show_job("llm-70b-mix", at=story.incident_at + 3 * 3600.0)       # away from any outage
    px = _px(view)
    assert jobdata.CKPT_EVERY_S / px > tl.TICK_SPARSE_PX
    tick_ts = next(ts for ts, _ in view.rows[0].checkpoints if ts > story.incident_at + 3 * 3600.0)
    hit = view.pick(tick_ts + 3 * px, 0.0)
    assert hit.kind == "tick" and hit.ts == tick_ts
    assert view.pick(tick_ts + 8 * px, 0.0).kind == "segment"


def _red_columns(view: tl.TimelineView, at: float, lane: int) -> int:
    """How many pixel columns around `at` are painted in the down colour at the lane's centre."""
    image = view.canvas.viewport().grab().toImage()
    centre = view.canvas.mapFromScene(_scene(view, at, lane))
    down = QColor(*tl.SEGMENT_COLOURS["down"])
    return sum(1 for dx in range(-12, 13) if image.pixelColor(centre.x() + dx, centre.y()) == down)


@pytest.mark.parametrize("span", ["15 d", "30 d"])
def test_a_3_minute_outage_is_visible_at_long_zooms(view, story_db, span):
    _path, story = story_db
    view.set_range(span)
    assert 180.0 / _px(view) < 1.0, "3 minutes is under a pixel here"
    x0, x1 = view.drawn_bars("down")
    assert len(x0) == 1 and (x1[0] - x0[0]) / _px(view) == pytest.approx(tl.MIN_OUTAGE_PX)
    assert _red_columns(view, story.outage_at + 90.0, 0) >= tl.MIN_OUTAGE_PX - 1


def test_outage_width_follows_the_zoom(view, story_db):
    _path, story = story_db
    view.show_job("llm-70b-mix", at=story.outage_at)         # 12 h: 3 minutes is several pixels wide
    x0, x1 = view.drawn_bars("down")
    assert (x0[0], x1[0]) == (story.outage_at, story.outage_at + 180.0), "drawn at its true width"
    assert 180.0 / _px(view) > tl.MIN_OUTAGE_PX
    view.set_range("30 d")
    x0, x1 = view.drawn_bars("down")
    assert x1[0] - x0[0] > 180.0 and (x0[0] + x1[0]) / 2 == pytest.approx(story.outage_at + 90.0)


def test_now_line_is_drawn_labelled_and_moves_on(view, chinese):
    assert view.now_line.isVisible() and view.now_line.value() == jobdata.NOW
    view._retranslate()
    assert view.now_line.label.format == "现在"
    view.set_range("6 h")
    view.advance_now(jobdata.NOW + 600.0)
    assert view.now_line.value() == jobdata.NOW + 600.0
    lo, hi = view.plot.getViewBox().viewRange()[0]
    assert lo == pytest.approx(jobdata.NOW + 600.0 - 6 * 3600.0) and hi > jobdata.NOW + 600.0, "the view follows now"
    assert view.clock.isActive() and view.current_now() >= jobdata.NOW


def test_lane_labels_are_beside_the_plot_and_on_their_lanes(view):
    plot_rect = view.plot.getViewBox().sceneBoundingRect()
    assert len(view.labels) == 3
    for lane, label in enumerate(view.labels):
        rect = label.mapRectToScene(label.boundingRect())
        assert rect.right() <= plot_rect.left() + 1, "a label never covers the plot's markers"
        top, bottom = _scene(view, 0, lane - 0.5).y(), _scene(view, 0, lane + 0.5).y()
        assert top <= rect.center().y() <= bottom
        assert "llm-70b-mix moe-16b-sft vlm-7b-pt".split()[lane] in label.toPlainText()
    assert "ETTR" in view.labels[0].toPlainText() and "worst resume" in view.labels[0].toPlainText()


def test_range_buttons_and_wheel(qtbot, view):
    vb = view.plot.getViewBox()
    for name, span in tl.RANGES:
        qtbot.mouseClick(view.range_buttons[name], Qt.MouseButton.LeftButton)
        lo, hi = vb.viewRange()[0]
        assert view.preset == name and view.range_buttons[name].isChecked()
        assert hi - lo == pytest.approx(span * (1 + tl.RIGHT_MARGIN), rel=1e-3) and lo < jobdata.NOW < hi
    qtbot.mouseClick(view.range_buttons[tl.FIT], Qt.MouseButton.LeftButton)
    lo, hi = vb.viewRange()[0]
    assert lo <= min(r.model.segments[0].start for r in view.rows) + 60 and hi > jobdata.NOW
    # the wheel still zooms, and the buttons then show no range
    qtbot.mouseClick(view.range_buttons["7 d"], Qt.MouseButton.LeftButton)
    before = vb.viewRange()[0]
    centre = view.canvas.mapFromScene(vb.sceneBoundingRect().center())
    event = QWheelEvent(QPointF(centre), QPointF(view.canvas.viewport().mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.canvas.viewport(), event)
    after = vb.viewRange()[0]
    assert after[1] - after[0] < before[1] - before[0]
    assert view.preset is None and not any(b.isChecked() for b in view.range_buttons.values())
    # a new snapshot keeps the operator's zoom
    view.set_rows(view.rows, jobdata.NOW + 5)
    assert vb.viewRange()[0] == pytest.approx(after)


def test_items_are_made_once_and_reused(view, story_db):
    path, _story = story_db
    scene = view.canvas.scene()
    items = len(scene.items())
    bars, labels, ticks = dict(view._bar_items), list(view.labels), view.ticks
    rows = jobdata.rows(path)
    for i in range(10):
        view.set_rows(rows, jobdata.NOW + i)
        view.canvas.viewport().grab()
    assert len(scene.items()) == items
    assert view._bar_items == bars and view.labels == labels and view.ticks is ticks
    for kind, item in view._bar_items.items():       # one shared brush per kind, no per-bar pens or brushes
        assert item._singleColor and item._sharedBrush == tl.BRUSHES[kind]
        assert item.opts.get("brushes") is None and item.opts.get("pens") is None


def test_dark_palette_colours_the_timeline(view):
    palette = QPalette(view.palette())
    base, text = QColor("#17181a"), QColor("#e8eaed")
    palette.setColor(QPalette.ColorRole.Base, base)
    palette.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    palette.setColor(QPalette.ColorRole.WindowText, text)
    view.setPalette(palette)
    assert view.now_line.pen.color() == text
    assert all(label.color == text for label in view.labels)
    image = view.canvas.viewport().grab().toImage()
    assert image.pixelColor(3, image.height() // 2) == base, "background from the palette"
    centre = view.canvas.mapFromScene(_scene(view, jobdata.NOW - 3 * jobdata.DAY, 2))
    assert image.pixelColor(centre.x(), centre.y()) == QColor(*tl.SEGMENT_COLOURS["running"])
    assert tl.SEGMENT_COLOURS["down"] != (base.red(), base.green(), base.blue())


def test_chinese_units_in_hover_and_labels(qtbot, chinese, story_db):
    path, story = story_db
    view = tl.TimelineView()
    qtbot.addWidget(view)
    view.resize(1280, 560)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(jobdata.rows(path), jobdata.NOW)
    text = view.describe(story.outage_at + 90.0, 0.0)
    assert "中断" in text and "分钟" in text and " min" not in text and "停在第 1,000 步" in text
    label = view.labels[0].toPlainText()
    assert "天" in label and " d " not in label and "最长恢复 7 分钟" in label
    assert view.range_buttons["15 d"].text() == "15 天" and view.range_buttons[tl.FIT].text() == "全部"
