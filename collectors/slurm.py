"""Slurm's view of a job (optional per job): state and how often it was requeued.

`scontrol show job -o ID` prints one line of `Key=Value` pairs while Slurm still knows the job
(`JobState=RUNNING … Restarts=2 …`); after it has been purged, `sacct -n -P -X -j ID -o JobID,State`
gives the final state. The job id comes from the site file and is validated there (digits, optionally
`_` and an array index); it is quoted all the same.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_ID = re.compile(r"^\d+(?:_\d+)?$")


def valid_id(job_id: str) -> bool:
    """A Slurm job id as the site file may give it: `12345` or `12345_7`."""
    return bool(_ID.match(job_id))


def command(job_id: str) -> str:
    """The node-side command for one job id."""
    q = shlex.quote(job_id)
    return (f"scontrol show job -o {q} 2>/dev/null | head -n 1 | grep JobState= "
            f"|| sacct -n -P -X -j {q} -o JobID,State 2>/dev/null | head -n 1")


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """What Slurm says about one job; None where it said nothing."""

    state: str | None
    requeues: int | None
    reason: str | None = None


def parse(text: str) -> SlurmJob | None:
    """scontrol's one-line record or sacct's `ID|STATE`; None when neither is there."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if "JobState=" in line:
        fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
        restarts = fields.get("Restarts")
        reason = fields.get("Reason")
        return SlurmJob(fields.get("JobState"), int(restarts) if restarts and restarts.isdigit() else None,
                        None if reason in (None, "None") else reason)
    parts = line.split("|")
    if len(parts) >= 2 and parts[1].strip():
        return SlurmJob(parts[1].split()[0], None)
    return None
