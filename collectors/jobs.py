"""Training jobs without a plugin: events from framework logs and checkpoint-directory listings.

Pure parsers (text → events). Log lines are first stripped of launcher prefixes (`srun -l`,
`[default7]:`, `[rank5]:`, pdsh `worker-1:`, Ray `(name, pid=N)`), split on the carriage returns of
progress bars, then matched per framework: Megatron-LM / MindSpeed (also Megatron-DeepSpeed, gpt-neox),
DeepSpeed, Hugging Face Trainer / accelerate, torchrun / torch elastic, plus a site's `progress_regex`.
Fatal signatures (NCCL/HCCL timeouts, CUDA/NPU errors, OOM, Xid) are framework-independent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

FRAMEWORKS = ("megatron", "mindspeed", "deepspeed", "hf", "accelerate", "torchrun", "nemo", "mindformers")

_PREFIX = re.compile(r"^(?:\d{2}:\d{2}:\d{2}\.\d{3}\s)?(?:\s*\d+:\s+|\[default\d+\]:\s?|\[rank\d+\]:\s?"
                     r"|\([\w-]+, pid=\d+\)\s|worker-\d+:\s)*")
_TS = re.compile(r"(\d{4}-\d{2}-\d{2})[ T_](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?")

# progress
_MEGATRON = re.compile(r"iteration\s+(?P<it>\d+)\s*/\s*(?P<total>\d+|infinity)\s*\|")
_DEEPSPEED = re.compile(r"\] step=(?P<step>\d+), skipped=\d+, lr=\[|global_step=(?P<gs>\d+), RunningAvgSamplesPerSec")
_HF_TQDM = re.compile(r"(?P<pct>\d+)%\|[^|]*\|\s*(?P<step>\d+)/(?P<total>\d+) \[")
_HF_STEP = re.compile(r"'step': (?P<step>\d+)")
# checkpoints
_SAVE_START = re.compile(r"saving checkpoint at iteration\s+(?P<it>\d+)|\[Torch\] Checkpoint global_step(?P<ds>\d+)"
                         r" is about to be saved|Saving model checkpoint to \S*checkpoint-(?P<hf>\d+)")
_SAVE_END = re.compile(r"successfully saved checkpoint (?:at|from) iteration\s+(?P<it>\d+)|\[Torch\] Checkpoint "
                       r"global_step(?P<ds>\d+) is ready now")
_LOAD = re.compile(r"successfully loaded checkpoint from \S+(?: \[[^\]]*\])? at iteration (?P<it>\d+)"
                   r"|Continuing training from global step (?P<hf>\d+)"
                   r"|Loading checkpoint and starting from iteration (?P<neox>\d+)"
                   r"|\[Torch\] Loaded checkpoint from \S*global_step(?P<ds>\d+)")
_SAVE_TIME = re.compile(r"save-checkpoint\s*[.:]*\s*\(?(?P<ms>\d+(?:\.\d+)?)")
_FRESH = re.compile(r"will not load any checkpoints and will start from random|Unable to find latest file at")
# restarts and fatal signatures
_RESTART = re.compile(r"Worker group (?:FAILED|UNHEALTHY)\. \d+/\d+ attempts left; will restart worker group"
                      r"|Starting job$|restart_count=(?P<n>\d+)")
_FATAL = re.compile(
    r"(?P<nccl>Watchdog caught collective operation timeout|NCCL (?:communicator was aborted|error)|ncclSystemError"
    r"|ncclInternalError|ProcessGroupNCCL.*Timeout)"
    r"|(?P<hccl>HCCL[^\n]{0,40}(?:timeout|Timeout|error)|EI000[0-9]|notify wait timeout)"
    r"|(?P<npu>EE1002|EH9999|EZ9999|aclrtSynchronize\w* failed|NPU function error|107020)"
    r"|(?P<oom>CUDA out of memory|OutOfMemoryError|NPU out of memory)"
    r"|(?P<cuda>CUDA error: [^\n]{0,60}|uncorrectable ECC error encountered|unspecified launch failure)"
    r"|(?P<xid>\bXid \(PCI:[^)]*\): \d+)"
    r"|(?P<child>ChildFailedError|failed \(exitcode: -?\d+\) local_rank)")


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One thing a training log says: progress, a checkpoint save/load, a restart, a fatal error."""

    kind: str                  # progress | save_start | save_end | save_time | load | fresh_start | restart | fatal
    ts: float | None           # from the line when it has a timestamp, else None (the reader uses its read time)
    step: int | None = None
    total: int | None = None
    detail: str = ""


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


def _int(*values: str | None) -> int | None:
    for v in values:
        if v is not None:
            return int(v)
    return None


def parse_log(text: str, framework: str | None = None, progress_regex: str | None = None,
              tz: tzinfo | None = None) -> LogResult:
    """Events of a log chunk in order. `progress_regex` must have a `step` group (site file). Timestamps
    in lines carry no zone; they are read in `tz` (the site's timezone), else in the local one."""
    custom = re.compile(progress_regex) if progress_regex else None
    events: list[JobEvent] = []
    lines = unmatched = 0
    for raw in text.splitlines():
        for piece in raw.split("\r"):
            line = _PREFIX.sub("", piece, count=1).strip()
            if not line:
                continue
            lines += 1
            ts = _timestamp(line, tz)
            event = _match(line, ts, custom)
            if event is None:
                unmatched += 1
            else:
                events.append(event)
    return LogResult(tuple(events), lines, unmatched)


def _match(line: str, ts: float | None, custom: re.Pattern[str] | None) -> JobEvent | None:
    if custom is not None:
        m = custom.search(line)
        if m and m.groupdict().get("step"):
            return JobEvent("progress", ts, int(m.group("step")))
    m = _MEGATRON.search(line)
    if m:
        total = None if m.group("total") == "infinity" else int(m.group("total"))
        return JobEvent("progress", ts, int(m.group("it")), total)
    m = _SAVE_START.search(line)
    if m:
        return JobEvent("save_start", ts, _int(m.group("it"), m.group("ds"), m.group("hf")))
    m = _SAVE_END.search(line)
    if m:
        return JobEvent("save_end", ts, _int(m.group("it"), m.group("ds")))
    m = _SAVE_TIME.search(line)
    if m:
        return JobEvent("save_time", ts, detail=str(float(m.group("ms")) / 1000.0))
    m = _LOAD.search(line)
    if m:
        return JobEvent("load", ts, _int(m.group("it"), m.group("hf"), m.group("neox"), m.group("ds")))
    if _FRESH.search(line):
        return JobEvent("fresh_start", ts, 0)
    m = _DEEPSPEED.search(line)
    if m:
        return JobEvent("progress", ts, _int(m.group("step"), m.group("gs")))
    m = _HF_TQDM.search(line)
    if m:
        return JobEvent("progress", ts, int(m.group("step")), int(m.group("total")))
    m = _RESTART.search(line)
    if m:
        return JobEvent("restart", ts, detail=line[:200])
    m = _FATAL.search(line)
    if m:
        kind = next(k for k, v in m.groupdict().items() if v)
        return JobEvent("fatal", ts, detail=f"{kind}: {line[:200]}")
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
        out.append((ts, e.kind, e.step, e.detail))
    return out


# ---- checkpoint directories -------------------------------------------------------------------------

_CKPT_NAME = re.compile(r"(?:^|/)(?:iter_(?P<it>\d{7})|global_step(?P<ds>\d+)|checkpoint-(?P<hf>\d+))/?$")


def listing_command(directory: str) -> str:
    """The command that lists a checkpoint directory: mtime, size, path of the step dirs and markers, then the
    markers' contents. The directory comes from the site file and is quoted; nothing from output is run."""
    import shlex

    d = shlex.quote(directory.rstrip("/") or "/")
    return (f"test -d {d} || {{ echo 'MIXOPS-NO-DIR'; exit 0; }}; "
            f"find {d} -maxdepth 2 \\( -name 'iter_*' -o -name 'global_step*' -o -name 'checkpoint-*' "
            f"-o -name latest -o -name latest_checkpointed_iteration.txt -o -name trainer_state.json "
            f"-o -name .metadata \\) -printf '%T@ %s %p\\n' 2>/dev/null | head -n 5000; "
            f"for f in {d}/latest {d}/latest_checkpointed_iteration.txt; do "
            f"test -f \"$f\" && printf 'MARKER %s %s\\n' \"${{f##*/}}\" \"$(head -c 64 \"$f\")\"; done; true")


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


def parse_listing(text: str) -> Listing:
    """Steps (Megatron `iter_NNNNNNN`, DeepSpeed `global_stepN`, HF `checkpoint-N`), their mtimes, and whether
    each is committed: at or below the tracker (`latest_checkpointed_iteration.txt` / `latest`), or holding a
    `trainer_state.json` (HF), which frameworks write only after the save finished."""
    if "MIXOPS-NO-DIR" in text:
        return Listing((), None, False, "checkpoint directory does not exist or is not readable")
    found: dict[int, tuple[float, str]] = {}
    hf_complete: set[str] = set()
    tracker: int | None = None
    for line in text.splitlines():
        if line.startswith("MARKER "):
            parts = line.split(None, 2)
            if len(parts) == 3:
                m = re.search(r"(\d+)", parts[2])
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
        path = parts[2]
        if path.endswith("/trainer_state.json"):
            hf_complete.add(path.rsplit("/", 1)[0])
            continue
        m = _CKPT_NAME.search(path)
        if m:
            step = int(m.group("it") or m.group("ds") or m.group("hf"))
            if step not in found or mtime > found[step][0]:
                found[step] = (mtime, path)
    out = []
    for step, (mtime, path) in sorted(found.items()):
        if "checkpoint-" in path.rsplit("/", 1)[-1]:
            complete = path in hf_complete
        else:
            complete = tracker is not None and step <= tracker
        out.append(Checkpoint(step, mtime, path, complete))
    latest = max((c.step for c in out if c.complete), default=None)
    return Listing(tuple(out), latest, True)



# ---- reading a log over SSH from an offset ----------------------------------------------------------

LOG_CAP_BYTES = 1 << 20         # at most 1 MiB of new log per job per sweep


def log_command(path: str, offset: int, cap: int = LOG_CAP_BYTES) -> str:
    """Print the log's size, the offset actually read from (0 after a rotation/truncation), then new bytes.
    The path comes from the site file and is quoted; the offset is an integer mixops keeps."""
    import shlex

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
