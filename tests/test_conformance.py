"""Conformance over ../shared/vendor-samples (skipped when absent): every NVIDIA CSV and Ascend
`npu-smi info` capture parses without exception, yields the cards it shows, never a 0 for N/A."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collectors import ascend, nvidia

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "vendor-samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/vendor-samples not present")


def _files(pattern):
    return sorted(p for p in SAMPLES.glob(pattern) if not p.name.endswith(".source")) if SAMPLES.is_dir() else []


@pytest.mark.parametrize("path", _files("ascend/npu-smi_info__*.txt"), ids=lambda p: p.name)
def test_npu_smi_info_tables(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    result = ascend.parse_info(text)
    rows = [ln for ln in text.splitlines() if re.match(r"\|\s*\d+\s+\S+.*\|\s*(OK|Warning|Alarm|Critical)", ln)]
    assert len(result.cards) == len(rows), result.warnings
    for card, row in zip(result.cards, rows, strict=True):
        if re.search(r"\|\s*NA\s", row.split("|")[3] + " "):
            assert card.power_w is None


@pytest.mark.parametrize("path", _files("nvidia/nvidia-smi_--format=csv*"), ids=lambda p: p.name)
def test_nvidia_query_csv(path):
    name = path.name
    fields = tuple(re.search(r"--query-gpu=([^_]+)", name).group(1).split(","))
    text = path.read_text(encoding="utf-8")
    result = nvidia.parse_query_csv(text, fields)
    assert len(result.cards) == len([ln for ln in text.splitlines() if ln.strip()])
    assert result.warnings == ()


@pytest.mark.parametrize("path", _files("nvidia/dmesg_*") + _files("../training-samples/xid__*.txt"),
                         ids=lambda p: p.name)
def test_kernel_logs_do_not_crash(path):
    nvidia.parse_kernel_log(path.read_text(encoding="utf-8", errors="replace"))
