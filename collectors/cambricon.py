"""Cambricon MLU: the `cnmon` status table (v4 and v5 layouts)."""

from __future__ import annotations

from collectors.boxtable import Columns, read_cards, reading, used_total, used_total_mib
from collectors.model import (
    CardSample,
    Command,
    Health,
    ParseResult,
    integer,
    norm_bus_id,
    number,
)

VENDOR = "cambricon"
TOOLS = ("cnmon",)
TABLE = "cnmon"
PLAN = (Command("table", TABLE),)

# cnmon v4.20 (Inited/Driver/vMemory-Usage) and v5.10 (Bus-Id/SR-IOV/Compute-Mode) headers. `Card` is
# cnmon's enumeration (`cnmon info -c N`); `VF` marks SR-IOV virtual functions inside a card.
COLUMNS = Columns(
    metrics={"card": "index", "name": "name", "bus-id": "bus", "util": "util", "ecc-error": "ecc", "temp": "temp",
             "pwr:usage/cap": "power", "memory-usage": "memory"},
    feeds={"index": (), "name": ("model",), "bus": ("bus_id",), "util": ("utilization_pct",),
           "ecc": ("ecc_uncorrected",), "temp": ("temperature_c",), "power": ("power_w",),
           "memory": ("memory_used_mib", "memory_total_mib")},
    ignored=frozenset({"vf", "firmware", "inited", "driver", "fan", "vmemory-usage", "sr-iov", "compute-mode"}),
)


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """Parse `cnmon` by its header names: v4 has Inited/Driver/vMemory, v5 has Bus-Id/SR-IOV. Ecc-Error is a
    running total (the ladder reports it; a sweep counts only its increase, console.counters)."""
    def card(record: dict[str, str], index: int) -> CardSample:
        used, total = used_total_mib(record.get("memory"))
        power, _cap = used_total(record.get("power"))
        ecc = integer(record.get("ecc"))
        return CardSample(index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus")),
                          health=Health.OK, temperature_c=reading(record.get("temp"), "C"),
                          utilization_pct=reading(record.get("util"), "%"), memory_used_mib=used, memory_total_mib=total,
                          power_w=number(power), ecc_uncorrected=ecc)

    return read_cards(text, VENDOR, command, COLUMNS, card)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_table(sections.get("table", ""))
