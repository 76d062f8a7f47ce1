"""The shift report model on small hand-made databases (real SQLite files through the real store schema):
every vendor in the fault table, the vendor code behind a card to isolate, merged collector gaps, hot
spots that do not depend on whether the hour was rolled up yet, the default window, bad dates, and
Markdown escaping."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from console import reports
from console.store import Store

TZ = ZoneInfo("Asia/Shanghai")
# 2026-12-01 10:30 in Shanghai: inside the day shift (08:00-20:00), an hour not rolled up yet
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=TZ).timestamp()
HOUR = NOW - NOW % 3600


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "site.db")
    store = Store(path)
    store.set_meta({"site_name": "hall 2", "timezone": "Asia/Shanghai",
                    "shifts": json.dumps([["day", "08:00", 12], ["night", "20:00", 12]])})
    store.close()
    conn = sqlite3.connect(path)
    nodes = [("gpu-1", "A01", "nvidia"), ("npu-1", "A02", "ascend"), ("mlu-1", "A03", "cambricon")]
    for i, (name, rack, vendor) in enumerate(nodes):
        conn.execute("INSERT INTO nodes(name, host, rack, slot, vendor, status) VALUES (?, ?, ?, 1, ?, 'ok')",
                     (name, name, rack, vendor))
        for idx in range(2):
            conn.execute("INSERT INTO cards(id, node, idx, vendor, model, serial, first_seen) VALUES "
                         "(?, ?, ?, ?, 'm', ?, ?)", (10 * i + idx, name, idx, vendor, f"SN-{name}-{idx}",
                                                     NOW - 86400))
    conn.commit()
    yield conn, path
    conn.close()


def _sweeps(conn, times):
    conn.executemany("INSERT INTO sweeps(started, finished, cards) VALUES (?, ?, 6)", [(t, t + 1) for t in times])


def test_faults_by_vendor_lists_every_vendor_of_the_site_with_zero(db):
    conn, _ = db
    _sweeps(conn, [NOW - 3600 + 10 * i for i in range(300)])
    conn.execute("INSERT INTO faults(ts, node, card_idx, vendor, code, severity, action, message) VALUES "
                 "(?, 'gpu-1', 0, 'nvidia', 'Xid 48', 'critical', 'reset_card', 'dbe')", (NOW - 60,))
    rep = reports.build(conn, NOW - 3600, NOW, now=NOW)
    rows = {r[0]: r for r in rep.vendor_faults}
    assert set(rows) == {"NVIDIA", "Ascend", "Cambricon"}
    assert rows["NVIDIA"][1:] == ["1", "2", "500.00"]
    assert rows["Ascend"][1:] == ["0", "2", "0.00"] and rows["Cambricon"][1] == "0"
    assert rep.vendor_faults[0][0] == "NVIDIA"          # most faults first


def test_cards_to_isolate_show_the_vendor_code_not_health(db):
    conn, _ = db
    rows = [(NOW - 300, "gpu-1", 1, "nvidia", "Xid 79", "critical", "reboot_node", "fallen off the bus"),
            (NOW - 290, "gpu-1", 1, "nvidia", "HEALTH", "critical", "isolate", "state 'critical'"),
            (NOW - 200, "npu-1", 0, "ascend", "8C084E00", "critical", "reset_card", "HCCS link down"),
            (NOW - 200, "npu-1", 0, "ascend", "HEALTH", "critical", "isolate", "state 'critical'"),
            (NOW - 100, "mlu-1", 1, "cambricon", "HEALTH", "critical", "isolate", "state 'critical'")]
    conn.executemany("INSERT INTO faults(ts, node, card_idx, vendor, code, severity, action, message) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?)", rows)
    rep = reports.build(conn, NOW - 3600, NOW, now=NOW)
    assert rep.isolated == [["gpu-1", "1", "Xid 79", "isolate"], ["mlu-1", "1", "HEALTH", "isolate"],
                            ["npu-1", "0", "8C084E00", "isolate"]]
    zh = reports.build(conn, NOW - 3600, NOW, lang="zh_CN", now=NOW)
    assert zh.isolated[0][3] == "隔离"


def test_back_to_back_gaps_are_one_range_with_its_duration(db):
    conn, _ = db
    start = NOW - 4 * 3600
    regular = [start + 10 * i for i in range(361)]                 # 10 s sweeps for an hour
    sparse = [regular[-1] + 300 * i for i in range(1, 13)]       # then 12 sweeps 5 min apart (1 h)
    after = [sparse[-1] + 10 * i for i in range(1, 400)]
    lost = after[-1] + 1800                                      # 30 min of nothing, then sweeps again
    _sweeps(conn, regular + sparse + after + [lost + 10 * i for i in range(200)])
    rep = reports.build(conn, start, NOW, now=NOW)
    first = rep.local(regular[-1], "%H:%M")
    assert rep.gaps == [f"{first} – {rep.local(sparse[-1], '%H:%M')} (60 min; 12 intervals between sweeps, "
                        f"longest 5 min)",
                        f"{rep.local(after[-1], '%H:%M')} – {rep.local(lost, '%H:%M')} (30 min)"]
    md = reports.to_markdown(rep)
    assert md.count("Gaps: ") == 1 and "12 intervals" in md


def test_a_collector_that_stopped_shows_a_gap_until_now(db):
    conn, _ = db
    _sweeps(conn, [NOW - 3600 + 10 * i for i in range(120)])      # nothing for the last 40 min
    rep = reports.build(conn, NOW - 3600, NOW + 3600, now=NOW)
    assert rep.gaps == [f"{rep.local(NOW - 3600 + 1190, '%H:%M')} – {rep.local(NOW, '%H:%M')} (40 min)"]


def test_hot_spots_include_the_hour_not_rolled_up_yet_and_do_not_change_when_it_is(db):
    conn, path = db
    # a cool morning rolled up, then the current hour: rack A03 (mlu-1) hot right now
    samples = []
    for ts in range(int(NOW - 3 * 3600), int(NOW), 60):
        for cid in (0, 1, 10, 11, 20, 21):
            hot = cid >= 20 and ts >= HOUR
            samples.append((cid, float(ts), 90.0 if hot else 50.0 + cid % 10, "ok"))
    conn.executemany("INSERT INTO samples(card_id, ts, temperature_c, health) VALUES (?, ?, ?, ?)", samples)
    conn.commit()
    store = Store(path)
    store.rollup(NOW)                              # the store rolls up finished hours only
    store.close()
    assert conn.execute("SELECT count(*) FROM rollups_hourly WHERE hour >= ?", (HOUR,)).fetchone()[0] == 0
    during = reports.build(conn, NOW - 3 * 3600, NOW, now=NOW)
    assert during.hot_racks[0][:2] == ["A03", "90"] and during.hot_racks[1][:2] == ["A01", "51"]
    assert during.card_peak_c[20] == 90.0 and during.card_peak_c[0] == 50.0
    # later: the hour is rolled up, the same window gives the same hot spots
    store = Store(path)
    store.rollup(NOW + 3600)
    store.close()
    later = reports.build(conn, NOW - 3 * 3600, NOW, now=NOW + 3600)
    assert later.hot_racks == during.hot_racks
    # and once the raw samples have expired the rollups still answer
    conn.execute("DELETE FROM samples WHERE ts < ?", (HOUR,))
    conn.commit()
    expired = reports.build(conn, NOW - 3 * 3600, NOW, now=NOW + 3600)
    assert [r[:2] for r in expired.hot_racks] == [r[:2] for r in during.hot_racks]


def test_default_window_is_the_last_finished_shift(db):
    conn, _ = db
    at = datetime(2026, 12, 1, 10, 30, tzinfo=TZ).timestamp()
    start, end, label = reports.last_finished_shift(conn, at)
    assert (start, end, label) == (datetime(2026, 11, 30, 20, 0, tzinfo=TZ).timestamp(),
                                   datetime(2026, 12, 1, 8, 0, tzinfo=TZ).timestamp(), "2026-11-30 night")
    at = datetime(2026, 12, 1, 21, 0, tzinfo=TZ).timestamp()
    assert reports.last_finished_shift(conn, at)[2] == "2026-12-01 day"
    at = datetime(2026, 12, 1, 7, 59, tzinfo=TZ).timestamp()
    assert reports.last_finished_shift(conn, at)[2] == "2026-11-30 day"
    assert reports.current_shift(conn, at)[2] == "2026-11-30 night"
    conn.execute("UPDATE meta SET value = '[]' WHERE key = 'shifts'")
    assert reports.last_finished_shift(conn, at) == (at - 12 * 3600, at, "last 12 h")


@pytest.mark.parametrize("text", ["0001-01-01T00:00", "9999-12-31T23:59-12:00", "1969-12-31T00:00+00:00",
                                  "2026-13-01T00:00", "yesterday", "", "2026-11-22T25:00"])
def test_bad_dates_are_one_line_of_report_error(text):
    with pytest.raises(reports.ReportError) as err:
        reports.parse_when(text, "Asia/Shanghai", "--from")
    assert str(err.value).startswith(f"--from '{text}': ") and "\n" not in str(err.value)


def test_the_far_future_within_range_is_accepted():
    assert reports.parse_when("9999-12-29T23:59", "Asia/Shanghai") > 2.5e11


def test_markdown_escapes_every_value_from_the_database(db):
    conn, _ = db
    _sweeps(conn, [NOW - 3600 + 10 * i for i in range(300)])
    conn.execute("UPDATE nodes SET name = '[evil](http://x.example)' WHERE name = 'gpu-1'")
    conn.execute("UPDATE cards SET node = '[evil](http://x.example)' WHERE node = 'gpu-1'")
    conn.execute("INSERT INTO faults(ts, node, card_idx, vendor, code, severity, action, message) VALUES "
                 "(?, '[evil](http://x.example)', 0, 'nvidia', '![img](http://x.example/a.png)', 'critical', "
                 "'isolate', 'm')", (NOW - 60,))
    conn.execute("INSERT INTO handover_notes(ts, author, text) VALUES (?, ?, ?)",
                 (NOW - 30, "*bob*", "<script>alert(1)</script> | `rm -rf` _x_ & done\nsecond line"))
    rep = reports.build(conn, NOW - 3600, NOW, now=NOW)
    md = reports.to_markdown(rep)
    assert "[evil](" not in md and "\\[evil\\](http://x.example)" in md
    assert "![img]" not in md and "\\!\\[img\\](http://x.example/a.png)" in md
    assert "<script>" not in md and "&lt;script&gt;" in md and "\\*bob\\*" in md
    assert "\\| \\`rm -rf\\` \\_x\\_ &amp; done — second line" in md
    page = reports.to_html(rep)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_repeat_offenders_have_a_header_for_every_column(db):
    conn, _ = db
    conn.executemany("INSERT INTO incidents(opened_at, severity, state, title, node, card_idx, serial, source, key)"
                     " VALUES (?, 'P2', 'resolved', 't', 'gpu-1', 1, 'SN-gpu-1-1', 'fault', ?)",
                     [(NOW - 86400 * i, f"k{i}") for i in range(3)])
    rep = reports.build(conn, NOW - 3600, NOW, now=NOW)
    assert ["card", "SN-gpu-1-1 (gpu-1 / 1)", "3"] in rep.offenders
    section = next(s for s in reports._sections(rep) if s[0].startswith("Repeat offenders"))
    assert section[1] == ["Kind", "Card serial / node", "Incidents (30 d)"]
    assert all(len(r) == len(section[1]) for r in section[2])
    md = reports.to_markdown(rep)
    assert "| Kind | Card serial / node | Incidents (30 d) |" in md
