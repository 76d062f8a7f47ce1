"""The window's collector in its own process (console.sweeper, console.live.CollectorProcess): real child
processes, real SQLite files, the real writer lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from console.live import CollectorProcess, SweepEvent
from console.store import Store
from console.sweeper import run
from tests.console.collectproc import ROOT
from tests.console.test_writer import _holder

DEMO = ["--demo", "--cards", "64", "--history-s", "120", "--interval", "0.5"]


def _child(db, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "console.sweeper", "--db", str(db), *extra], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_run_says_who_holds_the_database_in_one_line(tmp_path):
    """The collector cannot start on a database another process writes: one `failed` line naming the holder."""
    db = tmp_path / "ops.db"
    events: list[dict[str, object]] = []
    with _holder(db) as proc:
        def make():                      # what console.sweeper.site_maker does: Store first
            Store(str(db))
            raise AssertionError("the store opened a locked database")

        import threading
        assert run(make, 10.0, events.append, threading.Event()) == 2
    (event,) = events
    assert event["event"] == "failed"
    assert str(event["text"]).startswith(f"{db}: another mixops is writing this database (pid {proc.pid} ")


def test_child_builds_history_sweeps_and_stops_when_its_stdin_closes(tmp_path):
    """The window holds the child's stdin: closing it (the window quit or died) stops the child, which
    releases the writer lock; every line on its stdout is one JSON event."""
    db = tmp_path / "demo.db"
    with _child(db, *DEMO) as child:
        assert child.stdout is not None and child.stdin is not None
        seen: list[dict[str, object]] = []
        while not any(e["event"] == "swept" for e in seen):
            line = child.stdout.readline()
            assert line, f"the child ended early: {child.stderr.read() if child.stderr else ''}"
            seen.append(json.loads(line))
        progress = [e["fraction"] for e in seen if e["event"] == "progress"]
        assert progress and progress[-1] == 1.0 and progress == sorted(progress)
        swept = SweepEvent.from_json(seen[-1])
        assert swept.nodes == 8 and swept.cards > 0 and swept.duration_s > 0
        child.stdin.close()
        assert child.wait(60) == 0
        assert "Traceback" not in (child.stderr.read() if child.stderr else "")
    Store(str(db)).close()               # the lock is free again


def test_a_broken_site_file_is_one_failed_line_and_exit_2(tmp_path):
    """Its stdin still held open by the window while it exits: a thread blocked in sys.stdin's buffered
    reader made the interpreter abort at exit ("could not acquire lock for <_io.BufferedReader
    name='<stdin>'> at interpreter shutdown"), 60 times in 60 before the watcher read the descriptor."""
    site = tmp_path / "site.toml"
    site.write_text("[site\n")
    for _ in range(3):
        with _child(tmp_path / "ops.db", "--site", str(site)) as child:
            assert child.wait(60) == 2, child.stderr.read() if child.stderr else ""
            out, err = child.communicate(timeout=60)
        assert "Traceback" not in err and "Fatal" not in err, err
        (line,) = out.splitlines()
        event = json.loads(line)
        assert event["event"] == "failed" and str(site) in str(event["text"])


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_collector_that_dies_is_said_and_started_again_without_rebuilding_history(tmp_path, qtbot, sig):
    """A child killed under the window (OOM killer, a crash) is one line in the status bar, then a new
    child goes on sweeping the same database; the demo's history is not built again."""
    db = tmp_path / "demo.db"
    runner = CollectorProcess(["--db", str(db), *DEMO], 0.5)
    failures: list[str] = []
    runner.failed.connect(failures.append)
    progress: list[float] = []
    runner.progress.connect(lambda _phase, f: progress.append(f))
    try:
        with qtbot.waitSignal(runner.swept, timeout=90_000):
            runner.start()
        first = runner.pid
        assert first is not None
        built = len(progress)
        os.kill(first, sig)
        qtbot.waitUntil(lambda: any("collector stopped" in f for f in failures), timeout=30_000)
        (said,) = [f for f in failures if "collector stopped" in f]
        assert "starting again in 2 s" in said and ("crashed" in said or "exit status" in said)
        with qtbot.waitSignal(runner.swept, timeout=60_000):
            pass
        assert runner.pid not in (None, first)
        assert len(progress) == built            # no second history build
        assert runner.restarts == 0              # it sweeps again: the next stop starts the pauses over
    finally:
        runner.stop()
    assert runner.pid is None
    Store(str(db)).close()


def test_stop_waits_for_the_child_and_it_releases_the_lock(tmp_path, qtbot):
    db = tmp_path / "demo.db"
    runner = CollectorProcess(["--db", str(db), *DEMO], 0.5)
    with qtbot.waitSignal(runner.swept, timeout=90_000):
        runner.start()
    pid = runner.pid
    runner.stop()
    assert runner.pid is None and runner.exit_codes == []      # a stop asked for is not a crash
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    Store(str(db)).close()


def test_the_window_collector_serves_metrics_when_set(fleet, tmp_path, qtbot):
    """The setting metrics_listen (here through the child's --metrics-listen, as widgets.app passes it): the
    window's own collector serves /metrics of its last sweep, over real sshd nodes."""
    import urllib.request

    fleet.start(2, "nvidia")
    runner = CollectorProcess(["--site", str(fleet.site_toml()), "--db", str(tmp_path / "ops.db"),
                               "--metrics-listen", "127.0.0.1:0"], 1.0)
    notices: list[str] = []
    runner.notice.connect(notices.append)
    try:
        with qtbot.waitSignal(runner.swept, timeout=60_000):
            runner.start()
        (said,) = [n for n in notices if "serving /metrics on" in n]
        url = said.split(" on ", 1)[1]
        assert url.startswith("http://127.0.0.1:")
        with qtbot.waitSignal(runner.swept, timeout=30_000):
            pass
        with urllib.request.urlopen(url, timeout=10) as reply:       # noqa: S310 - loopback, our own server
            text = reply.read().decode()
        assert text.count("mixops_card_temperature_celsius{") == 8 and 'node="n001"' in text
    finally:
        runner.stop()


def test_a_bad_metrics_listen_setting_is_one_failed_line(tmp_path, fleet):
    fleet.start(1, "nvidia")
    with _child(tmp_path / "ops.db", "--site", str(fleet.site_toml()), "--metrics-listen", "nonsense") as child:
        assert child.wait(60) == 2
        out, err = child.communicate(timeout=60)
    assert "Traceback" not in err
    (line,) = out.splitlines()
    assert json.loads(line)["event"] == "failed" and "HOST:PORT" in line
