"""AMD Instinct/Radeon: `rocm-smi --json` (ROCm 4.3-6.x key sets) and concise table, `amd-smi` table and
`amd-smi metric --json`. Detected only when Hygon's hy-smi is absent (DTK also ships a rocm-smi)."""

from __future__ import annotations

import json
from typing import Any

from collectors import rocm
from collectors.boxtable import Columns, read_cards, reading, used_total, used_total_mib
from collectors.model import (
    CardSample,
    Command,
    Health,
    ParseResult,
    first_line,
    integer,
    is_na,
    mebibytes,
    norm_bus_id,
    number,
    sanity,
)

VENDOR = "amd"
TOOLS = ("amd-smi", "rocm-smi")
JSON_QUERY = ("rocm-smi --showid --showmeminfo vram --showpower --showserial --showuse --showtemp "
              "--showproductname --showuniqueid --json")
PLAN = (Command("json", JSON_QUERY),)

# amd-smi 24.x-26.x default table. `GPU` is amd-smi's enumeration (`amd-smi -g N`), not the HIP or OAM id.
AMD_SMI_COLUMNS = Columns(
    metrics={"gpu": "index", "bdf": "bdf", "gpu-name": "name", "temp": "temp", "uec": "ecc", "power-usage": "power",
             "gfx-uti": "util", "mem-usage": "memory"},
    feeds={"index": (), "bdf": ("bus_id",), "name": ("model",), "temp": ("temperature_c",),
           "ecc": ("ecc_uncorrected",), "power": ("power_w",), "util": ("utilization_pct",),
           "memory": ("memory_used_mib", "memory_total_mib")},
    ignored=frozenset({"mem-uti", "hip-id", "oam-id", "partition-mode", "fan"}),
)


def parse_json(text: str, command: str = JSON_QUERY) -> ParseResult:
    """`rocm-smi --json`: memory in bytes, `GPU use (%)`, `Device Name` or `Card series`."""
    return rocm.parse_json(text, VENDOR, command)


def parse_concise(text: str, command: str = "rocm-smi") -> ParseResult:
    """`rocm-smi` concise table (ROCm 6 adds Partitions, (Junction), (Socket), °C and a name line)."""
    return rocm.parse_concise(text, VENDOR, command)


def parse_amd_smi_table(text: str, command: str = "amd-smi") -> ParseResult:
    """The `amd-smi` box: BDF and name share a cell; UEC is the uncorrectable ECC count; memory in MB."""
    def card(record: dict[str, str], index: int) -> CardSample:
        bdf_name = record.get("bdf", "")
        name = bdf_name.split(None, 1)[1].lstrip(".") if " " in bdf_name else record.get("name")
        used, total = used_total_mib(record.get("memory"), "MB")
        power, _cap = used_total(record.get("power"))
        return CardSample(index=index, model=name or None, bus_id=norm_bus_id(bdf_name), health=Health.OK,
                          temperature_c=reading(record.get("temp"), "C"), utilization_pct=reading(record.get("util"), "%"),
                          memory_used_mib=used, memory_total_mib=total, power_w=number(power),
                          ecc_uncorrected=integer(record.get("ecc")))

    return read_cards(text, VENDOR, command, AMD_SMI_COLUMNS, card)


def _leaf(node: Any, *path: str) -> str | None:
    """A `{value, unit}` leaf (or a bare value) at path, as text with its unit."""
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, dict) and "value" in node:
        value, unit = node.get("value"), node.get("unit") or ""
        return None if value is None or (isinstance(value, str) and is_na(value)) else f"{value} {unit}".strip()
    if node is None or isinstance(node, (dict, list)):
        return None
    return None if is_na(str(node)) else str(node)





def parse_metric_json(text: str, command: str = "amd-smi metric --json") -> ParseResult:
    """`amd-smi metric --json`: `{"gpu_data": [{"gpu": 0, "usage": {"gfx_activity": {value, unit}}, …}]}`
    (older releases: a bare list)."""
    try:
        data = json.loads(text[text.find("{") if text.find("[") < 0 or 0 <= text.find("{") < text.find("[")
                               else text.find("["):])
    except ValueError as exc:
        return ParseResult(VENDOR, command, warnings=(
            f"{VENDOR}: {command}: not valid JSON ({exc}); first line: {first_line(text)}",))
    items = data.get("gpu_data", []) if isinstance(data, dict) else data if isinstance(data, list) else []
    warnings: list[str] = []
    cards: list[CardSample] = []
    for item in items:
        if not isinstance(item, dict) or integer(str(item.get("gpu"))) is None:
            continue
        index = int(item["gpu"])
        ecc = integer(_leaf(item, "ecc", "total_uncorrectable_count"))
        card = CardSample(
            index=index, health=Health.OK,
            temperature_c=number(_leaf(item, "temperature", "hotspot") or _leaf(item, "temperature", "edge")),
            utilization_pct=number(_leaf(item, "usage", "gfx_activity")),
            memory_used_mib=mebibytes(_leaf(item, "mem_usage", "used_vram"), "MB"),
            memory_total_mib=mebibytes(_leaf(item, "mem_usage", "total_vram"), "MB"),
            power_w=number(_leaf(item, "power", "socket_power")), ecc_uncorrected=ecc)
        cards.append(sanity(card, warnings, command))
    if not cards:
        warnings.append(f"{VENDOR}: {command}: no gpu_data entries; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_json(sections.get("json", ""))
