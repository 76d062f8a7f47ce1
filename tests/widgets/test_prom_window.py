"""`mixops gui --prometheus URL`: the window over a real VictoriaMetrics on 127.0.0.1 that a real Collector sweep
(fake transport with fixture text, the real store and remote writer) fills; then the store stops, and the window
says "source unavailable" and shows the last values as not live."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.console.test_promview import _sweeps_into
from widgets.app import MainWindow, run_gui

SHOT = os.environ.get("MIXOPS_PROM_SHOT")       # a path: the window is saved there as a PNG (a look at it)


def _wait(qtbot, window):
    try:
        qtbot.waitUntil(lambda: window.snapshot is not None and len(window.snapshot.card_node) == 3
                        and window.incidents is not None and window.heatmap is not None
                        and window.tabs.indexOf(window.heatmap) >= 0, timeout=30_000)
    except Exception:
        raise AssertionError((window.message.text(), window.snapshot and len(window.snapshot.card_node),
                              window.incidents, window.heatmap, window.loading)) from None


@pytest.mark.slow
def test_window_over_a_real_store_shows_the_room_then_source_unavailable(qtbot, tmp_path, monkeypatch, victoria):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    url = victoria.url
    _sweeps_into(f"{url}/api/v1/write", tmp_path, 2)
    window = MainWindow(None, url, False, 10.0, prometheus=url)
    qtbot.addWidget(window)
    window.resize(1200, 760)
    window.show()
    _wait(qtbot, window)
    snap = window.snapshot
    assert snap is not None and set(snap.card_node) == {"mlu-1"} and not snap.stale.any()
    assert window.heatmap.snapshot is snap
    window.tabs.setCurrentWidget(window.fleet)
    assert {window.fleet.model.row_name(i) for i in range(window.fleet.model.rowCount())} == {"mlu-1", "mlu-2"}
    window.tabs.setCurrentWidget(window.incidents)
    qtbot.waitUntil(lambda: window.incidents.model.rowCount() >= 1, timeout=10_000)   # ECC-UE, from the store
    window.incidents.table.selectRow(0)
    assert "Node: mlu-" in window.incidents.detail.toPlainText()   # the row itself, plain text
    assert not window.report_action.isEnabled() and "--prometheus" in window.report_action.toolTip()
    assert not window.note_action.isEnabled()
    window.incidents.acknowledge()                                # says why not; writes nothing
    assert "not available with --prometheus" in window.incidents.status.text()
    detail = window.open_card("mlu-1", 0)
    assert detail is not None
    qtbot.waitUntil(lambda: detail.data is not None, timeout=20_000)
    assert np.isfinite(detail.data.history.metrics["temperature_c"]).any()
    detail.close()
    window.tabs.setCurrentIndex(0)

    victoria.stop()
    qtbot.waitUntil(lambda: window.source_down is not None, timeout=30_000)
    assert window.source_down.startswith(f"source unavailable: {url}: ")
    assert window.source_banner.isVisible() and "Source unavailable" in window.source_banner.text()
    assert "not live" in window.source_banner.text()
    shown = window.heatmap.snapshot
    assert shown is not snap and shown.stale.all() and shown.nodes_ok == 0     # grey, never as live values
    assert window.sweep_label.text() == "source unavailable"
    if SHOT:
        window.grab().save(SHOT)
    window.close()


def test_prometheus_with_a_database_is_one_line_exit_2(capsys):
    assert run_gui(None, "x.db", False, prometheus="http://127.0.0.1:1") == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "not a url", "http://"])
def test_gui_prometheus_with_a_bad_url_is_one_line_exit_2(url, capsys):
    from main import main

    assert main(["gui", "--prometheus", url]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_links_mode_over_a_real_store(qtbot, tmp_path, monkeypatch, victoria):
    """The room's links colour mode with --prometheus: down, degraded (an open LINK-SLOW incident), up and N/A."""
    import time

    from console.links import LINK_CRITICAL, LINK_NA, LINK_OK, LINK_WARNING
    from console.metrics import RemoteWriter, Snapshots
    from console.service import SweepSummary
    from tests.console.test_promview import _link_store
    from tests.engines import poll
    from widgets.heatmap import HEALTH_COLOURS, class_colours

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    site, store, reports = _link_store(tmp_path)
    writer = RemoteWriter(f"{victoria.url}/api/v1/write", str(tmp_path / "rw"))
    try:
        summary = SweepSummary(1, time.time(), 0.1, reports, ())
        writer.push(Snapshots(site, "1/1").update(summary, store), summary.started + summary.duration_s)
        poll(lambda: writer.queued() == 0 and writer.sent >= 1, "the sweep sent")
    finally:
        writer.close()
        store.close()
    window = MainWindow(None, victoria.url, False, 10.0, prometheus=victoria.url)
    qtbot.addWidget(window)
    window.resize(1200, 760)
    window.show()
    qtbot.waitUntil(lambda: window.snapshot is not None and window.heatmap is not None
                    and window.snapshot.link_state is not None
                    and LINK_WARNING in window.snapshot.link_state.tolist(), timeout=30_000)
    snap = window.snapshot
    got = [int(snap.link_state[snap.index_of("n1", i)]) for i in range(4)]
    assert got == [LINK_OK, LINK_CRITICAL, LINK_WARNING, LINK_NA]
    view = window.heatmap
    view.set_metric("links")
    assert "Links: link down" in view.tooltip_for(snap.index_of("n1", 1))
    assert "Links: link degraded, errors or flapping" in view.tooltip_for(snap.index_of("n1", 2))
    colours = class_colours(snap, "links")
    assert tuple(colours[0, snap.index_of("n1", 1)]) == tuple(HEALTH_COLOURS[2])
    window.close()
