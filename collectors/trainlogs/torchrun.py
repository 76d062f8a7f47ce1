"""torchrun / torch elastic (the launcher under most PyTorch jobs) and torch.distributed.checkpoint.

  …agent.server.api:[default] Worker group FAILED. 3/3 attempts left; will restart worker group
  torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
  …api:failed (exitcode: -6) local_rank: 0 (pid: 541332) of binary: /usr/bin/python
Checkpoints: torch.distributed.checkpoint directories `step-N/` (torchtitan), committed by `.metadata`,
which the coordinator writes after every shard.
"""

from collectors.trainlogs.rules import layout, rule

NAME = "torchrun"
ALIASES = ("torchrun",)

RULES = (
    rule("restart", r"Worker group (?:FAILED|UNHEALTHY)\. \d+/\d+ attempts left; will restart worker group"),
    rule("restart", r"restart_count=[1-9]\d*"),
    rule("fatal", r"ChildFailedError|failed \(exitcode: -?\d+\) local_rank", "child"),
    rule("fatal", r"Received (?:Signals\.)?SIG\w+ death signal", "signal"),
    # FSDP / DCP saves as llama-recipes logs them
    rule("save_end", r"Sharded state checkpoint saved to "),
    rule("save_time", r"Checkpoint Time = (?P<s>\d+(?:\.\d+)?)"),
)

LAYOUTS = (
    layout("dcp", r"^step-(?P<step>\d+)$", ("step-*",), "contains", (".metadata",)),
)
