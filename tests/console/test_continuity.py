"""Continuity: ground truth on a job with known interruptions; log and checkpoint-listing parsers."""

from __future__ import annotations

import pytest

from collectors import jobs
from console import continuity

T0 = 1_800_000_000.0


def _events():
    """1 step every 2 s, logged every 5 steps (10 s). Crash at t≈1000 (step 500, the last line); the agent
    restarts at t=1200, loads the checkpoint of step 450 at t=1250, first progress at t=1300. A hang from
    t=2500 recovers without a restart at t=2700. Saves take 10 s. Read every 10 s until t=3600."""
    progress = [(T0 + t, t // 2) for t in range(0, 1001, 10)]
    progress += [(T0 + 1300 + t, 450 + 5 + t // 2) for t in range(0, 1201, 10)]          # up to t=2500
    last_step = progress[-1][1]
    progress += [(T0 + 2700 + t, last_step + 5 + t // 2) for t in range(0, 901, 10)]       # after the hang
    events = [(t, "progress", s, "") for t, s in progress]
    events += [(T0 + 1200, "restart", None, "Worker group FAILED. 2/3 attempts left"), (T0 + 1250, "load", 450, ""),
               (T0 + 890, "save_start", 450, ""), (T0 + 900, "save_end", 450, ""),
               (T0 + 1990, "save_start", 1300, ""), (T0 + 2000, "save_end", 1300, "")]
    checkpoints = [(T0 + 900, 450), (T0 + 2000, 1300)]
    return events, checkpoints


READS = [T0 + t for t in range(5, 3601, 10)]


def test_ground_truth_ettr_resume_and_lost_work():
    events, checkpoints = _events()
    m = continuity.replay("llm", events, READS, checkpoints=checkpoints, cards=1024)
    now = READS[-1]
    assert m.state == "running" and m.step_time_s == pytest.approx(2.0)
    first, hang = m.interruptions
    assert first.time_to_resume_s == pytest.approx(300) and first.lost_steps == 50
    assert first.lost_s == pytest.approx(100) and first.cause.startswith("Worker group FAILED")
    assert first.time_to_detect_s <= 50 + 10                  # 5 × the 10 s cadence, seen at the next read
    assert hang.time_to_resume_s == pytest.approx(200) and hang.lost_steps == 0
    assert 50 <= hang.time_to_detect_s <= 60
    truth = (now - T0 - 300 - 100 - 200) / (now - T0)
    assert abs(m.ettr - truth) <= 0.005                       # within 0.5 percentage points
    assert m.checkpoint_step == 1300 and m.checkpoint_age_s == pytest.approx(now - T0 - 2000)
    assert m.gpu_hours_at_risk == pytest.approx(1024 * (now - T0 - 2000) / 3600)
    # before any sweep of the job's nodes its cards are not known: the risk is unknown, not 0
    assert continuity.replay("llm", events, READS, checkpoints=checkpoints).gpu_hours_at_risk is None
    assert m.save_duration_s == pytest.approx(10)
    kinds = [s.kind for s in m.segments]
    assert {"running", "checkpointing", "down", "resuming", "stalled"} <= set(kinds)
    stalled, down = (s for s in m.segments if s.kind in ("stalled", "down") and s.start < T0 + 2000)
    assert (stalled.start, stalled.end, down.end) == (T0 + 1000, T0 + 1200, T0 + 1250)   # hang, then the crash
    assert continuity.goals(m)["ttr_le_10_min"] is True and continuity.goals(m)["ettr_ge_90"] is False


def test_the_tracker_survives_being_stored_between_reads():
    events, checkpoints = _events()
    whole = continuity.replay("llm", events, READS, checkpoints=checkpoints)
    tracker, stops, segments = continuity.Tracker(), {}, []
    ordered = sorted(events)
    for now in READS:
        tracker = continuity.Tracker.from_json(tracker.to_json())
        ch = tracker.advance([e for e in ordered if now - 10 < e[0] <= now], now)
        segments += ch.segments
        stops.update((i.stopped_at, i) for i in ch.interruptions)
    assert sorted(stops.values(), key=lambda i: i.stopped_at) == whole.interruptions
    assert len(segments) + len(tracker.open_segments()) == len(whole.segments)


def test_a_stall_is_detected_within_a_sweep_not_after_the_nccl_timeout():
    events = [(T0 + t, "progress", t // 2, "") for t in range(0, 601, 10)]
    m = continuity.replay("llm", events, [T0 + t for t in range(0, 701, 10)])
    assert m.state == "stalled"
    (stall,) = m.interruptions
    assert stall.resumed_at is None and stall.time_to_detect_s == pytest.approx(60)   # 5 × 10 s, next read


def test_a_fatal_line_ends_the_run_at_once_and_a_long_save_is_not_a_stall():
    events = [(T0 + t, "progress", t // 2, "") for t in range(0, 601, 10)]
    events += [(T0 + 605, "save_start", 300, ""), (T0 + 900, "save_end", 300, "")]
    events += [(T0 + t, "progress", 300 + (t - 900) // 2, "") for t in range(910, 1201, 10)]
    events += [(T0 + 1203, "fatal", None, "nccl: Watchdog caught collective operation timeout")]
    m = continuity.replay("llm", events, [T0 + t for t in range(0, 1211, 10)])
    (crash,) = m.interruptions
    assert m.state == "down" and crash.stopped_at == T0 + 1200 and crash.time_to_detect_s <= 10
    assert crash.cause.startswith("nccl")
    assert [s for s in m.segments if s.kind == "checkpointing"][0].end == T0 + 900


def test_a_finished_job_is_not_a_stall_and_its_figures_stop_at_its_end():
    text = ("[2026-11-22 01:00:00] iteration      990/    1000 | consumed samples: 1 |\n"
            "[2026-11-22 01:00:10] iteration     1000/    1000 | consumed samples: 1 |\n"
            "[after training is done] datetime: 2026-11-22 01:00:20\n")
    events = jobs.with_times(jobs.parse_log(text, "megatron").events, T0)
    assert [e[1] for e in events] == ["progress", "progress", "finished"]
    start = events[0][0]
    steady = [(start - 600 + t, "progress", t // 10, "1000") for t in range(0, 600, 10)]   # 10 min before
    reads = [start - 600 + t for t in range(5, 600 + 7200, 10)]                          # then 2 h of silence
    m = continuity.replay("done", steady + events, reads, checkpoints=[(start, 990)], cards=64)
    assert m.state == "finished" and m.interruptions == []
    assert m.ettr == 1.0 and m.current_run_s is None and m.longest_run_s == pytest.approx(610)
    assert m.gpu_hours_at_risk == 0.0 and not m.flags
    assert all(s.end is not None for s in m.segments)             # the lane ends with the training
    # the same job started again later: a new run, not an interruption
    again = [(start + 7300 + t, "progress", 1000 + t // 10, "2000") for t in range(0, 100, 10)]
    m2 = continuity.replay("done", steady + events + again, reads + [start + 7300 + t for t in range(5, 100, 10)])
    assert m2.state == "running" and m2.interruptions == []


def test_an_evaluation_progress_bar_is_not_a_restart():
    bar = "{pct}%|███▋      | {step}/{total} [06:17<10:46,  1.31it/s]"
    lines = [bar.format(pct=74, step=s, total=1350) for s in range(990, 1001)]
    lines += [bar.format(pct=p, step=s, total=50) for p, s in ((2, 1), (50, 25), (100, 50))]      # eval
    lines += [bar.format(pct=74, step=s, total=1350) for s in range(1001, 1011)]
    events = jobs.parse_log("\r".join(lines) + "\n", "hf").events
    timed = [(T0 + 10 * i, e.kind, e.step, str(e.total)) for i, e in enumerate(events)]
    m = continuity.replay("hf", timed, [T0 + 10 * i + 5 for i in range(len(timed))])
    assert m.state == "running" and m.interruptions == [] and m.last_step == 1010


def test_completion_lines_of_each_framework():
    for framework, line in (("hf", "Training completed. Do not forget to share your model on huggingface.co/models =)"),
                            ("mindformers", "2026-11-22 01:00:00,000 - mindformers - INFO - .........Training Over!......"),
                            ("nemo", "`Trainer.fit` stopped: `max_steps=1000` reached."),
                            ("nemo", ':::MLLOG {"time_ms": 1, "event_type": "INTERVAL_END", "key": "run_stop", "value": 0.9}'),
                            ("megatron", "[after training is done] datetime: 2026-11-22 01:00:00")):
        assert [e.kind for e in jobs.parse_log(line + "\n", framework).events] == ["finished"], line


def test_no_progress_says_no_data():
    assert continuity.replay("x", [], [T0]).state == "no data"


MEGATRON = """\
 [2026-11-22 01:00:00] iteration      100/  100000 | consumed samples: 3200 | elapsed time per iteration (ms): 2000.1 |
saving checkpoint at iteration     100 to /ckpt/llm in torch_dist format
  successfully saved checkpoint from iteration     100 to /ckpt/llm [ t 1/8, p 1/4 ]
[rank3]:[E1122 01:05:00.1 ProcessGroupNCCL.cpp:607] [Rank 3] Watchdog caught collective operation timeout
 loading distributed checkpoint from /ckpt/llm at iteration 100
 successfully loaded checkpoint from /ckpt/llm [ t 1/8, p 1/4 ] at iteration 100
   0:  [2026-11-22 01:12:00] iteration      110/  100000 | consumed samples: 3520 |
garbage line that matches nothing
"""


def test_megatron_log_events():
    r = jobs.parse_log(MEGATRON, "megatron")
    kinds = [(e.kind, e.step) for e in r.events]
    assert kinds == [("progress", 100), ("save_start", 100), ("save_end", 100), ("fatal", None), ("load", 100),
                     ("progress", 110)]
    assert r.events[0].ts is not None and r.events[0].total == 100000
    assert r.unmatched >= 1 and "nccl" in r.events[3].detail


def test_hf_tqdm_with_carriage_returns_and_custom_regex():
    text = " 37%|███▋      | 500/1350 [06:17<10:46,  1.31it/s]\r 37%|███▋      | 501/1350 [06:18<10:45,  1.31it/s]\n"
    assert [e.step for e in jobs.parse_log(text, "hf").events] == [500, 501]
    custom = jobs.parse_log("step 42 loss 1.0\n", None, r"step (?P<step>\d+)")
    assert custom.events[0].step == 42


LISTING = """\
1795300000.5 4096 iter_0000100
1795303600.5 4096 iter_0000200
1795307200.5 4096 iter_0000300
1795303601.0 4 latest_checkpointed_iteration.txt
MARKER latest_checkpointed_iteration.txt 200
"""


def test_checkpoint_listing_commits_by_tracker_and_trainer_state():
    listing = jobs.parse_listing(LISTING)
    assert [(c.step, c.complete) for c in listing.checkpoints] == [(100, True), (200, True), (300, False)]
    assert listing.latest_step == 200                      # iter_300 is newer than the tracker: in progress
    hf = jobs.parse_listing("1.0 4096 checkpoint-500\n2.0 10 checkpoint-500/trainer_state.json\n"
                            "3.0 4096 checkpoint-1000\n")
    assert [(c.step, c.complete) for c in hf.checkpoints] == [(500, True), (1000, False)]
    assert not jobs.parse_listing("MIXOPS-NO-DIR\n").readable
    assert "'/mnt/ckpt/a b'" in jobs.listing_command("/mnt/ckpt/a b")


def _simulated(days: float, seed: int, read_s: float = 60.0):
    """A demo job with frequent faults, read every `read_s` through the collector's job path."""
    import time
    from zoneinfo import ZoneInfo

    from console import demo, simjobs
    from console.service import Collector
    from console.store import Store

    site = demo.demo_site(64)
    (job,) = site.jobs
    end = time.time()
    start = end - days * 86400
    center = demo.DemoCenter(site, start=end, story=False, job_days=days)
    spec = simjobs.JobSpec(job.name, "megatron", job.nodes, {n: "nvidia" for n in job.nodes}, job.log,
                           job.checkpoint_dir, step_s=6.0, log_every=10, ckpt_every=300, save_s=50.0,
                           mtbf_s=6 * 3600.0, hang_share=0.3, seed=seed)
    sim = simjobs.SimJob(spec, start, ZoneInfo(site.timezone))
    center.jobs[job.name] = sim
    return site, center, sim, start, end, Collector, Store


@pytest.mark.parametrize("seed", [3, 5, 17])
def test_ground_truth_from_the_simulator(tmp_path, seed):
    """The simulator writes a Megatron log and checkpoint directory with known interruptions (crashes and
    hangs); read every 60 s through the collector, the model matches the truth: ETTR within 0.5 percentage
    points, time to resume and lost work within one read interval."""
    from console import jobview
    from console.demo import build_job_history

    site, center, sim, start, end, Collector, Store = _simulated(1.5, seed)
    store = Store(str(tmp_path / "gt.db"))
    collector = Collector(site, store, session_factory=lambda ep: None, incidents=False)
    import console.demo as demo_mod
    old = demo_mod.JOB_HISTORY_READ_S
    demo_mod.JOB_HISTORY_READ_S = 60.0
    try:
        build_job_history(collector, center, end)
    finally:
        demo_mod.JOB_HISTORY_READ_S = old
    (row,) = jobview.read_jobs(store.conn, end)
    collector.close()
    store.close()
    truth = [s for s in sim.truth if s.resumed_at <= end - 120]
    assert len(truth) >= 3 and any(s.fault.kind == "hang" for s in sim.truth)
    model = row.model
    done = [i for i in model.interruptions if i.resumed_at is not None]
    assert len(done) == len(truth)
    for true, seen in zip(truth, done, strict=True):
        assert abs(seen.time_to_resume_s - (true.resumed_at - true.at)) <= 60.0
        assert seen.resumed_from == true.load_step
        assert abs(seen.lost_s - true.redone_steps * 6.0) <= 60.0
        assert seen.time_to_detect_s <= 5 * 60.0 + 60.0 + 60.0       # k × cadence, then the next read
    first = start + 60.0                                               # the first progress line
    lost = sum((s.resumed_at - s.at) + s.redone_steps * 6.0 for s in truth)
    lost += sum(min(end, s.at + 1e9) - s.at for s in sim.truth if s.resumed_at > end)   # still down at the end
    true_ettr = 1.0 - lost / (end - first)
    assert abs(model.ettr - true_ettr) <= 0.005


def test_slurm_records_and_site_validation(tmp_path):
    from collectors import slurm
    from console.site import SiteError, load_site

    rec = slurm.parse("JobId=4242 JobName=llm JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=3 "
                      "BatchFlag=1\n")
    assert (rec.state, rec.requeues, rec.reason) == ("RUNNING", 3, None)
    assert slurm.parse("4242|CANCELLED by 0\n").state == "CANCELLED" and slurm.parse("") is None
    assert "'4242_7'" in slurm.command("4242_7") or "4242_7" in slurm.command("4242_7")
    site = tmp_path / "site.toml"
    site.write_text('[site]\nname = "x"\n[[nodes]]\nname = "n1"\n[[jobs]]\nname = "j"\nnodes = ["n1"]\n'
                    'slurm_job = "12; rm -rf /"\nprogress_regex = "step (\\\\d+)"\nframework = "caffe"\n')
    with pytest.raises(SiteError) as err:
        load_site(site)
    text = str(err.value)
    assert "slurm_job" in text and "(?P<step>" in text and "caffe" in text


def test_a_stopped_job_opens_a_p1_incident_that_resolves_when_it_resumes(tmp_path):
    from console.incidents import IncidentEngine
    from console.store import Store

    store = Store(str(tmp_path / "i.db"))
    engine = IncidentEngine(store.conn, clear_after=2)
    (opened,) = engine.process(T0, [], (), [("llm", "stalled", "no progress since step 500 (300 s)")])
    row = store.conn.execute("SELECT severity, code, job, state FROM incidents WHERE id = ?", (opened,)).fetchone()
    assert row == ("P1", "JOB-STALLED", "llm", "open")
    engine.process(T0 + 10, [], (), [])
    engine.process(T0 + 20, [], (), [])
    assert store.conn.execute("SELECT state FROM incidents WHERE id = ?", (opened,)).fetchone()[0] == "resolved"
    store.close()


def test_unreadable_log_or_checkpoint_dir_is_never_healthy(tmp_path):
    from console import jobview
    from console.service import Collector
    from console.site import Job, Node, Site, SSHDefaults
    from console.store import Store

    site = Site("<t>", "t", "UTC", 10.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"), (),
                (Node("n1", "127.0.0.1", None, None, None, "nvidia", None),),
                (Job("a", ("n1",), "/ckpt/a", "/logs/a", "megatron", None),
                 Job("b", ("n1",), None, "/logs/b", None, None)), ())
    store = Store(str(tmp_path / "u.db"))
    collector = Collector(site, store, session_factory=lambda ep: None, incidents=False)
    log = "MIXOPS-LOG 40 0\n [2026-11-22 01:00:00] iteration 10/ 100 |\n"
    collector.update_jobs(T0, {"job0.log": log, "job0.ckpt": "MIXOPS-NO-DIR\n",
                               "job1.log": "MIXOPS-LOG 30 0\nloss 1.0 at some point\nanother line\n"})
    rows = {r.name: r for r in jobview.read_jobs(store.conn, T0)}
    assert rows["a"].state == "cannot read" and "checkpoint dir" in rows["a"].problem
    assert rows["b"].state == "no progress pattern" and rows["b"].unmatched == 2
    collector.update_jobs(T0 + 10, {"job0.log": "MIXOPS-NO-LOG\n", "job1.log": "MIXOPS-LOG 30 30\n"})
    rows = {r.name: r for r in jobview.read_jobs(store.conn, T0 + 10)}
    assert rows["a"].state == "cannot read" and "cannot read log" in rows["a"].problem
    collector.close()
    store.close()


def test_a_stall_that_was_the_jobs_end_is_withdrawn_when_the_end_line_arrives(tmp_path):
    """The last step, a quiet final save and teardown longer than the stall rule, then the framework's
    end-of-training line: the job is finished, with no interruption stored and no stopped-job incident."""
    from datetime import UTC, datetime

    from console import jobview
    from console.service import Collector
    from console.site import Job, Node, Site, SSHDefaults
    from console.store import Store

    site = Site("<t>", "t", "UTC", 10.0, SSHDefaults(known_hosts="/dev/null", config_file="/dev/null"), (),
                (Node("n1", "127.0.0.1", None, None, None, "nvidia", None),),
                (Job("llm", ("n1",), None, "/logs/llm", "megatron", None),), ())
    store = Store(str(tmp_path / "f.db"))
    collector = Collector(site, store, session_factory=lambda ep: None, incidents=False)
    log = b""

    def read(now: float, *lines: str) -> list:
        nonlocal log
        start = len(log)
        log += "".join(line + "\n" for line in lines).encode()
        return collector.update_jobs(now, {"job0.log": f"MIXOPS-LOG {len(log)} {start}\n" + log[start:].decode()})

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")

    collector._tz = UTC
    for k in range(10):                                   # one step every 10 s up to the last one
        t = T0 + 10 * k
        assert read(t + 1, f" [{stamp(t)}] iteration {991 + k:8d}/    1000 | consumed samples: 1 |") == []
    stopped = read(T0 + 200)                              # 110 s of silence: more than 5 x 10 s
    assert [s[:2] for s in stopped] == [("llm", "stalled")]
    assert store.conn.execute("SELECT count(*) FROM job_interruptions").fetchone()[0] == 1
    assert read(T0 + 210, f"[after training is done] datetime: {stamp(T0 + 205)}") == []
    (row,) = jobview.read_jobs(store.conn, T0 + 3600)
    assert row.state == "finished" and row.model.interruptions == [] and row.model.ettr == 1.0
    assert [s.kind for s in row.model.segments] == ["running"]      # no stalled segment left on the timeline
    assert store.conn.execute("SELECT count(*) FROM job_interruptions").fetchone()[0] == 0
    collector.close()
    store.close()
