"""Date axes in the UI's language (the card detail, the incident snapshot, the continuity timeline)."""

from __future__ import annotations

from widgets.axes import DateAxis, zh_label


def test_month_and_weekday_names_are_chinese():
    assert zh_label("Dec 02") == "12月02日"
    assert zh_label("Wed 02") == "周三 02日"
    assert zh_label("Jan") == "1月"
    assert zh_label("23:10") == "23:10" and zh_label("2026") == "2026"


def test_the_axis_labels_follow_the_language(qapp, monkeypatch):
    from pyqtgraph.graphicsItems.DateAxisItem import DAY_HOUR_ZOOM_LEVEL, MONTH_DAY_ZOOM_LEVEL, MONTH_SPACING

    from widgets import i18n

    axis = DateAxis()
    axis.zoomLevel = DAY_HOUR_ZOOM_LEVEL                # day ticks: '%a %d' ('Wed 02')
    values = [1_796_169_600.0, 1_796_256_000.0]        # 2026-12-02, 2026-12-03 (UTC)
    spacing = 86400
    monkeypatch.setattr(i18n, "current_language", lambda: "en")
    english = axis.tickStrings(values, 1.0, spacing)
    monkeypatch.setattr(i18n, "current_language", lambda: "zh_CN")
    chinese = axis.tickStrings(values, 1.0, spacing)
    assert len(english) == len(chinese) == 2
    assert not any(m in s for s in chinese for m in ("Dec", "Wed", "Thu"))
    assert chinese == [zh_label(s) for s in english]
    axis.zoomLevel = MONTH_DAY_ZOOM_LEVEL              # month ticks: '%b' ('Dec')
    monkeypatch.setattr(i18n, "current_language", lambda: "zh_CN")
    assert axis.tickStrings([1_796_169_600.0], 1.0, MONTH_SPACING) == ["12月"]


def _grid_plot(qtbot, with_grid: bool):
    import pyqtgraph as pg

    from widgets.axes import TickGrid

    w = pg.PlotWidget(axisItems={"bottom": DateAxis()})
    qtbot.addWidget(w)
    if with_grid:
        w.addItem(TickGrid(w.getPlotItem()), ignoreBounds=True)
    w.setBackground("k")
    w.plotItem.getAxis("left").setPen("w")
    w.plotItem.getAxis("bottom").setPen("w")
    w.setXRange(1_764_640_000, 1_764_643_600, padding=0)
    w.setYRange(0, 100, padding=0)
    w.resize(500, 200)
    w.show()
    qtbot.waitExposed(w)
    w.grab()                               # the date axis learns its font metrics on its first paint
    return w, w.grab().toImage()


def test_the_grid_lies_on_the_axis_ticks(qtbot):
    """Lines where the axes put their ticks: the view's columns and rows under major ticks are lit."""
    _plain_w, plain = _grid_plot(qtbot, False)
    w, image = _grid_plot(qtbot, True)
    vb = w.plotItem.getViewBox()
    axis = w.plotItem.getAxis("left")
    major = axis.tickValues(0, 100, axis.geometry().height())[0][1]
    assert major, "the left axis has ticks"
    lit = 0
    for v in major:
        if not 0 < v < 100:
            continue
        y = round(vb.mapViewToDevice(pg_point(1_764_641_800, v)).y())
        x = round(vb.mapViewToDevice(pg_point(1_764_641_800, 50)).x())
        for dy in (-1, 0, 1):
            if image.pixelColor(x + 7, y + dy).lightness() > plain.pixelColor(x + 7, y + dy).lightness():
                lit += 1
                break
    assert lit >= 2


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF
    return QPointF(x, y)


def test_the_grid_waits_for_the_date_axis_first_paint(qtbot):
    """Before the date axis has painted it cannot pick ticks: the grid draws nothing, never raises."""
    import pyqtgraph as pg
    from PySide6.QtGui import QImage, QPainter

    from widgets.axes import TickGrid

    w = pg.PlotWidget(axisItems={"bottom": DateAxis()})
    qtbot.addWidget(w)
    grid = TickGrid(w.getPlotItem())
    w.addItem(grid, ignoreBounds=True)
    image = QImage(100, 100, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    grid.paint(painter)
    painter.end()
