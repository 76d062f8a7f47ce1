"""The application window (a placeholder until the operator's window lands)."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from console import paths
from console.site import SiteError, load_site


def build_window(site: str | None, db: str | None, demo: bool) -> QMainWindow:
    """The main window: for now a page that says what is configured and how to collect."""
    window = QMainWindow()
    site_path = site or (str(paths.configured_site()) if paths.configured_site() else None)
    if demo or site_path is None:
        title = "mixops — DEMO"
        text = ("DEMO\n\nNo site is configured. The simulated demo site arrives with the operator's window.\n\n"
                "To monitor real nodes: write a site file, then run\n"
                "  mixops check --site site.toml\n  mixops collect --site site.toml --interval 10")
    else:
        try:
            loaded = load_site(site_path)
            title = f"mixops — {loaded.name}"
            text = (f"Site: {loaded.name}\n{len(loaded.nodes)} nodes, {len(loaded.racks)} racks\n"
                    f"Database: {db or paths.default_db(loaded.name)}")
        except SiteError as exc:
            title = "mixops — site file error"
            text = "\n".join(exc.problems)
    window.setWindowTitle(title)
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    window.setCentralWidget(label)
    window.resize(900, 600)
    return window


def run_gui(site: str | None, db: str | None, demo: bool) -> int:
    """Start Qt and show the window."""
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("mixops")
    window = build_window(site, db, demo)
    window.show()
    return int(app.exec())
