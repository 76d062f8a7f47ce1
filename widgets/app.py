"""The operator's window: room heatmap, fleet table, card detail, status bar.

Sweeps run in a child process (the window's collector, or the demo: console.sweeper), database reads
in a worker thread; the GUI thread only receives snapshots through queued signals and paints.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
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
    QVBoxLayout,
    QWidget,
)

from console import paths
from console.live import CollectorProcess, PollingReader, Snapshot, SnapshotReader, SweepEvent
from console.site import SiteError, load_site
from widgets import i18n, theme
from widgets.common import GuiGarbageCollector, shown_duration
from widgets.fleet import FleetView
from widgets.i18n import tr
from widgets.jobs import JobsView

if TYPE_CHECKING:
    from console.incidents import Thresholds
    from widgets.detail import CardHistory
    from widgets.heatmap import HeatmapView
    from widgets.incidents import IncidentsView


MAX_SPARE_DETAILS = 3
TAB_NAMES = ("Room", "Fleet", "Jobs", "Incidents")      # View menu: Ctrl+1 … Ctrl+4, in tab order
KEYS = (("Ctrl+1 … Ctrl+4", "Room, Fleet, Jobs, Incidents"), ("Ctrl+F", "Find node or card serial"),
        ("Ctrl+P", "Shift report"), ("Ctrl+E", "Export the table shown as CSV"), ("Home / 0", "Room: reset view"),
        ("A", "Incidents: acknowledge"), ("R", "Incidents: resolve"), ("N", "Incidents: add a note"),
        ("S", "Incidents: silence"), ("Enter", "Incidents: show the card in the room"),
        ("J", "Incidents: open the job's timeline"), ("F1", "Keyboard shortcuts"), ("Ctrl+Q", "Quit"))


class MainWindow(QMainWindow):
    """One window for the shift: the room, the fleet, and what the collector is doing."""

    def __init__(self, db_path: str | None, site_name: str, demo: bool, interval_s: float = 10.0,
                 runner: CollectorProcess | None = None, problem: str | None = None, *,
                 prometheus: str | None = None) -> None:
        super().__init__()
        self.db_path = db_path
        # `gui --prometheus URL`: the whole site from the store the shards write to; no database, no collector
        self.prometheus = prometheus
        self.has_source = db_path is not None or prometheus is not None
        self.source_down: str | None = None     # the store's failure line while it cannot be read
        self._prom_cards: dict[int, tuple[str, str]] = {}    # card id → (node, card label) of open details
        self.demo = demo
        self.interval_s = interval_s
        self.snapshot: Snapshot | None = None
        self.details: list[QDialog] = []
        self._spare_details: list[QDialog] = []     # closed card details, reused (see open_card)
        self.thresholds: Thresholds | None = None   # the site's incident thresholds (lines in the card detail)
        self.update_costs_s: list[float] = []   # GUI-thread time per snapshot (bench/gui_latency.py)
        self.site_name = site_name
        self.problem = problem
        self.started_at = time.time()
        # Loading until the in-app collector's first live sweep (or, watching a database, its first read):
        # the demo's history build or an old database must not look like an outage.
        self.loading = runner is not None
        self.heatmap: HeatmapView | None = None
        self.incidents: IncidentsView | None = None
        self._seen_incidents: set[int] | None = None
        self.notifications: list[str] = []      # what was notified (tests read it)
        self.tray: QSystemTrayIcon | None = None
        self._build_views()
        self._build_menus()
        self._build_status(site_name, problem)
        self._retitle()
        self.resize(1280, 800)

        self._threads: list[QThread] = []
        self.pool = QThreadPool(self)          # history reads of the card detail
        self.pool.setMaxThreadCount(2)
        self.reader: PollingReader | None = None
        self.runner = runner
        if prometheus is not None:
            from console.promview import PromSnapshotReader

            self.reader = PromSnapshotReader(prometheus, interval_s, period_s=min(2.0, max(0.5, interval_s / 5)),
                                             prepare=_prepare_snapshot)
        elif db_path is not None:
            self.reader = SnapshotReader(db_path, interval_s, period_s=min(2.0, max(0.5, interval_s / 5)),
                                         prepare=_prepare_snapshot)
        if self.reader is not None:
            self.reader.snapshot.connect(self.set_snapshot, Qt.ConnectionType.QueuedConnection)
            self.reader.failed.connect(self._reader_failed, Qt.ConnectionType.QueuedConnection)
        if runner is not None:
            runner.progress.connect(self._progress, Qt.ConnectionType.QueuedConnection)
            runner.failed.connect(self._runner_failed, Qt.ConnectionType.QueuedConnection)
            runner.swept.connect(self._swept, Qt.ConnectionType.QueuedConnection)
            runner.notice.connect(self._runner_notice, Qt.ConnectionType.QueuedConnection)
            runner.setParent(self)
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
        from console import incidents, store  # noqa: F401
        from widgets import detail  # noqa: F401

        self._build_late_views()

        # The reader thread reads and lays out snapshots in Python: hand the GIL back to the GUI thread
        # sooner than the default 5 ms so painting and input never queue behind it. (The collector's
        # Python runs in its own process: console.sweeper.)
        sys.setswitchinterval(0.002)
        if self.reader is not None:
            self._start_worker(self.reader)
        if self.runner is not None:
            self.runner.start()

    def _build_views(self) -> None:
        """The tabs (built again, in the new language, when the language changes)."""
        if not self.has_source:
            # Nothing to show but the problem (e.g. a broken site file): say it in the middle.
            text = QLabel(self.problem or "")
            text.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.setWordWrap(True)
            self.problem_label = text
        self._room_placeholder = QLabel(tr("Loading the room view…"))
        self._room_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.fleet = FleetView()
        self.jobs = JobsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._room_placeholder, tr("Room"))
        self.tabs.addTab(self.fleet, tr("Fleet"))
        self.tabs.addTab(self.jobs, tr("Jobs"))
        # the store cannot be read (`gui --prometheus`): said above the tabs, in words, until it answers again
        self.source_banner = QLabel("")
        self.source_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.source_banner.setWordWrap(True)
        self.source_banner.setStyleSheet("QLabel { background: #d73027; color: white; padding: 4px 8px; "
                                         "font-weight: bold; }")
        self.source_banner.hide()
        if self.has_source:
            central = QWidget()
            box = QVBoxLayout(central)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(0)
            box.addWidget(self.source_banner)
            box.addWidget(self.tabs, 1)
            self.setCentralWidget(central)
        else:
            self.setCentralWidget(self.problem_label)
        if self.source_down is not None:
            self._show_source_down(self.source_down)
        self.fleet.node_activated.connect(self.show_node)

    def _build_late_views(self) -> None:
        """The room (pyqtgraph), the timeline and the incidents: built after the first paint."""
        from widgets.heatmap import HeatmapView

        self.heatmap = HeatmapView()
        self.heatmap.card_clicked.connect(self.open_card)
        self.jobs.attach_timeline()
        if not self.loading:
            self._show_room()
        if self.has_source:
            from widgets.incidents import IncidentsView

            if self.db_path is not None:
                self.incidents = IncidentsView(self.db_path, self.pool, i18n.current_language())
            else:
                self.incidents = _engine_incidents_view(self.pool, i18n.current_language())
            self.incidents.show_card.connect(self.show_card)
            self.incidents.show_job.connect(self.show_job)
            self.incidents.changed.connect(self._poll_now)
            self.tabs.addTab(self.incidents, tr("Incidents"))
        if self.snapshot is not None and not self.loading:
            self._feed(self.snapshot)

    def _show_room(self) -> None:
        """Swap the loading placeholder for the room view."""
        if self.heatmap is None or self.tabs.indexOf(self.heatmap) >= 0:
            return
        current = self.tabs.currentIndex()
        self.tabs.removeTab(0)
        self.tabs.insertTab(0, self.heatmap, tr("Room"))
        self.tabs.setCurrentIndex(current)
        self._room_placeholder.deleteLater()

    def _retitle(self) -> None:
        prefix = tr("DEMO") + " — " if self.demo else ""
        self.setWindowTitle(f"mixops — {prefix}{self.site_name}")

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if not self._started:
            QTimer.singleShot(0, self.start_workers)

    def _start_worker(self, worker: PollingReader) -> None:
        thread = QThread(self)
        thread.setObjectName(f"mixops-{type(worker).__name__}")
        worker.moveToThread(thread)
        thread.started.connect(worker.start)
        thread.start()
        self._threads.append(thread)

    def _build_menus(self) -> None:
        """File, View and Help (rebuilt in the new language when the language changes)."""
        self.menuBar().clear()
        file_menu = self.menuBar().addMenu(tr("&File"))
        file_menu.setToolTipsVisible(True)
        report = QAction(tr("Shift report…"), self)
        report.setShortcut(QKeySequence("Ctrl+P"))
        report.triggered.connect(lambda _checked=False: self.open_report())
        file_menu.addAction(report)
        note = QAction(tr("Add handover note…"), self)
        # triggered(bool) must not arrive as the note's text
        note.triggered.connect(lambda _checked=False: self.add_handover_note())
        file_menu.addAction(note)
        self.report_action, self.note_action = report, note
        if self.prometheus is not None:         # they read and write a local database this mode does not have
            for action in (report, note):
                action.setEnabled(False)
                action.setToolTip(tr("Needs a local database: not available with --prometheus (the window "
                                     "reads the store of the collectors)"))
        export = QAction(tr("Export table as CSV…"), self)
        export.setShortcut(QKeySequence("Ctrl+E"))
        export.triggered.connect(lambda _checked=False: self.export_csv())
        file_menu.addAction(export)
        file_menu.addSeparator()
        quit_action = QAction(tr("&Quit"), self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view = self.menuBar().addMenu(tr("&View"))
        for i, label in enumerate(TAB_NAMES):
            action = QAction(tr(label), self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, label=label: self.show_tab(label))
            view.addAction(action)
        view.addSeparator()
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
        theme_menu = view.addMenu(tr("Theme"))
        themes = QActionGroup(self)
        chosen = theme.chosen()
        for code, label in theme.THEMES.items():
            action = QAction(tr(label), self, checkable=True)
            action.setChecked(code == chosen)
            action.triggered.connect(lambda _=False, code=code: self.set_theme(code))
            themes.addAction(action)
            theme_menu.addAction(action)
        lang = view.addMenu(tr("Language"))
        group = QActionGroup(self)
        current = i18n.current_language()
        for code, name in i18n.LANGUAGES.items():
            action = QAction(name, self, checkable=True)
            action.setChecked(code == current)
            action.triggered.connect(lambda _=False, code=code: self.set_language(code))
            group.addAction(action)
            lang.addAction(action)
        help_menu = self.menuBar().addMenu(tr("&Help"))
        keys = QAction(tr("Keyboard shortcuts"), self)
        keys.setShortcut(QKeySequence.StandardKey.HelpContents)
        keys.triggered.connect(lambda _checked=False: self.show_keys())
        help_menu.addAction(keys)
        about = QAction(tr("About mixops"), self)
        about.triggered.connect(lambda _checked=False: QMessageBox.about(
            self, "mixops", tr("mixops — the operations console for AI computing centers with mixed "
                               "accelerator vendors.")))
        help_menu.addAction(about)

    def _retranslate_status(self) -> None:
        self.mode_label.setText(tr("DEMO — simulated data") if self.demo else self._mode_text())
        notice = getattr(self, "_last_notice", None)
        if notice is not None and self.message.text().startswith(f"{notice[0]} #{notice[1]}: "):
            from widgets.incidents import display_title

            # the last new-incident line, said again in the new language
            self.message.setText(f"{notice[0]} #{notice[1]}: {display_title(notice[2])}")
        self.incident_label.setToolTip(tr("Open incidents per severity"))
        self.progress.setFormat(tr("history %p%"))
        self._update_age()

    def _build_status(self, site_name: str, problem: str | None) -> None:
        bar = self.statusBar()
        self.mode_label = QLabel(tr("DEMO — simulated data") if self.demo else self._mode_text())
        self.mode_label.setTextFormat(Qt.TextFormat.PlainText)
        if self.demo:
            self.mode_label.setStyleSheet("QLabel { background: #b8860b; color: black; padding: 1px 6px; "
                                          "font-weight: bold; }")
        self.sweep_label = QLabel(tr("loading…") if self.loading else tr("no sweep yet"))
        self.nodes_label = QLabel("")
        self.collector_label = QLabel("")
        self.incident_label = QLabel("")
        self.incident_label.setToolTip(tr("Open incidents per severity"))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setFormat(tr("history %p%"))
        self.progress.hide()
        self.message = QLabel(problem or "")
        self.message.setTextFormat(Qt.TextFormat.PlainText)      # may carry text from nodes or files
        bar.addWidget(self.mode_label)
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.incident_label)
        bar.addPermanentWidget(self.nodes_label)
        bar.addPermanentWidget(self.sweep_label)
        bar.addPermanentWidget(self.collector_label)

    def _mode_text(self) -> str:
        if self.prometheus is not None:
            return f"{tr('store')}: {self.prometheus}"
        return self.site_name

    # ---- data ------------------------------------------------------------------------------------

    @Slot(object)
    def set_snapshot(self, snapshot: Snapshot) -> None:
        """A new view of the database arrived from the reader thread."""
        t0 = time.perf_counter()
        self.snapshot = snapshot
        if self.source_down is not None:            # the store answers again: what is shown is live again
            self.source_down = None
            self.source_banner.hide()
            self.message.setText("")
        if self.runner is None and self.loading:
            self.loading = False
        if self.loading:
            # the demo's history build or the first sweep is still running: nothing here is live yet
            self._update_age()
            return
        self._feed(snapshot)
        self.update_costs_s.append(time.perf_counter() - t0)
        if os.environ.get("MIXOPS_DEBUG_COSTS"):
            print(f"snapshot {self.update_costs_s[-1] * 1000:.1f} ms heatmap "
                  f"{(self.heatmap.last_refresh_s if self.heatmap else 0) * 1000:.1f} ms", file=sys.stderr)
        del self.update_costs_s[:-100]

    def _feed(self, snapshot: Snapshot) -> None:
        """Hand a snapshot to every view and the status bar."""
        if self.heatmap is not None:
            self._show_room()
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
        cpu = tr("N/A") if snapshot.collector_cpu_pct is None else f"{snapshot.collector_cpu_pct:.0f}%"
        rss = tr("N/A") if snapshot.collector_rss_mib is None else f"{snapshot.collector_rss_mib:.0f} MiB"
        self.collector_label.setText(f"{tr('collector')}: CPU {cpu}, {tr('memory')} {rss}")
        self._update_age()

    def _update_age(self) -> None:
        s = self.snapshot
        if self.loading:
            self.sweep_label.setText(tr("loading…"))
            self.sweep_label.setStyleSheet("")
            return
        if self.source_down is not None:
            return
        if s is None or s.last_sweep_at is None:
            return
        age = time.time() - s.last_sweep_at
        text = f"{tr('last sweep')}: {tr('%1 ago').replace('%1', shown_duration(max(0.0, age)))}"
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
                 and inc.severity in ("P1", "P2") and inc.state != "silenced"
                 and inc.opened_at >= self.started_at - 60.0]     # history the window opened on is not news
        self._seen_incidents |= ids
        from widgets.incidents import display_title

        for inc in fresh:
            # the title in the UI's language, control sequences dropped (as the incident list shows it)
            text = f"{inc.severity} #{inc.id}: {display_title(inc.title)}"
            self._last_notice = (inc.severity, inc.id, inc.title)
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
            self.message.setText(tr("Waiting for the first live sweep…"))
            self._room_placeholder_text(tr("Waiting for the first live sweep…"))
            return
        self.progress.show()
        self.progress.setValue(int(fraction * 100))
        self.message.setText(tr("Building simulated history…"))
        self._room_placeholder_text(f"{tr('Building simulated history…')} {fraction * 100:.0f} %")

    def _room_placeholder_text(self, text: str) -> None:
        try:
            self._room_placeholder.setText(text)
        except RuntimeError:            # already replaced by the room view
            pass

    @Slot(object)
    def _swept(self, summary: SweepEvent) -> None:
        if self.loading:
            self.loading = False            # the first live sweep is in: what the views show is live now
            self.message.setText("")
        if self.reader is not None:
            QMetaObject.invokeMethod(self.reader, "poll", Qt.ConnectionType.QueuedConnection)

    @Slot(str)
    def _runner_failed(self, text: str) -> None:
        self.message.setText(f"{tr('collector')}: {text}")

    @Slot(str)
    def _runner_notice(self, text: str) -> None:
        self.message.setText(f"{tr('collector')}: {text}")

    @Slot(str)
    def _reader_failed(self, text: str) -> None:
        if self.prometheus is None:
            self.message.setText(f"{tr('database')}: {text}")
            return
        self._show_source_down(text)

    def _show_source_down(self, text: str) -> None:
        """`gui --prometheus` and the store cannot be read: say so, and show the last values as not live (every
        node stale, its cards grey) rather than as they were."""
        first = self.source_down is None
        self.source_down = text
        shown = text.removeprefix("source unavailable: ")
        self.source_banner.setText(f"{tr('Source unavailable')}: {shown} — "
                                   f"{tr('the values shown are the last read, not live')}")
        self.source_banner.show()
        self.message.setText(f"{tr('Source unavailable')}: {shown}")
        self.sweep_label.setText(tr("source unavailable"))
        self.sweep_label.setStyleSheet("QLabel { color: #d73027; font-weight: bold; }")
        if first and self.snapshot is not None and not self.loading:
            self._feed(_not_live(self.snapshot))

    # ---- navigation ------------------------------------------------------------------------------

    def show_tab(self, name: str) -> None:
        """Ctrl+1 … Ctrl+4: one of TAB_NAMES (the room and the incidents once built)."""
        widget = {"Room": self.heatmap if self.heatmap is not None and self.tabs.indexOf(self.heatmap) >= 0
                  else None, "Fleet": self.fleet, "Jobs": self.jobs, "Incidents": self.incidents}.get(name)
        if widget is not None:
            self.tabs.setCurrentWidget(widget)
        elif name == "Room":
            self.tabs.setCurrentIndex(0)

    def show_keys(self) -> QMessageBox:
        """Help → Keyboard shortcuts (plain text: a table of keys and what they do)."""
        box = QMessageBox(QMessageBox.Icon.Information, tr("Keyboard shortcuts"),
                          "\n".join(f"{k:<18} {tr(v)}" for k, v in KEYS), QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setStyleSheet("QLabel { font-family: monospace; }")
        box.setModal(False)
        box.show()
        return box

    def export_csv(self, path: str | None = None) -> str | None:
        """File → Export table as CSV: the table of the tab shown (fleet, jobs, incidents), as shown."""
        from widgets.common import table_csv, write_csv

        current = self.tabs.currentWidget()
        if current is self.incidents and self.incidents is not None:
            return self.incidents.export_csv(path)
        table = getattr(current, "table", None)
        if table is None:
            self.message.setText(tr("This tab has no table to export"))
            return None
        name = {id(self.fleet): "fleet", id(self.jobs): "jobs"}.get(id(current), "table")
        if path is None:
            from PySide6.QtCore import QStandardPaths
            from PySide6.QtWidgets import QFileDialog

            docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
            default = os.path.join(docs or os.path.expanduser("~"), time.strftime(f"mixops-{name}-%Y%m%d-%H%M.csv"))
            path, _filter = QFileDialog.getSaveFileName(self, tr("Export table as CSV…"), default,
                                                        tr("CSV files (*.csv)"))
            if not path:
                return None
            if not path.lower().endswith(".csv"):
                path += ".csv"
        header, rows = table_csv(table)
        try:
            write_csv(path, header, rows)
        except OSError as exc:
            self.message.setText(f"{tr('Not done')}: {path}: {exc.strerror or exc}")
            return None
        self.message.setText(f"{tr('Exported')}: {path}")
        return path

    @Slot(str, int)
    def open_card(self, node: str, idx: int) -> QDialog | None:
        """Open the detail of one card (history plots) next to the room."""
        s = self.snapshot
        if s is None:
            return None
        pos = s.index_of(node, idx)
        if pos is None:
            return None
        from widgets.detail import CardDetail
        from widgets.i18n import vendor_name

        vendor = s.vendor[pos]
        title = (f"{node} · {tr('card')} {idx} · {vendor_name(vendor, i18n.current_language())} "
                 f"{s.model[pos] or ''} · {tr('serial')} {s.serial[pos] or tr('N/A')}")
        history = None
        if self.prometheus is not None:
            labels = s.derived.get("prom_cards")
            if not isinstance(labels, list) or pos >= len(labels):
                return None
            self._prom_cards[int(s.card_id[pos])] = (node, str(labels[pos]))
            history = self._read_prom_history
        else:
            assert self.db_path is not None
        if self._spare_details:
            # a closed detail is shown again for this card: no new plots on the GUI thread
            detail = self._spare_details.pop()
            detail.show_card(int(s.card_id[pos]), title, vendor)
        else:
            detail = CardDetail(self.db_path, int(s.card_id[pos]), title, self, self.pool, vendor=vendor,
                                thresholds=self.thresholds, history=history)
            detail.finished.connect(lambda _result, d=detail: self._detail_closed(d))
        self.details.append(detail)
        detail.show()
        return detail

    def _read_prom_history(self, card_id: int, seconds: float) -> CardHistory:
        """In the pool: one card's range from the store (`gui --prometheus`)."""
        from console.promview import read_history_prom
        from widgets.detail import card_history_from

        assert self.prometheus is not None
        node, card = self._prom_cards[card_id]
        return card_history_from(read_history_prom(self.prometheus, node, card, seconds, card_id=card_id), seconds)

    def _detail_closed(self, detail: QDialog) -> None:
        if detail in self.details:
            self.details.remove(detail)
        if len(self._spare_details) < MAX_SPARE_DETAILS:
            self._spare_details.append(detail)      # kept hidden for the next card
        else:
            detail.deleteLater()

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
        from widgets.incidents import ask_operator_name

        if text is None:
            text, ok = QInputDialog.getMultiLineText(self, tr("Add handover note"), tr("Note for the next shift"))
            if not ok or not text.strip():
                return
        by = ask_operator_name(self)
        if by is None:
            return
        path, note = self.db_path, text.strip()

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
        job.start(self.pool)

    def _set_operator(self) -> None:
        from widgets.incidents import operator_name

        name, ok = QInputDialog.getText(self, tr("Operator name"), tr("Name shown on acknowledgements and notes"),
                                        text=operator_name())
        if ok and name.strip():
            i18n.settings().setValue("operator", name.strip())

    def set_language(self, code: str) -> None:
        """View → Language: stored, and the window is rebuilt in it at once (workers keep running)."""
        i18n.settings().setValue("language", code)
        app = QCoreApplication.instance()
        if app is None or code == i18n.current_language():
            return
        i18n.install(app, code)
        for d in list(self.details):
            d.close()
        for d in self._spare_details:           # built in the old language
            d.deleteLater()
        self._spare_details.clear()
        current = self.tabs.currentIndex() if self.has_source else 0
        started = self.heatmap is not None
        self.heatmap = None
        self.incidents = None
        self._build_views()
        if started:
            self._build_late_views()
        self._build_menus()
        self._retranslate_status()
        self._retitle()
        if self.has_source:
            self.tabs.setCurrentIndex(min(current, self.tabs.count() - 1))
        if self.snapshot is not None and not self.loading:
            self._feed(self.snapshot)

    def set_theme(self, code: str) -> None:
        """View → Theme: follow the system, light or dark (stored)."""
        i18n.settings().setValue("theme", code)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply(app, code)

    # ---- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the workers and wait for their threads (no thread outlives the window)."""
        self._started = True         # a window closed before its workers started never starts them
        if self.runner is not None:
            self.runner.stop()       # the child closes its sessions and releases the writer lock
        if not self._threads:
            return
        self._clock.stop()
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


def _not_live(snapshot: Snapshot) -> Snapshot:
    """The last snapshot with every node stale: drawn grey, counted stale, never as live values."""
    nodes = [dataclasses.replace(r, status="stale") for r in snapshot.nodes]
    return dataclasses.replace(snapshot, stale=np.ones(len(snapshot.card_node), dtype=bool), nodes=nodes,
                               nodes_ok=0, nodes_failed=0, nodes_stale=len(nodes),
                               derived={k: v for k, v in snapshot.derived.items() if k != "failed_cards"})


def _engine_incidents_view(pool: QThreadPool, language: str) -> IncidentsView:
    """The incident list of `gui --prometheus`: the rows of every shard from the store; the detail is the row
    itself, and acknowledge, resolve, note and silence (they write a collector's database) say why not."""
    from widgets.incidents import IncidentsView

    class EngineIncidentsView(IncidentsView):
        def load_detail(self) -> None:
            row = self.selected()
            if row is None:
                self.detail.clear()
                return
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.opened_at))
            lines = [f"{row.severity} · {tr(row.state)} · {row.title}", f"{tr('opened')}: {when}",
                     f"{tr('Node')}: {row.node or tr('N/A')}",
                     f"{tr('card')}: {tr('N/A') if row.card_idx is None else row.card_idx}",
                     f"{tr('Job')}: {row.job or tr('N/A')}", f"{tr('Code')}: {row.code or tr('N/A')}",
                     f"{tr('Action')}: {row.action or tr('N/A')}"]
            if row.acknowledged_by:
                lines.append(f"{tr('acknowledged by')}: {row.acknowledged_by}")
            self.detail.setPlainText("\n".join(lines))       # text from the store: never rich text

        def _not_here(self) -> None:
            self.status.setText(NOT_WITH_PROMETHEUS())

        def acknowledge(self) -> None:
            self._not_here()

        def resolve(self) -> None:
            self._not_here()

        def note(self, text: str | None = None) -> None:
            self._not_here()

        def silence(self, minutes: int | None = None) -> None:
            self._not_here()

    view = EngineIncidentsView("", pool, language)
    view.status.setText(tr("Enter show the card · J show the job") + " — " + NOT_WITH_PROMETHEUS())
    view.status.setToolTip(NOT_WITH_PROMETHEUS())
    return view


def NOT_WITH_PROMETHEUS() -> str:  # noqa: N802 - reads as the constant it is, translated when called
    return tr("Acknowledge, resolve, note and silence need the collector's database: not available with "
              "--prometheus yet")


def _prepare_snapshot(snapshot: Snapshot) -> None:
    """In the reader thread: the room layout, so a layout change costs the GUI thread nothing."""
    from widgets.heatmap import attach_geometry

    attach_geometry(snapshot)


DEMO_INTERVAL_S = 10.0   # the demo site's sweep period (console.demo.demo_site)


def build_window(site: str | None, db: str | None, demo: bool, cards: int = 1280,
                 history_s: float = 7200.0, demo_interval_s: float = DEMO_INTERVAL_S,
                 prometheus: str | None = None) -> MainWindow:
    """The window for a site file, a database to watch, the demo (whose sweeps may run faster than
    the site's 10 s for a soak: `demo_interval_s`), or a Prometheus-compatible store (`prometheus`)."""
    if prometheus is not None:
        return MainWindow(None, prometheus, False, 10.0, None, prometheus=prometheus)
    site_path = site or (str(paths.configured_site()) if paths.configured_site() else None)
    if site_path is not None and not demo:
        try:
            load_site(site_path)
        except SiteError as exc:
            return MainWindow(None, tr("site file error"), False, 10.0, None, "\n".join(exc.problems))
    if demo or (site_path is None and db is None):
        path = db or str(paths.data_dir() / "demo.db")
        paths.data_dir().mkdir(parents=True, exist_ok=True)
        runner = CollectorProcess(["--demo", "--db", path, "--cards", str(cards), "--history-s", str(history_s),
                                   "--interval", str(demo_interval_s)], demo_interval_s)
        return MainWindow(path, tr("simulated computing center"), True, demo_interval_s, runner)
    if site_path is None:
        assert db is not None
        return MainWindow(db, db, False, 10.0, None, tr("watching a database written by `mixops collect`"))
    loaded = load_site(site_path)
    path = db or str(paths.default_db(loaded.name))
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    args = ["--site", str(Path(site_path).resolve()), "--db", str(Path(path).resolve())]
    # the window's collector serves /metrics too when set (as `collect --metrics-listen`): the setting
    # metrics_listen ("127.0.0.1:9400"), or $MIXOPS_METRICS_LISTEN over it
    listen = os.environ.get("MIXOPS_METRICS_LISTEN") or str(i18n.settings().value("metrics_listen", "", str) or "")
    if listen.strip():
        args += ["--metrics-listen", listen.strip()]
    runner = CollectorProcess(args, loaded.interval_s)
    window = MainWindow(path, loaded.name, False, loaded.interval_s, runner)
    from console.incidents import thresholds_from

    window.thresholds = thresholds_from(loaded.thresholds)
    return window


class _QuitAfterFirstPaint(QObject):
    """For bench/startup.py: quit as soon as the window has painted once (MIXOPS_EXIT_AFTER_PAINT=1)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, QCoreApplication.quit)
        return False


def run_gui(site: str | None, db: str | None, demo: bool, language: str | None = None,
            cards: int = 1280, history_s: float = 7200.0, prometheus: str | None = None) -> int:
    """Start Qt, install the language, show the window."""
    if prometheus is not None and (site or db or demo):
        print("mixops gui: --prometheus reads the whole site from the store: not with --site, --db or --demo",
              file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("mixops")
    collector = GuiGarbageCollector()         # cycles freed from the event loop, never under a Qt lock
    i18n.install(app, i18n.chosen_language(language))
    theme.apply(app, theme.chosen())
    window = build_window(site, db, demo, cards, history_s, prometheus=prometheus)
    quitter = None
    if os.environ.get("MIXOPS_EXIT_AFTER_PAINT") == "1":
        quitter = _QuitAfterFirstPaint()
        window.installEventFilter(quitter)
    window.show()
    code = int(app.exec())
    window.close()
    del quitter
    collector.stop()
    return code


__all__ = ["MainWindow", "build_window", "run_gui"]
