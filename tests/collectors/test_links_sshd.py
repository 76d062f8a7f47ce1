"""Links end to end over a real sshd on 127.0.0.1: a fake nvidia-smi prints its NVLink status and error
counters, `mixops collect --once` stores them, a link that goes down becomes an incident (P1: a job runs on
the node) and the cause of the job's stop on an NCCL timeout, and a node without the tool gets one warning,
not one per sweep."""

from __future__ import annotations

import getpass
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.node import NodeCollector
from collectors.ssh import Endpoint

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "links"

STATUS = "nvidia-smi@nvlink --status"
ERRORS = "nvidia-smi@nvlink -e"


def mixops(*args: object, check: int | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=90, cwd=ROOT)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def _nvlink(down: bool) -> str:
    text = (FIX / "a100-nvlink-status.txt").read_text()
    return text.replace("GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-00000000-0000-0000-0000-000000000001)\n"
                        "         Link 0: 25 GB/s",
                        "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-00000000-0000-0000-0000-000000000001)\n"
                        "         Link 0: <inactive>") if down else text


def _errors(crc: int) -> str:
    return "".join(f"GPU {g}: NVIDIA A100-SXM4-80GB (UUID: GPU-{g})\n" + "".join(
        f"\t Link {i}: Replay Errors: 0\n\t Link {i}: Recovery Errors: 0\n\t Link {i}: CRC Errors: "
        f"{crc if (g, i) == (0, 2) else 0}\n\n" for i in range(12)) for g in range(2))


@pytest.mark.sshd
def test_link_down_on_a_real_node_becomes_an_incident(fleet, tmp_path):
    (node,) = fleet.start(1, "nvidia")
    out = node.root / "out"
    (out / STATUS).write_text(_nvlink(down=False))
    (out / ERRORS).write_text(_errors(crc=10))
    site = fleet.site_toml()
    log = tmp_path / "train.log"
    log.write_text("".join(f" iteration {i:>8}/  100000 | consumed samples: {i * 512} | elapsed time per iteration "
                           f"(ms): 1000.0\n" for i in range(1, 6)))
    site.write_text(site.read_text() + f'\n[[jobs]]\nname = "llm"\nnodes = ["{node.name}"]\nlog = "{log}"\n'
                    'framework = "megatron"\n')
    db = tmp_path / "ops.db"
    mixops("collect", "--site", site, "--db", db, "--once", check=0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), sum(state = 'up'), min(speed_gbps) FROM links WHERE kind = 'nvlink'"
                            ).fetchone() == (24, 24, 200.0)
    (out / STATUS).write_text(_nvlink(down=True))
    (out / ERRORS).write_text(_errors(crc=25))
    with log.open("a") as f:
        f.write("[rank3]:[E ProcessGroupNCCL.cpp:607] [Rank 3] Watchdog caught collective operation timeout: "
                "WorkNCCL(SeqNum=8812, OpType=ALLREDUCE, NumelIn=1048576, Timeout(ms)=600000) ran for 600013 "
                "milliseconds before timing out.\n")
    mixops("collect", "--site", site, "--db", db, "--once", check=0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT node, card_idx, link, state, previous FROM link_events").fetchall() == [
            (node.name, 1, "0", "down", "up")]
        counters = conn.execute("SELECT counters FROM links WHERE card_idx = 0 AND link = '2'").fetchone()[0]
        assert json.loads(counters)["crc_errors"] == 15         # the increase since the last sweep
    listed = [json.loads(line) for line in mixops("incidents", "list", "--db", db, "--json", check=0).stdout.splitlines()]
    (inc,) = [i for i in listed if i["code"] == "LINK-DOWN"]
    assert (inc["severity"], inc["action"], inc["job"]) == ("P1", "reset_card", "llm")
    assert inc["title"].startswith(f"{node.name} card 1 nvlink 0: down")
    assert inc["node"] == node.name and inc["card_idx"] == 1
    # the job stopped on the collective timeout: its interruption's cause is the link, with its incident
    with sqlite3.connect(db) as conn:
        cause, incident = conn.execute("SELECT cause, incident_id FROM job_interruptions WHERE job = 'llm'").fetchone()
    assert cause.startswith(f"LINK-DOWN on {node.name} card 1 nvlink 0 at "), cause
    assert incident == inc["id"]


@pytest.mark.sshd
def test_a_node_without_hccn_tool_warns_once(fleet):
    (node,) = fleet.start(1, "ascend")
    endpoint = Endpoint(node.name, "127.0.0.1", node.port, getpass.getuser(), (str(fleet.client_key),),
                        str(fleet.known_hosts), connect_timeout_s=2, command_timeout_s=4)
    collector = NodeCollector(endpoint, "ascend")
    try:
        first = collector.sweep()
        second = collector.sweep()
    finally:
        collector.close()
    assert first.ok and second.ok, (first.error, second.error)
    assert [w for w in first.warnings if "hccn_tool" in w] == [
        "ascend: hccn_tool -i N -link/-net_health/-link_stat/-stat -g: hccn_tool not found; links not collected "
        "on this node"]
    assert not [w for w in second.warnings if "hccn_tool" in w]
    assert "links.hccn" not in [c.section for c in collector._plan]


@pytest.mark.sshd
def test_unchanged_links_travel_as_one_line_over_a_real_session(fleet):
    (node,) = fleet.start(1, "nvidia")
    out = node.root / "out"
    (out / STATUS).write_text(_nvlink(down=False))
    (out / ERRORS).write_text(_errors(crc=10))
    endpoint = Endpoint(node.name, "127.0.0.1", node.port, getpass.getuser(), (str(fleet.client_key),),
                        str(fleet.known_hosts), connect_timeout_s=2, command_timeout_s=4)
    collector = NodeCollector(endpoint, "nvidia")
    try:
        first, second = collector.sweep(), collector.sweep()
        (out / STATUS).write_text(_nvlink(down=True))
        third = collector.sweep()
    finally:
        collector.close()
    assert first.ok and second.ok and third.ok
    assert len([ln for ln in first.links if ln.peer is None]) == 24 and first.links_same == ()
    assert {"nvlink", "nvlink-errors"} <= set(second.links_same)
    assert not [ln for ln in second.links if ln.kind == "nvlink"]
    assert [ln.state.value for ln in third.links if (ln.card_index, ln.link) == (1, "0")] == ["down"]
    assert "nvlink-errors" in third.links_same and "nvlink" not in third.links_same   # the counters did not change


@pytest.mark.sshd
def test_a_link_text_mixops_cannot_read_is_kept_for_the_operator(fleet):
    """The node's nvidia-smi answers `nvlink --status` with something else (here: its query CSV): one warning
    naming the command and the line, the text kept in the report's raw sections, the link source not asked
    again; the GPU query is read as usual."""
    (node,) = fleet.start(1, "nvidia")
    endpoint = Endpoint(node.name, "127.0.0.1", node.port, getpass.getuser(), (str(fleet.client_key),),
                        str(fleet.known_hosts), connect_timeout_s=2, command_timeout_s=4)
    collector = NodeCollector(endpoint, "nvidia")
    try:
        first, second = collector.sweep(), collector.sweep()
    finally:
        collector.close()
    assert first.ok and len(first.cards) == 4
    status = [w for w in first.warnings if "nvlink --status" in w]
    assert len(status) == 1 and status[0].startswith("nvidia: nvidia-smi nvlink --status: line not understood: ")
    assert "links.nvlink" in first.raw and "query" not in first.raw
    assert first.raw["links.nvlink"].startswith(status[0].split("line not understood: ")[1][:40])
    assert not [w for w in second.warnings if "nvlink" in w]
