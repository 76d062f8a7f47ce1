"""Impossible memory readings are dropped with a warning naming the card and the command (issue 16 #10)."""

from __future__ import annotations

import pytest

from collectors import ascend, nvidia
from collectors.model import CardSample, Health, sanity
from tests.conftest import fixture_text

# (fixture, parser, {card index: (memory_used_mib, memory_total_mib, health)}, warnings' distinctive text)
CASES = [
    ("nvidia/negative-memory-query.csv", nvidia.parse_query_csv,
     {0: (None, 81920.0, Health.CRITICAL), 1: (40960.0, 81920.0, Health.OK),
      2: (None, None, Health.CRITICAL), 3: (81950.0, 81920.0, Health.OK)},
     ["card 0: impossible values (memory used -81,559 MiB) from nvidia-smi --query-gpu=",
      "card 2: impossible values (memory used 163,840 MiB > total 81,920 MiB) from nvidia-smi --query-gpu="]),
    ("ascend/910b2c-23.0.3-impossible-hbm-info.txt", ascend.parse_info,
     {0: (None, None, Health.CRITICAL), 1: (None, 65536.0, Health.CRITICAL), 6: (3316.0, 65536.0, Health.OK)},
     ["card 0: impossible values (memory used 70,000 MiB > total 65,536 MiB) from npu-smi info",
      "card 1: impossible values (memory used -4,096 MiB) from npu-smi info"]),
]


@pytest.mark.parametrize(("fixture", "parse", "expected", "warned"), CASES, ids=[c[0] for c in CASES])
def test_impossible_memory_is_dropped_with_a_warning(fixture, parse, expected, warned):
    result = parse(fixture_text(fixture))
    got = {c.index: (c.memory_used_mib, c.memory_total_mib, c.health) for c in result.cards}
    assert got == expected
    assert len(result.warnings) == len(warned)
    for text, warning in zip(warned, result.warnings, strict=True):
        assert warning.startswith(text), warning
        assert "treated as a device fault" in warning


@pytest.mark.parametrize(("used", "total", "kept"), [
    (81950.0, 81920.0, True),            # a GiB-rounded pair: within the margin
    (81920.0 * 1.02 + 64.0, 81920.0, True),
    (81920.0 * 1.02 + 65.0, 81920.0, False),
    (0.0, 0.0, True),
    (-0.5, 1024.0, False),
    (100.0, -1.0, False),
    (None, -1.0, False),
    (-1.0, None, False),
    (500.0, None, True),
])
def test_memory_bounds(used, total, kept):
    warnings: list[str] = []
    card = sanity(CardSample(index=3, health=Health.OK, temperature_c=40.0, memory_used_mib=used,
                             memory_total_mib=total), warnings, "tool -q")
    if kept:
        assert (card.memory_used_mib, card.memory_total_mib, card.health) == (used, total, Health.OK)
        assert warnings == []
    else:
        assert card.health is Health.CRITICAL
        assert all(v is None or v >= 0 for v in (card.memory_used_mib, card.memory_total_mib))
        (warning,) = warnings
        assert warning.startswith("card 3: impossible values (memory ") and "from tool -q" in warning
