"""What the window shows, read from the database off the GUI thread, plus the in-app collector.

`read_snapshot` turns the database into arrays aligned with the room layout (one slot per card),
so a view can colour 100,000 cards with a few numpy operations. `SnapshotReader` is a
QObject meant to live in a worker thread, and the window's collector runs in a process of its own
(`CollectorProcess`, console.sweeper): the GUI thread never waits on SSH or SQL, nor on their GIL.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal, Slot

from console.argv import printable
from console.incidents import IncidentRow, read_open_incidents
from console.jobview import JobRow, read_jobs
from console.links import LINK_NA, LINK_OK, read_link_states
from console.samples import read_card

Array = npt.NDArray[Any]                # numpy arrays of any dtype in annotations

T = TypeVar("T")

HEALTH_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
NODE_STATUS_CODES = {"ok": 0, "failed": 1, "stale": 2, "unknown": 3}
# A node whose last good answer is older than this many sweep intervals is stale in the view even
# when its status row still says ok (e.g. the collector itself stopped).
STALE_AFTER_INTERVALS = 3.0


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One line of the fleet table."""

    name: str
    status: str
    vendor: str | None
    rack: str | None
    slot: int | None
    cards: int
    last_seen: float | None
    last_error: str | None
    duration_s: float | None


@dataclass(slots=True)
class Snapshot:
    """The latest state of every card, as arrays in card order, plus the fleet and collector figures."""

    taken_at: float
    card_node: list[str]
    card_idx: Array
    card_id: Array
    vendor: list[str | None]
    model: list[str | None]
    serial: list[str | None]
    ts: Array                      # unix s of the latest sample, NaN when none
    metrics: dict[str, Array]      # temperature_c, utilization_pct, memory_used_mib, memory_total_mib, power_w
    health: Array                  # HEALTH_CODES
    stale: Array                   # bool: the card's node is failed/stale/not answering
    nodes: list[NodeRow] = field(default_factory=list)
    last_sweep_at: float | None = None
    nodes_ok: int = 0
    nodes_failed: int = 0
    nodes_stale: int = 0
    collector_cpu_pct: float | None = None
    collector_rss_mib: float | None = None
    demo: bool = False
    layout_key: int = 0                 # changes when racks, nodes or cards change (views re-layout then)
    incidents: list[IncidentRow] = field(default_factory=list)   # not resolved, not suppressed
    jobs: list[JobRow] = field(default_factory=list)
    derived: dict[str, object] = field(default_factory=dict)   # what views precomputed off the GUI thread
    link_state: Array | None = None     # int8 console.links LINK_* per card (worst link); None: not read

    def index_of(self, node: str, idx: int) -> int | None:
        """Position of a card in the arrays."""
        for i, (n, k) in enumerate(zip(self.card_node, self.card_idx.tolist(), strict=True)):
            if n == node and k == idx:
                return i
        return None


METRICS = ("temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w")


def open_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection that waits briefly for the writer instead of failing."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    return conn


def read_with(db_path: str, reader: Callable[[sqlite3.Connection], T]) -> T:
    """Run one reader on a short-lived read-only connection (for work done in a thread pool)."""
    conn = open_readonly(db_path)
    try:
        return reader(conn)
    finally:
        conn.close()


def read_snapshot(conn: sqlite3.Connection, interval_s: float = 10.0, now: float | None = None) -> Snapshot:
    """Everything the room view and the fleet table need, in three queries."""
    now = time.time() if now is None else now
    node_rows = conn.execute(
        """SELECT n.name, n.status, n.vendor, n.rack, n.slot, n.last_seen, n.last_error, n.last_duration_s,
                  (SELECT count(*) FROM cards c WHERE c.node = n.name)
           FROM nodes n ORDER BY n.rack, n.slot, n.name""").fetchall()
    stale_after = max(30.0, STALE_AFTER_INTERVALS * interval_s)
    nodes: list[NodeRow] = []
    bad_nodes: set[str] = set()
    for name, status, vendor, rack, slot, last_seen, last_error, duration, ncards in node_rows:
        shown = status
        if status == "ok" and (last_seen is None or now - last_seen > stale_after):
            shown = "stale"
        if shown != "ok":
            bad_nodes.add(name)
        nodes.append(NodeRow(name, shown, vendor, rack, slot, int(ncards), last_seen, last_error, duration))
    rows = conn.execute(
        """SELECT c.id, c.node, c.idx, c.vendor, c.model, c.serial, s.ts, s.temperature_c, s.utilization_pct,
                  s.memory_used_mib, s.memory_total_mib, s.power_w, s.health
           FROM cards c LEFT JOIN samples s ON s.card_id = c.id
                AND s.ts = (SELECT max(ts) FROM samples WHERE card_id = c.id)
           ORDER BY c.node, c.idx, c.chip""").fetchall()
    n = len(rows)
    card_id = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    card_idx = np.fromiter((r[2] for r in rows), dtype=np.int32, count=n)
    ts = np.array([np.nan if r[6] is None else r[6] for r in rows], dtype=np.float64)
    metrics = {m: np.array([np.nan if r[7 + k] is None else r[7 + k] for r in rows], dtype=np.float32)
               for k, m in enumerate(METRICS)}
    health = np.fromiter((HEALTH_CODES.get(r[12] or "unknown", 3) for r in rows), dtype=np.int8, count=n)
    stale = np.fromiter((r[1] in bad_nodes for r in rows), dtype=bool, count=n)
    snap = Snapshot(now, [r[1] for r in rows], card_idx, card_id, [r[3] for r in rows], [r[4] for r in rows],
                    [r[5] for r in rows], ts, metrics, health, stale, nodes)
    snap.layout_key = hash((card_id.tobytes(), card_idx.tobytes(), tuple(snap.card_node),
                            tuple((r.name, r.rack, r.slot) for r in nodes)))
    sweep = conn.execute(
        "SELECT finished, collector_cpu_pct, collector_rss_mib FROM sweeps ORDER BY id DESC LIMIT 1").fetchone()
    if sweep is not None:
        snap.last_sweep_at, snap.collector_cpu_pct, snap.collector_rss_mib = sweep
    snap.nodes_ok = sum(1 for r in nodes if r.status == "ok")
    snap.nodes_failed = sum(1 for r in nodes if r.status == "failed")
    snap.nodes_stale = sum(1 for r in nodes if r.status in ("stale", "unknown"))
    try:
        snap.demo = conn.execute("SELECT 1 FROM meta WHERE key = 'demo'").fetchone() is not None
    except sqlite3.Error:
        snap.demo = False
    snap.jobs = read_jobs(conn, now)
    snap.incidents = read_open_incidents(conn)
    snap.link_state = not_shown_up(read_link_states(conn, snap.card_node, card_idx.tolist(), now), stale)
    return snap


def not_shown_up(link_state: Array, stale: Array) -> Array:
    """The link states with a stale or failed node's links up made N/A: what it said last is not known now, and a
    stale node is never healthy (a link last seen down or degraded keeps that, as a last known value)."""
    link_state[np.asarray(stale, dtype=bool) & (link_state == LINK_OK)] = LINK_NA
    return link_state


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """Everything the detail pane shows for one incident."""

    id: int
    row: dict[str, object]
    notes: list[tuple[float, str | None, str]]
    history: list[tuple[float, str, str, str]]          # earlier incidents of the same card or node
    samples: dict[str, Array]                        # t, temperature_c, utilization_pct, power_w


def read_incident_detail(conn: sqlite3.Connection, incident: int) -> IncidentDetail | None:
    """The incident's row, notes, the history of the same card (serial) or node, and its snapshot samples."""
    cur = conn.execute("SELECT * FROM incidents WHERE id = ?", (incident,))
    values = cur.fetchone()
    if values is None:
        return None
    row = dict(zip([d[0] for d in cur.description], values, strict=True))
    notes = [(float(a), b, str(c)) for a, b, c in conn.execute(
        "SELECT ts, author, text FROM incident_notes WHERE incident_id = ? ORDER BY ts", (incident,))]
    if row.get("serial"):
        hist = conn.execute("SELECT opened_at, severity, title, state FROM incidents WHERE serial = ? AND id != ? "
                            "ORDER BY opened_at DESC LIMIT 20", (row["serial"], incident)).fetchall()
    else:
        hist = conn.execute("SELECT opened_at, severity, title, state FROM incidents WHERE node = ? AND id != ? "
                            "ORDER BY opened_at DESC LIMIT 20", (row.get("node"), incident)).fetchall()
    rows = conn.execute("SELECT ts, temperature_c, utilization_pct, power_w FROM incident_samples "
                        "WHERE incident_id = ? ORDER BY ts", (incident,)).fetchall()
    samples = {k: np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64)
               for i, k in enumerate(("t", "temperature_c", "utilization_pct", "power_w"))}
    return IncidentDetail(incident, row, notes, [(float(a), str(b), str(c), str(d)) for a, b, c, d in hist], samples)


@dataclass(frozen=True, slots=True)
class History:
    """One card's history over a range: arrays of time and metrics, plus its faults."""

    card_id: int
    start: float
    end: float
    t: Array
    metrics: dict[str, Array]
    faults: list[tuple[float, str, str]]    # (ts, code, message)
    rolled_up: bool


def read_history(conn: sqlite3.Connection, card_id: int, seconds: float, now: float | None = None) -> History:
    """Raw samples up to 24 h; hourly rollups (averages) beyond, so 7 days stay light."""
    now = time.time() if now is None else now
    start = now - seconds
    rolled = seconds > 86400
    if rolled:
        rows = conn.execute(
            """SELECT hour + 1800, temperature_c_avg, utilization_pct_avg, memory_used_mib_avg, NULL, power_w_avg
               FROM rollups_hourly
               WHERE card_id = ? AND hour >= ? ORDER BY hour""", (card_id, start)).fetchall()
        last = rows[-1][0] + 1800 if rows else start
        t = np.array([r[0] for r in rows], dtype=np.float64)
        metrics = {m: np.array([np.nan if r[1 + k] is None else r[1 + k] for r in rows], dtype=np.float64)
                   for k, m in enumerate(METRICS)}
        raw = read_card(conn, card_id, last, math.inf)          # the hours not rolled up yet, raw
        t = np.concatenate([t, raw.ts])
        metrics = {m: np.concatenate([metrics[m], raw.values[m]]) for m in METRICS}
    else:
        raw = read_card(conn, card_id, start, math.inf)
        t = raw.ts
        metrics = {m: raw.values[m] for m in METRICS}
    node_idx = conn.execute("SELECT node, idx FROM cards WHERE id = ?", (card_id,)).fetchone()
    faults: list[tuple[float, str, str]] = []
    if node_idx is not None:
        faults = [(float(a), str(b), str(c)) for a, b, c in conn.execute(
            """SELECT ts, code, message FROM faults WHERE node = ? AND (card_idx = ? OR card_idx IS NULL)
               AND ts >= ? ORDER BY ts""", (node_idx[0], node_idx[1], start))]
    return History(card_id, start, now, t, metrics, faults, rolled)


class PollingReader(QObject):
    """Reads a snapshot every `period_s` in its own thread and emits it; the GUI only receives.

    A subclass gives `read()` (one snapshot, or one of `ERRORS`) and may give `describe` (the one line
    shown for such an error) and `close`. `source` is what the window names as where it reads from."""

    snapshot = Signal(object)
    failed = Signal(str)
    ERRORS: tuple[type[Exception], ...] = ()

    def __init__(self, source: str, interval_s: float, period_s: float,
                 prepare: Callable[[Snapshot], None] | None) -> None:
        super().__init__()
        self.db_path = source
        self.prepare = prepare          # runs in this worker thread: views precompute layouts here
        self.interval_s = interval_s
        self.period_ms = int(period_s * 1000)
        self._timer: QTimer | None = None

    def read(self) -> Snapshot:
        raise NotImplementedError

    def describe(self, exc: Exception) -> str:
        return f"{self.db_path}: {exc}"

    def close(self) -> None:
        """Release what `read` holds open (worker thread)."""

    @Slot()
    def start(self) -> None:
        """Begin polling (call in the worker thread)."""
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(self.period_ms)
        self.poll()

    @Slot()
    def stop(self) -> None:
        """Stop polling and release the source (call in the worker thread)."""
        if self._timer is not None:
            self._timer.stop()
        self.close()

    @Slot()
    def poll(self) -> None:
        """One read; errors become one line on the `failed` signal."""
        try:
            snap = self.read()
        except self.ERRORS as exc:
            self.failed.emit(self.describe(exc))
            return
        if self.prepare is not None:
            self.prepare(snap)
        self.snapshot.emit(snap)


class SnapshotReader(PollingReader):
    """Polls the SQLite store read-only; a replaced file (a new demo build) is opened again."""

    ERRORS = (sqlite3.Error,)

    def __init__(self, db_path: str, interval_s: float = 10.0, period_s: float = 2.0,
                 prepare: Callable[[Snapshot], None] | None = None) -> None:
        super().__init__(db_path, interval_s, period_s, prepare)
        self._conn: sqlite3.Connection | None = None
        self._inode: int | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def read(self) -> Snapshot:
        try:
            inode = _inode(self.db_path)
            if self._conn is not None and inode != self._inode:
                self.close()            # the file was replaced (a new demo build): read the new one
            if self._conn is None:
                self._conn = open_readonly(self.db_path)
                self._inode = inode
            return read_snapshot(self._conn, self.interval_s)
        except sqlite3.Error:
            self.close()
            raise


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class SweepEvent:
    """One sweep of the window's collector, as its process told it (console.sweeper.summary_event)."""

    sweep_id: int
    started: float
    duration_s: float
    nodes: int
    failed: int
    stale: int
    cards: int
    new_incidents: tuple[int, ...]
    store_problem: str | None
    held: int

    @classmethod
    def from_json(cls, event: dict[str, object]) -> SweepEvent:
        """From the child's `swept` line (missing or odd fields become neutral values, never an error)."""
        def num(key: str) -> float:
            value = event.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

        new = event.get("new_incidents")
        problem = event.get("store_problem")
        return cls(int(num("sweep_id")), num("started"), num("duration_s"), int(num("nodes")), int(num("failed")),
                   int(num("stale")), int(num("cards")),
                   tuple(i for i in new if isinstance(i, int)) if isinstance(new, list) else (),
                   problem if isinstance(problem, str) else None, int(num("held")))


RESTART_AFTER_S = (2.0, 5.0, 15.0, 30.0, 60.0)    # a collector that stopped by itself is started again


class CollectorProcess(QObject):
    """The window's collector in a child process (console.sweeper): the GUI process never parses a sweep.

    Lives in the GUI thread: QProcess reads the child's lines as the event loop turns, a few hundred
    bytes per sweep. The child's stdin is held open; closing it (stop, or this process dying) stops the
    child, which closes its sessions and releases the database's writer lock. A child that stops by
    itself is said once and started again after a growing pause (RESTART_AFTER_S); its history build is
    not repeated."""

    progress = Signal(str, float)     # phase, fraction
    swept = Signal(object)            # SweepEvent
    failed = Signal(str)
    notice = Signal(str)

    def __init__(self, args: list[str], interval_s: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.args = args
        self.interval_s = interval_s
        self.restarts = 0
        self.exit_codes: list[int] = []
        self._proc: QProcess | None = None
        self._buffer = b""
        self._stderr = b""
        self._stopping = False
        self._prepared = False
        self._restart = QTimer(self)
        self._restart.setSingleShot(True)
        self._restart.timeout.connect(self.start)

    @Slot()
    def start(self) -> None:
        """Start the child (again)."""
        if self._stopping or (self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning):
            return
        args = list(self.args)
        if self._prepared:
            args.append("--no-history")              # a restart goes on with the history already built
        proc = QProcess(self)
        proc.setProgram(sys.executable)
        proc.setArguments(["-m", "console.sweeper", *args])
        env = QProcessEnvironment.systemEnvironment()
        root = str(Path(__file__).resolve().parents[1])
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (root, env.value("PYTHONPATH")) if p))
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self._buffer = b""
        self._stderr = b""
        self._proc = proc
        proc.start()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        if self._proc is None or self._proc.state() == QProcess.ProcessState.NotRunning:
            return None
        return int(self._proc.processId())

    def request_stop(self) -> None:
        """Ask the child to stop (it sees its stdin close); `stop` waits for it."""
        self._stopping = True
        self._restart.stop()
        if self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning:
            self._proc.closeWriteChannel()

    @Slot()
    def stop(self, wait_ms: int = 30_000) -> None:
        """Stop the child and wait for it; one that does not stop in `wait_ms` is killed."""
        self.request_stop()
        proc = self._proc
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        if not proc.waitForFinished(wait_ms):
            proc.kill()
            proc.waitForFinished(5_000)

    def _lines(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > 1 << 20:          # a child that prints without newlines: drop, never grow
            self._buffer = b""
        return lines

    @Slot()
    def _read(self) -> None:
        if self._proc is None:
            return
        for raw in self._lines(bytes(self._proc.readAllStandardOutput().data())):
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            kind = event.get("event")
            if kind == "progress":
                fraction = event.get("fraction")
                if isinstance(fraction, int | float):
                    if fraction >= 1.0:
                        self._prepared = True
                    self.progress.emit(str(event.get("phase", "")), float(fraction))
            elif kind == "swept":
                self._prepared = True
                self.restarts = 0               # a restarted child that sweeps again starts the pauses over
                self.swept.emit(SweepEvent.from_json(event))
            elif kind in ("failed", "notice"):
                text = " ".join(str(event.get("text", "")).split())
                (self.failed if kind == "failed" else self.notice).emit(text)

    @Slot()
    def _read_stderr(self) -> None:
        if self._proc is not None:
            self._stderr = (self._stderr + bytes(self._proc.readAllStandardError().data()))[-4096:]

    def _last_stderr_line(self) -> str:
        lines = [ln for ln in self._stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        return printable(lines[-1])[:300] if lines else ""

    @Slot(int, QProcess.ExitStatus)
    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        if self._stopping:
            return
        crashed = status == QProcess.ExitStatus.CrashExit
        self.exit_codes.append(-1 if crashed else code)
        if code == 2 and not crashed:
            return                      # it could not start (said on its failed line): retrying cannot help
        pause = RESTART_AFTER_S[min(self.restarts, len(RESTART_AFTER_S) - 1)]
        self.restarts += 1
        why = "crashed" if crashed else f"exit status {code}"
        last = self._last_stderr_line()
        self.failed.emit(f"collector stopped ({why}{': ' + last if last else ''}); starting again in {pause:.0f} s")
        self._restart.start(int(pause * 1000))

    @Slot(QProcess.ProcessError)
    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed.emit(f"collector could not start: {sys.executable}: "
                             f"{self._proc.errorString() if self._proc else error}")
