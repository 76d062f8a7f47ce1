"""`collect --metrics-listen`: the snapshot's families, the HTTP server, the CLI, and a real Prometheus.

Real parts: prometheus_client's exposition and server, promtool's own parser of the text format, a real
`mixops collect --interval` process sweeping real sshd nodes on 127.0.0.1, and a real `prometheus` (the
Debian package) scraping it every second and answering PromQL over its HTTP API.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity
from console.metrics import (
    Exporter,
    JobFigures,
    ListenError,
    Place,
    SnapshotCollector,
    build,
    read_incidents,
)
from console.service import SweepSummary
from console.site import Node, Rack, Site, SSHDefaults
from tests.engines import MAX_POLLS, free_port, get, poll

ROOT = Path(__file__).resolve().parents[2]

H100 = "NVIDIA H100 80GB HBM3"
WHERE = {"n1": Place("A", "R01", "nvidia"), "n2": Place("A", "R01", "nvidia"), "n3": Place("B", "R02", "ascend"),
         "n4": Place("B", "R02", "nvidia")}


def _cards() -> tuple[CardSample, ...]:
    return (CardSample(0, model=H100, serial="1654922001234", bus_id="00000000:18:00.0", health=Health.OK,
                       temperature_c=61, utilization_pct=97, memory_used_mib=71234, memory_total_mib=81559,
                       power_w=652.31),
            CardSample(2, model=H100, serial="1654922001236", health=Health.UNKNOWN, temperature_c=44,
                       utilization_pct=0, memory_used_mib=4, memory_total_mib=81559, power_w=None))


def _render(families) -> str:
    registry = CollectorRegistry(auto_describe=False)
    c = SnapshotCollector()
    c.set(families)
    registry.register(c)
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _sweep() -> tuple[NodeReport, ...]:
    xid = Fault("Xid 79", Severity.CRITICAL, Action.REBOOT_NODE, "GPU has fallen off the bus", 2)
    return (NodeReport("n1", True, 0.0, 0.4, "nvidia", _cards(), (xid,)),
            NodeReport("n2", False, 0.0, 2.0, "nvidia", error="nvidia-smi exited 1"),
            NodeReport("n3", True, 0.0, 0.3, "ascend", (CardSample(6, 0, "910B2C", None, health=Health.OK,
                                                                   temperature_c=48, power_w=None),)))


def test_values_not_reported_and_failed_or_stale_nodes_are_absent_never_zero():
    text = _render(build("hall 1", WHERE, _sweep(), ("n4",), xids={("n1", 2): 79}))
    s = _samples(text)
    power = {(lab["node"], lab["card"]): v for lab, v in s["mixops_card_power_watts"]}
    assert power == {("n1", "0"): 652.31}           # n1/2 and the Ascend card reported no power
    temps = {(lab["node"], lab["card"]): v for lab, v in s["mixops_card_temperature_celsius"]}
    assert temps == {("n1", "0"): 61, ("n1", "2"): 44, ("n3", "6.0"): 48}
    assert not any(lab.get("node") in ("n2", "n4") for name, fam in s.items() if name != "mixops_node_up"
                   for lab, _ in fam)
    assert {lab["node"]: v for lab, v in s["mixops_node_up"]} == {"n1": 1, "n2": 0, "n3": 1, "n4": 0}
    assert [v for lab, v in s["mixops_card_utilization_ratio"] if lab["card"] == "0"] == [0.97]
    assert ("n3", "6.0") not in {(lab["node"], lab["card"]) for lab, _ in s["mixops_card_utilization_ratio"]}
    assert {lab["card"]: v for lab, v in s["mixops_card_health"]} == {"0": 0, "2": 3, "6.0": 0}
    used = {lab["card"]: v for lab, v in s["mixops_card_memory_used_bytes"]}
    assert used["0"] == 71234 * 1048576
    first = next(lab for lab, _ in s["mixops_card_temperature_celsius"] if lab["card"] == "0")
    assert first == {"site": "hall 1", "row": "A", "rack": "R01", "node": "n1", "vendor": "nvidia", "model": H100,
                     "card": "0", "serial": "1654922001234"}


def test_nvidia_cards_also_under_dcgm_exporter_names_and_labels():
    s = _samples(_render(build("hall 1", WHERE, _sweep(), (), xids={("n1", 2): 79})))
    temp = s["DCGM_FI_DEV_GPU_TEMP"]
    assert [lab for lab, _ in temp if lab["gpu"] == "0"] == [{
        "gpu": "0", "UUID": "1654922001234", "pci_bus_id": "00000000:18:00.0", "device": "nvidia0",
        "modelName": H100, "Hostname": "n1", "hostname": "n1"}]
    assert {lab["gpu"]: v for lab, v in s["DCGM_FI_DEV_GPU_UTIL"]} == {"0": 97, "2": 0}       # percent
    assert {lab["gpu"]: v for lab, v in s["DCGM_FI_DEV_FB_USED"]} == {"0": 71234, "2": 4}      # MiB
    assert {lab["gpu"]: v for lab, v in s["DCGM_FI_DEV_FB_FREE"]} == {"0": 81559 - 71234, "2": 81559 - 4}
    assert {lab["gpu"]: v for lab, v in s["DCGM_FI_DEV_POWER_USAGE"]} == {"0": 652.31}       # N/A: absent
    assert {lab["gpu"]: v for lab, v in s["DCGM_FI_DEV_XID_ERRORS"]} == {"2": 79}            # none known: absent
    assert all(lab["Hostname"] == "n1" for fam in ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED")
               for lab, _ in s[fam])                                                        # never the Ascend node


def test_labels_with_quotes_backslashes_and_newlines_cannot_break_the_exposition():
    node = 'gpu"a\\01\nfake_metric 1'
    serial = 'SN"1\\\n} 0\n# EOF'
    where = {node: Place('row "A"', "R\n1", "nvidia")}
    report = NodeReport(node, True, 0.0, 0.1, "nvidia", (CardSample(0, model='H"100\n', serial=serial,
                                                                    temperature_c=50, health=Health.OK),))
    text = _render(build('site "x"\n', where, (report,), ()))
    assert "fake_metric" not in {fam.name for fam in text_string_to_metric_families(text)}
    s = _samples(text)
    (lab, value), = s["mixops_card_temperature_celsius"]
    assert (lab["node"], lab["serial"], lab["model"], lab["rack"], lab["site"], value) == (
        node, serial, 'H"100\n', "R\n1", 'site "x"\n', 50)
    assert s["DCGM_FI_DEV_GPU_TEMP"][0][0]["Hostname"] == node
    promtool = shutil.which("promtool")
    if promtool is not None:       # Prometheus's own parser of the text format (lint notes are not errors)
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert "parsing error" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_incidents_jobs_and_collector_health():
    jobs = [JobFigures("llama", "stalled", 1_700_000_000.0, 620.0, 0.93, 0.81),
            JobFigures("new", "no data", None, None, None, None)]
    from console.metrics import SweepFigures

    fams = build("s", WHERE, _sweep(), (), incidents={"open": {"P1": 2}, "acknowledged": {"P3": 1}}, jobs=jobs,
                 sweep=SweepFigures(1_700_000_100.0, 2.5, 4, 1, 0, 3, 7, 0, True, 0.01))
    s = _samples(_render(fams))
    assert {lab["severity"]: v for lab, v in s["mixops_incidents_open"]} == {"P1": 2, "P2": 0, "P3": 0, "P4": 0}
    assert {lab["severity"]: v for lab, v in s["mixops_incidents_acknowledged"]}["P3"] == 1
    state = {(lab["job"], lab["state"]): v for lab, v in s["mixops_job_state"]}
    assert state[("llama", "stalled")] == 1 and state[("llama", "running")] == 0 and state[("new", "no data")] == 1
    assert sum(v for (job, _), v in state.items() if job == "llama") == 1
    assert s["mixops_job_last_progress_timestamp_seconds"] == [({"job": "llama"}, 1_700_000_000.0)]
    assert s["mixops_job_checkpoint_age_seconds"] == [({"job": "llama"}, 620.0)]      # "new": absent
    assert {lab["window"]: v for lab, v in s["mixops_job_ettr_ratio"]} == {"all": 0.93, "24h": 0.81}
    assert s["mixops_collector_sweep_duration_seconds"] == [({}, 2.5)]
    assert s["mixops_collector_nodes_failed"] == [({}, 1)]
    assert s["mixops_collector_last_sweep_timestamp_seconds"] == [({}, 1_700_000_100.0)]
    assert s["mixops_collector_sweeps_total"] == [({}, 7)]


def test_read_incidents_counts_open_and_acknowledged_by_severity(tmp_path):
    from console.store import Store

    store = Store(str(tmp_path / "i.db"))
    try:
        for sev, state in (("P1", "open"), ("P1", "open"), ("P2", "acknowledged"), ("P1", "resolved")):
            store.conn.execute("INSERT INTO incidents (opened_at, severity, state, title) VALUES (1, ?, ?, 't')",
                               (sev, state))
        assert read_incidents(store.conn) == {"open": {"P1": 2}, "acknowledged": {"P2": 1}}
    finally:
        store.close()


def test_open_incidents_travel_as_info_series_with_plain_bounded_titles(tmp_path):
    from console.incidents import read_open_incidents
    from console.metrics import MAX_TITLE
    from console.store import Store

    store = Store(str(tmp_path / "i.db"))
    try:
        rows = (("P1", "open", "Xid 79\x1b[31m on gpu\n0\u202e", "n1", 0, "llama", None, None),
                ("P3", "acknowledged", "x" * 500, "n3", None, None, 1_700_000_050.0, "li\nwei"),
                ("P2", "resolved", "gone", "n1", 1, None, None, None))
        for sev, state, title, node, card, job, ack_at, by in rows:
            store.conn.execute("INSERT INTO incidents (opened_at, severity, state, title, node, card_idx, job, "
                               "acknowledged_at, acknowledged_by, count) VALUES (1700000000, ?, ?, ?, ?, ?, ?, ?, ?, 3)",
                               (sev, state, title, node, card, job, ack_at, by))
        info = read_open_incidents(store.conn)
    finally:
        store.close()
    s = _samples(_render(build("s", WHERE, _sweep(), (), open_incidents=info, shard="2/3")))
    opened = {lab["key"]: (lab, v) for lab, v in s["mixops_incident_open"]}
    assert len(opened) == 2                                        # the resolved one is not there
    first = next(lab for lab, _ in opened.values() if lab["severity"] == "P1")
    assert first["title"] == "Xid 79 [31m on gpu 0" and first["node"] == "n1" and first["card"] == "0"
    assert first["job"] == "llama" and first["state"] == "open" and first["shard"] == "2/3"
    long = next(lab for lab, _ in opened.values() if lab["severity"] == "P3")
    assert len(long["title"]) == MAX_TITLE and long["title"].endswith("…") and long.get("card", "") == ""
    assert {v for _, v in opened.values()} == {1_700_000_000.0}
    assert s["mixops_incident_acknowledged_timestamp_seconds"] == [
        ({"key": long["key"], "by": "li wei", "shard": "2/3"}, 1_700_000_050.0)]
    assert {lab["key"]: v for lab, v in s["mixops_incident_faults"]} == {k: 3 for k in opened}


def test_shard_labels_the_incident_job_and_collector_series_not_the_cards():
    from console.metrics import SweepFigures

    fams = build("s", WHERE, _sweep(), (), incidents={"open": {"P1": 1}}, shard="1/3",
                 jobs=[JobFigures("llama", "running", 1.0, 2.0, 0.9, None)],
                 sweep=SweepFigures(1_700_000_100.0, 2.5, 4, 1, 0, 3, 7, 0, True, 0.01))
    s = _samples(_render(fams))
    assert s["mixops_collector_sweep_duration_seconds"] == [({"shard": "1/3"}, 2.5)]
    assert s["mixops_collector_sweeps_total"] == [({"shard": "1/3"}, 7)]
    assert all(lab["shard"] == "1/3" for name in ("mixops_incidents_open", "mixops_job_state",
                                                   "mixops_job_ettr_ratio") for lab, _ in s[name])
    assert "shard" not in s["mixops_card_temperature_celsius"][0][0]


def test_cards_read_from_a_prometheus_source_are_not_exported_again_under_dcgm_names():
    via_source = NodeReport("n1", True, 0.0, 0.1, "nvidia", _cards(), tools=("prometheus",))
    s = _samples(_render(build("s", WHERE, (via_source,), ())))
    assert {lab["card"] for lab, _ in s["mixops_card_temperature_celsius"]} == {"0", "2"}
    assert not any(name.startswith("DCGM_") for name in s)


def _site(nodes=("n1", "n2", "n3", "n4")) -> Site:
    return Site("<t>", "hall 1", "UTC", 10.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"),
                (Rack("R01", "A", 8), Rack("R02", "B", 8)),
                tuple(Node(n, "127.0.0.1", None, WHERE[n].rack, i, WHERE[n].vendor, None)
                      for i, n in enumerate(nodes, 1)))


def test_exporter_serves_the_last_snapshot_and_frees_its_port():
    exporter = Exporter(_site(), "127.0.0.1", 0)
    try:
        host, port = exporter.address
        assert host == "127.0.0.1" and port > 0
        before = _samples(get(exporter.url))   # before the first sweep nothing is known: nothing said
        assert not any(name.startswith(("mixops_", "DCGM_")) for name in before)
        exporter.update(SweepSummary(1, 1_700_000_000.0, 0.5, _sweep(), ("n4",)), None)
        s = _samples(get(exporter.url))
        assert len(s["mixops_card_temperature_celsius"]) == 3
        assert s["mixops_collector_nodes_stale"] == [({}, 1)]
        assert {lab["gpu"]: v for lab, v in s["DCGM_FI_DEV_XID_ERRORS"]} == {"2": 79}   # from the sweep's fault
        assert "process_cpu_seconds_total" in s
        with pytest.raises(ListenError, match=r"--metrics-listen 127\.0\.0\.1:\d+: .*[Aa]ddress already in use"):
            Exporter(_site(), "127.0.0.1", port)
    finally:
        exporter.close()
    again = Exporter(_site(), "127.0.0.1", port)     # closed: the port is free for the next collector
    again.close()


def _mixops(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("value", ["9400", "localhost", "127.0.0.1:99999", "127.0.0.1:x", "::1:9400", ":9400",
                                   "bad host:1"])
def test_bad_listen_value_is_one_line_exit_2(value, tmp_path, capsys):
    from console.cli import run

    assert run(["collect", "--site", str(tmp_path / "none.toml"), "--once", "--metrics-listen", value]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.splitlines()) == 1 and "--metrics-listen" in out.err, out.err


def test_port_in_use_or_unknown_host_is_one_line_exit_2(tmp_path, capsys):
    from console.cli import run

    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "x"\n[ssh]\nknown_hosts = "{tmp_path}/kh"\nconfig_file = "{tmp_path}/none"\n'
                    '[[racks]]\nname = "R"\n[[nodes]]\nname = "a"\nhost = "127.0.0.1"\nport = 9\nrack = "R"\nslot = 1\n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _mixops("collect", "--site", site, "--db", tmp_path / "x.db", "--once",
                      "--metrics-listen", f"127.0.0.1:{port}")
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [f"mixops: --metrics-listen 127.0.0.1:{port}: Address already in use"]
    assert run(["collect", "--site", str(site), "--db", str(tmp_path / "x.db"), "--once",
                "--metrics-listen", "no-such-host.invalid:9400"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("mixops: --metrics-listen no-such-host.invalid:9400: "), err


# ---- a real Prometheus scraping a real collector ---------------------------------------------------------

@pytest.mark.sshd
@pytest.mark.slow
def test_real_prometheus_scrapes_a_real_collector(fleet, prometheus, tmp_path):
    nodes = fleet.start(2, "nvidia") + fleet.start(1, "ascend")
    err_path = tmp_path / "collect.err"
    with (tmp_path / "collect.out").open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "collect", "--site", str(fleet.site_toml()),
                                 "--db", str(tmp_path / "ops.db"), "--interval", "1", "--quiet",
                                 "--metrics-listen", "127.0.0.1:0"], cwd=ROOT, stdout=out, stderr=err)
    try:
        line = poll(lambda: next((x for x in err_path.read_text().splitlines() if "serving /metrics" in x), None),
                     "the collector says where it serves /metrics")
        url = line.split(" on ", 1)[1]
        target = urllib.parse.urlparse(url).netloc
        prometheus.start(target)
        api = prometheus

        poll(lambda: len(api.query("mixops_card_temperature_celsius")) == 4 + 4 + 3, "11 cards in Prometheus")
        temps = {(dict(k)["node"], dict(k)["card"]): v for k, v in api.values("mixops_card_temperature_celsius").items()}
        assert temps[("n001", "0")] == 61 and temps[("n002", "3")] == 83 and temps[("n003", "6.0")] == 48
        one = dict(next(k for k in api.values('mixops_card_temperature_celsius{node="n001",card="0"}')))
        assert {k: one[k] for k in ("site", "rack", "vendor", "model", "serial", "job")} == {
            "site": "test fleet", "rack": "R01", "vendor": "nvidia", "model": H100, "serial": "1654922001234",
            "job": "mixops"}
        # not reported, so not stored: card 2 of each H100 and the Ascend NPU 6 have no power series at all
        assert len(api.query("mixops_card_power_watts")) == 3 + 3 + 2
        assert api.query('mixops_card_power_watts{node="n001",card="2"}') == []
        assert api.values('mixops_card_utilization_ratio{node="n001",card="0"}') and \
            list(api.values('mixops_card_utilization_ratio{node="n001",card="0"}').values()) == [0.97]
        # dcgm-exporter's names, units and labels for the NVIDIA cards only
        dcgm = {(dict(k)["Hostname"], dict(k)["gpu"]): v for k, v in api.values("DCGM_FI_DEV_FB_USED").items()}
        assert len(dcgm) == 8 and dcgm[("n001", "0")] == 71234
        assert api.values('DCGM_FI_DEV_GPU_UTIL{Hostname="n002",gpu="3",modelName="NVIDIA H100 80GB HBM3"}')
        assert len(api.query('DCGM_FI_DEV_GPU_TEMP{instance="n001"}')) == 4          # relabelled per node
        assert dict(api.query('mixops_card_temperature_celsius{node="n001",card="0"}')[0]["metric"])[
            "instance"] == target                                                    # mixops_* untouched
        assert {dict(k)["node"]: v for k, v in api.values("mixops_node_up").items()} == {
            "n001": 1, "n002": 1, "n003": 1}
        assert api.values("mixops_collector_nodes_failed") and \
            list(api.values("mixops_collector_nodes_failed").values()) == [0]
        assert list(api.values("time() - mixops_collector_last_sweep_timestamp_seconds").values())[0] < 120

        # a node that fails: node_up 0 and its cards gone from the next scrape (Prometheus marks them stale)
        nodes[1].set_mode("fail")
        poll(lambda: api.values('mixops_node_up{node="n002"}') and
              list(api.values('mixops_node_up{node="n002"}').values()) == [0], "n002 down in Prometheus")
        poll(lambda: api.query('mixops_card_temperature_celsius{node="n002"}') == [], "n002's cards absent")
        assert api.query('DCGM_FI_DEV_GPU_TEMP{Hostname="n002"}') == []
        assert len(api.query('mixops_card_temperature_celsius{node="n001"}')) == 4
        assert list(api.values("mixops_collector_nodes_failed").values()) == [1]
        assert list(api.values('up{job="mixops"}').values()) == [1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    assert proc.returncode in (0, 1), err_path.read_text()
    assert "Traceback" not in err_path.read_text()


def test_job_figures_come_from_the_stored_continuity_model(tmp_path):
    from datetime import UTC, datetime

    from console.metrics import read_jobs
    from console.service import Collector
    from console.site import Job
    from console.store import Store

    t0 = datetime(2026, 11, 22, 1, 0, 30, tzinfo=UTC).timestamp()
    site = Site("<t>", "t", "UTC", 10.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"), (),
                (Node("n1", "127.0.0.1", None, None, None, "nvidia", None),),
                (Job("a", ("n1",), None, "/logs/a", "megatron", None),), ())
    store = Store(str(tmp_path / "j.db"))
    collector = Collector(site, store, session_factory=lambda ep: None, incidents=False)
    try:
        log = "MIXOPS-LOG 80 0\n [2026-11-22 01:00:00] iteration 10/ 100 |\n [2026-11-22 01:00:20] iteration 12/ 100 |\n"
        collector.update_jobs(t0, {"job0.log": log})
        (job,) = read_jobs(store.conn, t0)
        s = _samples(_render(build("t", {}, (), (), jobs=[job])))
        state = {lab["state"]: v for lab, v in s["mixops_job_state"]}
        assert state[job.state] == 1 and sum(state.values()) == 1
        assert s["mixops_job_last_progress_timestamp_seconds"] == [({"job": "a"}, t0 - 10)]
        assert "mixops_job_checkpoint_age_seconds" not in s      # no checkpoint directory: absent, not 0
    finally:
        collector.close()
        store.close()


def test_remote_write_request_is_prompb_with_sorted_labels_and_stale_markers(tmp_path):
    import struct

    import cramjam

    from console.metrics import RemoteWriter, _prompb

    told: list[str] = []
    port = free_port()                         # nobody listens: every sweep stays queued
    writer = RemoteWriter(f"http://127.0.0.1:{port}/api/v1/write", str(tmp_path / "q"), tell=told.append,
                          timeout_s=1)
    try:
        writer.push(build("s", WHERE, _sweep(), ()), 1_700_000_000.0)
        reports = (_sweep()[0], NodeReport("n3", False, 0.0, 1.0, "ascend", error="timeout"))
        writer.push(build("s", WHERE, reports, ()), 1_700_000_010.0)
        poll(lambda: told, "the writer says it cannot send")
        assert "cannot send" in told[0] and "queued on disk" in told[0]
        assert writer.queued() == 2
    finally:
        writer.close()
    conn = __import__("sqlite3").connect(tmp_path / "q")
    bodies = [bytes(b) for (b,) in conn.execute("SELECT body FROM queue ORDER BY id")]
    conn.close()
    pb = _prompb()

    def decode(body):
        req = pb["WriteRequest"]()
        req.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
        return {tuple((lab.name, lab.value) for lab in ts.labels): (ts.samples[0].value, ts.samples[0].timestamp)
                for ts in req.timeseries}

    first, second = decode(bodies[0]), decode(bodies[1])
    assert all(list(k) == sorted(k) for k in first)                   # labels sorted by name, as the spec asks
    assert not any(v == "" for k in first for _, v in k)              # empty labels (no row) left out
    n3 = next(k for k in first if dict(k)["__name__"] == "mixops_card_temperature_celsius" and dict(k)["node"] == "n3")
    assert first[n3] == (48.0, 1_700_000_000_000)
    value, ts = second[n3]                                            # n3 failed: its series gets the stale marker
    assert struct.pack("<d", value) == struct.pack("<Q", 0x7FF0000000000002) and ts == 1_700_000_010_000
    up = next(k for k in second if dict(k)["__name__"] == "mixops_node_up" and dict(k)["node"] == "n3")
    assert second[up] == (0.0, 1_700_000_010_000)


def test_remote_write_queue_is_bounded_and_says_when_it_drops(tmp_path):
    from console.metrics import RemoteWriter

    told: list[str] = []
    writer = RemoteWriter(f"http://127.0.0.1:{free_port()}/api/v1/write", str(tmp_path / "q"), max_bytes=1,
                          tell=told.append, timeout_s=1)
    try:
        for k in range(3):
            writer.push(build("s", WHERE, _sweep(), ()), 1_700_000_000.0 + k)
        assert writer.queued() == 1 and writer.dropped == 2          # the newest is kept
        assert sum("queue full" in x and "dropped the 1 oldest queued sweep(s)" in x for x in told) == 2
    finally:
        writer.close()


@pytest.mark.sshd
@pytest.mark.slow
def test_remote_write_to_a_real_prometheus_loses_nothing_across_its_outage(fleet, prometheus, tmp_path):
    fleet.start(1, "nvidia")
    port = free_port()
    err_path = tmp_path / "collect.err"
    out_path = tmp_path / "collect.out"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "collect", "--site", str(fleet.site_toml()),
                                 "--db", str(tmp_path / "ops.db"), "--interval", "1", "--quiet",
                                 "--remote-write", f"http://127.0.0.1:{port}/api/v1/write"],
                                cwd=ROOT, stdout=out, stderr=err)
    try:
        # Prometheus is not there yet: the sweeps queue on disk
        poll(lambda: "cannot send" in err_path.read_text(), "the collector says it cannot send", MAX_POLLS * 2)
        poll(lambda: out_path.read_text().count("sweep ") >= 3, "three sweeps while the store is down",
              MAX_POLLS * 2)
        before = out_path.read_text().count("sweep ")
        prometheus.start(None, port=port, receiver=True)
        api = prometheus
        poll(lambda: "sending again" in err_path.read_text(), "the collector says it sends again", MAX_POLLS * 2)

        def held() -> float:
            got = api.values('count_over_time(mixops_card_temperature_celsius{node="n001",card="0"}[10m])')
            return max(got.values(), default=0.0)

        poll(lambda: held() >= before, f"the {before} sweeps of the outage in Prometheus", MAX_POLLS * 2)
        temps = {dict(k)["card"]: v for k, v in api.values('mixops_card_temperature_celsius{node="n001"}').items()}
        assert temps == {"0": 61, "1": 58, "2": 44, "3": 83}
        assert len(api.query('mixops_card_power_watts{node="n001"}')) == 3      # card 2: N/A, no series
        assert len(api.query("DCGM_FI_DEV_GPU_TEMP")) == 4
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    assert "Traceback" not in err_path.read_text()


def test_remote_write_queue_outlives_a_restart(tmp_path):
    from console.metrics import RemoteWriter

    url = f"http://127.0.0.1:{free_port()}/api/v1/write"
    first = RemoteWriter(url, str(tmp_path / "q"), timeout_s=1)
    first.push(build("s", WHERE, _sweep(), ()), 1_700_000_000.0)
    first.close()
    second = RemoteWriter(url, str(tmp_path / "q"), timeout_s=1)
    try:
        assert second.queued() == 1             # sent once the store answers (the outage test above)
    finally:
        second.close()


@pytest.mark.parametrize("value", ["ftp://127.0.0.1/x", "127.0.0.1:9090", "http://", "http://h:99999/x"])
def test_bad_remote_write_url_is_one_line_exit_2(value, tmp_path, capsys):
    from console.cli import run

    assert run(["collect", "--site", str(tmp_path / "none.toml"), "--once", "--remote-write", value]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--remote-write" in err, err


@pytest.mark.sshd
@pytest.mark.slow
def test_remote_write_to_a_real_victoria_metrics(fleet, victoria, tmp_path):
    fleet.start(1, "nvidia")
    err_path = tmp_path / "collect.err"
    with (tmp_path / "collect.out").open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "collect", "--site", str(fleet.site_toml()),
                                 "--db", str(tmp_path / "ops.db"), "--interval", "1", "--quiet",
                                 "--remote-write", f"{victoria.url}/api/v1/write"],
                                cwd=ROOT, stdout=out, stderr=err)

    def query(promql: str) -> dict[str, float]:
        url = f"{victoria.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = json.loads(get(url))
        assert body["status"] == "success", body
        return {r["metric"].get("card", r["metric"].get("gpu", "")): float(r["value"][1])
                for r in body["data"]["result"]}

    try:
        poll(lambda: len(query('mixops_card_temperature_celsius{node="n001"}')) == 4, "4 cards in VictoriaMetrics",
              MAX_POLLS * 2)
        assert query('mixops_card_temperature_celsius{node="n001"}') == {"0": 61, "1": 58, "2": 44, "3": 83}
        assert set(query('mixops_card_power_watts{node="n001"}')) == {"0", "1", "3"}     # card 2: N/A
        assert query('DCGM_FI_DEV_FB_USED{Hostname="n001"}')["0"] == 71234
        assert "cannot send" not in err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    assert "Traceback" not in err_path.read_text()


def test_node_up_keeps_its_labels_when_a_detected_vendor_node_fails():
    from console.metrics import Snapshots

    site = Site("<t>", "s", "UTC", 10.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"), (),
                (Node("x1", "127.0.0.1", None, None, None, None, None),))        # vendor left to detection
    snaps = Snapshots(site)
    ok = NodeReport("x1", True, 0.0, 0.1, "nvidia", _cards())
    up1 = _samples(_render(snaps.update(SweepSummary(1, 0.0, 0.1, (ok,), ()), None)))["mixops_node_up"]
    failed = NodeReport("x1", False, 0.0, 2.0, None, error="timeout")
    up2 = _samples(_render(snaps.update(SweepSummary(2, 10.0, 2.0, (failed,), ()), None)))["mixops_node_up"]
    assert [lab for lab, _ in up1] == [lab for lab, _ in up2] and up1[0][0]["vendor"] == "nvidia"
    assert (up1[0][1], up2[0][1]) == (1, 0)


@pytest.mark.sshd
@pytest.mark.slow
def test_collect_once_sends_its_sweep_before_it_exits(fleet, victoria, tmp_path):
    fleet.start(1, "nvidia")
    out = _mixops("collect", "--site", fleet.site_toml(), "--db", tmp_path / "ops.db", "--once", "--quiet",
                  "--remote-write", f"{victoria.url}/api/v1/write", timeout=120)
    assert out.returncode == 0 and "still queued" not in out.stderr, out.stderr
    url = f"{victoria.url}/api/v1/query?" + urllib.parse.urlencode(
        {"query": 'mixops_card_temperature_celsius{node="n001",card="3"}'})
    got = poll(lambda: json.loads(get(url))["data"]["result"], "the sweep in VictoriaMetrics")
    assert float(got[0]["value"][1]) == 83


def test_link_up_from_the_store_absent_for_unknown_topology_and_nodes_that_did_not_answer(tmp_path):
    from console.metrics import Snapshots
    from console.store import Store

    store = Store(str(tmp_path / "ops.db"))
    rows = [("n1", 0, "nvlink", "0", None, "up"), ("n1", 0, "nvlink", "1", None, "down"),
            ("n1", None, "roce", "eth0", None, "unknown"), ("n1", 0, "nvlink", "topo", "GPU1", "up"),
            ("n2", None, "ib", "mlx5_0/1", None, "up")]
    store.conn.executemany("INSERT INTO links(node, card_idx, kind, link, peer, state, first_seen) "
                           "VALUES (?,?,?,?,?,?,0)", rows)
    store.conn.commit()
    snaps = Snapshots(_site())
    reports = (NodeReport("n1", True, 0.0, 0.1, "nvidia", _cards()), NodeReport("n2", False, 0.0, 5.0, None,
                                                                                 error="timeout"))
    got = _samples(_render(snaps.update(SweepSummary(1, 0.0, 0.1, reports, ()), store)))["mixops_link_up"]
    assert sorted((lab["node"], lab["card"], lab["kind"], lab["link"], v) for lab, v in got) == [
        ("n1", "0", "nvlink", "0", 1.0), ("n1", "0", "nvlink", "1", 0.0)]
    store.close()
