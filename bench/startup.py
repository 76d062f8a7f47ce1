"""Startup: process start to the first painted window on the demo site, against a bare PySide6
script that opens an empty QMainWindow, measured the same way in the same run (median of --runs).

    QT_QPA_PLATFORM=offscreen python bench/startup.py [--runs 7]

Both processes quit right after their window's first paint event. Goal (issue 4): ratio <= 2.5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = """
import sys
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
class Q(QObject):
    def eventFilter(self, w, e):
        if e.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, QCoreApplication.quit)
        return False
app = QApplication(sys.argv)
w = QMainWindow(); w.resize(1280, 800); q = Q(); w.installEventFilter(q); w.show()
app.exec()
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               MIXOPS_EXIT_AFTER_PAINT="1", XDG_DATA_HOME=tempfile.mkdtemp(prefix="mixops-startup-"),
               XDG_CONFIG_HOME=tempfile.mkdtemp(prefix="mixops-startup-cfg-"))
    env.pop("MIXOPS_SITE", None)
    ours_cmd = [sys.executable, str(ROOT / "main.py")]
    bare_cmd = [sys.executable, "-c", BARE]
    timed(ours_cmd, env)        # warm the page cache for both
    timed(bare_cmd, env)
    ours, bare = [], []
    for _ in range(args.runs):
        ours.append(timed(ours_cmd, env))
        bare.append(timed(bare_cmd, env))
    mo, mb = statistics.median(ours), statistics.median(bare)
    ratio = mo / mb
    print(f"startup to first paint: mixops demo {mo * 1000:.0f} ms, bare QMainWindow {mb * 1000:.0f} ms "
          f"(medians of {args.runs}), ratio {ratio:.2f} (goal <= 2.5: {'met' if ratio <= 2.5 else 'NOT met'})")
    return 0 if ratio <= 2.5 else 1


if __name__ == "__main__":
    sys.exit(main())
