"""The ROCm SMI family shared by AMD and Hygon: `rocm-smi`/`hy-smi` `--json` and concise tables.

JSON keys changed with every ROCm/DTK release (`GPU use (%)`, `DCU use (%)`, `HCU use (%)`; memory
in bytes `VRAM Total Memory (B)` on AMD, in MiB `vram Total Memory (MiB)` on Hygon; `Card series`,
`Card model`, `Device Name`). Keys are matched by anchored patterns in order of preference.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import replace
from typing import Any

from collectors.boxtable import Columns, reading
from collectors.model import CardSample, Health, ParseResult, first_line, is_na, number, sanity

_CARD_KEY = re.compile(r"^card(\d+)$")
_CARD_OBJECT = re.compile(r'"(card\d+)"\s*:\s*(\{[^{}]*\})')
_TEMP = (r"temperature \(sensor junction\)", r"temperature \(sensor edge\)", r"temperature \(sensor core\)",
         r"temperature")
_UTIL = (r"(gpu|dcu|hcu) use \(%\)",)
_POWER = (r"average graphics package power", r"current socket graphics package power",
          r"average socket power", r"current socket power")
_MODEL = (r"device name", r"card series", r"card model", r"product name")
_VRAM_TOTAL = (r"vram total memory",)
_VRAM_USED = (r"vram total used memory",)


def _pick(fields: dict[str, Any], patterns: tuple[str, ...], skip_hex: bool = False) -> tuple[str, str] | None:
    """(key, value) of the first key matching a pattern at its start, in pattern order."""
    for pattern in patterns:
        rx = re.compile("^" + pattern, re.I)
        for key, value in fields.items():
            if rx.match(key.strip()):
                text = str(value)
                if skip_hex and re.fullmatch(r"\s*0x[0-9a-fA-F]+\s*", text):
                    continue        # old ROCm prints PCI ids where names belong
                return key, text
    return None


def _mem_mib(hit: tuple[str, str] | None) -> float | None:
    if hit is None:
        return None
    value = number(hit[1])
    if value is None:
        return None
    return value / 1048576.0 if "(b)" in hit[0].lower() else value


def _value(hit: tuple[str, str] | None) -> str | None:
    return None if hit is None else hit[1]


def salvage(text: str) -> dict[str, Any]:
    """The complete `"cardN": {...}` objects of a truncated or interleaved JSON text."""
    out: dict[str, Any] = {}
    for m in _CARD_OBJECT.finditer(text):
        try:
            out[m.group(1)] = json.loads(m.group(2))
        except ValueError:
            continue
    return out


def parse_json(text: str, vendor: str, command: str) -> ParseResult:
    """`{"card0": {...}}`; banners and warnings around the JSON are ignored, truncated JSON salvaged."""
    warnings: list[str] = []
    start, end = text.find("{"), text.rfind("}")
    data: Any = None
    if 0 <= start < end:
        try:
            data = json.loads(text[start:end + 1])
        except ValueError as exc:
            data = salvage(text)
            warnings.append(f"{vendor}: {command}: not valid JSON ({exc}); read {len(data)} complete card "
                            f"object(s); first line: {first_line(text)}")
    if not isinstance(data, dict):
        if text.strip():
            warnings.append(f"{vendor}: {command}: no JSON object found; first line: {first_line(text)}")
        return ParseResult(vendor, command, (), (), tuple(warnings))
    cards: list[CardSample] = []
    for key, fields in data.items():
        m = _CARD_KEY.match(str(key))
        if m is None or not isinstance(fields, dict):
            continue
        serial = _value(_pick(fields, (r"serial number",)))
        card = CardSample(
            index=int(m.group(1)), model=_value(_pick(fields, _MODEL, skip_hex=True)),
            serial=None if serial is None or is_na(serial) or not serial.strip() else serial.strip(),
            health=Health.OK, temperature_c=number(_value(_pick(fields, _TEMP))),
            utilization_pct=number(_value(_pick(fields, _UTIL))),
            memory_used_mib=_mem_mib(_pick(fields, _VRAM_USED)), memory_total_mib=_mem_mib(_pick(fields, _VRAM_TOTAL)),
            power_w=number(_value(_pick(fields, _POWER))),
        )
        cards.append(sanity(card, warnings, command))
    cards.sort(key=lambda c: c.index)
    if not cards:
        warnings.append(f"{vendor}: {command}: JSON has no cardN entries; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), (), tuple(warnings))


_SPLIT = re.compile(r"\S+(?: \S+)*")

# Concise-table headers of ROCm 4.x-7.x rocm-smi and DTK 23-24 hy-smi/rocm-smi. The first column is the
# tool's enumeration (`-d N`). A header not listed is warned about and never read.
# The header line: the device column then at least two more, two spaces apart (not `GPU[0]  : …` lines).
_CONCISE_HEADER = re.compile(r"^\s*(DCU|GPU|HCU|Device)(\s{2,}\S+(?: \S+)*){2,}\s*$")
CONCISE_COLUMNS = Columns(
    metrics={"device": "index", "gpu": "index", "dcu": "index", "hcu": "index", "temp": "temp", "avgpwr": "power",
             "power": "power", "gpu%": "util", "dcu%": "util", "hcu%": "util"},
    feeds={"index": (), "temp": ("temperature_c",), "power": ("power_w",), "util": ("utilization_pct",)},
    ignored=frozenset({"node", "ids", "[model : revision]", "partitions", "sclk", "mclk", "fan", "perf", "pwrcap",
                       "vram%"}),
)


def _tokens(line: str) -> list[tuple[int, str]]:
    """Tokens separated by two or more spaces, with their offsets."""
    return [(m.start(), m.group()) for m in _SPLIT.finditer(line)]


def parse_concise(text: str, vendor: str, command: str) -> ParseResult:
    """The concise table (`DCU|GPU|HCU|Device  Temp …`), ROCm 4 to 6 and DTK; a second line may hold the name."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    header: list[tuple[int, str]] | None = None
    for line in text.splitlines():
        if _CONCISE_HEADER.match(line):
            header = [(at, name.lower()) for at, name in _tokens(line)]
            unknown = CONCISE_COLUMNS.unknown([name for _, name in header])
            if unknown:
                warnings.append(f"{vendor}: {command}: column(s) not known to mixops, not read: "
                                f"{', '.join(repr(n) for n in unknown)}")
            continue
        if header is None or not line.strip() or line.lstrip().startswith("="):
            continue
        values = _tokens(line)
        if not line[:1].isspace() and values and values[0][1].isdigit():
            row: dict[str, str] = {}
            starts = [h[0] for h in header]
            for at, v in values:
                # left-aligned columns: the last header starting at or before the value (never by order,
                # so a blank value cannot shift its neighbours into its column)
                slot = bisect.bisect_right(starts, at + 1) - 1
                if slot < 0:
                    continue
                key = CONCISE_COLUMNS.key(header[slot][1])
                if key is not None:
                    row[key] = f"{row[key]} {v}" if key in row else v
            card = CardSample(index=int(values[0][1]), health=Health.OK,
                              temperature_c=reading(row.get("temp"), "C"), utilization_pct=reading(row.get("util"), "%"),
                              power_w=reading(row.get("power"), "W"))
            cards.append(sanity(card, warnings, command))
        elif cards and values and line[:1].isspace() and cards[-1].model is None:
            cards[-1] = replace(cards[-1], model=values[0][1])
    if not cards and text.strip():
        warnings.append(f"{vendor}: {command}: no card table found; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), (), tuple(warnings))
