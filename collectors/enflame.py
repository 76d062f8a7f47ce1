"""Enflame (燧原): `efsmi` tables (1.2-1.7) and `efsmi -q -d TEMP,MEMORY,USAGE,PCIE` key-value blocks.

The `-q` memory keys changed across generations: `Mem Size / Mem Usage` (2024-25 builds), then
`Total Size / Reserved Size / Used Size / Free Size` (1.5), with `BAR1 Mem Info` added in 1.7 (ignored).
"""

from __future__ import annotations

import re
from dataclasses import replace

from collectors.boxtable import Columns, read_cards, reading
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

VENDOR = "enflame"
TOOLS = ("efsmi",)
QUERY = "efsmi -q -d TEMP,MEMORY,USAGE,PCIE"
TABLE = "efsmi"
PLAN = (Command("query", QUERY), Command("table", TABLE))

_DEV = re.compile(r"^DEV ID\s+(\d+)")
_KV = re.compile(r"^(\s+)([^:]+?)\s*:\s*(.*?)\s*$")

# efsmi 1.2 (Dpm), 1.6 and 1.7 (Lpm, `FW VER (Boot FW VER)`) table headers; DEV is efsmi's enumeration.
COLUMNS = Columns(
    metrics={"dev": "index", "name": "name", "bus-id": "bus", "temp": "temp", "pwr(usage/cap)": "power",
             "mem": "memory_total", "dused": "memory_share", "sn": "serial"},
    feeds={"index": (), "name": ("model",), "bus": ("bus_id",), "temp": ("temperature_c",), "power": ("power_w",),
           "memory_total": ("memory_total_mib", "memory_used_mib"), "memory_share": ("memory_used_mib",),
           "serial": ("serial",)},
    ignored=frozenset({"fw ver", "fw ver (boot fw ver)", "ecc", "lpm", "dpm", "gcu virt"}),
)


def parse_query(text: str, command: str = QUERY) -> ParseResult:
    """`DEV ID N` blocks; sections (`Device Mem Info`, …) are the less-indented lines without a colon."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    index: int | None = None
    fields: dict[str, str] = {}
    section = ""

    def flush() -> None:
        if index is None:
            return
        mem_total = fields.get("device mem info/total size") or fields.get("device mem info/mem size")
        mem_used = fields.get("device mem info/used size") or fields.get("device mem info/mem usage")
        bus = None
        if all(k in fields for k in ("pcie info/domain", "pcie info/bus", "pcie info/dev", "pcie info/func")):
            bus = norm_bus_id(f"{fields['pcie info/domain']}:{fields['pcie info/bus']}:"
                              f"{fields['pcie info/dev']}.{fields['pcie info/func']}")
        card = CardSample(index=index, bus_id=bus, health=Health.OK,
                          temperature_c=number(fields.get("temperature info/gcu temp")),
                          utilization_pct=number(fields.get("device usage info/gcu usage")),
                          memory_used_mib=number(mem_used), memory_total_mib=number(mem_total),
                          power_w=number(fields.get("power info/gcu power") or fields.get("power info/power")))
        cards.append(sanity(card, warnings, command))

    for line in text.splitlines():
        m = _DEV.match(line)
        if m:
            flush()
            index, fields, section = int(m.group(1)), {}, ""
            continue
        if index is None or not line.strip():
            continue
        kv = _KV.match(line)
        if kv is None:
            section = line.strip().lower()
            continue
        if len(kv.group(1)) <= 4:           # a section header that happens to hold a colon
            section = kv.group(2).strip().lower()
            continue
        fields.setdefault(f"{section}/{kv.group(2).strip().lower()}", kv.group(3))
    flush()
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no 'DEV ID' block; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """The `efsmi` box: `Mem` is the card's memory size and `DUsed` the share of it in use."""
    def card(record: dict[str, str], index: int) -> CardSample:
        total = mebibytes(record.get("memory_total"))
        share = number(record.get("memory_share"))
        used = None if total is None or share is None else round(total * share / 100.0, 1)
        return CardSample(index=index, model=record.get("name"), serial=record.get("serial") or None,
                          bus_id=norm_bus_id(record.get("bus")), health=Health.OK,
                          temperature_c=reading(record.get("temp"), "C"), memory_used_mib=used, memory_total_mib=total,
                          power_w=number((record.get("power") or "N/A").split()[0]))

    return read_cards(text, VENDOR, command, COLUMNS, card)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep: `-q` gives utilization and used memory, the table adds model, serial and power."""
    query = parse_query(sections.get("query", ""))
    table = parse_table(sections.get("table", "")) if sections.get("table", "").strip() else None
    if table is None or not table.cards:
        return query
    by_index = {c.index: c for c in table.cards}
    merged = []
    for card in query.cards:
        t = by_index.get(card.index)
        if t is not None:
            card = replace(card, model=t.model, serial=t.serial,
                           power_w=card.power_w if card.power_w is not None else t.power_w)
        merged.append(card)
    return ParseResult(VENDOR, QUERY, tuple(merged) or table.cards, (), query.warnings + table.warnings)
