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


# ---- every capture of every vendor through `mixops parse` ------------------------------------------

# Captures that show cards, with the number of cards they show (counted by eye in the files).
SHOWN = {
    "amd-smi__RadeonAI-PRO-R9700_x2_amd-smi26.2.1_rocm7.2.0.txt": 2, "rocm-smi__MI300X_x4.txt": 4,
    "rocm-smi__and__rocm-smi_-u_--showmeminfo_vram__MI308X-class_x8.txt": 8,
    "rocm-smi_telegraf-args_--json__mi100_rocm571.json": 6,
    "npu-smi_info_-m__910B.txt": 8, "npu-smi_info_-t_usages_-i_1__310P.txt": 2,
    "cnmon__MLU370-X4_v4.20.11.txt": 3, "cnmon__MLU370-X4_v5.10.10.txt": 2,
    "dlsmi_query_--xml-format__Denglin_KS38-QUAD-3_8gpu.xml": 8,
    "efsmi__S60_efsmi1.2.0.301.txt": 2, "efsmi__S60G_x2_SRIOV_efsmi1.6.3.12.txt": 2,
    "efsmi_-q_-d_TEMP,MEMORY,USAGE,PCIE__efsmi-1.5.txt": 2,
    "rocm-smi__DCU_8card_dtk.txt": 8, "rocm-smi__DCU_dtk23.10.1.txt": 4,
    "ixsmi_-q_-x__MR-V100_x2_driver4.2.0.xml": 2,
    "ixsmi_--format=csv,noheader_--query-gpu=index,name,memory.total,memory.used,utilization.gpu,"
    "temperature.gpu__MR-V50_MR-V100.csv": 2,
    "xpu_smi_-m__P800-OAM_2rows.txt": 2, "xpu_smi__P800-OAM_x8_driver5.0.21.26.txt": 8,
    "xpu_smi__R300_driver4.0.txt": 2,
    "mx-smi__MetaX-C500_x8_mx-smi2.2.9_newlayout.txt": 8,
    "mthreads-gmi__MTT-S5000_x8_gmi2.4.1_driver5.1.0.txt": 8, "mthreads-gmi__MTT-S80_gmi1.14.0_driver2.7.0.txt": 1,
    "nvidia-smi__H100-SXM_x8.txt": 8, "nvidia-smi__RTX-A6000_x9_550.127.05.txt": 9,
    "nvidia-smi_-q_-x__tesla-t4.xml": 1, "nvidia-smi_-q_-x__rtx-3080-v13.xml": 1,
    # MIG on: one GPU each; the MIG devices table's instances are not cards (issue 16)
    "nvidia-smi_multi-command-capture__linux-x86_64__nvidia-h100-mig__590.48.01.txt": 1,
    "nvidia-smi_multi-command-capture__linux-x86_64__nvidia-h200-mig__590.48.01.txt": 1,
}
VENDOR_DIRS = ("amd", "ascend", "cambricon", "denglin", "enflame", "hygon", "iluvatar", "kunlunxin", "metax",
               "mthreads", "nvidia")


def _command(path: Path) -> str:
    """The command a capture's file name records: `xpu_smi_-m__P800…` → `xpu_smi -m`."""
    stem = path.name.split("__")[0]
    for tool in ("xpu_smi",):
        stem = stem.replace(tool, tool.replace("_", "\0"))
    return stem.replace("_", " ").replace("\0", "_")


@pytest.mark.parametrize("path", [p for d in VENDOR_DIRS for p in _files(f"{d}/*")], ids=lambda p: p.name)
def test_every_capture_parses(path):
    from console.parse_cmd import parse_capture

    text = path.read_text(encoding="utf-8", errors="replace")
    result = parse_capture(text, path.parent.name, _command(path))
    for w in result.warnings:
        assert w.split(":", 1)[0] in (path.parent.name, "card 0", "card 1") or w.startswith("card ")
        # every column header of every real capture is in its parser's list (read or known to be ignored)
        assert "not known to mixops" not in w, w
    if path.name in SHOWN:
        assert len(result.cards) == SHOWN[path.name], result.warnings
    for card in result.cards:
        # never a 0 where the capture shows no value: 0 W or 0 °C only when the text has them
        if card.power_w == 0:
            assert re.search(r"\b0(\.0+)?\s*W\b|Power[^\n]*:\s*0\b", text)
        if card.temperature_c == 0:
            assert re.search(r"\b0(\.0+)?\s*(C|°C|℃)\b", text)


TRAINING = SAMPLES.parent / "training-samples"

# What each real training log must yield (kinds of event, and the framework it is read as). Samples cut
# mid-line by their source, documentation templates and formats outside the frameworks (DLRover,
# LiBai, MLPerf's JSON besides the resume step) are only required to parse without error.
TRAINING_EXPECTED = {
    "ascend-torch-npu__crash-hccl-blocking-wait__1.txt": {"fatal"},
    "ascend-torch-npu__stream-sync-timeout-EE1002__1.txt": {"fatal"},
    "ascend-torch-npu__task-timeout-107020-pdsh__1.txt": {"fatal"},
    "cuda__gpu-crash-nccl-watchdog__1.txt": {"fatal"},
    "deepspeed__resume-fail-world-size-change__1.txt": {"fatal"},
    "gpt-neox__deepspeed-checkpoint-load__1.txt": {"load"},
    "hccl__notify-wait-timeout-EI0002__1.txt": {"fatal"},
    "hf-trainer-deepspeed__final-checkpoint-and-completion__1.txt": {"progress", "save_start", "save_end"},
    "hf-trainer__resume-skip-batches__1.txt": {"load", "progress"},
    "hf-trainer__tqdm-steps-then-nccl-timeout__1.txt": {"progress"},
    "llama-recipes-fsdp__dcp-checkpoint-save__1.txt": {"save_end", "save_time"},
    "megatron-deepspeed__checkpoint-save-exit-watchdog__1.txt": {"progress", "save_start", "save_end", "save_time"},
    "megatron-deepspeed__crash-dataloader-shm-bus-error__1.txt": {"fatal"},
    "megatron-deepspeed__crash-ecc-error__1.txt": {"progress", "fatal"},
    "megatron-deepspeed__iteration-lines__1.txt": {"progress"},
    "megatron-deepspeed__restart-crash-oom-same-node__1.txt": {"fatal"},
    "megatron__iteration-lines-srun-label__1.txt": {"progress"},
    "megatron__iteration-lines-timestamped__1.txt": {"progress"},
    "megatron__progress-txt__1.txt": {"restart", "save_start"},
    "megatron__resume-load-checkpoint__1.txt": {"load", "save_start", "save_end"},
    "megatron__startup-no-checkpoint-iteration-lines__1.txt": {"fresh_start", "progress"},
    "mindformers__step-lines__1.txt": {"progress"},
    "mindspeed-llm__iteration-lines-fsdp2__1.txt": {"progress"},
    "nccl__socket-error-abort-watchdog__1.txt": {"fatal"},
    "nccl__watchdog-hang-fatal-torchrun-sigterm__1.txt": {"fatal"},
    "nccl__watchdog-timeout-legacy__1.txt": {"fatal"},
    "nemo-lightning__progress-bar-then-nccl-timeout__1.txt": {"progress", "fatal"},
    "nemo-mlperf__mllog-init-checkpoint-step__1.txt": {"load"},
    "nemo2__iteration-and-async-checkpoint__1.txt": {"progress", "save_start", "save_end"},
    "paddlenlp__trainer-step-lines-2022__1.txt": {"progress"},
    "slurm__time-limit-cancel-torch-launch-sigterm__1.txt": {"progress", "fatal"},
    "torchelastic__error-file-json-nvlink__1.txt": {"fatal"},
    "torchrun__agent-sigterm-shutdown__1.txt": {"fatal"},
    "torchrun__childfailederror-summary__1.txt": {"fatal"},
    "torchrun__restart-worker-group__1.txt": {"restart"},
    "torchrun__worker-failed-exitcode__1.txt": {"fatal"},
    "xid__fallen-off-bus-dmesg__1.txt": {"fatal"},
}


@pytest.mark.parametrize("path", sorted(p for p in TRAINING.glob("*.txt")) if TRAINING.is_dir() else [],
                         ids=lambda p: p.name)
def test_training_samples_parse(path):
    from collectors import jobs

    text = path.read_text(encoding="utf-8", errors="replace")
    result = jobs.parse_log(text)
    assert result.lines >= len(result.events)
    assert TRAINING_EXPECTED.get(path.name, set()) <= {e.kind for e in result.events}
    steps = [e.step for e in result.events if e.kind == "progress"]
    assert all(s is not None and s >= 0 for s in steps)
    if path.name.startswith("layout__"):
        jobs.parse_listing(text)


def test_training_sample_steps():
    """Steps read from the real lines are the ones the lines show (global steps, not per-epoch counters)."""
    from collectors import jobs

    def steps(name, framework=None):
        path = TRAINING / name
        if not path.is_file():
            pytest.skip("../shared/training-samples not present")
        return [e.step for e in jobs.parse_log(path.read_text(errors="replace"), framework).events
                if e.kind == "progress"]

    assert steps("mindformers__step-lines__1.txt", "mindformers")[-1] == 812
    assert steps("mindspeed-llm__iteration-lines-fsdp2__1.txt", "mindspeed") == [1, 2, 3]
    assert steps("nemo2__iteration-and-async-checkpoint__1.txt", "nemo") == [19, 29]


@pytest.mark.parametrize("name", ["nvidia-smi_multi-command-capture__linux-x86_64__nvidia-h100-mig__590.48.01.txt",
                                  "nvidia-smi_multi-command-capture__linux-x86_64__nvidia-h200-mig__590.48.01.txt"])
def test_mig_capture_reads_the_gpu_not_its_instances(name):
    """The GPU's own memory from its row; GPU-Util N/A on a MIG GPU stays None (issue 16 (a), (b))."""
    path = SAMPLES / "nvidia" / name
    if not path.is_file():
        pytest.skip("capture not present")
    from console.parse_cmd import parse_capture

    text = path.read_text(encoding="utf-8")
    gpu_row = re.search(r"^\|\s+N/A\s+\d+C\s+P\d.*?\|\s+(\d+)MiB /\s+(\d+)MiB \|\s+N/A", text, re.M)
    assert gpu_row is not None
    (card,) = parse_capture(text, "nvidia", "nvidia-smi").cards
    assert (card.index, card.utilization_pct) == (0, None)
    assert (card.memory_used_mib, card.memory_total_mib) == (float(gpu_row.group(1)), float(gpu_row.group(2)))


# ---- links (issue 19): every public link capture through the link parsers ---------------------------

def _multi_sections(text: str, command: str) -> list[str]:
    """The bodies of `# $ COMMAND` sections of a multi-command capture (utkuozdemir/nvidia_gpu_exporter)."""
    out = []
    for m in re.finditer(rf"^# \$ {re.escape(command)}\n#+\n(.*?)(?=^#{{20,}}|\Z)", text, re.M | re.S):
        out.append(m.group(1))
    return out


def _hccn_blocks(text: str) -> list[tuple[str, str]]:
    """(command line, output) of every hccn_tool query in an Ascend collection log (mind-cluster's
    npu_info_before.txt: the command line, its output, a blank line)."""
    out = []
    for m in re.finditer(r"^(\S*hccn_tool -i \d+ -\w+ -g)\n(.*?)(?=^/\S+|\Z)", text, re.M | re.S):
        out.append((m.group(1), m.group(2)))
    return out


LINK_CAPTURES = [p for p in _files("nvidia/*") if "nvlink" in p.name or "multi-command" in p.name] + \
    [p for p in _files("ascend/*") if "hccn" in p.read_text(errors="replace")]


@pytest.mark.parametrize("path", LINK_CAPTURES, ids=lambda p: p.name)
def test_link_captures(path):
    from collectors import links
    from collectors.model import LinkState
    from console.parse_cmd import parse_capture

    text = path.read_text(encoding="utf-8", errors="replace")
    if path.name.startswith("nvidia-smi_nvlink"):
        pieces = [("nvidia-smi nvlink --status", text)]
    elif path.parent.name == "nvidia":
        pieces = [("nvidia-smi nvlink -s", body) for body in _multi_sections(text, "nvidia-smi nvlink -s")]
        assert pieces, "a multi-command capture holds its nvlink -s section"
    else:
        pieces = [(cmd, body) for cmd, body in _hccn_blocks(text) if links.hccn_option(cmd)]
        assert pieces
    for command, body in pieces:
        result = parse_capture(body, None, command)
        assert result.warnings == (), (command, result.warnings)
        shown = re.findall(r"^\s*Link \d+: ([\d.]+) GB/s", body, re.M)
        if "nvlink" in command:
            assert len(result.links) == len(re.findall(r"^\s*Link \d+:", body, re.M))
            assert sorted(ln.speed_gbps for ln in result.links if ln.state is LinkState.UP) == \
                sorted(round(float(v) * 8, 3) for v in shown)
        elif "-link_stat" in command:
            (ln,) = result.links
            assert ln.counters["link_up_count"] == int(re.search(r"link up count\s*:\s*(\d+)", body).group(1))
        elif "-stat" in command.split():
            (ln,) = result.links
            assert ln.counters == {k: int(v) for k, v in re.findall(r"^(\w+):(\d+)$", body, re.M)}
        else:
            assert len(result.links) == 1


TOPO_CAPTURES = [p for p in _files("*/*") if "topo" in p.name or "multi-command" in p.name and "nvidia" in p.name]
# connected pairs each public topology capture shows (counted in the files: 8 cards, all pairs or two quads)
TOPO_PAIRS = {"mx-smi_topo_-m__MetaX-C500_x8_mx-smi2.2.9.txt": ("metaxlink", 12),
              "rocm-smi_--showtopo__MI308X-class_x8.txt": ("xgmi", 28)}


@pytest.mark.parametrize("path", TOPO_CAPTURES, ids=lambda p: p.name)
def test_topology_captures(path):
    from console.parse_cmd import parse_capture

    text = path.read_text(encoding="utf-8", errors="replace")
    bodies = _multi_sections(text, "nvidia-smi topo -m") if "multi-command" in path.name else [text]
    command = "nvidia-smi topo -m" if "multi-command" in path.name else _command(path)
    assert bodies
    for body in bodies:
        result = parse_capture(body, None, command)
        assert result.warnings == ()
        if path.name in TOPO_PAIRS:
            kind, n = TOPO_PAIRS[path.name]
            assert len(result.links) == n and {ln.kind for ln in result.links} == {kind}
        elif "multi-command" in path.name:
            assert result.links == ()       # one GPU per capture: no pair
