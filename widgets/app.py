"""The operator's window: room heatmap, fleet table, card detail, status bar.

Sweeps run in one worker thread (the in-app collector, or the demo), database reads in another;
the GUI thread only receives snapshots through queued signals and paints.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QMetaObject,
    QObject,
    Qt,
    QThread,
    QThreadPool,
    QTimer,
    Slot,
)
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSystemTrayIcon,
    QTabWidget,
)

from console import paths
from console.live import Snapshot, SnapshotReader, SweepRunner
from console.site import Site, SiteError, load_site
from widgets import i18n
from widgets.fleet import FleetView
from widgets.i18n import tr
from widgets.jobs import JobsView

if TYPE_CHECKING:
    from widgets.heatmap import HeatmapView
    from widgets.incidents import IncidentsView


class MainWindow(QMainWindow):
    """One window for the shift: the room, the fleet, and what the collector is doing."""

    def __init__(self, db_path: str | None, site_name: str, demo: bool, interval_s: float = 10.0,
                 runner: SweepRunner | None = None, problem: str | None = None) -> None:
        super().__init__()
        self.db_path = db_path
        self.demo = demo
        self.interval_s = interval_s
        self.snapshot: Snapshot | None = None
        self.details: list[QDialog] = []
        self.update_costs_s: list[float] = []   # GUI-thread time per snapshot (bench/gui_latency.py)
        prefix = tr("DEMO") + " — " if demo else ""
        self.setWindowTitle(f"mixops — {prefix}{site_name}")
        # The room view (pyqtgraph) is built right after the first paint: a placeholder until then.
        self.heatmap: HeatmapView | None = None
        self.incidents: IncidentsView | None = None
        self._seen_incidents: set[int] | None = None
        self.notifications: list[str] = []      # what was notified (tests read it)
        self.tray: QSystemTrayIcon | None = None
        self._room_placeholder = QLabel(tr("Loading the room view…"))
        self._room_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.fleet = FleetView()
        self.jobs = JobsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._room_placeholder, tr("Room"))
        self.tabs.addTab(self.fleet, tr("Fleet"))
        self.tabs.addTab(self.jobs, tr("Jobs"))
        self.setCentralWidget(self.tabs)
        self.fleet.node_activated.connect(self.show_node)
        self._build_menus()
        self._build_status(site_name, problem)
        self.resize(1280, 800)

        self._threads: list[QThread] = []
        self.pool = QThreadPool(self)          # history reads of the card detail
        self.pool.setMaxThreadCount(2)
        self.reader: SnapshotReader | None = None
        self.runner = runner
        if db_path is None:
            # Nothing to show but the problem (e.g. a broken site file): say it in the middle.
            text = QLabel(problem or "")
            text.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            text.setWordWrap(True)
            self.setCentralWidget(text)
            self.problem_label = text
        else:
            self.reader = SnapshotReader(db_path, interval_s, period_s=min(2.0, max(0.5, interval_s / 5)),
                                         prepare=_prepare_snapshot)
            self.reader.snapshot.connect(self.set_snapshot, Qt.ConnectionType.QueuedConnection)
            self.reader.failed.connect(self._reader_failed, Qt.ConnectionType.QueuedConnection)
        if runner is not None:
            runner.progress.connect(self._progress, Qt.ConnectionType.QueuedConnection)
            runner.failed.connect(self._runner_failed, Qt.ConnectionType.QueuedConnection)
            runner.swept.connect(self._swept, Qt.ConnectionType.QueuedConnection)
        # The window paints first; the collector stack (paramiko, SQLite, the demo) is imported and
        # the workers start on the next turn of the event loop.
        self._started = False
        QTimer.singleShot(1000, self.start_workers)      # in case the window is never painted
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._update_age)
        self._clock.start(1000)

    # ---- construction ----------------------------------------------------------------------------

    def start_workers(self) -> None:
        """Import what the worker threads use, here in the GUI thread (PySide6's import hook is not
        safe against imports in a worker while the GUI thread paints), then start them."""
        if self._started:
            return
        self._started = True
        from console import demo, incidents, service, store  # noqa: F401
        from widgets import detail  # noqa: F401
        from widgets.heatmap import HeatmapView

        self.heatmap = HeatmapView()
        self.heatmap.card_clicked.connect(self.open_card)
        self.jobs.attach_timeline()
        current = self.tabs.currentIndex()
        self.tabs.removeTab(0)
        self.tabs.insertTab(0, self.heatmap, tr("Room"))
        self.tabs.setCurrentIndex(current)
        self._room_placeholder.deleteLater()
        if self.db_path is not None:
            from widgets.incidents import IncidentsView

            self.incidents = IncidentsView(self.db_path, self.pool, i18n.current_language())
            self.incidents.show_card.connect(self.show_card)
            self.incidents.show_job.connect(self.show_job)
            self.incidents.changed.connect(self._poll_now)
            self.tabs.addTab(self.incidents, tr("Incidents"))
            if self.snapshot is not None:
                self.incidents.set_rows(self.snapshot.incidents, self.snapshot.taken_at)

        # Worker threads parse and write in Python: hand the GIL back to the GUI thread sooner than
        # the default 5 ms so painting and input never queue behind a sweep.
        sys.setswitchinterval(0.002)
        if self.reader is not None:
            self._start_worker(self.reader)
        if self.runner is not None:
            self._start_worker(self.runner)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if not self._started:
            QTimer.singleShot(0, self.start_workers)

    def _start_worker(self, worker: SnapshotReader | SweepRunner) -> None:
        thread = QThread(self)
        thread.setObjectName(f"mixops-{type(worker).__name__}")
        worker.moveToThread(thread)
        thread.started.connect(worker.start)
        thread.start()
        self._threads.append(thread)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu(tr("&File"))
        report = QAction(tr("Shift report…"), self)
        report.setShortcut(QKeySequence("Ctrl+P"))
        report.triggered.connect(self.open_report)
        file_menu.addAction(report)
        note = QAction(tr("Add handover note…"), self)
        note.triggered.connect(self.add_handover_note)
        file_menu.addAction(note)
        quit_action = QAction(tr("&Quit"), self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view = self.menuBar().addMenu(tr("&View"))
        for i, label in enumerate((tr("Room"), tr("Fleet"))):
            action = QAction(label, self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, i=i: self.tabs.setCurrentIndex(i))
            view.addAction(action)
        find = QAction(tr("Find node or card…"), self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self._focus_search)
        view.addAction(find)
        operator = QAction(tr("Operator name…"), self)
        operator.triggered.connect(self._set_operator)
        view.addAction(operator)
        sound = QAction(tr("Sound on new P1/P2"), self, checkable=True)
        sound.setChecked(bool(i18n.settings().value("sound", False, bool)))
        sound.toggled.connect(lambda on: i18n.settings().setValue("sound", on))
        view.addAction(sound)
        incidents_tab = QAction(tr("Incidents"), self)
        incidents_tab.setShortcut(QKeySequence("Ctrl+3"))
        incidents_tab.triggered.connect(lambda: self.incidents is not None and self.tabs.setCurrentWidget(self.incidents))
        view.addAction(incidents_tab)
        lang = view.addMenu(tr("Language"))
        group = QActionGroup(self)
        current = i18n.chosen_language()
        for code, name in i18n.LANGUAGES.items():
            action = QAction(name, self, checkable=True)
            action.setChecked(code == current)
            action.triggered.connect(lambda _=False, code=code: self._set_language(code))
            group.addAction(action)
            lang.addAction(action)

    def _build_status(self, site_name: str, problem: str | None) -> None:
        bar = self.statusBar()
        self.mode_label = QLabel(tr("DEMO — simulated data") if self.demo else site_name)
        if self.demo:
            self.mode_label.setStyleSheet("QLabel { background: #b8860b; color: black; padding: 1px 6px; "
                                          "font-weight: bold; }")
        self.sweep_label = QLabel(tr("no sweep yet"))
        self.nodes_label = QLabel("")
        self.collector_label = QLabel("")
        self.incident_label = QLabel("")
        self.incident_label.setToolTip(tr("Open incidents per severity"))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setFormat(tr("history %p%"))
        self.progress.hide()
        self.message = QLabel(problem or "")
        bar.addWidget(self.mode_label)
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.incident_label)
        bar.addPermanentWidget(self.nodes_label)
        bar.addPermanentWidget(self.sweep_label)
        bar.addPermanentWidget(self.collector_label)

    # ---- data ------------------------------------------------------------------------------------

    @Slot(object)
    def set_snapshot(self, snapshot: Snapshot) -> None:
        """A new view of the database arrived from the reader thread."""
        t0 = time.perf_counter()
        self.snapshot = snapshot
        if self.heatmap is not None:
            self.heatmap.set_snapshot(snapshot)
        self.fleet.set_rows(snapshot.nodes, snapshot.taken_at)
        self.jobs.set_rows(snapshot.jobs, snapshot.taken_at)
        if self.incidents is not None:
            self.incidents.set_rows(snapshot.incidents, snapshot.taken_at)
        counts = {p: 0 for p in ("P1", "P2", "P3", "P4")}
        for inc in snapshot.incidents:
            counts[inc.severity] = counts.get(inc.severity, 0) + 1
        colours = {"P1": "#d73027", "P2": "#f46d43", "P3": "#b8860b", "P4": "#4575b4"}
        self.incident_label.setText(" ".join(f"<span style='color:{colours[p]}'><b>{p}</b> {n}</span>"
                                             for p, n in counts.items()))
        self._notify(snapshot)
        self.nodes_label.setText(
            f"{tr('nodes')}: <span style='color:#1a9850'>{snapshot.nodes_ok} {tr('ok')}</span> · "
            f"<span style='color:#d73027'>{snapshot.nodes_failed} {tr('failed')}</span> · "
            f"{snapshot.nodes_stale} {tr('stale')}")
        cpu = "N/A" if snapshot.collector_cpu_pct is None else f"{snapshot.collector_cpu_pct:.0f}%"
        rss = "N/A" if snapshot.collector_rss_mib is None else f"{snapshot.collector_rss_mib:.0f} MiB"
        self.collector_label.setText(f"{tr('collector')}: CPU {cpu}, {tr('memory')} {rss}")
        self._update_age()
        self.update_costs_s.append(time.perf_counter() - t0)
        if os.environ.get("MIXOPS_DEBUG_COSTS"):
            print(f"snapshot {self.update_costs_s[-1] * 1000:.1f} ms heatmap "
                  f"{(self.heatmap.last_refresh_s if self.heatmap else 0) * 1000:.1f} ms", file=sys.stderr)
        del self.update_costs_s[:-100]

    def _update_age(self) -> None:
        s = self.snapshot
        if s is None or s.last_sweep_at is None:
            return
        age = time.time() - s.last_sweep_at
        text = f"{tr('last sweep')}: {age:.0f} s {tr('ago')}"
        late = age > 3 * self.interval_s
        self.sweep_label.setText(text)
        self.sweep_label.setStyleSheet("QLabel { color: #d73027; font-weight: bold; }" if late else "")

    def _notify(self, snapshot: Snapshot) -> None:
        """A desktop notification (and a beep when enabled) for each new P1/P2 that is not silenced."""
        ids = {inc.id for inc in snapshot.incidents}
        if self._seen_incidents is None:           # the first view: what was open before we started
            self._seen_incidents = ids
            return
        fresh = [inc for inc in snapshot.incidents if inc.id not in self._seen_incidents
                 and inc.severity in ("P1", "P2") and inc.state != "silenced"]
        self._seen_incidents |= ids
        for inc in fresh:
            text = f"{inc.severity} #{inc.id}: {inc.title}"
            self.notifications.append(text)
            if self.tray is None and QSystemTrayIcon.isSystemTrayAvailable():
                self.tray = QSystemTrayIcon(self.windowIcon(), self)
                self.tray.show()
            if self.tray is not None:
                icon = (QSystemTrayIcon.MessageIcon.Critical if inc.severity == "P1"
                        else QSystemTrayIcon.MessageIcon.Warning)
                self.tray.showMessage("mixops", text, icon, 15_000)
            self.message.setText(text)
            if i18n.settings().value("sound", False, bool):
                QApplication.beep()

    def _poll_now(self) -> None:
        if self.reader is not None:
            QMetaObject.invokeMethod(self.reader, "poll", Qt.ConnectionType.QueuedConnection)

    @Slot(str, int)
    def show_card(self, node: str, idx: int) -> None:
        """From an incident to its card (or node) in the room."""
        if self.heatmap is None:
            return
        self.tabs.setCurrentWidget(self.heatmap)
        if idx < 0 or not self.heatmap.focus_card(node, idx):
            self.heatmap.focus_node(node)

    @Slot(str, float)
    def show_job(self, job: str, at: float) -> None:
        """From an incident to its job's lane in the continuity timeline, centred on the incident."""
        self.tabs.setCurrentWidget(self.jobs)
        self.jobs.select_job(job, at)

    @Slot(str, float)
    def _progress(self, phase: str, fraction: float) -> None:
        if fraction >= 1.0:
            self.progress.hide()
            self.message.setText("")
            return
        self.progress.show()
        self.progress.setValue(int(fraction * 100))
        self.message.setText(tr("Building simulated history…"))

    @Slot(object)
    def _swept(self, summary: object) -> None:
        if self.reader is not None:
            QMetaObject.invokeMethod(self.reader, "poll", Qt.ConnectionType.QueuedConnection)

    @Slot(str)
    def _runner_failed(self, text: str) -> None:
        self.message.setText(f"{tr('collector')}: {text}")

    @Slot(str)
    def _reader_failed(self, text: str) -> None:
        self.message.setText(f"{tr('database')}: {text}")

    # ---- navigation ------------------------------------------------------------------------------

    @Slot(str, int)
    def open_card(self, node: str, idx: int) -> QDialog | None:
        """Open the detail of one card (history plots) next to the room."""
        s = self.snapshot
        if s is None:
            return None
        pos = s.index_of(node, idx)
        if pos is None:
            return None
        title = (f"{node} · {tr('card')} {idx} · {s.vendor[pos] or 'N/A'} {s.model[pos] or ''} · "
                 f"{tr('serial')} {s.serial[pos] or 'N/A'}")
        from widgets.detail import CardDetail

        assert self.db_path is not None
        detail = CardDetail(self.db_path, int(s.card_id[pos]), title, self, self.pool)
        detail.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        detail.destroyed.connect(lambda *_: self.details.remove(detail) if detail in self.details else None)
        self.details.append(detail)
        detail.show()
        return detail

    @Slot(str)
    def show_node(self, name: str) -> None:
        """Jump from the fleet table to the node in the room."""
        if self.heatmap is not None:
            self.tabs.setCurrentWidget(self.heatmap)
            self.heatmap.focus_node(name)

    def _focus_search(self) -> None:
        if self.heatmap is None:
            return
        self.tabs.setCurrentWidget(self.heatmap)
        self.heatmap.search.setFocus()
        self.heatmap.search.selectAll()

    def open_report(self) -> QDialog | None:
        """The Shift report dialog (window pre-filled with the current shift)."""
        if self.db_path is None:
            return None
        from widgets.incidents import operator_name
        from widgets.report import ReportDialog

        dialog = ReportDialog(self.db_path, i18n.current_language(), operator_name(), self, self.pool)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def add_handover_note(self, text: str | None = None) -> None:
        """A handover note with author and time (it appears in the shift report)."""
        if self.db_path is None:
            return
        from console.reports import add_handover_note
        from widgets.common import Task
        from widgets.incidents import operator_name

        if text is None:
            text, ok = QInputDialog.getMultiLineText(self, tr("Add handover note"), tr("Note for the next shift"))
            if not ok or not text.strip():
                return
        by, path, note = operator_name(), self.db_path, text.strip()

        def work() -> object:
            from console.store import connect

            db = connect(path)
            try:
                add_handover_note(db.conn, by, note)
            finally:
                db.conn.close()
            return None

        job = Task(work)
        job.signals.done.connect(lambda _r: self.message.setText(tr("Handover note saved")))
        job.signals.failed.connect(self.message.setText)
        self.pool.start(job)

    def _set_operator(self) -> None:
        from widgets.incidents import operator_name

        name, ok = QInputDialog.getText(self, tr("Operator name"), tr("Name shown on acknowledgements and notes"),
                                        text=operator_name())
        if ok and name.strip():
            i18n.settings().setValue("operator", name.strip())

    def _set_language(self, code: str) -> None:
        i18n.settings().setValue("language", code)
        QMessageBox.information(self, "mixops", tr("The language changes at the next start."))

    # ---- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the workers and wait for their threads (no thread outlives the window)."""
        self._started = True         # a window closed before its workers started never starts them
        if not self._threads:
            return
        self._clock.stop()
        if self.runner is not None:
            self.runner.request_stop()
            QMetaObject.invokeMethod(self.runner, "stop", Qt.ConnectionType.BlockingQueuedConnection)
        if self.reader is not None:
            QMetaObject.invokeMethod(self.reader, "stop", Qt.ConnectionType.BlockingQueuedConnection)
        for thread in self._threads:
            thread.quit()
            thread.wait(30_000)
        self._threads.clear()
        self.pool.waitForDone(10_000)

    def closeEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        for d in list(self.details):
            d.close()
        self.shutdown()
        super().closeEvent(event)  # type: ignore[arg-type]


def _prepare_snapshot(snapshot: Snapshot) -> None:
    """In the reader thread: the room layout, so a layout change costs the GUI thread nothing."""
    from widgets.heatmap import attach_geometry

    attach_geometry(snapshot)


DEMO_INTERVAL_S = 10.0   # the demo site's sweep period (console.demo.demo_site)


class _LazyDemo:
    """The demo's sweeps, built in the runner thread so the window paints before the collector stack
    (paramiko, SQLite, the simulator) is even imported."""

    def __init__(self, path: str, cards: int, history_s: float) -> None:
        self.args = (path, cards, history_s)
        self.stop = threading.Event()
        self._run: object | None = None

    def _get(self):  # type: ignore[no-untyped-def]
        from console.demo import DemoRun

        if self._run is None:
            path, cards, history_s = self.args
            self._run = DemoRun(path, cards, history_s, stop=self.stop)
        return self._run

    def prepare(self, progress):  # type: ignore[no-untyped-def]
        self._get().prepare(progress)

    def make(self):  # type: ignore[no-untyped-def]
        return self._get().make()


def build_window(site: str | None, db: str | None, demo: bool, cards: int = 1280,
                 history_s: float = 7200.0) -> MainWindow:
    """The window for a site file, a database to watch, or the demo."""
    site_path = site or (str(paths.configured_site()) if paths.configured_site() else None)
    if site_path is not None and not demo:
        try:
            load_site(site_path)
        except SiteError as exc:
            return MainWindow(None, tr("site file error"), False, 10.0, None, "\n".join(exc.problems))
    if demo or (site_path is None and db is None):
        path = db or str(paths.data_dir() / "demo.db")
        paths.data_dir().mkdir(parents=True, exist_ok=True)
        lazy = _LazyDemo(path, cards, history_s)
        runner = SweepRunner(lazy.make, DEMO_INTERVAL_S, lazy.prepare, lazy.stop)
        return MainWindow(path, tr("simulated computing center"), True, DEMO_INTERVAL_S, runner)
    if site_path is None:
        assert db is not None
        return MainWindow(db, db, False, 10.0, None, tr("watching a database written by `mixops collect`"))
    loaded = load_site(site_path)
    path = db or str(paths.default_db(loaded.name))
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    runner = SweepRunner(_site_maker(loaded, path), loaded.interval_s)
    return MainWindow(path, loaded.name, False, loaded.interval_s, runner)


def _site_maker(site: Site, db_path: str):  # type: ignore[no-untyped-def]
    def make():  # type: ignore[no-untyped-def]
        from console.service import Collector
        from console.store import Store
        store = Store(db_path)
        collector = Collector(site, store)

        def close() -> None:
            collector.close()
            store.close()

        return site, collector.sweep, close

    return make


class _QuitAfterFirstPaint(QObject):
    """For bench/startup.py: quit as soon as the window has painted once (MIXOPS_EXIT_AFTER_PAINT=1)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, QCoreApplication.quit)
        return False


def run_gui(site: str | None, db: str | None, demo: bool, language: str | None = None,
            cards: int = 1280, history_s: float = 7200.0) -> int:
    """Start Qt, install the language, show the window."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("mixops")
    translator = i18n.install(app, i18n.chosen_language(language))
    window = build_window(site, db, demo, cards, history_s)
    quitter = None
    if os.environ.get("MIXOPS_EXIT_AFTER_PAINT") == "1":
        quitter = _QuitAfterFirstPaint()
        window.installEventFilter(quitter)
    window.show()
    code = int(app.exec())
    window.close()
    del translator, quitter
    return code


__all__ = ["MainWindow", "build_window", "run_gui"]
