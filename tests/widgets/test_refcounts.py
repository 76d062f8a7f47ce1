"""The reference counts of None, True and False stay steady across thousands of paints of every view.

PySide6 6.12.0 dropped one reference to None/True/False on QPainter calls (setPen, drawRect, …); on
CPython 3.11, where those objects are not immortal, the window aborted after a few minutes with
"none_dealloc" / "bool_dealloc". This test fails on such a binding (1,000 paints lose thousands of
references) and passes on a sound one, whatever other cause a leak of these references has.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication

from console import demo
from console.live import open_readonly, read_snapshot, read_with

PAINTS = 1000
TOLERANCE = 200          # a few hundred references come and go with caches; a leak costs >= 1 per paint


def _counts() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def _assert_steady(paint: Callable[[int], None], paints: int = PAINTS) -> None:
    for i in range(min(20, paints)):     # warm-up: caches, fonts, first layouts
        paint(i)
    gc.collect()
    before = _counts()
    for i in range(paints):
        paint(i)
        if i % 50 == 0:
            QApplication.processEvents()
    gc.collect()
    after = _counts()
    drift = [a - b for a, b in zip(after, before, strict=True)]
    assert all(abs(d) < TOLERANCE for d in drift), (
        f"refcount drift over {paints} paints (None, True, False): {drift} — a binding that leaks or drops "
        "references to singletons aborts the window (see pyproject.toml's PySide6 pin)")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("refcounts") / "demo.db")
    demo.build_history(path, days=0.02, cards=64, end=time.time())
    return path


def test_bare_qpainter_calls_keep_singletons(qapp: QApplication) -> None:
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    pen = QPen(QColor(10, 20, 30))

    def paint(_i: int) -> None:
        painter.setPen(pen)
        painter.setBrush(QColor(1, 2, 3))
        painter.drawRect(1, 1, 5, 5)
        painter.fillRect(1, 1, 3, 3, QColor(5, 5, 5))

    try:
        _assert_steady(paint, 3000)
    finally:
        painter.end()


def test_painting_on_new_devices_keeps_none(qapp: QApplication) -> None:
    """PySide6 6.10-6.12 add references to None each time a QPainter begins on a newly made paint device
    (6 on 6.11.3; pyqtgraph's axes make a new QPicture at each change, so every card detail opened cost
    ~40 and every report preview ~300). Only ever an increase, but a drift that hides the fatal kind."""
    from PySide6.QtGui import QImage, QPainter, QPicture, QPixmap

    makers = (QPicture, lambda: QImage(8, 8, QImage.Format.Format_ARGB32), lambda: QPixmap(8, 8))

    def paint(i: int) -> None:
        device = makers[i % len(makers)]()
        painter = QPainter(device)
        painter.end()

    _assert_steady(paint, 1500)


def test_opening_and_closing_card_details(qtbot, demo_db: str) -> None:
    from widgets.detail import CardDetail

    snap = read_snapshot(open_readonly(demo_db))
    pool = QThreadPool()

    def paint(i: int) -> None:
        detail = CardDetail(demo_db, int(snap.card_id[i % len(snap.card_id)]), "card", None, pool)
        detail.resize(700, 600)
        detail.show()
        qtbot.waitUntil(lambda: detail.history is not None, timeout=10_000)
        detail.grab()
        detail.close()
        detail.deleteLater()
        QApplication.processEvents()

    _assert_steady(paint, 60)
    pool.waitForDone(5_000)


def test_numpy_dtype_from_a_type_keeps_none() -> None:
    """numpy 2.2.0-2.4.x add one reference to None at every np.dtype(tuple); pyqtgraph's mkColor does that
    for every tuple colour (see pyproject.toml's numpy pin)."""
    import numpy as np

    _assert_steady(lambda _i: np.issubdtype(tuple, np.floating), 3000)


def test_room_heatmap_in_every_colour_mode(qtbot, demo_db: str) -> None:
    from widgets.heatmap import METRICS, HeatmapView, attach_geometry

    snap = read_snapshot(open_readonly(demo_db))
    attach_geometry(snap)
    view = HeatmapView()
    qtbot.addWidget(view)
    view.resize(640, 400)
    view.show()
    view.set_snapshot(snap)
    modes = list(METRICS)

    def paint(i: int) -> None:
        view.set_metric(modes[i % len(modes)])
        view.grab()

    _assert_steady(paint)


def test_timeline_and_jobs_panel(qtbot, demo_db: str) -> None:
    from widgets.jobs import JobsView

    snap = read_snapshot(open_readonly(demo_db))
    view = JobsView()
    qtbot.addWidget(view)
    view.resize(800, 500)
    view.attach_timeline()
    view.show()
    view.set_rows(snap.jobs, snap.taken_at)
    qtbot.waitUntil(lambda: view.timeline is not None, timeout=10_000)

    def paint(i: int) -> None:
        if i % 100 == 0:
            view.set_rows(snap.jobs, snap.taken_at + i)
        view.grab()

    _assert_steady(paint)


def test_card_detail(qtbot, demo_db: str) -> None:
    from widgets.detail import CardDetail

    snap = read_snapshot(open_readonly(demo_db))
    pool = QThreadPool()
    detail = CardDetail(demo_db, int(snap.card_id[0]), "card", None, pool)
    qtbot.addWidget(detail)
    detail.resize(700, 600)
    detail.show()
    qtbot.waitUntil(lambda: detail.history is not None, timeout=10_000)
    _assert_steady(lambda _i: detail.grab(), 500)
    pool.waitForDone(5_000)


def test_incident_detail_and_snapshot_plot(qtbot, demo_db: str) -> None:
    from console.live import read_incident_detail
    from widgets.incidents import IncidentsView

    snap = read_snapshot(open_readonly(demo_db))
    assert snap.incidents, "the demo's story opens incidents"
    pool = QThreadPool()
    view = IncidentsView(demo_db, pool, "en")
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    view.set_rows(snap.incidents, snap.taken_at)
    details = [read_with(demo_db, lambda c, i=inc.id: read_incident_detail(c, i)) for inc in snap.incidents[:5]]
    view.table.clearSelection()          # show_detail draws what it is given (no newer selection to prefer)

    def paint(i: int) -> None:
        if i % 25 == 0:
            view.show_detail(details[(i // 25) % len(details)])
        view.grab()

    _assert_steady(paint, 500)
    pool.waitForDone(5_000)


def test_report_rendering(qapp: QApplication, demo_db: str, tmp_path) -> None:
    from widgets.report import build_for, render_pdf

    end = time.time()
    rep = build_for(demo_db, end - 3600, end, "en", "tester")
    out = str(tmp_path / "r.pdf")
    _assert_steady(lambda _i: render_pdf(rep, out), 10)
