"""Shift-long soak: the real window, offscreen, on the demo site, for a bounded time.

    QT_QPA_PLATFORM=offscreen python bench/soak.py [--minutes 30] [--cards 1280] [--interval 2]

The window runs in a child process (so an abort is seen, not suffered), its collector in a process of
its own as always (console.sweeper; its RSS is printed apart): live demo sweeps faster than real time (every --interval seconds instead of 10), and a driver that cycles the tabs and the room's
colour modes, opens and closes card details, incident details and the shift-report preview. Every
--sample seconds the child records RSS, the reference counts of None/True/False, Python objects,
QObjects and threads; a 10 ms timer measures the event loop's longest stall. The parent prints:

- still alive (the child ran to the end and closed its window cleanly: exit status 0),
- RSS growth per hour after warm-up (least-squares slope; goal <= 5 MiB/h),
- refcount drift of None/True/False after warm-up (goal: none beyond a small constant),
- Python objects, QObjects, threads at warm-up and at the end,
- the longest event-loop stall (goal <= 100 ms at 10,240 cards).

`--json FILE` also writes the figures (the short soak in tests/widgets/test_soak.py reads them).
Stops by itself: the child after --minutes, the parent at --minutes + 5 min at most.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TAB_DWELL_S = 4.0            # the driver's step
ACTIONS = ("colour", "card", "fleet", "jobs", "incident", "report")    # the driver's actions, in turn


def _slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t seconds, value) per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600.0


def _glibc() -> object | None:
    """libc with mallinfo2/malloc_trim typed (glibc >= 2.33), else None."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                         "usmblks", "fsmblks", "uordblks", "fordblks",
                                                         "keepcost")]

    mallinfo2.restype = MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


# ---- the child: the window and its driver ---------------------------------------------------------

def child(args: argparse.Namespace) -> int:
    """Run the window and the driver; print one JSON line per sample, then 'done' and close."""
    import gc
    import random
    import threading

    import psutil
    from PySide6.QtCore import QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from widgets import i18n
    from widgets.app import build_window
    from widgets.common import GuiGarbageCollector
    from widgets.heatmap import METRICS

    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(args.tracemalloc_frames)
    enabled = set(ACTIONS if args.actions == "all" else (a for a in args.actions.split(",") if a))
    app = QApplication.instance() or QApplication([])
    gc_timer = GuiGarbageCollector()              # as run_gui does: cycles freed from the event loop
    translator = i18n.install(app, args.lang)
    window = build_window(None, None, True, cards=args.cards, history_s=args.history_min * 60.0,
                          demo_interval_s=args.interval)
    window.resize(1280, 800)
    window.show()
    proc = psutil.Process()
    rng = random.Random(1)
    state = {"last": 0.0, "live": 0.0, "worst": 0.0, "worst_at": 0.0, "step": 0, "sweeps": 0,
             "actions": 0}
    t_start = time.monotonic()
    window.runner.swept.connect(lambda _s: state.__setitem__("sweeps", state["sweeps"] + 1))

    def tick() -> None:
        now = time.perf_counter()
        if state["live"] and state["last"]:
            gap = now - state["last"]
            if gap > state["worst"]:
                state["worst"], state["worst_at"] = gap, time.monotonic() - t_start
                state["worst_after"] = state.get("last_action", "")
        state["last"] = now

    libc = _glibc()

    def heap() -> dict[str, float | None]:
        """glibc's heap (all arenas): in use vs free but kept, so a leak is told from fragmentation."""
        if libc is None:
            return {"heap_used_mib": None, "heap_free_mib": None, "heap_mmap_mib": None}
        if args.trim:
            libc.malloc_trim(0)
        m = libc.mallinfo2()
        return {"heap_used_mib": m.uordblks / 2**20, "heap_free_mib": m.fordblks / 2**20,
                "heap_mmap_mib": m.hblkhd / 2**20}

    def qobjects() -> int:
        return sum(1 + len(w.findChildren(QObject)) for w in app.topLevelWidgets())

    def sample() -> None:
        if state["live"] and not state.get("warm") and time.monotonic() - t_start >= args.warmup_min * 60.0:
            state["warm"] = 1.0                     # startup's stalls are reported apart
            state["startup_stall"], state["worst"] = state["worst"], 0.0
            if args.tracemalloc:
                state["trace0"] = tracemalloc.take_snapshot()
        began = time.perf_counter()
        gc.collect()                                # a full collection, timed: what the window's own costs
        gc_ms = (time.perf_counter() - began) * 1000
        collector_rss = None
        pid = window.runner.pid if window.runner is not None else None
        if pid is not None:
            try:
                collector_rss = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                pass
        row = {"t": round(time.monotonic() - t_start, 1), **heap(), "rss_mib": proc.memory_info().rss / 2**20,
               "collector_rss_mib": collector_rss, "full_gc_ms": round(gc_ms, 1),
               "none": sys.getrefcount(None), "true": sys.getrefcount(True), "false": sys.getrefcount(False),
               "pyobjects": len(gc.get_objects()), "qobjects": qobjects(),
               "threads": threading.active_count(), "os_threads": proc.num_threads(),
               "stall_ms": round(max(0.0, state["worst"] - 0.010) * 1000, 1), "stall_at": state["worst_at"],
               "stall_after": state.get("worst_after", ""),
               "startup_stall_ms": round(max(0.0, state.get("startup_stall", 0.0) - 0.010) * 1000, 1),
               "sweeps": state["sweeps"], "actions": state["actions"], "live": bool(state["live"]),
               "warm": bool(state.get("warm")),
               "cards": len(window.snapshot.card_node) if window.snapshot else 0}
        print(json.dumps(row), flush=True)
        state["last"] = time.perf_counter()        # the sample's own gc is not an event-loop stall

    def step() -> None:
        """One driver action."""
        if not state["live"]:
            if (window.snapshot is None or not window.snapshot.card_node or window.progress.isVisible()
                    or window.heatmap is None):
                return
            state["live"] = time.perf_counter()
        state["actions"] += 1
        k = state["step"]
        state["step"] += 1
        snap = window.snapshot
        action = k % 6
        state["last_action"] = ("room colour mode", "card detail", "fleet tab", "jobs tab", "incident detail",
                                "report preview")[action]
        for d in list(window.details):              # a detail stays open one step
            d.close()
        if ACTIONS[action] not in enabled:
            return
        if action == 0 and window.heatmap is not None:
            window.tabs.setCurrentWidget(window.heatmap)
            window.heatmap.set_metric(list(METRICS)[k // 6 % len(METRICS)])
        elif action == 1 and snap is not None and snap.card_node:
            i = rng.randrange(len(snap.card_node))
            window.open_card(snap.card_node[i], int(snap.card_idx[i]))
        elif action == 2:
            window.tabs.setCurrentWidget(window.fleet)
        elif action == 3:
            window.tabs.setCurrentWidget(window.jobs)
        elif action == 4 and window.incidents is not None:
            window.tabs.setCurrentWidget(window.incidents)
            rows = window.incidents.model.rowCount() if hasattr(window.incidents, "model") else 0
            if rows:
                window.incidents.table.selectRow(rng.randrange(rows))
        elif action == 5 and k % 18 == 5:           # the report preview every third round
            dialog = window.open_report()
            if dialog is not None:
                QTimer.singleShot(int(TAB_DWELL_S * 1000 * 0.8), dialog.close)

    def screenshots() -> None:
        """Every tab and a card detail, in English and Chinese, as the window is after the soak."""
        out = Path(args.screenshots)
        out.mkdir(parents=True, exist_ok=True)
        for lang in ("en", "zh_CN"):
            window.set_language(lang)
            for _ in range(20):
                app.processEvents()
                time.sleep(0.05)
            for name in ("Room", "Fleet", "Jobs", "Incidents"):
                window.show_tab(name)
                for _ in range(10):
                    app.processEvents()
                    time.sleep(0.05)
                window.grab().save(str(out / f"{lang}-{args.cards}-{name.lower()}.png"))
            snap = window.snapshot
            if snap is not None and snap.card_node:
                detail = window.open_card(snap.card_node[0], int(snap.card_idx[0]))
                if detail is not None:
                    for _ in range(40):
                        app.processEvents()
                        time.sleep(0.05)
                    detail.grab().save(str(out / f"{lang}-{args.cards}-card-detail.png"))
                    detail.close()

    def trace_diff() -> None:
        """The Python allocations (numpy's buffers included) that grew between warm-up and the end."""
        if "trace0" not in state:
            return
        gc.collect()
        diff = tracemalloc.take_snapshot().compare_to(state["trace0"], "traceback")
        lines = [f"tracemalloc: traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB now"]
        for stat in diff[:25]:
            lines.append(f"{stat.size_diff / 1024:+.1f} KiB ({stat.count_diff:+d} blocks), now "
                         f"{stat.size / 1024:.1f} KiB")
            lines.extend("    " + line for line in stat.traceback.format()[-2 * args.tracemalloc_frames:])
        Path(args.tracemalloc).write_text("\n".join(lines) + "\n")

    def finish() -> None:
        sample()
        if args.tracemalloc:
            trace_diff()
        driver.stop()                               # the driver must not switch tabs under the screenshots
        sampler.stop()
        if args.screenshots:
            screenshots()
        print("done", flush=True)
        for d in list(window.details):
            d.close()
        window.close()
        app.quit()

    timer = QTimer()
    timer.setTimerType(timer.timerType().PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)
    driver = QTimer()
    driver.timeout.connect(step)
    driver.start(int(TAB_DWELL_S * 1000))
    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(int(args.sample * 1000))
    QTimer.singleShot(int(args.minutes * 60_000), finish)
    app.exec()
    gc_timer.stop()
    del translator
    return 0


# ---- the parent: run, watch, report ---------------------------------------------------------------

def parent(args: argparse.Namespace) -> int:
    """Run the child with a deadline and print the figures."""
    data = tempfile.mkdtemp(prefix="mixops-soak-")
    env = dict(os.environ, XDG_DATA_HOME=f"{data}/data", XDG_CONFIG_HOME=f"{data}/config",
               QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    env.pop("MIXOPS_SITE", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--minutes", str(args.minutes),
           "--cards", str(args.cards), "--interval", str(args.interval), "--sample", str(args.sample),
           "--history-min", str(args.history_min), "--lang", args.lang, "--warmup-min", str(args.warmup_min)]
    cmd += ["--actions", args.actions] + (["--trim"] if args.trim else [])
    if args.tracemalloc:
        cmd += ["--tracemalloc", str(Path(args.tracemalloc).resolve()),
                "--tracemalloc-frames", str(args.tracemalloc_frames)]
    if args.screenshots:
        cmd += ["--screenshots", str(Path(args.screenshots).resolve())]
    rows: list[dict[str, float]] = []
    done = False
    t0 = time.monotonic()
    deadline = args.minutes * 60.0 + 300.0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line == "done":
                done = True
            elif line.startswith("{"):
                rows.append(json.loads(line))
            if time.monotonic() - t0 > deadline:
                proc.kill()
                break
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        stderr = proc.stderr.read() if proc.stderr is not None else ""
    alive = done and code == 0 and any(r.get("warm") for r in rows)
    after = [r for r in rows if r.get("warm")]
    figures: dict[str, object] = {"alive": alive, "exit_status": code, "minutes": args.minutes,
                                  "cards": max((r["cards"] for r in rows), default=0), "samples": len(rows)}
    print(f"soak: {args.minutes:g} min, {figures['cards']} cards, sweeps every {args.interval:g} s "
          f"({rows[-1]['sweeps'] if rows else 0} sweeps, {rows[-1]['actions'] if rows else 0} driver actions)")
    print(f"  still alive: {'yes' if alive else 'NO'} (exit status {code})")
    if not alive:
        tail = [ln for ln in stderr.splitlines() if ln.strip()][-8:]
        print("  child stderr (last lines):\n    " + "\n    ".join(tail))
    if after:
        first, last = after[0], after[-1]
        slope = _slope_per_hour([(r["t"], r["rss_mib"]) for r in after])
        figures["rss_mib_per_h"] = slope
        figures["rss_mib"] = [first["rss_mib"], last["rss_mib"]]
        for key in ("none", "true", "false"):
            values = [r[key] for r in after]
            figures[f"{key}_drift"] = last[key] - first[key]
            figures[f"{key}_range"] = max(values) - min(values)
        for key in ("pyobjects", "qobjects", "threads", "os_threads"):
            figures[key] = [first[key], last[key], max(r[key] for r in after)]
        stall = max((r["stall_ms"] for r in after), default=None)
        figures["stall_ms"] = stall
        figures["startup_stall_ms"] = after[-1]["startup_stall_ms"]
        rss_goal = slope is not None and slope <= 5.0
        print(f"  RSS after {args.warmup_min:g} min warm-up: {first['rss_mib']:.0f} -> {last['rss_mib']:.0f} MiB, "
              f"growth {'N/A' if slope is None else f'{slope:+.1f}'} MiB/h (goal <= 5: "
              f"{'met' if rss_goal else 'NOT met'})")
        if first.get("heap_used_mib") is not None:
            used = _slope_per_hour([(r["t"], r["heap_used_mib"]) for r in after])
            free = _slope_per_hour([(r["t"], r["heap_free_mib"]) for r in after])
            figures["heap_used_mib_per_h"], figures["heap_free_mib_per_h"] = used, free
            print(f"  glibc heap: in use {first['heap_used_mib']:.0f} -> {last['heap_used_mib']:.0f} MiB "
                  f"({'N/A' if used is None else f'{used:+.1f}'} MiB/h), free but kept {first['heap_free_mib']:.0f} -> {last['heap_free_mib']:.0f} "
                  f"MiB ({'N/A' if free is None else f'{free:+.1f}'} MiB/h), mmapped {first['heap_mmap_mib']:.0f} -> {last['heap_mmap_mib']:.0f} MiB"
                  + (" (malloc_trim before each sample)" if args.trim else ""))
        collector = [(r["t"], r["collector_rss_mib"]) for r in after if r.get("collector_rss_mib") is not None]
        if collector:
            figures["collector_rss_mib_per_h"] = _slope_per_hour(collector)
            figures["collector_rss_mib"] = [collector[0][1], collector[-1][1]]
            growth = figures["collector_rss_mib_per_h"]
            print(f"  the window's collector process (console.sweeper): RSS {collector[0][1]:.0f} -> "
                  f"{collector[-1][1]:.0f} MiB, growth {'N/A' if growth is None else f'{growth:+.1f}'} MiB/h")
        print("  refcounts after warm-up (first -> last, range): " + ", ".join(
            f"{k} {first[k]} -> {last[k]} ({figures[f'{k}_range']})" for k in ("none", "true", "false")))
        print("  Python objects {} -> {} (max {}); QObjects {} -> {} (max {}); threads {} -> {} (max {}), "
              "OS threads {} -> {} (max {})".format(*figures["pyobjects"], *figures["qobjects"],  # type: ignore[misc]
                                                   *figures["threads"], *figures["os_threads"]))  # type: ignore[misc]
        worst = max(after, key=lambda r: r["stall_ms"])
        figures["stall_after"] = worst.get("stall_after")
        print(f"  longest event-loop stall after warm-up: {stall} ms, after the driver's "
              f"'{worst.get('stall_after')}' (goal <= 100 ms at 10,240 cards); "
              f"during startup and warm-up: {figures['startup_stall_ms']} ms")
        full = sorted(r["full_gc_ms"] for r in after if r.get("full_gc_ms") is not None)
        if full:
            figures["full_gc_ms"] = [full[len(full) // 2], full[-1]]
            print(f"  a full garbage collection in the window (the sampler's own, not counted as a stall): "
                  f"median {full[len(full) // 2]} ms, max {full[-1]} ms (the window runs one at most every "
                  "60 s, from the event loop)")
    else:
        print("  no sample after warm-up: the demo never went live (no cards swept)")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "samples": rows}, indent=1))
    return 0 if alive else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--cards", type=int, default=1280)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between demo sweeps")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup-min", type=float, default=5.0)
    parser.add_argument("--history-min", type=float, default=60.0, help="demo history built before going live")
    parser.add_argument("--lang", default="en", choices=("en", "zh_CN"))
    parser.add_argument("--json", help="also write the figures and samples to this file")
    parser.add_argument("--screenshots", help="at the end, save every tab in English and Chinese into this folder")
    parser.add_argument("--actions", default="all",
                        help=f"the driver's actions, comma-separated among {','.join(ACTIONS)} ('all'; '' for none)")
    parser.add_argument("--trim", action="store_true",
                        help="malloc_trim(0) before each sample: memory glibc kept free is given back (not a leak)")
    parser.add_argument("--tracemalloc", help="trace Python allocations; write the growth after warm-up to this file")
    parser.add_argument("--tracemalloc-frames", type=int, default=6)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    unknown = set() if args.actions == "all" else {a for a in args.actions.split(",") if a} - set(ACTIONS)
    if unknown:
        parser.error(f"--actions: unknown {', '.join(sorted(unknown))} (known: {', '.join(ACTIONS)})")
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
