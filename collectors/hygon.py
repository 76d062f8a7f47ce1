"""Hygon DCU: `hy-smi` / DTK `rocm-smi` concise tables and their `--json` output (DCU and HCU key sets)."""

from __future__ import annotations

import json
import re
from typing import Any

from collectors.model import CardSample, Command, Health, ParseResult, first_line, integer, number, sanity

VENDOR = "hygon"
TOOLS = ("hy-smi",)
JSON_QUERY = ("hy-smi --showid --showmeminfo vram --showpower --showserial --showuse --showtemp "
              "--showproductname --showuniqueid --json")
TABLE = "hy-smi"
PLAN = (Command("json", JSON_QUERY),)

_CARD_KEY = re.compile(r"^card(\d+)$")
_HEADER = re.compile(r"^\s*(DCU|GPU|HCU)\s+Temp\b")


def _find(fields: dict[str, Any], *needles: str) -> str | None:
    """The first value whose key contains all needles (case-insensitive); DTK renamed keys freely."""
    for key, value in fields.items():
        low = key.lower()
        if all(n in low for n in needles):
            return str(value)
    return None


def _json_span(text: str) -> str | None:
    """The `{…}` span: hy-smi may print banners or warnings around its JSON."""
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else None


def parse_json(text: str, command: str = JSON_QUERY) -> ParseResult:
    """Parse `{"card0": {...}}`: 'DCU use (%)' (DTK 24.04) or 'HCU use (%)' (newer), memory in MiB."""
    warnings: list[str] = []
    span = _json_span(text)
    try:
        data = json.loads(span) if span is not None else None
    except ValueError as exc:
        data = _salvage(text)
        warnings.append(f"{VENDOR}: {command}: not valid JSON ({exc}); read {len(data)} complete card object(s); "
                        f"first line: {first_line(text)}")
    if not isinstance(data, dict):
        if not warnings and text.strip():
            warnings.append(f"{VENDOR}: {command}: no JSON object found; first line: {first_line(text)}")
        return ParseResult(VENDOR, command, (), (), tuple(warnings))
    cards: list[CardSample] = []
    for key, fields in data.items():
        m = _CARD_KEY.match(str(key))
        if m is None or not isinstance(fields, dict):
            continue
        temp = (_find(fields, "temperature", "junction") or _find(fields, "temperature", "edge")
                or _find(fields, "temperature"))
        used = _find(fields, "vram", "used")
        total = _find(fields, "vram", "total", "memory")
        if used is not None and total is not None and "(b)" in (_key_of(fields, "vram", "total") or "").lower():
            used_mib, total_mib = _bytes_mib(used), _bytes_mib(total)
        else:
            used_mib, total_mib = number(used), number(total)
        card = CardSample(
            index=int(m.group(1)), model=_find(fields, "card series") or _find(fields, "product name"),
            serial=_clean(_find(fields, "serial")), health=Health.OK,
            temperature_c=number(temp), utilization_pct=number(_find(fields, "use (%)")),
            memory_used_mib=used_mib, memory_total_mib=total_mib,
            power_w=number(_find(fields, "power", "(w)")),
        )
        cards.append(sanity(card, warnings, command))
    cards.sort(key=lambda c: c.index)
    if not cards:
        warnings.append(f"{VENDOR}: {command}: JSON has no cardN entries; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


_CARD_OBJECT = re.compile(r'"(card\d+)"\s*:\s*(\{[^{}]*\})')


def _salvage(text: str) -> dict[str, Any]:
    """The complete `"cardN": {...}` objects of a truncated or interleaved JSON text."""
    out: dict[str, Any] = {}
    for m in _CARD_OBJECT.finditer(text):
        try:
            out[m.group(1)] = json.loads(m.group(2))
        except ValueError:
            continue
    return out


def _key_of(fields: dict[str, Any], *needles: str) -> str | None:
    return next((k for k in fields if all(n in k.lower() for n in needles)), None)


def _bytes_mib(text: str) -> float | None:
    value = number(text)
    return None if value is None else value / 1048576.0


def _clean(text: str | None) -> str | None:
    return None if text is None or not text.strip() or text.strip().upper() == "N/A" else text.strip()


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """Parse the concise table by its header row: DCU/GPU/HCU, Temp (30.0c), AvgPwr, VRAM%, DCU%."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if _HEADER.match(line):
            header = [h.lower() for h in line.split()]
            continue
        if header is None or not line.strip() or line.lstrip().startswith("="):
            continue
        values = line.split()
        index = integer(values[0]) if values and values[0].isdigit() else None
        if index is None:
            continue
        if len(values) != len(header):
            warnings.append(f"{VENDOR}: {command}: row does not match the header: {line.strip()[:120]}")
            continue
        row = dict(zip(header, values, strict=True))
        util = row.get("dcu%") or row.get("gpu%") or row.get("hcu%")
        card = CardSample(index=index, health=Health.OK, temperature_c=number(row.get("temp")),
                          utilization_pct=number(util), power_w=number(row.get("avgpwr")))
        cards.append(sanity(card, warnings, command))
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no card table found; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_json(sections.get("json", ""))
