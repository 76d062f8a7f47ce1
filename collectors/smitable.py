"""The nvidia-smi default table and its clones (ixsmi, xpu_smi on P800): cards by header names."""

from __future__ import annotations

from collectors.boxtable import parse_blocks, used_total
from collectors.ladder import ecc_fault
from collectors.model import (
    CardSample,
    Fault,
    Health,
    ParseResult,
    first_line,
    integer,
    norm_bus_id,
    number,
    sanity,
)


def _mib(text: str | None) -> float | None:
    value = number(text)
    if value is None or text is None:
        return None
    return value * 1024.0 if "gib" in text.lower() else value


def parse_smi_table(text: str, vendor: str, command: str) -> ParseResult:
    """GPU/XPU number, name, bus id, temperature, power, memory used/total, util, volatile uncorrected ECC."""
    blocks, firsts = parse_blocks(text)
    warnings: list[str] = []
    cards: list[CardSample] = []
    faults: list[Fault] = []
    for record, raw in zip(blocks, firsts, strict=True):
        index = integer(record.get("gpu") or record.get("xpu"))
        if index is None:
            warnings.append(f"{vendor}: {command}: card row without a device number: {raw[:120]}")
            continue
        used, total = used_total(record.get("memory-usage"))
        power, _cap = used_total(record.get("pwr:usage/cap"))
        ecc = integer(record.get("volatile uncorr. ecc"))
        util = record.get("gpu-util") or record.get("xpu-util")
        card = CardSample(
            index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus-id")), health=Health.OK,
            temperature_c=number(record.get("temp")), utilization_pct=number(util),
            memory_used_mib=_mib(used), memory_total_mib=_mib(total), power_w=number(power), ecc_uncorrected=ecc,
        )
        cards.append(sanity(card, warnings, command))
        if ecc:
            faults.append(ecc_fault(vendor, index, ecc, command))
    if not cards and text.strip():
        warnings.append(f"{vendor}: {command}: no card table found; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), tuple(faults), tuple(warnings))
