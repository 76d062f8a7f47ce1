"""Training jobs without a plugin: events from framework logs and checkpoint-directory listings.

Pure parsers (text → events). Log lines are first stripped of launcher prefixes (`srun -l`,
`[default7]:`, `[rank5]:`, pdsh `worker-1:`, Ray `(name, pid=N)`), split on the carriage returns of
progress bars, then matched by the rules of `collectors.trainlogs` — one module per framework (Megatron-LM,
MindSpeed / MindFormers, DeepSpeed, NeMo, Hugging Face Trainer / accelerate, torchrun / torch elastic) —
after the site's `progress_regex`. The named framework's rules go first, then the others' (a
Megatron-DeepSpeed job prints both kinds), then the fatal signatures every framework shares.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, tzinfo

from collectors.trainlogs import FAULTS, MODULES
from collectors.trainlogs.rules import JobEvent, Layout, Rule

__all__ = ["FRAMEWORKS", "Checkpoint", "JobEvent", "Listing", "LogChunk", "LogResult", "listing_command",
           "log_command", "parse_listing", "parse_log", "parse_log_chunk", "with_times"]

_BY_ALIAS = {alias: m for m in MODULES for alias in m.ALIASES}
FRAMEWORKS = tuple(_BY_ALIAS)

_PREFIX = re.compile(r"^(?:\d{2}:\d{2}:\d{2}\.\d{3}\s)?(?:\s*\d+:\s+|\[default\d+\]:\s?|\[rank\d+\]:\s?"
                     r"|\([\w-]+, pid=\d+\)\s|worker-\d+:\s)*")
# A progress bar's last state and the next message can share a line: "…2.88s/it][rank5]:[E602 …"
_GLUED = re.compile(r"(?<=.)(?=\[rank\d+\]:|\[(?:INFO|WARNING|ERROR)\|)")
_TS = re.compile(r"(\d{4}-\d{2}-\d{2})[ T_-](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?")


@functools.cache
def _rules(framework: str | None) -> tuple[Rule, ...]:
    """The rules in the order they are tried for a job of this framework (each rule once)."""
    first = _BY_ALIAS.get(framework or "")
    modules = ([first] if first else []) + [m for m in MODULES if m is not first]
    seen: set[int] = set()
    out: list[Rule] = []
    for r in [r for m in modules for r in m.RULES] + list(FAULTS):
        if id(r) not in seen:
            seen.add(id(r))
            out.append(r)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class LogResult:
    """Events of a chunk of log plus the lines nothing matched (counted, not kept)."""

    events: tuple[JobEvent, ...]
    lines: int
    unmatched: int


def _timestamp(line: str, tz: tzinfo | None = None) -> float | None:
    m = _TS.search(line[:64])
    if m is None:
        return None
    try:
        base = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
    except ValueError:
        return None
    if tz is not None:
        base = base.replace(tzinfo=tz)
    return base.timestamp() + (float("0." + m.group(3)) if m.group(3) else 0.0)


def parse_log(text: str, framework: str | None = None, progress_regex: str | None = None,
              tz: tzinfo | None = None) -> LogResult:
    """Events of a log chunk in order. `progress_regex` must have a `step` group (site file). Timestamps
    in lines carry no zone; they are read in `tz` (the site's timezone), else in the local one."""
    custom = re.compile(progress_regex) if progress_regex else None
    rules = _rules(framework)
    events: list[JobEvent] = []
    lines = unmatched = 0
    for raw in text.splitlines():
        for piece in (p for chunk in raw.split("\r") for p in _GLUED.split(chunk)):
            line = _PREFIX.sub("", piece, count=1).strip()
            if not line:
                continue
            lines += 1
            event = _match(line, _timestamp(line, tz), custom, rules)
            if event is None:
                unmatched += 1
            else:
                events.append(event)
    return LogResult(tuple(events), lines, unmatched)


def _match(line: str, ts: float | None, custom: re.Pattern[str] | None, rules: tuple[Rule, ...]) -> JobEvent | None:
    if custom is not None:
        m = custom.search(line)
        if m and m.groupdict().get("step"):
            return JobEvent("progress", ts, int(m.group("step")))
    for r in rules:
        event = r.event(line, ts)
        if event is not None:
            return event
    return None


def with_times(events: tuple[JobEvent, ...] | list[JobEvent], now: float) -> list[tuple[float, str, int | None, str]]:
    """Events in log order as (ts, kind, step, detail). A line without its own timestamp happened after the
    timestamped line before it and before the one after it; within those bounds it takes the read time."""
    out: list[tuple[float, str, int | None, str]] = []
    nxt: list[float | None] = [None] * len(events)
    upcoming: float | None = None
    for i in range(len(events) - 1, -1, -1):
        nxt[i] = upcoming
        if events[i].ts is not None:
            upcoming = events[i].ts
    previous = -math.inf
    for i, e in enumerate(events):
        if e.ts is not None:
            ts = e.ts
        else:
            bound = nxt[i]
            ts = max(previous, now if bound is None else min(now, bound))
        previous = max(previous, ts)
        detail = str(e.total) if e.kind == "progress" and e.total is not None else e.detail
        out.append((ts, e.kind, e.step, detail))
    return out


# ---- checkpoint directories -------------------------------------------------------------------------

LAYOUTS: tuple[Layout, ...] = tuple(dict.fromkeys(lay for m in MODULES for lay in m.LAYOUTS))
_MARKERS = ("latest", "latest_checkpointed_iteration.txt")
_COMMIT_FILES = tuple(dict.fromkeys(f for lay in LAYOUTS for f in lay.commit_files))
LISTING_CAP = 5000


def listing_command(directory: str) -> str:
    """The command that lists a checkpoint directory: for its top-level checkpoint entries and tracker files
    `mtime size name`; then the commit files inside the entries (`trainer_state.json`, DCP `.metadata`) as
    `mtime size entry/file`; then the trackers' contents. Only the top level is read (never the shards).
    The directory comes from the site file and is quoted; nothing from output is run."""
    d = shlex.quote(directory.rstrip("/") or "/")
    names = " -o ".join(f"-name {shlex.quote(g)}" for lay in LAYOUTS for g in lay.globs)
    markers = " -o ".join(f"-name {m}" for m in _MARKERS)
    inside = " ".join(f"*/{f}" for f in _COMMIT_FILES)
    return (f"cd {d} 2>/dev/null && test -r . || {{ echo 'MIXOPS-NO-DIR'; exit 0; }}; "
            f"find . -mindepth 1 -maxdepth 1 \\( {names} -o {markers} \\) -printf '%T@ %s %P\\n' 2>/dev/null "
            f"| head -n {LISTING_CAP}; "
            f"find {inside} -maxdepth 0 -printf '%T@ %s %p\\n' 2>/dev/null | head -n {LISTING_CAP}; "
            f"for f in {' '.join(_MARKERS)}; do "
            f"test -f \"$f\" && printf 'MARKER %s %s\\n' \"$f\" \"$(head -c 64 \"$f\" | tr -d '\\n')\"; done; true")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One saved step seen in the checkpoint directory."""

    step: int
    ts: float
    path: str
    complete: bool


@dataclass(frozen=True, slots=True)
class Listing:
    """The checkpoint directory as listed over SSH."""

    checkpoints: tuple[Checkpoint, ...]
    latest_step: int | None
    readable: bool
    problem: str | None = None


def _entry(name: str) -> tuple[Layout, int] | None:
    for lay in LAYOUTS:
        m = lay.entry.match(name)
        if m:
            return lay, int(m.group("step"))
    return None


def parse_listing(text: str) -> Listing:
    """Steps and their times, and whether each is committed. Megatron `iter_NNNNNNN`, MindFormers
    `iteration_NNNNNNNN` and DeepSpeed `global_stepN` are committed at or below the tracker
    (`latest_checkpointed_iteration.txt` / `latest`); HF `checkpoint-N` once `trainer_state.json` is
    inside, NeMo `…-step=N-…` and DCP `step-N` once their `.metadata` is. A committed checkpoint's time is
    its commit file's mtime (the save's end) when there is one, else the entry's."""
    if "MIXOPS-NO-DIR" in text:
        return Listing((), None, False, "checkpoint directory does not exist or is not readable")
    entries: dict[str, tuple[Layout, int, float]] = {}
    committed: dict[str, float] = {}
    tracker: int | None = None
    for line in text.splitlines():
        if line.startswith("MARKER "):
            parts = line.split(None, 2)
            m = re.search(r"(\d+)", parts[2]) if len(parts) == 3 else None
            if m:
                tracker = max(tracker or 0, int(m.group(1)))
            continue
        parts = line.split(None, 2)
        if len(parts) != 3:
            continue
        try:
            mtime = float(parts[0])
        except ValueError:
            continue
        path = parts[2].strip().removeprefix("./")
        head, sep, rest = path.partition("/")
        if sep:
            if rest in _COMMIT_FILES:
                committed[head] = max(committed.get(head, 0.0), mtime)
            continue
        found = _entry(head)
        if found:
            entries[head] = (found[0], found[1], mtime)
    best: dict[int, Checkpoint] = {}
    for name, (lay, step, mtime) in entries.items():
        if lay.commit == "tracker":
            complete = tracker is not None and step <= tracker
        else:
            complete = name in committed
        ts = committed.get(name, mtime) if complete else mtime
        c = Checkpoint(step, ts, name, complete)
        old = best.get(step)            # NeMo keeps `…-step=N-…-last` next to `…-step=N-…`: one step, once
        if old is None or (c.complete, c.ts) > (old.complete, old.ts):
            best[step] = c
    out = tuple(best[k] for k in sorted(best))
    latest = max((c.step for c in out if c.complete), default=None)
    return Listing(out, latest, True)


# ---- reading a log over SSH from an offset ----------------------------------------------------------

LOG_CAP_BYTES = 1 << 20         # at most 1 MiB of new log per job per sweep


def log_command(path: str, offset: int, cap: int = LOG_CAP_BYTES) -> str:
    """Print the log's size, the offset actually read from (0 after a rotation/truncation), then new bytes.
    The path comes from the site file and is quoted; the offset is an integer mixops keeps."""
    f = shlex.quote(path)
    o = max(0, int(offset))
    return (f"s=$(stat -c %s {f} 2>/dev/null) || {{ echo MIXOPS-NO-LOG; exit 0; }}; "
            f"o={o}; [ \"$s\" -lt $o ] && o=0; echo \"MIXOPS-LOG $s $o\"; "
            f"tail -c +$((o + 1)) {f} | head -c {int(cap)}")


@dataclass(frozen=True, slots=True)
class LogChunk:
    """New complete lines of a log and the offset to read from next time."""

    text: str
    next_offset: int
    rotated: bool
    readable: bool


def parse_log_chunk(output: str, previous_offset: int) -> LogChunk:
    """The output of log_command: only complete lines are consumed, the rest is read again next sweep."""
    head, _, body = output.partition("\n")
    if head.startswith("MIXOPS-NO-LOG") or not head.startswith("MIXOPS-LOG "):
        return LogChunk("", previous_offset, False, False)
    try:
        _size, start = (int(x) for x in head.split()[1:3])
    except ValueError:
        return LogChunk("", previous_offset, False, False)
    data = body.encode("utf-8", "surrogateescape")
    cut = data.rfind(b"\n") + 1
    return LogChunk(data[:cut].decode("utf-8", "replace"), start + cut, start < previous_offset, True)
