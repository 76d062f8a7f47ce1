"""The continuity model of a training job: segments, interruptions, ETTR, checkpoint health.

Input: the job's progress points (time, step), checkpoint saves and loads, restarts and fatal events
(collectors.jobs), and its committed checkpoints. A stall is declared when no progress arrives for
k × the median gap between progress reports (default k = 5, and at most 60 s beyond that gap), so a hung
collective is seen within a sweep or two instead of after the 30-minute communication timeout.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

GOAL_TTR_S = 600.0                  # a 1,000-card job resumes in under 10 minutes
GOAL_UNINTERRUPTED_S = 15 * 86400.0  # and runs 15 days without interruption
GOAL_ETTR = 0.90                    # Llama 3 on 16,384 GPUs; 0.97 at the best
SAVE_TOO_LONG_S = 900.0


@dataclass(frozen=True, slots=True)
class Interruption:
    """One stop of progress and what it cost."""

    stopped_at: float               # last progress before the stop
    detected_at: float              # when the stall rule fires
    resumed_at: float | None        # first progress after it (None: still down)
    last_step: int
    resumed_from: int | None        # the step training restarted from (checkpoint load), when known
    lost_steps: int | None
    lost_s: float | None            # wall time of the redone steps
    cause: str | None = None

    @property
    def time_to_detect_s(self) -> float:
        """Stop → detection."""
        return self.detected_at - self.stopped_at

    @property
    def time_to_resume_s(self) -> float | None:
        """Stop → first new progress."""
        return None if self.resumed_at is None else self.resumed_at - self.stopped_at


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the job's timeline."""

    kind: str                       # running | checkpointing | stalled | down | resuming
    start: float
    end: float


@dataclass(slots=True)
class JobModel:
    """Everything the panel, the timeline and the report show for one job."""

    name: str
    state: str                      # running | stalled | down | no data
    last_step: int | None = None
    last_progress_at: float | None = None
    step_time_s: float | None = None
    threshold_s: float | None = None
    interruptions: list[Interruption] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    ettr: float | None = None
    ettr_24h: float | None = None
    longest_run_s: float | None = None
    checkpoint_step: int | None = None
    checkpoint_age_s: float | None = None
    checkpoint_interval_s: float | None = None
    save_duration_s: float | None = None
    gpu_hours_at_risk: float | None = None
    optimal_interval_s: float | None = None
    flags: list[str] = field(default_factory=list)


def _ettr(start: float, end: float, interruptions: list[Interruption], now: float) -> float | None:
    wall = end - start
    if wall <= 0:
        return None
    lost = 0.0
    for i in interruptions:
        stop_end = i.resumed_at if i.resumed_at is not None else now
        a, b = max(start, i.stopped_at), min(end, stop_end)
        if b > a:
            lost += b - a
        if i.lost_s and start <= (i.resumed_at or now) <= end:
            lost += i.lost_s
    return max(0.0, min(1.0, (wall - lost) / wall))


def build(name: str, progress: list[tuple[float, int]], now: float, *, loads: list[tuple[float, int]] | None = None,
          restarts: list[tuple[float, str]] | None = None, saves: list[tuple[float, float, int]] | None = None,
          checkpoints: list[tuple[float, int]] | None = None, cards: int = 0, k: float = 5.0) -> JobModel:
    """The model of one job from its events (times in unix seconds)."""
    points = sorted(progress)
    if len(points) < 2:
        model = JobModel(name, "no data" if not points else "running")
        if points:
            model.last_progress_at, model.last_step = points[-1]
        return model
    loads = sorted(loads or [])
    restarts = sorted(restarts or [])
    gaps = [b[0] - a[0] for a, b in zip(points, points[1:], strict=False) if b[1] > a[1] and b[0] > a[0]]
    steps = [b[1] - a[1] for a, b in zip(points, points[1:], strict=False) if b[1] > a[1] and b[0] > a[0]]
    gap = statistics.median(gaps) if gaps else 60.0
    per_report = statistics.median(steps) if steps else 1.0
    step_time = gap / max(1.0, per_report)
    threshold = max(2 * gap, min(k * gap, gap + 60.0))
    model = JobModel(name, "running", points[-1][1], points[-1][0], step_time, threshold)
    run_start = points[0][0]
    longest = 0.0
    for (t0, s0), (t1, s1) in zip(points, points[1:], strict=False):
        if t1 - t0 <= threshold and s1 > s0:
            continue
        resumed_from = next((s for ts, s in loads if t0 < ts <= t1), None)
        if resumed_from is None and s1 <= s0:
            # restarted from an earlier step without a load line: it was about one report interval before s1
            resumed_from = max(0, s1 - round(per_report))
        if resumed_from is not None:
            lost: int | None = max(0, s0 - resumed_from)
        else:
            lost = 0                # progress simply paused (a hang that recovered): nothing to redo
        cause = next((what for ts, what in restarts if t0 < ts <= t1), None)
        model.interruptions.append(Interruption(t0, t0 + threshold, t1, s0, resumed_from, lost,
                                                None if lost is None else lost * step_time, cause))
        longest = max(longest, t0 - run_start)
        run_start = t1
    last_t, last_s = points[-1]
    if now - last_t > threshold:
        model.interruptions.append(Interruption(last_t, last_t + threshold, None, last_s, None, None, None,
                                                next((w for ts, w in restarts if ts > last_t), None)))
        model.state = "down" if any(ts > last_t for ts, _ in restarts) else "stalled"
        longest = max(longest, last_t - run_start)
    else:
        longest = max(longest, now - run_start)
    model.longest_run_s = longest
    model.ettr = _ettr(points[0][0], now, model.interruptions, now)
    model.ettr_24h = _ettr(max(points[0][0], now - 86400), now, model.interruptions, now)
    # segments: running between interruptions, checkpointing inside saves, stalled/down/resuming in the stops
    cursor = points[0][0]
    for i in model.interruptions:
        model.segments.append(Segment("running", cursor, i.stopped_at))
        end = i.resumed_at if i.resumed_at is not None else now
        model.segments.append(Segment("stalled" if i.cause is None else "down", i.stopped_at,
                                      min(end, max(i.detected_at, i.stopped_at))))
        load_at = next((ts for ts, _ in loads if i.stopped_at < ts <= end), None)
        if i.detected_at < end:
            model.segments.append(Segment("down" if i.cause else "stalled", i.detected_at, load_at or end))
        if load_at is not None and load_at < end:
            model.segments.append(Segment("resuming", load_at, end))
        cursor = end
    if cursor < now and model.state == "running":
        model.segments.append(Segment("running", cursor, now))
    for start, end, _step in saves or []:
        model.segments.append(Segment("checkpointing", start, end))
    model.segments.sort(key=lambda s: (s.start, s.kind))
    # checkpoints
    ckpts = sorted(checkpoints or [])
    if ckpts:
        model.checkpoint_step = ckpts[-1][1]
        model.checkpoint_age_s = max(0.0, now - ckpts[-1][0])
        if len(ckpts) >= 2:
            model.checkpoint_interval_s = statistics.median(b[0] - a[0] for a, b in zip(ckpts, ckpts[1:],
                                                                                         strict=False))
        model.gpu_hours_at_risk = cards * model.checkpoint_age_s / 3600.0
    durations = [e - s for s, e, _ in saves or [] if e >= s]
    if durations:
        model.save_duration_s = statistics.median(durations)
        if max(durations) > SAVE_TOO_LONG_S:
            model.flags.append("a checkpoint save took longer than 15 minutes")
    wall = now - points[0][0]
    mttf = wall / max(1, len(model.interruptions)) if wall > 0 else None
    if mttf and model.save_duration_s:
        model.optimal_interval_s = math.sqrt(2.0 * mttf * model.save_duration_s)      # Young/Daly
        if model.checkpoint_age_s is not None and model.checkpoint_age_s > model.optimal_interval_s:
            model.flags.append("checkpoint older than the Young/Daly optimum")
    return model


def goals(model: JobModel) -> dict[str, bool | None]:
    """The job against the field's bar: TTR ≤ 10 min, ≥ 15 days uninterrupted, ETTR ≥ 90 %."""
    ttrs = [i.time_to_resume_s for i in model.interruptions if i.time_to_resume_s is not None]
    return {
        "ttr_le_10_min": None if not ttrs else max(ttrs) <= GOAL_TTR_S,
        "15_days_uninterrupted": None if model.longest_run_s is None else model.longest_run_s >= GOAL_UNINTERRUPTED_S,
        "ettr_ge_90": None if model.ettr is None else model.ettr >= GOAL_ETTR,
    }
