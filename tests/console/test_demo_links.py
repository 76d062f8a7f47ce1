"""The demo's links through the real parsers, store, incident engine and continuity tracker: every vendor's
links stored, seeded link faults, and the link story (a RoCE port that flaps stops a job, which resumes; the
interruption's cause names the port, its incident is the flapping one)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from collectors import registry
from collectors.model import LinkState
from console import demo

END = 1_790_000_000.0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[demo.DemoCenter, sqlite3.Connection]]:
    """0.1 day of demo history on 320 cards (every vendor, one rack each) with both stories."""
    site = demo.demo_site(320)
    center = demo.DemoCenter(site, seed=2026, start=END - 0.1 * 86400.0, story=False)
    db = str(tmp_path_factory.mktemp("demo") / "demo.db")
    demo.build_history(db, 0.1, 320, end=END, center=center)
    conn = sqlite3.connect(db)
    yield center, conn
    conn.close()


def test_links_stored_for_every_vendor(built):
    _center, conn = built
    kinds = {(v, k) for v, k in conn.execute("SELECT DISTINCT n.vendor, l.kind FROM links l JOIN nodes n ON n.name = l.node")}
    assert {v for v, _ in kinds} == set(demo.VENDOR_MIX)
    assert {("nvidia", "nvlink"), ("nvidia", "ib"), ("ascend", "hccs"), ("ascend", "roce"), ("hygon", "roce"),
            ("cambricon", "roce"), ("metax", "roce")} <= kinds
    # healthy mostly: one NVLink lane down (the opening story), every other link up
    assert conn.execute("SELECT kind, count(*) FROM links WHERE state != 'up' GROUP BY kind").fetchall() == [("nvlink", 1)]


def test_the_flapping_port_stops_the_job_and_is_its_cause(built):
    center, conn = built
    flap = center.flap
    assert flap is not None and flap.node is not None and flap.node.startswith("npu-")
    where = f"{flap.node} card {flap.card} roce 0"
    (incident, code, job, title), = conn.execute(
        "SELECT id, code, job, title FROM incidents WHERE source = 'link' AND key = ?",
        (f"link:{flap.node}:{flap.card}:roce:0",)).fetchall()
    assert code == "LINK-FLAPPING" and job == "llm-70b-mix" and title.startswith(f"{where}: flapping")
    rows = conn.execute("SELECT stopped_at, resumed_at, cause, incident_id FROM job_interruptions WHERE job = ? "
                        "AND cause LIKE 'LINK-%'", ("llm-70b-mix",)).fetchall()
    assert len(rows) == 1, rows
    stopped_at, resumed_at, cause, by = rows[0]
    assert f" on {where} at " in cause and cause.endswith("then the collective timed out"), cause
    assert by == incident
    # the job resumed in the history, after the port held up again, as the simulator's truth says
    (truth,) = [s for s in center.jobs["llm-70b-mix"].truth if s.fault.kind == "flap"]
    assert resumed_at is not None and abs(resumed_at - truth.resumed_at) <= 60.0
    assert stopped_at <= truth.at and resumed_at > flap.back_at
    # the log said why: an HCCL timeout
    assert conn.execute("SELECT count(*) FROM job_events WHERE job = 'llm-70b-mix' AND kind = 'fatal' AND "
                        "detail LIKE 'hccl: EI0002%' AND ts BETWEEN ? AND ?", (truth.at, resumed_at)).fetchone()[0] == 1
    # the port went down and up several times, as the store and its flap counter saw
    (ups,) = conn.execute("SELECT sum(d.delta) FROM link_counter_deltas d JOIN links l ON l.id = d.link_id WHERE "
                          "l.node = ? AND l.card_idx = ? AND l.kind = 'roce' AND d.name = 'link_up_count'",
                          (flap.node, flap.card)).fetchone()
    assert ups == demo.FLAP_CYCLES


def test_the_opening_story_keeps_its_own_cause_and_the_link_faults_are_incidents(built):
    center, conn = built
    # the silent Hygon node's stop is not put on a link that went wrong while the job was down
    story = conn.execute("SELECT cause FROM job_interruptions WHERE job = 'llm-70b-mix' AND stopped_at > ?",
                         (END - 900.0,)).fetchall()
    assert story and all(not (c or "").startswith("LINK-") for (c,) in story)
    codes = {(c, k) for c, k in conn.execute("SELECT code, key FROM incidents WHERE source = 'link' AND opened_at > ?",
                                             (END - 900.0,))}
    assert {c for c, _ in codes} == {"LINK-DOWN", "LINK-ERRORS"}
    assert any(k.startswith("link:npu-") and k.endswith(":roce:0") for c, k in codes if c == "LINK-ERRORS")
    assert any(k.startswith("link:mlu-") for c, k in codes if c == "LINK-ERRORS")
    # the lane below the limit counts its CRC errors without an incident
    (crc,) = conn.execute("SELECT sum(d.delta) FROM link_counter_deltas d JOIN links l ON l.id = d.link_id "
                          "WHERE l.kind = 'nvlink' AND d.name = 'crc_errors'").fetchone()
    assert crc is not None and crc > 0


def test_link_texts_parse_back_without_warnings_and_travel_as_one_line_when_unchanged():
    site = demo.demo_site(320)
    now = time.time()
    center = demo.DemoCenter(site, seed=5, start=now - 5, story=False)
    center.seed_links(now - 120.0)
    gpu = next(n.name for n in site.nodes if n.vendor == "nvidia")
    npu = next(n.name for n in site.nodes if n.vendor == "ascend")
    center.nodes[gpu].link_faults[("nvlink", 2, "5")] = demo.LinkFault(downs=((now - 60.0, float("inf")),))
    center.nodes[npu].link_faults[("roce", 4, "0")] = demo.LinkFault(
        downs=demo.flap_spans(npu, 4, now - 200.0, now - 10.0))
    for node in [*site.nodes[::7], *(n for n in site.nodes if n.name in (gpu, npu))]:
        ns = center.advance(node.name, now)
        vendor = registry.get(node.vendor or "")
        assert vendor is not None
        first = vendor.parse({c.section: demo.render(ns, c, now - 60, now) for c in vendor.plan(None)})
        assert first.warnings == () and first.links, node.name
        again = vendor.parse({c.section: demo.render(ns, c, now - 60, now) for c in vendor.plan(first)})
        assert again.warnings == () and again.links == () and again.links_same, node.name
    state = {(ln.card_index, ln.kind, ln.link): ln for ln in registry.get("nvidia").parse(  # type: ignore[union-attr]
        {c.section: demo.render(center.nodes[gpu], c, now - 60, now) for c in registry.get("nvidia").plan(None)}).links}
    assert state[(2, "nvlink", "5")].state is LinkState.DOWN and state[(2, "nvlink", "4")].speed_gbps == 212.496
    ports = {ln.card_index: ln for ln in registry.get("ascend").parse(  # type: ignore[union-attr]
        {c.section: demo.render(center.nodes[npu], c, now - 60, now) for c in registry.get("ascend").plan(None)}).links
        if ln.kind == "roce"}
    assert ports[4].counters["link_up_count"] == 1 + demo.FLAP_CYCLES and ports[3].counters["link_up_count"] == 1


def test_seeded_link_faults_follow_the_seed():
    site = demo.demo_site(1280)

    def faults(seed: int) -> dict[str, dict[tuple[str, int | None, str], demo.LinkFault]]:
        center = demo.DemoCenter(site, seed=seed, start=END, story=False)
        center.seed_links(END)
        return {n: dict(ns.link_faults) for n, ns in center.nodes.items() if ns.link_faults}

    assert faults(3) == faults(3) and len(faults(3)) == 4
    assert faults(3) != faults(4)
