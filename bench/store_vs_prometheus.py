"""The sample store at a real site's cadence against Prometheus's TSDB, same samples, same run (issue 17).

    python bench/store_vs_prometheus.py [--cards 1280 10240] [--hours 2] [--days 7] [--skip-full]

1. Size. For each card count, `--hours` of samples every 10 s (each node's cards share its sweep's
   timestamp; values as vendors print them: whole °C and %, MiB, W to 0.01, a noisy power draw) are
   written into a mixops database sweep by sweep through `Store.write_sweep` (the collector's path, with
   its maintenance after every sweep), then the store is brought to rest (every finished hour compacted).
   The same samples are exported with `mixops export --format openmetrics` and backfilled into a
   Prometheus TSDB with `promtool tsdb create-blocks-from openmetrics` (Debian package `prometheus`).
   Printed: bytes per card-sample of both (the database's pages in use, and its whole file; the whole TSDB
   directory) and the ratio
   (goal <= 1.0, stretch <= 0.5), the longest write transaction of each kind (goal: maintenance <= 200 ms).
2. Reads on a full database (`--days`, 7 by default, of 10,240 cards at 10 s: the older hours written
   through `Store.write_history`, the last two hours sweep by sweep): its size per card-sample, the room
   (`read_snapshot`, goal <= 100 ms), card detail 1 h / 24 h / 7 d (goal <= 50 ms each), the 8-hour shift
   report PDF (goal <= 10 s) and the incident engine per sweep against the store's write of that sweep
   (goal <= 0.5x). The full database is kept in --work and reused when its parameters match.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.model import CardSample, Health, NodeReport  # noqa: E402
from console.chunks import Columns  # noqa: E402
from console.store import Store  # noqa: E402

INTERVAL = 10.0
PER_NODE = 8
HOUR = 3600.0
HEALTHS = (Health.OK, Health.WARNING, Health.CRITICAL, Health.UNKNOWN)


class Site:
    """A hall of `cards` NVIDIA-like cards whose readings move as real ones do (seeded, vectorised)."""

    def __init__(self, cards: int, seed: int = 17) -> None:
        self.cards = cards
        self.nodes = cards // PER_NODE
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.busy = rng.random(cards) < 0.85                         # most cards train, some idle
        self.temp = np.where(self.busy, rng.uniform(58, 72, cards), rng.uniform(32, 40, cards))
        self.mem = np.where(self.busy, np.round(rng.uniform(60_000, 78_000, cards)), 0.0)
        self.offset = np.round(rng.uniform(0.0, 2.0, self.nodes), 3)  # when each node answers in a sweep

    def sweep(self, t: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One sweep at t: per-card timestamps and values (NaN: not reported)."""
        rng, n = self.rng, self.cards
        self.temp += rng.normal(0, 0.35, n) + 0.02 * (np.where(self.busy, 65.0, 36.0) - self.temp)
        util = np.where(self.busy, np.clip(np.round(rng.normal(96, 3, n)), 0, 100), 0.0)
        jobs_change = rng.random(n) < 0.0005
        self.mem = np.where(jobs_change, np.round(rng.uniform(60_000, 78_000, n)), self.mem)
        power = np.round(np.where(self.busy, rng.normal(560, 28, n), rng.normal(72, 3, n)), 2)
        ts = t + np.repeat(self.offset, PER_NODE)
        health = np.zeros(n, dtype=np.uint8)
        health[rng.random(n) < 0.0002] = 1
        return ts, {"temperature_c": np.round(self.temp), "utilization_pct": util, "memory_used_mib": self.mem.copy(),
                    "memory_total_mib": np.full(n, 81_559.0), "power_w": power, "health": health,
                    "ecc_uncorrected": np.zeros(n)}


def reports(site: Site, t: float) -> tuple[list[NodeReport], np.ndarray, dict[str, np.ndarray]]:
    """The sweep as the collector hands it to the store."""
    ts, v = site.sweep(t)
    out: list[NodeReport] = []
    temp, util, mem, total, power = (v[k].tolist() for k in ("temperature_c", "utilization_pct", "memory_used_mib",
                                                            "memory_total_mib", "power_w"))
    health = v["health"].tolist()
    for node in range(site.nodes):
        base = node * PER_NODE
        cards = tuple(CardSample(index=j, model="NVIDIA H800", serial=f"1650{base + j:09d}", health=HEALTHS[health[base + j]],
                                 temperature_c=temp[base + j], utilization_pct=util[base + j],
                                 memory_used_mib=mem[base + j], memory_total_mib=total[base + j],
                                 power_w=power[base + j], ecc_uncorrected=0)
                      for j in range(PER_NODE))
        out.append(NodeReport(f"gpu-{node:05d}", True, float(ts[base]), 0.2, "nvidia", cards, (), (), None))
    return out, ts, v


def fresh_store(path: Path, site: Site) -> Store:
    for suffix in ("", "-wal", "-shm", ".lock"):
        try:
            os.remove(f"{path}{suffix}")
        except FileNotFoundError:
            pass
    store = Store(str(path))
    store.set_meta({"site_name": "bench hall", "timezone": "Asia/Shanghai", "shifts": "[]"})
    store.sync_nodes([(f"gpu-{i:05d}", "127.0.0.1", 22, f"R{i // 8:04d}", i % 8 + 1, "nvidia")
                      for i in range(site.nodes)])
    return store


def file_bytes(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


def used_bytes(path: Path) -> int:
    """Bytes of the pages in use: the file less its free pages (pages freed by the head's rows moving into
    chunks, which the next hour's rows reuse: a running store's file stays at about this plus one head)."""
    conn = sqlite3.connect(path)
    pages, free, size = (int(conn.execute(f"PRAGMA {p}").fetchone()[0]) for p in ("page_count", "freelist_count",
                                                                                  "page_size"))
    conn.close()
    return (pages - free) * size


def checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def sweeps_through_store(store: Store, site: Site, start: float, count: int) -> dict[str, float]:
    """`count` sweeps through write_sweep with maintenance after each, as the collector runs."""
    writes: list[float] = []
    for k in range(count):
        reps, _ts, _v = reports(site, start + k * INTERVAL)
        t0 = time.perf_counter()
        store.write_sweep(start + k * INTERVAL, start + k * INTERVAL + 1.0, reps)
        writes.append(time.perf_counter() - t0)
    return {"write_median_s": statistics.median(writes), "write_max_s": max(writes)}


def prometheus_bytes(db: Path, work: Path) -> tuple[int, int]:
    """Backfill the database's samples into a TSDB; returns (TSDB bytes, OpenMetrics bytes)."""
    om = work / "samples.om"
    tsdb = work / "tsdb"
    shutil.rmtree(tsdb, ignore_errors=True)
    subprocess.run([sys.executable, str(ROOT / "main.py"), "export", "--db", str(db), "--format", "openmetrics",
                    "--out", str(om)], check=True, capture_output=True, text=True)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om), str(tsdb)],
                   check=True, capture_output=True, text=True)
    size = sum(f.stat().st_size for f in tsdb.rglob("*") if f.is_file())
    om_size = om.stat().st_size
    om.unlink()
    return size, om_size


def size_run(cards: int, hours: float, work: Path) -> dict[str, object]:
    site = Site(cards)
    db = work / f"size-{cards}.db"
    store = fresh_store(db, site)
    start = 1_790_000_000.0 - 1_790_000_000.0 % HOUR
    n = int(hours * HOUR / INTERVAL)
    t0 = time.perf_counter()
    writes = sweeps_through_store(store, site, start, n)
    write_s = time.perf_counter() - t0
    store.maintain(start + hours * HOUR + 2 * HOUR + 60)     # at rest: every finished hour in chunks
    longest = dict(store.longest_tx_s)
    samples = int(store.conn.execute("SELECT ifnull(sum(n), 0) FROM sample_chunks").fetchone()[0]) + int(
        store.conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    chunk_bytes = int(store.conn.execute("SELECT ifnull(sum(length(data)), 0) FROM sample_chunks").fetchone()[0])
    store.close()
    checkpoint(db)
    mixops = used_bytes(db)
    prom, om = prometheus_bytes(db, work)
    return {"cards": cards, "hours": hours, "card_samples": samples, "mixops_bytes": mixops,
            "mixops_file_bytes": file_bytes(db),
            "mixops_per_sample": mixops / samples, "chunk_data_per_sample": chunk_bytes / samples,
            "prometheus_bytes": prom, "prometheus_per_sample": prom / samples, "ratio": mixops / prom,
            "openmetrics_bytes": om, "write_s": write_s, **writes, "longest_tx_s": longest}


# ---- 2. reads on a full database -------------------------------------------------------------------

def full_db(path: Path, cards: int, days: float) -> tuple[float, Store | None]:
    """A database of `days` at 10 s (end time returned); built when missing or of other parameters."""
    meta = path.with_suffix(".json")
    want = {"cards": cards, "days": days, "version": 1}
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get("params") == want:
        return float(json.loads(meta.read_text())["end"]), None
    site = Site(cards, seed=5)
    store = fresh_store(path, site)
    end = 1_790_000_000.0 - 1_790_000_000.0 % HOUR + days * 86400
    hist_end = end - 2 * HOUR
    first = end - days * 86400
    # register the cards through a real sweep, then the older hours straight into chunks
    reps, _ts, _v = reports(site, first)
    store.write_sweep(first, first + 1.0, reps)
    ids = [cid for (cid,) in store.conn.execute("SELECT id FROM cards ORDER BY id")]
    per_hour = int(HOUR / INTERVAL)
    t0 = time.perf_counter()
    hour = first
    while hour < hist_end:
        ts = np.empty((per_hour, cards))
        vals: dict[str, np.ndarray] = {}
        for k in range(per_hour):
            t_k, v = site.sweep(hour + k * INTERVAL)
            ts[k] = t_k
            for name, col in v.items():
                vals.setdefault(name, np.empty((per_hour, cards), dtype=col.dtype))[k] = col
        if hour == first:
            ts, vals = ts[1:], {k: v[1:] for k, v in vals.items()}     # the registering sweep holds the first
        store.write_history(hour, {cid: Columns(ts[:, i].copy(), {k: v[:, i].copy() for k, v in vals.items()})
                                   for i, cid in enumerate(ids)})
        hour += HOUR
        done = (hour - first) / (hist_end - first)
        print(f"\r  building the {days:g}-day database: {done * 100:5.1f} % ({time.perf_counter() - t0:.0f} s)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [("rolled_until", str(hist_end)), ("rolling_card", "0"),
                            ("compact_hour", str(hist_end)), ("compact_card", "0")])
    sweeps_through_store(store, site, hist_end, int(2 * HOUR / INTERVAL))
    meta.write_text(json.dumps({"params": want, "end": end}))
    return end, store


def _median_ms(fn, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def reads_run(cards: int, days: float, work: Path) -> dict[str, object]:
    from console.incidents import IncidentEngine
    from console.live import open_readonly, read_history, read_snapshot

    path = work / f"full-{cards}-{days:g}d.db"
    end, store = full_db(path, cards, days)
    if store is None:
        store = Store(str(path))
    site = Site(cards, seed=5)
    # the incident engine on a live sweep against the store's write of that same sweep
    engine = IncidentEngine(store.conn)
    store.maintenance_budget_s = 0.0
    write_s, engine_s = [], []
    for k in range(5):
        t = end + k * INTERVAL
        reps, _ts, _v = reports(site, t)
        t0 = time.perf_counter()
        store.write_sweep(t, t + 1.0, reps)
        t1 = time.perf_counter()
        engine.process(t + 1.0, reps)
        write_s.append(t1 - t0)
        engine_s.append(time.perf_counter() - t1)
    samples = int(store.conn.execute("SELECT ifnull(sum(n), 0) FROM sample_chunks").fetchone()[0]) + int(
        store.conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    store.close()
    checkpoint(path)
    size = file_bytes(path)
    conn = open_readonly(str(path))
    now = end + 5 * INTERVAL
    out: dict[str, object] = {"cards": cards, "days": days, "card_samples": samples, "bytes": size,
                              "per_sample": size / samples,
                              "room_ms": _median_ms(lambda: read_snapshot(conn, INTERVAL, now=now))}
    ids = [cid for (cid,) in conn.execute("SELECT id FROM cards ORDER BY random() LIMIT 7")]
    for label, span in (("detail_1h_ms", HOUR), ("detail_24h_ms", 86400.0), ("detail_7d_ms", 7 * 86400.0)):
        it = iter(ids * 3)
        out[label] = _median_ms(lambda span=span, it=it: read_history(conn, next(it), span, now=now))
    conn.close()
    out["write_sweep_ms"] = statistics.median(write_s) * 1000
    out["incident_engine_ms"] = statistics.median(engine_s) * 1000
    report = work / "shift.pdf"
    zone_end = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - now % HOUR))
    zone_start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - now % HOUR - 8 * HOUR))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "report", "--db", str(path), "--from",
                           zone_start + "+00:00", "--to", zone_end + "+00:00", "--out", str(report)],
                          capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    out["report_pdf_s"] = time.perf_counter() - t0
    out["report_ok"] = proc.returncode == 0 and report.exists()
    if not out["report_ok"]:
        out["report_error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, nargs="+", default=[1280, 10240])
    parser.add_argument("--hours", type=float, default=2.0, help="hours of samples for the size comparison")
    parser.add_argument("--days", type=float, default=7.0, help="days of the full database for the reads")
    parser.add_argument("--full-cards", type=int, default=10240)
    parser.add_argument("--skip-full", action="store_true", help="only the size comparison")
    parser.add_argument("--work", help="folder for the databases (kept; default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if shutil.which("promtool") is None:
        print("promtool not found: install the Debian package prometheus (.ci/setup.sh does)", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="mixops-store-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {"size": []}
    print(f"store vs Prometheus {subprocess.run(['promtool', '--version'], capture_output=True, text=True).stdout.split()[2]}"
          f" TSDB: the same samples every {INTERVAL:g} s")
    for cards in args.cards:
        r = size_run(cards, args.hours, work)
        figures["size"].append(r)  # type: ignore[attr-defined]
        tx = r["longest_tx_s"]
        assert isinstance(tx, dict)
        print(f"  {cards:>6,} cards, {args.hours:g} h, {r['card_samples']:,} card-samples: mixops "
              f"{r['mixops_per_sample']:.2f} B/card-sample in use (chunk data {r['chunk_data_per_sample']:.2f}; file with "
              f"the head's freed pages {r['mixops_file_bytes'] / r['card_samples']:.2f}) vs Prometheus "
              f"{r['prometheus_per_sample']:.2f}: ratio {r['ratio']:.2f} (goal <= 1.0, stretch <= 0.5)")
        print(f"         sweep write median {r['write_median_s'] * 1000:.0f} ms, max {r['write_max_s'] * 1000:.0f} ms;"
              " longest transaction: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(tx.items()))
              + " (goal: rollup, compaction, expiry <= 200 ms)")
    if not args.skip_full:
        r = reads_run(args.full_cards, args.days, work)
        figures["full"] = r
        print(f"  full database: {args.full_cards:,} cards x {args.days:g} days at {INTERVAL:g} s, "
              f"{r['card_samples']:,} card-samples in {r['bytes'] / 2**30:.2f} GiB: {r['per_sample']:.2f} B/card-sample")
        print(f"    room {r['room_ms']:.0f} ms (goal <= 100); card detail 1 h {r['detail_1h_ms']:.1f} ms, 24 h "
              f"{r['detail_24h_ms']:.1f} ms, 7 d {r['detail_7d_ms']:.1f} ms (goal <= 50 each)")
        print(f"    8-hour shift report PDF {r['report_pdf_s']:.1f} s (goal <= 10){'' if r['report_ok'] else ' FAILED'}; "
              f"incident engine {r['incident_engine_ms']:.0f} ms per sweep vs the store's write "
              f"{r['write_sweep_ms']:.0f} ms: {r['incident_engine_ms'] / r['write_sweep_ms']:.2f}x (goal <= 0.5)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
