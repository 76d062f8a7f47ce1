"""Denglin (登临): `dlsmi query --xml-format` (`<dlsmi_log>`, modelled on nvidia-smi's XML)."""

from __future__ import annotations

from collectors import smixml
from collectors.model import Command, ParseResult

VENDOR = "denglin"
TOOLS = ("dlsmi",)
QUERY = "dlsmi query --xml-format"
PLAN = (Command("xml", QUERY),)


def parse_xml(text: str, command: str = QUERY) -> ParseResult:
    """Cards of the XML."""
    return smixml.parse_xml(text, VENDOR, command)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_xml(sections.get("xml", ""))
