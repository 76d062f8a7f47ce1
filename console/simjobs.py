"""Simulated training jobs for the demo site: the log a launcher writes and the checkpoint directory.

A `SimJob` steps through time like a real job: iterations at a fixed step time, a progress line every
`log_every` iterations (Megatron-LM or DeepSpeed format, timestamps in the site's timezone), a blocking
checkpoint save every `ckpt_every` iterations, and interruptions drawn at a rate (mean time between
failures) from the faults a real room has — a GPU falling off the bus, an HBM ECC error, a node going
silent, a hung collective. Each fault says when its node answers again or its card is back, and the room
takes it from the job (`faults_due`), so the room shows it at the same time. After a crash, the log shows
what frameworks print (NCCL watchdog, the torchrun agent restarting the worker group, the checkpoint
load) and training resumes from the last committed checkpoint, redoing the steps since, but never before
the node or card is back in service. A hang prints nothing until an operator restarts the job.

A fault from outside the job's own plan (the demo's opening story) stops it too (`interrupt`): the
future generated after that moment is taken back and generated again with the crash in it. What has been
shown (log bytes, listings, utilization, faults handed to the room) is never rewritten.

The job keeps its ground truth (`truth`), so tests can hold mixops's model against it.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

# Faults that stop a job when they strike one of its nodes (the collective times out; the job restarts from
# its last checkpoint once the node or card is back), per vendor, weighted as often as the room sees them
# (console.demo.CARD_EVENTS). A hot card, a hung vendor tool or a contained / row-remap Xid (63, 94) do not.
STOPPING: dict[str, tuple[tuple[str, float], ...]] = {
    "nvidia": (("xid79", 2.0), ("xid48", 3.0)),
    "ascend": (("hbm", 6.0), ("alarm", 8.0)),
    "cambricon": (("ecc", 1.0),),
    "metax": (("unavailable", 1.0),),
}
# A "flap" (a RoCE port of one of the job's nodes going down and up) is not drawn here: the demo's story strikes
# one (console.demo.DemoCenter.seed_flap), and the job's ranks on that node time out in their collective.
STOPPING_KINDS = frozenset({"silent", "xid79", "xid48", "hbm", "alarm", "ecc", "unavailable", "flap"})
# How long the node stays silent or the card out (s): a reboot after Xid 79, a card reset after a DBE, …
OUT_S: dict[str, tuple[float, float]] = {
    "silent": (600.0, 1500.0), "xid79": (1200.0, 3600.0), "xid48": (300.0, 900.0), "hbm": (600.0, 1800.0),
    "alarm": (600.0, 1800.0), "ecc": (900.0, 2400.0), "unavailable": (600.0, 1800.0),
}
# From the node or card being back to the restart: health check, back in the pool, the scheduler requeues.
RETURN_S = (120.0, 300.0)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What brings the job down: a card or node fault, or a hang with no fault at all."""

    kind: str                       # xid79 | xid48 | hbm | alarm | unavailable | ecc | silent | flap | hang
    node: str | None
    card: int | None
    back_at: float | None = None    # the node answers again / the card or its port is back (None: a hang)


@dataclass(frozen=True, slots=True)
class TrueStop:
    """One interruption as it really happened."""

    at: float                       # the fault
    step_at: int                    # the step reached when it struck
    resumed_at: float               # first new progress line
    load_step: int                  # the checkpoint resumed from
    fault: FaultPlan
    ready_at: float = 0.0           # the node or card back in service: the restart could begin
    also: tuple[FaultPlan, ...] = ()    # faults that struck while the job was already down

    @property
    def by_room(self) -> bool:
        """True when a node or card fault (not only a hang) holds the job down."""
        return self.fault.back_at is not None or bool(self.also)

    @property
    def redone_steps(self) -> int:
        """Steps trained again after resuming."""
        return self.step_at - self.load_step


@dataclass(slots=True)
class JobSpec:
    """How a simulated job trains and fails."""

    name: str
    framework: str                  # megatron | deepspeed
    nodes: tuple[str, ...]
    vendors: dict[str, str]         # node → vendor (faults follow the vendor)
    log: str
    checkpoint_dir: str
    step_s: float = 6.0
    log_every: int = 10
    ckpt_every: int = 500
    save_s: float = 45.0
    mtbf_s: float = 3 * 86400.0
    hang_share: float = 0.2         # share of interruptions that are hangs (no fatal line)
    seed: int = 1
    keep: int = 5                   # checkpoints kept in the directory (older ones deleted, as jobs do)


@dataclass(slots=True)
class SimJob:
    """One simulated job, generated lazily as time moves on; thread-safe."""

    spec: JobSpec
    start: float
    tz: ZoneInfo
    truth: list[TrueStop] = field(default_factory=list)
    _log: bytearray = field(default_factory=bytearray)
    _line_t: list[float] = field(default_factory=list)
    _line_end: list[int] = field(default_factory=list)
    _ckpts: list[tuple[float, int]] = field(default_factory=list)       # (committed at, step)
    _phases: list[tuple[float, str]] = field(default_factory=list)      # (from, running|saving|down|loading)
    _phase_t: list[float] = field(default_factory=list)
    _points: list[tuple[float, int]] = field(default_factory=list)      # (time, step) at each line / run start
    _point_t: list[float] = field(default_factory=list)
    _faults: list[tuple[float, FaultPlan]] = field(default_factory=list)   # handed to the room, by time
    _t: float = 0.0
    _step: int = 0
    _next_fault: float = 0.0
    _served: float = -math.inf      # the latest time anything was shown: the past before it is fixed
    _interrupts: int = 0
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.spec.seed)
        self._t = self.start
        self._next_fault = self.start + self._rng.expovariate(1.0 / self.spec.mtbf_s)
        self._phase(self.start, "running")
        self._point(self.start, 0)
        self._write(self.start, self._launch_lines(0))

    # ---- what the node shows --------------------------------------------------------------------

    def log_output(self, offset: int, now: float, cap: int) -> str:
        """What `collectors.jobs.log_command` prints on the node at time `now`."""
        with self._lock:
            self._see(now)
            k = bisect.bisect_right(self._line_t, now)
            size = self._line_end[k - 1] if k else 0
            start = offset if offset <= size else 0
            body = bytes(self._log[start:min(size, start + cap)])
        return f"MIXOPS-LOG {size} {start}\n" + body.decode("utf-8", "replace")

    def listing_output(self, now: float) -> str:
        """What `collectors.jobs.listing_command` prints: the kept step dirs and the tracker file."""
        with self._lock:
            self._see(now)
            done = [c for c in self._ckpts if c[0] <= now][-self.spec.keep:]
        lines = []
        for ts, step in done:
            name = f"iter_{step:07d}" if self.spec.framework == "megatron" else f"global_step{step}"
            lines.append(f"{ts:.4f} 4096 {name}")
        if done:
            marker = "latest_checkpointed_iteration.txt" if self.spec.framework == "megatron" else "latest"
            value = str(done[-1][1]) if self.spec.framework == "megatron" else f"global_step{done[-1][1]}"
            lines.append(f"{done[-1][0]:.4f} {len(value)} {marker}")
            lines.append(f"MARKER {marker} {value}")
        return "\n".join(lines) + "\n"

    def load(self, t: float) -> float:
        """Utilization fraction of the job's cards at time t (the room's physics follow the job)."""
        with self._lock:
            self._see(t)
            k = bisect.bisect_right(self._phase_t, t) - 1
            phase = self._phases[k][1] if k >= 0 else "down"
        return {"running": 0.9, "saving": 0.25, "loading": 0.15}.get(phase, 0.0)

    def extend(self, until: float) -> None:
        """Generate the job's life up to `until` (nothing is shown: an interrupt may still change it)."""
        with self._lock:
            self._generate(until)

    def faults_due(self, node: str, after: float, until: float) -> list[tuple[float, FaultPlan]]:
        """The job's faults on `node` that strike in (after, until], for the room to show."""
        with self._lock:
            self._see(until)
            return [(t, f) for t, f in self._faults if after < t <= until and f.node == node]

    def stopped_by_room(self, t: float) -> bool:
        """True when, at t, the job is down because of a node or card fault (not only a hang)."""
        with self._lock:
            self._generate(t)
            k = bisect.bisect_right(self.truth, t, key=lambda s: s.at) - 1
            return k >= 0 and t < self.truth[k].resumed_at and self.truth[k].by_room

    def interrupt(self, at: float, fault: FaultPlan) -> float:
        """A fault from outside the job's plan stops the job at `at` (moved to the latest time already shown,
        when earlier): what was generated after it is taken back and generated again from a crash at that
        time. A fault while the job is already down holds it down until that node or card is back too. Returns
        the time used."""
        with self._lock:
            at = max(at, self._served, self.start)
            self._generate(at)
            ongoing = next((s for s in reversed(self.truth) if s.at <= at < s.resumed_at), None)
            if ongoing is not None and fault.back_at is None:
                return at                           # a hang while the job is down changes nothing
            self._truncate(at)
            step_at = ongoing.step_at if ongoing is not None else self._step_at(at)
            if ongoing is not None:
                self.truth.remove(ongoing)
            self._interrupts += 1
            # a stream of its own for the regenerated future, so the outcome does not depend on how far the
            # job had been generated ahead
            self._rng = random.Random(f"{self.spec.seed}/{self._interrupts}/{at:.3f}/{fault.kind}/{fault.node}/"
                                      f"{fault.card}")
            self._t = at
            self._crash(at, fault, step_at, ongoing)
            self._next_fault = self._t + self._rng.expovariate(1.0 / self.spec.mtbf_s)
        return at

    # ---- generation -----------------------------------------------------------------------------

    def _see(self, t: float) -> None:
        """Generate up to t and fix the past before it (it has been shown)."""
        self._generate(t)
        self._served = max(self._served, t)

    def _phase(self, t: float, kind: str) -> None:
        self._phases.append((t, kind))
        self._phase_t.append(t)

    def _point(self, t: float, step: int) -> None:
        self._points.append((t, step))
        self._point_t.append(t)

    def _step_at(self, t: float) -> int:
        """The step training had reached at t (running or saving)."""
        k = bisect.bisect_right(self._point_t, t) - 1
        t0, step = self._points[k]
        j = bisect.bisect_right(self._phase_t, t) - 1
        if self._phases[j][1] != "running":
            return step
        return step + min(int((t - t0) / self.spec.step_s), self.spec.log_every - 1)

    def _truncate(self, at: float) -> None:
        """Take back everything generated after `at`."""
        k = bisect.bisect_right(self._line_t, at)
        del self._line_t[k:]
        del self._line_end[k:]
        del self._log[(self._line_end[-1] if k else 0):]
        del self._ckpts[bisect.bisect_right(self._ckpts, at, key=lambda c: c[0]):]
        k = bisect.bisect_right(self._phase_t, at)
        del self._phases[k:]
        del self._phase_t[k:]
        k = bisect.bisect_right(self._point_t, at)
        del self._points[k:]
        del self._point_t[k:]
        del self._faults[bisect.bisect_right(self._faults, at, key=lambda f: f[0]):]
        self.truth[:] = [s for s in self.truth if s.at <= at]

    def _stamp(self, t: float) -> str:
        return datetime.fromtimestamp(t, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def _write(self, t: float, lines: list[str]) -> None:
        for line in lines:
            self._log += (line + "\n").encode()
            self._line_t.append(t)
            self._line_end.append(len(self._log))

    def _progress_line(self, t: float, step: int) -> str:
        s = self.spec
        ms = s.step_s * 1000.0 * (1.0 + self._rng.uniform(-0.01, 0.01))
        loss = 2.6 * (1.0 + step / 4000.0) ** -0.15
        if s.framework == "deepspeed":
            return (f"[{self._stamp(t)},{self._rng.randint(0, 999):03d}] [INFO] [logging.py:96:log_dist] [Rank 0] "
                    f"step={step}, skipped=0, lr=[0.00029999], mom=[(0.9, 0.95)]")
        return (f" [{self._stamp(t)}] iteration {step:>8d}/  500000 | consumed samples: {step * 1024:>12d} | "
                f"elapsed time per iteration (ms): {ms:.1f} | learning rate: 2.999E-04 | global batch size:  1024 | "
                f"lm loss: {loss:.6E} | loss scale: 1.0 | grad norm: 0.812 | number of skipped iterations:   0 |")

    def _launch_lines(self, load_step: int) -> list[str]:
        d = self.spec.checkpoint_dir
        if self.spec.framework == "deepspeed":
            if load_step:
                return [f"[{self._stamp(self._t)},000] [INFO] [torch_checkpoint_engine.py:27:load] [Torch] Loaded "
                        f"checkpoint from {d}/global_step{load_step}/mp_rank_00_model_states.pt."]
            return [f"[{self._stamp(self._t)},000] [INFO] Unable to find latest file at {d}/latest, if trying to "
                    "load latest checkpoint please ensure this file exists or pass an explicit checkpoint tag."]
        if load_step:
            return [f" loading distributed checkpoint from {d} at iteration {load_step}",
                    f"  successfully loaded checkpoint from {d} [ t 1/8, p 1/4 ] at iteration {load_step}"]
        return ["WARNING: could not find the metadata file latest_checkpointed_iteration.txt",
                "    will not load any checkpoints and will start from random"]

    def _save(self) -> None:
        s = self.spec
        t0, step, d = self._t, self._step, s.checkpoint_dir
        self._phase(t0, "saving")
        if s.framework == "deepspeed":
            self._write(t0, [f"[{self._stamp(t0)},000] [INFO] [torch_checkpoint_engine.py:21:save] [Torch] Checkpoint "
                             f"global_step{step} is about to be saved!"])
        else:
            self._write(t0, [f"saving checkpoint at iteration {step:>7d} to {d} in torch_dist format"])
        self._t = t1 = t0 + s.save_s * self._rng.uniform(0.9, 1.2)
        if s.framework == "deepspeed":
            self._write(t1, [f"[{self._stamp(t1)},000] [INFO] [torch_checkpoint_engine.py:33:commit] [Torch] "
                             f"Checkpoint global_step{step} is ready now!"])
        else:
            self._write(t1, [f"  successfully saved checkpoint from iteration {step:>7d} to {d} [ t 1/8, p 1/4 ]",
                             f"time (ms) | save-checkpoint: {1000.0 * (t1 - t0):.2f}"])
        self._ckpts.append((t1, step))
        self._phase(t1, "running")
        self._point(t1, step)

    def _plan(self, at: float) -> FaultPlan:
        s, rng = self.spec, self._rng
        if rng.random() < s.hang_share:
            return FaultPlan("hang", None, None)
        node = rng.choice(s.nodes)
        kinds = STOPPING.get(s.vendors.get(node, ""), (("silent", 1.0),))
        kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        if rng.random() < 0.2:
            kind = "silent"
        lo, hi = OUT_S[kind]
        return FaultPlan(kind, node, None if kind == "silent" else rng.randrange(8), at + rng.uniform(lo, hi))

    def _crash(self, at: float, fault: FaultPlan, step_at: int, since: TrueStop | None = None) -> None:
        """Fault at `at` (`since`: the stop already under way); the log tells of it; once the node or card is
        back in service, training resumes from the last committed checkpoint."""
        rng = self._rng
        ready = at if since is None else since.ready_at
        if fault.back_at is not None:
            self._faults.append((at, fault))
            ready = max(ready, fault.back_at + rng.uniform(*RETURN_S))
        self._phase(at, "down")
        if fault.kind == "hang":
            t = at + rng.uniform(1500, 2400)       # someone notices the hung job and restarts it
        else:
            t = at + rng.uniform(90, 240)          # the collective times out, the agent sees the failure
            rank = rng.randrange(1024)
            if fault.kind == "flap" and self.spec.vendors.get(fault.node or "") == "ascend":
                self._write(t, self._hccl_timeout(t, rank, fault))
            else:
                where = f"{fault.node} card {fault.card}" if fault.card is not None else f"{fault.node}"
                self._write(t, [f"[rank{rank}]:[E{self._stamp(t)[5:7]}{self._stamp(t)[8:10]} "
                                f"{self._stamp(t)[11:]}.000 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught "
                                f"collective operation timeout ({where})"])
            self._write(t, ["torch.distributed.elastic.multiprocessing.api: failed (exitcode: -6) local_rank: 0"])
            t += rng.uniform(20, 60)
            self._write(t, [f"[{self._stamp(t)}] torch.distributed.elastic.agent.server.api: [default] Worker group "
                            "FAILED. 2/3 attempts left; will restart worker group"])
        t = max(t, ready) + rng.uniform(60, 180)    # relaunch, rendezvous, build the model
        committed = [c for c in self._ckpts if c[0] <= at]
        load_step = committed[-1][1] if committed else 0
        self._phase(t, "loading")
        self._t = t
        self._write(t, self._launch_lines(load_step))
        t += rng.uniform(40, 120)                   # load the checkpoint shards
        self._phase(t, "running")
        self._point(t, load_step)
        self._t, self._step = t, load_step
        first = self._iterate()
        if since is None:
            self.truth.append(TrueStop(at, step_at, first, load_step, fault, ready))
        else:
            self.truth.append(TrueStop(since.at, since.step_at, first, load_step, since.fault, ready,
                                       (*since.also, fault)))

    def _hccl_timeout(self, t: float, rank: int, fault: FaultPlan) -> list[str]:
        """What the ranks on an Ascend node print when their HCCL collective times out because the NPU's RoCE
        port went away: torch_npu's failed HCCL call, then CANN's EI0002 (the Notify wait timed out), in the
        shape of the CANN error-code reference (collectors.trainlogs.faults labels it `hccl`)."""
        stamp = datetime.fromtimestamp(t, self.tz).strftime("%Y-%m-%d-%H:%M:%S")
        device = fault.card if fault.card is not None else 0
        peer = (rank + 8) % 1024
        return [f"[ERROR] {stamp}.000.000 (PID:{4000 + rank}, Device:{device}, RankID:{rank}) ERR02200 DIST call "
                f"hccl api failed.",
                f"EI0002: [PID: {4000 + rank}] {stamp}.000.000 The wait execution of the Notify register times out. "
                f"Reason: The Notify register has not received the Notify record from remote rank [{peer}]. "
                f"base information: [streamID:[2], taskID[41], taskType[Notify Wait], tag[HcomAllReduce_"
                f"{self.spec.name}_0]] ({fault.node} card {device})"]

    def _iterate(self) -> float:
        """One logging interval of training; returns the time of its progress line."""
        s = self.spec
        self._t += s.step_s * s.log_every
        self._step += s.log_every
        self._write(self._t, [self._progress_line(self._t, self._step)])
        self._point(self._t, self._step)
        if self._step % s.ckpt_every == 0:
            self._save()
        return self._t

    def _generate(self, until: float) -> None:
        while self._t < until:
            if self._next_fault <= self._t + self.spec.step_s * self.spec.log_every:
                at = max(self._next_fault, self._t)
                self._crash(at, self._plan(at), self._step + int((at - self._t) / self.spec.step_s))
                self._next_fault = self._t + self._rng.expovariate(1.0 / self.spec.mtbf_s)
                continue
            self._iterate()
