"""The card detail offscreen on a real SQLite file: minimum spans (a flat line looks flat), linked and
aligned x axes, threshold lines, units (English and Chinese), an honest range label for 7 d with 2 h of
data, and fault evidence that Qt never renders as markup."""

from __future__ import annotations

import re
import sqlite3
import time

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QTextDocument

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity
from console.incidents import Thresholds
from console.store import Store
from widgets.detail import PLOTS, CardDetail, value_range

TOTAL_MIB = 81559.0
HOSTILE = '<a href="x">click</a><img src=x> \x1b]0;pwned\x07 <b>bold</b>'


def _report(t: float, faults=()) -> NodeReport:
    cards = tuple(CardSample(i, model="H800", serial=f"SN{i}", health=Health.OK, temperature_c=50.0,
                             utilization_pct=90.0, memory_used_mib=40000.0, memory_total_mib=TOTAL_MIB, power_w=300.0)
                  for i in range(2))
    return NodeReport("gpu-1", True, t, 0.1, "nvidia", cards, tuple(faults))


@pytest.fixture
def db(tmp_path):
    """Two hours of flat samples every minute for two cards, a hostile fault 30 min ago, hours rolled up."""
    path = str(tmp_path / "ops.db")
    store = Store(path)
    store.sync_nodes([("gpu-1", "127.0.0.1", 22, "A01", 1, "nvidia")])
    now = time.time()
    for k in range(120):
        t = now - 7200 + 60 * k
        faults = [Fault("Xid 79", Severity.CRITICAL, Action.REBOOT_NODE, HOSTILE, 0, t)] if k == 90 else []
        store.write_sweep(t, t + 0.5, [_report(t, faults)])
    store.rollup(now)
    card_id = store.conn.execute("SELECT id FROM cards WHERE node = 'gpu-1' AND idx = 0").fetchone()[0]
    store.close()
    return path, int(card_id)


def _open(qtbot, path, card_id, **kwargs) -> CardDetail:
    detail = CardDetail(path, card_id, "gpu-1 · card 0 <b>x</b>", **kwargs)
    qtbot.addWidget(detail)
    with qtbot.waitSignal(detail.loaded, timeout=10_000):
        detail.show()
    return detail


def _switch(qtbot, detail: CardDetail, which: int) -> None:
    with qtbot.waitSignal(detail.loaded, timeout=10_000):
        detail.group.button(which).click()


def test_flat_lines_look_flat_and_limits_are_drawn(qtbot, db):
    path, card = db
    detail = _open(qtbot, path, card, vendor="nvidia")
    y = {key: detail.plots[key].getViewBox().viewRange()[1] for key, _l, _u in PLOTS}
    lo, hi = y["memory_used_mib"]
    assert lo <= 0 and hi >= TOTAL_MIB, "memory: 0 to the card's total, not ±0.4 MiB around a flat line"
    lo, hi = y["utilization_pct"]
    assert lo <= 0 and hi >= 100
    lo, hi = y["temperature_c"]
    assert hi - lo >= 20 and lo <= 45 and hi >= 95, "temperature: at least 20 °C, the crit line in view"
    lo, hi = y["power_w"]
    assert lo <= 0 and hi >= 750
    lines = {key: sorted(line.value() for line in detail.limit_lines[key]) for key, _l, _u in PLOTS}
    assert lines["temperature_c"] == [85.0, 95.0]
    assert lines["memory_used_mib"] == [TOTAL_MIB]
    assert lines["power_w"] == [750.0]                      # nvidia's limit from console.incidents
    assert lines["utilization_pct"] == []


def test_site_thresholds_are_drawn_when_given(qtbot, db):
    path, card = db
    limits = Thresholds(per_vendor={"nvidia": (80.0, 90.0)}, power_warn_w={"nvidia": 600.0})
    detail = _open(qtbot, path, card, vendor="nvidia", thresholds=limits)
    assert sorted(line.value() for line in detail.limit_lines["temperature_c"]) == [80.0, 90.0]
    assert [line.value() for line in detail.limit_lines["power_w"]] == [600.0]


def test_x_axes_are_linked_and_aligned_with_units(qtbot, db):
    path, card = db
    detail = _open(qtbot, path, card)
    plots = [detail.plots[key] for key, _l, _u in PLOTS]
    first = plots[0].getViewBox()
    for w in plots[1:]:
        assert w.getViewBox().linkedView(0) is first
    widths = {w.getAxis("left").width() for w in plots}
    assert len(widths) == 1, "every left axis as wide as the others, so the time axes line up"
    ranges = {tuple(round(v, 3) for v in w.getViewBox().viewRange()[0]) for w in plots}
    assert len(ranges) == 1
    first.setXRange(time.time() - 1800, time.time())
    assert {tuple(round(v, 3) for v in w.getViewBox().viewRange()[0]) for w in plots} == {
        tuple(round(v, 3) for v in first.viewRange()[0])}
    for (key, _label, unit), w in zip(PLOTS, plots, strict=True):
        assert f"({unit})" in w.getAxis("left").labelText, key
    assert detail.header.text() == "gpu-1 · card 0 <b>x</b>"                   # plain text, shown as given


def test_seven_days_with_two_hours_says_what_it_shows(qtbot, db):
    path, card = db
    detail = _open(qtbot, path, card)
    assert re.search(r"\b(59|60) samples", detail.status.text()) and "less than the range" not in detail.status.text()
    _switch(qtbot, detail, 2)
    data = detail.data
    assert data is not None and data.seconds == 7 * 86400
    conn = sqlite3.connect(path)
    try:
        rollups = conn.execute("SELECT count(*) FROM rollups_hourly WHERE card_id = ?", (card,)).fetchone()[0]
        rolled_until = float(conn.execute("SELECT value FROM meta WHERE key = 'rolled_until'").fetchone()[0])
        raw = conn.execute("SELECT count(*) FROM samples WHERE card_id = ? AND ts >= ?",
                           (card, rolled_until)).fetchone()[0]
    finally:
        conn.close()
    assert rollups >= 1 and data.rollups == rollups
    assert len(data.history.t) == rollups + raw
    text = detail.status.text()
    assert f"{rollups} hourly averages" in text and (raw == 0 or f"{raw} samples" in text)   # raw may all be rolled up
    assert "of history" in text and "less than the range" in text
    # two hours held; a rollup stands for its whole hour, so the span can start up to an hour earlier
    held = re.search(r"7 d: ([\d.]+) (h|min) of history", text)
    assert held is not None and 2.0 <= float(held.group(1)) / (60 if held.group(2) == "min" else 1) <= 3.0, text
    assert "59 hourly averages" not in text
    # the latest hour is raw: the last point is a sample, not an hour's average
    assert data.history.t[-1] > rolled_until
    lo, hi = detail.plots["memory_used_mib"].getViewBox().viewRange()[1]
    assert lo <= 0 and hi >= TOTAL_MIB, "the total is known from the raw tail even though rollups omit it"


def test_fault_evidence_is_never_markup(qtbot, db):
    path, card = db
    detail = _open(qtbot, path, card)
    faults = [line for _w, line in detail.fault_lines]
    assert len(faults) == 4                                   # one marker per plot
    tip = faults[0].toolTip()
    assert "<a href" not in tip and "<img" not in tip and "\x1b" not in tip and "\x07" not in tip
    doc = QTextDocument()
    doc.setHtml(tip)
    shown = doc.toPlainText()
    assert '<a href="x">click</a><img src=x>' in shown and "<b>bold</b>" in shown and "pwned" not in shown
    label = [line.label for line in faults if getattr(line, "label", None) is not None][0]
    assert label.toPlainText() == "Xid 79"


def test_units_and_labels_in_chinese(qtbot, db):
    from widgets import i18n

    path, card = db
    translator = i18n.install(QCoreApplication.instance(), "zh_CN")
    try:
        detail = _open(qtbot, path, card, vendor="nvidia")
        labels = {key: detail.plots[key].getAxis("left").labelText for key, _l, _u in PLOTS}
        assert labels["temperature_c"] == "温度 (°C)" and labels["utilization_pct"] == "利用率 (%)"
        assert labels["memory_used_mib"] == "显存占用 (MiB)" and labels["power_w"] == "功耗 (W)"
        assert detail.plots["power_w"].getAxis("bottom").labelText == "时间"
        assert "个采样" in detail.status.text() and "的历史" in detail.status.text()
        assert any("告警" in line.label.toPlainText() for line in detail.limit_lines["temperature_c"])
    finally:
        if translator is not None:
            QCoreApplication.instance().removeTranslator(translator)
        i18n.install(QCoreApplication.instance(), "en")


def test_value_range_minimum_spans():
    flat = np.full(10, 1234.5)
    lo, hi = value_range("memory_used_mib", flat, [], None)
    assert lo == 0 and hi >= 1234.5 and hi - lo >= 1024
    lo, hi = value_range("temperature_c", np.full(5, 42.0), [], None)
    assert hi - lo >= 20
    lo, hi = value_range("power_w", np.full(5, np.nan), [], None)
    assert (lo, hi) == (0.0, 50.0)                            # all N/A: a sensible empty axis, no crash
    lo, hi = value_range("utilization_pct", np.zeros(0), [], None)
    assert (lo, hi) == (0.0, 100.0)


def test_status_says_when_the_newest_point_is_old_and_when_nothing_is_held():
    from console.live import History
    from widgets.detail import CardHistory, status_text

    now = 1_800_000_000.0
    t = np.array([now - 3000 + 60 * k for k in range(20)])          # 20 min of samples, the last 31 min ago
    metrics = {k: np.full(len(t), 50.0) for k in ("temperature_c", "utilization_pct", "memory_used_mib",
                                                   "memory_total_mib", "power_w")}
    text = status_text(CardHistory(History(1, now - 3600, now, t, metrics, [], False), 3600.0, 0, None), "1 h")
    assert "last sample 31 min ago" in text and "20 samples" in text and "0 faults" in text
    empty = {k: np.zeros(0) for k in metrics}
    text = status_text(CardHistory(History(1, now - 3600, now, np.zeros(0), empty, [], False), 3600.0, 0, None), "1 h")
    assert "no history in the database for this range" in text
