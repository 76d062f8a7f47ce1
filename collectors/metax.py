"""MetaX (沐曦): `mx-smi` tables (2.0.x, 2.2.x, >=2.2.9 layouts) and `mx-smi --show-*` key-value output."""

from __future__ import annotations

import re

from collectors.boxtable import Columns, read_cards, reading, used_total, used_total_mib
from collectors.model import (
    CardSample,
    Command,
    Health,
    ParseResult,
    first_line,
    mebibytes,
    norm_bus_id,
    number,
    sanity,
)

VENDOR = "metax"
TOOLS = ("mx-smi",)
TABLE = "mx-smi"
PLAN = (Command("table", TABLE),)

_STATE = {"available": Health.OK, "normal": Health.OK}
_GPU_LINE = re.compile(r"^GPU#(\d+)\s+(\S+)\s+(\S+)")
_KV = re.compile(r"^\s+([^:]+?)\s*:\s*(.*?)\s*$")
_KIB_PER_MIB = 1024.0

# mx-smi 2.0.12 (GPU/NAME/Power) and >= 2.2.9 (Board Name | GPU Persist-M, GPU-State) headers. The GPU
# number is mx-smi's enumeration (`mx-smi -i N`); `Board` numbers the carrier board.
COLUMNS = Columns(
    metrics={"gpu": "index", "name": "name", "bus-id": "bus", "gpu-util": "util", "temp": "temp",
             "pwr:usage/cap": "power", "power": "power", "memory-usage": "memory", "gpu-state": "state"},
    feeds={"index": (), "name": ("model",), "bus": ("bus_id",), "util": ("utilization_pct",),
           "temp": ("temperature_c",), "power": ("power_w",), "memory": ("memory_used_mib", "memory_total_mib"),
           "state": ()},
    ignored=frozenset({"board", "persist-m", "sgpu-m", "perf"}),
)


def _health(state: str | None) -> Health:
    if state is None:
        return Health.UNKNOWN
    return _STATE.get(state.strip().lower(), Health.WARNING)


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """Parse the `mx-smi` box by header names; 'Board Name' and 'NAME' columns both give the model."""
    def card(record: dict[str, str], index: int) -> CardSample:
        used, total = used_total_mib(record.get("memory"))
        power, _cap = used_total(record.get("power"))
        return CardSample(index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus")),
                          health=_health(record.get("state")) if "state" in record else Health.OK,
                          temperature_c=reading(record.get("temp"), "C"), utilization_pct=reading(record.get("util"), "%"),
                          memory_used_mib=used, memory_total_mib=total, power_w=number(power))

    return read_cards(text, VENDOR, command, COLUMNS, card)


def parse_show(text: str, command: str = "mx-smi --show-temperature --show-usage --show-memory") -> ParseResult:
    """Parse `GPU#N model bdf` blocks of indented `key : value` lines (memory in KB)."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    current: dict[str, str] | None = None
    head: tuple[int, str, str] | None = None

    def flush() -> None:
        if head is None or current is None:
            return
        used, total = current.get("vram used"), current.get("vram total")
        temp = current.get("hotspot") or current.get("chip") or current.get("temperature")
        card = CardSample(
            index=head[0], model=head[1], bus_id=norm_bus_id(head[2]), health=Health.OK,
            temperature_c=number(temp), utilization_pct=number(current.get("gpu")),
            memory_used_mib=mebibytes(used, "KB"), memory_total_mib=mebibytes(total, "KB"),
            power_w=number(current.get("board power") or current.get("power")),
        )
        cards.append(sanity(card, warnings, command))

    for line in text.splitlines():
        m = _GPU_LINE.match(line)
        if m:
            flush()
            head = (int(m.group(1)), m.group(2), m.group(3))
            current = {}
            continue
        kv = _KV.match(line)
        if kv and current is not None:
            current.setdefault(kv.group(1).strip().lower(), kv.group(2))
    flush()
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no 'GPU#N' block found; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))





def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_table(sections.get("table", ""))
