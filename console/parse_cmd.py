"""`mixops parse`: one captured vendor-tool output to the contract JSON (DESIGN §6)."""

from __future__ import annotations

import re
from typing import Any

from collectors import ascend, cambricon, hygon, metax, nvidia
from collectors.model import ParseResult, strip_ansi


class ParseInputError(Exception):
    """The capture cannot be attributed to a vendor/command mixops reads."""


def detect(text: str) -> tuple[str, str]:
    """Guess (vendor, command) from the text of a capture."""
    if "NVRM: " in text and "Xid" in text:
        return "nvidia", "kernel log"
    if re.search(r"npu-smi\s+\d", text) or re.search(r"^\|\s*NPU\s+.*Name", text, re.M):
        return "ascend", ascend.INFO
    if re.search(r"^\s*Health Status\s*:", text, re.M):
        return "ascend", "npu-smi info -t health"
    if re.search(r"\|\s*CNMON\s+v", text):
        return "cambricon", cambricon.TABLE
    if re.search(r"MX-SMI\s+\d|MetaX System Management", text):
        if re.search(r"^GPU#\d+", text, re.M):
            return "metax", "mx-smi --show-temperature --show-usage --show-memory"
        return "metax", metax.TABLE
    if re.search(r'"card\d+"\s*:', text) and ("DCU" in text or "HCU" in text or "Haiguang" in text):
        return "hygon", hygon.JSON_QUERY
    if re.search(r"^\s*(DCU|HCU)\s+Temp\b", text, re.M):
        return "hygon", hygon.TABLE
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.count(",") >= 2 and ("MiB" in text or first.lower().startswith("index") or re.match(r"\s*\d+,", first)):
        return "nvidia", "nvidia-smi --query-gpu"
    raise ParseInputError("cannot tell which vendor tool printed this; give --vendor and --command")


def parse_capture(text: str, vendor: str | None, command: str | None) -> ParseResult:
    """Parse a capture, detecting vendor and command when they are not given."""
    text = strip_ansi(text)
    if vendor is None or command is None:
        v, c = detect(text)
        vendor, command = vendor or v, command or c
    if vendor == "nvidia":
        if "kernel" in command or "dmesg" in command or "journalctl" in command:
            return nvidia.parse_kernel_log(text)
        fields: tuple[str, ...] | None = nvidia.QUERY_FIELDS
        m = re.search(r"--query-gpu[= ](\S+)", command)
        if m:
            fields = tuple(f.strip() for f in m.group(1).split(",") if f.strip())
        return nvidia.parse_query_csv(text, fields, command)
    if vendor == "ascend":
        if "health" in command:
            npu = re.search(r"-i\s+(\d+)", command)
            chip = re.search(r"-c\s+(\d+)", command)
            return ascend.parse_health(text, int(npu.group(1)) if npu else 0, int(chip.group(1)) if chip else 0,
                                       command)
        return ascend.parse_info(text, command)
    if vendor == "cambricon":
        return cambricon.parse_table(text, command)
    if vendor == "metax":
        return metax.parse_show(text, command) if "--show" in command else metax.parse_table(text, command)
    if vendor == "hygon":
        return hygon.parse_json(text, command) if "json" in command else hygon.parse_table(text, command)
    raise ParseInputError(f"vendor '{vendor}' has no parser in this version of mixops "
                          "(nvidia, ascend, hygon, cambricon, metax)")


def to_json(result: ParseResult) -> dict[str, Any]:
    """The contract object of parse-output.schema.json."""
    return {
        "vendor": result.vendor,
        "command": result.command,
        "cards": [{
            "index": c.index, "chip": c.chip, "model": c.model, "serial": c.serial, "bus_id": c.bus_id,
            "health": c.health.value, "temperature_c": c.temperature_c, "utilization_pct": c.utilization_pct,
            "memory_used_mib": c.memory_used_mib, "memory_total_mib": c.memory_total_mib, "power_w": c.power_w,
            "ecc_uncorrected": c.ecc_uncorrected,
        } for c in result.cards],
        "faults": [{"code": f.code, "severity": f.severity.value, "action": f.action.value,
                    "message": f.message, "card_index": f.card_index} for f in result.faults],
        "warnings": list(result.warnings),
    }
