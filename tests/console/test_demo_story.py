"""The demo's room and its jobs tell one story: a job never trains on while one of its nodes is not answering."""

from __future__ import annotations

import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from console import demo, simjobs
from console.service import Collector

END = 1_790_000_000.0


def _job(seed: int = 1, mtbf_s: float = 4 * 3600.0, hang_share: float = 0.2) -> simjobs.SimJob:
    nodes = tuple(f"n{k}" for k in range(8))
    spec = simjobs.JobSpec("j", "megatron", nodes, dict.fromkeys(nodes, "hygon"), "/logs/j", "/ckpt/j",
                           step_s=6.0, log_every=10, ckpt_every=300, save_s=50.0, mtbf_s=mtbf_s,
                           hang_share=hang_share, seed=seed)
    return simjobs.SimJob(spec, END - 86400.0, ZoneInfo("Asia/Shanghai"))


def _progress_times(sim: simjobs.SimJob, now: float) -> list[float]:
    """Times of the progress lines the job's log shows at `now` (second resolution, site timezone)."""
    text = sim.log_output(0, now, 1 << 30)
    stamps = re.findall(r"^ \[([0-9-]+ [0-9:]+)\] iteration", text, re.M)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=sim.tz).timestamp() for s in stamps]


def test_a_room_fault_holds_the_job_down_until_the_node_is_back():
    sim = _job(seed=3, mtbf_s=3 * 3600.0)
    sim.extend(END)
    stops = [s for s in sim.truth if s.fault.back_at is not None]
    assert stops and any(s.fault.kind == "silent" for s in stops)
    progress = _progress_times(sim, END)
    for s in stops:
        assert s.resumed_at >= s.fault.back_at + simjobs.RETURN_S[0]
        assert not [t for t in progress if s.at < t < s.resumed_at - 1]      # nothing trains while it is out
    faults = [f for n in sim.spec.nodes for f in sim.faults_due(n, -math.inf, END)]
    assert sorted(t for t, _ in faults) == sorted(s.at for s in stops)     # every stop is in the room too


def test_interrupt_keeps_what_was_shown_and_stops_the_job():
    sim, twin = _job(seed=5, mtbf_s=1e9), _job(seed=5, mtbf_s=1e9)     # no faults of its own
    t = END - 3 * 3600.0
    shown = sim.log_output(0, t, 1 << 30)
    sim.extend(t + 7200.0)                                       # generated ahead, not shown: may change
    # an interrupt in the past is moved to the latest time already shown
    assert sim.interrupt(t - 600.0, simjobs.FaultPlan("silent", "n2", None, t + 1200.0)) == t
    after = sim.log_output(0, t + 200.0, 1 << 30)
    size = int(shown.split()[1])
    assert after.split("\n", 1)[1].encode()[:size] == shown.split("\n", 1)[1].encode()
    (stop,) = sim.truth
    assert stop.at == t and stop.fault.kind == "silent" and stop.resumed_at > t + 1200.0
    assert sim.load(t + 200.0) == 0.0 and sim.stopped_by_room(t + 600.0) and not sim.stopped_by_room(t - 1.0)
    assert [(at, f.node) for at, f in sim.faults_due("n2", t - 1.0, t + 1.0)] == [(t, "n2")]
    # a second fault while the job is down holds it down until that card is back too; a hang changes nothing
    sim.interrupt(t + 300.0, simjobs.FaultPlan("hang", None, None))
    sim.interrupt(t + 300.0, simjobs.FaultPlan("xid79", "n4", 3, t + 2400.0))
    (stop,) = sim.truth
    assert stop.at == t and stop.fault.node == "n2" and [f.kind for f in stop.also] == ["xid79"]
    assert stop.resumed_at > t + 2400.0 and not [p for p in _progress_times(sim, t + 7200.0) if t < p < t + 2400.0]
    # deterministic: the same calls give the same log and truth
    twin.log_output(0, t, 1 << 30)
    twin.extend(t + 7200.0)
    twin.interrupt(t - 600.0, simjobs.FaultPlan("silent", "n2", None, t + 1200.0))
    twin.log_output(0, t + 200.0, 1 << 30)
    twin.interrupt(t + 300.0, simjobs.FaultPlan("hang", None, None))
    twin.interrupt(t + 300.0, simjobs.FaultPlan("xid79", "n4", 3, t + 2400.0))
    assert twin.log_output(0, t + 7200.0, 1 << 30) == sim.log_output(0, t + 7200.0, 1 << 30)
    assert twin.truth == sim.truth


def test_the_room_never_stops_a_job_node_by_itself(monkeypatch):
    """Room rates far above the real ones: on a job's nodes only events that do not stop a job arrive from the
    room; silences and lost cards there come from the job, which is down at that time."""
    monkeypatch.setattr(demo, "NODE_SILENT_PER_HOUR", 0.05)
    monkeypatch.setattr(demo, "CARD_EVENTS", {v: tuple((k, r * 200) for k, r in e) for v, e in demo.CARD_EVENTS.items()})
    monkeypatch.setitem(demo.JOB_PROFILES, "llm-70b-mix", dict(demo.JOB_PROFILES["llm-70b-mix"], mtbf_s=2 * 3600.0))
    site = demo.demo_site(320)
    start = END - 12 * 3600.0
    center = demo.DemoCenter(site, seed=11, start=start, story=False, job_days=1.0)
    sim = center.jobs["llm-70b-mix"]
    job_nodes = set(sim.spec.nodes)
    silent_outside = out_in_job = 0
    for k in range(1, 12 * 60 + 1):
        now = start + 60.0 * k
        for n in site.nodes:
            ns = center.advance(n.name, now)
            lost = any(c.lost_until > now or c.alarm_until > now for c in ns.cards)
            if n.name not in job_nodes:
                silent_outside += ns.silent_until > now
            elif ns.silent_until > now or lost:
                out_in_job += 1
                assert sim.load(now) == 0.0, (n.name, now)
    assert silent_outside > 0 and out_in_job > 0
    assert any(s.by_room for s in sim.truth if s.at > start)


def _checked_collector(center: demo.DemoCenter, seen: dict[str, int]) -> type[Collector]:
    """A Collector that, after every sweep, holds the store to the rule: no open node-not-answering incident
    on a job's node while that job is running with progress after the node stopped answering."""

    class Checked(Collector):
        def sweep(self, on_report=None):  # type: ignore[no-untyped-def]
            summary = super().sweep(on_report)
            rows = self.store.conn.execute(
                """SELECT i.node, i.opened_at, j.name, j.state, j.last_progress_at FROM incidents i
                   JOIN job_nodes n ON n.node = i.node JOIN jobs j ON j.name = n.job
                   WHERE i.source = 'node' AND i.state != 'resolved' AND i.severity IN ('P1', 'P2')""").fetchall()
            for node, opened_at, job, state, last_progress_at in rows:
                seen["open"] += 1
                since = min(opened_at, center.nodes[node].silent_since)
                assert not (state == "running" and last_progress_at is not None and last_progress_at > since), (
                    f"at {summary.started}: {node} not answering since {since} while {job} runs "
                    f"(last progress {last_progress_at})")
                seen["down" if state in ("down", "stalled", "resuming") else "other"] += 1
            return summary

    return Checked


@pytest.mark.parametrize("seed", [2026, 7, 41])
def test_the_window_never_shows_a_silent_node_under_a_running_job(tmp_path, monkeypatch, seed):
    """Demo history through the real collector, store and incident engine (the job failing every 1.5 h),
    then 25 min of live sweeps every 10 s: at no sweep is a node of a job not answering (open P1/P2) while
    that job trains on."""
    monkeypatch.setitem(demo.JOB_PROFILES, "llm-70b-mix", dict(demo.JOB_PROFILES["llm-70b-mix"], mtbf_s=1.5 * 3600.0))
    site = demo.demo_site(320)
    days = 0.1
    center = demo.DemoCenter(site, seed=seed, start=END - days * 86400.0, story=False, job_days=1.0)
    seen = {"open": 0, "down": 0, "other": 0}
    Checked = _checked_collector(center, seen)
    monkeypatch.setattr(demo, "Collector", Checked)
    db = str(tmp_path / "demo.db")
    demo.build_history(db, days, 320, end=END, seed=seed, center=center)
    from console.store import Store

    store = Store(db)
    now = [END]
    live = Checked(site, store, max_parallel=1, session_factory=lambda ep: demo.SimSession(center, ep, lambda: now[0]),
                   clock=lambda: now[0])
    states: list[str] = []
    try:
        for _ in range(150):
            now[0] += 10.0
            live.sweep()
            states.append(store.conn.execute("SELECT state FROM jobs WHERE name = 'llm-70b-mix'").fetchone()[0])
        story = [s for s in center.jobs["llm-70b-mix"].truth if s.at <= END - 600.0 < s.resumed_at]
        silent = store.conn.execute(
            """SELECT count(*), sum(state = 'resolved') FROM incidents WHERE source = 'node' AND node IN
               (SELECT node FROM job_nodes WHERE job = 'llm-70b-mix')""").fetchone()
    finally:
        live.close()
        store.close()
    # the story's silent Hygon node took the job down; it came back, its incident resolved, and the job resumed
    (stop,) = story                             # the story's stop, or the job's own that it struck during
    assert any(f.kind == "silent" and f.node.startswith("dcu-") for f in (stop.fault, *stop.also))
    assert stop.resumed_at < now[0] and states[-1] == "running" and "down" in states
    assert silent[0] >= 1 and silent[1] == silent[0]
    assert seen["down"] > 0
