"""The main window as an operator uses it: the File menu's handover note, the View menu's tabs, the
language changed without a restart, themes, CSV export of the tables, the Help keys, and a start that
looks like loading (no outage colours, no notifications for incidents the window opened on)."""

from __future__ import annotations

import csv
import sqlite3
import time

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QInputDialog

from console import demo
from widgets import i18n, theme
from widgets.app import TAB_NAMES, MainWindow, build_window


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("MIXOPS_SITE", raising=False)
    monkeypatch.delenv("MIXOPS_LANG", raising=False)
    return tmp_path


@pytest.fixture
def ops_db(tmp_path) -> str:
    path = str(tmp_path / "ops.db")
    demo.build_history(path, days=0.01, cards=64, end=time.time())
    return path


def _action(window: MainWindow, text: str):
    for menu in window.menuBar().actions():
        for action in menu.menu().actions():
            if action.text() == text:
                return action
    raise AssertionError(f"no menu action {text!r}")


def _live_window(qtbot, ops_db: str) -> MainWindow:
    window = MainWindow(ops_db, "site", False, interval_s=1.0)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.incidents is not None and window.snapshot is not None, timeout=20_000)
    return window


def test_add_handover_note_from_the_menu_saves_the_note(qtbot, data_home, ops_db, monkeypatch):
    i18n.settings().setValue("operator", "li.wei")
    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: ("CRAC 2 serviced", True))
    window = _live_window(qtbot, ops_db)
    _action(window, "Add handover note…").trigger()     # triggered(bool) must not become the text
    qtbot.waitUntil(lambda: window.message.text() == "Handover note saved", timeout=10_000)
    conn = sqlite3.connect(ops_db)
    assert conn.execute("SELECT author, text FROM handover_notes").fetchall() == [("li.wei", "CRAC 2 serviced")]
    conn.close()
    window.close()


def test_view_menu_reaches_every_tab_in_order(qtbot, data_home, ops_db):
    window = _live_window(qtbot, ops_db)
    for i, name in enumerate(TAB_NAMES):
        action = _action(window, name)
        assert action.shortcut().toString() == f"Ctrl+{i + 1}"
        action.trigger()
        assert window.tabs.tabText(window.tabs.currentIndex()) == name
    window.close()


def test_language_changes_without_a_restart(qtbot, data_home, ops_db):
    window = _live_window(qtbot, ops_db)
    window.tabs.setCurrentIndex(2)
    try:
        window.set_language("zh_CN")
        assert window.tabs.tabText(0) == "机房" and window.tabs.tabText(3) == "事件"
        assert window.tabs.currentIndex() == 2
        assert [a.text() for a in window.menuBar().actions()][:2] == ["文件(&F)", "视图(&V)"]
        assert window.heatmap is not None and window.incidents is not None
        qtbot.waitUntil(lambda: window.jobs.model.rowCount() > 0, timeout=10_000)   # fed again at once
        window.set_language("en")
        assert window.tabs.tabText(0) == "Room"
        assert i18n.settings().value("language", "", str) == "en"
    finally:
        i18n.install(QCoreApplication.instance(), "en")
    window.close()


def test_dark_and_light_themes(qapp: QApplication, data_home):
    try:
        assert theme.apply(qapp, "dark") == "dark"
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert theme.apply(qapp, "light") == "light"
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 150
    finally:
        theme.apply(qapp, "light")


def test_csv_export_of_the_fleet_and_jobs_tables(qtbot, data_home, ops_db, tmp_path):
    window = _live_window(qtbot, ops_db)
    window.show_tab("Fleet")
    qtbot.waitUntil(lambda: window.fleet.model.rowCount() == 8, timeout=10_000)
    out = window.export_csv(str(tmp_path / "fleet.csv"))
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["Node", "Status"] and len(rows) == 9
    window.show_tab("Jobs")
    qtbot.waitUntil(lambda: window.jobs.model.rowCount() == 1, timeout=10_000)
    out = window.export_csv(str(tmp_path / "jobs.csv"))
    with open(out, encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f))[1][0] == "llm-70b-mix"
    window.close()


def test_help_lists_the_keys(qtbot, data_home, ops_db):
    window = _live_window(qtbot, ops_db)
    box = window.show_keys()
    assert "Ctrl+P" in box.text() and "acknowledge" in box.text()
    box.close()
    window.close()


def test_start_looks_like_loading_and_old_incidents_do_not_notify(qtbot, data_home):
    """The demo in the window: while its history is built nothing looks like an outage, and incidents
    opened in that history never notify."""
    window = build_window(None, None, demo=True, cards=320, history_s=1800, demo_interval_s=2.0)
    qtbot.addWidget(window)
    window.show()
    seen_loading: list[str] = []

    def probe() -> bool:
        if window.loading:
            seen_loading.append(window.sweep_label.text())
            assert "color: #d73027" not in window.sweep_label.styleSheet()     # never red while loading
            assert window.heatmap is None or window.tabs.indexOf(window.heatmap) < 0
        return not window.loading and window.snapshot is not None and bool(window.snapshot.card_node)

    qtbot.waitUntil(probe, timeout=90_000)
    assert seen_loading and all(t == "loading…" for t in seen_loading)
    qtbot.waitUntil(lambda: window.heatmap is not None and window.tabs.indexOf(window.heatmap) == 0, timeout=10_000)
    old = [i for i in window.snapshot.incidents if i.opened_at < window.started_at - 60]
    assert old, "the demo's history opens incidents before the window started"
    assert not any(f"#{i.id}:" in n for i in old for n in window.notifications)
    window.close()
