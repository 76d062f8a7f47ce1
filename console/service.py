"""The sweep service: every node in worker threads, one store transaction per sweep."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psutil

from collectors import jobs, registry, slurm
from collectors.model import Command, NodeReport
from collectors.node import NodeCollector, Session, sweep_window
from collectors.ssh import Endpoint
from console import continuity, counters
from console import store as store_mod
from console.incidents import IncidentEngine, thresholds_from
from console.promsource import PromNodeCollector, PromSource
from console.site import Site, job_nodes, source_nodes
from console.store import Store, StoreError, SweepStats, error_text

# While the database cannot be written (another process holds its write lock, the disk is full) a long-running
# collector keeps sweeping and holds the sweeps in memory, written in order once it can. The bound is in rows
# (one per card sample and one per node outcome), not in sweeps, so memory stays bounded at any site size:
# 200,000 rows are ~60 MB; 33 min of a 1,000-card site at 10 s, 3 min of a 10,000-card one. Past it the oldest
# held sweep's samples go, its faults and counter totals are carried into the next held sweep.
HOLD_ROWS = 200_000

FaultRow = tuple[float, str, int | None, str | None, str, str, str, str]


@dataclass(frozen=True, slots=True)
class SweepSummary:
    """What one sweep did, for the CLI line and the GUI status bar."""

    sweep_id: int
    started: float
    duration_s: float
    reports: tuple[NodeReport, ...]
    stale: tuple[str, ...]
    new_incidents: tuple[int, ...] = ()
    store_problem: str | None = None    # why this sweep is held in memory, not written (None: written)
    held: int = 0                       # sweeps held in memory after this one (0 when all are written)
    written: int = 1                    # sweeps written now (more than 1 when held ones caught up)
    dropped: int = 0                    # held sweeps whose samples had to go since the trouble began

    @property
    def failed(self) -> tuple[NodeReport, ...]:
        """Reports of the nodes that failed."""
        return tuple(r for r in self.reports if not r.ok)


@dataclass(slots=True)
class _Held:
    """One sweep not yet fully stored: its write, its jobs' read (newest sweep only), its incidents."""

    started: float
    finished: float
    reports: list[NodeReport]
    stale: tuple[str, ...]
    stats: SweepStats
    cursors: dict[str, float]
    changed: list[tuple[str, int, int, str, int, float]]
    readers: dict[str, str]
    extra_faults: list[FaultRow]
    sweep_id: int | None = None         # set once the sweep is committed
    stopped: list[tuple[str, str, str]] | None = None     # set once its jobs are stored

    @property
    def rows(self) -> int:
        return len(self.reports) + len(self.stale) + sum(len(r.cards) for r in self.reports)


def _fault_rows(report: NodeReport) -> list[FaultRow]:
    return [(f.ts if f.ts is not None else report.started, report.node, f.card_index, report.vendor, f.code,
             f.severity.value, f.action.value, f.message) for f in report.faults]


def _zone(name: str | None) -> tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


class Collector:
    """Owns one NodeCollector per node; each sweep fans out over a bounded thread pool."""

    def __init__(self, site: Site, store: Store, max_parallel: int | None = None,
                 session_factory: Callable[[Endpoint], Session] | None = None,
                 clock: Callable[[], float] = time.time, incidents: bool = True, hold_rows: int = 0) -> None:
        """`hold_rows` > 0: a sweep the store cannot write is held in memory (up to that many rows, see
        HOLD_ROWS) and written later, and sweep() reports the trouble instead of raising StoreError."""
        self.site = site
        self.store = store
        self.clock = clock
        registry.register_adapters(site.adapters)
        cursors = store.cursors()
        self._counters = store.counter_baseline()
        self.nodes: dict[str, NodeCollector | PromNodeCollector] = {}
        # nodes of a [[sources]] entry are read from that Prometheus (one query per sweep for all of them)
        owner = source_nodes(site)
        self._sources: list[PromSource] = []
        by_index: dict[int, PromSource] = {}
        for i, src in enumerate(site.sources):
            members = [n for n in site.nodes if owner.get(n.name) == i]
            if members:
                by_index[i] = PromSource(src, members, site.interval_s, clock)
                self._sources.append(by_index[i])
        for n in site.nodes:
            if n.name in owner:
                self.nodes[n.name] = PromNodeCollector(by_index[owner[n.name]], n, cursors.get(n.name),
                                                       self._counters, clock)
                continue
            endpoint = site.endpoint(n)
            session = session_factory(endpoint) if session_factory is not None else None
            self.nodes[n.name] = NodeCollector(endpoint, n.vendor, cursors.get(n.name), session, clock)
        workers = max(1, min(max_parallel or site.ssh.max_parallel, len(self.nodes) or 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mixops-node")
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        jobs_of: dict[str, list[str]] = {}
        for job in site.jobs:
            for node in job_nodes(site, job):
                jobs_of.setdefault(node.name, []).append(job.name)
        self._jobs_of = jobs_of
        self.engine: IncidentEngine | None = IncidentEngine(
            store.conn, rack_of={n.name: n.rack for n in site.nodes}, jobs_of=jobs_of,
            thresholds=thresholds_from(site.thresholds)) if incidents else None
        self._readers: dict[str, str] = {}
        self._down: set[str] = set()
        self._tz = _zone(site.timezone)
        self._proc = psutil.Process(os.getpid())
        self._proc.cpu_percent(None)
        self.hold_rows = hold_rows
        self._held: deque[_Held] = deque()
        self._dropped = 0
        self._synced = False
        self.start_problem: str | None = None      # why the site's rows could not be written at start
        try:
            self._sync_site()
        except (StoreError, sqlite3.Error) as exc:
            if not hold_rows:
                self.close()
                raise
            # a restart on a still-full disk: the rows are written before the first held sweep, which
            # reports the same trouble
            self.start_problem = error_text(exc)

    def _sync_site(self) -> None:
        """The site's nodes, jobs and facts into the store (before any sweep of it is written)."""
        site, store = self.site, self.store
        with store.batch():
            store.sync_nodes((n.name, n.host, n.port, n.rack, n.slot, n.vendor) for n in site.nodes)
            store.sync_jobs(self._jobs_of)
            store.set_meta({"site_name": site.name, "timezone": site.timezone,
                            "shifts": json.dumps([[sh.name, sh.start, sh.hours] for sh in site.shifts])})
        self._synced = True

    def _plan_jobs(self) -> None:
        """Each job's log, checkpoint listing and Slurm record are read on one of its nodes: the first that
        answered last sweep, from the log offset reached."""
        for nc in self.nodes.values():
            nc.extra_commands = ()
        offsets = self.store.job_offsets()
        self._readers = {}
        for i, job in enumerate(self.site.jobs):
            if job.log is None and job.checkpoint_dir is None and job.slurm_job is None:
                continue
            # a job's files are read over SSH: a node read from a Prometheus source is never its reader
            every = [n.name for n in job_nodes(self.site, job)]
            members = [m for m in every if isinstance(self.nodes.get(m), NodeCollector)]
            if not members:
                if every:               # _jobs_after_sweep says why it cannot be read
                    self._readers[job.name] = every[0]
                continue
            reader = next((m for m in members if m not in self._down), members[0])
            self._readers[job.name] = reader
            extra: list[Command] = []
            if job.log:
                extra.append(Command(f"job{i}.log", jobs.log_command(job.log, offsets.get(job.name, 0))))
            if job.checkpoint_dir:
                extra.append(Command(f"job{i}.ckpt", jobs.listing_command(job.checkpoint_dir)))
            if job.slurm_job:
                extra.append(Command(f"job{i}.slurm", slurm.command(job.slurm_job)))
            self.nodes[reader].extra_commands += tuple(extra)

    def _jobs_after_sweep(self, now: float, reports: Sequence[NodeReport],
                          readers: dict[str, str]) -> list[tuple[str, str, str]]:
        """Hand each job's outputs from its reader node (as planned for that sweep) to update_jobs."""
        by_node = {r.node: r for r in reports}
        outputs: dict[str, str] = {}
        problems: dict[str, str] = {}
        for i, job in enumerate(self.site.jobs):
            reader = readers.get(job.name)
            if reader is None:
                continue
            report = by_node.get(reader)
            if isinstance(self.nodes.get(reader), PromNodeCollector):
                problems[job.name] = "cannot read: its nodes are read from a Prometheus source, and a job's log " \
                                     "and checkpoints need one node reached by SSH"
                continue
            if report is None or not report.ok:
                problems[job.name] = f"cannot read: {reader} did not answer"
                continue
            outputs.update((k, v) for k, v in report.extra.items() if k.startswith(f"job{i}."))
        return self._update_jobs_with(now, outputs, problems, readers)

    def update_jobs(self, now: float, outputs: dict[str, str],
                    problems: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
        """Parse each job's new log lines, checkpoint listing and Slurm record (outputs keyed `job<i>.log`,
        `.ckpt`, `.slurm`), advance its continuity tracker to `now` and store it all. Returns the jobs that
        are stopped as (job, state, evidence) for the incident engine."""
        return self._update_jobs_with(now, outputs, problems or {}, self._readers)

    def _update_jobs_with(self, now: float, outputs: dict[str, str], problems: dict[str, str],
                          readers: dict[str, str]) -> list[tuple[str, str, str]]:
        with self.store.batch():
            return self._update_jobs(now, outputs, problems, readers)

    def _update_jobs(self, now: float, outputs: dict[str, str], problems: dict[str, str],
                     readers: dict[str, str]) -> list[tuple[str, str, str]]:
        tracks = self.store.job_tracks()
        offsets = self.store.job_offsets()
        stopped: list[tuple[str, str, str]] = []
        for i, job in enumerate(self.site.jobs):
            if job.name not in readers and not any(k.startswith(f"job{i}.") for k in outputs):
                continue
            tracker = continuity.Tracker.from_json(tracks.get(job.name))
            problem = problems.get(job.name)
            offset = offsets.get(job.name, 0)
            u = store_mod.JobUpdate(job.name, now, offset, problem, "cannot read", tracker, continuity.Changes())
            if problem is None and job.log:
                chunk = jobs.parse_log_chunk(outputs.get(f"job{i}.log", ""), offset)
                if not chunk.readable:
                    u.problem = f"cannot read log {job.log}"
                else:
                    u.offset = chunk.next_offset
                    parsed = jobs.parse_log(chunk.text, job.framework, job.progress_regex, self._tz)
                    u.events = jobs.with_times(parsed.events, now)
                    u.lines, u.unmatched = parsed.lines, parsed.unmatched
                    u.changes = tracker.advance(u.events, now)
                    if tracker.phase == "no data" and (parsed.lines or offset):
                        u.problem = "no progress pattern recognised in the log (set framework or progress_regex)"
            if problem is None and job.checkpoint_dir:
                listing = jobs.parse_listing(outputs.get(f"job{i}.ckpt", "MIXOPS-NO-DIR"))
                if not listing.readable:
                    u.problem = "; ".join(p for p in (u.problem, f"cannot read checkpoint dir {job.checkpoint_dir}") if p)
                base = job.checkpoint_dir.rstrip("/")          # the listing names entries relative to it
                u.checkpoints = [(c.step, c.ts, f"{base}/{c.path}") for c in listing.checkpoints if c.complete]
            if problem is None and job.slurm_job:
                record = slurm.parse(outputs.get(f"job{i}.slurm", ""))
                if record is not None:
                    u.slurm = (record.state, record.requeues)
            for k, stop in enumerate(u.changes.interruptions):
                if stop.cause is None or stop.incident_id is None:
                    cause, incident = self.store.interruption_cause(job.name, stop.stopped_at - 300.0,
                                                                    (stop.resumed_at or now) + 60.0)
                    u.changes.interruptions[k] = replace(stop, cause=cause or stop.cause, incident_id=incident)
            if u.problem is not None and "cannot read" in u.problem:
                u.state = "cannot read"
            elif u.problem is not None and tracker.phase == "no data":
                u.state = "no progress pattern"
            else:
                u.state = tracker.phase
            if tracker.stop is not None and u.state in ("stalled", "down", "resuming"):
                stop_now = tracker.stop
                stopped.append((job.name, u.state, f"no progress since step {stop_now.last_step} "
                                f"({now - stop_now.stopped_at:.0f} s)" + (f"; {stop_now.cause}" if stop_now.cause else "")))
            self.store.write_job(u)
        return stopped

    def close(self) -> None:
        """Stop the workers and close every session."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for node in self.nodes.values():
            node.close()
        for source in self._sources:
            source.close()

    def _end_node(self, name: str) -> NodeReport:
        try:
            return self.nodes[name].end()
        finally:
            with self._busy_lock:
                self._busy.discard(name)

    def sweep(self, on_report: Callable[[NodeReport], None] | None = None) -> SweepSummary:
        """One pass over the site. A node still busy from an earlier sweep is reported stale."""
        started = self.clock()
        with self._busy_lock:
            # source nodes last: their query runs meanwhile, and a slow source never holds up reading an SSH
            # node's answer past that node's deadline (collectors.node.sweep_window reads in order)
            todo = sorted((n for n in self.nodes if n not in self._busy),
                          key=lambda n: isinstance(self.nodes[n], PromNodeCollector))
            stale = tuple(n for n in self.nodes if n in self._busy)
            self._busy.update(todo)
        # Two phases: send the nodes their sweep first, then read the answers, so the nodes work at once
        # however few worker threads there are (at most SEND_WINDOW in flight: collectors.node.sweep_window).
        self._plan_jobs()
        for source in self._sources:       # one query per source, answered while the SSH nodes work
            source.start()
        reports: list[NodeReport] = []
        for report in sweep_window(self._pool, todo, lambda name: self.nodes[name].begin(), self._end_node):
            reports.append(report)
            if on_report is not None:
                on_report(report)
        finished = max(self.clock(), started)
        mem = self._proc.memory_info().rss / 1048576
        stats = SweepStats(cpu_pct=self._proc.cpu_percent(None), rss_mib=mem)
        cursors = {name: nc.cursor for name, nc in self.nodes.items()}
        # running totals become their increase: a standing ECC count is no new fault at every sweep or start
        changed: list[tuple[str, int, int, str, int, float]] = []
        for nc in self.nodes.values():
            if isinstance(nc, PromNodeCollector):
                changed += nc.take_changes()         # Xid and error-code baselines of source nodes
        for k, report in enumerate(reports):
            reports[k], deltas = counters.apply(report, self._counters)
            changed += [(d.node, d.idx, d.chip, d.name, d.value, d.ts) for d in deltas]
        self._down = {r.node for r in reports if not r.ok}
        self._held.append(_Held(started, finished, reports, stale, stats, cursors, changed, dict(self._readers), []))
        self._bound_held()
        try:
            sweep_id, written, new = self._write_held()
        except (StoreError, sqlite3.Error) as exc:
            if not self.hold_rows:
                self._held.clear()
                if isinstance(exc, StoreError):
                    raise
                raise StoreError(f"{self.store.path}: {error_text(exc)}") from exc
            problem = error_text(exc.__cause__ or exc) if isinstance(exc, StoreError) else error_text(exc)
            return SweepSummary(0, started, finished - started, tuple(reports), stale, (), problem,
                                len(self._held), 0, self._dropped)
        dropped, self._dropped = self._dropped, 0
        return SweepSummary(sweep_id, started, finished - started, tuple(reports), stale, tuple(new), None, 0,
                            written, dropped)

    @property
    def held(self) -> int:
        """Sweeps held in memory, not yet stored."""
        return len(self._held)

    def flush(self) -> str | None:
        """Try once more to store the held sweeps (at shutdown); None when none is left, else why not."""
        if not self._held:
            return None
        try:
            self._write_held()
        except StoreError as exc:
            return error_text(exc.__cause__ or exc)
        except sqlite3.Error as exc:
            return error_text(exc)
        return None

    def _write_held(self) -> tuple[int, int, list[int]]:
        """Store the held sweeps in order: the sweep, then (newest only) its jobs, then its incidents. Each
        step commits on its own, and a held sweep remembers the steps done, so a retry repeats none."""
        if not self._synced:
            self._sync_site()
        newest = self._held[-1]
        sweep_id, written = 0, 0
        new: list[int] = []
        for _ in range(len(self._held)):
            h = self._held[0]
            if h.sweep_id is None:
                h.sweep_id = self.store.write_sweep(h.started, h.finished, h.reports, h.stale, h.stats, h.cursors,
                                                    h.changed, h.extra_faults)
            if h.stopped is None:
                # Job logs are read from the stored offset, which held sweeps did not advance: the newest
                # sweep's read covers the older ones', so only its read is stored (no line counted twice).
                h.stopped = self._jobs_after_sweep(h.finished, h.reports, h.readers) if h is newest else []
            if self.engine is not None:
                new += self.engine.process(h.finished, h.reports, h.stale, h.stopped)
            self._held.popleft()
            sweep_id, written = h.sweep_id, written + 1
        return sweep_id, written, new

    def _bound_held(self) -> None:
        """Keep the held sweeps within hold_rows: the oldest unwritten one gives up its samples, and its faults
        and counter totals move into the next held sweep (so no fault is lost, and totals stay in order)."""
        for _ in range(len(self._held)):
            if len(self._held) < 2 or sum(h.rows for h in self._held) <= max(self.hold_rows, 1):
                return
            old = self._held.popleft()
            self._dropped += 1
            if old.sweep_id is not None:
                continue                    # stored already: only its incidents are lost
            nxt = self._held[0]
            carried = list(old.extra_faults)
            for r in old.reports:
                if not r.faults:
                    continue
                k = next((i for i, n in enumerate(nxt.reports) if n.node == r.node), None)
                if k is None:
                    carried += _fault_rows(r)
                else:
                    timed = tuple(replace(f, ts=f.ts if f.ts is not None else r.started) for f in r.faults)
                    nxt.reports[k] = replace(nxt.reports[k], faults=timed + nxt.reports[k].faults)
            nxt.extra_faults = carried + nxt.extra_faults
            nxt.changed = old.changed + nxt.changed      # written in order: the newer total wins
