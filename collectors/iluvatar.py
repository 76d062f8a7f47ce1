"""Iluvatar CoreX (天数智芯): `ixsmi` table, `--query-gpu` CSV and `-q -x` XML (tools in /usr/local/corex/bin)."""

from __future__ import annotations

from dataclasses import replace

from collectors import nvidia, smixml
from collectors.model import Command, ParseResult
from collectors.smitable import parse_smi_table

VENDOR = "iluvatar"
TOOLS = ("ixsmi",)
QUERY_FIELDS = ("index", "name", "serial", "pci.bus_id", "temperature.gpu", "utilization.gpu", "memory.used",
                "memory.total", "power.draw")
# The corex tools are not on the login PATH by default; the library path is needed by ixsmi.
_ENV = "PATH=/usr/local/corex/bin:$PATH LD_LIBRARY_PATH=/usr/local/corex/lib64:/usr/local/corex/lib"
QUERY = f"{_ENV} ixsmi --query-gpu={','.join(QUERY_FIELDS)} --format=csv,noheader,nounits"
PLAN = (Command("query", QUERY),)


def parse_query_csv(text: str, fields: tuple[str, ...] | None = QUERY_FIELDS, command: str = QUERY) -> ParseResult:
    """The CSV is nvidia-smi's format (with or without header and units)."""
    result = nvidia.parse_query_csv(text, fields, command)
    return replace(result, vendor=VENDOR,
                   warnings=tuple(w.replace("nvidia: ", f"{VENDOR}: ", 1) for w in result.warnings))


def parse_table(text: str, command: str = "ixsmi") -> ParseResult:
    """The default `ixsmi` table (Clock-SM/Clock-Mem instead of ECC); a hung card's 65535 W is caught."""
    return parse_smi_table(text, VENDOR, command)


def parse_xml(text: str, command: str = "ixsmi -q -x") -> ParseResult:
    """`ixsmi -q -x` (`<ixsmi_log>`)."""
    return smixml.parse_xml(text, VENDOR, command)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_query_csv(sections.get("query", ""))
