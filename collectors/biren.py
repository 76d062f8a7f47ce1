"""Biren (壁仞): `brsmi`. No public capture of its output exists; the one documented command is
`brsmi gpu list` (HAMi's biren-device-plugin). mixops reads it when it prints an nvidia-smi-style
table and otherwise says so, pointing to a site-defined adapter (README, "Site-defined adapters")."""

from __future__ import annotations

from dataclasses import replace

from collectors.model import Command, ParseResult, first_line
from collectors.smitable import parse_smi_table

VENDOR = "biren"
TOOLS = ("brsmi",)
LIST = "brsmi gpu list"
PLAN = (Command("list", LIST),)


def parse_list(text: str, command: str = LIST) -> ParseResult:
    """Cards when the output is a boxed table with GPU/Name/Bus-Id/Temp/Memory-Usage headers."""
    result = parse_smi_table(text, VENDOR, command)
    if result.cards or not text.strip():
        return result
    return replace(result, warnings=(
        f"{VENDOR}: {command}: output format not known to mixops (no public brsmi capture exists); define a "
        f"site adapter for it; first line: {first_line(text)}",))


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_list(sections.get("list", ""))
