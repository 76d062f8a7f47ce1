"""A date axis that speaks the UI's language: pyqtgraph's DateAxisItem formats with strftime, whose
month and weekday names ("Dec", "Wed 02") stay English under a Chinese UI."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen

from widgets import i18n

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ZH_DAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def zh_label(text: str) -> str:
    """'Dec 02' → '12月02日', 'Wed 02' → '周三 02日', 'Dec' → '12月'; anything else as it is."""
    parts = text.split()
    out: list[str] = []
    for k, part in enumerate(parts):
        if part in MONTHS:
            month = f"{MONTHS.index(part) + 1}月"
            if k + 1 < len(parts) and parts[k + 1].isdigit():
                out.append(month + parts[k + 1] + "日")
                parts[k + 1] = ""
            else:
                out.append(month)
        elif part in DAYS:
            out.append(ZH_DAYS[DAYS.index(part)])
        elif part:
            out.append(part + ("日" if part.isdigit() and k > 0 and parts[k - 1] in DAYS else ""))
    return " ".join(out)


class DateAxis(pg.DateAxisItem):  # type: ignore[misc]
    """pyqtgraph's date axis with Chinese month and weekday names when the UI is Chinese."""

    def tickStrings(self, values: Any, scale: Any, spacing: Any) -> list[str]:  # noqa: N802 - pyqtgraph API
        strings: list[str] = super().tickStrings(values, scale, spacing)
        if not i18n.current_language().startswith("zh"):
            return strings
        return [zh_label(s) for s in strings]



class TickGrid(pg.GraphicsObject):  # type: ignore[misc]
    """Grid lines at the plot's own axis ticks (major, minor fainter), in data coordinates with
    opaque-coloured cosmetic pens and no antialiasing. Add it with `plot.addItem(grid, ignoreBounds=True)`.

    pyqtgraph's axis grid (`showGrid`) makes each axis item span the whole view and replays its picture
    of alpha-blended lines at every repaint: ~10 ms per plot and repaint in software rendering, so a card
    detail's four plots held the GUI thread ~40 ms each time its data or range changed. This: ~0.5 ms."""

    def __init__(self, plot: pg.PlotItem, x: bool = True, y: bool = True, alpha: float = 0.2) -> None:
        super().__init__()
        self._plot = plot
        self._grid_axes = tuple(name for name, on in (("bottom", x), ("left", y)) if on)
        self._alpha = alpha
        self.setZValue(-100)
        plot.getViewBox().sigRangeChanged.connect(self._range_changed)

    def _range_changed(self, *_args: Any) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        (x0, x1), (y0, y1) = self._plot.getViewBox().viewRange()
        return QRectF(x0, y0, x1 - x0, y1 - y0)

    def paint(self, painter: QPainter, *_args: Any) -> None:
        vb = self._plot.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        size = vb.boundingRect()
        if size.width() <= 0 or size.height() <= 0 or x1 <= x0 or y1 <= y0:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for name in self._grid_axes:
            axis = self._plot.getAxis(name)
            if isinstance(axis, pg.DateAxisItem) and not hasattr(axis, "fontMetrics"):
                continue                # a date axis picks its ticks by its font, known after its first paint
            horizontal = name == "bottom"
            length = axis.geometry().width() if horizontal else axis.geometry().height()
            lo, hi, px = (x0, x1, length) if horizontal else (y0, y1, length)
            for level, (_spacing, values) in enumerate(axis.tickValues(lo, hi, px)[:2]):
                colour = QColor(axis.pen().color())
                colour.setAlphaF(min(1.0, self._alpha / (level + 1)))
                pen = QPen(colour)
                pen.setCosmetic(True)
                pen.setWidth(0)
                painter.setPen(pen)
                for v in values:
                    if lo <= v <= hi:
                        if horizontal:
                            painter.drawLine(QPointF(v, y0), QPointF(v, y1))
                        else:
                            painter.drawLine(QPointF(x0, v), QPointF(x1, v))
