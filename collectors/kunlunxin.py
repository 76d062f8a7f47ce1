"""Kunlunxin (昆仑芯): `xpu_smi -m` rows, the P800 table (driver 5.x) and the R-series table (driver 4.x).

`xpu_smi -m` prints one space-separated line per device with the model quoted. Fields by position
(siltide's collector and Kunlunxin's docs): 0 BDF, 1 device id, 3 SN, 4 temperature °C, 8 power W,
15/16 L3 used/total MiB, 17/18 HBM used/total MiB, 19 utilization %, then firmware and "model".
"""

from __future__ import annotations

import shlex

from collectors.boxtable import pipe_grid, used_total_mib
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
from collectors.smitable import parse_smi_table

VENDOR = "kunlunxin"
# Intel ships a different `xpu-smi`: the tool is trusted only when a PCI device of vendor 0x1d22 exists.
TOOLS = ("xpu_smi", "xpu-smi")
PCI_VENDOR = "0x1d22"
QUERY = "$(command -v xpu_smi || command -v xpu-smi) -m"
PLAN = (Command("rows", QUERY),)

# The R200/R300 `DEVICES` grid of driver 4.x; DevID is xpu_smi's enumeration. Columns not listed are warned.
GRID_COLUMNS: dict[str, str] = {"devid": "index", "pci addr": "bus", "model": "model", "sn": "serial",
                                "userate": "util", "memory": "memory"}
GRID_IGNORED = frozenset({"inode", "l3"})


def parse_rows(text: str, command: str = "xpu_smi -m") -> ParseResult:
    """One card per `-m` line."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            f = shlex.split(line)
        except ValueError:
            warnings.append(f"{VENDOR}: {command}: unbalanced quotes: {line.strip()[:120]}")
            continue
        if len(f) < 20 or norm_bus_id(f[0]) is None:
            warnings.append(f"{VENDOR}: {command}: expected >= 20 fields starting with a PCI address: "
                            f"{line.strip()[:120]}")
            continue
        model = next((x for x in f[20:] if not x.replace(".", "").replace(":", "").isdigit()), None)
        serial = None if is_na(f[3]) else f[3]
        index = integer(f[1])
        card = CardSample(index=len(cards) if index is None else index, model=model, serial=serial, bus_id=norm_bus_id(f[0]),
                          health=Health.OK, temperature_c=number(f[4]), power_w=number(f[8]),
                          memory_used_mib=number(f[17]), memory_total_mib=number(f[18]),
                          utilization_pct=number(f[19]))
        cards.append(sanity(card, warnings, command))
    if not cards and text.strip() and not warnings:
        warnings.append(f"{VENDOR}: {command}: no device lines; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse_table(text: str, command: str = "xpu_smi") -> ParseResult:
    """The default table: nvidia-style on P800 (driver 5.x), a DEVICES grid on R200/R300 (driver 4.x)."""
    if "DEVICES" in text and "DevID" in text:
        warnings: list[str] = []
        cards: list[CardSample] = []
        grid = pipe_grid(text, "DevID")
        unknown = [h for h in (grid[0] if grid else {}) if h not in GRID_COLUMNS and h not in GRID_IGNORED]
        if unknown:
            warnings.append(f"{VENDOR}: {command}: column(s) not known to mixops, not read: "
                            f"{', '.join(repr(h) for h in unknown)}")
        for raw in grid:
            row = {GRID_COLUMNS[h]: v for h, v in raw.items() if h in GRID_COLUMNS}
            index = integer(row.get("index"))
            if index is None:
                continue
            used, total = used_total_mib(row.get("memory"))
            card = CardSample(index=index, model=row.get("model"), serial=row.get("serial") or None,
                              bus_id=norm_bus_id(row.get("bus")), health=Health.OK,
                              utilization_pct=number(row.get("util")),
                              memory_used_mib=used, memory_total_mib=total)
            cards.append(sanity(card, warnings, command))
        if not cards:
            warnings.append(f"{VENDOR}: {command}: DEVICES table has no rows; first line: {first_line(text)}")
        return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))
    return parse_smi_table(text, VENDOR, command)


def parse(sections: dict[str, str]) -> ParseResult:
    """One sweep's sections (from PLAN) to cards."""
    return parse_rows(sections.get("rows", ""))
