"""The nvidia-smi default table and its clones (ixsmi, xpu_smi on P800): cards by header names."""

from __future__ import annotations

from collectors.boxtable import read_cards, used_total, used_total_mib
from collectors.model import (
    CardSample,
    Health,
    ParseResult,
    integer,
    norm_bus_id,
    number,
)


def parse_smi_table(text: str, vendor: str, command: str) -> ParseResult:
    """GPU/XPU number, name, bus id, temperature, power, memory used/total, util, volatile uncorrected ECC."""
    def card(record: dict[str, str], index: int) -> CardSample:
        used, total = used_total_mib(record.get("memory-usage"))
        power, _cap = used_total(record.get("pwr:usage/cap"))
        return CardSample(index=index, model=record.get("name"), bus_id=norm_bus_id(record.get("bus-id")),
                          health=Health.OK, temperature_c=number(record.get("temp")),
                          utilization_pct=number(record.get("gpu-util") or record.get("xpu-util")),
                          memory_used_mib=used, memory_total_mib=total, power_w=number(power),
                          ecc_uncorrected=integer(record.get("volatile uncorr. ecc")))

    return read_cards(text, vendor, command, ("gpu", "xpu"), card)


