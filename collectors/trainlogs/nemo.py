"""NVIDIA NeMo 2 (and NeMo 1 / Lightning, MLPerf NeMo submissions).

  (pretraining, pid=4112) Training epoch 1, iteration 10/999 | lr: … | global_step: 29 | reduced_train_loss: …
  [NeMo I 2025-05-22 20:08:53 model_checkpoint:497] Scheduled async checkpoint save for …-step=18-consumed_samples=9728.0-last.ckpt
  [NeMo I 2025-05-22 20:09:41 model_checkpoint:522] Async checkpoint save for step 19 finalized successfully.
  Epoch 0:   6%|▌  | 32040/500150 [6:28:43<94:39:17, 1.37it/s, loss=2.6, global_step=3.2e+4, …]   (NeMo 1)
  :::MLLOG {… "key": "init_checkpoint_step", "value": 3000, …}
Checkpoints: `<name>--…-step=N-consumed_samples=…[-last]/` holding torch.distributed.checkpoint shards;
committed once the coordinator's `.metadata` is written (under `weights/` in NeMo 2).
"""

from collectors.trainlogs.rules import layout, rule

NAME = "nemo"
ALIASES = ("nemo",)

RULES = (
    rule("progress", r"Training epoch \d+, iteration \d+/\d+ \|.*?\| global_step: (?P<step>\d+) \|"),
    rule("progress", r"\d+%\|[^|]*\|\s*\d+/\d+ \[[^\]]*global_step=(?P<step>\d+(?:\.\d+)?(?:e\+\d+)?)"),
    rule("save_start", r"Scheduled async checkpoint save for \S*step=(?P<step>\d+)"),
    rule("save_end", r"Async checkpoint save for step (?P<step>\d+) .*?finalized successfully"),
    rule("load", r"Restoring states from the checkpoint (?:file|path) at \S*step=(?P<step>\d+)"),
    rule("load", r"\"key\": \"init_checkpoint_step\", \"value\": (?P<step>\d+)"),
    rule("finished", r"\"key\": \"run_stop\"|`Trainer\.fit` stopped: `max_(?:steps|epochs)=\d+` reached"),
)

LAYOUTS = (
    layout("nemo", r"^[^/]*-step=(?P<step>\d+)-[^/]*$", ("*-step=*",), "contains", ("weights/.metadata", ".metadata")),
)
