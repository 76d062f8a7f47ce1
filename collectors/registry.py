"""Vendor registry: one module per vendor, found by name; detection order for tools over SSH.

Site-defined adapters (collectors.adapter) register here too and take precedence, so a site can
teach mixops a new chip, or override a built-in reader, without a code change.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from collectors import (
    amd,
    ascend,
    biren,
    cambricon,
    denglin,
    enflame,
    hygon,
    iluvatar,
    kunlunxin,
    ladder,
    links,
    metax,
    mthreads,
    nvidia,
)
from collectors.adapter import Adapter
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


def _laddered(parse: Callable[[dict[str, str]], ParseResult]) -> Callable[[dict[str, str]], ParseResult]:
    """A vendor's parse plus the faults its values imply (collectors.ladder.apply)."""
    def run(sections: dict[str, str]) -> ParseResult:
        return ladder.apply(parse(sections))

    return run


def _vendor(name: str, tools: tuple[str, ...], plan: Callable[[ParseResult | None], tuple[Command, ...]],
            parse: Callable[[dict[str, str]], ParseResult]) -> Vendor:
    """A vendor reader whose sweeps also ask for the node's links (collectors.links) on the same session: the
    vendor's own commands first (its first is the primary), then the link sources the node has."""
    laddered = _laddered(parse)

    def linked_plan(previous: ParseResult | None) -> tuple[Command, ...]:
        return plan(previous) + links.plan(name, previous)

    def linked_parse(sections: dict[str, str]) -> ParseResult:
        return links.with_links(name, laddered(sections), sections)

    return Vendor(name, tools, linked_plan, linked_parse)


def _static(module: ModuleType) -> Vendor:
    return _vendor(module.VENDOR, module.TOOLS, _static_plan(module), module.parse)


VENDORS: dict[str, Vendor] = {
    "nvidia": _static(nvidia),
    "ascend": _vendor("ascend", ascend.TOOLS, _ascend_plan, ascend.parse),
    "hygon": _static(hygon),
    "amd": _static(amd),
    "cambricon": _static(cambricon),
    "metax": _static(metax),
    "mthreads": _static(mthreads),
    "iluvatar": _static(iluvatar),
    "enflame": _static(enflame),
    "kunlunxin": _static(kunlunxin),
    "denglin": _static(denglin),
    "biren": _static(biren),
}

# Every vendor name the site file may use (DESIGN §5).
KNOWN_VENDORS = ("nvidia", "ascend", "cambricon", "hygon", "amd", "metax", "mthreads", "iluvatar",
                 "enflame", "biren", "kunlunxin", "denglin")

# Detection order matters where tools overlap: Hygon's hy-smi before any rocm-smi (DTK ships one too).
DETECT_ORDER = ("nvidia", "ascend", "hygon", "amd", "cambricon", "metax", "mthreads", "iluvatar", "enflame",
                "kunlunxin", "denglin", "biren")
# Tools outside the login PATH, looked for at these absolute paths as well.
EXTRA_PATHS = {"ixsmi": "/usr/local/corex/bin/ixsmi", "hy-smi": "/opt/hyhal/bin/hy-smi"}
PCI_MARK = "pci-vendor-1d22"

ADAPTERS: dict[str, Vendor] = {}


def register_adapters(adapters: Iterable[Adapter]) -> None:
    """Make a site's adapters known (they win over a built-in of the same name)."""
    ADAPTERS.clear()
    for a in adapters:
        # a site adapter's plan is the site's as written (no link commands added: a site-defined link adapter
        # is issue 19's open part)
        ADAPTERS[a.name] = Vendor(a.name, a.tools, a.plan, _laddered(a.parse))


def get(name: str) -> Vendor | None:
    """The vendor reader for a name: a site adapter first, then the built-in module."""
    return ADAPTERS.get(name) or VENDORS.get(name)


def _order() -> list[Vendor]:
    return list(ADAPTERS.values()) + [VENDORS[v] for v in DETECT_ORDER if v not in ADAPTERS]


def detect_command() -> Command:
    """One command that prints which known vendor tools exist (PATH or their usual places) and
    whether a Kunlunxin PCI device (vendor 0x1d22) is present."""
    tools: list[str] = []
    for vendor in _order():
        tools.extend(t for t in vendor.tools if t not in tools)
    parts = []
    for tool in tools:
        q = shlex.quote(tool)
        extra = EXTRA_PATHS.get(tool)
        test = f"command -v {q} >/dev/null 2>&1" + (f" || test -x {shlex.quote(extra)}" if extra else "")
        parts.append(f"{{ {test}; }} && echo {q}")
    parts.append(f"grep -qs 0x1d22 /sys/bus/pci/devices/*/vendor && echo {PCI_MARK}")
    return Command("detect", "; ".join(parts) + "; true")


def detect(text: str) -> str | None:
    """The vendor whose tool was found first in detection order; Kunlunxin's xpu_smi/xpu-smi only counts
    with a 0x1d22 PCI device present (Intel ships an unrelated xpu-smi)."""
    found = {line.strip() for line in text.splitlines()}
    for vendor in _order():
        if vendor.name == "kunlunxin" and "kunlunxin" not in ADAPTERS and PCI_MARK not in found:
            continue
        if any(t in found for t in vendor.tools):
            return vendor.name
    return None
