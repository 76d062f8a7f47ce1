"""Incident engine cost: its time per sweep for 10,240 cards with 1% of them faulty, against the store's
time to write that same sweep, in the same run (same file, same connection).

    python bench/incidents.py [--cards 10240] [--sweeps 30]

Goal (issue 6): engine <= 0.5x the write time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity  # noqa: E402
from console.incidents import IncidentEngine  # noqa: E402
from console.store import Store  # noqa: E402

FAULTS = ((48, Action.RESET_CARD, Severity.CRITICAL), (63, Action.WATCH, Severity.INFO),
          (94, Action.RESTART_JOB, Severity.WARNING), (79, Action.REBOOT_NODE, Severity.CRITICAL))


def sweep_reports(nodes: int, t: float, rnd: random.Random, faulty: float) -> list[NodeReport]:
    out = []
    for n in range(nodes):
        cards, faults = [], []
        for i in range(8):
            bad = rnd.random() < faulty
            temp = 97.0 if bad and rnd.random() < 0.3 else 40.0 + rnd.random() * 30
            cards.append(CardSample(i, model="H800", serial=f"S{n}-{i}", health=Health.CRITICAL if bad else Health.OK,
                                    temperature_c=temp, utilization_pct=90.0, memory_used_mib=60000.0,
                                    memory_total_mib=81559.0, power_w=600.0))
            if bad:
                code, action, severity = rnd.choice(FAULTS)
                faults.append(Fault(f"Xid {code}", severity, action, f"NVRM: Xid {code} on card {i}", i, t))
        out.append(NodeReport(f"gpu-{n:05d}", True, t, 0.1, "nvidia", tuple(cards), tuple(faults)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_240)
    parser.add_argument("--sweeps", type=int, default=30)
    args = parser.parse_args()
    nodes = args.cards // 8
    rnd = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "ops.db"))
        store.sync_nodes((f"gpu-{n:05d}", "127.0.0.1", 22, f"R{n // 8:03d}", n % 8 + 1, "nvidia") for n in range(nodes))
        engine = IncidentEngine(store.conn, rack_of={f"gpu-{n:05d}": f"R{n // 8:03d}" for n in range(nodes)},
                                jobs_of={f"gpu-{n:05d}": ["llm"] for n in range(0, nodes, 2)})
        writes, engines, opened = [], [], 0
        t = time.time() - args.sweeps * 10
        for _ in range(args.sweeps):
            reports = sweep_reports(nodes, t, rnd, 0.01)
            t0 = time.perf_counter()
            store.write_sweep(t, t + 1, reports)
            t1 = time.perf_counter()
            opened += len(engine.process(t + 1, reports, ()))
            t2 = time.perf_counter()
            writes.append(t1 - t0)
            engines.append(t2 - t1)
            t += 10
        store.close()
    w, e = statistics.median(writes) * 1000, statistics.median(engines) * 1000
    ratio = e / w
    print(f"{args.cards} cards, 1% faulty, {args.sweeps} sweeps ({opened} incidents opened): engine {e:.1f} ms "
          f"per sweep vs store write {w:.1f} ms, ratio {ratio:.2f} (goal <= 0.5: {'met' if ratio <= 0.5 else 'NOT met'})")
    return 0 if ratio <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
