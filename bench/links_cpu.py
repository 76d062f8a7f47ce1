"""Client CPU per node-poll added by the link commands (issue 19): the base NVIDIA plan vs the plan with links,
interleaved in one run over real sshds on 127.0.0.1 (tests/sshd.py: 4 nodes, 8 × H100 each, 144 NVLink lanes).

The client's CPU is this process's process_time() around each node's sweep (paramiko's transport threads
included); the sshds and fake tools are other processes. --changing makes every sweep's NVLink status and
error counters differ (the worst case: nothing travels as `mixops-same`).

    python bench/links_cpu.py [--rounds 30] [--changing]
"""

from __future__ import annotations

import argparse
import getpass
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import ladder, nvidia, registry  # noqa: E402
from collectors.model import ParseResult  # noqa: E402
from collectors.node import NodeCollector  # noqa: E402
from collectors.registry import Vendor  # noqa: E402
from collectors.ssh import Endpoint  # noqa: E402
from tests.sshd import FakeNode, Fleet, keygen  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
NODES = 4
WARMUP = 2          # rounds not counted: connect, detect, the first sweep (topology, full link texts)


def gpus(name: str, n: int = 8) -> str:
    """An n-GPU output from a 2-GPU fixture, its GPU lines renumbered."""
    text = (FIX / "links" / name).read_text()
    return "".join(text.replace("GPU 1:", f"GPU {2 * k + 1}:").replace("GPU 0:", f"GPU {2 * k}:")
                   for k in range(n // 2))


def outputs(node: FakeNode, rnd: int, changing: bool) -> None:
    status, errors = gpus("h100-590-nvlink-status.txt"), gpus("h100-nvlink-errors.txt")
    if changing:
        errors = errors.replace("1843", str(1843 + rnd))
        status = status if rnd % 2 else status.replace("Link 5: 26.562 GB/s", "Link 5: <inactive>", 1)
    (node.root / "out" / "nvidia-smi@nvlink --status").write_text(status)
    (node.root / "out" / "nvidia-smi@nvlink -e").write_text(errors)
    (node.root / "out" / "nvidia-smi@topo -m").write_text((FIX / "links" / "h100-x8-topo-m.txt").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--changing", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp()) / "fleet"
    root.mkdir(parents=True)
    key = keygen(root.parent / "id")
    (root / "authorized_keys").write_text(Path(str(key) + ".pub").read_text())
    (root / "known_hosts").write_text("")
    fleet = Fleet(root, key)
    linked = registry.VENDORS["nvidia"]

    def base_parse(sections: dict[str, str]) -> ParseResult:
        return ladder.apply(nvidia.parse(sections))

    base = Vendor("nvidia", nvidia.TOOLS, lambda _previous: nvidia.PLAN, base_parse)
    try:
        nodes = fleet.start(NODES, "nvidia")

        def endpoint(n: FakeNode) -> Endpoint:
            return Endpoint(n.name, "127.0.0.1", n.port, getpass.getuser(), (str(key),), str(fleet.known_hosts),
                            connect_timeout_s=5, command_timeout_s=8)

        collectors = {kind: [NodeCollector(endpoint(n), "nvidia") for n in nodes] for kind in ("base", "links")}
        cpu = {"base": 0.0, "links": 0.0}
        polls = {"base": 0, "links": 0}
        for rnd in range(args.rounds):
            for n in nodes:
                outputs(n, rnd, args.changing)
            for kind in ("base", "links"):          # interleaved: both see the same machine load
                registry.VENDORS["nvidia"] = base if kind == "base" else linked
                for c in collectors[kind]:
                    t = time.process_time()
                    report = c.sweep()
                    dt = time.process_time() - t
                    if not report.ok:
                        raise SystemExit(f"{report.node}: {report.error}")
                    if rnd >= WARMUP:
                        cpu[kind] += dt
                        polls[kind] += 1
        registry.VENDORS["nvidia"] = linked
        for kind in ("base", "links"):
            print(f"{kind}: {cpu[kind] / polls[kind] * 1e3:.2f} ms client CPU per node-poll ({polls[kind]} polls)")
        print(f"ratio {cpu['links'] / cpu['base']:.2f}x" + (" (every sweep changes)" if args.changing else ""))
        for cs in collectors.values():
            for c in cs:
                c.close()
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
