"""`[[sources]] kind = "prometheus"`: nodes read by PromQL from a real Prometheus instead of SSH.

Real parts: prometheus_client HTTP servers in the test serving dcgm-exporter's and npu-exporter's series (their
real names and labels), a real `prometheus` (Debian package 2.42) on 127.0.0.1 with a temporary data
directory scraping them every second, the real Collector, store and incident engine on a SQLite file; a
tiny HTTP server for a source that answers garbage or too slowly. The SSH node beside them uses the fake
transport of test_counters (the layers above SSH are what is tested here).
"""

from __future__ import annotations

import http.server
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from collectors.model import Health
from console.promsource import Series, SourceError, group, parse_answer, selector
from console.service import Collector
from console.site import Node, load_site
from console.store import Store
from tests.console.test_counters import _Node
from tests.engines import Prometheus, free_port, get, poll

H100 = "NVIDIA H100 80GB HBM3"
UUID0 = "GPU-5fa4a2e4-8b26-0d34-9c3c-1f2a5c4d9e01"
UUID1 = "GPU-5fa4a2e4-8b26-0d34-9c3c-1f2a5c4d9e02"


# ---- the answer, without a server ------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    (b"<html>502 Bad Gateway</html>", "answered garbage, not JSON: '<html>502 Bad Gateway</html>'"),
    (b"[1, 2]", "answered garbage: JSON but not a Prometheus API answer"),
    (b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}', "query refused: parse error"),
    (b'{"status":"success","data":{"resultType":"matrix"}}', "answered garbage: no data.result"),
    (b'{"status":"error","error":"bad \\u001b]0;owned\\u0007 query"}', "query refused: bad \\x1b]0;owned\\x07 query"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"2"]]}]}}',
     "answered garbage: a result without its metric labels"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["x"]]}]}}',
     "answered garbage: a sample that is not"),
])
def test_an_answer_that_is_not_prometheus_is_one_clear_reason(body, expected):
    with pytest.raises(SourceError) as exc:
        parse_answer(body)
    assert str(exc.value).startswith(expected)
    assert "\n" not in str(exc.value)


def test_the_newest_sample_of_each_series_and_nan_as_none():
    body = (b'{"status":"success","data":{"resultType":"matrix","result":['
            b'{"metric":{"__name__":"DCGM_FI_DEV_GPU_TEMP","gpu":"0","Hostname":"g1"},"values":[[10,"60"],[11,"61"]]},'
            b'{"metric":{"__name__":"DCGM_FI_DEV_POWER_USAGE","gpu":"0","Hostname":"g1"},"values":[[11,"NaN"]]}]}}')
    temp, power = parse_answer(body)
    assert (temp.name, temp.ts, temp.value, temp.labels) == ("DCGM_FI_DEV_GPU_TEMP", 11.0, 61.0,
                                                             {"gpu": "0", "Hostname": "g1"})
    assert power.value is None


def test_series_go_to_their_node_by_exporter_label_then_instance_host():
    nodes = [Node("gpu-1", "10.0.0.1", None, None, None, "nvidia", None),
             Node("npu-1", "10.0.0.2", None, None, None, None, None)]
    series = [Series("DCGM_FI_DEV_GPU_TEMP", {"Hostname": "gpu-1", "instance": "10.9.9.9:9400", "gpu": "0"}, 1, 50),
              Series("DCGM_FI_DEV_GPU_TEMP", {"hostname": "10.0.0.1", "gpu": "1"}, 1, 51),
              Series("npu_chip_info_temperature", {"instance": "10.0.0.2:8082", "job": "npu", "id": "0"}, 1, 40),
              Series("npu_chip_info_temperature", {"instance": "10.0.0.3:8082", "id": "0"}, 1, 40),   # not ours
              Series("up", {"instance": "10.0.0.2:8082", "job": "npu"}, 1, 1)]
    answer = group(series, nodes)
    assert [s.labels.get("gpu") for s in answer.by_node["gpu-1"].series] == ["0", "1"]
    assert [s.value for s in answer.by_node["npu-1"].series] == [40]
    assert answer.by_node["npu-1"].targets == {("npu", "10.0.0.2:8082")}
    assert answer.up == {("npu", "10.0.0.2:8082"): 1}
    assert selector(20).endswith('"}[20000ms]') and "DCGM_FI_DEV_XID_ERRORS" in selector(20)
    # in Kubernetes Hostname is the exporter pod's: the source's node_label names the node, tried first
    pod = Series("DCGM_FI_DEV_GPU_TEMP", {"Hostname": "dcgm-exporter-x7k2p", "kubernetes_node": "gpu-1",
                                          "gpu": "0"}, 1, 50)
    assert group([pod], nodes).by_node["gpu-1"].series == []
    assert group([pod], nodes, "kubernetes_node").by_node["gpu-1"].series == [pod]


class _Stub:
    """A PromSource's answer without a server, for the mapping of each exporter's series."""

    def __init__(self, series: list[Series], nodes: list[Node]) -> None:
        from console.site import Source

        self.source = Source("prometheus", "http://127.0.0.1:9", ("*",))
        self.window_s = 20.0
        self._answer = group(series, nodes)

    def answer(self):
        return self._answer


def _read(series: list[Series], vendor: str | None = None, baseline: dict | None = None):
    from console.promsource import PromNodeCollector

    node = Node("n1", "10.0.0.1", None, None, None, vendor, None)
    collector = PromNodeCollector(_Stub(series, [node]), node, baseline=baseline)   # type: ignore[arg-type]
    return collector, collector.sweep()


def test_mlu_exporter_series_map_to_cards_and_virtual_functions_are_left_out():
    lab = {"mlu": "1", "model": "MLU370-X8", "sn": "SN0042", "uuid": "U1", "node": "n1", "vf": ""}
    series = [Series("mlu_temperature", lab, 5, 47), Series("mlu_utilization", lab, 5, 88),
              Series("mlu_utilization", {**lab, "vf": "1"}, 5, 12),                   # an env-share VF: not the card
              Series("mlu_memory_used", lab, 5, 8 * 1048576 * 1024), Series("mlu_memory_total", lab, 5, 24 * 2**30),
              Series("mlu_power_usage", lab, 5, 150), Series("mlu_health", lab, 5, 0),
              Series("mlu_ecc_uncorrected_error_total", lab, 5, 3)]
    _c, report = _read(series)
    (card,) = report.cards
    assert report.ok and report.vendor == "cambricon"
    assert (card.index, card.model, card.serial, card.temperature_c, card.utilization_pct, card.memory_used_mib,
            card.memory_total_mib, card.power_w, card.health, card.ecc_uncorrected) == (
        1, "MLU370-X8", "SN0042", 47, 88, 8192, 24576, 150, Health.CRITICAL, 3)


def test_npu_exporter_not_available_and_a_chip_without_hbm():
    lab = {"id": "3", "model_name": "Ascend310P3", "instance": "10.0.0.1:8082"}
    series = [Series("npu_chip_info_temperature", lab, 5, -1), Series("npu_chip_info_power", lab, 5, 18),
              Series("npu_chip_info_hbm_total_memory", lab, 5, 0), Series("npu_chip_info_hbm_used_memory", lab, 5, 0),
              Series("npu_chip_info_used_memory", lab, 5, 2100), Series("npu_chip_info_total_memory", lab, 5, 21534)]
    _c, report = _read(series)
    (card,) = report.cards
    assert (card.temperature_c, card.power_w, card.memory_used_mib, card.memory_total_mib, card.health) == (
        None, 18, 2100, 21534, Health.UNKNOWN)             # -1 is npu-exporter's N/A; no health series: unknown
    assert not report.warnings


def test_an_ascend_error_code_is_one_fault_against_the_baseline():
    lab = {"id": "0", "instance": "10.0.0.1:8082"}
    baseline: dict = {}
    series = [Series("npu_chip_info_health_status", lab, 5, 0), Series("npu_chip_info_error_code", lab, 5, 0)]
    collector, report = _read(series, baseline=baseline)
    assert not report.faults and baseline == {("n1", 0, -1, "ascend_error_code"): 0}
    code = int("80E01801", 16)
    series[1] = Series("npu_chip_info_error_code", lab, 6, code)
    _c, report = _read(series, baseline=baseline)
    (fault,) = report.faults
    assert (fault.code, fault.card_index, fault.ts) == ("80E01801", 0, 6)
    assert baseline[("n1", 0, -1, "ascend_error_code")] == code
    _c, again = _read(series, baseline=baseline)
    assert not again.faults


def test_mig_instances_are_not_cards_and_a_node_with_only_other_series_fails():
    lab = {"gpu": "0", "Hostname": "n1", "modelName": "NVIDIA A100-SXM4-80GB"}
    series = [Series("DCGM_FI_DEV_GPU_TEMP", lab, 5, 40),
              Series("DCGM_FI_DEV_GPU_TEMP", {**lab, "GPU_I_ID": "1", "GPU_I_PROFILE": "1g.10gb"}, 5, 99)]
    _c, report = _read(series)
    assert [c.temperature_c for c in report.cards] == [40]
    _c, none = _read([Series("up", {"job": "x", "instance": "10.0.0.1:1"}, 5, 1)])
    assert not none.ok and none.error.startswith("stale: no series for n1 newer than 20 s")


# ---- exporters in the test, a real Prometheus scraping them ------------------------------------------------

class _Exporter:
    """A prometheus_client HTTP server on 127.0.0.1 serving whatever gauges the test sets."""

    def __init__(self) -> None:
        self.values: dict[str, list[tuple[dict[str, str], float]]] = {}
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        self.port = int(self.server.server_port)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, samples in sorted(self.values.items()):
            keys = sorted({k for labels, _ in samples for k in labels})
            fam = GaugeMetricFamily(name, name, labels=keys)
            for labels, value in samples:
                fam.add_metric([labels.get(k, "") for k in keys], value)
            yield fam

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dcgm(node: str, xid0: float = 0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """dcgm-exporter's series for two H100s (render_metrics.go labels); card 1 reports no power."""
    def lab(gpu: int) -> dict[str, str]:
        return {"gpu": str(gpu), "UUID": (UUID0, UUID1)[gpu], "pci_bus_id": f"00000000:{0x18 + gpu:02X}:00.0",
                "device": f"nvidia{gpu}", "modelName": H100, "Hostname": node}
    return {"DCGM_FI_DEV_GPU_TEMP": [(lab(0), 61), (lab(1), 44)],
            "DCGM_FI_DEV_GPU_UTIL": [(lab(0), 97), (lab(1), 0)],
            "DCGM_FI_DEV_FB_USED": [(lab(0), 71234), (lab(1), 4)],
            "DCGM_FI_DEV_FB_FREE": [(lab(0), 10325), (lab(1), 81555)],
            "DCGM_FI_DEV_POWER_USAGE": [(lab(0), 652.31)],
            "DCGM_FI_DEV_XID_ERRORS": [(lab(0), xid0), (lab(1), 0)]}


def _npu() -> dict[str, list[tuple[dict[str, str], float]]]:
    """npu-exporter v6's series for one 910B chip (CardLabel); no utilization reported."""
    lab = {"id": "0", "model_name": "Ascend910B2", "vdie_id": "0C2A8F11", "pcie_bus_info": "0000:c1:00.0",
           "namespace": "", "pod_name": "", "container_name": ""}
    return {"npu_chip_info_temperature": [(lab, 48)], "npu_chip_info_power": [(lab, 92.5)],
            "npu_chip_info_hbm_used_memory": [(lab, 3100)], "npu_chip_info_hbm_total_memory": [(lab, 65536)],
            "npu_chip_info_health_status": [(lab, 1)], "npu_chip_info_error_code": [(lab, 0)],
            "npu_chip_info_serial_number": [({**lab, "serial_number": "102A0C2A8F11"}, 1)]}


@pytest.fixture
def exporters() -> Iterator[tuple[_Exporter, _Exporter]]:
    dcgm, npu = _Exporter(), _Exporter()
    try:
        yield dcgm, npu
    finally:
        dcgm.stop()
        npu.stop()


def _site(tmp_path: Path, url: str, extra: str = "", timeout_s: float = 5) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(
        f'[site]\nname = "src"\ninterval_s = 2\n[ssh]\nknown_hosts = "{tmp_path}/kh"\nconfig_file = "{tmp_path}/no"\n'
        '[[racks]]\nname = "A01"\nslots = 8\n'
        '[[nodes]]\nname = "gpu-1"\nhost = "10.1.0.1"\nrack = "A01"\nslot = 1\nvendor = "nvidia"\n'
        '[[nodes]]\nname = "npu-1"\nhost = "10.1.0.2"\nrack = "A01"\nslot = 2\n'
        '[[nodes]]\nname = "gone-1"\nhost = "10.1.0.3"\nrack = "A01"\nslot = 3\n'
        '[[nodes]]\nname = "mlu-1"\nhost = "127.0.0.1"\nrack = "A01"\nslot = 4\nvendor = "cambricon"\n'
        f'[[sources]]\nkind = "prometheus"\nurl = "{url}"\nnodes = ["gpu-*", "npu-*", "gone-*"]\n'
        f'timeout_s = {timeout_s}\n' + extra)
    return path


def _sweep(site_path: Path, db: Path, sweeps: int = 1):
    site = load_site(site_path)
    store = Store(str(db))
    collector = Collector(site, store, session_factory=lambda ep: _Node({"ecc": 0}))
    try:
        return [collector.sweep() for _ in range(sweeps)]
    finally:
        collector.close()
        store.close()


def _rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _scraped(prom: Prometheus, promql: str, count: int = 1) -> None:
    poll(lambda: len(prom.query(promql)) >= count, f"prometheus has {promql}")


@pytest.mark.slow
def test_a_real_prometheus_feeds_cards_faults_and_failures_like_ssh_nodes(prometheus, exporters, tmp_path):
    dcgm, npu = exporters
    dcgm.values = _dcgm("gpu-1")
    npu.values = _npu()
    # npu-exporter labels no host: the scrape config's target label names the node (or its instance's host would)
    prometheus.scrape({"dcgm": (dcgm.port, {}), "npu": (npu.port, {"node": "npu-1"})})
    _scraped(prometheus, "DCGM_FI_DEV_GPU_TEMP", 2)
    _scraped(prometheus, "npu_chip_info_temperature")
    url = f"http://127.0.0.1:{prometheus.port}"
    # a window wide enough that the npu target's last samples are still in it when its up turns 0 (a loaded
    # machine scrapes late); the default, 2 x interval_s, is what the other tests use
    site, db = _site(tmp_path, url, extra="max_age_s = 10\n"), tmp_path / "ops.db"

    (summary,) = _sweep(site, db)
    by = {r.node: r for r in summary.reports}
    assert by["gpu-1"].ok and by["npu-1"].ok and by["mlu-1"].ok, [r.error for r in summary.reports]
    g0, g1 = by["gpu-1"].cards
    assert (g0.index, g0.model, g0.serial, g0.bus_id, g0.health) == (0, H100, UUID0, "0000:18:00.0", Health.OK)
    assert (g0.temperature_c, g0.utilization_pct, g0.memory_used_mib, g0.memory_total_mib, g0.power_w) == (
        61, 97, 71234, 81559, 652.31)
    assert g1.power_w is None and g1.utilization_pct == 0                  # absent is None; a real 0 stays 0
    (n0,) = by["npu-1"].cards
    assert (by["npu-1"].vendor, n0.model, n0.serial, n0.bus_id, n0.health) == (
        "ascend", "Ascend910B2", "102A0C2A8F11", "0000:c1:00.0", Health.OK)
    assert (n0.temperature_c, n0.utilization_pct, n0.memory_used_mib, n0.memory_total_mib, n0.power_w) == (
        48, None, 3100, 65536, 92.5)
    assert not by["gone-1"].ok and by["gone-1"].error.startswith("stale: no series for gone-1 newer than 10 s")
    assert len(by["mlu-1"].cards) == 3                                    # the SSH node beside them
    stored = _rows(db, "SELECT node, idx, temperature_c, utilization_pct, memory_used_mib, power_w FROM latest_samples"
                       " WHERE node IN ('gpu-1', 'npu-1') ORDER BY node, idx")
    assert stored == [("gpu-1", 0, 61, 97, 71234, 652.31), ("gpu-1", 1, 44, 0, 4, None),
                      ("npu-1", 0, 48, None, 3100, 92.5)]
    assert dict(_rows(db, "SELECT name, status FROM nodes")) == {"gpu-1": "ok", "npu-1": "ok", "gone-1": "failed",
                                                               "mlu-1": "ok"}

    # an Xid: one fault when the gauge changes to it, none again, none after a restart
    dcgm.values = _dcgm("gpu-1", xid0=79)
    _scraped(prometheus, "DCGM_FI_DEV_XID_ERRORS == 79")
    time.sleep(0.3)
    first, again = _sweep(site, db, sweeps=2)
    assert [f.code for r in first.reports for f in r.faults if r.node == "gpu-1"] == ["Xid 79"]
    assert next(r for r in first.reports if r.node == "gpu-1").cards[0].health is Health.CRITICAL
    assert not [f for r in again.reports for f in r.faults if r.node == "gpu-1"]
    (restarted,) = _sweep(site, db)
    assert not [f for r in restarted.reports for f in r.faults if r.node == "gpu-1"]
    assert _rows(db, "SELECT node, card_idx, code, action FROM faults WHERE node = 'gpu-1'") == [
        ("gpu-1", 0, "Xid 79", "reboot_node")]
    assert _rows(db, "SELECT count(*) FROM incidents WHERE node = 'gpu-1'") == [(1,)]

    # the npu-exporter target goes down: Prometheus's up == 0 fails the node at once
    npu.stop()
    _scraped(prometheus, 'up{job="npu"} == 0')
    (down,) = _sweep(site, db)
    by = {r.node: r for r in down.reports}
    assert not by["npu-1"].ok and "exporter target down" in by["npu-1"].error and by["gpu-1"].ok

    # Prometheus itself stops: its nodes fail with one clear line, the SSH node does not notice
    prometheus.stop()
    (gone,) = _sweep(site, db)
    by = {r.node: r for r in gone.reports}
    for name in ("gpu-1", "npu-1", "gone-1"):
        assert not by[name].ok
        assert by[name].error == f"source unavailable: {url}: cannot connect: Connection refused"
    assert by["mlu-1"].ok and len(by["mlu-1"].cards) == 3
    assert _rows(db, "SELECT status, last_error FROM nodes WHERE name = 'gpu-1'") == [
        ("failed", f"source unavailable: {url}: cannot connect: Connection refused")]


class _Junk(http.server.BaseHTTPRequestHandler):
    body = b""
    status = 200
    delay = 0.0

    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        time.sleep(self.delay)
        try:
            self.send_response(self.status)
            self.send_header("Content-Type", "application/json")
            if self.body.startswith(b"GZIP"):
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # the slow case: mixops gave up waiting, as it should

    def log_message(self, *args: object) -> None:
        return None


@pytest.mark.parametrize(("status", "body", "delay", "reason"), [
    (200, b"\x89PNG\r\n garbage", 0.0, "answered garbage, not JSON"),
    (503, b'{"status":"error","error":"overloaded"}', 0.0, "HTTP 503: overloaded"),
    (200, b'{"status":"error","errorType":"timeout","error":"query timed out"}', 0.0, "query refused: query timed out"),
    (200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}', 2.0, "no answer in 0.5 s"),
    (200, b"GZIP\x00 not really", 0.0, "answered garbage: a broken gzip body"),
])
def test_a_source_down_slow_or_answering_garbage_fails_its_nodes_with_one_line(status, body, delay, reason, tmp_path):
    handler = type("H", (_Junk,), {"body": body, "status": status, "delay": delay})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        t0 = time.monotonic()
        (summary,) = _sweep(_site(tmp_path, url, timeout_s=0.5), tmp_path / "ops.db")
        elapsed = time.monotonic() - t0
    finally:
        server.shutdown()
        server.server_close()
    by = {r.node: r for r in summary.reports}
    for name in ("gpu-1", "npu-1", "gone-1"):
        assert not by[name].ok and by[name].error.startswith(f"source unavailable: {url}: {reason}"), by[name].error
        assert "\n" not in by[name].error
    assert by["mlu-1"].ok
    assert summary.reports[0].node == "mlu-1"     # SSH nodes are read first: a slow source never holds them up
    assert elapsed < 30            # a bound on a hung source, not a benchmark


def test_check_reads_a_source_only_site_through_its_query(prometheus, exporters, tmp_path, capsys):
    from console.cli import run

    dcgm, _npu_exporter = exporters
    dcgm.values = _dcgm("gpu-1")
    prometheus.scrape({"dcgm": (dcgm.port, {})})
    _scraped(prometheus, "DCGM_FI_DEV_GPU_TEMP", 2)
    url = f"http://127.0.0.1:{prometheus.port}"
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "only"\n[ssh]\nknown_hosts = "{tmp_path}/kh"\nconfig_file = "{tmp_path}/no"\n'
                    '[[nodes]]\nname = "gpu-1"\n[[nodes]]\nname = "gpu-2"\n'
                    f'[[sources]]\nkind = "prometheus"\nurl = "{url}/"\nnodes = ["gpu-*"]\n')
    assert run(["check", "--site", str(site)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("gpu-1  ok") and "2 nvidia card(s) read by PromQL" in line for line in out), out
    assert any(line.startswith("gpu-2  FAIL") and "stale: no series for gpu-2" in line for line in out), out
    assert out[-1] == "1 ready, 1 not ready"
    # the answer travels compressed (fetch asks for gzip, as stated)
    req = urllib.request.Request(f"{url}/api/v1/query?query=up", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers.get("Content-Encoding") == "gzip"


@pytest.mark.slow
def test_collect_and_report_of_a_source_only_site_need_nothing_else(prometheus, exporters, tmp_path):
    import sys

    root = Path(__file__).resolve().parents[2]
    dcgm, _npu_exporter = exporters
    dcgm.values = _dcgm("gpu-1")
    prometheus.scrape({"dcgm": (dcgm.port, {})})
    _scraped(prometheus, "DCGM_FI_DEV_GPU_TEMP", 2)
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "only"\ninterval_s = 2\n[ssh]\nknown_hosts = "{tmp_path}/kh"\n'
                    f'config_file = "{tmp_path}/no"\n[[racks]]\nname = "A01"\nrow = "A"\n'
                    '[[nodes]]\nname = "gpu-1"\nrack = "A01"\nslot = 1\n'
                    f'[[sources]]\nkind = "prometheus"\nurl = "http://127.0.0.1:{prometheus.port}"\n'
                    'nodes = ["gpu-*"]\n')
    db = tmp_path / "only.db"

    def mixops(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(root / "main.py"), *map(str, args)], capture_output=True,
                              text=True, cwd=root, timeout=120)

    first = mixops("collect", "--site", site, "--db", db, "--once")
    assert first.returncode == 0 and "1 ok, 0 failed" in first.stdout and "2 cards" in first.stdout, first.stderr
    dcgm.values = _dcgm("gpu-1", xid0=79)
    _scraped(prometheus, "DCGM_FI_DEV_XID_ERRORS == 79")
    time.sleep(0.3)
    assert mixops("collect", "--site", site, "--db", db, "--once").returncode == 0
    out = tmp_path / "report.md"
    start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 3600))
    end = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 120))
    rep = mixops("report", "--db", db, "--from", start, "--to", end, "--out", out)
    assert rep.returncode == 0, rep.stderr
    text = out.read_text()
    assert "| Cards monitored | 2 |" in text and "| A01 | 61 |" in text, text          # the cards, from PromQL
    assert "| P2 | gpu-1 card 0: Xid 79 | gpu-1 / 0 |" in text, text                 # the Xid, as an incident


@pytest.mark.slow
def test_victoria_metrics_is_a_source_too(victoria, tmp_path):
    now_ms = int((time.time() - 3) * 1000)
    lines = []
    for name, samples in _dcgm("gpu-1").items():
        for labels, value in samples:
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{text}}} {value} {now_ms}")
    req = urllib.request.Request(f"{victoria.url}/api/v1/import/prometheus",
                                 data="\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204
    url = f"{victoria.url}"
    poll(lambda: "DCGM_FI_DEV_GPU_TEMP" in get(f"{url}/api/v1/query?query=DCGM_FI_DEV_GPU_TEMP"), "imported")
    site = _site(tmp_path, url, extra="max_age_s = 30\n")

    (summary,) = _sweep(site, tmp_path / "ops.db")
    by = {r.node: r for r in summary.reports}
    assert by["gpu-1"].ok, by["gpu-1"].error
    assert [(c.index, c.temperature_c, c.memory_total_mib, c.power_w) for c in by["gpu-1"].cards] == [
        (0, 61, 81559, 652.31), (1, 44, 81559, None)]
    assert not by["npu-1"].ok and by["npu-1"].error.startswith("stale: no series for npu-1 newer than 30 s")


@pytest.mark.slow
def test_two_shards_read_a_prometheus_and_write_one_victoria_metrics(prometheus, exporters, victoria,
                                                                     tmp_path):
    import json
    import sys
    import urllib.parse

    from console.site import shard_site

    root = Path(__file__).resolve().parents[2]
    dcgm, _npu_exporter = exporters
    names = ["gpu-a1", "gpu-a2", "gpu-b1", "gpu-b2"]
    dcgm.values = {}
    for name in names:                       # one exporter server standing in for four hosts' dcgm-exporters
        for fam, samples in _dcgm(name).items():
            dcgm.values.setdefault(fam, []).extend(samples)
    prometheus.scrape({"dcgm": (dcgm.port, {})})
    _scraped(prometheus, "DCGM_FI_DEV_GPU_TEMP", 8)
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "hall"\ninterval_s = 2\n[ssh]\nknown_hosts = "{tmp_path}/kh"\n'
                    f'config_file = "{tmp_path}/no"\n'
                    '[[racks]]\nname = "A01"\nrow = "A"\n[[racks]]\nname = "B01"\nrow = "B"\n'
                    + "".join(f'[[nodes]]\nname = "{n}"\nrack = "{n[4].upper()}01"\nslot = {n[5]}\n' for n in names)
                    + f'[[sources]]\nkind = "prometheus"\nurl = "http://127.0.0.1:{prometheus.port}"\n'
                    'nodes = ["gpu-*"]\n')
    halves = [{n.name for n in shard_site(load_site(site), k, 2).nodes} for k in (1, 2)]
    assert sorted(map(sorted, halves)) == [["gpu-a1", "gpu-a2"], ["gpu-b1", "gpu-b2"]]        # a row each
    for k in (1, 2):
        out = subprocess.run([sys.executable, str(root / "main.py"), "collect", "--site", str(site), "--db",
                              str(tmp_path / f"s{k}.db"), "--once", "--shard", f"{k}/2", "--remote-write",
                              f"{victoria.url}/api/v1/write"], capture_output=True, text=True,
                             cwd=root, timeout=120)
        assert out.returncode == 0 and "2 ok, 0 failed, 0 stale, 4 cards" in out.stdout, out.stderr

    def temps() -> dict[tuple[str, str], float]:
        q = urllib.parse.urlencode({"query": "mixops_card_temperature_celsius"})
        body = json.loads(get(f"{victoria.url}/api/v1/query?{q}"))
        return {(r["metric"]["node"], r["metric"]["card"]): float(r["value"][1]) for r in body["data"]["result"]}

    poll(lambda: len(temps()) == 8, "both shards' cards in VictoriaMetrics")
    assert temps() == {(n, c): t for n in names for c, t in (("0", 61.0), ("1", 44.0))}


def test_a_job_on_source_nodes_only_says_why_it_cannot_be_read(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"            # nobody listens: the nodes fail, the job says why
    site = _site(tmp_path, url, extra='[[jobs]]\nname = "serve"\nnodes = ["gpu-*"]\nlog = "/var/log/serve.log"\n')
    db = tmp_path / "ops.db"
    (summary,) = _sweep(site, db)
    assert {r.node for r in summary.failed} == {"gpu-1", "npu-1", "gone-1"}
    assert _rows(db, "SELECT j.state, l.problem FROM jobs j JOIN job_logs l ON l.job = j.name") == [
        ("cannot read", "cannot read: its nodes are read from a Prometheus source, and a job's log and "
                        "checkpoints need one node reached by SSH")]
