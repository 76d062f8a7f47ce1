"""One module per framework (collectors/trainlogs): our own fixtures in the real formats, and checkpoint
layouts listed from a real directory by the real listing command."""

import subprocess
from pathlib import Path

import pytest

from collectors import jobs
from collectors.trainlogs import MODULES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "trainlogs"


def events(name, framework=None):
    return [(e.kind, e.step) for e in jobs.parse_log((FIXTURES / name).read_text(), framework).events]


def test_every_framework_module_declares_rules_and_layouts():
    for m in MODULES:
        assert m.NAME and m.ALIASES and m.RULES and m.LAYOUTS
        for layout in m.LAYOUTS:
            assert "step" in layout.entry.groupindex and layout.commit in ("tracker", "contains")
    assert set(jobs.FRAMEWORKS) >= {"megatron", "mindspeed", "deepspeed", "hf", "accelerate", "torchrun", "nemo"}


def test_nemo2_progress_and_async_save():
    assert events("nemo2.log", "nemo") == [("progress", 98), ("save_start", 99), ("progress", 99),
                                           ("save_end", 100)]


def test_mindformers_steps_count_across_epochs():
    got = jobs.parse_log((FIXTURES / "mindformers.log").read_text(), "mindformers").events
    assert [(e.step, e.total) for e in got] == [(499, 1000), (500, 1000), (501, 1000)]
    assert all(e.ts is not None for e in got)


def test_deepspeed_save_load_and_failed_resume():
    assert events("deepspeed.log", "deepspeed") == [("progress", 1200), ("save_start", 1200), ("save_end", 1200),
                                                    ("load", 1200), ("fatal", None)]


def test_torchrun_restarts_signals_and_glued_progress_bar():
    got = jobs.parse_log((FIXTURES / "torchrun.log").read_text(), "torchrun").events
    assert [e.kind for e in got] == ["fatal", "restart", "restart", "fatal", "fatal", "progress", "fatal"]
    assert got[0].detail.startswith("signal:") and got[-1].detail.startswith("nccl:")   # restart_count=0 is a start
    assert got[-2].step == 24


def test_named_framework_goes_first():
    # A NeMo 1 progress bar: hf's generic tqdm rule would read 32040 (the batch in the epoch)
    line = "Epoch 0:   6%|▌  | 32040/500150 [6:28:43<94:39:17, 1.37it/s, loss=2.6, global_step=3.2e+4]\n"
    assert jobs.parse_log(line, "nemo").events[0].step == 32000
    assert jobs.parse_log(line, "hf").events[0].step == 32040


def _listing(root: Path) -> jobs.Listing:
    out = subprocess.run(["/bin/sh", "-c", jobs.listing_command(str(root))], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return jobs.parse_listing(out)


def test_layouts_listed_from_real_directories(tmp_path):
    nemo = tmp_path / "nemo"
    done = nemo / "llm--val_loss=0.00-step=99-consumed_samples=102400.0"
    (done / "weights").mkdir(parents=True)
    (done / "weights" / ".metadata").write_text("x")
    (nemo / "llm--val_loss=0.00-step=99-consumed_samples=102400.0-last" / "weights").mkdir(parents=True)
    (nemo / "llm--val_loss=0.00-step=199-consumed_samples=204800.0" / "weights").mkdir(parents=True)
    got = _listing(nemo)
    assert [(c.step, c.complete) for c in got.checkpoints] == [(99, True), (199, False)]
    assert got.latest_step == 99 and got.checkpoints[0].path == done.name

    dcp = tmp_path / "dcp"
    (dcp / "step-1000").mkdir(parents=True)
    (dcp / "step-1000" / ".metadata").write_text("x")
    (dcp / "step-2000").mkdir()
    (dcp / "step-2000" / "__0_0.distcp").write_text("x")          # shards without .metadata: not committed
    assert [(c.step, c.complete) for c in _listing(dcp).checkpoints] == [(1000, True), (2000, False)]

    mf = tmp_path / "mindformers"
    for n in (1, 500):
        (mf / f"iteration_{n:08d}").mkdir(parents=True)
    (mf / "latest_checkpointed_iteration.txt").write_text("1\n")
    assert [(c.step, c.complete) for c in _listing(mf).checkpoints] == [(1, True), (500, False)]

    # HF with DeepSpeed: checkpoint-N/global_stepN/ inside is part of the HF checkpoint, not another one
    hf = tmp_path / "hf"
    (hf / "checkpoint-500" / "global_step500").mkdir(parents=True)
    (hf / "checkpoint-500" / "latest").write_text("global_step500")
    (hf / "checkpoint-500" / "trainer_state.json").write_text("{}")
    got = _listing(hf)
    assert [(c.step, c.complete, c.path) for c in got.checkpoints] == [(500, True, "checkpoint-500")]


def test_unreadable_directory_is_not_an_empty_one(tmp_path):
    import os

    assert not _listing(tmp_path / "missing").readable
    if os.geteuid() == 0:
        pytest.skip("root reads any directory")
    d = tmp_path / "locked"
    (d / "iter_0000100").mkdir(parents=True)
    d.chmod(0o100)
    try:
        assert not _listing(d).readable
    finally:
        d.chmod(0o700)
