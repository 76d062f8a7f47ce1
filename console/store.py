"""The SQLite store (DESIGN §7): one writer, WAL, ordered migrations, one transaction per sweep."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sqlite3
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sqlite_utils

from collectors.links import FLAP_COUNTERS
from collectors.model import NodeReport
from console.chunks import ChunkError, Columns, decode, encode
from console.continuity import LINK_LOOKBACK_S, Changes, Interruption, Tracker, collective_failure, link_cause
from console.links import LinkBook
from console.samples import HEAD_SELECT, HOUR, head_columns

RAW_RETENTION_DAYS = 7.0
ROLLUP_RETENTION_DAYS = 400.0
RAW_TEXT_LIMIT = 64 * 1024
BUSY_TIMEOUT_S = 30.0
# Tests (and an operator who wants a collector to notice a held lock sooner) shorten the wait for another
# process's write lock; the collector's own retry loop (console.cli) takes over after it.
BUSY_TIMEOUT_ENV = "MIXOPS_BUSY_TIMEOUT_S"
PRIVATE_MODE = 0o600
# Maintenance after each sweep's write (Store._maintain): at most this long per sweep, in transactions
# of a batch of cards or rows each, so the writer is never held long (issue 17: <= 200 ms at 10,240 cards).
MAINTENANCE_BUDGET_S = 0.3
ROLLUP_CARDS = 128          # cards per rollup transaction (one indexed aggregate each)
COMPACT_CARDS = 8           # cards per compaction transaction (~2,900 head rows deleted at 10 s)
EXPIRE_ROWS = 5000          # rows per table per expiry transaction
KEEP_RAW_S = 3600.0         # the head keeps the last finished hour as plain rows too (incident snapshots)

# Ordered migrations: index i upgrades user_version i -> i+1. Never edit a released step; append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY, host TEXT, port INTEGER, rack TEXT, slot INTEGER, vendor TEXT,
        status TEXT NOT NULL DEFAULT 'unknown', last_seen REAL, last_error TEXT,
        last_duration_s REAL, last_attempt REAL, kmsg_cursor REAL
    );
    CREATE TABLE cards (
        id INTEGER PRIMARY KEY, node TEXT NOT NULL, idx INTEGER NOT NULL, chip INTEGER,
        vendor TEXT, model TEXT, serial TEXT, bus_id TEXT, first_seen REAL, last_seen REAL
    );
    CREATE UNIQUE INDEX cards_node_idx_chip ON cards(node, idx, ifnull(chip, -1));
    CREATE INDEX cards_serial ON cards(serial);
    CREATE TABLE samples (
        card_id INTEGER NOT NULL, ts REAL NOT NULL, temperature_c REAL, utilization_pct REAL,
        memory_used_mib REAL, memory_total_mib REAL, power_w REAL, health TEXT NOT NULL,
        ecc_uncorrected INTEGER
    );
    CREATE INDEX samples_card_ts ON samples(card_id, ts);
    CREATE INDEX samples_ts ON samples(ts);
    CREATE TABLE rollups_hourly (
        card_id INTEGER NOT NULL, hour REAL NOT NULL, n INTEGER NOT NULL,
        temperature_c_min REAL, temperature_c_avg REAL, temperature_c_max REAL,
        utilization_pct_min REAL, utilization_pct_avg REAL, utilization_pct_max REAL,
        memory_used_mib_min REAL, memory_used_mib_avg REAL, memory_used_mib_max REAL,
        power_w_min REAL, power_w_avg REAL, power_w_max REAL,
        worst_health TEXT,
        PRIMARY KEY (card_id, hour)
    ) WITHOUT ROWID;
    CREATE TABLE sweeps (
        id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL NOT NULL, duration_s REAL,
        nodes_ok INTEGER, nodes_failed INTEGER, nodes_stale INTEGER, cards INTEGER,
        collector_cpu_pct REAL, collector_rss_mib REAL, db_size_mib REAL
    );
    CREATE TABLE node_outcomes (
        sweep_id INTEGER NOT NULL, node TEXT NOT NULL, status TEXT NOT NULL, duration_s REAL,
        cards INTEGER, warnings INTEGER, error TEXT,
        PRIMARY KEY (sweep_id, node)
    ) WITHOUT ROWID;
    CREATE TABLE faults (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, node TEXT NOT NULL, card_idx INTEGER, vendor TEXT,
        code TEXT NOT NULL, severity TEXT NOT NULL, action TEXT NOT NULL, message TEXT
    );
    CREATE INDEX faults_ts ON faults(ts);
    CREATE INDEX faults_node ON faults(node, ts);
    CREATE TABLE raw_outputs (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, node TEXT NOT NULL, vendor TEXT, section TEXT,
        warning TEXT, text TEXT
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY, opened_at REAL NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
        title TEXT NOT NULL, node TEXT, card_idx INTEGER, job TEXT, acknowledged_at REAL,
        acknowledged_by TEXT, resolved_at REAL
    );
    CREATE TABLE incident_notes (incident_id INTEGER NOT NULL, ts REAL NOT NULL, author TEXT, text TEXT NOT NULL);
    CREATE TABLE jobs (name TEXT PRIMARY KEY, state TEXT, last_progress_at REAL, last_step INTEGER);
    CREATE TABLE checkpoints (job TEXT NOT NULL, step INTEGER NOT NULL, ts REAL, path TEXT,
                              PRIMARY KEY (job, step)) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    CREATE VIEW latest_samples AS
        SELECT c.node, c.idx, c.chip, c.vendor, c.model, c.serial, s.*
        FROM cards c JOIN samples s ON s.card_id = c.id
        WHERE s.ts = (SELECT max(ts) FROM samples WHERE card_id = c.id);
    """,
    # v2: the incident engine (console.incidents)
    """
    ALTER TABLE incidents ADD COLUMN key TEXT;
    ALTER TABLE incidents ADD COLUMN source TEXT;
    ALTER TABLE incidents ADD COLUMN code TEXT;
    ALTER TABLE incidents ADD COLUMN vendor TEXT;
    ALTER TABLE incidents ADD COLUMN rack TEXT;
    ALTER TABLE incidents ADD COLUMN cards TEXT;
    ALTER TABLE incidents ADD COLUMN serial TEXT;
    ALTER TABLE incidents ADD COLUMN action TEXT;
    ALTER TABLE incidents ADD COLUMN evidence TEXT;
    ALTER TABLE incidents ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE incidents ADD COLUMN last_seen REAL;
    ALTER TABLE incidents ADD COLUMN clear_sweeps INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN silenced_until REAL;
    ALTER TABLE incidents ADD COLUMN resolved_by TEXT;
    ALTER TABLE incidents ADD COLUMN suppressed_by INTEGER;
    CREATE INDEX incidents_open ON incidents(state, key);
    CREATE INDEX incidents_serial ON incidents(serial, opened_at);
    CREATE TABLE incident_samples (
        incident_id INTEGER NOT NULL, card_id INTEGER NOT NULL, ts REAL NOT NULL, temperature_c REAL,
        utilization_pct REAL, memory_used_mib REAL, power_w REAL, health TEXT,
        PRIMARY KEY (incident_id, card_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE job_nodes (job TEXT NOT NULL, node TEXT NOT NULL, PRIMARY KEY (job, node)) WITHOUT ROWID;
    """,
    # v3: shift handover
    """
    CREATE TABLE handover_notes (id INTEGER PRIMARY KEY, ts REAL NOT NULL, author TEXT, text TEXT NOT NULL);
    CREATE INDEX handover_notes_ts ON handover_notes(ts);
    """,
    # v4: training jobs over SSH
    """
    CREATE TABLE job_logs (job TEXT PRIMARY KEY, offset INTEGER NOT NULL, updated REAL, problem TEXT);
    CREATE TABLE job_events (job TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL, step INTEGER, detail TEXT);
    CREATE INDEX job_events_job_ts ON job_events(job, ts);
    """,
    # v5: the continuity model, stored so the panel, the timeline and the reports read the same truth
    """
    CREATE TABLE job_segments (job TEXT NOT NULL, kind TEXT NOT NULL, start REAL NOT NULL, "end" REAL);
    CREATE INDEX job_segments_job ON job_segments(job, start);
    CREATE TABLE job_interruptions (
        job TEXT NOT NULL, stopped_at REAL NOT NULL, detected_at REAL, resumed_at REAL, last_step INTEGER,
        resumed_from INTEGER, lost_steps INTEGER, lost_s REAL, cause TEXT, incident_id INTEGER,
        PRIMARY KEY (job, stopped_at)
    ) WITHOUT ROWID;
    ALTER TABLE jobs ADD COLUMN first_progress_at REAL;
    ALTER TABLE jobs ADD COLUMN step_time_s REAL;
    ALTER TABLE jobs ADD COLUMN stall_after_s REAL;
    ALTER TABLE jobs ADD COLUMN track TEXT;
    ALTER TABLE jobs ADD COLUMN slurm_state TEXT;
    ALTER TABLE jobs ADD COLUMN requeues INTEGER;
    ALTER TABLE job_logs ADD COLUMN lines INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE job_logs ADD COLUMN unmatched INTEGER NOT NULL DEFAULT 0;
    """,
    # v6: vendor running totals (ECC counts) as deltas: the last total per card, seeded from the samples
    # so an upgraded database does not report every standing count as new (console.counters)
    """
    CREATE TABLE card_counters (
        node TEXT NOT NULL, idx INTEGER NOT NULL, chip INTEGER NOT NULL, name TEXT NOT NULL,
        value INTEGER NOT NULL, ts REAL NOT NULL,
        PRIMARY KEY (node, idx, chip, name)
    ) WITHOUT ROWID;
    INSERT INTO card_counters
        SELECT c.node, c.idx, ifnull(c.chip, -1), 'ecc_uncorrected', s.ecc_uncorrected, s.ts
        FROM cards c JOIN samples s ON s.card_id = c.id
        WHERE s.ts = (SELECT max(ts) FROM samples WHERE card_id = c.id AND ecc_uncorrected IS NOT NULL)
          AND s.ecc_uncorrected IS NOT NULL;
    """,
    # v7: full-resolution history past the head in compressed hourly chunks per card (console.chunks); the
    # rows of `samples` move there an hour at a time, a few cards per transaction (Store.compact)
    """
    CREATE TABLE sample_chunks (
        card_id INTEGER NOT NULL, hour REAL NOT NULL, n INTEGER NOT NULL, first_ts REAL NOT NULL,
        last_ts REAL NOT NULL, data BLOB NOT NULL
    );
    CREATE UNIQUE INDEX sample_chunks_card_hour ON sample_chunks(card_id, hour);
    CREATE INDEX sample_chunks_hour ON sample_chunks(hour);
    CREATE INDEX rollups_hourly_hour ON rollups_hourly(hour);
    CREATE INDEX raw_outputs_ts ON raw_outputs(ts);
    CREATE INDEX job_events_ts ON job_events(ts);
    """,
    # v8: interconnect links (issue 19): the last reading of each link with its counters' increase in the last
    # sweep (`counters`, JSON) and the totals they are counted from (`totals`); every state change with its
    # time (`link_events`); the nonzero increases of error and flap counters over time (`link_counter_deltas`)
    """
    CREATE TABLE links (
        id INTEGER PRIMARY KEY, node TEXT NOT NULL, card_idx INTEGER, kind TEXT NOT NULL, link TEXT NOT NULL,
        peer TEXT, state TEXT NOT NULL, speed_gbps REAL, last_change REAL, first_seen REAL NOT NULL,
        ever_up INTEGER NOT NULL DEFAULT 0, detail TEXT, counters TEXT, totals TEXT
    );
    CREATE UNIQUE INDEX links_key ON links(node, ifnull(card_idx, -1), kind, link);
    CREATE INDEX links_state ON links(state, ever_up);
    CREATE TABLE link_events (
        ts REAL NOT NULL, link_id INTEGER NOT NULL, node TEXT NOT NULL, card_idx INTEGER, kind TEXT NOT NULL,
        link TEXT NOT NULL, state TEXT NOT NULL, previous TEXT
    );
    CREATE INDEX link_events_node_ts ON link_events(node, ts);
    CREATE INDEX link_events_ts ON link_events(ts);
    CREATE TABLE link_counter_deltas (ts REAL NOT NULL, link_id INTEGER NOT NULL, name TEXT NOT NULL,
                                      delta INTEGER NOT NULL);
    CREATE INDEX link_counter_deltas_ts ON link_counter_deltas(ts);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(slots=True)
class JobUpdate:
    """What one sweep learned about one training job (console.service builds it)."""

    job: str
    now: float
    offset: int
    problem: str | None
    state: str
    tracker: Tracker
    changes: Changes
    events: list[tuple[float, str, int | None, str]] = field(default_factory=list)
    checkpoints: list[tuple[int, float, str]] = field(default_factory=list)
    lines: int = 0
    unmatched: int = 0
    slurm: tuple[str | None, int | None] | None = None


class StoreError(Exception):
    """The database cannot be used (not a mixops DB, newer schema, disk full, permissions)."""


@dataclass(frozen=True, slots=True)
class SweepStats:
    """The collector's own cost during one sweep (psutil), stored beside the data."""

    cpu_pct: float | None = None
    rss_mib: float | None = None


def _create_private(path: str) -> None:
    if path == ":memory:" or os.path.exists(path):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_MODE)
    os.close(fd)


def make_private(path: str) -> list[str]:
    """Make the database file and its -wal/-shm owner-only (0600); one notice per file that was not.

    The file holds the site's inventory, serials, faults and operator names: an older mixops, a copy or a
    restore can leave it 0644 (issue 16). SQLite gives a new -wal/-shm the database file's mode.
    """
    notices: list[str] = []
    if path == ":memory:":
        return notices
    for name in (path, path + "-wal", path + "-shm"):
        try:
            st = os.stat(name)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o077:
            continue
        os.chmod(name, PRIVATE_MODE)
        notices.append(f"{name}: mode {stat.S_IMODE(st.st_mode):04o} made 0600 (it holds the site's data)")
    return notices


def busy_timeout_s() -> float:
    """How long a write waits for another process's lock: $MIXOPS_BUSY_TIMEOUT_S, else 30 s."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "")
    try:
        value = float(text) if text else BUSY_TIMEOUT_S
    except ValueError:
        return BUSY_TIMEOUT_S
    return value if 0 <= value <= 3600 else BUSY_TIMEOUT_S


def connect(path: str, readonly: bool = False, notices: list[str] | None = None) -> sqlite_utils.Database:
    """Open the DB with mixops's settings (WAL, busy timeout); creates it 0600 (or makes it so) and migrates.

    `notices` receives one line per file whose mode had to be tightened.
    """
    changed: list[str] = []
    try:
        if not readonly:
            _create_private(path)
            changed = make_private(path)
        timeout = busy_timeout_s()
        conn = sqlite3.connect(path if not readonly else f"file:{path}?mode=ro", uri=readonly,
                               check_same_thread=False, isolation_level=None, timeout=timeout)
        db = sqlite_utils.Database(conn)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if not readonly:
            db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(db, path)
            changed += make_private(path)        # a -wal/-shm that SQLite just made from a 0644 file
            if notices is not None:
                notices.extend(changed)
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or exc}") from exc


class WriterLock:
    """One collecting writer per database: an exclusive flock on `<db>.lock`, with its holder written in it.

    A separate file, not the database itself: SQLite's own locks on the database are POSIX byte-range locks,
    and on NFS flock is emulated with exactly those, so a flock on the database could collide with them;
    the lock file also carries who holds it (pid, command, host, since) for the next writer's message. The
    kernel drops the lock when the holder closes it or dies (SIGKILL included), so a stale file never
    blocks anyone; the file itself stays (deleting it would let two writers lock two different files).
    """

    def __init__(self, db_path: str) -> None:
        self.path = db_path + ".lock"
        self._fd: int | None = None
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(f"{db_path}: another mixops is writing this database ({holder}); "
                                 "one writer per database: stop it first, or watch with `mixops gui --db`") from None
            raise
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, PRIVATE_MODE)
        info = {"pid": os.getpid(), "command": " ".join(["mixops", *sys.argv[1:]]), "host": socket.gethostname(),
                "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:
            pass        # a full disk: the lock holds all the same, a second writer is told "holder not recorded"
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent); the holder line is cleared so the file names nobody."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass                    # a full or read-only filesystem: the unlock below is what matters
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_holder(fd: int) -> str:
    """The holder as `pid 123 (mixops collect …) on host since 2026-12-01 20:30:00 UTC`, from the lock file."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        info = json.loads(text)
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info["since"])))
        return f"pid {int(info['pid'])} ({info['command']}) on {info['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return "holder not recorded yet"


def migrate(db: sqlite_utils.Database, path: str = "") -> None:
    """Apply the migrations the file has not seen, each in its own transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 and db.table_names() and "nodes" not in db.table_names():
        raise StoreError(f"{path}: not a mixops database (it has other tables)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this mixops ({SCHEMA_VERSION})")
    for step in range(version, SCHEMA_VERSION):
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise


class Store:
    """The one writer. Not thread-safe by design: call it from one thread (see WriterThread)."""

    def __init__(self, path: str, raw_retention_days: float = RAW_RETENTION_DAYS,
                 rollup_retention_days: float = ROLLUP_RETENTION_DAYS, lock: bool = True) -> None:
        """Open `path` for writing. `lock` (every collector, the demo build): take the database's writer lock
        first, so a second collector fails at once with the holder's name; lock=False for the short
        operator writes (an acknowledgement, a note, `check`'s host-key fault) that SQLite serialises."""
        self.path = path
        self.notices: list[str] = []        # what opening changed (a 0644 file made 0600), said once by the caller
        self._lock: WriterLock | None = None
        if lock and path != ":memory:":
            try:
                self._lock = WriterLock(path)
            except OSError as exc:
                raise StoreError(f"{path}: cannot take the writer lock {path}.lock: {exc.strerror or exc}") from exc
        try:
            self.db = connect(path, notices=self.notices)
        except BaseException:
            self._release()
            raise
        self.conn = self.db.conn
        self.busy_timeout_s = busy_timeout_s()
        self.raw_retention_days = raw_retention_days
        self.rollup_retention_days = rollup_retention_days
        try:
            self._card_ids: dict[tuple[str, int, int], int] = {
                (node, idx, -1 if chip is None else chip): cid
                for cid, node, idx, chip in self.conn.execute("SELECT id, node, idx, chip FROM cards")
            }
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"{path}: {exc}") from exc
        self._links = LinkBook(self.conn)       # the links' last state and counter totals (loaded on first use)
        self._next_expiry = 0.0
        # the longest write transaction of each kind (sweep, rollup, compaction, expiry, history, other): how
        # long this writer held the database's write lock at most (bench/store_vs_prometheus.py prints it)
        self.longest_tx_s: dict[str, float] = {}
        self.maintenance_budget_s = MAINTENANCE_BUDGET_S
        self.maintenance_problem: str | None = None     # why the last rollup/expiry failed (retried)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite), then release the writer lock."""
        try:
            self.conn.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def set_busy_timeout(self, seconds: float) -> None:
        """How long the next write waits for another process's lock (the collector shortens it while the
        database stays locked, so it keeps its sweep cadence and answers SIGTERM at once)."""
        self.conn.execute(f"PRAGMA busy_timeout = {int(max(0.0, seconds) * 1000)}")

    def sync_nodes(self, nodes: Iterable[tuple[str, str, int | None, str | None, int | None, str | None]]) -> None:
        """Insert or update the site's nodes (name, host, port, rack, slot, vendor); keeps their status."""
        with self._tx():
            self.conn.executemany(
                """INSERT INTO nodes(name, host, port, rack, slot, vendor) VALUES (?,?,?,?,?,?)
                   ON CONFLICT(name) DO UPDATE SET host=excluded.host, port=excluded.port,
                   rack=excluded.rack, slot=excluded.slot,
                   vendor=coalesce(excluded.vendor, nodes.vendor)""",
                list(nodes))

    def counter_baseline(self) -> dict[tuple[str, int, int, str], int]:
        """The last stored total of every card counter (console.counters compares sweeps with it)."""
        return {(str(n), int(i), int(c), str(k)): int(v)
                for n, i, c, k, v in self.conn.execute("SELECT node, idx, chip, name, value FROM card_counters")}

    def job_offsets(self) -> dict[str, int]:
        """Where each job's log was read up to."""
        return {str(j): int(o) for j, o in self.conn.execute("SELECT job, offset FROM job_logs")}

    def job_tracks(self) -> dict[str, str | None]:
        """Each job's continuity tracker state (JSON) as the last sweep left it."""
        return {str(j): t for j, t in self.conn.execute("SELECT name, track FROM jobs")}

    def interruption_cause(self, job: str, start: float, end: float) -> tuple[str | None, int | None]:
        """The fault on one of the job's nodes, and the incident, that explain a stop between start and end."""
        fault = self.conn.execute(
            """SELECT f.node, f.card_idx, f.code, f.message FROM faults f JOIN job_nodes j ON j.node = f.node
               WHERE j.job = ? AND f.ts BETWEEN ? AND ? AND f.action IN ('restart_job', 'reset_card', 'reboot_node',
               'isolate', 'replace') ORDER BY f.ts LIMIT 1""", (job, start, end)).fetchone()
        incident = self.conn.execute(
            """SELECT id, title FROM incidents WHERE opened_at BETWEEN ? AND ? AND source != 'job'
               AND (',' || replace(job, ' ', '') || ',') LIKE ('%,' || ? || ',%') AND severity IN ('P1', 'P2')
               ORDER BY opened_at LIMIT 1""", (start, end, job)).fetchone()
        cause = None
        if fault is not None:
            node, card, code, message = fault
            cause = f"{code} on {node}" + ("" if card is None else f" card {card}") + (f": {message}" if message else "")
        elif incident is not None:
            cause = str(incident[1])
        return cause, None if incident is None else int(incident[0])

    def link_failure(self, job: str, start: float, end: float) -> tuple[str, int | None] | None:
        """The first link of one of the job's nodes that went down or flapped between start and end, as an
        interruption's cause text, with its link incident (console.incidents) when one is open for it."""
        marks = ",".join("?" * len(FLAP_COUNTERS))
        row = self.conn.execute(
            f"""SELECT ts, code, node, card_idx, kind, link FROM (
                   SELECT e.ts, 'LINK-DOWN' AS code, e.node, e.card_idx, e.kind, e.link FROM link_events e
                   JOIN job_nodes j ON j.node = e.node WHERE j.job = ? AND e.state = 'down' AND e.ts BETWEEN ? AND ?
                   UNION ALL
                   SELECT d.ts, 'LINK-FLAPPING', l.node, l.card_idx, l.kind, l.link FROM link_counter_deltas d
                   JOIN links l ON l.id = d.link_id JOIN job_nodes j ON j.node = l.node
                   WHERE j.job = ? AND d.name IN ({marks}) AND d.ts BETWEEN ? AND ?)
                ORDER BY ts LIMIT 1""", (job, start, end, job, *sorted(FLAP_COUNTERS), start, end)).fetchone()
        if row is None:
            return None
        ts, code, node, card, kind, link = row
        key = f"link:{node}:{'-' if card is None else card}:{kind}:{link}"
        incident = self.conn.execute(
            "SELECT id FROM incidents WHERE source = 'link' AND key IN (?, ?) AND opened_at <= ? "
            "ORDER BY opened_at DESC LIMIT 1", (key, f"link:{node}:*", end)).fetchone()
        return (link_cause(str(code), str(node), card, str(kind), str(link), float(ts)),
                None if incident is None else int(incident[0]))

    def _link_caused(self, job: str, now: float, stop: Interruption, events: Sequence[tuple[float, str, int | None, str]]
                     ) -> Interruption:
        """A stop whose log shows a collective timeout, after a link of the job's nodes failed, has that link as
        its cause (a hardware fault found for it already stays the cause)."""
        end = (stop.detected_at or now) + 60.0
        collective = collective_failure(stop.cause) or any(
            kind == "fatal" and collective_failure(detail) and stop.stopped_at - 60.0 <= ts <= end
            for ts, kind, _step, detail in events) or self.conn.execute(
            "SELECT 1 FROM job_events WHERE job = ? AND kind = 'fatal' AND ts BETWEEN ? AND ? AND "
            "(detail LIKE 'nccl:%' OR detail LIKE 'hccl:%' OR detail LIKE 'cncl:%') LIMIT 1",
            (job, stop.stopped_at - 60.0, end)).fetchone() is not None
        by_link = stop.incident_id is not None and self.conn.execute(
            "SELECT 1 FROM incidents WHERE id = ? AND source = 'link'", (stop.incident_id,)).fetchone() is not None
        if not collective or not (stop.cause is None or collective_failure(stop.cause) or by_link):
            return stop             # a vendor fault (Xid 79, an HBM ECC alarm) found for the stop stays its cause
        found = self.link_failure(job, stop.stopped_at - LINK_LOOKBACK_S, end)
        if found is None:
            return stop
        cause, incident = found
        return replace(stop, cause=cause, incident_id=incident if incident is not None else stop.incident_id)

    def write_job(self, u: JobUpdate) -> None:
        """One job's read: new log events, committed checkpoints, the read offset, the continuity changes
        and the job's state, in one transaction."""
        u.changes.interruptions = [self._link_caused(u.job, u.now, i, u.events) for i in u.changes.interruptions]
        events = [e for e in u.events if e[1] != "progress"]
        progress = [e for e in u.events if e[1] == "progress"]
        if progress:
            events.append(max(progress, key=lambda e: e[0]))      # progress is kept once per read
        t = u.tracker
        with self._tx():
            self.conn.executemany("INSERT INTO job_events VALUES (?,?,?,?,?)",
                                  [(u.job, ts, kind, step, detail[:500]) for ts, kind, step, detail in events])
            self.conn.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)",
                                  [(u.job, step, ts, path) for step, ts, path in u.checkpoints])
            self.conn.execute(
                """INSERT INTO job_logs(job, offset, updated, problem, lines, unmatched) VALUES (?,?,?,?,?,?)
                   ON CONFLICT(job) DO UPDATE SET offset = excluded.offset, updated = excluded.updated,
                   problem = excluded.problem, lines = lines + excluded.lines,
                   unmatched = unmatched + excluded.unmatched""",
                (u.job, u.offset, u.now, u.problem, u.lines, u.unmatched))
            self.conn.executemany('INSERT INTO job_segments VALUES (?,?,?,?)',
                                  [(u.job, s.kind, s.start, s.end) for s in u.changes.segments])
            self.conn.executemany("DELETE FROM job_interruptions WHERE job = ? AND stopped_at = ?",
                                  [(u.job, at) for at in u.changes.withdrawn])
            self.conn.execute('DELETE FROM job_segments WHERE job = ? AND "end" IS NULL', (u.job,))
            self.conn.executemany('INSERT INTO job_segments VALUES (?,?,?,NULL)',
                                  [(u.job, s.kind, s.start) for s in t.open_segments()])
            self.conn.executemany(
                "INSERT OR REPLACE INTO job_interruptions VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(u.job, i.stopped_at, i.detected_at, i.resumed_at, i.last_step, i.resumed_from, i.lost_steps,
                  i.lost_s, i.cause, i.incident_id) for i in u.changes.interruptions])
            slurm_state, requeues = u.slurm if u.slurm is not None else (None, None)
            self.conn.execute(
                """INSERT INTO jobs(name, state, last_progress_at, last_step, first_progress_at, step_time_s,
                   stall_after_s, track, slurm_state, requeues) VALUES (?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(name) DO UPDATE SET state = excluded.state,
                   last_progress_at = excluded.last_progress_at, last_step = excluded.last_step,
                   first_progress_at = excluded.first_progress_at, step_time_s = excluded.step_time_s,
                   stall_after_s = excluded.stall_after_s, track = excluded.track,
                   slurm_state = coalesce(excluded.slurm_state, slurm_state),
                   requeues = coalesce(excluded.requeues, requeues)""",
                (u.job, u.state, t.last_at, t.last_step, t.first_at, t.step_time_s,
                 t.threshold_s if t.phase != "no data" else None, t.to_json(), slurm_state, requeues))

    def set_meta(self, values: dict[str, str]) -> None:
        """Site facts reports need without the site file (name, timezone, shifts as JSON)."""
        with self._tx():
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    def sync_jobs(self, jobs_of: dict[str, list[str]]) -> None:
        """Record which nodes each site job runs on (for incidents and reports)."""
        with self._tx():
            self.conn.execute("DELETE FROM job_nodes")
            self.conn.executemany("INSERT OR IGNORE INTO job_nodes VALUES (?, ?)",
                                  [(job, node) for node, jobs in jobs_of.items() for job in jobs])

    def cursors(self) -> dict[str, float]:
        """Kernel-log cursors per node, so a restarted collector does not report events twice."""
        return {n: c for n, c in self.conn.execute(
            "SELECT name, kmsg_cursor FROM nodes WHERE kmsg_cursor IS NOT NULL")}

    def batch(self) -> _Transaction:
        """One transaction around several writes (every job of a sweep; demo history)."""
        return _Transaction(self.conn)

    def _tx(self, kind: str = "other") -> _Transaction:
        return _Transaction(self.conn, self.longest_tx_s, kind)

    def write_sweep(self, started: float, finished: float, reports: Sequence[NodeReport],
                    stale: Sequence[str] = (), stats: SweepStats | None = None,
                    cursors: dict[str, float] | None = None,
                    counters: Sequence[tuple[str, int, int, str, int, float]] = (),
                    extra_faults: Sequence[tuple[float, str, int | None, str | None, str, str, str, str]] = ()
                    ) -> int:
        """Write one sweep in one transaction; returns the sweep id. `counters` are the card counters whose
        total changed: (node, idx, chip or -1, name, value, ts); `extra_faults` are fault rows (ts, node,
        card_idx, vendor, code, severity, action, message) carried from a sweep that could not be kept.

        Nothing of a failed write stays behind, in the file or in this object (the card-id cache learns
        new cards only once they are committed), so the same sweep can be written again later."""
        stats = stats or SweepStats()
        conn = self.conn
        added: dict[tuple[str, int, int], int] = {}
        try:
            with self._tx("sweep"):
                db_mib = self.size_mib()
                ok = sum(1 for r in reports if r.ok)
                ncards = sum(len(r.cards) for r in reports)
                cur = conn.execute(
                    """INSERT INTO sweeps(started, finished, duration_s, nodes_ok, nodes_failed, nodes_stale,
                       cards, collector_cpu_pct, collector_rss_mib, db_size_mib) VALUES (?,?,?,?,?,?,?,?,?,?)""",
                    (started, finished, finished - started, ok, len(reports) - ok, len(stale), ncards,
                     stats.cpu_pct, stats.rss_mib, db_mib))
                sweep_id = int(cur.lastrowid or 0)
                sample_rows: list[tuple[object, ...]] = []
                new_cards: list[tuple[str, int, int | None, str | None, str | None, str | None, str | None,
                                      float, float]] = []
                seen_cards: list[tuple[float, int]] = []
                for r in reports:
                    if not r.ok:
                        continue
                    for c in r.cards:
                        key = (r.node, c.index, -1 if c.chip is None else c.chip)
                        if key not in self._card_ids and key not in added:
                            added[key] = 0
                            new_cards.append((r.node, c.index, c.chip, r.vendor, c.model, c.serial, c.bus_id,
                                              r.started, r.started))
                for row in new_cards:
                    cur = conn.execute(
                        """INSERT INTO cards(node, idx, chip, vendor, model, serial, bus_id, first_seen, last_seen)
                           VALUES (?,?,?,?,?,?,?,?,?)""", row)
                    chip = row[2]
                    added[(row[0], row[1], -1 if chip is None else chip)] = int(cur.lastrowid or 0)
                for r in reports:
                    if not r.ok:
                        continue
                    for c in r.cards:
                        key = (r.node, c.index, -1 if c.chip is None else c.chip)
                        cid = added[key] if key in added else self._card_ids[key]
                        seen_cards.append((r.started, cid))
                        sample_rows.append((cid, r.started, c.temperature_c, c.utilization_pct,
                                            c.memory_used_mib, c.memory_total_mib, c.power_w,
                                            c.health.value, c.ecc_uncorrected))
                conn.executemany("INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)", sample_rows)
                conn.executemany("UPDATE cards SET last_seen = ? WHERE id = ?", seen_cards)
                self._write_outcomes(sweep_id, reports, stale, cursors or {})
                conn.executemany("INSERT OR REPLACE INTO card_counters VALUES (?,?,?,?,?,?)", counters)
                conn.executemany(
                    """INSERT INTO faults(ts, node, card_idx, vendor, code, severity, action, message)
                       VALUES (?,?,?,?,?,?,?,?)""", extra_faults)
                link_changes = self._links.write(reports)
        except sqlite3.Error as exc:
            self._links.forget()            # the cache may hold rows the rollback took back: reload next time
            raise StoreError(f"{self.path}: cannot write sweep: {error_text(exc)}") from exc
        self._links.commit(link_changes)
        self._card_ids.update(added)
        try:
            self._maintain(finished)
        except sqlite3.Error as exc:
            # The sweep is committed; rollups and expiry are retried at the next sweep (a full disk, a lock)
            self.maintenance_problem = error_text(exc)
        else:
            self.maintenance_problem = None
        return sweep_id

    def _write_outcomes(self, sweep_id: int, reports: Sequence[NodeReport], stale: Sequence[str],
                        cursors: dict[str, float]) -> None:
        conn = self.conn
        # only the nodes that did not answer: an ok outcome is counted in the sweep's row (nodes_ok) and
        # the node's own row (last_seen, last_duration_s). One row per node per sweep cost more than the
        # compressed samples themselves at 10 s (160 nodes: ~6 bytes per card-sample).
        conn.executemany(
            "INSERT INTO node_outcomes VALUES (?,?,?,?,?,?,?)",
            [(sweep_id, r.node, "failed", r.duration_s, len(r.cards), len(r.warnings), r.error)
             for r in reports if not r.ok] + [(sweep_id, n, "stale", None, 0, 0, None) for n in stale])
        conn.executemany(
            """UPDATE nodes SET status = 'ok', last_seen = ?, last_attempt = ?, last_error = NULL,
               last_duration_s = ?, vendor = coalesce(?, vendor) WHERE name = ?""",
            [(r.started, r.started, r.duration_s, r.vendor, r.node) for r in reports if r.ok])
        conn.executemany(
            """UPDATE nodes SET status = 'failed', last_attempt = ?, last_error = ?, last_duration_s = ?,
               vendor = coalesce(?, vendor) WHERE name = ?""",
            [(r.started, r.error, r.duration_s, r.vendor, r.node) for r in reports if not r.ok])
        conn.executemany("UPDATE nodes SET status = 'stale' WHERE name = ? AND status != 'failed'",
                         [(n,) for n in stale])
        conn.executemany("UPDATE nodes SET kmsg_cursor = ? WHERE name = ?",
                         [(c, n) for n, c in cursors.items()])
        faults = [(f.ts if f.ts is not None else r.started, r.node, f.card_index, r.vendor, f.code,
                   f.severity.value, f.action.value, f.message) for r in reports for f in r.faults]
        conn.executemany(
            """INSERT INTO faults(ts, node, card_idx, vendor, code, severity, action, message)
               VALUES (?,?,?,?,?,?,?,?)""", faults)
        raw = [(r.started, r.node, r.vendor, section, "; ".join(r.warnings)[:2000] or r.error,
                text[:RAW_TEXT_LIMIT])
               for r in reports if r.raw for section, text in r.raw.items()]
        conn.executemany(
            "INSERT INTO raw_outputs(ts, node, vendor, section, warning, text) VALUES (?,?,?,?,?,?)", raw)

    def add_fault(self, ts: float, node: str, code: str, severity: str, action: str, message: str,
                  vendor: str | None = None, card_idx: int | None = None) -> None:
        """Record one fault outside a sweep (e.g. a changed host key seen by `check`)."""
        with self._tx():
            self.conn.execute(
                """INSERT INTO faults(ts, node, card_idx, vendor, code, severity, action, message)
                   VALUES (?,?,?,?,?,?,?,?)""", (ts, node, card_idx, vendor, code, severity, action, message))

    def size_mib(self) -> float | None:
        """Size of the DB file plus its WAL."""
        if self.path == ":memory:":
            return None
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total / 1048576

    # ---- maintenance: rollups, compaction, expiry; a few cards or rows per transaction ------------------

    def _maintain(self, now: float) -> None:
        """After each sweep's write: roll finished hours up, move finished hours of the head into chunks and
        drop what is past retention, in short transactions until `maintenance_budget_s` is spent (the rest
        waits for the next sweep). No transaction holds the writer long: a card batch, a bounded delete."""
        deadline = time.perf_counter() + self.maintenance_budget_s
        while time.perf_counter() < deadline:
            if not self.maintenance_step(now):
                return

    def maintenance_step(self, now: float) -> bool:
        """One transaction of maintenance work; False when there is nothing to do now."""
        return self._rollup_step(now) or self._compact_step(now) or self._expire_step(now)

    def _meta_float(self, key: str) -> float | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else None

    def _first_hour_from(self, t: float) -> float | None:
        """The hour of the oldest head row at or after t (skips hours the collector did not run)."""
        row = self.conn.execute("SELECT min(ts) FROM samples WHERE ts >= ?", (t,)).fetchone()
        return None if row[0] is None else float(row[0]) - float(row[0]) % HOUR

    def _cursor(self, hour_key: str, card_key: str) -> tuple[float, int] | None:
        """Where a card-batch pass over the head stands: (hour, first card id of the next batch). At the
        start of an hour it skips ahead to the next hour that has rows; None when the head has none left."""
        hour = self._meta_float(hour_key)
        card = int(self._meta_float(card_key) or 0)
        if hour is None or card == 0:
            nxt = self._first_hour_from(hour if hour is not None else 0.0)
            if nxt is None:
                return None
            hour = nxt if hour is None else max(nxt, hour)
        return hour - hour % HOUR, card

    def _max_card(self) -> int:
        return int(self.conn.execute("SELECT ifnull(max(id), 0) FROM cards").fetchone()[0])

    def _rollup_step(self, now: float) -> bool:
        """Roll one batch of cards of the oldest finished hour not yet rolled up."""
        at = self._cursor("rolled_until", "rolling_card")
        if at is None:
            return False
        hour, card = at
        if hour + HOUR > now:
            return False                                 # the hour is not finished
        last = card + ROLLUP_CARDS
        done = last > self._max_card()
        with self._tx("rollup"):
            self.conn.executemany(_ROLLUP_SQL, [(hour, c, hour, hour + HOUR) for c in range(card, last)])
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [("rolled_until", str(hour + HOUR if done else hour)),
                                   ("rolling_card", str(0 if done else last))])
        return True

    def _compact_step(self, now: float) -> bool:
        """Move one batch of cards' samples of one finished, rolled-up hour from the head into chunks."""
        # every hour before rolled_until is rolled up (the one it names may be half done): only those move
        rolled = self._meta_float("rolled_until") or 0.0
        cutoff = min(rolled - rolled % HOUR, now - now % HOUR - KEEP_RAW_S)
        at = self._cursor("compact_hour", "compact_card")
        if at is None:
            return False
        hour, card = at
        if hour >= cutoff:
            return False
        last = card + COMPACT_CARDS
        done = last > self._max_card()
        conn = self.conn
        latest = {int(cid): float(ts) for cid, ts in conn.execute(
            """SELECT id, (SELECT max(ts) FROM samples WHERE card_id = cards.id) FROM cards
               WHERE id >= ? AND id < ?""", (card, last)) if ts is not None}
        existing = {int(cid): blob for cid, blob in conn.execute(
            "SELECT card_id, data FROM sample_chunks WHERE hour = ? AND card_id >= ? AND card_id < ?",
            (hour, card, last))}
        chunks: list[tuple[int, float, int, float, float, bytes]] = []
        rollups: list[tuple[object, ...]] = []
        deletes: list[tuple[int, float, float]] = []
        for cid, newest in latest.items():
            # the newest row of a card stays in the head (latest_samples reads it there)
            bound = min(hour + HOUR, newest)
            rows = conn.execute(f"{HEAD_SELECT} WHERE card_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
                                (cid, hour, bound)).fetchall()
            if not rows:
                continue
            cols = head_columns(rows)
            old = existing.get(cid)
            if old is not None:
                try:
                    cols = merge(decode(old), cols)
                except ChunkError:
                    pass                 # a damaged chunk is replaced by what the head still has
                rollups.append(rollup_row(cid, hour, cols))
            chunks.append((cid, hour, len(cols), float(cols.ts[0]), float(cols.ts[-1]), encode(cols)))
            deletes.append((cid, hour, bound))
        with self._tx("compaction"):
            conn.executemany("DELETE FROM sample_chunks WHERE card_id = ? AND hour = ?",
                             [(c[0], c[1]) for c in chunks])
            conn.executemany("INSERT INTO sample_chunks(card_id, hour, n, first_ts, last_ts, data) VALUES (?,?,?,?,?,?)",
                             chunks)
            conn.executemany(f"INSERT OR REPLACE INTO rollups_hourly VALUES ({','.join('?' * 16)})", rollups)
            conn.executemany("DELETE FROM samples WHERE card_id = ? AND ts >= ? AND ts < ?", deletes)
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [("compact_hour", str(hour + HOUR if done else hour)),
                              ("compact_card", str(0 if done else last))])
        return True

    def _expire_step(self, now: float) -> bool:
        """Drop one bounded batch of what is past retention (checked every 5 minutes once caught up)."""
        if now < self._next_expiry:
            return False
        raw_cut = now - self.raw_retention_days * 86400
        roll_cut = now - self.rollup_retention_days * 86400
        limit = EXPIRE_ROWS
        deleted = 0
        with self._tx("expiry"):
            for sql, cut in (
                    ("DELETE FROM sample_chunks WHERE rowid IN "
                     "(SELECT rowid FROM sample_chunks WHERE hour < ? LIMIT ?)", raw_cut - HOUR),
                    ("DELETE FROM samples WHERE rowid IN (SELECT rowid FROM samples WHERE ts < ? LIMIT ?)", raw_cut),
                    ("DELETE FROM rollups_hourly WHERE (card_id, hour) IN "
                     "(SELECT card_id, hour FROM rollups_hourly WHERE hour < ? LIMIT ?)", roll_cut),
                    ("DELETE FROM raw_outputs WHERE id IN (SELECT id FROM raw_outputs WHERE ts < ? LIMIT ?)", raw_cut),
                    ("DELETE FROM link_counter_deltas WHERE rowid IN (SELECT rowid FROM link_counter_deltas "
                     "WHERE ts < ? LIMIT ?)", raw_cut),
                    ("DELETE FROM node_outcomes WHERE (sweep_id, node) IN (SELECT sweep_id, node FROM node_outcomes "
                     "WHERE sweep_id < (SELECT ifnull(min(id), 0) FROM sweeps WHERE started >= ?) LIMIT ?)", raw_cut),
                    # progress points feed the tracker only; segments and interruptions keep the job's history
                    ("DELETE FROM job_events WHERE rowid IN (SELECT rowid FROM job_events "
                     "WHERE ts < ? AND kind = 'progress' LIMIT ?)", raw_cut)):
                deleted += int(self.conn.execute(sql, (cut, limit)).rowcount)
        if deleted < limit:
            self._next_expiry = now + 300.0          # caught up: look again in 5 minutes
        return deleted > 0

    def write_history(self, hour: float, cards: dict[int, Columns]) -> None:
        """Write one finished hour of known cards' samples straight into chunks and rollups, in one
        transaction: the fast path for an importer or a bench that fills days of history (the chunks and
        rollups are what compaction would have made of the same samples written sweep by sweep), with a
        `sweeps` row for each sampling time."""
        if hour % HOUR:
            raise ValueError(f"hour {hour} is not on an hour boundary")
        chunks: list[tuple[int, float, int, float, float, bytes]] = []
        rollups: list[tuple[object, ...]] = []
        for cid, cols in cards.items():
            if not len(cols):
                continue
            if float(cols.ts.min()) < hour or float(cols.ts.max()) >= hour + HOUR:
                raise ValueError(f"card {cid}: samples outside the hour {hour}")
            order = np.argsort(cols.ts, kind="stable")
            cols = cols.select(order) if not bool((order == np.arange(len(cols))).all()) else cols
            chunks.append((cid, hour, len(cols), float(cols.ts[0]), float(cols.ts[-1]), encode(cols)))
            rollups.append(rollup_row(cid, hour, cols))
        # the sweeps that took these samples, so coverage and collector gaps read the hour as they would have
        # from live sweeps: one row per sampling time not already recorded, its card count; what the samples do
        # not tell (nodes answering, duration, the collector's CPU) stays NULL
        times = [c.ts for c in cards.values() if len(c)]
        sweeps: list[tuple[float, float, int]] = []
        if times:
            stamps, counts = np.unique(np.concatenate(times), return_counts=True)
            known = {float(r[0]) for r in self.conn.execute(
                "SELECT started FROM sweeps WHERE started >= ? AND started < ?", (hour, hour + HOUR))}
            sweeps = [(float(t), float(t), int(n)) for t, n in zip(stamps, counts, strict=True) if float(t) not in known]
        try:
            with self._tx("history"):
                self.conn.executemany("INSERT INTO sweeps(started, finished, cards) VALUES (?,?,?)", sweeps)
                self.conn.executemany("DELETE FROM sample_chunks WHERE card_id = ? AND hour = ?",
                                      [(c[0], c[1]) for c in chunks])
                self.conn.executemany(
                    "INSERT INTO sample_chunks(card_id, hour, n, first_ts, last_ts, data) VALUES (?,?,?,?,?,?)", chunks)
                self.conn.executemany(f"INSERT OR REPLACE INTO rollups_hourly VALUES ({','.join('?' * 16)})", rollups)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write history: {error_text(exc)}") from exc

    def maintain(self, now: float | None = None, budget_s: float = 600.0) -> None:
        """Run maintenance until caught up or `budget_s` is spent (tests, the demo build, a bench)."""
        now = time.time() if now is None else now
        self._next_expiry = 0.0
        deadline = time.perf_counter() + budget_s
        while time.perf_counter() < deadline and self.maintenance_step(now):
            pass

    def rollup(self, now: float | None = None) -> int:
        """Roll up every finished hour not yet rolled up (in card batches); returns rollup rows written."""
        now = time.time() if now is None else now
        before = self.conn.execute("SELECT count(*) FROM rollups_hourly").fetchone()[0]
        for _ in range(1_000_000):              # bounded: one step per card batch and hour
            if not self._rollup_step(now):
                break
        return int(self.conn.execute("SELECT count(*) FROM rollups_hourly").fetchone()[0]) - int(before)

    def compact(self, now: float | None = None) -> None:
        """Move every finished, rolled-up hour of the head (but the last KEEP_RAW_S) into chunks."""
        now = time.time() if now is None else now
        for _ in range(10_000_000):
            if not self._compact_step(now):
                break

    def expire(self, now: float | None = None) -> None:
        """Delete raw samples, chunks and rollups older than their retention (in bounded batches)."""
        now = time.time() if now is None else now
        self._next_expiry = 0.0
        for _ in range(10_000_000):
            if not self._expire_step(now):
                break
            self._next_expiry = 0.0


_ROLLUP_SQL = """INSERT OR REPLACE INTO rollups_hourly
    SELECT card_id, ?, count(*),
           min(temperature_c), avg(temperature_c), max(temperature_c),
           min(utilization_pct), avg(utilization_pct), max(utilization_pct),
           min(memory_used_mib), avg(memory_used_mib), max(memory_used_mib),
           min(power_w), avg(power_w), max(power_w),
           CASE max(CASE health WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'unknown' THEN 1 ELSE 0 END)
                WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' WHEN 1 THEN 'unknown' ELSE 'ok' END
    FROM samples WHERE card_id = ? AND ts >= ? AND ts < ? HAVING count(*) > 0"""
_WORST = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}
_RANK = np.array([0, 2, 3, 1], dtype=np.int8)      # HEALTH order ok, warning, critical, unknown → rank


def merge(a: Columns, b: Columns) -> Columns:
    """Two sets of one card's samples as one, sorted, a timestamp present in both kept once (b's)."""
    both = Columns.concat([a, b])
    if len(both) < 2:
        return both
    keep = np.ones(len(both), dtype=bool)
    keep[:-1] = both.ts[1:] != both.ts[:-1]
    return both.select(keep)


def rollup_row(card_id: int, hour: float, cols: Columns) -> tuple[object, ...]:
    """The rollups_hourly row of one card-hour, from its samples (what _ROLLUP_SQL computes from rows)."""
    out: list[object] = [card_id, hour, len(cols)]
    for name in ("temperature_c", "utilization_pct", "memory_used_mib", "power_w"):
        v = cols.values[name]
        v = v[~np.isnan(v)]
        out += [float(v.min()), float(v.mean()), float(v.max())] if v.size else [None, None, None]
    codes = cols.values["health"].astype(np.int64).clip(0, 3)
    rank = int(_RANK[codes].max()) if codes.size else 0
    out.append({0: "ok", 1: "unknown", 2: "warning", 3: "critical"}[rank])
    return tuple(out)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error; inside an open transaction it joins that one."""

    def __init__(self, conn: sqlite3.Connection, longest: dict[str, float] | None = None, kind: str = "") -> None:
        self.conn = conn
        self.joined = False
        self.longest = longest
        self.kind = kind
        self.t0 = 0.0

    def __enter__(self) -> None:
        self.joined = self.conn.in_transaction
        if not self.joined:
            self.conn.execute("BEGIN IMMEDIATE")
            self.t0 = time.perf_counter()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.joined:
            return                  # the outer transaction commits or rolls back
        if exc_type is None:
            self.conn.execute("COMMIT")
            if self.longest is not None:
                held = time.perf_counter() - self.t0
                if held > self.longest.get(self.kind, 0.0):
                    self.longest[self.kind] = held
        elif self.conn.in_transaction:
            # SQLite has already rolled back after SQLITE_FULL or an I/O error; a ROLLBACK then would fail
            # with "no transaction is active" and hide the real cause
            self.conn.execute("ROLLBACK")


def error_text(exc: BaseException) -> str:
    """sqlite3's message for the operator, skipping a "cannot rollback" that only followed the real error."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:       # a short chain; bounded all the same
        text = str(cause)
        if isinstance(cause, sqlite3.Error) and not text.startswith("cannot rollback"):
            return text
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return str(exc)
