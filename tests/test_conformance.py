"""Conformance over ../shared/vendor-samples (skipped when absent): every NVIDIA CSV and Ascend
`npu-smi info` capture parses without exception, yields the cards it shows, never a 0 for N/A."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collectors import ascend, cambricon, hygon, metax, nvidia

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


def _no_zero_for_na(result):
    for card in result.cards:
        for value in (card.temperature_c, card.power_w, card.memory_used_mib):
            assert value is None or value >= 0


@pytest.mark.parametrize("path", _files("cambricon/cnmon__*.txt"), ids=lambda p: p.name)
def test_cnmon_tables(path):
    text = path.read_text(encoding="utf-8")
    result = cambricon.parse_table(text)
    assert len(result.cards) == len(re.findall(r"^\|\s*\d+\s+/\s+MLU", text, re.M))
    assert result.warnings == ()


@pytest.mark.parametrize("path", [p for p in _files("metax/mx-smi*.txt") if "topo" not in p.name],
                         ids=lambda p: p.name)
def test_mx_smi(path):
    text = path.read_text(encoding="utf-8")
    if "--show" in path.name:
        result = metax.parse_show(text)
        assert len(result.cards) == len(re.findall(r"^GPU#\d+", text, re.M))
    else:
        result = metax.parse_table(text)
        assert len(result.cards) == len(re.findall(r"^\|\s*\d+\s+(MetaX|MXC)", text, re.M))
    assert result.warnings == ()
    assert all(c.temperature_c is not None for c in result.cards)


@pytest.mark.parametrize("path", [p for p in _files("hygon/*") if "rocminfo" not in p.name], ids=lambda p: p.name)
def test_hygon(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        result = hygon.parse_json(text)
        expected = len(re.findall(r'"card\d+"\s*:\s*\{[^{}]*\}', text))
    else:
        result = hygon.parse_table(text)
        expected = len(re.findall(r"^\d+\s+\d", text, re.M))
        assert result.warnings == ()
    assert len(result.cards) == expected
    _no_zero_for_na(result)
