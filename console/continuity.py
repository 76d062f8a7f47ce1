"""The continuity model of a training job: segments, interruptions, ETTR, checkpoint health.

Two halves, both pure:

- `Tracker` is advanced once per read of the job's log (every sweep) with the events of the new lines
  (collectors.jobs) and the read time. It keeps a small state (stored as JSON in `jobs.track`) and emits
  closed segments and new or changed interruptions, which the store appends to `job_segments` and
  `job_interruptions`. A stall is declared when no progress arrives for k × the median gap between the
  job's progress reports (default k = 5), checked at every read, so a hung collective is seen within a
  sweep of that moment instead of after the 30-minute communication timeout. A fatal line (NCCL/HCCL
  timeout, CUDA/NPU error, OOM, Xid), an agent restart or a checkpoint load ends the run at once.
- `summarize` turns what is stored (segments, interruptions, checkpoints) into the figures the panel,
  the timeline and the report show, so all three read the same truth and never re-read raw progress.

ETTR counts what failures cost: the time from the last progress before a stop to the first progress
after it, plus the wall time of the steps redone after resuming from an older checkpoint. Checkpoint
saves count as training time; their duration is shown on its own.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields

GOAL_TTR_S = 600.0                  # a 1,000-card job resumes in under 10 minutes
GOAL_UNINTERRUPTED_S = 15 * 86400.0  # and runs 15 days without interruption
GOAL_ETTR = 0.90                    # Llama 3 on 16,384 GPUs; 0.97 at the best
SAVE_TOO_LONG_S = 900.0
K_DEFAULT = 5.0
DEFAULT_GAP_S = 60.0                # until two progress reports give the job's own cadence
KEEP_GAPS = 31

Event = tuple[float, str, int | None, str]          # (ts, kind, step, detail) as collectors.jobs gives them


@dataclass(frozen=True, slots=True)
class Interruption:
    """One stop of progress and what it cost."""

    stopped_at: float               # last progress before the stop
    detected_at: float              # when mixops knew (the read that saw it; for a stop seen only after
                                    # the fact, the moment the stall rule or the first evidence would have)
    resumed_at: float | None        # first progress after it (None: still stopped)
    last_step: int
    resumed_from: int | None        # the step training restarted from (checkpoint load), when known
    lost_steps: int | None
    lost_s: float | None            # wall time of the redone steps
    cause: str | None = None
    incident_id: int | None = None

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
    """A stretch of the job's timeline; `end` None while it is still going on."""

    kind: str                       # running | checkpointing | stalled | down | resuming
    start: float
    end: float | None


# ---- the tracker ----------------------------------------------------------------------------------

@dataclass(slots=True)
class _Stop:
    stopped_at: float
    last_step: int
    detected_at: float | None = None
    evidence_at: float | None = None
    cause: str | None = None
    load_at: float | None = None
    load_step: int | None = None


@dataclass(slots=True)
class Changes:
    """What one read changed: closed segments to append, interruptions to insert or replace."""

    segments: list[Segment] = field(default_factory=list)
    interruptions: list[Interruption] = field(default_factory=list)
    withdrawn: list[float] = field(default_factory=list)   # stopped_at of stalls that were the job's normal end


@dataclass(slots=True)
class Tracker:
    """A job's continuity state between reads. `phase` is no data | running | stalled | down | resuming |
    finished (the log said training ended normally: no stall is looked for until progress starts again)."""

    phase: str = "no data"
    since: float | None = None          # start of the open phase segment
    first_at: float | None = None
    last_at: float | None = None
    last_step: int | None = None
    gaps: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    save_at: float | None = None        # a save started and not finished
    saved: list[float] | None = None    # a save finished (start, end), its segment not yet written
    saved_s: float = 0.0                # a save finished since the last progress took this long
    stop: _Stop | None = None
    k: float = K_DEFAULT
    total: int | None = None            # the training progress bar's total (an evaluation bar has another)

    # ---- persistence

    def to_json(self) -> str:
        """The state as stored in `jobs.track`."""
        data = {f: getattr(self, f) for f in _TRACK_FIELDS}
        data["stop"] = None if self.stop is None else {f: getattr(self.stop, f) for f in _STOP_FIELDS}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Tracker:
        """A tracker from `jobs.track` (a fresh one for NULL or unreadable text)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            stop = data.pop("stop", None)
            tracker = cls(**data)
            tracker.stop = _Stop(**stop) if stop else None
            return tracker
        except (ValueError, TypeError):
            return cls()

    # ---- figures

    @property
    def gap_s(self) -> float:
        """Median time between progress reports."""
        return statistics.median(self.gaps) if self.gaps else DEFAULT_GAP_S

    @property
    def step_time_s(self) -> float | None:
        """Median wall time of one step."""
        if not self.gaps:
            return None
        return self.gap_s / max(1.0, float(statistics.median(self.steps)) if self.steps else 1.0)

    @property
    def threshold_s(self) -> float:
        """No progress for this long is a stall."""
        return self.k * self.gap_s

    def open_segments(self) -> list[Segment]:
        """The segments still going on (end None)."""
        out = []
        if self.phase not in ("no data", "finished") and self.since is not None:
            out.append(Segment(self.phase, self.since, None))
        if self.save_at is not None and self.phase == "running":
            out.append(Segment("checkpointing", self.save_at, None))
        return out

    # ---- one read

    def advance(self, events: Iterable[Event], now: float) -> Changes:
        """Apply the events of one read (any order) and the stall rule at the read time `now`."""
        ch = Changes()
        for ts, kind, step, detail in events:         # in log order
            if kind != "save_time" and self.saved is not None:
                self._close_save(ch)
            if kind == "progress" and step is not None:
                if self._training_bar(step, detail):
                    self._progress(ts, step, ch)
            elif kind == "finished":
                self._finished(ts, ch)
            elif kind == "load" and step is not None:
                self._load(ts, step, ch)
            elif kind in ("fatal", "restart"):
                self._failure(ts, detail, ch)
            elif kind == "save_start" and self.phase == "running":
                self.save_at = ts
            elif kind == "save_end" and self.save_at is not None:
                self.saved, self.save_at = [self.save_at, max(ts, self.save_at)], None
                self.saved_s = self.saved[1] - self.saved[0]
            elif kind == "save_time" and self.saved is not None:
                try:                                # Megatron's "save-checkpoint: <ms>" timing line
                    self.saved[0] = self.saved[1] - max(0.0, float(detail))
                    self.saved_s = self.saved[1] - self.saved[0]
                except ValueError:
                    pass
                self._close_save(ch)
        self._close_save(ch)            # the timing line follows the save's last line in the same read
        self._stall_rule(now, ch)
        if self.stop is not None:
            if self.stop.detected_at is None:
                self.stop.detected_at = max(now, self.stop.stopped_at)
            ch.interruptions.append(self._interruption(None, None))
        return ch

    def _training_bar(self, step: int, detail: str) -> bool:
        """False for a progress line of another bar than training's (an evaluation bar `50/50` in an HF
        log): one with another total whose step is not past the last training step. A larger step with a new
        total is training extended (a raised max_steps): the new total is kept."""
        total = int(detail) if detail.isdigit() else None
        if total is None or self.total is None or total == self.total:
            self.total = self.total if total is None else total
            return True
        if self.last_step is not None and step <= self.last_step:
            return False
        self.total = total
        return True

    def _finished(self, t: float, ch: Changes) -> None:
        stop = self.stop
        if (self.phase == "stalled" and stop is not None and stop.cause is None and stop.evidence_at is None
                and stop.load_at is None and t >= stop.stopped_at):
            # The silence after the last step was the job winding down (final save, teardown), not a stall:
            # the stall already stored is withdrawn and the job is finished from its last step.
            ch.withdrawn.append(stop.stopped_at)
            self.stop, self.phase, self.since = None, "finished", t
            return
        if self.phase != "running" or stop is not None or self.since is None:
            return
        if self.save_at is not None:
            ch.segments.append(Segment("checkpointing", self.save_at, max(t, self.save_at)))
            self.save_at = None
        self._switch("finished", max(t, self.since), ch)

    def _close_save(self, ch: Changes) -> None:
        if self.saved is not None:
            ch.segments.append(Segment("checkpointing", self.saved[0], self.saved[1]))
            self.saved = None

    def _switch(self, phase: str, at: float, ch: Changes) -> None:
        if self.since is not None and self.phase not in ("no data", "finished"):
            ch.segments.append(Segment(self.phase, self.since, max(at, self.since)))
        self.phase, self.since = phase, at

    def _open_stop(self, kind: str, evidence_at: float | None, cause: str | None, ch: Changes) -> _Stop:
        assert self.last_at is not None and self.last_step is not None
        if self.save_at is not None:
            ch.segments.append(Segment("checkpointing", self.save_at, max(self.last_at, self.save_at)))
            self.save_at = None
        self.stop = _Stop(self.last_at, self.last_step, evidence_at=evidence_at, cause=cause)
        self._switch(kind, self.last_at, ch)
        return self.stop

    def _progress(self, t: float, s: int, ch: Changes) -> None:
        if self.last_at is None or self.last_step is None or self.phase == "no data":
            self.phase, self.since, self.first_at, self.last_at, self.last_step = "running", t, t, t, s
            return
        if self.phase == "finished":                # a new run of the job after a normal end
            self.phase, self.since, self.last_at, self.last_step = "running", t, t, s
            return
        if self.stop is not None:
            self._resume(t, s, ch)
            return
        limit = self.threshold_s + self.saved_s     # steps pause while a checkpoint is saved
        if t < self.last_at or (s == self.last_step and t - self.last_at <= limit):
            return                                  # a repeated or older line
        if s < self.last_step or t - self.last_at > limit:
            # stopped and restarted between two reads: seen only after the fact
            stop = self._open_stop("down" if s < self.last_step else "stalled", None, None, ch)
            stop.detected_at = min(stop.stopped_at + self.threshold_s, t)
            self._resume(t, s, ch)
            return
        if not self.saved_s:
            self.gaps = (self.gaps + [t - self.last_at])[-KEEP_GAPS:]
            self.steps = (self.steps + [s - self.last_step])[-KEEP_GAPS:]
        self.last_at, self.last_step, self.saved_s = t, s, 0.0

    def _load(self, t: float, step: int, ch: Changes) -> None:
        if self.phase in ("no data", "finished"):
            return                                  # the job's first start, from an older run's checkpoint
        stop = self.stop if self.stop is not None else self._open_stop("down", t, None, ch)
        stop.load_at, stop.load_step = t, step
        stop.evidence_at = stop.evidence_at if stop.evidence_at is not None else t
        self._switch("resuming", max(t, stop.stopped_at), ch)

    def _failure(self, t: float, detail: str, ch: Changes) -> None:
        if self.phase in ("no data", "finished") or self.last_at is None or t < self.last_at:
            return
        if self.stop is None:
            self._open_stop("down", t, detail, ch)
            return
        if self.stop.cause is None:
            self.stop.cause = detail
        if self.stop.evidence_at is None:
            self.stop.evidence_at = t
        if self.phase == "stalled":
            self._switch("down", max(t, self.since or t), ch)

    def _stall_rule(self, now: float, ch: Changes) -> None:
        if self.phase != "running" or self.last_at is None or self.stop is not None:
            return
        if self.save_at is not None and now - self.save_at <= SAVE_TOO_LONG_S:
            return                                  # a save in progress pauses steps; too long a save is flagged
        if now - self.last_at > self.threshold_s + self.saved_s:
            self._open_stop("stalled", None, None, ch)

    def _resume(self, t: float, s: int, ch: Changes) -> None:
        stop = self.stop
        assert stop is not None
        if stop.load_step is not None:
            resumed_from: int | None = stop.load_step
        elif s <= stop.last_step:
            resumed_from = max(0, s - round(statistics.median(self.steps) if self.steps else 1))
        else:
            resumed_from = None                     # progress simply went on after a hang: nothing redone
        lost = max(0, stop.last_step - resumed_from) if resumed_from is not None else 0
        if stop.detected_at is None:                # stopped and resumed inside one read
            rule = stop.stopped_at + self.threshold_s
            stop.detected_at = min(rule, stop.evidence_at) if stop.evidence_at is not None else min(rule, t)
        step_time = self.step_time_s
        ch.interruptions.append(self._interruption(t, (resumed_from, lost,
                                                       None if step_time is None else lost * step_time)))
        self._switch("running", t, ch)
        self.stop = None
        self.last_at, self.last_step, self.saved_s = t, s, 0.0

    def _interruption(self, resumed_at: float | None,
                      work: tuple[int | None, int, float | None] | None) -> Interruption:
        stop = self.stop
        assert stop is not None and stop.detected_at is not None
        resumed_from, lost, lost_s = work if work is not None else (stop.load_step, None, None)
        return Interruption(stop.stopped_at, stop.detected_at, resumed_at, stop.last_step,
                            resumed_from, lost, lost_s, stop.cause)


_TRACK_FIELDS = tuple(f.name for f in fields(Tracker) if f.name != "stop")
_STOP_FIELDS = tuple(f.name for f in fields(_Stop))


# ---- figures from what is stored ------------------------------------------------------------------

@dataclass(slots=True)
class JobModel:
    """Everything the panel, the timeline and the report show for one job."""

    name: str
    state: str                      # running | stalled | down | resuming | no data | cannot read | …
    last_step: int | None = None
    last_progress_at: float | None = None
    step_time_s: float | None = None
    threshold_s: float | None = None
    interruptions: list[Interruption] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    ettr: float | None = None
    ettr_24h: float | None = None
    longest_run_s: float | None = None
    current_run_s: float | None = None
    checkpoint_step: int | None = None
    checkpoint_at: float | None = None
    checkpoint_age_s: float | None = None
    checkpoint_interval_s: float | None = None
    save_duration_s: float | None = None
    gpu_hours_at_risk: float | None = None
    optimal_interval_s: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def last_ttr_s(self) -> float | None:
        """Time to resume of the latest interruption that resumed."""
        ttrs = [i.time_to_resume_s for i in self.interruptions if i.time_to_resume_s is not None]
        return ttrs[-1] if ttrs else None


def _lost(start: float, end: float, interruptions: Sequence[Interruption], now: float) -> float:
    lost = 0.0
    for i in interruptions:
        stop_end = i.resumed_at if i.resumed_at is not None else now
        a, b = max(start, i.stopped_at), min(end, stop_end)
        if b > a:
            lost += b - a
        if i.lost_s and i.resumed_at is not None and start <= i.resumed_at <= end:
            lost += min(i.lost_s, end - i.resumed_at)
    return lost


def ettr(start: float, end: float, interruptions: Sequence[Interruption], now: float) -> float | None:
    """Effective training time ratio over [start, end]: 1 − (downtime + redone work) / wall time."""
    wall = end - start
    if wall <= 0:
        return None
    return max(0.0, min(1.0, (wall - _lost(start, end, interruptions, now)) / wall))


def summarize(name: str, now: float, *, state: str | None = None, first_at: float | None = None,
              last: tuple[float, int] | None = None, step_time_s: float | None = None,
              threshold_s: float | None = None, segments: Sequence[Segment] = (),
              interruptions: Sequence[Interruption] = (), checkpoints: Sequence[tuple[float, int]] = (),
              cards: int = 0) -> JobModel:
    """The job's figures from its stored segments, interruptions and checkpoints (times in unix s); what
    is stored after `now` (a report on an earlier shift) is left out."""
    if first_at is not None and first_at > now:
        first_at, last, state = None, None, "no data"
    stops = sorted((i for i in interruptions if i.stopped_at <= now), key=lambda i: i.stopped_at)
    segments = [s for s in segments if s.start <= now]
    checkpoints = [c for c in checkpoints if c[0] <= now]
    model = JobModel(name, state or ("no data" if first_at is None else "running"),
                     None if last is None else last[1], None if last is None else last[0], step_time_s,
                     threshold_s, list(stops), sorted(segments, key=lambda s: (s.start, s.kind)))
    finished = model.state == "finished"
    # a finished job's figures end where its training did; its checkpoints put nothing at risk any more
    end = min(now, last[0]) if finished and last is not None else now
    if first_at is not None:
        model.ettr = ettr(first_at, end, stops, end)
        model.ettr_24h = ettr(max(first_at, end - 86400.0), end, stops, end)
        runs, run_start = [], first_at
        for i in stops:
            runs.append(i.stopped_at - run_start)
            run_start = i.resumed_at if i.resumed_at is not None else math.inf
        if run_start < end:
            runs.append(end - run_start)
            if not finished:
                model.current_run_s = end - run_start
        model.longest_run_s = max(runs, default=0.0)
    ckpts = sorted(checkpoints)
    if ckpts:
        model.checkpoint_at, model.checkpoint_step = ckpts[-1]
        model.checkpoint_age_s = max(0.0, now - ckpts[-1][0])
        if len(ckpts) >= 2:
            model.checkpoint_interval_s = statistics.median(b[0] - a[0] for a, b in zip(ckpts, ckpts[1:],
                                                                                         strict=False))
        if finished:
            model.gpu_hours_at_risk = 0.0
        elif cards:                     # cards not known yet (no sweep of the job's nodes): unknown, not 0
            model.gpu_hours_at_risk = cards * model.checkpoint_age_s / 3600.0
    durations = [s.end - s.start for s in segments if s.kind == "checkpointing" and s.end is not None]
    if durations:
        model.save_duration_s = statistics.median(durations)
        if max(durations) > SAVE_TOO_LONG_S:
            model.flags.append("a checkpoint save took longer than 15 minutes")
    if first_at is not None and stops and model.save_duration_s and now > first_at and not finished:
        mttf = (now - first_at) / len(stops)
        model.optimal_interval_s = math.sqrt(2.0 * mttf * model.save_duration_s)      # Young/Daly
        if model.checkpoint_age_s is not None and model.checkpoint_age_s > model.optimal_interval_s:
            model.flags.append("checkpoint older than the Young/Daly optimum")
    return model


def replay(name: str, events: Sequence[Event], reads: Sequence[float], *, k: float = K_DEFAULT,
           checkpoints: Sequence[tuple[float, int]] = (), cards: int = 0) -> JobModel:
    """The model as the collector would build it reading the log at the times `reads` (tests, `parse`)."""
    tracker = Tracker(k=k)
    ordered = sorted(events, key=lambda e: e[0])
    segments: list[Segment] = []
    stops: dict[float, Interruption] = {}
    i = 0
    for now in sorted(reads):
        j = i
        while j < len(ordered) and ordered[j][0] <= now:
            j += 1
        ch = tracker.advance(ordered[i:j], now)
        i = j
        segments += ch.segments
        stops.update((x.stopped_at, x) for x in ch.interruptions)
        for at in ch.withdrawn:
            stops.pop(at, None)
    now = max(reads) if reads else 0.0
    last = None if tracker.last_at is None or tracker.last_step is None else (tracker.last_at, tracker.last_step)
    return summarize(name, now, state=tracker.phase, first_at=tracker.first_at, last=last,
                     step_time_s=tracker.step_time_s, threshold_s=tracker.threshold_s,
                     segments=segments + tracker.open_segments(), interruptions=list(stops.values()),
                     checkpoints=checkpoints, cards=cards)


def goals(model: JobModel) -> dict[str, bool | None]:
    """The job against the field's bar: TTR ≤ 10 min, ≥ 15 days uninterrupted, ETTR ≥ 90 %."""
    ttrs = [i.time_to_resume_s for i in model.interruptions if i.time_to_resume_s is not None]
    return {
        "ttr_le_10_min": None if not ttrs else max(ttrs) <= GOAL_TTR_S,
        "15_days_uninterrupted": None if model.longest_run_s is None else model.longest_run_s >= GOAL_UNINTERRUPTED_S,
        "ettr_ge_90": None if model.ettr is None else model.ettr >= GOAL_ETTR,
    }


# ---- a link as an interruption's cause (issue 19) ----------------------------------------------------

# Fatal log lines of a collective that timed out or failed (collectors.trainlogs.faults labels them): what a
# job prints when a link between its ranks breaks.
COLLECTIVE_LABELS = ("nccl:", "hccl:", "cncl:")
LINK_LOOKBACK_S = 600.0         # a link that failed this long before the last progress can still be the cause


def collective_failure(cause: str | None) -> bool:
    """True for a stop whose log shows a collective timeout or failure (NCCL, HCCL, CNCL)."""
    return cause is not None and cause.lower().startswith(COLLECTIVE_LABELS)


def link_cause(code: str, node: str, card: int | None, kind: str, link: str, ts: float) -> str:
    """The cause text of an interruption explained by a link (node, card, kind, link)."""
    where = f"{node}" + ("" if card is None else f" card {card}") + f" {kind} {link}"
    at = time.strftime("%H:%M:%S", time.gmtime(ts))
    return f"{code} on {where} at {at} UTC, then the collective timed out"
