"""NVIDIA: `nvidia-smi --query-gpu` CSV and Xid/SXid events from the kernel log."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import datetime

from collectors.fault_catalogs import XID
from collectors.model import (
    Action,
    CardSample,
    Command,
    Fault,
    Health,
    ParseResult,
    Severity,
    first_line,
    integer,
    is_na,
    norm_bus_id,
    number,
    sanity,
)

VENDOR = "nvidia"
TOOLS = ("nvidia-smi",)

QUERY_FIELDS = (
    "index", "uuid", "serial", "name", "pci.bus_id", "temperature.gpu", "utilization.gpu",
    "memory.used", "memory.total", "power.draw", "ecc.errors.uncorrected.volatile.total",
)
QUERY = f"nvidia-smi --query-gpu={','.join(QUERY_FIELDS)} --format=csv,noheader,nounits"
# Xid lines from the kernel log. journalctl honours the cursor; dmesg is the fallback where the
# journal is not readable by the login user. Both are filtered remotely so little text travels.
# `grep -a`: one NUL byte in the kernel log makes grep print "binary file matches" instead of the lines.
KERNEL_LOG = (
    "{ journalctl -k -q --no-pager -o short-iso --since \"@$MIXOPS_SINCE\" 2>/dev/null;"
    " dmesg --time-format=iso 2>/dev/null | tail -n 2000; } | grep -a -E 'NVRM: S?Xid' | tail -n 500"
)
PLAN = (Command("query", QUERY), Command("kmsg", KERNEL_LOG))

# NVIDIA Xid catalog (docs.nvidia.com/deploy/xid-errors) reduced to the ladder: the codes operators
# meet on training clusters. Application-side codes (13, 31, 43, 45, 68, 69) are "watch", as the
# NVIDIA device plugin treats them (they do not mean the card is bad).
XID_LADDER: dict[int, tuple[Severity, Action, str]] = {
    13: (Severity.WARNING, Action.WATCH, "Graphics engine exception (often the application)"),
    31: (Severity.WARNING, Action.WATCH, "GPU memory page fault (often the application)"),
    43: (Severity.INFO, Action.WATCH, "GPU stopped processing (application reset)"),
    45: (Severity.INFO, Action.WATCH, "Preemptive cleanup after previous errors"),
    48: (Severity.CRITICAL, Action.RESET_CARD, "Double-bit ECC error"),
    62: (Severity.CRITICAL, Action.RESET_CARD, "Internal micro-controller halt"),
    63: (Severity.INFO, Action.WATCH, "ECC page retirement / row remapping event"),
    64: (Severity.CRITICAL, Action.RESET_CARD, "ECC page retirement / row remapping failure"),
    68: (Severity.WARNING, Action.WATCH, "NVDEC0 exception"),
    69: (Severity.WARNING, Action.WATCH, "Graphics engine class error"),
    74: (Severity.CRITICAL, Action.RESET_CARD, "NVLink error"),
    79: (Severity.CRITICAL, Action.REBOOT_NODE, "GPU has fallen off the bus"),
    92: (Severity.WARNING, Action.WATCH, "High single-bit ECC error rate"),
    94: (Severity.WARNING, Action.RESTART_JOB, "Contained ECC error"),
    95: (Severity.CRITICAL, Action.RESET_CARD, "Uncontained ECC error"),
    109: (Severity.CRITICAL, Action.RESET_CARD, "Context switch timeout"),
    119: (Severity.CRITICAL, Action.RESET_CARD, "GSP RPC timeout"),
    120: (Severity.CRITICAL, Action.RESET_CARD, "GSP error"),
    121: (Severity.WARNING, Action.WATCH, "C2C link error"),
    140: (Severity.CRITICAL, Action.RESET_CARD, "Unrecovered ECC error"),
    143: (Severity.CRITICAL, Action.RESET_CARD, "GPU initialisation error"),
    154: (Severity.INFO, Action.WATCH, "GPU recovery action changed"),
}
_UNKNOWN_XID = (Severity.WARNING, Action.WATCH, "Xid not in NVIDIA's catalog")
# NVIDIA's immediate resolution (fault_catalogs.XID) on mixops's ladder, for codes not in XID_LADDER.
RESOLUTION_ACTIONS: dict[str, tuple[Severity, Action]] = {
    "IGNORE": (Severity.INFO, Action.IGNORE),
    "RESTART_APP": (Severity.WARNING, Action.RESTART_JOB),
    "CHECK_UVM": (Severity.WARNING, Action.WATCH),
    "UPDATE_SWFW": (Severity.WARNING, Action.WATCH),
    "RESET_GPU": (Severity.CRITICAL, Action.RESET_CARD),
    "RESTART_VM": (Severity.CRITICAL, Action.REBOOT_NODE),
    "RESTART_BM": (Severity.CRITICAL, Action.REBOOT_NODE),
    "CHECK_MECHANICALS": (Severity.CRITICAL, Action.ISOLATE),
    "CONTACT_SUPPORT": (Severity.CRITICAL, Action.ISOLATE),
}


def xid_ladder(code: int) -> tuple[Severity, Action, str]:
    """Severity, action and meaning of an Xid: mixops's table for the codes operators meet on training
    clusters, else NVIDIA's catalog resolution (workflow codes watch), else unknown → watch."""
    if code in XID_LADDER:
        return XID_LADDER[code]
    entry = XID.get(code)
    if entry is None:
        return _UNKNOWN_XID
    resolution, description = entry
    severity, action = RESOLUTION_ACTIONS.get(resolution, (Severity.WARNING, Action.WATCH))
    return severity, action, description or f"Xid {code}"

_XID = re.compile(r"NVRM: (?P<kind>S?Xid) \(PCI:(?P<bus>[0-9a-fA-F:.]+)\): (?P<code>\d+),?\s*(?P<text>.*)")
_ISO = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d)[T ](?P<time>\d\d:\d\d:\d\d)(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?"
)

_FIELD_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_serial": "serial", "gpu_bus_id": "pci.bus_id"}
# The query fields each metric is read from, first reported wins: R535+ add `power.draw.instant` and
# `power.draw.average` (on some boards `power.draw` then prints [N/A]). A column not listed is never read.
METRIC_FIELDS: dict[str, tuple[str, ...]] = {
    "temperature_c": ("temperature.gpu",),
    "utilization_pct": ("utilization.gpu",),
    "memory_used_mib": ("memory.used",),
    "memory_total_mib": ("memory.total",),
    "power_w": ("power.draw", "power.draw.instant", "power.draw.average"),
    "ecc_uncorrected": ("ecc.errors.uncorrected.volatile.total",),
}


def _metric(values: dict[str, str], metric: str) -> float | None:
    for name in METRIC_FIELDS[metric]:
        value = number(values.get(name))
        if value is not None:
            return value
    return None


def _header_key(cell: str) -> str:
    key = cell.strip().split(" [", 1)[0].strip().lower()
    return _FIELD_ALIASES.get(key, key)


def parse_query_csv(text: str, fields: tuple[str, ...] | None = QUERY_FIELDS,
                    command: str = QUERY) -> ParseResult:
    """Parse `--query-gpu` CSV, with or without header and units; columns are found by name."""
    warnings: list[str] = []
    try:
        rows = [r for r in csv.reader(text.replace("\0", "").splitlines(), skipinitialspace=True)
                if any(c.strip() for c in r)]
    except csv.Error as exc:
        return ParseResult(VENDOR, command, warnings=(
            f"nvidia: {command}: not CSV ({exc}); first line: {first_line(text)}",))
    if rows and any(_header_key(c) in ("index", "name", "uuid", "pci.bus_id", "temperature.gpu") for c in rows[0]) \
            and not rows[0][0].strip().isdigit():
        names = [_header_key(c) for c in rows[0]]
        rows = rows[1:]
    elif fields is not None:
        names = list(fields)
    else:
        return ParseResult(VENDOR, command, warnings=(
            f"nvidia: {command}: no header and no field list; first line: {first_line(text)}",))
    cards: list[CardSample] = []
    for pos, row in enumerate(rows):
        if len(row) != len(names):
            warnings.append(f"nvidia: {command}: expected {len(names)} fields, got {len(row)}: "
                            f"{first_line(','.join(row))}")
            continue
        values = dict(zip(names, [c.strip() for c in row], strict=True))
        index = integer(values.get("index"))
        if index is None:
            index = pos
        ecc_value = _metric(values, "ecc_uncorrected")
        ecc = None if ecc_value is None else int(ecc_value)
        serial = values.get("serial")
        uuid = values.get("uuid")
        if serial is None or is_na(serial):
            serial = uuid if uuid is not None and not is_na(uuid) else None
        card = CardSample(
            index=index,
            model=None if is_na(values.get("name", "")) else values.get("name"),
            serial=serial,
            bus_id=norm_bus_id(values.get("pci.bus_id")),
            health=Health.CRITICAL if "[gpu is lost]" in ",".join(row).lower() else Health.OK,
            temperature_c=_metric(values, "temperature_c"),
            utilization_pct=_metric(values, "utilization_pct"),
            memory_used_mib=_metric(values, "memory_used_mib"),
            memory_total_mib=_metric(values, "memory_total_mib"),
            power_w=_metric(values, "power_w"),
            ecc_uncorrected=ecc,
        )
        cards.append(sanity(card, warnings, command))
    if not cards and not warnings and text.strip():
        warnings.append(f"nvidia: {command}: no GPU rows; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse_timestamp(line: str) -> float | None:
    """Unix seconds of an ISO timestamp at the start of a kernel-log line (UTC when no zone)."""
    m = _ISO.search(line[:80])
    if m is None:
        return None
    tz = m.group("tz") or "+00:00"
    if tz == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    frac = m.group("frac") or "0"
    try:
        stamp = datetime.fromisoformat(f"{m.group('date')}T{m.group('time')}{tz}")
    except ValueError:
        return None
    return stamp.timestamp() + float("0." + frac)


def parse_kernel_log(text: str, bus_to_index: dict[str, int] | None = None) -> ParseResult:
    """Xid/SXid events from kernel-log lines; each keeps its raw line as message."""
    faults: list[Fault] = []
    for line in text.splitlines():
        m = _XID.search(line)
        if m is None:
            continue
        code = int(m.group("code"))
        bus = norm_bus_id(m.group("bus") + ("" if "." in m.group("bus") else ".0"))
        card = (bus_to_index or {}).get(bus or "")
        if m.group("kind") == "SXid":
            severity, action, meaning = Severity.WARNING, Action.WATCH, "NVSwitch SXid"
            label = f"SXid {code}"
        else:
            severity, action, meaning = xid_ladder(code)
            label = f"Xid {code}"
        faults.append(Fault(label, severity, action, f"{meaning}: {line.strip()}", card, parse_timestamp(line)))
    return ParseResult(VENDOR, "kernel log", (), tuple(faults), ())


def parse(sections: dict[str, str]) -> ParseResult:
    """Combine one sweep's sections (from PLAN) into cards and faults."""
    query = parse_query_csv(sections.get("query", ""))
    # Bus ids from the last good sweep (the collector passes them as "_bus_map"): a card that fell off
    # the bus (Xid 79) no longer reports its own bus id, yet its Xid must land on it.
    index_by_bus: dict[str, int] = {}
    for line in sections.get("_bus_map", "").splitlines():
        bus, _, idx = line.partition("=")
        if bus and idx.isdigit():
            index_by_bus[bus] = int(idx)
    index_by_bus.update({c.bus_id: c.index for c in query.cards if c.bus_id})
    kmsg = parse_kernel_log(sections.get("kmsg", ""), index_by_bus)
    cards = list(query.cards)
    critical = {f.card_index for f in kmsg.faults if f.severity is Severity.CRITICAL}
    cards = [replace(c, health=Health.CRITICAL) if c.index in critical else c for c in cards]
    return ParseResult(VENDOR, QUERY, tuple(cards), kmsg.faults, query.warnings)
