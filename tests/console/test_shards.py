"""`mixops collect --shard K/N`: every node in exactly one shard, whole rows (else racks, else nodes) together,
balanced, and the same split in every process (no salted hash())."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.site import load_site, shard_assignment, shard_group, shard_site
from tests.engines import free_port

ROOT = Path(__file__).resolve().parents[2]


def _site_text(tmp_path: Path, url: str = "http://127.0.0.1:9") -> str:
    text = f'[site]\nname = "hall"\n[ssh]\nknown_hosts = "{tmp_path}/kh"\nconfig_file = "{tmp_path}/no"\n'
    for row in "ABCDEFGH":                            # 8 rows of 2 racks of 4 nodes
        for r in (1, 2):
            text += f'[[racks]]\nname = "{row}{r:02d}"\nrow = "{row}"\nslots = 4\n'
    text += '[[racks]]\nname = "X01"\nslots = 4\n[[racks]]\nname = "X02"\nslots = 4\n'   # racks without a row
    for row in "ABCDEFGH":
        for r in (1, 2):
            for s in range(1, 5):
                text += f'[[nodes]]\nname = "n-{row}{r:02d}-{s}"\nrack = "{row}{r:02d}"\nslot = {s}\n'
    for rack in ("X01", "X02"):
        for s in range(1, 3):
            text += f'[[nodes]]\nname = "n-{rack}-{s}"\nrack = "{rack}"\nslot = {s}\n'
    text += '[[nodes]]\nname = "loose-1"\n[[nodes]]\nname = "loose-2"\n'               # no rack at all
    text += '[[jobs]]\nname = "llm"\nnodes = ["n-B*", "n-C*"]\n'
    text += f'[[sources]]\nkind = "prometheus"\nurl = "{url}"\nnodes = ["*"]\ntimeout_s = 1\n'
    return text


@pytest.fixture
def site_path(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(_site_text(tmp_path))
    return path


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 13])
def test_every_node_is_in_exactly_one_shard_and_groups_stay_whole(site_path, count):
    site = load_site(site_path)
    shards = [shard_site(site, k, count) for k in range(1, count + 1)]
    seen = [n.name for s in shards for n in s.nodes]
    assert sorted(seen) == sorted(n.name for n in site.nodes)          # covered, none twice
    where = {n.name: k for k, s in enumerate(shards) for n in s.nodes}
    groups: dict[str, set[int]] = {}
    for n in site.nodes:
        groups.setdefault(shard_group(site, n), set()).add(where[n.name])
    assert all(len(ks) == 1 for ks in groups.values()), groups        # a row, a rack, a node: one shard each
    assert {shard_group(site, n) for n in site.nodes if n.name.startswith("n-A")} == {"row:A"}
    assert shard_group(site, next(n for n in site.nodes if n.name == "n-X01-1")) == "rack:X01"
    assert shard_group(site, next(n for n in site.nodes if n.name == "loose-1")) == "node:loose-1"
    (job_shard,) = [k for k, s in enumerate(shards) if s.jobs]          # a job is followed by one shard
    assert where["n-B01-1"] == job_shard


def test_shards_are_balanced_by_node_count(site_path):
    site = load_site(site_path)
    sizes = sorted(len(shard_site(site, k, 4).nodes) for k in range(1, 5))
    assert sizes == [17, 17, 18, 18]          # 8 rows of 8 over 4: two rows each, then the racks, then the nodes
    rows = [sorted({shard_group(site, n) for n in shard_site(site, k, 4).nodes if n.rack and n.rack[0] != "X"})
            for k in range(1, 5)]
    assert [len(r) for r in rows] == [2, 2, 2, 2], rows


def test_the_split_is_the_same_in_every_process(site_path):
    here = shard_assignment(load_site(site_path), 5)
    code = ("import json, sys; from console.site import load_site, shard_assignment; "
            "print(json.dumps(shard_assignment(load_site(sys.argv[1]), 5)))")
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, str(site_path)], capture_output=True, text=True,
                             cwd=ROOT, env=env, timeout=60, check=True)
        assert json.loads(out.stdout) == here


@pytest.mark.parametrize("value", ["0/3", "4/3", "1/0", "a/b", "3", "1/5000", "-1/2", "1/2/3", ""])
def test_bad_shard_is_one_line_exit_2(value, site_path, capsys):
    from console.cli import run

    assert run(["collect", "--site", str(site_path), "--once", "--shard", value]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.splitlines()) == 1 and "--shard" in out.err, out.err


def test_a_shard_without_nodes_is_one_line_exit_2(tmp_path, capsys):
    from console.cli import run

    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nname = "x"\n[ssh]\nknown_hosts = "{tmp_path}/kh"\nconfig_file = "{tmp_path}/no"\n'
                    '[[nodes]]\nname = "a"\n')
    assert run(["collect", "--site", str(path), "--db", str(tmp_path / "x.db"), "--once", "--shard", "2/2"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["mixops: --shard 2/2: no nodes in this shard (the site has 1 row/rack/node group(s), each "
                   "collected whole by one shard)"]


def test_collect_shard_sweeps_its_nodes_only(tmp_path):
    # the nodes are read from a source that is down: no SSH needed, each node's outcome is still stored
    path = tmp_path / "site.toml"
    path.write_text(_site_text(tmp_path, f"http://127.0.0.1:{free_port()}"))
    site = load_site(path)
    mine = {n.name for n in shard_site(site, 2, 3).nodes}
    db = tmp_path / "s2.db"
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "collect", "--site", str(path), "--db", str(db),
                          "--once", "--shard", "2/3"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1, out.stderr               # its nodes failed (the source is down): exit 1
    assert out.stderr.splitlines()[0].startswith(f"mixops: shard 2/3: {len(mine)} of {len(site.nodes)} nodes (")
    assert "Traceback" not in out.stderr
    failed = [line for line in out.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and f"({len(mine)} node(s)): FAILED: source unavailable: http://127.0.0.1:" in failed[0]
    conn = sqlite3.connect(db)
    try:
        stored = dict(conn.execute("SELECT name, last_error FROM nodes").fetchall())
    finally:
        conn.close()
    assert set(stored) == mine
    assert all(e is not None and e.startswith("source unavailable: http://127.0.0.1:") for e in stored.values())


def test_a_shard_has_its_own_default_database(tmp_path, monkeypatch, capsys):
    from console.cli import run

    path = tmp_path / "site.toml"
    path.write_text(_site_text(tmp_path, f"http://127.0.0.1:{free_port()}"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert run(["collect", "--site", str(path), "--once", "--shard", "1/2"]) == 1      # its nodes' source is down
    assert run(["collect", "--site", str(path), "--once", "--shard", "2/2"]) == 1
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "data" / "mixops").glob("*.db")) == [
        "hall.shard-1-of-2.db", "hall.shard-2-of-2.db"]
