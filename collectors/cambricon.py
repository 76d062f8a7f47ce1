"""Cambricon MLU: the `cnmon` status table (v4 and v5 layouts)."""

from __future__ import annotations

from collectors.boxtable import parse_blocks, used_total
from collectors.model import (
    Action,
    CardSample,
    Command,
    Fault,
    Health,
    ParseResult,
    Severity,
    first_line,
    integer,
    norm_bus_id,
    number,
    sanity,
)

VENDOR = "cambricon"
TOOLS = ("cnmon",)
TABLE = "cnmon"
PLAN = (Command("table", TABLE),)


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """Parse `cnmon` by its header names: v4 has Inited/Driver/vMemory, v5 has Bus-Id/SR-IOV."""
    blocks, firsts = parse_blocks(text)
    warnings: list[str] = []
    cards: list[CardSample] = []
    faults: list[Fault] = []
    for record, raw in zip(blocks, firsts, strict=True):
        index = integer(record.get("card"))
        if index is None:
            warnings.append(f"{VENDOR}: {command}: card row without a card number: {raw[:120]}")
            continue
        used, total = used_total(record.get("memory-usage"))
        power, _cap = used_total(record.get("pwr:usage/cap"))
        ecc = integer(record.get("ecc-error"))
        card = CardSample(
            index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus-id")),
            health=Health.CRITICAL if ecc else Health.OK,
            temperature_c=number(record.get("temp")), utilization_pct=number(record.get("util")),
            memory_used_mib=number(used), memory_total_mib=number(total), power_w=number(power),
            ecc_uncorrected=ecc,
        )
        cards.append(sanity(card, warnings, command))
        if ecc:
            faults.append(Fault("ECC-UE", Severity.CRITICAL, Action.RESET_CARD,
                                f"MLU {index}: {ecc} uncorrectable ECC error(s) reported by cnmon", index))
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no card table found; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), tuple(faults), tuple(warnings))


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_table(sections.get("table", ""))
