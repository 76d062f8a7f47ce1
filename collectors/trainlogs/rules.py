"""What a framework module declares: log-line rules and checkpoint-directory layouts.

A framework module (megatron.py, deepspeed.py, …) is data: `NAME`, `ALIASES`, `RULES` (tried in order on
each cleaned log line) and `LAYOUTS` (how its checkpoint directories are named and committed). The reader
in `collectors.jobs` applies them; nothing here touches a node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from collectors.model import integer

Groups = dict[str, str | None]


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One thing a training log says: progress, a checkpoint save/load, a restart, a fatal error."""

    kind: str                  # progress | save_start | save_end | save_time | load | fresh_start | restart | fatal
                               # | finished (training ended normally)
    ts: float | None           # from the line when it has a timestamp, else None (the reader uses its read time)
    step: int | None = None
    total: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """A line pattern and the event it means. Named groups: `step`, `total` (a number, else unknown),
    `ms` or `s` (a save's duration, for kind `save_time`). `label` classifies fatal lines (nccl, oom, …);
    `steps` computes (step, total) when the groups are not plain numbers (MindFormers' per-epoch steps)."""

    kind: str
    pattern: re.Pattern[str]
    label: str = ""
    steps: Callable[[Groups], tuple[int | None, int | None]] | None = None

    def event(self, line: str, ts: float | None) -> JobEvent | None:
        m = self.pattern.search(line)
        if m is None:
            return None
        groups = m.groupdict()
        if self.steps is not None:
            step, total = self.steps(groups)
        else:
            step, total = integer(groups.get("step")), integer(groups.get("total"))   # 3.2e+4 reads too
        if self.kind == "fresh_start":
            step = 0
        detail = ""
        if self.kind == "save_time":
            if groups.get("ms"):
                detail = str(float(groups["ms"] or 0) / 1000.0)
            elif groups.get("s"):
                detail = str(float(groups["s"] or 0))
        elif self.kind == "restart":
            detail = line[:200]
        elif self.kind == "fatal":
            detail = f"{self.label}: {line[:200]}"
        return JobEvent(self.kind, ts, step, total, detail)


def rule(kind: str, pattern: str, label: str = "",
         steps: Callable[[Groups], tuple[int | None, int | None]] | None = None) -> Rule:
    return Rule(kind, re.compile(pattern), label, steps)


@dataclass(frozen=True, slots=True)
class Layout:
    """How one framework names a checkpoint inside the job's checkpoint directory.

    `entry` matches the name of a top-level entry and captures `step`. A checkpoint is committed when
    `commit` is "tracker" and its step is at or below the directory's tracker file (`latest`,
    `latest_checkpointed_iteration.txt`), or when `commit` is "contains" and one of `commit_files` exists
    inside it (written last by the framework: `trainer_state.json`, the DCP `.metadata`)."""

    name: str
    entry: re.Pattern[str]
    globs: tuple[str, ...]
    commit: str                              # tracker | contains
    commit_files: tuple[str, ...] = ()


def layout(name: str, entry: str, globs: tuple[str, ...], commit: str, commit_files: tuple[str, ...] = ()) -> Layout:
    return Layout(name, re.compile(entry), globs, commit, commit_files)
