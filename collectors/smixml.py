"""nvidia-smi-style XML (`nvidia-smi -q -x` DTD v10-v13, `ixsmi -q -x`, `dlsmi query --xml-format`).

The three tools share the layout of NVIDIA's `<gpu>` element but renamed fields across versions and
vendors; every field is looked up through a list of known paths, first present wins.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from collectors.ladder import ecc_fault
from collectors.model import (
    CardSample,
    Fault,
    Health,
    ParseResult,
    first_line,
    integer,
    is_na,
    norm_bus_id,
    number,
    sanity,
)

_TEMP = ("temperature/gpu_temp", "temperature/gpu_current_temp")
_UTIL = ("utilization/gpu_util", "utilization/gpu")
_MEM_USED = ("fb_memory_usage/used", "memory_usage/used")
_MEM_TOTAL = ("fb_memory_usage/total", "memory_usage/total")
_POWER = ("power_readings/power_draw", "gpu_power_readings/instant_power_draw",
          "gpu_power_readings/average_power_draw", "gpu_power_readings/power_draw", "power_readings/gpu_power_draw")
_SERIAL = ("serial", "serial_number")
_BUS = ("pci/pci_bus_id", "pci/bus_id")
_ECC_UE = ("ecc_errors/volatile/dram_uncorrectable", "ecc_errors/volatile/double_bit/total",
           "ecc_errors/double_bit")
_ECC_UE_SRAM = ("ecc_errors/volatile/sram_uncorrectable", "ecc_errors/volatile/sram_uncorrectable_parity",
                "ecc_errors/volatile/sram_uncorrectable_secded")


def _first(gpu: ET.Element, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        node = gpu.find(path)
        if node is not None and node.text is not None and node.text.strip():
            return node.text.strip()
    return None


def _mib(text: str | None) -> float | None:
    value = number(text)
    if value is None or text is None:
        return None
    unit = text.lower()
    if "gib" in unit or unit.endswith("gb"):
        return value * 1024.0
    if "kib" in unit or unit.endswith("kb"):
        return value / 1024.0
    return value


def parse_xml(text: str, vendor: str, command: str) -> ParseResult:
    """Cards from the `<gpu>` elements; ECC uncorrectable summed over DRAM and SRAM when reported."""
    start = text.find("<?xml")
    if start < 0:
        start = text.find("<")
    try:
        root = ET.fromstring(text[start:] if start >= 0 else text)
    except ET.ParseError as exc:
        return ParseResult(vendor, command, warnings=(
            f"{vendor}: {command}: not well-formed XML ({exc}); first line: {first_line(text)}",))
    warnings: list[str] = []
    cards: list[CardSample] = []
    faults: list[Fault] = []
    for pos, gpu in enumerate(root.findall("gpu")):
        index = integer(_first(gpu, ("minor_number",)))
        if index is None:
            index = pos
        ecc_parts = [integer(_first(gpu, (p,))) for p in _ECC_UE + _ECC_UE_SRAM]
        known = [e for e in ecc_parts if e is not None]
        ecc = sum(known) if known else None
        serial = _first(gpu, _SERIAL)
        card = CardSample(
            index=index, model=_first(gpu, ("product_name",)),
            serial=None if serial is None or is_na(serial) else serial,
            bus_id=norm_bus_id(_first(gpu, _BUS) or gpu.get("id")), health=Health.OK,
            temperature_c=number(_first(gpu, _TEMP)), utilization_pct=number(_first(gpu, _UTIL)),
            memory_used_mib=_mib(_first(gpu, _MEM_USED)), memory_total_mib=_mib(_first(gpu, _MEM_TOTAL)),
            power_w=number(_first(gpu, _POWER)), ecc_uncorrected=ecc,
        )
        cards.append(sanity(card, warnings, command))
        if ecc:
            faults.append(ecc_fault(vendor, index, ecc, command))
    if not cards:
        warnings.append(f"{vendor}: {command}: no <gpu> element; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), tuple(faults), tuple(warnings))
