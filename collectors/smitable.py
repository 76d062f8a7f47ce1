"""The nvidia-smi default table and its clones (ixsmi, xpu_smi on P800): cards by header names."""

from __future__ import annotations

from collectors.boxtable import Columns, read_cards, reading, used_total, used_total_mib
from collectors.model import (
    CardSample,
    Health,
    ParseResult,
    integer,
    norm_bus_id,
    number,
)

FEEDS: dict[str, tuple[str, ...]] = {
    "index": (), "name": ("model",), "bus": ("bus_id",), "temp": ("temperature_c",), "power": ("power_w",),
    "memory": ("memory_used_mib", "memory_total_mib"), "util": ("utilization_pct",), "ecc": ("ecc_uncorrected",),
}
# Header spellings seen in nvidia-smi 470-595, ixsmi 3.0-4.2 and xpu_smi 5.x (P800). `GPU`/`XPU` is the
# tool's enumeration (what `-i N` takes). The MIG devices table (`GPU GI CI MIG`, nvidia-smi >= 450 with
# MIG on) holds instances inside a GPU: never read as cards.
COLUMNS = Columns(
    metrics={"gpu": "index", "xpu": "index", "name": "name", "bus-id": "bus", "temp": "temp",
             "pwr:usage/cap": "power", "memory-usage": "memory", "gpu-util": "util", "xpu-util": "util",
             "volatile uncorr. ecc": "ecc"},
    feeds=FEEDS,
    ignored=frozenset({"persistence-m", "disp.a", "fan", "perf", "compute m.", "mig m.", "clock-sm", "clock-mem",
                       "l3-usage", "sr-iov m."}),
    subdevice=frozenset({"gi", "ci", "mig"}),
)


def parse_smi_table(text: str, vendor: str, command: str) -> ParseResult:
    """GPU/XPU number, name, bus id, temperature, power, memory used/total, util, volatile uncorrected ECC."""
    def card(record: dict[str, str], index: int) -> CardSample:
        used, total = used_total_mib(record.get("memory"))
        power, _cap = used_total(record.get("power"))
        return CardSample(index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus")),
                          health=Health.OK, temperature_c=reading(record.get("temp"), "C"),
                          utilization_pct=reading(record.get("util"), "%"),
                          memory_used_mib=used, memory_total_mib=total, power_w=number(power),
                          ecc_uncorrected=integer(record.get("ecc")))

    return read_cards(text, vendor, command, COLUMNS, card)
