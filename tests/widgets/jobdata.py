"""A real SQLite database (the store's schema) holding training jobs with known segments, checkpoints,
interruptions and incidents, read back as the window reads it (console.jobview.read_jobs)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from console.jobview import JobRow, read_jobs
from console.store import Store

NOW = 1_800_000_000.0
DAY = 86400.0
CKPT_EVERY_S = 1800.0           # dense ticks: 48 a day, ~1.4 px apart at 15 days on a 1,000 px plot


@dataclass(frozen=True, slots=True)
class Story:
    """Where the test's things are (unix s)."""

    outage_at: float            # a 3-minute down, then 4 minutes resuming, on the first job
    outage_incident_at: float   # a P1 drawn over that outage
    incident_at: float          # a P1 alone, days away from any outage
    stall_at: float             # a 10-minute stall on the second job


def build(path: Path, jobs: int = 3, now: float = NOW) -> Story:
    """Write `jobs` jobs (the first three with the story's stops) into a new database at `path`."""
    story = Story(outage_at=now - 5 * DAY, outage_incident_at=now - 5 * DAY + 60.0, incident_at=now - 9 * DAY,
                  stall_at=now - 12 * DAY)
    store = Store(str(path))
    store.close()
    conn = sqlite3.connect(path)
    with conn:
        start = now - 30 * DAY
        for j in range(jobs):
            name = ("llm-70b-mix", "moe-16b-sft", "vlm-7b-pt")[j] if j < 3 else f"job-{j:02d}"
            node = f"gpu-{j:02d}"
            conn.execute("INSERT INTO job_nodes(job, node) VALUES (?, ?)", (name, node))
            for idx in range(8):
                conn.execute("INSERT INTO cards(node, idx, vendor, model, serial) VALUES (?, ?, ?, 'X', ?)",
                             (node, idx, ("nvidia", "ascend", "cambricon")[j % 3], f"SN{j}-{idx}"))
            stops: list[tuple[float, float, float]] = []      # (stopped_at, resumed_at, down length)
            if j == 0:
                stops.append((story.outage_at, story.outage_at + 420.0, 180.0))
            if j == 1:
                stops.append((story.stall_at, story.stall_at + 600.0, 600.0))
            t = start
            for stopped, resumed, down in stops:
                conn.execute('INSERT INTO job_segments(job, kind, start, "end") VALUES (?, ?, ?, ?)',
                             (name, "running", t, stopped))
                kind = "down" if j == 0 else "stalled"
                conn.execute('INSERT INTO job_segments(job, kind, start, "end") VALUES (?, ?, ?, ?)',
                             (name, kind, stopped, stopped + down))
                if resumed > stopped + down:
                    conn.execute('INSERT INTO job_segments(job, kind, start, "end") VALUES (?, ?, ?, ?)',
                                 (name, "resuming", stopped + down, resumed))
                conn.execute(
                    "INSERT INTO job_interruptions(job, stopped_at, detected_at, resumed_at, last_step, resumed_from,"
                    " lost_steps, lost_s, cause) VALUES (?, ?, ?, ?, 1000, 900, 100, 300.0, ?)",
                    (name, stopped, stopped + 90.0, resumed,
                     "NCCL watchdog timeout (gpu-00 card 3)" if j == 0 else None))
                t = resumed
            conn.execute('INSERT INTO job_segments(job, kind, start, "end") VALUES (?, ?, ?, NULL)', (name, "running", t))
            step, ts = 0, start + CKPT_EVERY_S
            while ts < now:
                step += 100
                if not any(s <= ts <= r for s, r, _ in stops):
                    conn.execute("INSERT INTO checkpoints(job, step, ts, path) VALUES (?, ?, ?, ?)",
                                 (name, step, ts, f"/ckpt/{name}/iter_{step:07d}"))
                    conn.execute('INSERT INTO job_segments(job, kind, start, "end") VALUES (?, ?, ?, ?)',
                                 (name, "checkpointing", ts - 60.0, ts))
                ts += CKPT_EVERY_S
            conn.execute("INSERT INTO jobs(name, state, last_progress_at, last_step, first_progress_at, step_time_s,"
                         " stall_after_s) VALUES (?, 'running', ?, ?, ?, 10.0, 300.0)",
                         (name, now - 12.0, step + 50, start))
            if j == 0:
                for at, title in ((story.outage_incident_at, "gpu-00 card 3: Xid 79"),
                                  (story.incident_at, "gpu-00: not answering")):
                    conn.execute("INSERT INTO incidents(opened_at, severity, state, title, node, job) "
                                 "VALUES (?, 'P1', 'resolved', ?, 'gpu-00', ?)", (at, title, name))
    conn.close()
    return story


def rows(path: Path, now: float = NOW) -> list[JobRow]:
    """The jobs as the snapshot reader gives them to the Jobs tab."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return read_jobs(conn, now)
    finally:
        conn.close()
