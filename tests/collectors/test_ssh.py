"""The SSH layer and node collector against real OpenSSH sshd processes on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from collectors.model import Command
from collectors.node import NodeCollector
from collectors.ssh import Endpoint, HostKeyChanged, HostKeyUnknown, NodeSession, SSHError, build_script
from console.site import load_site
from tests.sshd import keygen

pytestmark = pytest.mark.sshd


def _endpoint(fleet, node, **kw):
    site = load_site(fleet.site_toml(**kw))
    return site.endpoint(next(n for n in site.nodes if n.name == node.name))


def test_sweep_over_kept_open_session(fleet):
    (node,) = fleet.start(1, "nvidia")
    nc = NodeCollector(_endpoint(fleet, node), "nvidia")
    first = nc.sweep()
    assert first.ok, first.error
    assert [c.index for c in first.cards] == [0, 1, 2, 3]
    transport = nc.session._client.get_transport()
    second = nc.sweep()
    assert second.ok and nc.session._client.get_transport() is transport  # same connection reused
    nc.close()


def test_vendor_detected_when_site_omits_it(fleet):
    (node,) = fleet.start(1, "ascend")
    nc = NodeCollector(_endpoint(fleet, node, vendor_in_site=False), None)
    report = nc.sweep()
    assert report.ok and report.vendor == "ascend" and "npu-smi" in report.tools
    assert len(report.cards) == 3
    nc.close()


@pytest.mark.parametrize(("vendor", "cards"), [("hygon", 2), ("amd", 2), ("cambricon", 3), ("metax", 2),
                                               ("mthreads", 2), ("iluvatar", 2), ("denglin", 2)])
def test_every_vendor_over_real_ssh_with_detection(fleet, vendor, cards):
    (node,) = fleet.start(1, vendor)
    nc = NodeCollector(_endpoint(fleet, node, vendor_in_site=False), None)
    report = nc.sweep()
    assert report.ok, report.error
    assert report.vendor == vendor and len(report.cards) == cards and report.warnings == ()
    nc.close()


def test_connection_refused_fails_only_that_node(fleet):
    a, b = fleet.start(2, "nvidia")
    fleet.stop_node(b)
    ra = NodeCollector(_endpoint(fleet, a), "nvidia").sweep()
    rb = NodeCollector(_endpoint(fleet, b), "nvidia").sweep()
    assert ra.ok
    assert not rb.ok and "connection refused" in rb.error


def test_unknown_host_key_is_refused_with_how_to_trust(fleet):
    (node,) = fleet.start(1, "nvidia", trust=False)
    with pytest.raises(HostKeyUnknown) as info:
        NodeSession(_endpoint(fleet, node)).run((Command("x", "true"),))
    assert "--trust-new" in str(info.value) and info.value.fingerprint.startswith("SHA256:")


def test_changed_host_key_is_refused_and_recorded_as_fault(fleet, tmp_path):
    (node,) = fleet.start(1, "nvidia", trust=False)
    other = keygen(tmp_path / "other_host_key")
    fleet.trust(node, " ".join(other.with_suffix(".pub").read_text().split()[:2]))
    with pytest.raises(HostKeyChanged):
        NodeSession(_endpoint(fleet, node)).run((Command("x", "true"),))
    report = NodeCollector(_endpoint(fleet, node), "nvidia").sweep()
    assert not report.ok and "HOST KEY CHANGED" in report.error
    assert [f.code for f in report.faults] == ["ssh-hostkey-changed"]


def test_auth_failure_names_the_user(fleet, client_keys):
    (node,) = fleet.start(1, "nvidia")
    report = NodeCollector(_endpoint(fleet, node, identity=client_keys[1]), "nvidia").sweep()
    assert not report.ok and report.error.startswith("authentication failed for user ")


def test_missing_tool_reports_stderr_tail(fleet):
    (node,) = fleet.start(1, "nvidia")
    node.remove_tool("nvidia-smi")
    report = NodeCollector(_endpoint(fleet, node), "nvidia").sweep()
    assert not report.ok and "nvidia-smi not found" in report.error


def test_tool_exit_nonzero_reports_stderr(fleet):
    (node,) = fleet.start(1, "ascend")
    node.set_mode("fail")
    report = NodeCollector(_endpoint(fleet, node), "ascend").sweep()
    assert not report.ok
    assert report.error == "npu-smi exited 1: npu-smi: error: failed to query devices (driver not loaded)"


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
def test_garbage_output_warns_keeps_raw_and_fakes_nothing(fleet, mode):
    (node,) = fleet.start(1, "ascend")
    node.set_mode(mode)
    report = NodeCollector(_endpoint(fleet, node), "ascend").sweep()
    assert report.warnings, report
    assert any(w.startswith("ascend: npu-smi info:") for w in report.warnings)
    assert report.raw.get("info")
    for card in report.cards:
        assert card.temperature_c is None or card.temperature_c > 0


def test_hung_tool_fails_at_timeout_while_20_others_finish(fleet):
    from console.service import Collector
    from console.store import Store

    nodes = fleet.start(21, "nvidia")
    nodes[0].set_mode("hang")
    # 5 s leaves the 20 healthy nodes room on a loaded machine; the hung one must still stop at 5 s
    site = load_site(fleet.site_toml(command_timeout_s=5))
    store = Store(str(fleet.root / "ops.db"))
    collector = Collector(site, store, max_parallel=32)
    try:
        collector.sweep()  # connect everything first
        t0 = time.monotonic()
        summary = collector.sweep()
        elapsed = time.monotonic() - t0
    finally:
        collector.close()
        store.close()
    failed = {r.node: r.error for r in summary.reports if not r.ok}
    assert list(failed) == ["n001"] and "timed out after 5 s" in failed["n001"]
    assert elapsed <= 5 + 3


def test_reconnects_after_node_restart(fleet):
    (node,) = fleet.start(1, "nvidia")
    nc = NodeCollector(_endpoint(fleet, node), "nvidia")
    assert nc.sweep().ok
    fleet.stop_node(node)
    assert not nc.sweep().ok
    fleet._launch(node)
    fleet._wait(node)
    assert nc.sweep().ok  # first retry happens on the very next sweep
    nc.close()


def test_proxyjump_through_a_jump_host(fleet):
    jump, target = fleet.start(2, "nvidia")
    site_path = fleet.site_toml()
    text = site_path.read_text().replace(f'name = "{target.name}"', f'name = "{target.name}"\njump = "jumphost"')
    cfg = fleet.root / "ssh_config"
    cfg.write_text(f"Host jumphost\n  HostName 127.0.0.1\n  Port {jump.port}\n")
    text = text.replace(f'config_file = "{fleet.root}/no_ssh_config"', f'config_file = "{cfg}"')
    site_path.write_text(text)
    site = load_site(site_path)
    ep = site.endpoint(next(n for n in site.nodes if n.name == target.name))
    assert ep.jump is not None and ep.jump.port == jump.port
    nc = NodeCollector(ep, "nvidia")
    report = nc.sweep()
    assert report.ok, report.error
    inner = nc.session._client.get_transport()
    outer = inner.mixops_jump.get_transport()
    nc.close()                                   # both reader threads end at once, not at their next wake
    inner.join(1.0)
    outer.join(1.0)
    assert not inner.is_alive() and not outer.is_alive()


def test_script_contains_only_plan_constants():
    script = build_script((Command("query", "nvidia-smi -L"),), "00ff", 8, 1234)
    assert "MIXOPS_SINCE=1234" in script and "'nvidia-smi -L'" in script
    with pytest.raises(ValueError):
        build_script((Command("bad;rm", "x"),), "00ff", 8, 0)


def test_ssh_error_is_one_line():
    ep = Endpoint("nowhere", "127.0.0.1", port=1, connect_timeout_s=1, known_hosts="/dev/null")
    with pytest.raises(SSHError) as info:
        NodeSession(ep).run((Command("x", "true"),))
    assert "\n" not in str(info.value)


def test_an_answer_read_after_its_deadline_is_not_a_timeout(fleet):
    """With hundreds of nodes the answers are read long after they arrived: that is not a timeout."""
    (node,) = fleet.start(1, "nvidia")
    nc = NodeCollector(_endpoint(fleet, node, command_timeout_s=1), "nvidia")
    assert nc.sweep().ok
    nc.begin()
    time.sleep(3.5)                       # past the deadline (command_timeout_s 1 s + 1 s)
    report = nc.end()
    assert report.ok, report.error
    nc.close()


def test_training_job_log_and_checkpoints_over_ssh(fleet):
    """A job's log is read from the offset reached, rotation re-reads it, checkpoints are committed by the tracker."""
    from console.service import Collector
    from console.store import Store

    (node,) = fleet.start(1, "nvidia")
    log = node.root / "train.log"
    ckpt = node.root / "ckpt"
    (ckpt / "iter_0000100").mkdir(parents=True)
    (ckpt / "iter_0000200").mkdir()
    (ckpt / "latest_checkpointed_iteration.txt").write_text("100\n")
    log.write_text(" [2026-11-22 01:00:00] iteration      100/  1000 | lm loss: 2.0 |\n"
                   " [2026-11-22 01:00:10] iteration      105/  1000 | lm loss: 2.0 |\n partial line without newl")
    site_file = fleet.site_toml()
    site_file.write_text(site_file.read_text() + f'\n[[jobs]]\nname = "llm"\nnodes = ["n*"]\nlog = "{log}"\n'
                         f'checkpoint_dir = "{ckpt}"\nframework = "megatron"\n')
    store = Store(str(fleet.root / "jobs.db"))
    collector = Collector(load_site(site_file), store)
    try:
        collector.sweep()
        state, step = store.conn.execute("SELECT state, last_step FROM jobs WHERE name = 'llm'").fetchone()
        assert step == 105
        assert [r[0] for r in store.conn.execute("SELECT step FROM checkpoints WHERE job = 'llm'")] == [100]
        with log.open("a") as fh:
            fh.write("ine\n [2026-11-22 01:00:20] iteration      110/  1000 | lm loss: 2.0 |\n")
        collector.sweep()
        steps = [r[0] for r in store.conn.execute(
            "SELECT step FROM job_events WHERE job = 'llm' AND kind = 'progress' ORDER BY ts")]
        assert steps == [105, 110]                      # progress is kept once per read (the newest line)
        lines, unmatched = store.conn.execute("SELECT lines, unmatched FROM job_logs WHERE job = 'llm'").fetchone()
        assert (lines, unmatched) == (4, 1)             # each line once, the partial one when complete
        log.write_text(" [2026-11-22 02:00:00] iteration      7/  1000 | lm loss: 2.0 |\n")   # rotated
        collector.sweep()
        assert store.conn.execute("SELECT last_step FROM jobs WHERE name = 'llm'").fetchone()[0] == 7
        stop = store.conn.execute("SELECT resumed_from, resumed_at FROM job_interruptions WHERE job = 'llm' "
                                  "AND last_step = 110").fetchone()
        assert stop[1] is not None                      # the step went back: a restart, seen after the fact
        log.unlink()
        collector.sweep()
        row = store.conn.execute("SELECT state FROM jobs WHERE name = 'llm'").fetchone()
        problem = store.conn.execute("SELECT problem FROM job_logs WHERE job = 'llm'").fetchone()[0]
        assert row[0] == "cannot read" and "cannot read log" in problem
    finally:
        collector.close()
        store.close()


def test_idle_session_reader_is_quiet_and_close_ends_it_at_once(fleet):
    """paramiko's reader thread polls every 0.1 s by default; an idle session must not cost CPU that way,
    and closing must still end the thread at once (the socket is shut down, not left to time out)."""
    import socket as socket_mod

    from collectors.ssh import READER_WAKE_S

    (node,) = fleet.start(1, "nvidia")
    nc = NodeCollector(_endpoint(fleet, node), "nvidia")
    assert nc.sweep().ok
    transport = nc.session._client.get_transport()
    assert isinstance(transport.sock, socket_mod.socket) and transport.sock.gettimeout() == READER_WAKE_S
    assert nc.sweep().ok                                   # still answers with the calmer reader
    nc.close()
    transport.join(1.0)
    assert not transport.is_alive()


def test_frames_of_another_nonce_are_text_not_structure():
    from collectors.ssh import parse_frames

    fake = "\n@@MX 0000000000000000 X query\n\n@@MX 0000000000000000 D\n"
    data = (f"\n@@MX 00ff00ff00ff00ff B query\nline{fake}more\n\n@@MX 00ff00ff00ff00ff E query 0\n"
            f"\n@@MX 00ff00ff00ff00ff X query\n\n@@MX 00ff00ff00ff00ff D\n")
    out = parse_frames(data, "00ff00ff00ff00ff")
    assert out.sections["query"].stdout.startswith("line") and "more" in out.sections["query"].stdout
    assert out.timed_out_in is None
