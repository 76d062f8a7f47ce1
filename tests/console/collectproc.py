"""A real `mixops collect` process for the fault tests: its output in files, waits bounded by polls."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.05
MAX_POLLS = 1200            # 60 s on an idle machine: a bound on waiting, never an assertion on time


def wait_until(condition: Callable[[], bool], what: str, polls: int = MAX_POLLS) -> None:
    """Poll `condition` at most `polls` times; fail naming what never happened."""
    for _ in range(polls):
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"never happened: {what}")


def sweeps(db: Path) -> int:
    """Committed sweeps, read as any reader would (0 while the file is not there yet)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM sweeps").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def committed(db: Path) -> list[tuple[object, ...]]:
    """Every committed sweep with its node count (ok + failed + stale) and sample count (what must never
    change once written)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(
            """SELECT s.id, s.started, s.finished, s.cards,
                      s.nodes_ok + s.nodes_failed + s.nodes_stale,
                      (SELECT count(*) FROM samples x WHERE x.ts >= s.started AND x.ts <= s.finished)
               FROM sweeps s ORDER BY s.id""").fetchall()
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


class Collect:
    """`mixops collect --site SITE --db DB (--interval S | --once)` with stdout/stderr in files beside it."""

    count = 0

    def __init__(self, logs: Path, site: Path, db: Path, interval: float | None = 0.2,
                 env: dict[str, str] | None = None, preexec: Callable[[], None] | None = None) -> None:
        Collect.count += 1
        self.out_path = logs / f"collect{Collect.count}.out"
        self.err_path = logs / f"collect{Collect.count}.err"
        mode = ["--interval", str(interval)] if interval is not None else ["--once"]
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "collect", "--site", str(site), "--db", str(db), *mode,
                 "--quiet"], cwd=ROOT, stdout=out, stderr=err, env={**os.environ, **(env or {})},
                preexec_fn=preexec)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def lines(self, text: str) -> list[str]:
        """Lines of stderr containing text."""
        return [line for line in self.stderr().splitlines() if text in line]

    def held(self) -> int:
        """Sweeps it reported as held in memory so far."""
        return sum(1 for line in self.stdout().splitlines() if "held in memory" in line)

    def written(self) -> int:
        """Sweeps it reported as written so far."""
        return sum(1 for line in self.stdout().splitlines()
                   if line.startswith("sweep ") and "held in memory" not in line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, polls: int = MAX_POLLS) -> int:
        wait_until(lambda: self.proc.poll() is not None, f"collector {self.pid} exits", polls)
        return int(self.proc.returncode)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def kill(self) -> None:
        """SIGKILL it if it still runs (cleanup)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
