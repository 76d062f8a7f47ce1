"""The sweep service: every node in worker threads, one store transaction per sweep."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil

from collectors import jobs, registry
from collectors.model import Command, NodeReport
from collectors.node import NodeCollector, Session
from collectors.ssh import Endpoint
from console import continuity
from console.incidents import IncidentEngine, thresholds_from
from console.site import Site, job_nodes
from console.store import Store, SweepStats


@dataclass(frozen=True, slots=True)
class SweepSummary:
    """What one sweep did, for the CLI line and the GUI status bar."""

    sweep_id: int
    started: float
    duration_s: float
    reports: tuple[NodeReport, ...]
    stale: tuple[str, ...]
    new_incidents: tuple[int, ...] = ()

    @property
    def failed(self) -> tuple[NodeReport, ...]:
        """Reports of the nodes that failed."""
        return tuple(r for r in self.reports if not r.ok)


class Collector:
    """Owns one NodeCollector per node; each sweep fans out over a bounded thread pool."""

    def __init__(self, site: Site, store: Store, max_parallel: int | None = None,
                 session_factory: Callable[[Endpoint], Session] | None = None,
                 clock: Callable[[], float] = time.time, incidents: bool = True) -> None:
        self.site = site
        self.store = store
        self.clock = clock
        registry.register_adapters(site.adapters)
        cursors = store.cursors()
        store.sync_nodes((n.name, n.host, n.port, n.rack, n.slot, n.vendor) for n in site.nodes)
        self.nodes: dict[str, NodeCollector] = {}
        for n in site.nodes:
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
        store.sync_jobs(jobs_of)
        store.set_meta({"site_name": site.name, "timezone": site.timezone,
                        "shifts": json.dumps([[sh.name, sh.start, sh.hours] for sh in site.shifts])})
        self.engine: IncidentEngine | None = IncidentEngine(
            store.conn, rack_of={n.name: n.rack for n in site.nodes}, jobs_of=jobs_of,
            thresholds=thresholds_from(site.thresholds)) if incidents else None
        self._proc = psutil.Process(os.getpid())
        self._proc.cpu_percent(None)

    def _plan_jobs(self) -> None:
        """Each job's log and checkpoint listing are read on its first node, from the offset reached."""
        for nc in self.nodes.values():
            nc.extra_commands = ()
        offsets = self.store.job_offsets()
        for i, job in enumerate(self.site.jobs):
            members = job_nodes(self.site, job)
            if not members or (job.log is None and job.checkpoint_dir is None):
                continue
            nc = self.nodes[members[0].name]
            extra: list[Command] = []
            if job.log:
                extra.append(Command(f"job{i}.log", jobs.log_command(job.log, offsets.get(job.name, 0))))
            if job.checkpoint_dir:
                extra.append(Command(f"job{i}.ckpt", jobs.listing_command(job.checkpoint_dir)))
            nc.extra_commands += tuple(extra)

    def _jobs_after_sweep(self, now: float, reports: Sequence[NodeReport]) -> None:
        """Parse each job's new log lines and checkpoint listing; store events, checkpoints and state."""
        by_node = {r.node: r for r in reports}
        offsets = self.store.job_offsets()
        for i, job in enumerate(self.site.jobs):
            members = job_nodes(self.site, job)
            if not members or (job.log is None and job.checkpoint_dir is None):
                continue
            report = by_node.get(members[0].name)
            if report is None or not report.ok:
                continue
            offset = offsets.get(job.name, 0)
            problem: str | None = None
            events: list[tuple[float, str, int | None, str]] = []
            if job.log:
                chunk = jobs.parse_log_chunk(report.extra.get(f"job{i}.log", ""), offset)
                if not chunk.readable:
                    problem = f"cannot read log {job.log}"
                else:
                    offset = chunk.next_offset
                    parsed = jobs.parse_log(chunk.text, job.framework, job.progress_regex)
                    events = [(e.ts if e.ts is not None else now, e.kind, e.step, e.detail) for e in parsed.events]
                    if parsed.lines and not any(e.kind == "progress" for e in parsed.events) and \
                            self.store.job_last_progress(job.name) is None:
                        problem = "no progress pattern recognised in the log (set framework or progress_regex)"
            checkpoints: list[tuple[int, float, str]] = []
            if job.checkpoint_dir:
                listing = jobs.parse_listing(report.extra.get(f"job{i}.ckpt", ""))
                if not listing.readable:
                    problem = f"cannot read checkpoint dir {job.checkpoint_dir}"
                checkpoints = [(c.step, c.ts, c.path) for c in listing.checkpoints if c.complete]
            progress = [(ts, step) for ts, kind, step, _ in events if kind == "progress" and step is not None]
            last = max(progress) if progress else self.store.job_last_progress(job.name)
            state = "cannot read" if problem and problem.startswith("cannot") else \
                "no data" if last is None else "running"
            if last is not None and state == "running":
                recent = self.store.job_progress(job.name, now - 86400) + progress
                state = continuity.build(job.name, recent, now).state
            self.store.write_job(job.name, now, offset, problem, events, checkpoints,
                                 (state, None if last is None else float(last[0]),
                                  None if last is None else int(last[1])))

    def close(self) -> None:
        """Stop the workers and close every session."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for node in self.nodes.values():
            node.close()

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
            todo = [n for n in self.nodes if n not in self._busy]
            stale = tuple(n for n in self.nodes if n in self._busy)
            self._busy.update(todo)
        # Two phases: send every node its sweep first, then read the answers, so the nodes all work
        # at once however few worker threads there are.
        self._plan_jobs()
        list(self._pool.map(lambda name: self.nodes[name].begin(), todo))
        reports: list[NodeReport] = []
        for report in self._pool.map(self._end_node, todo):
            reports.append(report)
            if on_report is not None:
                on_report(report)
        finished = max(self.clock(), started)
        mem = self._proc.memory_info().rss / 1048576
        stats = SweepStats(cpu_pct=self._proc.cpu_percent(None), rss_mib=mem)
        cursors = {name: nc.cursor for name, nc in self.nodes.items()}
        sweep_id = self.store.write_sweep(started, finished, reports, stale, stats, cursors)
        self._jobs_after_sweep(finished, reports)
        new = self.engine.process(finished, reports, stale) if self.engine else []
        return SweepSummary(sweep_id, started, finished - started, tuple(reports), stale, tuple(new))
