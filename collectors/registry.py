"""Vendor registry: one module per vendor, found by name; detection order for tools over SSH."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from collectors import ascend, cambricon, hygon, metax, nvidia
from collectors.model import Command, ParseResult


@dataclass(frozen=True, slots=True)
class Vendor:
    """What the collector needs of one vendor module."""

    name: str
    tools: tuple[str, ...]
    plan: Callable[[ParseResult | None], tuple[Command, ...]]
    parse: Callable[[dict[str, str]], ParseResult]


def _static_plan(module: ModuleType) -> Callable[[ParseResult | None], tuple[Command, ...]]:
    commands: tuple[Command, ...] = module.PLAN

    def plan(_previous: ParseResult | None) -> tuple[Command, ...]:
        return commands

    return plan


def _ascend_plan(previous: ParseResult | None) -> tuple[Command, ...]:
    return ascend.plan(ascend.unhealthy_chips(previous) if previous else ())


VENDORS: dict[str, Vendor] = {
    "nvidia": Vendor("nvidia", nvidia.TOOLS, _static_plan(nvidia), nvidia.parse),
    "ascend": Vendor("ascend", ascend.TOOLS, _ascend_plan, ascend.parse),
    "hygon": Vendor("hygon", hygon.TOOLS, _static_plan(hygon), hygon.parse),
    "cambricon": Vendor("cambricon", cambricon.TOOLS, _static_plan(cambricon), cambricon.parse),
    "metax": Vendor("metax", metax.TOOLS, _static_plan(metax), metax.parse),
}

# Every vendor name the site file may use (DESIGN §5); those without a module yet are refused by
# the collector with a clear message rather than by the site loader.
KNOWN_VENDORS = ("nvidia", "ascend", "cambricon", "hygon", "amd", "metax", "mthreads", "iluvatar",
                 "enflame", "biren", "kunlunxin", "denglin")

# Detection order matters where tools overlap: Hygon's hy-smi is looked for before any rocm-smi.
DETECT_ORDER = tuple(VENDORS)


def get(name: str) -> Vendor | None:
    """The vendor module for a name, or None when mixops has no collector for it yet."""
    return VENDORS.get(name)


def detect_command() -> Command:
    """One command that prints which known vendor tools exist on the node's PATH."""
    tools = " ".join(t for v in DETECT_ORDER for t in VENDORS[v].tools)
    return Command("detect", f"for t in {tools}; do command -v \"$t\" >/dev/null 2>&1 && echo \"$t\"; done; true")


def detect(text: str) -> str | None:
    """The vendor whose tool was found first in detection order."""
    found = {line.strip() for line in text.splitlines()}
    for name in DETECT_ORDER:
        if any(t in found for t in VENDORS[name].tools):
            return name
    return None
