"""Parser speed: microseconds per card for each vendor's parser on its largest capture: our own
fixtures (tests/fixtures/<vendor>/) and, when present, the public captures in ../shared/vendor-samples,
parsed as `mixops parse` would (vendor and command detected from the text).

    python bench/parse.py [--reps 200]

Goal (issue 3): <= 100 us per card for every vendor (a 10,240-card sweep parses in <= 1 s of one core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.parse_cmd import detect, parse_capture  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared" / "vendor-samples"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    ok = True
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name not in ("adapter", "biren")):
        best = None
        shared = sorted((SHARED / folder.name).glob("*")) if (SHARED / folder.name).is_dir() else []
        for path in sorted(folder.iterdir()) + [p for p in shared if not p.name.endswith(".source")]:
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                vendor, command = detect(text)
            except Exception:  # noqa: BLE001 - files mixops cannot attribute are not benchmarked
                continue
            cards = len(parse_capture(text, vendor, command).cards)
            if cards and (best is None or (cards, len(text)) > (best[0], len(best[1]))):
                best = (cards, text, vendor, command, path.name)
        if best is None:
            continue
        cards, text, vendor, command, name = best
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(args.reps):
                parse_capture(text, vendor, command)
            times.append((time.perf_counter() - t0) / args.reps)
        per_card = statistics.median(times) / cards * 1e6
        ok &= per_card <= 100
        print(f"{folder.name:<10} {name[:44]:<44} {cards:>2} cards: {per_card:6.1f} us per card "
              f"(goal <= 100: {'met' if per_card <= 100 else 'NOT met'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
