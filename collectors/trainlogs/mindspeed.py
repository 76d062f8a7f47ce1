"""MindSpeed-LLM / ModelLink and MindFormers on Ascend.

MindSpeed-LLM prints Megatron's lines (its FSDP2 backend prefixes them with `INFO [ts] >>`, which the
Megatron rule still finds); MindFormers prints its own step line, where the step counts within the epoch:
  2023-08-07 19:12:16,935 - mindformers - INFO - Epoch:[  1/  1], step:[  804/  812], loss:[0.762/0.762], …
  … - INFO - { Epoch:[  1/  2], step:[    1/   19], loss: 10.649, per_step_time: 103328ms, …
Checkpoints: Megatron's `iter_NNNNNNN/` and newer MindFormers' `iteration_NNNNNNNN/`, both committed by
`latest_checkpointed_iteration.txt`.
"""

from collectors.model import integer
from collectors.trainlogs import megatron
from collectors.trainlogs.rules import Groups, layout, rule

NAME = "mindspeed"
ALIASES = ("mindspeed", "mindformers")


def _global_step(g: Groups) -> tuple[int | None, int | None]:
    """MindFormers counts steps within an epoch: the global step is (epoch - 1) × steps per epoch + step."""
    epoch, epochs, step, per = (integer(g.get(k)) for k in ("ep", "eps", "step", "per"))
    if epoch is None or epochs is None or step is None or per is None:
        return step, None
    return (epoch - 1) * per + step, epochs * per


RULES = (
    rule("progress", r"Epoch:\[\s*(?P<ep>\d+)/\s*(?P<eps>\d+)\], step:\[\s*(?P<step>\d+)/\s*(?P<per>\d+)\]",
         steps=_global_step),
    rule("finished", r"\.{3,}Training Over!\.{3,}"),
    *megatron.RULES,
)

LAYOUTS = (
    *megatron.LAYOUTS,
    layout("mindformers", r"^iteration_(?P<step>\d{8})$", ("iteration_*",), "tracker"),
)
