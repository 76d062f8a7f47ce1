"""Site-defined adapters: a vendor mixops does not know, described in the site file alone.

An adapter names a command, the kind of its output (CSV with a header, JSON lines, or `key: value`
blocks) and a mapping from its fields to the sample fields, with units. The command text comes from
the operator's site file; nothing of a node's output is ever executed or put into a command.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from collectors.model import (
    CardSample,
    Command,
    Health,
    ParseResult,
    first_line,
    integer,
    is_na,
    norm_bus_id,
    number,
    sanity,
)

KINDS = ("csv", "jsonl", "kv")
TARGETS = ("index", "model", "serial", "bus_id", "health", "temperature_c", "utilization_pct", "memory_used_mib",
           "memory_total_mib", "power_w", "ecc_uncorrected")
# unit → factor to the sample field's unit, per target family
UNITS: dict[str, dict[str, float]] = {
    "memory": {"B": 1 / 1048576, "KB": 1 / 1024, "KiB": 1 / 1024, "MB": 1.0, "MiB": 1.0, "GB": 1024.0,
               "GiB": 1024.0},
    "power": {"W": 1.0, "mW": 0.001, "kW": 1000.0},
    "temperature": {"C": 1.0, "mC": 0.001, "cC": 0.01},
    "utilization": {"%": 1.0, "fraction": 100.0, "permille": 0.1},
}
_FAMILY = {"memory_used_mib": "memory", "memory_total_mib": "memory", "power_w": "power",
           "temperature_c": "temperature", "utilization_pct": "utilization"}


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where one sample field comes from."""

    source: str
    unit: str | None = None
    ok: tuple[str, ...] = ("ok", "normal", "healthy", "available")
    critical: tuple[str, ...] = ("error", "critical", "fault", "failed", "lost")


@dataclass(frozen=True, slots=True)
class Adapter:
    """One site-defined vendor tool."""

    name: str
    tool: str
    command: str
    kind: str
    fields: dict[str, FieldMap] = field(default_factory=dict)
    block_start: str | None = None

    @property
    def tools(self) -> tuple[str, ...]:
        """Executables whose presence on a node means this vendor."""
        return (self.tool,)

    def plan(self, _previous: ParseResult | None = None) -> tuple[Command, ...]:
        """The sweep's one command."""
        return (Command("adapter", self.command),)

    def parse(self, sections: dict[str, str]) -> ParseResult:
        """One sweep's output to cards."""
        return parse_output(self, sections.get("adapter", ""))


def _records(adapter: Adapter, text: str, warnings: list[str]) -> list[dict[str, str]]:
    name, command = adapter.name, adapter.command
    if adapter.kind == "csv":
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), skipinitialspace=True))
        except csv.Error as exc:
            warnings.append(f"{name}: {command}: unreadable CSV ({exc}); first line: {first_line(text)}")
            return []
        if not rows:
            return []
        header = [h.strip() for h in rows[0]]
        out = []
        for row in rows[1:]:
            if len(row) != len(header):
                warnings.append(f"{name}: {command}: expected {len(header)} fields, got {len(row)}: "
                                f"{first_line(','.join(row))}")
                continue
            out.append(dict(zip(header, (c.strip() for c in row), strict=True)))
        return out
    if adapter.kind == "jsonl":
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                warnings.append(f"{name}: {command}: not a JSON object: {line.strip()[:120]}")
                continue
            if isinstance(obj, dict):
                out.append({str(k): "" if v is None else str(v) for k, v in _flatten(obj).items()})
        return out
    # kv: `key: value` (or `key = value`) lines; a line matching block_start opens a new card
    start = re.compile(adapter.block_start) if adapter.block_start else None
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if start is not None and start.search(line):
            current = {}
            blocks.append(current)
        m = re.match(r"^\s*([^:=]+?)\s*[:=]\s*(.*?)\s*$", line)
        if m is None:
            continue
        if current is None:
            current = {}
            blocks.append(current)
        current.setdefault(m.group(1), m.group(2))
    return blocks


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _convert(target: str, raw: str | None, spec: FieldMap) -> Any:
    if raw is None or is_na(raw):
        return None
    if target in ("model", "serial"):
        return raw.strip() or None
    if target == "bus_id":
        return norm_bus_id(raw)
    if target in ("index", "ecc_uncorrected"):
        return integer(raw)
    if target == "health":
        low = raw.strip().lower()
        if low in (s.lower() for s in spec.ok):
            return Health.OK
        if low in (s.lower() for s in spec.critical):
            return Health.CRITICAL
        return Health.WARNING
    value = number(raw)
    if value is None:
        return None
    family = _FAMILY.get(target)
    if family and spec.unit:
        value *= UNITS[family][spec.unit]
    return value


def parse_output(adapter: Adapter, text: str) -> ParseResult:
    """Cards from the adapter's output by its field map; unknown or missing fields stay None."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    for pos, record in enumerate(_records(adapter, text, warnings)):
        values: dict[str, Any] = {}
        for target, spec in adapter.fields.items():
            values[target] = _convert(target, record.get(spec.source), spec)
        index = values.pop("index", None)
        health = values.pop("health", None) or Health.OK
        card = CardSample(index=pos if index is None else index, health=health, **values)
        cards.append(sanity(card, warnings, adapter.command))
    if not cards and text.strip() and not warnings:
        warnings.append(f"{adapter.name}: {adapter.command}: no card records; first line: {first_line(text)}")
    return ParseResult(adapter.name, adapter.command, tuple(cards), (), tuple(warnings))
