"""The sweep service: every node in worker threads, one store transaction per sweep."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil

from collectors import registry
from collectors.model import NodeReport
from collectors.node import NodeCollector, Session
from collectors.ssh import Endpoint
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
        new = self.engine.process(finished, reports, stale, self.store.card_ids) if self.engine else []
        return SweepSummary(sweep_id, started, finished - started, tuple(reports), stale, tuple(new))
