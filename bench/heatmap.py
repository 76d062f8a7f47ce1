"""Heatmap refresh: a new sweep's colours for 10,240 and 102,400 cards, offscreen, against a bare
pyqtgraph ImageItem.setImage of an RGBA array of the same size in the same run.

    QT_QPA_PLATFORM=offscreen python bench/heatmap.py [--reps 50]

Goal (issue 4): ratio <= 3 at both sizes and the 10,240-card refresh <= 16 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from console.demo import CARDS_PER_NODE, demo_site  # noqa: E402
from console.live import NodeRow, Snapshot  # noqa: E402
from widgets.heatmap import HeatmapView  # noqa: E402


def snapshot(cards: int, rng: np.random.Generator, now: float) -> Snapshot:
    site = demo_site(cards)
    names = [n.name for n in site.nodes for _ in range(CARDS_PER_NODE)]
    n = len(names)
    metrics = {k: rng.uniform(20, 95, n).astype(np.float32) for k in
               ("temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w")}
    metrics["temperature_c"][rng.random(n) < 0.01] = np.nan
    nodes = [NodeRow(x.name, "ok", x.vendor, x.rack, x.slot, CARDS_PER_NODE, now, None, 0.1) for x in site.nodes]
    snap = Snapshot(now, names, np.tile(np.arange(CARDS_PER_NODE, dtype=np.int32), len(site.nodes)),
                    np.arange(n, dtype=np.int64), [x.vendor for x in site.nodes for _ in range(CARDS_PER_NODE)],
                    ["model"] * n, [None] * n, np.full(n, now), metrics, np.zeros(n, np.int8),
                    rng.random(n) < 0.005, nodes)
    snap.layout_key = cards
    return snap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(7)
    now = time.time()
    ok = True
    for cards in (10_240, 102_400):
        view = HeatmapView()
        view.resize(1280, 800)
        view.show()
        first = snapshot(cards, rng, now)
        t0 = time.perf_counter()
        view.set_snapshot(first)
        layout_s = time.perf_counter() - t0
        app.processEvents()
        frames = [snapshot(cards, rng, now) for _ in range(4)]
        port = view.plot.viewport()
        ours: list[float] = []
        for i in range(args.reps):
            s = frames[i % len(frames)]
            t0 = time.perf_counter()
            view.set_snapshot(s)
            port.repaint()                  # the refresh includes painting the new image
            ours.append(time.perf_counter() - t0)
        h, w = view.geometry_.height, view.geometry_.width
        # Baseline: the same view, our image hidden, a bare ImageItem given a ready RGBA array of the
        # same size, then the same synchronous repaint.
        view.image.hide()
        item = pg.ImageItem(axisOrder="row-major")
        view.view.addItem(item)
        arrays = [rng.integers(0, 255, (h, w, 4), dtype=np.uint8) for _ in range(4)]
        bare: list[float] = []
        for i in range(args.reps):
            t0 = time.perf_counter()
            item.setImage(arrays[i % 4], autoLevels=False)
            port.repaint()
            bare.append(time.perf_counter() - t0)
        mo, mb = statistics.median(ours) * 1000, statistics.median(bare) * 1000
        ratio = mo / mb
        goal = ratio <= 3 and (cards != 10_240 or mo <= 16)
        ok &= goal
        print(f"{cards:>7} cards ({w}x{h} px): refresh {mo:.2f} ms (median of {args.reps}), "
              f"bare setImage {mb:.2f} ms, ratio {ratio:.2f} (goal <= 3{', <= 16 ms' if cards == 10_240 else ''}: "
              f"{'met' if goal else 'NOT met'}); first layout {layout_s * 1000:.0f} ms")
        view.close()
        view.deleteLater()
        app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

