"""DeepSpeed engine (also under Hugging Face Trainer and Megatron-DeepSpeed).

  [2024-05-01 10:00:00,123] [INFO] [logging.py:96:log_dist] [Rank 0] step=1200, skipped=0, lr=[0.0001], mom=[…]
  … global_step=1200, RunningAvgSamplesPerSec=…
  [Torch] Checkpoint global_step1200 is about to be saved!   /   … is ready now!
  [Torch] Loaded checkpoint from /ckpt/global_step1200/…
Checkpoints: `global_stepN/`, committed by `latest` (which holds `global_stepN`).
"""

from collectors.trainlogs.rules import layout, rule

NAME = "deepspeed"
ALIASES = ("deepspeed",)

RULES = (
    rule("save_start", r"\[Torch\] Checkpoint global_step(?P<step>\d+) is about to be saved"),
    rule("save_end", r"\[Torch\] Checkpoint global_step(?P<step>\d+) is ready now"),
    rule("load", r"\[Torch\] Loaded checkpoint from \S*global_step(?P<step>\d+)"),
    rule("fresh_start", r"Unable to find latest file at"),
    rule("progress", r"\] step=(?P<step>\d+), skipped=\d+, lr=\["),
    rule("progress", r"global_step=(?P<step>\d+), RunningAvgSamplesPerSec"),
    rule("fatal", r"ZeRORuntimeException: The checkpoint being loaded", "resume"),
)

LAYOUTS = (
    layout("deepspeed", r"^global_step(?P<step>\d+)$", ("global_step*",), "tracker"),
)
