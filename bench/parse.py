"""Parser speed: microseconds per card for each vendor's parser on a large capture in its format
(the demo simulator's text for 64 nodes x 8 cards of that vendor, concatenated per node).

    python bench/parse.py [--nodes 64] [--reps 20]

Goal (issue 3): <= 100 us per card for every vendor (a 10,240-card sweep parses in <= 1 s of one core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import registry  # noqa: E402
from console.demo import VENDOR_MIX, DemoCenter, demo_site, render  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    site = demo_site(len(VENDOR_MIX) * args.nodes * 8)
    now = time.time()
    center = DemoCenter(site, start=now - 60, story=False)
    ok = True
    for vendor in VENDOR_MIX:
        module = registry.get(vendor)
        assert module is not None
        captures = []
        for node in [n for n in site.nodes if n.vendor == vendor][: args.nodes]:
            state = center.advance(node.name, now)
            captures.append({c.section: render(state, c, now - 60, now) or "" for c in module.plan(None)})
        cards = sum(len(module.parse(c).cards) for c in captures)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for sections in captures:
                module.parse(sections)
            times.append(time.perf_counter() - t0)
        per_card = statistics.median(times) / cards * 1e6
        ok &= per_card <= 100
        print(f"{vendor:<10} {cards:>5} cards: {per_card:6.1f} us per card (goal <= 100: "
              f"{'met' if per_card <= 100 else 'NOT met'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
