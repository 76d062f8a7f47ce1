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
