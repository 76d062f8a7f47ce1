"""`gui --prometheus`: the window's snapshot and card history read back from a real VictoriaMetrics.

Real parts: a real `Collector` sweep (the fake transport answers cnmon with fixture text: the layers above SSH),
the real store on a SQLite file, the real remote writer pushing to a real single-node VictoriaMetrics on
127.0.0.1 (the fixture of test_metrics), and real PromQL reads; a store stopped, a slow one and one that answers
garbage are real HTTP servers on 127.0.0.1 too.
"""

from __future__ import annotations

import http.server
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from collectors.ssh import SSHError
from console.metrics import RemoteWriter, Snapshots
from console.promview import (
    PromViewError,
    history_step,
    incident_id,
    read_history_prom,
    read_snapshot_prom,
)
from console.service import Collector
from console.site import load_site
from console.store import Store
from tests.console.test_counters import _Node
from tests.engines import free_port, poll

SITE = ('[site]\nname = "t"\ninterval_s = 1\n[[racks]]\nname = "A01"\nrow = "A"\nslots = 2\n'
        '[[nodes]]\nname = "mlu-1"\nhost = "127.0.0.1"\nrack = "A01"\nslot = 1\nvendor = "cambricon"\n'
        '[[nodes]]\nname = "mlu-2"\nhost = "127.0.0.1"\nrack = "A01"\nslot = 2\nvendor = "cambricon"\n')


class _Down(_Node):
    def run(self, commands, since: int = 0):
        raise SSHError("connection refused (test transport)")

    def start(self, commands, since: int = 0):
        raise SSHError("connection refused (test transport)")


def _sweeps_into(url: str, tmp_path: Path, sweeps: int, shard: str | None = "1/1"):
    """`sweeps` real sweeps of the two-node site (mlu-2 down), each pushed to url; the last summary."""
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    site = load_site(str(path))
    state = {"ecc": 0}
    store = Store(str(tmp_path / "ops.db"))
    collector = Collector(site, store, session_factory=lambda ep: _Down(state) if ep.name == "mlu-2"
                          else _Node(state))
    snaps = Snapshots(site, shard)
    writer = RemoteWriter(url, str(tmp_path / "ops.db.remote-write"))
    try:
        summary = None
        for i in range(sweeps):
            state["ecc"] = 0 if i == 0 else 3               # the total grows once: an ECC-UE incident
            summary = collector.sweep()
            writer.push(snaps.update(summary, store), summary.started + summary.duration_s)
        poll(lambda: writer.queued() == 0 and writer.sent >= sweeps, "the sweeps sent")
        return summary
    finally:
        writer.close()
        collector.close()
        store.close()


@pytest.mark.slow
def test_snapshot_from_a_real_victoria_metrics_has_the_cards_values_na_and_the_failed_node(victoria, tmp_path):
    url = victoria.url
    summary = _sweeps_into(f"{url}/api/v1/write", tmp_path, 2)
    report = next(r for r in summary.reports if r.node == "mlu-1")
    poll(lambda: len(read_snapshot_prom(url, interval_s=1.0).card_node) == len(report.cards) and
          read_snapshot_prom(url, interval_s=1.0).incidents, "the cards and the incident in VictoriaMetrics")
    snap = read_snapshot_prom(url, interval_s=1.0)
    assert snap.card_node == ["mlu-1"] * len(report.cards)
    for card in report.cards:
        i = snap.index_of("mlu-1", card.index)
        assert i is not None
        for field in ("temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w"):
            want = getattr(card, field)
            got = float(snap.metrics[field][i])
            if want is None:
                assert math.isnan(got), (card.index, field)             # N/A: NaN, never 0
            else:
                assert got == pytest.approx(float(want), rel=1e-5), (card.index, field)
    na = snap.index_of("mlu-1", 2)
    assert na is not None and math.isnan(snap.metrics["temperature_c"][na])
    assert not snap.stale.any()
    status = {r.name: r.status for r in snap.nodes}
    assert status == {"mlu-1": "ok", "mlu-2": "failed"}
    assert snap.nodes_ok == 1 and snap.nodes_failed == 1
    assert next(r for r in snap.nodes if r.name == "mlu-1").rack == "A01"
    assert snap.last_sweep_at == pytest.approx(summary.started + summary.duration_s, abs=0.01)
    (inc,) = [r for r in snap.incidents if r.code == "ECC-UE"]
    assert inc.node == "mlu-1" and inc.state == "open" and inc.id // 10**12 == 1     # shard 1's ids
    assert incident_id(str(inc.id % 10**12), "1/1") == inc.id and incident_id("x", "1/1") is None
    assert inc.card_idx == 1 and inc.title
    # later, nothing new written: the node is stale, never healthy, and its cards keep their places
    later = read_snapshot_prom(url, interval_s=1.0, now=time.time() + 60)
    assert {r.name: r.status for r in later.nodes}["mlu-1"] == "stale"
    assert later.card_node == snap.card_node and later.stale.all()

    # a range query's points fall on multiples of its step, and VictoriaMetrics leaves out the newest
    # second (-search.latencyOffset=1s): right after the write the last sample may not be on a point yet
    poll(lambda: len(read_history_prom(url, "mlu-1", "0", 3600).t) >= 1, "the history in VictoriaMetrics")
    hist = read_history_prom(url, "mlu-1", "0", 3600)
    assert len(hist.t) >= 1 and np.all(np.diff(hist.t) > 0)
    assert hist.metrics["temperature_c"][-1] == pytest.approx(float(report.cards[0].temperature_c))
    assert hist.metrics["power_w"][np.isfinite(hist.metrics["power_w"])].size >= 1
    gone = read_history_prom(url, "mlu-1", "2", 3600)              # a card that reports no temperature
    assert not np.isfinite(gone.metrics["temperature_c"]).any()


def test_history_step_keeps_range_queries_under_1500_points():
    for seconds in (3600.0, 86400.0, 7 * 86400.0):
        assert seconds / history_step(seconds) <= 1_500
    assert history_step(3600.0) == 10.0


@pytest.mark.slow
def test_a_stopped_store_is_one_source_unavailable_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"                     # nothing listens there
    with pytest.raises(PromViewError) as exc:
        read_snapshot_prom(url, timeout_s=2.0)
    text = str(exc.value)
    assert text.startswith(f"source unavailable: {url}: ") and "\n" not in text and "refused" in text


class _Garbage(http.server.BaseHTTPRequestHandler):
    body = b"<html>\x1b]0;owned\x07 not prometheus</html>"
    delay = 0.0

    def _answer(self) -> None:
        time.sleep(self.delay)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            pass            # the reader gave up first (the slow store): what the test wants

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


def _serve(handler: type[http.server.BaseHTTPRequestHandler]):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("body", [b"<html>\x1b]0;owned\x07 not prometheus</html>", b'{"status": "success"}',
                                  b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
                                  b'"value":[1, 2]}]}}', b"[1, 2]"])
def test_a_store_answering_garbage_is_one_plain_line(body):
    handler = type("H", (_Garbage,), {"body": body})
    server, url = _serve(handler)
    try:
        with pytest.raises(PromViewError) as exc:
            read_snapshot_prom(url, timeout_s=2.0)
    finally:
        server.shutdown()
        server.server_close()
    text = str(exc.value)
    assert text.startswith(f"source unavailable: {url}: ") and "\n" not in text and "\x1b" not in text


def test_a_slow_store_is_one_line_within_the_timeout():
    handler = type("H", (_Garbage,), {"delay": 3.0})
    server, url = _serve(handler)
    try:
        t0 = time.monotonic()
        with pytest.raises(PromViewError, match="source unavailable: .*timed out|no answer"):
            read_snapshot_prom(url, timeout_s=0.5)
        assert time.monotonic() - t0 < 10
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_two_shards_in_one_store_keep_their_incidents_apart(victoria, tmp_path):
    url = victoria.url
    for k in (1, 2):
        (tmp_path / f"s{k}").mkdir()
        _sweeps_into(f"{url}/api/v1/write", tmp_path / f"s{k}", 2, shard=f"{k}/2")
    poll(lambda: {r.id // 10**12 for r in read_snapshot_prom(url, interval_s=1.0).incidents} == {1, 2},
          "both shards' incidents")
    snap = read_snapshot_prom(url, interval_s=1.0)
    ecc = [r for r in snap.incidents if r.code == "ECC-UE"]
    assert len(ecc) == 2 and len({r.id for r in ecc}) == 2        # the same local id, two shards: two rows


def _canned(answers: dict[str, bytes]):
    """A store on 127.0.0.1 answering each query with canned JSON (the query text picks it; else empty)."""
    import urllib.parse

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            promql = urllib.parse.parse_qs(self.rfile.read(length).decode())["query"][0]
            body = next((v for k, v in answers.items() if k in promql),
                        b'{"status":"success","data":{"resultType":"vector","result":[]}}')
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    return _serve(Handler)


def _vector(series: list[tuple[dict[str, str], str]], at: float) -> bytes:
    import json

    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [at, v]} for m, v in series]}}).encode()


def test_a_kept_layout_is_reused_and_a_new_card_is_placed_at_once():
    now = time.time()
    node = {"node": "g1", "rack": "R1", "vendor": "nvidia"}
    answers = {
        "timestamp(mixops_node_up)": _vector([({"node": "g1"}, str(now - 1))], now),
        "mixops_node_up": _vector([(node, "1")], now),
        "last_over_time": _vector([({**node, "card": "0", "model": "H100", "serial": "S0"}, "0")], now),
        "max by (node, card) (mixops_card_health)": _vector([({"node": "g1", "card": c}, "0") for c in ("0", "1")], now),
        "max by (node, card) (mixops_card_temperature_celsius)": _vector([({"node": "g1", "card": "1"}, "NaN")], now),
    }
    server, url = _canned(answers)
    try:
        first = read_snapshot_prom(url, now=now)
        assert first.card_node == ["g1", "g1"] and first.model == ["H100", None]     # card 1: labels later
        assert np.isnan(first.metrics["temperature_c"]).all()                       # NaN stays NaN, never 0
        layout = first.derived["prom_layout"]
        del answers["last_over_time"]                                               # not asked again
        again = read_snapshot_prom(url, now=now + 1, layout=layout)
        assert again.card_node == ["g1", "g1"] and again.serial[0] == "S0"
    finally:
        server.shutdown()
        server.server_close()


def _link_store(tmp_path: Path):
    """A real store holding n1's links (card 0 up, card 1 down, card 2 up and slow with its LINK-SLOW incident
    open, card 3 none) and n2's (up, but n2 does not answer); the site, the store and the sweep's reports."""
    from collectors.model import CardSample, Health, NodeReport
    from console.site import Node, Rack, Site, SSHDefaults

    site = Site("<t>", "t", "UTC", 1.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"),
                (Rack("R01", "A", 8),), (Node("n1", "127.0.0.1", None, "R01", 1, "nvidia", None),
                                         Node("n2", "127.0.0.1", None, "R01", 2, "nvidia", None)))
    store = Store(str(tmp_path / "ops.db"))
    store.conn.executemany("INSERT INTO links(node, card_idx, kind, link, peer, state, speed_gbps, first_seen) "
                           "VALUES (?,?,?,?,NULL,?,?,0)",
                           [("n1", 0, "nvlink", "0", "up", 200.0), ("n1", 1, "nvlink", "0", "down", None),
                            ("n1", 2, "nvlink", "0", "up", 100.0), ("n2", 0, "nvlink", "0", "up", 200.0)])
    store.conn.execute("INSERT INTO incidents(opened_at, severity, state, title, node, card_idx, code, source, key) "
                       "VALUES (?, 'P3', 'open', 'n1 card 2 nvlink 0: slower than its peers', 'n1', 2, 'LINK-SLOW', "
                       "'link', 'link:n1:2:nvlink:0')", (time.time() - 60,))
    store.conn.commit()
    now = time.time()
    cards = tuple(CardSample(i, model="NVIDIA H100", health=Health.OK, temperature_c=50) for i in range(4))
    reports = (NodeReport("n1", True, now, 0.1, "nvidia", cards),
               NodeReport("n2", False, now, 5.0, None, error="timeout"))
    return site, store, reports


def _links_of(snap) -> dict[tuple[str, int], int]:
    assert snap.link_state is not None
    return {(n, int(i)): int(s) for n, i, s in zip(snap.card_node, snap.card_idx, snap.link_state, strict=True)}


def _assert_links(url: str) -> None:
    from console.links import LINK_CRITICAL, LINK_NA, LINK_OK, LINK_WARNING

    poll(lambda: (s := read_snapshot_prom(url, interval_s=1.0)).link_state is not None
         and LINK_CRITICAL in s.link_state.tolist() and s.incidents, "the links and the incident in the store")
    snap = read_snapshot_prom(url, interval_s=1.0)
    got = _links_of(snap)
    assert got[("n1", 0)] == LINK_OK
    assert got[("n1", 1)] == LINK_CRITICAL
    assert got[("n1", 2)] == LINK_WARNING          # up, but its LINK-SLOW incident is open: degraded
    assert got[("n1", 3)] == LINK_NA               # no link series: N/A, never up
    assert not any(n == "n2" for n, _ in got)      # the failed node exported no card
    # nothing new written: n1 turns stale, and its links up are not shown as up any more (down stays down)
    later = _links_of(read_snapshot_prom(url, interval_s=1.0, now=time.time() + 60))
    assert later[("n1", 0)] == LINK_NA and later[("n1", 2)] == LINK_WARNING and later[("n1", 1)] == LINK_CRITICAL


@pytest.mark.slow
def test_room_links_from_a_real_victoria_metrics(victoria, tmp_path):
    site, store, reports = _link_store(tmp_path)
    writer = RemoteWriter(f"{victoria.url}/api/v1/write", str(tmp_path / "rw"))
    try:
        from console.service import SweepSummary

        summary = SweepSummary(1, reports[0].started, 0.1, reports, ())
        writer.push(Snapshots(site, "1/1").update(summary, store), summary.started + summary.duration_s)
        poll(lambda: writer.queued() == 0 and writer.sent >= 1, "the sweep sent")
    finally:
        writer.close()
        store.close()
    _assert_links(victoria.url)


@pytest.mark.slow
def test_room_links_from_a_real_prometheus_scraping_a_collector(prometheus, tmp_path):
    from console.metrics import Exporter
    from console.service import SweepSummary

    site, store, reports = _link_store(tmp_path)
    exporter = Exporter(site, "127.0.0.1", 0, "1/1")
    try:
        exporter.update(SweepSummary(1, time.time(), 0.1, reports, ()), store)
        prometheus.scrape({"mixops": (exporter.address[1], {})})
        _assert_links(prometheus.url)
    finally:
        exporter.close()
        store.close()
