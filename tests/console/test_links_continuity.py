"""A job that stops on a collective timeout after a link of its node failed has that link as the cause of its
interruption (real store, real continuity tracker); a stop without a collective timeout, or with a vendor
fault found for it, keeps its cause."""

from __future__ import annotations

from dataclasses import replace

from collectors.model import CardSample, Link, LinkState, NodeReport
from console.continuity import Tracker
from console.incidents import IncidentEngine
from console.store import JobUpdate, Store

T0 = 1_800_000_000.0
NCCL = "nccl: [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=8812, OpType=ALLREDUCE)"


def sweep(store: Store, engine: IncidentEngine, t: float, state: LinkState, node: str = "n1") -> None:
    report = NodeReport(node, True, t, 0.1, "ascend", (CardSample(0, model="910B"),),
                        links=(Link("roce", "0", 5, state=state, counters={"link_up_count": 1}),))
    store.write_sweep(t, t + 1, [report])
    engine.process(t + 1, [report])


def read(store: Store, tracker: Tracker, events: list[tuple[float, str, int | None, str]], now: float) -> None:
    """What console.service does with one read of the job's log."""
    changes = tracker.advance(events, now)
    for k, stop in enumerate(changes.interruptions):
        cause, incident = store.interruption_cause("llm", stop.stopped_at - 300.0, (stop.resumed_at or now) + 60.0)
        changes.interruptions[k] = replace(stop, cause=cause or stop.cause, incident_id=incident)
    store.write_job(JobUpdate("llm", now, 0, None, tracker.phase, tracker, changes, events=events))


def stored(store: Store) -> tuple[str | None, int | None]:
    return store.conn.execute("SELECT cause, incident_id FROM job_interruptions WHERE job = 'llm'").fetchone()


def _run(tmp_path, fatal: str, down: bool = True) -> tuple[Store, tuple[str | None, int | None]]:
    store = Store(str(tmp_path / "ops.db"))
    store.sync_jobs({"n1": ["llm"]})
    engine = IncidentEngine(store.conn, jobs_of={"n1": ["llm"]})
    tracker = Tracker()
    read(store, tracker, [(T0 + 10.0 * i, "progress", i, "") for i in range(1, 8)], T0 + 75)
    sweep(store, engine, T0 + 60, LinkState.UP)
    sweep(store, engine, T0 + 80, LinkState.DOWN if down else LinkState.UP)
    read(store, tracker, [(T0 + 95, "fatal", None, fatal)], T0 + 100)
    return store, stored(store)


def test_collective_timeout_after_a_link_down_has_the_link_as_cause(tmp_path):
    store, (cause, incident) = _run(tmp_path, NCCL)
    assert cause is not None and cause.startswith("LINK-DOWN on n1 card 5 roce 0 at "), cause
    assert cause.endswith("then the collective timed out")
    (code, key) = store.conn.execute("SELECT code, key FROM incidents WHERE id = ?", (incident,)).fetchone()
    assert (code, key) == ("LINK-DOWN", "link:n1:5:roce:0")
    store.close()


def test_hccl_timeout_after_a_flap_between_readings(tmp_path):
    store = Store(str(tmp_path / "ops.db"))
    store.sync_jobs({"n1": ["llm"]})
    engine = IncidentEngine(store.conn, jobs_of={"n1": ["llm"]})
    tracker = Tracker()
    read(store, tracker, [(T0 + 10.0 * i, "progress", i, "") for i in range(1, 8)], T0 + 75)
    port = Link("roce", "0", 2, state=LinkState.UP, counters={"link_up_count": 4})
    for t, count in ((T0 + 60, 4), (T0 + 80, 6)):       # up both times: two flaps between the readings
        r = NodeReport("n1", True, t, 0.1, "ascend", (CardSample(0),), links=(replace(port, counters={
            "link_up_count": count}),))
        store.write_sweep(t, t + 1, [r])
        engine.process(t + 1, [r])
    read(store, tracker, [(T0 + 95, "fatal", None, "hccl: EI0002: The wait execution of the Notify register times "
                                                   "out.")], T0 + 100)
    cause, _incident = stored(store)
    assert cause is not None and cause.startswith("LINK-FLAPPING on n1 card 2 roce 0"), cause
    store.close()


def test_a_stop_without_a_collective_timeout_keeps_its_cause(tmp_path):
    store, (cause, _incident) = _run(tmp_path, "oom: torch.OutOfMemoryError: CUDA out of memory.")
    assert cause is not None and not cause.startswith("LINK-"), cause
    store.close()


def test_a_collective_timeout_with_no_link_failure_keeps_the_log_line(tmp_path):
    store, (cause, incident) = _run(tmp_path, NCCL, down=False)
    assert cause == NCCL and incident is None
    store.close()
