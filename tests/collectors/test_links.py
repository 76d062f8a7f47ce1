"""Link parsers (collectors.links) on recorded outputs in tests/fixtures/links, the plan's link commands and
one sweep's link sections."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import links, registry
from collectors.model import LinkState, ParseResult
from console.parse_cmd import parse_capture, to_json

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "links"


def _text(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def test_every_fixture_names_its_source():
    names = [p for p in FIX.iterdir() if not p.name.endswith(".source")]
    assert names
    for p in names:
        assert (FIX / (p.name + ".source")).read_text().strip(), p.name


# (file, command, links, up, down, warnings)
TABLE = [
    ("h100-590-nvlink-status.txt", "nvidia-smi nvlink --status", 36, 35, 1),
    ("a100-nvlink-status.txt", "nvidia-smi nvlink -s", 24, 24, 0),
    ("l40s-595-nvlink-status-none.txt", "nvidia-smi nvlink -s", 0, 0, 0),
    ("h100-mig-590-nvlink-status.txt", "nvidia-smi nvlink -s", 0, 0, 0),
    ("h100-nvlink-errors.txt", "nvidia-smi nvlink -e", 36, 0, 0),
    ("hccn-910b-link-up.txt", "hccn_tool -i 0 -link -g", 1, 1, 0),
    ("hccn-910b-link-down.txt", "hccn_tool -i 3 -link -g", 1, 0, 1),
    ("hccn-910a-net-health-socket-failed.txt", "hccn_tool -i 0 -net_health -g", 1, 0, 0),
    ("hccn-910b-net-health-success.txt", "hccn_tool -i 0 -net_health -g", 1, 0, 0),
    ("hccn-910a-23.0.5-link-stat.txt", "hccn_tool -i 2 -link_stat -g", 1, 0, 0),
    ("hccn-doc-link-stat-device.txt", "hccn_tool -i 0 -link_stat -g", 1, 0, 0),
    ("hccn-910b-stat.txt", "hccn_tool -i 0 -stat -g", 1, 0, 0),
    ("sysfs-ib-ndr-2hca.txt", "/sys/class/infiniband/*/ports/*", 2, 1, 1),
    ("sysfs-roce-mlx5.txt", "/sys/class/infiniband/*/ports/*", 1, 1, 0),
    ("h100-x8-topo-m.txt", "nvidia-smi topo -m", 28, 28, 0),
    ("910b-x8-npu-smi-topo.txt", "npu-smi info -t topo", 28, 28, 0),
]


@pytest.mark.parametrize(("name", "command", "n", "up", "down"), TABLE, ids=[t[0] for t in TABLE])
def test_fixture_table(name, command, n, up, down):
    for asked in (command, None):       # with the command, and detected from the text alone
        result = parse_capture(_text(name), None, asked)
        assert result.warnings == (), (asked, result.warnings)
        assert len(result.links) == n, asked
        assert sum(ln.state is LinkState.UP for ln in result.links) == up
        assert sum(ln.state is LinkState.DOWN for ln in result.links) == down


def test_nvlink_status_speed_is_gbps_and_inactive_is_down():
    result = links.parse_nvlink_status(_text("h100-590-nvlink-status.txt"))
    by = {(ln.card_index, ln.link): ln for ln in result.links}
    assert by[(0, "0")].speed_gbps == pytest.approx(26.562 * 8)
    assert by[(0, "0")].kind == "nvlink"
    assert by[(1, "7")].state is LinkState.DOWN and by[(1, "7")].speed_gbps is None   # not printed: None
    a100 = links.parse_nvlink_status(_text("a100-nvlink-status.txt"))
    assert {ln.speed_gbps for ln in a100.links} == {200.0}


def test_nvlink_errors_counters():
    result = links.parse_nvlink_errors(_text("h100-nvlink-errors.txt"))
    by = {(ln.card_index, ln.link): ln for ln in result.links}
    assert by[(0, "3")].counters == {"replay_errors": 12, "recovery_errors": 0, "crc_errors": 1843}
    assert by[(1, "17")].counters["crc_errors"] == 0
    assert by[(0, "3")].state is LinkState.UNKNOWN       # -e says nothing of the state


def test_nvlink_errors_na_is_none_and_one_line_form():
    text = "GPU 0: NVIDIA H100 (UUID: GPU-x)\n   Link 1: Replay Errors: 142, Recovery Errors: N/A, CRC Errors: 891\n"
    (ln,) = links.parse_nvlink_errors(text).links
    assert ln.counters == {"replay_errors": 142, "recovery_errors": None, "crc_errors": 891}


def test_hccn_link_stat_counts_and_records():
    (ln,) = parse_capture(_text("hccn-910a-23.0.5-link-stat.txt"), None, None).links
    assert (ln.card_index, ln.kind, ln.link) == (2, "roce", "0")       # device from the [devid N] prefix
    assert ln.counters == {"link_up_count": 5}
    assert ln.detail == "2 link down record(s)"


def test_hccn_stat_keeps_counters_as_printed():
    (ln,) = links.parse_hccn(_text("hccn-910b-stat.txt"), "-stat", 0).links
    assert ln.counters["mac_rx_fcs_err_pkt_num"] == 17
    assert ln.counters["roce_rx_err_pkt_num"] == 0
    assert len(ln.counters) == 19


def test_hccn_net_health_is_detail_not_state():
    (ln,) = links.parse_hccn(_text("hccn-910a-net-health-socket-failed.txt"), "-net_health", 0).links
    assert ln.state is LinkState.UNKNOWN
    assert ln.detail == "net health: Socket failed"


def test_rdma_sysfs_ports():
    result = links.parse_rdma_sysfs(_text("sysfs-ib-ndr-2hca.txt"))
    by = {ln.link: ln for ln in result.links}
    up, down = by["mlx5_0/1"], by["mlx5_1/1"]
    assert (up.kind, up.state, up.speed_gbps, up.card_index) == ("ib", LinkState.UP, 400.0, None)
    assert down.state is LinkState.DOWN and down.detail == "DOWN, Disabled"
    assert down.counters["symbol_error"] == 42 and down.counters["link_downed"] == 3
    (roce,) = links.parse_rdma_sysfs(_text("sysfs-roce-mlx5.txt")).links
    assert roce.kind == "roce" and roce.speed_gbps == 200.0
    assert "port_xmit_discards" not in roce.counters       # not printed: absent, never 0


@pytest.mark.parametrize(("command", "text", "expect"), [
    ("nvidia-smi nvlink --status", "GPU 0: X (UUID: GPU-a)\n\t Link 0: 26.562 GB/s\nsomething new here\n",
     "nvidia: nvidia-smi nvlink --status: line not understood: something new here"),
    ("nvidia-smi nvlink --status", "GPU 0: X (UUID: GPU-a)\n\t Link 0: Training\n",
     "nvidia: nvidia-smi nvlink --status: link state not understood: Link 0: Training"),
    ("hccn_tool -i 0 -link -g", "link state is: weird\n", "ascend: hccn_tool -i 0 -link -g: output not understood"),
    ("hccn_tool -i 0 -stat -g", "packet statistics:\nthis is not a counter\n",
     "ascend: hccn_tool -i 0 -stat -g: line not understood: this is not a counter"),
    ("/sys/class/infiniband/*/ports/*", "garbage\n", "linux: /sys/class/infiniband/*/ports/*: line not understood"),
])
def test_unknown_output_is_one_warning_naming_vendor_command_and_line(command, text, expect):
    result = parse_capture(text, None, command)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(expect)


def test_parse_json_has_links_with_nulls():
    out = to_json(parse_capture(_text("h100-590-nvlink-status.txt"), None, None))
    assert out["vendor"] == "nvidia" and out["command"] == "nvidia-smi nvlink --status"
    down = next(ln for ln in out["links"] if ln["state"] == "down")
    assert down == {"card_index": 1, "kind": "nvlink", "link": "7", "peer": None, "state": "down",
                    "speed_gbps": None, "counters": {}, "detail": "inactive"}
    json.dumps(out)


def test_empty_a10_output_is_no_links_no_warning():
    result = parse_capture("", "nvidia", "nvidia-smi nvlink --status")
    assert (result.links, result.warnings) == ((), ())


# ---- the plan and one sweep's sections ----------------------------------------------------------------

def _sections(**texts: str) -> dict[str, str]:
    """Link sections of an NVIDIA sweep; topology not read in it (a later sweep of a node up for long)."""
    return {"links.topo-nvidia": "mixops-skip\n"} | {f"links.{k.replace('_', '-')}": v for k, v in texts.items()}


def test_plan_asks_link_sources_after_the_vendor_commands():
    nv = registry.get("nvidia").plan(None)
    assert nv[0].section == "query"
    assert [c.section for c in nv if c.section.startswith("links.")] == [
        "links.topo-nvidia", "links.nvlink", "links.nvlink-errors", "links.rdma"]
    asc = registry.get("ascend").plan(None)
    assert [c.section for c in asc if c.section.startswith("links.")] == ["links.topo-ascend", "links.hccn",
                                                                            "links.rdma"]
    mlu = registry.get("cambricon").plan(None)
    assert [c.section for c in mlu if c.section.startswith("links.")] == ["links.rdma"]


def test_ascend_plan_uses_the_npu_ids_of_the_last_table_as_integers():
    from collectors.model import CardSample

    prev = ParseResult("ascend", "npu-smi info", cards=(CardSample(0), CardSample(1, chip=0), CardSample(7)))
    (cmd,) = [c for c in links.plan("ascend", prev) if c.section == "links.hccn"]
    assert "for i in 0 1 7; do" in cmd.shell
    (first,) = [c for c in links.plan("ascend", None) if c.section == "links.hccn"]
    assert "/dev/davinci" in first.shell


def test_sweep_sections_merge_status_and_errors():
    status = _text("h100-590-nvlink-status.txt") + "mixops-rc=0\n"
    errors = _text("h100-nvlink-errors.txt") + "mixops-rc=0\n"
    got = links.parse_sections("nvidia", _sections(nvlink=status, nvlink_errors=errors, rdma="mixops-missing: no RDMA"))
    by = {(ln.card_index, ln.link): ln for ln in got.links}
    assert len(by) == 36
    assert by[(0, "3")].state is LinkState.UP and by[(0, "3")].counters["crc_errors"] == 1843
    assert got.warnings == ()
    assert got.missing == ("rdma",)         # no RDMA hardware: silent, not asked again


def test_missing_tool_is_one_warning_then_not_asked_again():
    vendor = registry.get("ascend")
    sections = {"info": "", "links.topo-ascend": "mixops-skip\n", "links.hccn": "mixops-missing: hccn_tool\n",
                "links.rdma": "mixops-missing: no RDMA\n"}
    got = links.with_links("ascend", ParseResult("ascend", "npu-smi info"), sections)
    assert got.warnings == ("ascend: hccn_tool -i N -link/-net_health/-link_stat/-stat -g: hccn_tool not found; "
                            "links not collected on this node",)
    later = vendor.plan(got)
    assert [c.section for c in later if c.section.startswith("links.")] == ["links.topo-ascend"]
    # the next sweep: sections not asked stay missing, with no new warning
    again = links.with_links("ascend", ParseResult("ascend", "npu-smi info"), {"info": "",
                                                                                "links.topo-ascend": "mixops-skip"})
    assert again.warnings == () and set(again.links_missing) == {"hccn", "rdma"}


def test_failing_tool_is_one_warning():
    got = links.parse_sections("nvidia", _sections(
        nvlink="GPU 0: X (UUID: GPU-a)\n\t Link 0: 26.562 GB/s\nmixops-rc=0\n",
        nvlink_errors="nvidia-smi: unsupported arguments 'nvlink -e'\nmixops-rc=2\n", rdma="mixops-rc=0\n"))
    assert got.warnings == ("nvidia: nvidia-smi nvlink -e: exited 2: nvidia-smi: unsupported arguments 'nvlink -e'; "
                            "not asked again",)
    assert got.missing == ("nvlink-errors",)
    assert len(got.links) == 1


def test_a_section_cut_short_is_asked_again():
    got = links.parse_sections("nvidia", _sections(nvlink="", nvlink_errors="", rdma=""))
    assert got == links.SweepLinks((), (), ())


def test_hccn_sweep_blocks():
    text = ("@@hccn 0 -link\nlink status: UP\nmixops-rc=0\n@@hccn 0 -net_health\nnet health status: Success\n"
            "mixops-rc=0\n@@hccn 0 -link_stat\n" + _text("hccn-doc-link-stat-device.txt") + "mixops-rc=0\n"
            "@@hccn 0 -stat\n" + _text("hccn-910b-stat.txt") + "mixops-rc=0\n"
            "@@hccn 1 -link\nlink status: DOWN\nmixops-rc=0\n@@hccn 1 -net_health\nError: device 1 busy\nmixops-rc=1\n")
    result = links.parse_hccn_sweep(text)
    by = {ln.card_index: ln for ln in result.links}
    assert by[0].state is LinkState.UP and by[0].counters["link_up_count"] == 2
    assert by[0].counters["mac_rx_fcs_err_pkt_num"] == 17 and by[0].detail.startswith("net health: Success")
    assert by[1].state is LinkState.DOWN
    assert result.warnings == ("ascend: hccn_tool -i 1 -net_health -g: exited 1: Error: device 1 busy",)


@pytest.mark.parametrize("source", links.SOURCES, ids=lambda s: s.name)
def test_link_shells_are_valid_sh_and_constant(source):
    shell = links._hccn_shell((0, 1)) if source.name == "hccn" else source.shell
    subprocess.run(["/bin/sh", "-n", "-c", shell], check=True)


def test_rdma_shell_on_this_machine_answers_ports_or_missing():
    out = subprocess.run(["/bin/sh", "-c", links.source("rdma").shell], capture_output=True, text=True, timeout=10)
    got = links.parse_sections("cambricon", {"links.rdma": out.stdout})
    assert got.warnings == ()
    assert got.missing == ("rdma",) or got.links


def test_topology_is_one_link_per_connected_pair_kind_from_its_code():
    nv = parse_capture(_text("h100-x8-topo-m.txt"), None, None)
    assert nv.command == "nvidia-smi topo -m"
    pairs = {(ln.card_index, ln.peer) for ln in nv.links}
    assert len(pairs) == 28 and (0, "GPU7") in pairs and (7, "GPU0") not in pairs
    assert {(ln.kind, ln.detail) for ln in nv.links} == {("nvlink", "NV18")}
    assert not any("NIC" in (ln.peer or "") for ln in nv.links)          # PCIe paths to NICs are no links
    npu = parse_capture(_text("910b-x8-npu-smi-topo.txt"), None, None)
    assert npu.vendor == "ascend" and {ln.kind for ln in npu.links} == {"hccs"}


def test_topology_pcie_only_and_unknown_codes():
    pcie = "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tSYS\t0-7\nGPU1\tSYS\t X \t8-15\n"
    assert parse_capture(pcie, "nvidia", "nvidia-smi topo -m").links == ()
    odd = "\tGPU0\tGPU1\nGPU0\t X \tQQ9\nGPU1\tQQ9\t X \n"
    result = parse_capture(odd, "nvidia", "nvidia-smi topo -m")
    assert result.links == ()
    assert result.warnings == ("nvidia: nvidia-smi topo -m: connection code 'QQ9' not known to mixops: GPU0\t X \tQQ9",)


def test_topology_is_read_on_the_first_sweep_and_after_a_reboot_only():
    first = {c.section: c.shell for c in links.plan("nvidia", None)}
    later = {c.section: c.shell for c in links.plan("nvidia", ParseResult("nvidia", "q"))}
    assert "/proc/uptime" not in first["links.topo-nvidia"] and "nvidia-smi topo -m" in first["links.topo-nvidia"]
    assert "/proc/uptime" in later["links.topo-nvidia"]
    out = subprocess.run(["/bin/sh", "-c", later["links.topo-nvidia"]], capture_output=True, text=True, timeout=10)
    with open("/proc/uptime") as f:
        booted_long_ago = float(f.read().split()[0]) >= links.TOPO_AFTER_BOOT_S
    if booted_long_ago:
        assert out.stdout.strip() == "mixops-skip"
    got = links.parse_sections("nvidia", {"links.topo-nvidia": "mixops-skip\n", "links.nvlink": "",
                                          "links.nvlink-errors": "", "links.rdma": ""})
    assert got == links.SweepLinks((), (), ())
    topo = _text("h100-x8-topo-m.txt") + "mixops-rc=0\n"
    got = links.parse_sections("nvidia", {"links.topo-nvidia": topo})
    assert len(got.links) == 28 and got.warnings == ()


def test_nvlink_errors_travel_without_zeros_and_come_back_whole(tmp_path):
    """The plan's shell (real /bin/sh and awk, a stand-in nvidia-smi printing the fixture) drops the zero lines;
    the sweep's parse gives the same counters as the whole output for every lane that is up, none for a down one."""
    tool = tmp_path / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\ncase \"$*\" in 'nvlink -e') cat {FIX / 'h100-nvlink-errors.txt'} ;;\n"
                    f"'nvlink --status') cat {FIX / 'h100-590-nvlink-status.txt'} ;; esac\n")
    tool.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    shells = {c.section: c.shell for c in links.plan("nvidia", ParseResult("nvidia", "q"))}
    run = {sec: subprocess.run(["/bin/sh", "-c", shells[sec]], capture_output=True, text=True, env=env,
                               timeout=10).stdout for sec in ("links.nvlink", "links.nvlink-errors")}
    assert len(run["links.nvlink-errors"]) < 400        # 2 GPU lines, 2 nonzero counters, markers
    got = links.parse_sections("nvidia", _sections(nvlink=run["links.nvlink"],
                                                   nvlink_errors=run["links.nvlink-errors"], rdma="mixops-rc=0\n"))
    assert got.warnings == ()
    whole = {(ln.card_index, ln.link): ln.counters
             for ln in links.parse_nvlink_errors(_text("h100-nvlink-errors.txt")).links}
    by = {(ln.card_index, ln.link): ln for ln in got.links}
    assert len(by) == 36
    for key, ln in by.items():
        if ln.state is LinkState.UP:
            assert ln.counters == whole[key], key
        else:
            assert key == (1, "7") and ln.counters == {}        # down: not printed → no counters, never 0
    assert by[(0, "3")].counters["crc_errors"] == 1843


def test_unchanged_output_travels_as_one_line(tmp_path):
    """The node checksums each digest source's output: the text goes out when it changed, else `mixops-same`."""
    tool = tmp_path / "nvidia-smi"
    status = tmp_path / "status.txt"
    status.write_text(_text("h100-590-nvlink-status.txt"))
    tool.write_text(f"#!/bin/sh\ncase \"$*\" in 'nvlink --status') cat {status} ;; esac\n")
    tool.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}

    def sweep(previous):
        (cmd,) = [c for c in links.plan("nvidia", previous) if c.section == "links.nvlink"]
        text = subprocess.run(["/bin/sh", "-c", cmd.shell], capture_output=True, text=True, env=env,
                              timeout=10).stdout
        got = links.with_links("nvidia", ParseResult("nvidia", "q"), _sections(nvlink=text))
        return text, got

    text, first = sweep(ParseResult("nvidia", "q"))
    assert len(first.links) == 36 and first.links_same == () and dict(first.links_digest)["nvlink"] > 0
    text, second = sweep(first)
    assert text.startswith("mixops-same ") and len(text) < 40
    assert second.links == () and second.links_same == ("nvlink",) and second.links_digest == first.links_digest
    assert "nvlink" not in second.links_missing and second.warnings == ()
    status.write_text(_text("h100-590-nvlink-status.txt").replace("Link 3: 26.562 GB/s", "Link 3: <inactive>", 1))
    text, third = sweep(second)                 # changed: the whole text again
    assert len(third.links) == 36 and third.links_digest != first.links_digest
    assert sum(ln.state is LinkState.DOWN for ln in third.links) == 2


def test_hccn_shell_keeps_errors_drops_traffic_and_the_clock_then_travels_as_one_line(tmp_path):
    tool = tmp_path / "hccn_tool"
    tool.write_text("#!/bin/sh\ncase \"$3\" in\n"
                    f"  -link) echo 'link status: UP' ;;\n  -net_health) echo 'net health status: Success' ;;\n"
                    f"  -link_stat) cat {FIX / 'hccn-doc-link-stat-device.txt'} | sed \"s/10:08:28/$(date +%T)/\" ;;\n"
                    f"  -stat) cat {FIX / 'hccn-910b-stat.txt'} | sed \"s/122404/$$/\" ;;\nesac\n")
    tool.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    from collectors.model import CardSample

    def sweep(previous):
        (cmd,) = [c for c in links.plan("ascend", previous) if c.section == "links.hccn"]
        text = subprocess.run(["/bin/sh", "-c", cmd.shell], capture_output=True, text=True, env=env,
                              timeout=10).stdout
        got = links.with_links("ascend", replace(previous, links_missing=()), {"links.hccn": text,
                                                                              "links.topo-ascend": "mixops-skip"})
        return text, replace(got, cards=previous.cards)

    prev = ParseResult("ascend", "npu-smi info", cards=(CardSample(0), CardSample(1)))
    text, first = sweep(prev)
    assert "current time" not in text and "nic_tx_all_pkg_num" not in text and "mac_tx_mac_pause_num" not in text
    by = {ln.card_index: ln for ln in first.links}
    assert set(by) == {0, 1} and by[0].state is LinkState.UP
    assert by[0].counters == {"link_up_count": 2, "mac_tx_bad_pkt_num": 0, "mac_rx_bad_pkt_num": 3,
                              "mac_rx_fcs_err_pkt_num": 17, "roce_rx_err_pkt_num": 0, "roce_tx_err_pkt_num": 0,
                              "roce_cqe_err_num": 0, "roce_qp_status_err_num": 0}
    text, second = sweep(first)
    assert text.startswith("mixops-same ") and second.links_same == ("hccn",)


# ---- fuzzing: garbage, truncation and shuffled lines only ever take the warning path ----------------------

_TEXTS = [_text(p.name) for p in sorted(FIX.iterdir()) if not p.name.endswith(".source")]
_PARSERS = [
    lambda t: links.parse_nvlink_status(t), lambda t: links.parse_nvlink_errors(t),
    lambda t: links.parse_hccn(t, "-link", 0), lambda t: links.parse_hccn(t, "-net_health", 0),
    lambda t: links.parse_hccn(t, "-link_stat", 0), lambda t: links.parse_hccn(t, "-stat", 0),
    lambda t: links.parse_hccn_sweep(t), lambda t: links.parse_rdma_sysfs(t),
    lambda t: links.parse_topology(t, "nvidia", "nvidia-smi topo -m"),
    lambda t: links.parse_sections("nvidia", {f"links.{s.name}": t for s in links.SOURCES}),
    lambda t: links.parse_sections("ascend", {f"links.{s.name}": t for s in links.SOURCES}),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_TEXTS), st.integers(0, 20_000), st.randoms(use_true_random=False), st.text(max_size=200))
def test_link_parsers_never_raise(text, cut, rnd, noise):
    lines = text[:cut].splitlines()
    rnd.shuffle(lines)
    mangled = "\n".join(lines) + noise
    for parse in _PARSERS:
        for t in (mangled, text[:cut], noise):
            result = parse(t)
            for ln in getattr(result, "links", ()):
                assert ln.speed_gbps is None or ln.speed_gbps >= 0
                assert all(v is None or isinstance(v, int) for v in ln.counters.values())
