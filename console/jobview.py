"""Training jobs as the panel, the timeline and the report show them, read from the stored continuity model.

Everything comes from `jobs`, `job_segments`, `job_interruptions`, `checkpoints` and `incidents` with one
query per table for all jobs, so 20 jobs × 15 days cost a few thousand rows, never the raw progress.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from console import continuity
from console.fmt import vendor_label


@dataclass(frozen=True, slots=True)
class Marker:
    """A fault or incident drawn on a job's lane."""

    ts: float
    severity: str
    title: str
    incident_id: int | None


@dataclass(slots=True)
class JobRow:
    """One job: the panel's line and the timeline's lane."""

    name: str
    mix: list[tuple[str, int]]      # (vendor, cards) on the job's nodes, most cards first
    state: str
    model: continuity.JobModel
    problem: str | None = None
    slurm_state: str | None = None
    requeues: int | None = None
    lines: int = 0
    unmatched: int = 0
    checkpoints: list[tuple[float, int]] = field(default_factory=list)     # in the window, for ticks
    markers: list[Marker] = field(default_factory=list)

    @property
    def cards(self) -> int:
        return sum(n for _, n in self.mix)

    @property
    def vendors(self) -> str:
        """E.g. "NVIDIA 512 · Ascend 256 · MetaX 256"."""
        return " · ".join(f"{vendor_label(v)} {n}" for v, n in self.mix)


@dataclass(frozen=True, slots=True)
class ReadStats:
    """How much a read cost (bench/continuity.py prints it)."""

    rows: int


def read_jobs(conn: sqlite3.Connection, now: float, window_s: float = 30 * 86400,
              stats: list[ReadStats] | None = None) -> list[JobRow]:
    """Every job with its continuity model; segments, ticks and markers within [now − window_s, now]."""
    since = now - window_s
    try:
        jobs = conn.execute(
            """SELECT name, state, last_progress_at, last_step, first_progress_at, step_time_s, stall_after_s,
                      slurm_state, requeues FROM jobs ORDER BY name""").fetchall()
    except sqlite3.OperationalError:
        return []                   # a database from before the continuity tables
    rows = len(jobs)
    mix: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for job, vendor, n in conn.execute(
            """SELECT j.job, c.vendor, count(*) FROM job_nodes j JOIN cards c ON c.node = j.node
               GROUP BY 1, 2 ORDER BY 1, 3 DESC"""):
        mix[job].append((vendor, int(n)))
        rows += 1
    segments: dict[str, list[continuity.Segment]] = defaultdict(list)
    for job, kind, start, end in conn.execute(
            'SELECT job, kind, start, "end" FROM job_segments WHERE "end" IS NULL OR "end" >= ?', (since,)):
        segments[job].append(continuity.Segment(kind, start, end))
        rows += 1
    stops: dict[str, list[continuity.Interruption]] = defaultdict(list)
    for r in conn.execute(
            """SELECT job, stopped_at, detected_at, resumed_at, last_step, resumed_from, lost_steps, lost_s, cause,
                      incident_id FROM job_interruptions ORDER BY stopped_at"""):
        stops[r[0]].append(continuity.Interruption(*r[1:]))
        rows += 1
    ckpts: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for job, ts, step in conn.execute("SELECT job, ts, step FROM checkpoints WHERE ts IS NOT NULL ORDER BY ts"):
        ckpts[job].append((float(ts), int(step)))
        rows += 1
    logs = {r[0]: r[1:] for r in conn.execute("SELECT job, problem, lines, unmatched FROM job_logs")}
    rows += len(logs)
    markers: dict[str, list[Marker]] = defaultdict(list)
    names = {str(j[0]) for j in jobs}
    for ts, severity, title, ident, job_list in conn.execute(
            "SELECT opened_at, severity, title, id, job FROM incidents WHERE job IS NOT NULL AND opened_at >= ? "
            "AND severity IN ('P1', 'P2') ORDER BY opened_at", (since,)):
        rows += 1
        for job in str(job_list).replace(" ", "").split(","):
            if job in names:
                markers[job].append(Marker(float(ts), str(severity), str(title), int(ident)))
    out: list[JobRow] = []
    for name, state, last_at, last_step, first_at, step_time, stall_after, slurm_state, requeues in jobs:
        parts = mix.get(name, [])
        cards = sum(n for _, n in parts)
        model = continuity.summarize(
            name, now, state=state, first_at=first_at,
            last=None if last_at is None or last_step is None else (float(last_at), int(last_step)),
            step_time_s=step_time, threshold_s=stall_after, segments=segments.get(name, []),
            interruptions=stops.get(name, []), checkpoints=ckpts.get(name, []), cards=cards)
        problem, lines, unmatched = logs.get(name, (None, 0, 0))
        out.append(JobRow(name, parts, state or "no data",
                          model, problem, slurm_state, requeues, int(lines or 0), int(unmatched or 0),
                          [c for c in ckpts.get(name, []) if c[0] >= since], markers.get(name, [])))
    if stats is not None:
        stats.append(ReadStats(rows))
    return out
