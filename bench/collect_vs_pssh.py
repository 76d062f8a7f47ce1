"""Sweep wall time and client CPU per node-poll: mixops's collector vs parallel-ssh, same fleet, same run.

Needs a running loopback fleet (../shared/fleet/fleet.sh start 200 --state DIR) and parallel-ssh.
By default mixops runs the baseline's exact nvidia-smi command (framed, parsed, host keys verified);
with --full-plan it runs its real NVIDIA plan (the --query-gpu CSV and the kernel-log Xid scan).

    python bench/collect_vs_pssh.py --state /tmp/fleet [--sweeps 6] [--full-plan]
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import nvidia, registry  # noqa: E402
from collectors.model import Command  # noqa: E402
from collectors.node import NodeCollector  # noqa: E402
from console.site import load_site  # noqa: E402

IDLE_S = 3.0
BASELINE = Path(__file__).resolve().parents[2] / "shared" / "fleet" / "baselines" / "pssh_sweep.py"


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


PSSH_QUERY = ("nvidia-smi --query-gpu=index,uuid,temperature.gpu,utilization.gpu,memory.used,memory.total,power.draw"
              " --format=csv,noheader,nounits")
PSSH_FIELDS = ("index", "uuid", "temperature.gpu", "utilization.gpu", "memory.used", "memory.total", "power.draw")


def use_same_command() -> None:
    """Make mixops run exactly the baseline's one command per node-poll (still framed and parsed)."""
    registry.VENDORS["nvidia"] = registry.Vendor(
        "nvidia", nvidia.TOOLS, lambda _prev: (Command("query", PSSH_QUERY),),
        lambda sections: nvidia.parse_query_csv(sections.get("query", ""), PSSH_FIELDS, PSSH_QUERY))


def mixops_sweeps(state: Path, sweeps: int, parallel: int) -> tuple[float, float, int]:
    """Median steady-state wall s and CPU ms per node-poll (sweeps 2..K) of mixops's collector."""
    site = load_site(state / "site.toml")
    nodes = [n for n in site.nodes if n.vendor == "nvidia"]
    collectors = [NodeCollector(site.endpoint(n), "nvidia") for n in nodes]
    walls: list[float] = []
    cpus: list[float] = []
    with ThreadPoolExecutor(max_workers=min(parallel, len(collectors))) as pool:
        for k in range(sweeps):
            c0, t0 = cpu_s(), time.perf_counter()
            list(pool.map(lambda nc: nc.begin(), collectors))  # as console.service does: send all,
            reports = list(pool.map(lambda nc: nc.end(), collectors))  # then read all
            wall = time.perf_counter() - t0
            cpu = (cpu_s() - c0) * 1000 / len(collectors)
            failed = [r for r in reports if not r.ok]
            print(f"mixops sweep {k + 1}: wall_s={wall:.3f} cpu_ms_per_poll={cpu:.2f} ok={len(reports) - len(failed)}"
                  f" failed={len(failed)}" + (f" first={failed[0].error}" if failed else ""), flush=True)
            walls.append(wall)
            cpus.append(cpu)
    # Between sweeps (a 10 s interval in production) the open sessions should cost next to nothing
    c0 = cpu_s()
    time.sleep(IDLE_S)
    print(f"mixops idle: {len(collectors)} open sessions cost {(cpu_s() - c0) * 1000 / IDLE_S:.1f} ms CPU per second "
          f"(= {(cpu_s() - c0) * 1000 / IDLE_S * 10 / len(collectors):.3f} ms per node-poll at a 10 s interval)")
    for nc in collectors:
        nc.close()
    return statistics.median(walls[1:]), statistics.median(cpus[1:]), len(collectors)


def pssh_sweeps(state: Path, sweeps: int) -> tuple[float, float]:
    """Run the fleet's parallel-ssh baseline as its own process; parse its steady-state medians."""
    out = subprocess.run([sys.executable, str(BASELINE), "--state", str(state), "--sweeps", str(sweeps),
                          "--vendor", "nvidia"], capture_output=True, text=True, timeout=600, check=True).stdout
    print(out.strip().splitlines()[-1])
    m = re.search(r"wall_s=([\d.]+).*?cpu_ms_per_poll=([\d.]+)", out.strip().splitlines()[-1])
    if m is None:
        raise SystemExit(f"cannot read baseline output:\n{out}")
    return float(m.group(1)), float(m.group(2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", type=Path, required=True, help="fleet state directory")
    ap.add_argument("--sweeps", type=int, default=6)
    ap.add_argument("--parallel", type=int, default=64, help="mixops worker threads")
    ap.add_argument("--full-plan", action="store_true",
                    help="mixops runs its real plan (query + kernel-log Xid scan) instead of the baseline's command")
    a = ap.parse_args()
    sweeps = max(2, min(a.sweeps, 50))
    if not a.full_plan:
        use_same_command()
    print(f"mixops plan: {'full (query + kernel log)' if a.full_plan else 'same command as the baseline'}")
    mx_wall, mx_cpu, n = mixops_sweeps(a.state, sweeps, a.parallel)
    ps_wall, ps_cpu = pssh_sweeps(a.state, sweeps)
    print(f"\nnodes={n} sweeps={sweeps} (steady state = median of sweeps 2..{sweeps})")
    print(f"mixops:       sweep_wall_s={mx_wall:.3f}  client_cpu_ms_per_node_poll={mx_cpu:.2f}")
    print(f"parallel-ssh: sweep_wall_s={ps_wall:.3f}  client_cpu_ms_per_node_poll={ps_cpu:.2f}")
    print(f"ratio mixops/pssh: wall={mx_wall / ps_wall:.2f} (goal <= 1.2)  cpu={mx_cpu / ps_cpu:.2f} (goal <= 1.0)")


if __name__ == "__main__":
    main()
