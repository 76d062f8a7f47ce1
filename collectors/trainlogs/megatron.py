"""Megatron-LM (also Megatron-DeepSpeed, gpt-neox, Megatron-Bridge): iteration lines, saves, loads, timers.

  [2024-05-01 10:00:00] iteration      100/  100000 | consumed samples: … | elapsed time per iteration (ms): …
  saving checkpoint at iteration     100 to /ckpt in torch_dist format
  successfully saved checkpoint from iteration     100 to /ckpt [ t 1/8, p 1/4 ]
  save-checkpoint ................................: (81234.56, 81240.12)
  successfully loaded checkpoint from /ckpt [ t 1/8, p 1/4 ] at iteration 100
Checkpoints: `iter_NNNNNNN/`, committed by `latest_checkpointed_iteration.txt`.
"""

from collectors.trainlogs.rules import layout, rule

NAME = "megatron"
ALIASES = ("megatron",)

RULES = (
    rule("progress", r"iteration\s+(?P<step>\d+)\s*/\s*(?P<total>\d+|infinity)\s*\|"),
    rule("save_start", r"saving checkpoint at iteration\s+(?P<step>\d+)"),
    rule("save_end", r"successfully saved checkpoint (?:at|from) iteration\s+(?P<step>\d+)"),
    rule("save_time", r"save-checkpoint\s*[.:]*\s*\(?(?P<ms>\d+(?:\.\d+)?)"),
    rule("load", r"successfully loaded checkpoint from \S+(?: \[[^\]]*\])? at iteration (?P<step>\d+)"),
    rule("load", r"Loading checkpoint and starting from iteration (?P<step>\d+)"),          # gpt-neox
    rule("fresh_start", r"will not load any checkpoints and will start from random"),
    rule("finished", r"^\[after training is done\] datetime:"),
    # --log-progress writes <save>/progress.txt: tab-separated, one line per start and per save
    rule("restart", r"\tStarting job$"),
    rule("save_start", r"\tSaving (?:async )?checkpoint\tIteration: (?P<step>\d+)"),
)

LAYOUTS = (
    layout("megatron", r"^iter_(?P<step>\d{7})$", ("iter_*",), "tracker"),
)
