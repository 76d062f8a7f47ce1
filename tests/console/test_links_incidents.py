"""Link incidents on sequences of sweeps through a real store: down, flapping, error rate, one incident per
link with repeats counted, many links of a node grouped, P1 under a job, resets and never-connected ports
are no incidents."""

from __future__ import annotations

from dataclasses import replace

import pytest

from collectors.model import CardSample, Link, LinkState, NodeReport
from console import incidents
from console.store import Store

T0 = 1_800_000_000.0
UP, DOWN, UNKNOWN = LinkState.UP, LinkState.DOWN, LinkState.UNKNOWN


def nv(link, state=UP, crc=0, card=0):
    return Link("nvlink", str(link), card, state=state, counters={"crc_errors": crc, "replay_errors": 0})


def node(name, *links, vendor="nvidia"):
    return NodeReport(name, True, T0, 0.1, vendor, (CardSample(0, model="H100"), CardSample(1, model="H100")),
                      links=tuple(links))


@pytest.fixture
def env(tmp_path):
    store = Store(str(tmp_path / "ops.db"))
    engine = incidents.IncidentEngine(store.conn, clear_after=3, jobs_of={"n0": ["llm"]})
    state = {"t": T0}

    def sweep(*reports, step=10.0):
        state["t"] += step
        reports = [replace(r, started=state["t"]) for r in reports]
        store.write_sweep(state["t"], state["t"] + 1, reports)
        return engine.process(state["t"] + 1, reports)

    yield store, sweep
    store.close()


def rows(store):
    cur = store.conn.execute("SELECT * FROM incidents ORDER BY id")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur]


def test_link_down_is_one_incident_with_repeats_p1_under_a_job(env):
    store, sweep = env
    sweep(node("n0", nv(0), nv(1)), node("n1", nv(0)))
    assert rows(store) == []
    sweep(node("n0", nv(0), nv(1, DOWN)), node("n1", nv(0, DOWN)))
    sweep(node("n0", nv(0), nv(1, DOWN)), node("n1", nv(0, DOWN)))
    got = {r["node"]: r for r in rows(store)}
    assert set(got) == {"n0", "n1"}
    assert got["n0"]["severity"] == "P1" and got["n0"]["job"] == "llm"          # a job runs on n0
    assert got["n1"]["severity"] == "P2"
    for r in got.values():
        assert (r["code"], r["action"], r["source"], r["count"]) == ("LINK-DOWN", "reset_card", "link", 2)
    assert got["n0"]["title"].startswith("n0 card 0 nvlink 1: down since")


def test_a_port_never_up_is_no_incident(env):
    store, sweep = env
    port2 = Link("ib", "mlx5_1/1", None, state=DOWN, speed_gbps=10.0)
    for _ in range(3):
        sweep(node("n1", port2))
    assert rows(store) == []


def test_nic_port_down_is_isolate(env):
    store, sweep = env
    port = Link("roce", "0", 3, state=UP)
    sweep(node("n1", port, vendor="ascend"))
    sweep(node("n1", replace(port, state=DOWN), vendor="ascend"))
    (r,) = rows(store)
    assert (r["code"], r["action"], r["card_idx"], r["vendor"]) == ("LINK-DOWN", "isolate", 3, "ascend")


def test_flapping_then_quiet_resolves(env):
    store, sweep = env
    sweep(node("n1", nv(0)))
    for state in (DOWN, UP, DOWN, UP):
        sweep(node("n1", nv(0, state)), step=30)
    (r,) = rows(store)
    assert (r["code"], r["action"], r["severity"]) == ("LINK-FLAPPING", "isolate", "P2")
    assert r["title"] == "n1 card 0 nvlink 0: flapping (3 changes in 10 min)"    # the down incident, escalated
    assert r["count"] == 3          # down; (up: not down, 2 changes); down and flapping; up and flapping
    for _ in range(5):      # up and quiet: past the 10 min window, then clear for 3 sweeps
        sweep(node("n1", nv(0)), step=300)
    (r,) = rows(store)
    assert (r["state"], r["resolved_by"]) == ("resolved", "auto")


def test_ascend_up_count_between_sweeps_is_flapping(env):
    """The port went down and up twice between two readings: -link says UP both times, the up count says 2."""
    store, sweep = env
    port = Link("roce", "0", 0, state=UP, counters={"link_up_count": 1})
    sweep(node("n1", port, vendor="ascend"))
    sweep(node("n1", replace(port, counters={"link_up_count": 3}), vendor="ascend"))
    (r,) = rows(store)
    assert r["code"] == "LINK-FLAPPING"


def test_error_rate_over_the_kinds_limit_and_a_reset_is_no_burst(env):
    store, sweep = env
    sweep(node("n1", nv(0, crc=100)))
    sweep(node("n1", nv(0, crc=150)))           # 50 in 5 min: 10/min, under NVLink's 60/min
    assert rows(store) == []
    sweep(node("n1", nv(0, crc=5)))             # reboot: the total went down
    assert rows(store) == []
    sweep(node("n1", nv(0, crc=20_000)))        # 19,995 in 5 min: ~4,000/min
    (r,) = rows(store)
    assert (r["code"], r["action"], r["severity"]) == ("LINK-ERRORS", "watch", "P3")
    assert "crc_errors" in r["evidence"]


def test_error_limit_is_per_kind(env, tmp_path):
    store, sweep = env
    ib = Link("ib", "mlx5_0/1", None, state=UP, counters={"symbol_error": 0})
    sweep(node("n1", ib))
    sweep(node("n1", replace(ib, counters={"symbol_error": 200})))      # 40/min: over IB's 10/min
    (r,) = rows(store)
    assert r["code"] == "LINK-ERRORS" and r["card_idx"] is None


def test_many_links_of_one_node_are_one_incident(env):
    store, sweep = env
    links = [nv(i, card=c) for c in (0, 1) for i in range(4)]
    sweep(node("n0", *links))
    sweep(node("n0", *[replace(ln, state=DOWN) for ln in links]))
    (r,) = rows(store)
    assert r["key"] == "link:n0:*"
    assert r["title"] == "n0: 8 links (8 down)"
    assert r["severity"] == "P1" and r["cards"] == "[0, 1]"


def test_settings_are_a_module_dataclass_with_defaults():
    s = incidents.LINK_SETTINGS
    assert (s.flap_changes, s.flap_window_s, s.group_links) == (3, 600.0, 3)
    assert s.error_limit("ib") == 10.0 and s.error_limit("mtlink") == s.default_error_rate_per_min


def test_a_link_tool_missing_on_many_nodes_is_one_incident(env):
    store, sweep = env
    text = ("ascend: hccn_tool -i N -link/-net_health/-link_stat/-stat -g: hccn_tool not found; links not collected "
            "on this node")
    reports = [replace(node(f"a{i}", vendor="ascend"), warnings=(text,)) for i in range(3)]
    reports.append(replace(node("a9", vendor="ascend"), warnings=("ascend: npu-smi info: column 'X(%)' not known",)))
    sweep(*reports)
    got = {r["code"]: r for r in rows(store)}
    assert set(got) == {"LINKS-UNAVAILABLE", "COLLECTOR"}
    assert got["LINKS-UNAVAILABLE"]["title"] == ("links not collected on 3 node(s): ascend: hccn_tool -i N "
                                                 "-link/-net_health/-link_stat/-stat -g: hccn_tool not found")
    assert got["LINKS-UNAVAILABLE"]["severity"] == "P4" and got["COLLECTOR"]["node"] == "a9"


def test_a_down_link_stays_an_incident_while_the_node_sends_the_same_text(env):
    store, sweep = env
    sweep(node("n1", nv(0)))
    sweep(node("n1", nv(0, DOWN)))
    for _ in range(4):      # the node answers `mixops-same`: the link is as stored, still down
        sweep(replace(node("n1"), links_same=("nvlink", "nvlink-errors")))
    (r,) = rows(store)
    assert (r["code"], r["state"], r["count"]) == ("LINK-DOWN", "open", 5)


def test_a_link_slower_than_its_peers(env):
    store, sweep = env
    lanes = [replace(nv(i), speed_gbps=212.496) for i in range(4)]
    ib = Link("ib", "mlx5_0/1", None, state=UP, speed_gbps=400.0)       # alone of its kind: no peer to compare
    sweep(node("n1", *lanes, ib))
    assert rows(store) == []
    sweep(node("n1", *lanes[:3], replace(lanes[3], speed_gbps=106.248), replace(ib, speed_gbps=100.0)))
    (r,) = rows(store)
    assert (r["code"], r["action"], r["severity"]) == ("LINK-SLOW", "watch", "P3")
    assert r["title"] == "n1 card 0 nvlink 3: slower than its peers (106.248 Gb/s, best of its kind on the node 212.496 Gb/s)"
