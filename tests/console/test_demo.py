"""The demo site: the simulator's text parses back to its state, and `demo --headless` builds a database."""

from __future__ import annotations

import sqlite3
import time

import pytest

from collectors import registry
from console import demo
from console.cli import run


def _center(cards=320):
    site = demo.demo_site(cards)
    return site, demo.DemoCenter(site, start=time.time() - 5, story=False)


@pytest.mark.parametrize("vendor", demo.VENDOR_MIX)
def test_round_trip_per_vendor(vendor):
    site, center = _center()
    now = time.time()
    node = next(n for n in site.nodes if n.vendor == vendor)
    state = center.advance(node.name, now)
    # one lost card and one missing value: N/A must come back as None, never 0
    state.cards[2].lost_until = now + 600
    center.advance(node.name, now)
    module = registry.get(vendor)
    sections = {c.section: demo.render(state, c, now - 60, now) for c in module.plan(None)}
    result = module.parse(sections)
    assert result.warnings == ()
    assert len(result.cards) == len(state.cards)
    for card, truth in zip(result.cards, state.cards, strict=True):
        assert card.index == truth.index
        assert card.temperature_c == truth.temperature_c
        assert card.utilization_pct == truth.utilization_pct
        assert card.memory_used_mib == truth.memory_used_mib
        assert card.power_w == truth.power_w
    assert result.cards[2].temperature_c is None and result.cards[2].power_w is None


def test_site_shape_and_sizes():
    site = demo.demo_site()
    assert len(site.nodes) == 160 and len({n.vendor for n in site.nodes}) >= 5
    assert len({r.row for r in site.racks}) == 2
    big = demo.demo_site(10_240)
    assert len(big.nodes) * demo.CARDS_PER_NODE == 10_240


def test_hot_aisle_and_load_shape_temperature():
    site, center = _center(1280)
    now = time.time()
    temps = {}
    for n in site.nodes:
        ns = center.advance(n.name, now)
        temps[n.name] = (ns.rack_pos, ns.job, max(c.temperature_c or 0 for c in ns.cards))
    middle = [t for pos, job, t in temps.values() if 0.4 <= pos <= 0.6 and job]
    edge = [t for pos, job, t in temps.values() if (pos <= 0.1 or pos >= 0.9) and job]
    assert sum(middle) / len(middle) > sum(edge) / len(edge)


def test_silent_node_and_hung_tool_fail_the_way_real_ones_do():
    site, center = _center()
    names = [n.name for n in site.nodes]
    center.nodes[names[0]].silent_until = time.time() + 60
    center.nodes[names[1]].hung_until = time.time() + 60
    from collectors.node import NodeCollector
    reports = []
    for name in names[:2]:
        node = next(n for n in site.nodes if n.name == name)
        ep = site.endpoint(node)
        reports.append(NodeCollector(ep, node.vendor, session=demo.SimSession(center, ep)).sweep())
    assert not reports[0].ok and "timed out" in reports[0].error
    assert not reports[1].ok and "timed out after" in reports[1].error


def test_headless_build(tmp_path, capsys):
    db = tmp_path / "demo.db"
    assert run(["demo", "--headless", "--db", str(db), "--days", "0.05", "--cards", "320"]) == 0
    assert "DEMO database" in capsys.readouterr().out
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM cards").fetchone()[0] == 320
    assert conn.execute("SELECT count(DISTINCT vendor) FROM nodes").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM sweeps").fetchone()[0] >= 60
    # a second build replaces the earlier demo database; a foreign file is refused
    assert run(["demo", "--headless", "--db", str(db), "--days", "0", "--cards", "64"]) == 0
    other = tmp_path / "ops.db"
    other.write_text("operator data")
    assert run(["demo", "--headless", "--db", str(other), "--days", "0"]) == 2
    assert "not a mixops demo database" in capsys.readouterr().err
    assert other.read_text() == "operator data"


def test_a_restarted_collector_does_not_report_a_kernel_event_again():
    from collectors.node import NodeCollector

    site, center = _center()
    node = next(n for n in site.nodes if n.vendor == "nvidia")
    state = center.nodes[node.name]
    center._card_event(state, state.cards[1], "xid48", time.time() - 30)
    ep = site.endpoint(node)
    first = NodeCollector(ep, "nvidia", session=demo.SimSession(center, ep))
    assert [f.code for f in first.sweep().faults] == ["Xid 48"]
    again = NodeCollector(ep, "nvidia", first.cursor, demo.SimSession(center, ep))   # as after a restart
    assert again.sweep().faults == ()


def test_headless_build_at_the_real_cadence(tmp_path, capsys):
    """`demo --headless --interval 10` (DESIGN §4): the history is swept every 10 s, as a real site records it."""
    db = tmp_path / "demo.db"
    assert run(["demo", "--headless", "--db", str(db), "--days", "0.004", "--cards", "64", "--interval", "10"]) == 0
    out = capsys.readouterr()
    assert "every 10 s" in out.out and "100.0 %" in out.err
    conn = sqlite3.connect(db)
    starts = [r[0] for r in conn.execute("SELECT started FROM sweeps ORDER BY started")]
    assert len(starts) >= 30 and {round(b - a) for a, b in zip(starts, starts[1:])} == {10}
    node_ts = [r[0] for r in conn.execute(
        "SELECT DISTINCT ts FROM samples WHERE card_id = (SELECT min(id) FROM cards) ORDER BY ts")]
    assert len(node_ts) >= 30 and max(b - a for a, b in zip(node_ts, node_ts[1:])) < 20
    assert run(["demo", "--headless", "--db", str(db), "--interval", "0"]) == 2
