"""Moore Threads (摩尔线程): `mthreads-gmi` tables (1.x desktop and 2.x server layouts).

The table is framed by dashed rules and `|` between columns but not around them; the third header
row fills only the last column. Cells are matched to header columns by their character offset.
"""

from __future__ import annotations

import re

from collectors.boxtable import Columns, reading
from collectors.model import (
    CardSample,
    Command,
    Health,
    ParseResult,
    first_line,
    integer,
    norm_bus_id,
    sanity,
)

VENDOR = "mthreads"
TOOLS = ("mthreads-gmi",)
TABLE = "mthreads-gmi"
PLAN = (Command("table", TABLE),)

_SPLIT = re.compile(r"\s{2,}")
# mthreads-gmi 1.14 (desktop) and 2.2-2.4 (server) headers; ID is the tool's enumeration (`-i N`).
COLUMNS = Columns(
    metrics={"id": "index", "name": "name", "pcie": "bus", "%gpu": "util", "mem": "memory", "temp": "temp"},
    feeds={"index": (), "name": ("model",), "bus": ("bus_id",), "util": ("utilization_pct",),
           "memory": ("memory_used_mib", "memory_total_mib"), "temp": ("temperature_c",)},
    ignored=frozenset({"device type", "perf", "pcie lane width", "mpc capable", "ecc mode"}),
)
_MEM = re.compile(r"([\d.]+)\s*(MiB|GiB)\s*\(\s*([\d.]+)\s*(MiB|GiB)\s*\)", re.I)


def _segments(line: str) -> list[tuple[int, str]]:
    """(start offset, text) of each `|`-separated segment of a line."""
    out: list[tuple[int, str]] = []
    start = 0
    for part in line.split("|"):
        out.append((start, part))
        start += len(part) + 1
    return out


def _tokens(start: int, text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for piece in _SPLIT.split(text):
        if piece.strip():
            at = text.find(piece, pos)
            out.append((start + at + (len(piece) - len(piece.lstrip())), piece.strip()))
            pos = at + len(piece)
    return out


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """Cards from the blocks between `+---+` rules; header names from the rows above the first rule."""
    lines = text.splitlines()
    warnings: list[str] = []
    rule = next((i for i, ln in enumerate(lines) if ln.strip().startswith("+-")), None)
    if rule is None:
        return ParseResult(VENDOR, command, warnings=(
            f"{VENDOR}: {command}: no device table found; first line: {first_line(text)}",) if text.strip() else ())
    header_rows: list[str] = []
    i = rule - 1
    while i >= 0 and lines[i].strip() and not lines[i].strip().startswith("-"):
        header_rows.insert(0, lines[i])
        i -= 1
    header_tokens = [tok for row in header_rows for start, seg in _segments(row) for tok in _tokens(start, seg)]
    header_rows_tokens = [[tok for start, seg in _segments(row) for tok in _tokens(start, seg)] for row in header_rows]
    unknown = COLUMNS.unknown([name for row in header_rows_tokens for _, name in row])
    if unknown:
        warnings.append(f"{VENDOR}: {command}: column(s) not known to mixops, not read: "
                        f"{', '.join(repr(n) for n in unknown)}")
    cards: list[CardSample] = []
    block: list[str] = []

    def flush() -> None:
        if not block:
            return
        record: dict[str, str] = {}
        for row_index, row in enumerate(block[: len(header_rows_tokens)]):
            heads = header_rows_tokens[row_index]
            if not heads:
                continue
            for start, seg in _segments(row):
                for at, value in _tokens(start, seg):
                    # the header it starts nearest to; bound to a metric only through COLUMNS
                    key = COLUMNS.key(min(heads, key=lambda h: abs(h[0] - at))[1])
                    if key is not None:
                        record[key] = f"{record[key]} {value}" if key in record else value
        block.clear()
        index = integer(record.get("index"))
        if index is None:
            return
        mem = _MEM.search(record.get("memory", ""))
        used = total = None
        if mem:
            used = float(mem.group(1)) * (1024.0 if mem.group(2).lower() == "gib" else 1.0)
            total = float(mem.group(3)) * (1024.0 if mem.group(4).lower() == "gib" else 1.0)
        card = CardSample(index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus")),
                          health=Health.OK, temperature_c=reading(record.get("temp"), "C"),
                          utilization_pct=reading(record.get("util"), "%"), memory_used_mib=used, memory_total_mib=total)
        cards.append(sanity(card, warnings, command))

    for line in lines[rule + 1:]:
        stripped = line.strip()
        if stripped.startswith("+-") or (stripped.startswith("-") and set(stripped) <= {"-", "+"}):
            flush()
            if stripped.startswith("-"):
                break           # the closing rule before the process table
            continue
        if not stripped:
            flush()
            break
        block.append(line)
    flush()
    del header_tokens
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no device rows; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_table(sections.get("table", ""))
