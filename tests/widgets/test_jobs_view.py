"""The Jobs tab on a real SQLite file, offscreen (issue 15): the table shows every job row in English and
Chinese (scroll bar or not), the timeline takes the rest, and durations carry units in the UI's language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, Qt

from tests.widgets import jobdata
from widgets import i18n
from widgets.jobs import MAX_FIT_ROWS, JobsView, shown_duration


@pytest.fixture(params=["en", "zh_CN"])
def language(request) -> Iterator[str]:
    app = QCoreApplication.instance()
    translator = i18n.install(app, request.param)
    try:
        yield request.param
    finally:
        if translator is not None:
            app.removeTranslator(translator)
        i18n.install(app, "en")


def _view(qtbot, tmp_path, jobs: int, width: int = 1280, height: int = 800) -> JobsView:
    path = tmp_path / "ops.db"
    jobdata.build(path, jobs=jobs)
    view = JobsView()
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    view.attach_timeline()
    view.set_rows(jobdata.rows(path), jobdata.NOW)
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.split.height() > height - 100)      # the layout has run
    return view


def _rows_fully_visible(view: JobsView) -> list[int]:
    viewport = view.table.viewport().rect()
    return [r for r in range(view.model.rowCount())
            if viewport.contains(view.table.visualRect(view.model.index(r, 0)))]


@pytest.mark.parametrize(("jobs", "width"), [(3, 1280), (3, 700), (5, 1280)])
def test_table_shows_every_job_row_and_the_timeline_takes_the_rest(qtbot, tmp_path, language, jobs, width):
    view = _view(qtbot, tmp_path, jobs, width)
    assert _rows_fully_visible(view) == list(range(jobs)), "no job row is cut"
    if width == 700:
        assert view.table.horizontalScrollBar().isVisible(), "narrow: the columns scroll, the rows stay whole"
    table_h, timeline_h = view.split.sizes()
    assert table_h == view.table_height()
    assert view.timeline is not None and timeline_h >= view.split.height() - table_h - view.split.handleWidth()
    assert timeline_h > 400


def test_many_jobs_scroll_in_the_table_and_the_timeline_keeps_its_height(qtbot, tmp_path):
    view = _view(qtbot, tmp_path, 20)
    assert len(_rows_fully_visible(view)) >= MAX_FIT_ROWS - 1
    assert view.table.verticalScrollBar().maximum() > 0
    assert view.split.sizes()[1] > 200


def test_durations_carry_units_in_the_ui_language(qtbot, tmp_path, language):
    view = _view(qtbot, tmp_path, 3)
    step_age = view.model.data(view.model.index(0, 4))
    checkpoint_age = view.model.data(view.model.index(0, 6))
    tip = view.model.data(view.model.index(0, 6), Qt.ItemDataRole.ToolTipRole)
    if language == "zh_CN":
        assert step_age == "12 秒" and checkpoint_age.endswith("分钟") and "30 分钟" in tip
        assert shown_duration(3 * 3600) == "3.0 小时" and shown_duration(5 * 86400) == "5.0 天"
    else:
        assert step_age == "12 s" and checkpoint_age.endswith("min") and "30 min" in tip
        assert shown_duration(3 * 3600) == "3.0 h" and shown_duration(5 * 86400) == "5.0 d"
    assert shown_duration(None) == "N/A"


def test_switching_language_live_keeps_every_row_whole(qtbot, tmp_path):
    """The soak's screenshots switch English → Chinese in a running window: the table refits to the
    Chinese rows and header (it once kept the English height and cut the third row)."""
    view = _view(qtbot, tmp_path, 3)
    assert _rows_fully_visible(view) == [0, 1, 2]
    app = QCoreApplication.instance()
    translator = i18n.install(app, "zh_CN")
    try:
        qtbot.wait(200)
        assert view.model.headerData(0, Qt.Orientation.Horizontal) == "作业"
        assert _rows_fully_visible(view) == [0, 1, 2], (view.split.sizes(), view.table_height())
    finally:
        if translator is not None:
            app.removeTranslator(translator)
        i18n.install(app, "en")
    qtbot.wait(200)
    assert _rows_fully_visible(view) == [0, 1, 2]


@pytest.mark.usefixtures("language")
def test_rows_filled_while_the_tab_is_hidden_are_whole_when_it_is_shown(qtbot, tmp_path):
    """The window builds the Jobs tab behind another (at start, and again at a language change): its rows
    arrive while it is hidden, and it once kept a height measured then, cutting the third row."""
    from PySide6.QtWidgets import QLabel, QTabWidget

    path = tmp_path / "ops.db"
    jobdata.build(path, jobs=3)
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    tabs.resize(1280, 760)
    tabs.addTab(QLabel("room"), "room")
    view = JobsView()
    tabs.addTab(view, "jobs")
    tabs.show()
    qtbot.waitExposed(tabs)
    view.attach_timeline()
    view.set_rows(jobdata.rows(path), jobdata.NOW)
    qtbot.wait(100)
    tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: _rows_fully_visible(view) == [0, 1, 2], timeout=5_000)
    assert view.split.sizes()[0] == view.table_height()
