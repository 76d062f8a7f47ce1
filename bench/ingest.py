"""Store throughput: 10,240 cards x 100 sweeps through console.store vs raw sqlite3.executemany.

Both write the same sample rows into the same schema (same indexes, WAL, synchronous=NORMAL), one
transaction per sweep; the store also writes cards, node outcomes, node status and sweep rows.

    python bench/ingest.py [--cards 10240] [--sweeps 100]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.model import CardSample, Health, NodeReport  # noqa: E402
from console.store import Store  # noqa: E402

CARDS_PER_NODE = 8


def reports(sweep: int, nodes: int, t: float) -> list[NodeReport]:
    out = []
    for n in range(nodes):
        cards = tuple(CardSample(index=i, model="H100", serial=f"S{n}-{i}", health=Health.OK,
                                 temperature_c=40.0 + (n + i + sweep) % 40, utilization_pct=float((n * i + sweep) % 100),
                                 memory_used_mib=1000.0 * i, memory_total_mib=81559.0, power_w=300.0 + i,
                                 ecc_uncorrected=0) for i in range(CARDS_PER_NODE))
        out.append(NodeReport(f"node{n:05d}", True, t, 0.05, "nvidia", cards))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cards", type=int, default=10240)
    ap.add_argument("--sweeps", type=int, default=100)
    a = ap.parse_args()
    nodes = a.cards // CARDS_PER_NODE
    with tempfile.TemporaryDirectory() as d:
        store = Store(str(Path(d) / "store.db"))
        store.sync_nodes((f"node{n:05d}", "h", 22, None, None, "nvidia") for n in range(nodes))
        batches = [reports(s, nodes, 1_800_000_000 + 10 * s) for s in range(a.sweeps)]
        t0 = time.perf_counter()
        for s, batch in enumerate(batches):
            store.write_sweep(1_800_000_000 + 10 * s, 1_800_000_001 + 10 * s, batch)
        store_s = time.perf_counter() - t0
        store.close()

        raw = sqlite3.connect(str(Path(d) / "raw.db"), isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute("""CREATE TABLE samples (card_id INTEGER NOT NULL, ts REAL NOT NULL, temperature_c REAL,
            utilization_pct REAL, memory_used_mib REAL, memory_total_mib REAL, power_w REAL, health TEXT NOT NULL,
            ecc_uncorrected INTEGER)""")
        raw.execute("CREATE INDEX samples_card_ts ON samples(card_id, ts)")
        raw.execute("CREATE INDEX samples_ts ON samples(ts)")
        rows = [[(n * CARDS_PER_NODE + c.index + 1, r.started, c.temperature_c, c.utilization_pct, c.memory_used_mib,
                  c.memory_total_mib, c.power_w, c.health.value, c.ecc_uncorrected)
                 for n, r in enumerate(batch) for c in r.cards] for batch in batches]
        t0 = time.perf_counter()
        for batch_rows in rows:
            raw.execute("BEGIN")
            raw.executemany("INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)", batch_rows)
            raw.execute("COMMIT")
        raw_s = time.perf_counter() - t0
        raw.close()
    total = a.cards * a.sweeps
    print(f"rows={total} ({a.cards} cards x {a.sweeps} sweeps)")
    print(f"store: {store_s:.2f} s = {total / store_s:,.0f} rows/s")
    print(f"raw executemany: {raw_s:.2f} s = {total / raw_s:,.0f} rows/s")
    print(f"ratio store/raw throughput: {raw_s / store_s:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
