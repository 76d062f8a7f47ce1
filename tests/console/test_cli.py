"""The command line end to end: real processes, real sshd nodes, real database files."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"


def mixops(*args, check=None, timeout=60, **kw):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.mark.sshd
def test_collect_once_writes_nodes_and_exits_1_on_failure(fleet, tmp_path):
    nodes = fleet.start(2, "nvidia") + fleet.start(1, "ascend")
    db = tmp_path / "ops.db"
    ok = mixops("collect", "--site", fleet.site_toml(), "--db", db, "--once", check=0)
    assert "3 ok, 0 failed" in ok.stdout
    nodes[1].set_mode("fail")
    bad = mixops("collect", "--site", fleet.site_toml(), "--db", db, "--once", check=1)
    assert "n002: FAILED: nvidia-smi exited 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name, status FROM nodes ORDER BY name").fetchall() == [
        ("n001", "ok"), ("n002", "failed"), ("n003", "ok")]
    assert conn.execute("SELECT count(*) FROM sweeps").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM cards").fetchone()[0] == 4 + 4 + 3
    assert conn.execute("SELECT collector_rss_mib > 0, db_size_mib > 0 FROM sweeps").fetchall() == [(1, 1)] * 2


@pytest.mark.sshd
def test_check_reports_hostkeys_and_trust_new(fleet, tmp_path):
    a, b = fleet.start(2, "nvidia", trust=False)
    site = fleet.site_toml()
    out = mixops("check", "--site", site, check=1)
    assert out.stdout.count("host key UNKNOWN") == 2 and "--trust-new" in out.stdout
    trusted = mixops("check", "--site", site, "--trust-new", check=0)
    assert "trusting new host key ssh-ed25519 SHA256:" in trusted.stdout
    assert "tools: nvidia-smi" in trusted.stdout
    again = mixops("check", "--site", site, check=0)
    assert again.stdout.count("host key known") == 2


@pytest.mark.sshd
def test_changed_key_never_accepted_even_with_trust_new(fleet, tmp_path):
    from tests.sshd import keygen

    (node,) = fleet.start(1, "nvidia", trust=False)
    other = keygen(tmp_path / "k")
    fleet.trust(node, " ".join(other.with_suffix(".pub").read_text().split()[:2]))
    db = tmp_path / "ops.db"
    out = mixops("check", "--site", fleet.site_toml(), "--trust-new", "--db", db, check=1)
    assert "host key CHANGED" in out.stdout
    assert node.host_pub not in fleet.known_hosts.read_text()
    mixops("collect", "--site", fleet.site_toml(), "--db", db, "--once", check=1)
    codes = sqlite3.connect(db).execute("SELECT code FROM faults").fetchall()
    assert codes == [("ssh-hostkey-changed",), ("ssh-hostkey-changed",)]


def test_malformed_site_exits_2_with_one_line(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[site]\nname = "x"\n[[nodes]]\nname = "a"\nrack = "nope"\n')
    out = mixops("collect", "--site", site, "--once", "--db", tmp_path / "x.db", check=2)
    assert out.stderr.strip().splitlines() == [
        f"mixops: {site}:5: nodes[0].rack: rack 'nope' does not exist (define it in [[racks]])"]


def test_parse_prints_contract_json():
    out = mixops("parse", FIX / "ascend" / "910b2c-23.0.3-info.txt", check=0)
    data = json.loads(out.stdout)
    assert data["vendor"] == "ascend" and len(data["cards"]) == 3
    assert data["cards"][2]["power_w"] is None
    csv = mixops("parse", FIX / "nvidia" / "h100-565-query-noheader-nounits.csv", check=0)
    assert json.loads(csv.stdout)["cards"][3]["ecc_uncorrected"] == 2


def test_parse_unknown_text_exits_2(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hello\n")
    out = mixops("parse", f, check=2)
    assert "give --vendor and --command" in out.stderr and "Traceback" not in out.stderr


def test_incidents_unknown_id_exits_2(tmp_path):
    from console.store import Store

    Store(str(tmp_path / "ops.db")).close()
    out = mixops("incidents", "ack", "42", "--by", "li", "--db", tmp_path / "ops.db", check=2)
    assert out.stderr.strip() == f"mixops: incident 42: no such incident ({tmp_path / 'ops.db'})"


def test_incidents_on_a_mistyped_db_exit_2_and_create_nothing(tmp_path):
    typo = tmp_path / "typo" / "x.db"
    for args in (("list",), ("ack", "1", "--by", "li"), ("resolve", "1", "--by", "li"), ("note", "1", "x")):
        out = mixops("incidents", *args, "--db", typo, check=2)
        assert out.stderr.strip() == f"mixops: {typo}: no such database (check --db; this command never creates one)"
    assert not typo.parent.exists()


def test_help_lists_commands():
    out = mixops("--help", check=0)
    for cmd in ("collect", "check", "parse", "incidents", "gui", "demo"):
        assert cmd in out.stdout


@pytest.mark.sshd
@pytest.mark.slow
def _sweeps(db):
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM sweeps").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_sweep_never_loses_committed_sweeps(fleet, tmp_path):
    fleet.start(6, "nvidia")
    site = fleet.site_toml()
    db = tmp_path / "ops.db"
    rnd = random.Random(7)
    committed_before = 0
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "collect", "--site", str(site), "--db",
                                 str(db), "--interval", "0.05", "--quiet"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if committed_before == 0:
            # startup (imports, 6 SSH connects) takes ~1 s, longer on a loaded machine: kill only after the
            # first commit, at a random moment of a later sweep
            deadline = time.time() + 60
            while time.time() < deadline and not _sweeps(db):
                time.sleep(0.05)
        time.sleep(rnd.uniform(0.3, 2.5) if committed_before else rnd.uniform(0.05, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sweeps = conn.execute("SELECT id, started, finished, cards, nodes_ok, nodes_failed + nodes_stale FROM sweeps "
                              "ORDER BY id").fetchall()
        assert len(sweeps) >= committed_before
        for sid, started, finished, cards, ok, bad in sweeps:
            # the nodes that did not answer have an outcome row each; the sweep row counts them all
            outcomes = conn.execute("SELECT count(*) FROM node_outcomes WHERE sweep_id=?", (sid,)).fetchone()[0]
            samples = conn.execute("SELECT count(*) FROM samples WHERE ts >= ? AND ts <= ?",
                                   (started, finished)).fetchone()[0]
            assert ok + bad == 6 and outcomes == bad and samples == cards
        committed_before = len(sweeps)
        conn.close()
    assert committed_before > 0


@pytest.mark.sshd
def test_interval_stops_cleanly_on_sigterm(fleet, tmp_path):
    fleet.start(1, "nvidia")
    db = tmp_path / "ops.db"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "collect", "--site", str(fleet.site_toml()),
                             "--db", str(db), "--interval", "0.2"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "sweep 1:" in out and "Traceback" not in err
