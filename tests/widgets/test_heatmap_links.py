"""The room's "links" colour mode: the worst link of each card from a real SQLite store, N/A when none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from pytestqt.qtbot import QtBot

from console.links import LINK_CRITICAL, LINK_NA, LINK_OK, LINK_WARNING, read_card_links
from console.live import read_snapshot
from console.store import Store
from widgets.heatmap import HEALTH_COLOURS, NA_A, HeatmapView, class_colours

NOW = 1_800_000_000.0


def _fill(path: Path) -> None:
    Store(str(path)).close()
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO nodes (name, rack, slot, vendor, status, last_seen) VALUES (?,?,?,?,?,?)",
                     [("n1", "A", 1, "nvidia", "ok", NOW), ("n2", "A", 2, "ascend", "ok", NOW),
                      ("n3", "A", 3, "nvidia", "ok", NOW)])
    conn.executemany("INSERT INTO cards (node, idx, vendor) VALUES (?,?,?)",
                     [(n, i, "nvidia") for n in ("n1", "n2", "n3") for i in range(4)])
    links = [  # (id, node, card, kind, link, state)
        (1, "n1", 0, "nvlink", "0", "up"), (2, "n1", 1, "nvlink", "0", "down"), (3, "n1", 2, "nvlink", "0", "up"),
        (4, "n1", 3, "nvlink", "0", "unknown"), (5, "n2", None, "roce", "eth0", "down"),
        (6, "n3", 0, "hccs", "0", "up")]
    conn.executemany("INSERT INTO links (id, node, card_idx, kind, link, state, first_seen) VALUES (?,?,?,?,?,?,?)",
                     [(*r, NOW - 3600) for r in links])
    # link 3 flaps: 4 state changes in the last minutes; link 6 counts errors fast (10,000 in 5 min)
    conn.executemany("INSERT INTO link_events VALUES (?,?,?,?,?,?,?,?)",
                     [(NOW - 60 * k, 3, "n1", 2, "nvlink", "0", "up", "down") for k in range(4)])
    conn.execute("INSERT INTO link_counter_deltas VALUES (?,?,?,?)", (NOW - 30, 6, "crc_errors", 10_000))
    conn.commit()
    conn.close()



def _filled_snapshot(tmp_path: Path):
    """The room's snapshot of `_fill`'s database, read at NOW."""
    db = tmp_path / "ops.db"
    _fill(db)
    conn = sqlite3.connect(db)
    try:
        return read_snapshot(conn, now=NOW)
    finally:
        conn.close()

def test_worst_link_per_card(tmp_path: Path) -> None:
    snap = _filled_snapshot(tmp_path)
    assert snap.link_state is not None
    got = {(n, int(i)): int(s) for n, i, s in zip(snap.card_node, snap.card_idx, snap.link_state, strict=True)}
    assert got[("n1", 0)] == LINK_OK
    assert got[("n1", 1)] == LINK_CRITICAL
    assert got[("n1", 2)] == LINK_WARNING          # flapping
    assert got[("n1", 3)] == LINK_NA               # only an unknown link: not good
    assert all(got[("n2", i)] == LINK_CRITICAL for i in range(4))   # the node's NIC is down
    assert got[("n3", 0)] == LINK_WARNING          # errors above the limit
    assert got[("n3", 1)] == LINK_NA               # no links reported
    colours = class_colours(snap, "links")
    pos = snap.index_of("n3", 1)
    assert pos is not None
    assert tuple(colours[0, pos]) == NA_A
    ok = snap.index_of("n1", 0)
    assert ok is not None
    assert tuple(colours[0, ok]) == tuple(HEALTH_COLOURS[0])


def test_links_mode_in_the_window(qtbot: QtBot, tmp_path: Path) -> None:
    snap = _filled_snapshot(tmp_path)
    view = HeatmapView()
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.set_snapshot(snap)
    view.set_metric("links")
    assert view.legend.items()[:3] == ["links up", "link degraded, errors or flapping", "link down"]
    pos = snap.index_of("n1", 1)
    assert pos is not None
    assert "Links: link down" in view.tooltip_for(pos)
    view.show()
    qtbot.waitExposed(view)
    view.grab().save(str(tmp_path / "links.png"))
    assert np.all(snap.link_state is not None)


def test_card_links_for_the_detail(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    _fill(db)
    conn = sqlite3.connect(db)
    cid = conn.execute("SELECT id FROM cards WHERE node = 'n3' AND idx = 0").fetchone()[0]
    got = read_card_links(conn, cid, NOW - 3600, NOW)
    assert [(x.kind, x.link, x.state, x.speed_gbps) for x in got] == [("hccs", "0", "up", None)]
    assert got[0].counters == {"crc_errors": 10_000}
    assert read_card_links(conn, cid, NOW - 10, NOW)[0].counters == {}
    cid2 = conn.execute("SELECT id FROM cards WHERE node = 'n2' AND idx = 1").fetchone()[0]
    assert [x.kind for x in read_card_links(conn, cid2, NOW - 3600, NOW)] == ["roce"]    # the node's NIC
    conn.close()


def test_card_detail_lists_links(qtbot: QtBot, tmp_path: Path) -> None:
    import time

    from widgets.detail import CardDetail

    db = tmp_path / "ops.db"
    _fill(db)
    conn = sqlite3.connect(db)
    now = time.time()
    conn.execute("UPDATE links SET peer = '<b>gpu-9</b>', speed_gbps = 25.0 WHERE id = 6")
    conn.execute("UPDATE link_counter_deltas SET ts = ?", (now - 30,))
    conn.commit()
    cid = conn.execute("SELECT id FROM cards WHERE node = 'n3' AND idx = 0").fetchone()[0]
    conn.close()
    detail = CardDetail(str(db), cid, "n3 · card 0")
    qtbot.addWidget(detail)
    with qtbot.waitSignal(detail.loaded, timeout=10_000):
        pass
    t = detail.links
    assert t.rowCount() == 1
    cells = [t.item(0, c).text() for c in range(t.columnCount())]
    assert cells[:6] == ["hccs", "0", "up", "25 Gb/s", "<b>gpu-9</b>", "crc_errors +10000"]
    assert cells[6] == "N/A"                       # last change not stored
    detail.show()
    detail.grab().save(str(tmp_path / "detail.png"))


def test_report_links_section(tmp_path: Path) -> None:
    from console import reports

    db = tmp_path / "ops.db"
    _fill(db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE links SET last_change = ?", (NOW - 1000,))
    empty = reports.to_markdown(reports.build(conn, NOW - 7200, NOW - 3700, now=NOW))   # before any link
    assert "## Links (down, flapping, errors) by vendor\n\nNo data for this shift." in empty
    rep = reports.build(conn, NOW - 3600, NOW + 1, now=NOW)
    by_vendor = {r[0]: r for r in rep.links}
    # n1 and n3 are nvidia nodes: 5 links, 1 down at the end, none went down in the shift (the events are ups), 1 flapping (4 changes), 10,000 errors
    assert by_vendor["NVIDIA"][1:6] == ["5", "1", "0", "1", "10,000"]
    assert by_vendor["Ascend"][1:3] == ["1", "1"]
    assert by_vendor["Ascend"][5] == "N/A"                    # no counters stored: not 0
    assert by_vendor["NVIDIA"][7] == "crc_errors 10,000" and by_vendor["Ascend"][7] == "N/A"
    zh = reports.to_markdown(reports.build(conn, NOW - 3600, NOW + 1, lang="zh_CN", now=NOW))
    assert "## 按厂商统计的互联链路" in zh and "结束时断开" in zh
    assert "CRC 错误 10,000" in zh and "crc_errors" not in zh       # the counter's name in Chinese too
    html = reports.to_html(rep)
    assert "Flapping" in html
    conn.close()


def test_link_down_and_job_down_translate_apart(qtbot: QtBot) -> None:
    """"down" of a link is 断开 (disconnected), of a job 中断 (interrupted): one English word, two meanings."""
    from PySide6.QtCore import QCoreApplication

    from widgets import i18n

    app = QCoreApplication.instance()
    translator = i18n.install(app, "zh_CN")
    try:
        assert i18n.tr("down") == "中断"
        assert i18n.tr("down", "link") == "断开" and i18n.tr("up", "link") == "正常"
        assert i18n.tr("running", "link") == "运行中"           # no link entry: the plain one
    finally:
        if translator is not None:
            app.removeTranslator(translator)
        i18n.install(app, "en")
    assert i18n.tr("down", "link") == "down"


def test_a_stale_cards_tooltip_does_not_say_links_up(qtbot: QtBot, tmp_path: Path) -> None:
    snap = _filled_snapshot(tmp_path)
    pos = snap.index_of("n1", 0)
    assert pos is not None and snap.link_state is not None and int(snap.link_state[pos]) == LINK_OK
    snap.stale[pos] = True                  # marked stale after the read (the source went away)
    view = HeatmapView()
    qtbot.addWidget(view)
    view.set_snapshot(snap)
    view.set_metric("links")
    text = view.tooltip_for(pos)
    assert "Links: links not known: the node is not answering" in text and "links up" not in text


def test_link_counter_names_in_chinese_in_the_detail_and_the_same_as_the_reports(qtbot: QtBot, tmp_path: Path) -> None:
    import json
    import time

    from PySide6.QtCore import QCoreApplication

    from console import reports
    from widgets import i18n
    from widgets.detail import CardDetail

    catalogue = json.loads((Path(i18n.__file__).parents[1] / "resources" / "i18n" / "zh_CN.json").read_text())
    widget_names = {k.removeprefix("link counter: "): v for k, v in catalogue.items() if k.startswith("link counter: ")}
    assert widget_names == reports.COUNTER_NAMES_ZH              # one wording in the window and the report
    db = tmp_path / "ops.db"
    _fill(db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE link_counter_deltas SET ts = ?", (time.time() - 30,))
    conn.execute("INSERT INTO link_counter_deltas VALUES (?, 6, '<b>odd_err</b>', 5)", (time.time() - 30,))
    conn.commit()
    cid = conn.execute("SELECT id FROM cards WHERE node = 'n3' AND idx = 0").fetchone()[0]
    conn.close()
    app = QCoreApplication.instance()
    translator = i18n.install(app, "zh_CN")
    try:
        detail = CardDetail(str(db), cid, "n3 · card 0")
        qtbot.addWidget(detail)
        with qtbot.waitSignal(detail.loaded, timeout=10_000):
            pass
        from widgets.detail import COL_LINK_COUNTERS

        item = detail.links.item(0, COL_LINK_COUNTERS)
        assert item.text() == "<b>odd_err</b> +5, CRC 错误 +10000"      # an unknown name as stored, plain text
        assert "crc_errors +10000" in item.toolTip() and "<b>odd" not in item.toolTip()   # escaped
        assert detail.links.item(0, 2).text() == "正常"
        detail.close()
    finally:
        if translator is not None:
            app.removeTranslator(translator)
        i18n.install(app, "en")


def test_card_detail_says_when_a_card_has_no_links(qtbot: QtBot, tmp_path: Path) -> None:
    from widgets.detail import CardDetail

    db = tmp_path / "ops.db"
    _fill(db)
    conn = sqlite3.connect(db)
    cid = conn.execute("SELECT id FROM cards WHERE node = 'n3' AND idx = 1").fetchone()[0]
    conn.close()
    detail = CardDetail(str(db), cid, "n3 · card 1")
    qtbot.addWidget(detail)
    with qtbot.waitSignal(detail.loaded, timeout=10_000):
        pass
    assert detail.links.rowCount() == 1 and detail.links.item(0, 0).text() == "no links reported"
    assert detail.links.columnSpan(0, 0) == detail.links.columnCount()
