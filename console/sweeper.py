"""The window's own collector, in a process of its own.

    python -m console.sweeper --db FILE (--site FILE | --demo --cards N --history-s S) [--interval S]

The window starts this child (console.live.CollectorProcess) instead of sweeping in a thread of its own
process: parsing and writing a 10,240-card sweep is seconds of Python, and in the window's process that
Python holds the GIL the GUI thread needs to paint (the event loop stalled for 1.4-1.9 s in the soak).
In its own process the collector shares nothing with the window but the database, which the window
already reads through its own read-only connection.

The child speaks one JSON object per line on stdout, nothing else:

    {"event": "progress", "phase": "history", "fraction": 0.25}
    {"event": "swept", "sweep_id": 12, "duration_s": 1.3, "nodes": 40, "failed": 1, "stale": 0, ...}
    {"event": "failed", "text": "one line for the status bar"}
    {"event": "notice", "text": "one line for the status bar that is not a failure"}

It stops, closing its sessions and releasing the database's writer lock, when its stdin closes (the
window quit, or died: the child never outlives it) or on SIGTERM/SIGINT. Anything it cannot do is a
`failed` line, never a traceback; an exit status other than 0 means it stopped by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from console.site import Site

Maker = Callable[[], tuple[Site, Callable[[], object], Callable[[], None]]]


def summary_event(summary: object) -> dict[str, Any]:
    """What the window needs of a console.service.SweepSummary, as plain JSON."""
    reports = getattr(summary, "reports", ())
    failed = [r for r in reports if not r.ok]
    return {"event": "swept", "sweep_id": getattr(summary, "sweep_id", 0),
            "started": getattr(summary, "started", 0.0), "duration_s": getattr(summary, "duration_s", 0.0),
            "nodes": len(reports), "failed": len(failed), "stale": len(getattr(summary, "stale", ())),
            "cards": sum(len(r.cards) for r in reports),
            "new_incidents": list(getattr(summary, "new_incidents", ())),
            "store_problem": getattr(summary, "store_problem", None), "held": getattr(summary, "held", 0)}


def run(make: Maker, interval_s: float, emit: Callable[[dict[str, Any]], None], stop: threading.Event,
        prepare: Callable[[Callable[[float], None]], None] | None = None) -> int:
    """Prepare (the demo's history), then sweep at once and every `interval_s` until `stop`.

    Returns 0 when stopped, 2 when the collector could not start (said on a `failed` line)."""
    close: Callable[[], None] | None = None
    try:
        if prepare is not None:
            prepare(lambda f: emit({"event": "progress", "phase": "history", "fraction": f}))
            emit({"event": "progress", "phase": "history", "fraction": 1.0})
        if stop.is_set():
            return 0
        _site, sweep, close = make()
    except Exception as exc:  # noqa: BLE001 - one line for the operator, never a traceback
        emit({"event": "failed", "text": str(exc)})
        return 2
    problem: str | None = None
    try:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                summary = sweep()
            except Exception as exc:  # noqa: BLE001 - e.g. the store's disk is full: say so, keep running
                emit({"event": "failed", "text": str(exc)})
            else:
                # a collector holding its sweeps while the database cannot be written says so once
                now_problem = getattr(summary, "store_problem", None)
                if isinstance(now_problem, str) and now_problem != problem:
                    emit({"event": "failed",
                          "text": f"database cannot be written ({now_problem}): sweeps held in memory"})
                problem = now_problem if isinstance(now_problem, str) else None
                emit(summary_event(summary))
            stop.wait(max(0.0, interval_s - (time.monotonic() - t0)))
    finally:
        close()
    return 0


def _demo_maker(db: str, cards: int, history_s: float, stop: threading.Event) -> tuple[Maker, Callable[..., None]]:
    from console.demo import DemoRun

    demo = DemoRun(db, cards, history_s, stop=stop)
    return demo.make, demo.prepare


def site_maker(site: Site, db_path: str, say: Callable[[str], None] | None = None,
               listen: tuple[str, int] | None = None) -> Maker:
    """The collector of a site file, writing `db_path` (what `mixops collect --interval` runs); with
    `listen`, it also serves the last sweep on /metrics there (console.metrics, as `collect --metrics-listen`)."""
    def make() -> tuple[Site, Callable[[], object], Callable[[], None]]:
        from console.service import HOLD_ROWS, Collector
        from console.store import Store
        store = Store(db_path)
        for notice in store.notices:
            if say is not None:
                say(f"database {notice}")       # e.g. its mode was tightened to 0600
        exporter = None
        if listen is not None:
            from console.metrics import Exporter
            try:
                exporter = Exporter(site, *listen)
            except Exception:
                store.close()
                raise
            if say is not None:
                say(f"serving /metrics on {exporter.url}")
        # through a full disk or a held lock the window's collector holds its sweeps and says so once
        collector = Collector(site, store, hold_rows=HOLD_ROWS)

        def sweep() -> object:
            summary = collector.sweep()
            if exporter is not None:
                exporter.update(summary, store)
            return summary

        def close() -> None:
            if exporter is not None:
                exporter.close()
            collector.close()
            store.close()

        return site, sweep, close

    return make


def _writer(out: TextIO) -> Callable[[dict[str, Any]], None]:
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, default=str)
        with lock:
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):      # the window is gone: nothing left to tell
                pass

    return emit


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m console.sweeper",
                                     description="the window's own collector (started by the window)")
    parser.add_argument("--db", required=True, help="database to write")
    parser.add_argument("--site", help="site file to collect")
    parser.add_argument("--demo", action="store_true", help="the simulated site")
    parser.add_argument("--cards", type=int, default=1280, help="demo: number of cards")
    parser.add_argument("--history-s", type=float, default=7200.0, help="demo: seconds of history to build first")
    parser.add_argument("--no-history", action="store_true",
                        help="demo: go on with the database as it is (a restart after the history was built)")
    parser.add_argument("--interval", type=float, help="seconds between sweeps (default: the site's)")
    parser.add_argument("--metrics-listen", metavar="HOST:PORT",
                        help="site: also serve /metrics there (the window's setting metrics_listen)")
    args = parser.parse_args(argv)
    emit = _writer(sys.stdout)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def _watch_stdin() -> None:
        # the window holds our stdin open for as long as it wants us: EOF (it closed it, quit or died) is stop.
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside the buffered reader
        # holds its lock, and the interpreter aborts at exit when it finds it held ("could not acquire
        # lock for <_io.BufferedReader name='<stdin>'> at interpreter shutdown").
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=_watch_stdin, name="mixops-sweeper-stdin", daemon=True).start()
    prepare: Callable[[Callable[[float], None]], None] | None = None
    try:
        if args.demo:
            make, prepare = _demo_maker(args.db, args.cards, args.history_s, stop)
            if args.no_history:
                prepare = None
            interval = args.interval if args.interval is not None else 10.0
        else:
            if args.site is None:
                parser.error("--site or --demo is required")
            from console.site import load_site
            site = load_site(args.site)
            listen = None
            if args.metrics_listen:
                from console.argv import listen_address
                listen = listen_address(args.metrics_listen)
            make = site_maker(site, args.db, lambda text: emit({"event": "notice", "text": text}), listen)
            interval = args.interval if args.interval is not None else site.interval_s
    except Exception as exc:  # noqa: BLE001 - a broken site file: one line, exit 2
        emit({"event": "failed", "text": "; ".join(str(exc).splitlines())})
        return 2
    return run(make, interval, emit, stop, prepare)


if __name__ == "__main__":
    sys.exit(main())
