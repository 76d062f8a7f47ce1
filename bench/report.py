"""Report speed: the time to build the PDF of an 8-hour shift of a demo site swept every 10 s.

    QT_QPA_PLATFORM=offscreen python bench/report.py [--cards 1280] [--interval 10] [--db FILE]

The demo database is built first, at a real site's cadence (--interval, 10 s; not timed; reuse one with
--db): the demo's simulator, parsers and store, so the shift has its incidents, faults and job history.
That build takes ~0.15 s per sweep per 1,280 cards; for the 10,240-card figure on a 7-day database at 10 s,
bench/store_vs_prometheus.py builds one through the store's fast path and times the same report.
Goal (issue 7/17): <= 10 s; prints the figure and the page count.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QGuiApplication  # noqa: E402

from console import demo  # noqa: E402
from widgets.report import build_for, write  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1_280)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between the history's sweeps")
    parser.add_argument("--db", help="an existing demo database covering the last 8 hours")
    args = parser.parse_args()
    app = QGuiApplication.instance() or QGuiApplication([])
    tmp = tempfile.mkdtemp(prefix="mixops-report-")
    db = args.db or str(Path(tmp) / "demo.db")
    end = time.time()
    if not args.db:
        t0 = time.perf_counter()
        summary = demo.build_history(db, days=8 / 24, cards=args.cards, end=end, interval=args.interval)
        print(f"(demo database: {summary.cards} cards, {summary.sweeps} sweeps every {args.interval:g} s, built in "
              f"{time.perf_counter() - t0:.0f} s, not timed)")
    out = str(Path(tmp) / "handover.pdf")
    t0 = time.perf_counter()
    rep = build_for(db, end - 8 * 3600, end, "en", "bench")
    pages = write(rep, out)
    seconds = time.perf_counter() - t0
    print(f"8-hour shift, {args.cards} cards: PDF built in {seconds:.2f} s, {pages} pages, "
          f"{os.path.getsize(out) / 1024:.0f} KiB (goal <= 10 s: {'met' if seconds <= 10 else 'NOT met'})")
    del app
    return 0 if seconds <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
