"""Hugging Face Trainer / accelerate (also LLaMA-Factory, PaddleNLP's Trainer).

  [INFO|trainer.py:3705] 2024-05-01 10:00:00,000 >> Saving model checkpoint to out/checkpoint-500
  [INFO|trainer.py:1791] 2023-12-12 10:12:06,000 >>   Continuing training from global step 200000
   37%|███▋      | 500/1350 [06:17<10:46,  1.31it/s]      (tqdm, written with carriage returns)
Checkpoints: `checkpoint-N/`, committed once `trainer_state.json` is inside (the Trainer writes it last).
"""

from collectors.trainlogs.rules import layout, rule

NAME = "hf"
ALIASES = ("hf", "accelerate")

RULES = (
    rule("save_start", r"Saving model checkpoint to \S*checkpoint-(?P<step>\d+)"),
    rule("load", r"Continuing training from global step (?P<step>\d+)"),
    rule("finished", r"Training completed\. Do not forget to share your model"),
    rule("progress", r"\d+%\|[^|]*\|\s*(?P<step>\d+)/(?P<total>\d+) \["),
    rule("progress", r"'global_step': (?P<step>\d+), 'epoch'"),                      # PaddleNLP's Trainer
)

LAYOUTS = (
    layout("hf", r"^checkpoint-(?P<step>\d+)$", ("checkpoint-*",), "contains", ("trainer_state.json",)),
)
