"""Typed results shared by every vendor parser and the SSH layer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Health(StrEnum):
    """Card health on one scale for every vendor."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    """Severity of a raw vendor fault."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Action(StrEnum):
    """The fault ladder (DESIGN §3), mildest first."""

    IGNORE = "ignore"
    WATCH = "watch"
    RESTART_JOB = "restart_job"
    RESET_CARD = "reset_card"
    REBOOT_NODE = "reboot_node"
    ISOLATE = "isolate"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class CardSample:
    """One reading of one card; every metric the vendor did not report is None, never 0."""

    index: int
    chip: int | None = None
    model: str | None = None
    serial: str | None = None
    bus_id: str | None = None
    health: Health = Health.UNKNOWN
    temperature_c: float | None = None
    utilization_pct: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    power_w: float | None = None
    ecc_uncorrected: int | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """A raw vendor event kept with its original code and text."""

    code: str
    severity: Severity
    action: Action
    message: str
    card_index: int | None = None
    ts: float | None = None


class LinkState(StrEnum):
    """State of one interconnect link or RDMA port on one scale for every vendor."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Link:
    """One reading of one link (NVLink lane, HCCS, a RoCE/InfiniBand port); what was not printed is None.

    `counters` are the running totals as the tool prints them (None for an N/A value, never 0); the store
    keeps their increase per sweep. `card_index` is None for a NIC that belongs to no card."""

    kind: str
    link: str
    card_index: int | None = None
    peer: str | None = None
    state: LinkState = LinkState.UNKNOWN
    speed_gbps: float | None = None
    counters: dict[str, int | None] = field(default_factory=dict)
    detail: str | None = None       # a vendor status line besides up/down (Ascend's net health)


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What one parser made of one command's output."""

    vendor: str
    command: str
    cards: tuple[CardSample, ...] = ()
    faults: tuple[Fault, ...] = ()
    warnings: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    # link sources (collectors.links) the node does not have: left out of its later plans
    links_missing: tuple[str, ...] = ()
    # link sources whose output is the same as in the last sweep (the node compared checksums): their links
    # are as stored; and each source's checksum, for the next sweep's plan
    links_same: tuple[str, ...] = ()
    links_digest: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of a vendor's command plan: a section name and a constant shell command."""

    section: str
    shell: str


@dataclass(frozen=True, slots=True)
class NodeReport:
    """The outcome of one node in one sweep: ok or failed with its reason, always with a duration."""

    node: str
    ok: bool
    started: float
    duration_s: float
    vendor: str | None = None
    cards: tuple[CardSample, ...] = ()
    faults: tuple[Fault, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None
    raw: dict[str, str] = field(default_factory=dict)
    tools: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)   # sections of extra commands (training jobs)
    links: tuple[Link, ...] = ()
    links_same: tuple[str, ...] = ()        # link sources unchanged since the last sweep (links as stored)


# ---- helpers for parsers: tolerant number reading -------------------------------------------------

_NA = {"", "n/a", "na", "[n/a]", "[not supported]", "not supported", "unknown", "-", "--", "none",
       "[requested functionality has been deprecated]", "[unknown error]", "[gpu is lost]"}
_NUM = re.compile(r"[-+]?\d+(?:\.\d+)?")


def is_na(text: str) -> bool:
    """True for the spellings vendors use for 'not available'."""
    return text.strip().lower() in _NA


def number(text: str | None) -> float | None:
    """The first number in text, or None for N/A spellings and text without a number."""
    if text is None:
        return None
    try:
        value = float(text)                 # the common case: a plain number (fast path)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    if is_na(text):
        return None
    m = _NUM.search(text.replace(",", ""))
    if m is None:
        return None
    value = float(m.group())
    return value if math.isfinite(value) else None


def integer(text: str | None) -> int | None:
    """Like number() but integral."""
    value = number(text)
    return None if value is None else int(value)


_UNIT = re.compile(r"\d\s*([KMG]i?B|B)\b", re.I)
_TO_MIB = {"b": 1 / 1048576, "kb": 1 / 1024, "kib": 1 / 1024, "mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0}


def mebibytes(text: str | None, default_unit: str = "MiB") -> float | None:
    """A memory amount in MiB from '826 MiB', '61215720 KB', '80 GiB' (the default unit when none is written)."""
    value = number(text)
    if value is None or text is None:
        return None
    m = _UNIT.search(text)
    return value * _TO_MIB.get((m.group(1) if m else default_unit).lower(), 1.0)


def memory_unit(text: str | None) -> str | None:
    """The memory unit written in text, if any."""
    m = _UNIT.search(text or "")
    return m.group(1) if m else None


def norm_bus_id(text: str | None) -> str | None:
    """Normalise a PCI bus id to DDDD:BB:DD.F lower-case (NVIDIA prints an 8-digit domain)."""
    if text is None or is_na(text):
        return None
    m = re.search(r"(?:([0-9a-fA-F]{4,8}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", text)
    if m is None:
        return None
    domain = (m.group(1) or "0000")[-4:]
    return f"{domain}:{m.group(2)}:{m.group(3)}.{m.group(4)}".lower()


ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences some tools print even without a TTY."""
    return ANSI.sub("", text)


def first_line(text: str, limit: int = 120) -> str:
    """The first non-blank line, shortened for a one-line message."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return "(empty)"


# used > total is impossible beyond what printing both rounded can explain (a tool that prints GiB rounds
# each to the unit; 2 % covers a GiB on an 80 GiB card)
MEMORY_MARGIN_MIB = 64.0
MEMORY_MARGIN_RATIO = 0.02


def sanity(card: CardSample, warnings: list[str], command: str) -> CardSample:
    """Drop impossible readings (a hung card's 65535 W, 0 °C at full load, negative memory or more memory used
    than the card has) and mark the card critical."""
    bad: list[str] = []
    temp, power, util = card.temperature_c, card.power_w, card.utilization_pct
    used, total = card.memory_used_mib, card.memory_total_mib
    if used is not None and used < 0:
        bad.append(f"memory used {used:,.0f} MiB")
        used = None
    if total is not None and total < 0:
        bad.append(f"memory total {total:,.0f} MiB")
        total = None
    if used is not None and total is not None and used > total * (1 + MEMORY_MARGIN_RATIO) + MEMORY_MARGIN_MIB:
        bad.append(f"memory used {used:,.0f} MiB > total {total:,.0f} MiB")
        used = total = None         # which of the two is wrong cannot be told: neither is shown
    if temp is not None and not -40 <= temp <= 150:
        bad.append(f"temperature {temp:g} C")
        temp = None
    if power is not None and not 0 <= power <= 5000:
        bad.append(f"power {power:g} W")
        power = None
    if util is not None and not 0 <= util <= 100:
        bad.append(f"utilization {util:g} %")
        util = None
    if card.temperature_c == 0 and util is not None and util >= 100:
        bad.append("0 C at 100 % utilization")
        temp = util = None          # the hung-card signature: neither reading is real
    health = card.health
    # An ECC count is a running total, not a state: the ladder reports it and a sweep counts only its
    # increase (console.counters), so it does not make the card critical here.
    if health is Health.OK and all(v is None for v in (temp, power, util, used)):
        health = Health.UNKNOWN  # a listed card that reports nothing is not known to be healthy
    if not bad:
        return card if health is card.health else replace(card, health=health)
    warnings.append(f"card {card.index}: impossible values ({', '.join(bad)}) from {command}; "
                    "treated as a device fault")
    return replace(card, temperature_c=temp, power_w=power, utilization_pct=util, memory_used_mib=used,
                   memory_total_mib=total, health=Health.CRITICAL)
