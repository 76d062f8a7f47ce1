"""A short soak: the real window (bench/soak.py's child process) on the demo site for a few minutes,
with sweeps faster than real time and the driver opening and closing details, incident details and the
report preview. Counts only, no timing: it stays alive and closes cleanly, the reference counts of
None/True/False do not drift, and threads and QObjects stay bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_soak_counts_stay_steady(tmp_path):
    out = tmp_path / "soak.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "3", "--warmup-min", "1",
                           "--history-min", "20", "--cards", "320", "--interval", "1", "--sample", "5",
                           "--json", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    figures, samples = data["figures"], [s for s in data["samples"] if s.get("warm")]
    assert figures["alive"] and len(samples) >= 10
    assert samples[-1]["sweeps"] > 20 and samples[-1]["actions"] > 20      # it really ran and was driven
    for key in ("none", "true", "false"):
        # snapshots hold None values by the thousand, so the count breathes; a binding that drops or
        # leaks a reference per paint moves it by tens of thousands in three minutes
        values = [s[key] for s in samples]
        half = len(values) // 2
        assert abs(max(values[half:]) - max(values[:half])) < 5_000, (key, values)
        assert abs(min(values[half:]) - min(values[:half])) < 5_000, (key, values)
    threads = [s["os_threads"] for s in samples]
    assert max(threads) <= threads[0] + 8, threads
    qobjects = [s["qobjects"] for s in samples]
    assert max(qobjects) < 3 * qobjects[0], qobjects
