"""One module per training framework: the log lines it prints and how it lays out checkpoints.

`collectors.jobs` reads logs and listings with these rules. Adding a framework is one module with
`NAME`, `ALIASES`, `RULES` and `LAYOUTS`, listed in `MODULES` below.
"""

from collectors.trainlogs import deepspeed, faults, hf, megatron, mindspeed, nemo, torchrun

# Order matters when no framework is named: specific lines first (NeMo's progress bar carries the global
# step, which the generic tqdm rule of hf would read as the batch within the epoch).
MODULES = (megatron, mindspeed, deepspeed, nemo, hf, torchrun)
FAULTS = faults.RULES
