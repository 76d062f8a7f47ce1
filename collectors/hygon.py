"""Hygon DCU: `hy-smi` / DTK `rocm-smi` concise tables and their `--json` output (DCU and HCU key sets)."""

from __future__ import annotations

from collectors import rocm
from collectors.model import Command, ParseResult

VENDOR = "hygon"
TOOLS = ("hy-smi",)
JSON_QUERY = ("hy-smi --showid --showmeminfo vram --showpower --showserial --showuse --showtemp "
              "--showproductname --showuniqueid --json")
TABLE = "hy-smi"
PLAN = (Command("json", JSON_QUERY),)


def parse_json(text: str, command: str = JSON_QUERY) -> ParseResult:
    """`{"card0": {...}}`: 'DCU use (%)' (DTK 24.04) or 'HCU use (%)' (newer), memory in MiB."""
    return rocm.parse_json(text, VENDOR, command)


def parse_table(text: str, command: str = TABLE) -> ParseResult:
    """The concise table: DCU/GPU/HCU, Temp (30.0c), AvgPwr, VRAM%, DCU%."""
    return rocm.parse_concise(text, VENDOR, command)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_json(sections.get("json", ""))
