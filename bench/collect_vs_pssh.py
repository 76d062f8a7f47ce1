"""Sweep wall time and client CPU per node-poll: mixops's collector vs parallel-ssh, same plan, same fleet, one run.

Needs a running loopback fleet (../shared/fleet/fleet.sh start 1280 --state DIR) and parallel-ssh
(pip install parallel-ssh). Both sides run mixops's real NVIDIA plan (the --query-gpu CSV and the
kernel-log Xid scan), as the same framed script built by collectors.ssh.build_script: mixops writes it
to its kept-open `sh` on one channel per node (verifying host keys, then parsing every section into
cards and faults); the baseline sends it with parallel-ssh as one exec per node per sweep over kept-open
connections, in the same /bin/sh, with the same locale and the same stderr and output files ($E, $O)
that mixops's session prelude sets up, and checks the answer (end marker present, query rows well formed).

Client-side cost is separated from node-side cost by process: each side runs as its own child process
of this bench, and its CPU is that process's getrusage (user + system, all its threads) over the sweep;
the fleet's sshds, shells and fake tools are other processes (started by fleet.sh, not children of the
client), so their CPU is not in either figure, though on a small machine they compete for the same cores
and so lengthen both sides' wall time alike.

    python bench/collect_vs_pssh.py --state /tmp/fleet [--sizes 200,500,1280] [--sweeps 6]
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import registry  # noqa: E402
from collectors.model import Command  # noqa: E402
from collectors.node import NodeCollector, sweep_window  # noqa: E402
from collectors.ssh import build_script  # noqa: E402
from console.site import load_site  # noqa: E402

IDLE_S = 5.0
USER = "mixfleet"
MAX_SWEEPS = 50


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads); not of any other process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mib() -> float:
    """Resident set size of this process now, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def the_plan() -> tuple[Command, ...]:
    """mixops's own NVIDIA plan for a node (the first sweep: no previous result)."""
    vendor = registry.get("nvidia")
    assert vendor is not None
    return vendor.plan(None)


def fleet_nodes(state: Path, count: int) -> list[tuple[str, str, int]]:
    """(name, host, port) of the first `count` NVIDIA nodes of the fleet; loopback only."""
    site = load_site(state / "site.toml")
    nodes = [(n.name, n.host, n.port) for n in site.nodes if n.vendor == "nvidia"][:count]
    for name, host, _ in nodes:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"refusing non-loopback node {name} at {host}")
    if len(nodes) < count:
        raise SystemExit(f"the fleet has only {len(nodes)} nvidia nodes, {count} asked for")
    return nodes


def summary(side: str, n: int, walls: list[float], cpus: list[float], idle_ms_s: float, rss: float,
            rss0: float, failed: int) -> dict[str, Any]:
    return {"side": side, "nodes": n, "first_wall_s": walls[0], "first_cpu_ms": cpus[0],
            "wall_s": statistics.median(walls[1:]), "cpu_ms": statistics.median(cpus[1:]),
            "idle_ms_per_s": idle_ms_s, "rss_mib": rss, "rss_start_mib": rss0, "failed": failed}


# ---- mixops side ----------------------------------------------------------------------------------

def run_mixops(state: Path, count: int, sweeps: int, parallel: int) -> dict[str, Any]:
    """mixops's collector as console.service runs it: one NodeCollector per node, sent and read through
    collectors.node.sweep_window on a pool of `parallel` threads."""
    rss0 = rss_mib()
    site = load_site(state / "site.toml")
    nodes = [n for n in site.nodes if n.vendor == "nvidia"][:count]
    fleet_nodes(state, count)  # the loopback check
    collectors = [NodeCollector(site.endpoint(n), "nvidia") for n in nodes]
    walls: list[float] = []
    cpus: list[float] = []
    failed_total = 0
    workers = min(parallel, len(collectors))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mixops-node") as pool:
        for k in range(sweeps):
            c0, t0 = cpu_s(), time.perf_counter()
            reports = list(sweep_window(pool, collectors, lambda nc: nc.begin(), lambda nc: nc.end()))
            wall = time.perf_counter() - t0
            cpu = (cpu_s() - c0) * 1000 / len(collectors)
            failed = [r for r in reports if not r.ok]
            cards = sum(len(r.cards) for r in reports)
            failed_total += len(failed)
            print(f"  mixops {count:>5} sweep {k + 1}: wall_s={wall:.3f} cpu_ms_per_poll={cpu:.2f} "
                  f"ok={len(reports) - len(failed)} failed={len(failed)} cards={cards}"
                  + (f" first={failed[0].error}" if failed else ""), file=sys.stderr, flush=True)
            walls.append(wall)
            cpus.append(cpu)
        # Between sweeps (a 10 s interval in production) the open sessions should cost next to nothing.
        rss = rss_mib()
        c0 = cpu_s()
        time.sleep(IDLE_S)
        idle = (cpu_s() - c0) * 1000 / IDLE_S
    for nc in collectors:
        nc.close()
    return summary("mixops", len(collectors), walls, cpus, idle, rss, rss0, failed_total)


# ---- parallel-ssh side (the approach of ../shared/fleet/baselines/pssh_sweep.py, with mixops's plan) ----

def pssh_command(script: str, port: int) -> str:
    """The sweep script as one exec: what mixops's session prelude sets up (locale, $E and $O, the shell's
    stderr to /dev/null), then the script, in /bin/sh as on mixops's side. $E and $O are fixed per-node
    files (mixops makes them once per session with mktemp; per exec that would add two forks a poll)."""
    prelude = (f"export LANG=C.UTF-8 LC_ALL=C.UTF-8; E=/tmp/mx-pssh-{port}.err; O=/tmp/mx-pssh-{port}.out; "
               f"export E O; exec 2>/dev/null\n")
    return f"exec /bin/sh -c {shlex.quote(prelude + script)}"


def check_answer(lines: list[str], nonce: str, fields: int) -> str | None:
    """None if the framed answer is complete and the query section has well-formed rows, else why not."""
    done = f"@@MX {nonce} D"
    if not lines or lines[-1] != done:
        return "no end marker"
    begin, end = f"@@MX {nonce} B query", f"@@MX {nonce} E query "
    try:
        i = lines.index(begin)
    except ValueError:
        return "no query section"
    rows = 0
    for line in lines[i + 1:]:
        if line.startswith(end):
            return None if rows and line == end + "0" else f"query: rows={rows}, {line[len(end) - 1:]!r}"
        if line:
            if line.count(",") != fields - 1:
                return f"malformed row {line[:60]!r}"
            rows += 1
    return "unterminated query section"


def run_pssh(state: Path, count: int, sweeps: int, pool_size: int) -> dict[str, Any]:
    from pssh.clients import ParallelSSHClient
    from pssh.config import HostConfig
    from pssh.exceptions import Timeout

    rss0 = rss_mib()
    nodes = fleet_nodes(state, count)
    site = load_site(state / "site.toml")
    timeout = site.ssh.command_timeout_s
    key = str(state / "id_ed25519")
    plan = the_plan()
    fields = plan[0].shell.split("--query-gpu=", 1)[1].split()[0].count(",") + 1
    since = int(time.time() - 3600)    # where a fresh NodeCollector's kernel-log cursor starts
    host_config = [HostConfig(port=port, user=USER, private_key=key, allow_agent=False, identity_auth=False,
                              timeout=timeout, num_retries=1) for _, _, port in nodes]
    client = ParallelSSHClient([host for _, host, _ in nodes], host_config=host_config, pool_size=pool_size,
                               timeout=timeout, num_retries=1)
    walls: list[float] = []
    cpus: list[float] = []
    failed_total = 0
    try:
        for k in range(sweeps):
            t0, c0 = time.perf_counter(), cpu_s()
            nonce = secrets.token_hex(8)
            script = build_script(plan, nonce, timeout, since)
            output = client.run_command("%s", host_args=[pssh_command(script, port) for _, _, port in nodes],
                                        stop_on_errors=False, read_timeout=timeout)
            try:
                client.join(output, timeout=timeout + 1)
            except Timeout:
                pass
            failures = []
            for (name, _, port), out in zip(nodes, output, strict=True):
                try:
                    if out.exception:
                        raise out.exception
                    if out.exit_code is None:
                        failures.append(f"{name}:{port} no answer within {timeout + 1:g} s")
                        continue
                    why = check_answer(list(out.stdout), nonce, fields)
                    if out.exit_code != 0 or why:
                        failures.append(f"{name}:{port} exit={out.exit_code} {why or ''}".strip())
                except Exception as e:  # noqa: BLE001 - one node's failure is reported, the sweep goes on
                    failures.append(f"{name}:{port} {type(e).__name__}: {e}")
            wall, cpu = time.perf_counter() - t0, (cpu_s() - c0) * 1000 / len(nodes)
            failed_total += len(failures)
            print(f"  pssh   {count:>5} sweep {k + 1}: wall_s={wall:.3f} cpu_ms_per_poll={cpu:.2f} "
                  f"ok={len(nodes) - len(failures)} failed={len(failures)}"
                  + (f" first={failures[0]}" if failures else ""), file=sys.stderr, flush=True)
            walls.append(wall)
            cpus.append(cpu)
        rss = rss_mib()
        c0 = cpu_s()
        time.sleep(IDLE_S)
        idle = (cpu_s() - c0) * 1000 / IDLE_S
        # not measured: remove the per-node files the script wrote
        output = client.run_command('rm -f "/tmp/mx-pssh-%s.err" "/tmp/mx-pssh-%s.out"',
                                    host_args=[(p, p) for _, _, p in nodes], stop_on_errors=False)
        try:
            client.join(output, timeout=timeout)
        except Timeout:
            pass
    finally:
        for host_client in list(getattr(client, "_host_clients", {}).values()):   # no public close-all in 2.x
            host_client.disconnect()
    return summary("pssh", len(nodes), walls, cpus, idle, rss, rss0, failed_total)


# ---- the run ------------------------------------------------------------------------------------------

def child(side: str, a: argparse.Namespace, count: int) -> dict[str, Any]:
    """One side at one size in its own process (its getrusage and RSS are its own)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--state", str(a.state), "--sweeps", str(a.sweeps),
           "--parallel", str(a.parallel), "--pool-size", str(a.pool_size), "--side", side, "--nodes", str(count)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=900, check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", type=Path, required=True, help="fleet state directory")
    ap.add_argument("--sizes", default="200,500,1280", help="node counts, comma-separated")
    ap.add_argument("--sweeps", type=int, default=6)
    ap.add_argument("--parallel", type=int, default=64, help="mixops worker threads (site default: 64)")
    ap.add_argument("--pool-size", type=int, default=100, help="parallel-ssh greenlet pool (its default: 100)")
    ap.add_argument("--side", choices=("mixops", "pssh"), help=argparse.SUPPRESS)
    ap.add_argument("--nodes", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.sweeps = max(2, min(a.sweeps, MAX_SWEEPS))
    if a.side is not None:
        run = run_mixops(a.state, a.nodes, a.sweeps, a.parallel) if a.side == "mixops" else \
            run_pssh(a.state, a.nodes, a.sweeps, a.pool_size)
        print(json.dumps(run))
        return
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    plan = the_plan()
    print("plan on both sides (mixops's NVIDIA plan, one framed script per node-poll):")
    for c in plan:
        print(f"  {c.section}: {c.shell}")
    print(f"client CPU = getrusage of the client's own process (each side a child process of this bench); "
          f"steady state = median of sweeps 2..{a.sweeps}\n", flush=True)
    rows = []
    for n in sizes:
        mx = child("mixops", a, n)
        ps = child("pssh", a, n)
        rows.append((mx, ps))
    print(f"\n{'nodes':>5} | {'wall mixops':>11} {'pssh':>6} {'ratio':>5} | {'cpu ms/poll mixops':>18} {'pssh':>5} "
          f"{'ratio':>5} | {'1st sweep mixops':>16} {'pssh':>6} {'ratio':>5} | {'idle ms CPU/s mixops':>20} "
          f"{'pssh':>5} | {'RSS MiB mixops':>14} {'pssh':>5} | failed")
    ok = True
    for mx, ps in rows:
        rw, rc, rf = mx["wall_s"] / ps["wall_s"], mx["cpu_ms"] / ps["cpu_ms"], mx["first_wall_s"] / ps["first_wall_s"]
        print(f"{mx['nodes']:>5} | {mx['wall_s']:>11.3f} {ps['wall_s']:>6.3f} {rw:>5.2f} | {mx['cpu_ms']:>18.3f} "
              f"{ps['cpu_ms']:>5.3f} {rc:>5.2f} | {mx['first_wall_s']:>16.2f} {ps['first_wall_s']:>6.2f} {rf:>5.2f} | "
              f"{mx['idle_ms_per_s']:>20.1f} {ps['idle_ms_per_s']:>5.1f} | {mx['rss_mib']:>14.1f} "
              f"{ps['rss_mib']:>5.1f} | {mx['failed']}/{ps['failed']}")
        ok = ok and rw <= 1.2 and rc <= 1.0 and (mx["nodes"] < max(sizes) or rf <= 2.0)
    biggest = rows[-1][0]
    print(f"\nmixops idle at {biggest['nodes']} open sessions: {biggest['idle_ms_per_s']:.1f} ms CPU per second "
          f"(= {biggest['idle_ms_per_s'] * 10 / biggest['nodes']:.3f} ms per node-poll at a 10 s interval); "
          f"RSS {biggest['rss_mib']:.1f} MiB with {biggest['nodes']} sessions open "
          f"({biggest['rss_start_mib']:.1f} MiB before connecting)")
    print("goals: wall <= 1.2x, client CPU per node-poll <= 1.0x at every size; first sweep <= 2x at the largest: "
          + ("MET" if ok else "NOT MET"))


if __name__ == "__main__":
    main()
