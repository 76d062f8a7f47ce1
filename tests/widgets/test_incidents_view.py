"""The on-call view offscreen: keys A/N/S/R change the incident in the database, Enter shows the card,
new P1/P2 incidents notify (silenced ones do not), and the counts reach the status bar."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QUrl

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
    # the notification shows the title as the incident list does (display_title: the UI's language, no
    # control sequences)
    from widgets.incidents import display_title

    titles = dict(store.conn.execute("SELECT id, title FROM incidents"))
    assert all(any(n.endswith(f"#{i}: {display_title(titles[i])}") for n in window.notifications) for i in new)
    # the status line's last notice follows a language change
    window.set_language("zh_CN")
    try:
        assert "卡" in window.message.text() and "温度" in window.message.text(), window.message.text()
    finally:
        window.set_language("en")
    assert "card" in window.message.text()
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


# ---- the Incidents tab on its own (issue 15, issue 16 #9) ----------------------------------------------

def _row(ident, severity="P2", state="open", title="gpu-1 card 2: Xid 79", node="gpu-1", card=2, job="llm",
         code="Xid 79", by=None, count=1, age=600.0):
    from console.incidents import IncidentRow

    return IncidentRow(ident, time.time() - age, severity, state, title, node, card, job, code, "reboot_node", count,
                       None if by is None else time.time(), by, None, f"SN{ident}")


@pytest.fixture
def view(qtbot, db):
    from PySide6.QtCore import QThreadPool

    from widgets.incidents import IncidentsView

    path, _store, _engine = db
    pool = QThreadPool()
    v = IncidentsView(path, pool, "en")
    qtbot.addWidget(v)
    v.resize(1400, 600)
    v.show()
    yield v
    pool.waitForDone()


def _snapshot_rows(path):
    from console.live import read_snapshot, read_with

    return read_with(path, lambda conn: read_snapshot(conn, now=time.time())).incidents


def test_columns_fit_their_content_and_title_takes_the_rest(qtbot, view):
    from widgets.incidents import COL_TITLE, COLUMNS

    rows = [_row(1, state="acknowledged", by="zhang.wei.longname", count=12345, age=3 * 86400),
            _row(2, severity="P1", title="npu-b02-7 card 5: 8C084E00", node="npu-b02-7", job="llm-100b-everything",
                 code="8C084E00"),
            _row(3, severity="P3", title="rack A01: 3 nodes not answering", node=None, card=None, job=None)]
    view.set_rows(rows, time.time())
    table = view.table
    others = [c for c in range(len(COLUMNS)) if c != COL_TITLE]

    def fits() -> bool:
        return all(table.columnWidth(c) >= max(table.sizeHintForColumn(c),
                                               table.horizontalHeader().sectionSizeHint(c)) for c in others)

    assert fits(), "no column is cut: every one is at least as wide as its content and header"
    widths = {c: table.columnWidth(c) for c in others}
    title = table.columnWidth(COL_TITLE)
    view.resize(2000, 600)
    qtbot.waitUntil(lambda: table.columnWidth(COL_TITLE) > title, timeout=5_000)
    assert {c: table.columnWidth(c) for c in others} == widths, "widening widens Title only, the others keep theirs"
    view.resize(700, 600)
    qtbot.waitUntil(lambda: table.columnWidth(COL_TITLE) == view._min_widths[COL_TITLE], timeout=5_000)
    assert {c: table.columnWidth(c) for c in others} == widths and fits(), "narrow: scroll, do not cut"
    table.setColumnWidth(COLUMNS.index("Job"), widths[COLUMNS.index("Job")] + 80)       # the operator widens Job
    view.set_rows(rows + [_row(4)], time.time())
    assert table.columnWidth(COLUMNS.index("Job")) == widths[COLUMNS.index("Job")] + 80
    view.set_rows(rows + [_row(5, node="n" * 300)], time.time())                      # an absurd node name
    assert table.columnWidth(COLUMNS.index("Node")) == view._max_fit, "capped: the other columns stay in view"


def test_filter_by_text_severity_and_state(view):
    rows = [_row(1, severity="P1", title="gpu-1 card 2: Xid 79", node="gpu-1", job="llm-70b"),
            _row(2, severity="P2", state="acknowledged", by="li", title="npu-b02-7 card 5: 8C084E00",
                 node="npu-b02-7", code="8C084E00", job="vlm-7b"),
            _row(3, severity="P3", title="mxc-a05-4: vendor tool failed", node="mxc-a05-4", card=None,
                 code="COLLECTOR", job=None),
            _row(4, severity="P4", state="silenced", title="gpu-2 card 1: memory full", node="gpu-2", card=1,
                 code="MEMORY", job="llm-70b")]
    view.set_rows(rows, time.time())

    def shown() -> list[int]:
        return [r.id for r in view.visible_rows()]

    assert shown() == [1, 2, 3, 4] and view.shown_label.text() == "4 of 4 shown"
    view.search.setText("llm-70b")                            # job
    assert shown() == [1, 4]
    view.search.setText("8c084e00")                           # code, any case
    assert shown() == [2]
    view.search.setText("mxc-a05")                            # node
    assert shown() == [3]
    view.search.setText("memory full")                        # title words
    assert shown() == [4]
    view.search.setText("")
    view.severity_filter.setCurrentIndex(view.severity_filter.findData("P2"))
    assert shown() == [1, 2]
    view.severity_filter.setCurrentIndex(0)
    view.state_filter.setCurrentIndex(view.state_filter.findData("silenced"))
    assert shown() == [4] and view.shown_label.text() == "1 of 4 shown"
    view.table.selectRow(0)
    assert view.selected().id == 4, "the selection maps through the filter to the right incident"


def test_acknowledge_asks_for_the_operator_once_and_cancel_records_nothing(qtbot, db, view, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from widgets import i18n

    path, _store, _engine = db
    i18n.settings().remove("operator")
    answers = [("", False), ("  li.lei  ", True)]
    asked: list[str] = []

    def fake_get_text(parent, title, label, *args, **kwargs):
        asked.append(title)
        return answers.pop(0)

    monkeypatch.setattr(QInputDialog, "getText", fake_get_text)
    try:
        view.set_rows(_snapshot_rows(path), time.time())
        view.table.selectRow(0)
        incident = view.selected().id
        view.acknowledge()                                    # cancelled: no name, no acknowledgement
        view.pool.waitForDone()
        assert asked == ["Operator name"] and _state(path, incident) == ("open", None)
        assert "not acknowledged" in view.status.text()
        view.acknowledge()
        qtbot.waitUntil(lambda: _state(path, incident) == ("acknowledged", "li.lei"), timeout=10_000)
        assert i18n.settings().value("operator", "", str) == "li.lei"
        view.silence(30)                                      # remembered: not asked again
        qtbot.waitUntil(lambda: _state(path, incident)[0] == "silenced", timeout=10_000)
        assert len(asked) == 2
        from widgets.incidents import operator_name
        assert operator_name() == "li.lei"
    finally:
        i18n.settings().remove("operator")


def _scenario_titles(tmp_path):
    """Run the real engine over one sweep that raises every kind of incident it has; return the titles."""
    from collectors.model import Fault as F

    path = str(tmp_path / "titles.db")
    store = Store(path)
    racks = {"n1": "A01", "n2": "A01", "n3": "B01", "n4": "A02", "n5": "A02", "n6": "A03", "n7": "B02", "r1": "C01",
             "r2": "C01", "r3": "C01"}
    store.sync_nodes([(n, "127.0.0.1", 22, r, i, "nvidia") for i, (n, r) in enumerate(racks.items())])
    engine = IncidentEngine(store.conn, rack_of=dict(racks), jobs_of={"n3": ["llm-70b"]})
    t = time.time()
    hot = tuple(CardSample(i, model="H800", serial=f"n1-{i}", health=Health.CRITICAL if i == 3 else Health.OK,
                           temperature_c=97.0 if i == 0 else 50.0, utilization_pct=80.0,
                           memory_used_mib=80.0 if i == 2 else 1.0, memory_total_mib=80.0,
                           power_w=800.0 if i == 1 else 300.0) for i in range(4))
    reports = [
        NodeReport("n1", True, t, 0.1, "nvidia", hot, (F("Xid 48", Severity.CRITICAL, Action.RESET_CARD, "Xid 48", 0, t),)),
        _report("n2", t, [F("Xid 63", Severity.WARNING, Action.WATCH, f"Xid 63 card {i}", i, t) for i in range(3)]),
        NodeReport("n3", False, t, 5.0, "nvidia", error="connection timed out"),
        NodeReport("n7", False, t, 5.0, "nvidia", error="no route to host"),
        NodeReport("n4", False, t, 8.0, "nvidia", error="nvidia-smi timed out after 8 s: "),
        NodeReport("n5", True, t, 0.1, "nvidia", _report("n5", t).cards, warnings=("nvidia-smi: unknown line 'x'",)),
        NodeReport("n6", False, t, 0.1, "nvidia", faults=(F("ssh-hostkey-changed", Severity.CRITICAL,
                                                            Action.ISOLATE, "key changed", None, t),),
                   error="host key changed"),
        *(NodeReport(n, False, t, 5.0, "nvidia", error="connection refused") for n in ("r1", "r2", "r3")),
        NodeReport("n8", False, t, 0.0, "nvidia", error="source unavailable: http://127.0.0.1:9/: connection refused"),
    ]
    store.write_sweep(t, t + 1, reports)
    engine.process(t + 1, reports, (), stopped_jobs=[("llm-70b", "down", "no progress for 12 min")])
    titles = [row[0] for row in store.conn.execute("SELECT title FROM incidents")]
    store.close()
    # link incidents (tests/console/test_links_incidents.py raises them from real link tables), the collector's
    # links-unavailable roll-up and the engine's P1 -> P2 note, in the formats console/incidents.py writes
    return titles + [
        "n1 card 3 nvlink 2: flapping (4 changes in 10 min)",
        "n1 card 3 nvlink 2: down since 2026-12-02 03:10:00 UTC",
        "n2 roce eth0: down",
        "n1 card 1 hccs 0: errors at 75/min over 5 min (crc_errors; limit 60/min)",
        "n2 ib mlx5_0/1: slower than its peers (100 Gb/s, best of its kind on the node 400 Gb/s)",
        "n1: 5 links (3 down, 2 flapping)",
        "links not collected on 12 node(s): hccn_tool not found",
        "P1 → P2: job llm-70b trains again since this opened (or has finished)",
    ]


def test_incident_titles_in_chinese_keep_names_and_values(qapp, tmp_path):
    from widgets import i18n
    from widgets.incidents import TITLE_PATTERNS, display_title

    titles = _scenario_titles(tmp_path)
    assert display_title("gpu-1 card 2: Xid 79") == "gpu-1 card 2: Xid 79"          # English: as stored
    translator = i18n.install(QCoreApplication.instance(), "zh_CN")
    try:
        used = set()
        for title in titles:
            shown = display_title(title)
            assert shown != title and re.search(r"[\u4e00-\u9fff]", shown), title
            name = re.match(r"Prometheus source (\S+):|(?:job |rack |links not collected on |P1 → P2: job )?([\w-]+)",
                            title)
            name = name.group(1) or name.group(2)
            assert name in shown, (title, shown)                                   # names kept verbatim
            for number in re.findall(r"\d+(?:\.\d+)?", title):
                assert number in shown, (title, shown)
            used |= {template for pattern, template in TITLE_PATTERNS if pattern.fullmatch(title)}
        assert used == {template for _p, template in TITLE_PATTERNS}, "every pattern is a title the engine writes"
        assert display_title("gpu-1 card 3: temperature 96 °C") == "gpu-1 卡 3：温度 96 °C"
        assert display_title("gpu-9: not answering (jobs: llm-70b)") == "gpu-9：无响应（作业：llm-70b）"
        shown = display_title("npu-1 card 5 roce 0: errors at 400/min over 5 min (fcs_errors,crc_errors; limit 100/min)")
        assert "CRC 错误" in shown and "crc_errors" not in shown and "400" in shown, shown
        assert display_title("something the engine never wrote") == "something the engine never wrote"
        assert display_title("{card} card 1: memory full") == "{card} 卡 1：显存已满"          # no re-substitution
    finally:
        if translator is not None:
            QCoreApplication.instance().removeTranslator(translator)
        i18n.install(QCoreApplication.instance(), "en")


def test_vendor_names_in_both_languages():
    from widgets.incidents import vendor_name

    assert vendor_name("cambricon", "zh_CN") == "寒武纪" and vendor_name("cambricon", "en") == "Cambricon"
    assert vendor_name("mthreads", "zh_CN") == "摩尔线程" and vendor_name("amd", "zh_CN") == "AMD"
    assert vendor_name(None, "zh_CN") == "N/A" and vendor_name("site-adapter", "zh_CN") == "site-adapter"


HOSTILE = '<a href="x">click</a><img src=x>\x1b]0;pwned\x07\x1b[31m<b>red</b>'


def test_node_text_in_the_detail_pane_is_never_rich_text(qtbot, db, view):
    from console import incidents as engine_mod

    path, store, _engine = db
    cur = store.conn.execute(
        "INSERT INTO incidents(opened_at, severity, state, title, node, card_idx, job, key, source, code, evidence, "
        "count, serial, vendor) VALUES (?, 'P1', 'open', ?, ?, 1, ?, 'fault:evil:1:X', 'fault', ?, ?, 1, ?, 'nvidia')",
        (time.time() - 5, f"evil card 1: {HOSTILE}", f"evil{HOSTILE}", "llm\"'><b>job</b>", f"X{HOSTILE}",
         f"NVRM: {HOSTILE}", f"SN{HOSTILE}"))
    incident = cur.lastrowid
    engine_mod.add_note(store.conn, incident, f"op{HOSTILE}", f"note {HOSTILE}")
    view.set_rows(_snapshot_rows(path), time.time())
    source = next(i for i, r in enumerate(view.model.rows) if r.id == incident)
    view.table.clearSelection()            # the row may sit where the selection already is
    view._select_source_row(source)
    qtbot.waitUntil(lambda: view.current is not None and view.current.id == incident, timeout=10_000)
    text = view.detail.toPlainText()
    markup = view.detail.toHtml()
    assert text.count('<a href="x">click</a><img src=x>') >= 5      # title, evidence, node, serial, note …
    assert "<b>red</b>" in text and "<b>job</b>" in text
    assert "\x1b" not in text and "\x07" not in text and "pwned" not in text and "[31m" not in text
    assert 'href="x"' not in markup and "<img" not in markup, "nothing from a node became a link or an image"
    job_href = re.search(r'href="(job:[^"]*)"', markup).group(1)
    with qtbot.waitSignal(view.show_job, timeout=1_000) as shown:
        view.detail.anchorClicked.emit(QUrl(job_href))
    assert shown.args[0] == "llm\"'><b>job</b>", "the link carries the job's own name, percent-encoded"
    cell = view.model.index(source, 3)
    assert view.model.data(cell) == 'evil card 1: <a href="x">click</a><img src=x><b>red</b>'
    tooltip = view.model.data(cell, Qt.ItemDataRole.ToolTipRole)
    assert "<img" not in tooltip and "&lt;img" in tooltip


def test_export_csv_writes_what_the_table_shows(tmp_path, view):
    import csv

    rows = [_row(1, severity="P1", title="=cmd|' /C calc'!A0", node="gpu-1"),
            _row(2, severity="P3", title="gpu-2 card 1: memory full", node="gpu-2")]
    view.set_rows(rows, time.time())
    view.search.setText("gpu-")
    out = tmp_path / "export" / "incidents.csv"
    out.parent.mkdir()
    assert view.export_csv(str(out)) == str(out)
    with open(out, encoding="utf-8-sig", newline="") as f:
        got = list(csv.reader(f))
    assert got[0][:5] == ["id", "Opened", "Severity", "Age", "State"] and len(got) == 3
    assert [r[0] for r in got[1:]] == ["1", "2"]
    assert got[1][5] == "'=cmd|' /C calc'!A0", "a cell a spreadsheet would run is quoted"
    assert got[2][5] == "gpu-2 card 1: memory full"
    assert sorted(p.name for p in out.parent.iterdir()) == ["incidents.csv"], "no temporary file left"
    view.severity_filter.setCurrentIndex(view.severity_filter.findData("P1"))
    assert view.export_csv(str(out)) == str(out)
    with open(out, encoding="utf-8-sig", newline="") as f:
        assert len(list(csv.reader(f))) == 2                  # the filter applies to the export
    assert view.export_csv(str(tmp_path / "missing" / "x.csv")) is None
    assert "Not done" in view.status.text()
