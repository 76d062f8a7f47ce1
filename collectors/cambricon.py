"""Cambricon MLU: the `cnmon` status table (v4 and v5 layouts)."""

from __future__ import annotations

from collectors.boxtable import read_cards, used_total, used_total_mib
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


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """Parse `cnmon` by its header names: v4 has Inited/Driver/vMemory, v5 has Bus-Id/SR-IOV. Ecc-Error is a
    running total (the ladder reports it; a sweep counts only its increase, console.counters)."""
    def card(record: dict[str, str], index: int) -> CardSample:
        used, total = used_total_mib(record.get("memory-usage"))
        power, _cap = used_total(record.get("pwr:usage/cap"))
        ecc = integer(record.get("ecc-error"))
        return CardSample(index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus-id")),
                          health=Health.OK, temperature_c=number(record.get("temp")),
                          utilization_pct=number(record.get("util")), memory_used_mib=used, memory_total_mib=total,
                          power_w=number(power), ecc_uncorrected=ecc)

    return read_cards(text, VENDOR, command, ("card",), card)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_table(sections.get("table", ""))
