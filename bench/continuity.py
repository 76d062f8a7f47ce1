"""Continuity model cost: building every job's model and its timeline data from the database.

    python bench/continuity.py [--jobs 20] [--days 15] [--repeat 5]

Writes `--jobs` simulated jobs × `--days` of training (Megatron and DeepSpeed logs with crashes, hangs and
checkpoints, read every 10 minutes through the collector's job path into a real SQLite file), then times
`console.jobview.read_jobs`, which returns every job's continuity model (ETTR, runs, checkpoints, flags)
and its lane (segments, checkpoint ticks, markers). Baseline, same run and file: fetching the same rows
with bare `SELECT`s and no model. Also prints the rows read.

Goal (issue 5): ≤ 200 ms for 20 jobs × 15 days.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import jobs as jobs_mod  # noqa: E402
from console import jobview, simjobs  # noqa: E402
from console.service import Collector  # noqa: E402
from console.site import Job, Node, Site, SSHDefaults  # noqa: E402
from console.store import Store  # noqa: E402

TABLES = ("SELECT * FROM jobs", 'SELECT * FROM job_segments', "SELECT * FROM job_interruptions",
          "SELECT * FROM checkpoints", "SELECT * FROM job_logs", "SELECT * FROM incidents WHERE job IS NOT NULL",
          "SELECT j.job, c.vendor, count(*) FROM job_nodes j JOIN cards c ON c.node = j.node GROUP BY 1, 2")


def build(path: str, n_jobs: int, days: float, now: float) -> tuple[int, float]:
    nodes = tuple(Node(f"n{j}-{k}", "127.0.0.1", None, None, None, "nvidia", None)
                  for j in range(n_jobs) for k in range(8))
    site_jobs = tuple(Job(f"job-{j:02d}", tuple(f"n{j}-{k}" for k in range(8)), f"/ckpt/job-{j:02d}",
                          f"/logs/job-{j:02d}.log", "megatron" if j % 2 == 0 else "deepspeed", None)
                      for j in range(n_jobs))
    site = Site("<bench>", "bench", "Asia/Shanghai", 10.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"),
                (), nodes, site_jobs, ())
    sims = [simjobs.SimJob(simjobs.JobSpec(j.name, j.framework or "megatron", j.nodes, dict.fromkeys(j.nodes, "nvidia"),
                                           j.log or "", j.checkpoint_dir or "", step_s=4.0 + j_i % 3,
                                           log_every=10, ckpt_every=300, save_s=40.0,
                                           mtbf_s=(0.5 + j_i % 4) * 86400.0, hang_share=0.3, seed=j_i),
                           now - days * 86400.0, ZoneInfo("Asia/Shanghai"))
            for j_i, j in enumerate(site_jobs)]
    store = Store(path)
    collector = Collector(site, store, session_factory=lambda ep: None, incidents=False)
    t0 = time.perf_counter()
    reads = 0
    t = now - days * 86400.0 + 600.0
    while t <= now:
        offsets = store.job_offsets()
        outputs = {}
        for i, sim in enumerate(sims):
            outputs[f"job{i}.log"] = sim.log_output(offsets.get(sim.spec.name, 0), t, jobs_mod.LOG_CAP_BYTES)
            outputs[f"job{i}.ckpt"] = sim.listing_output(t)
        with store.batch():
            collector.update_jobs(t, outputs)
        reads += 1
        t += 600.0
    collector.close()
    store.close()
    return reads, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--days", type=float, default=15.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "continuity.db")
        reads, build_s = build(path, args.jobs, args.days, now)
        print(f"built {args.jobs} jobs x {args.days:g} days: {reads} reads per job through the collector's job path "
              f"in {build_s:.1f} s ({1000 * build_s / (reads * args.jobs):.2f} ms per job-read)")
        import sqlite3

        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        model_ms, raw_ms, rows = [], [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for q in TABLES:
                conn.execute(q).fetchall()
            raw_ms.append(1000 * (time.perf_counter() - t0))
            stats: list[jobview.ReadStats] = []
            t0 = time.perf_counter()
            result = jobview.read_jobs(conn, now, stats=stats)
            model_ms.append(1000 * (time.perf_counter() - t0))
            rows = stats[0].rows
        stops = sum(len(r.model.interruptions) for r in result)
        segs = sum(len(r.model.segments) for r in result)
        m, b = statistics.median(model_ms), statistics.median(raw_ms)
        print(f"rows read: {rows:,} ({segs:,} segments, {stops} interruptions, "
              f"{sum(len(r.checkpoints) for r in result):,} checkpoint ticks)")
        print(f"models + timeline data for {len(result)} jobs: {m:.1f} ms (median of {args.repeat}); "
              f"bare SELECT of the same tables: {b:.1f} ms; ratio {m / b:.2f}")
        print(f"goal <= 200 ms: {'met' if m <= 200 else 'NOT met'}")


if __name__ == "__main__":
    main()
