"""Huawei Ascend: `npu-smi info` tables (20.x to 25.x layouts) and `npu-smi info -t health`."""

from __future__ import annotations

import re

from collectors.fault_catalogs import ASCEND_LEVEL
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

VENDOR = "ascend"
TOOLS = ("npu-smi",)
INFO = "npu-smi info"
PLAN = (Command("info", INFO),)

_HEALTH = {"ok": Health.OK, "warning": Health.WARNING, "alarm": Health.CRITICAL,
           "critical": Health.CRITICAL, "general warning": Health.WARNING,
           "important warning": Health.CRITICAL, "urgent warning": Health.CRITICAL}
_PAIR = re.compile(r"(\S+)\s*/\s*(\S+)|(\S+)")
_HEADER_TOKEN = re.compile(r"[A-Za-z][\w-]*(?: [A-Za-z][\w-]*)?\([^)]*\)|[A-Za-z][\w-]*")


def health_command(npu: int, chip: int) -> Command:
    """The per-chip health query; ids are integers from an earlier parse, never raw text."""
    return Command(f"health.{int(npu)}.{int(chip)}", f"npu-smi info -t health -i {int(npu)} -c {int(chip)}")


def plan(unhealthy: tuple[tuple[int, int], ...] = ()) -> tuple[Command, ...]:
    """The sweep's commands: the table, plus the health detail of chips the last table flagged."""
    return PLAN + tuple(health_command(n, c) for n, c in unhealthy[:16])


# The metric columns of the table's third cell, by the header spellings npu-smi 20.2-25.5 print; a
# column not listed is never read (one warning per table), a column that is absent gives None.
# 25.6 (Ascend 950) prints `NPU Util(%)` where earlier releases print `AICore(%)`.
METRIC_COLUMNS: dict[str, str] = {
    "power(w)": "power", "temp(c)": "temp", "aicore(%)": "aicore", "npu util(%)": "aicore",
    "memory-usage(mb)": "memory", "hbm-usage(mb)": "hbm",
}
COLUMN_FEEDS: dict[str, tuple[str, ...]] = {
    "power": ("power_w",), "temp": ("temperature_c",), "aicore": ("utilization_pct",),
    "memory": ("memory_used_mib", "memory_total_mib"), "hbm": ("memory_used_mib", "memory_total_mib"),
}
IGNORED_COLUMNS = frozenset({"hugepages-usage(page)"})


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _raw_cell(line: str, n: int) -> str:
    """The n-th `|` cell of a row as printed (not stripped: offsets line up with the header's)."""
    parts = line.strip().split("|")
    return parts[n + 1] if len(parts) > n + 1 else ""


Header = list[tuple[int, str]]


def _header(cell: str) -> Header:
    return [(m.start(), m.group().lower()) for m in _HEADER_TOKEN.finditer(cell)]


def _mapped(header: Header, cell: str) -> dict[str, tuple[str, str | None]]:
    """Value tokens ('used / total' pairs kept together) bound to header names: by order when the counts
    match, else each to the header it starts under (npu-smi left-aligns values under their header), so a
    blank value never shifts its neighbours into the wrong column."""
    values: list[tuple[int, tuple[str, str | None]]] = []
    for m in _PAIR.finditer(cell):
        values.append((m.start(), (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), None)))
    if len(values) == len(header):
        return {name: v for (_, name), (_, v) in zip(header, values, strict=True)}
    out: dict[str, tuple[str, str | None]] = {}
    for at, value in values:
        under = [name for start, name in header if start <= at + 1]
        if under and under[-1] not in out:
            out[under[-1]] = value
    return out


def _read(mapped: dict[str, tuple[str, str | None]]) -> dict[str, tuple[str, str | None]]:
    return {METRIC_COLUMNS[name]: v for name, v in mapped.items() if name in METRIC_COLUMNS}


def parse_info(text: str, command: str = INFO) -> ParseResult:
    """Parse the `npu-smi info` table by its two header rows; the process table is ignored.

    Two layouts: `| NPU Name | Health | metrics |` over `| Chip [Device|Phy-ID] | Bus-Id | metrics |`
    (20.x-25.5), and 25.6's `| NPU ID | Name | Health | metrics |` over `| | | Bus-Id | metrics |` (one die
    per NPU: no chip column, chip 0)."""
    warnings: list[str] = []
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("|")]
    head1: Header | None = None
    head2: Header | None = None
    cards: list[CardSample] = []
    pending: list[str] | None = None
    pending_line = ""
    at1 = at2 = 1           # the Health cell of row 1, the Bus-Id cell of row 2
    for line in lines:
        cells = _cells(line)
        if len(cells) < 3:
            continue
        first = cells[0].lower()
        lowered = [c.lower() for c in cells]
        if first.startswith("npu") and "health" in lowered[1:3] and "process" not in line.lower():
            at1 = lowered.index("health", 1)
            head1 = _header(_raw_cell(line, at1 + 1))
            continue
        if (first.startswith("chip") or not first) and "bus-id" in lowered[1:3]:
            at2 = lowered.index("bus-id", 1)
            head2 = _header(_raw_cell(line, at2 + 1))
            unknown = [n for _, n in head1 or []] + [n for _, n in head2]
            unknown = [n for n in unknown if n not in METRIC_COLUMNS and n not in IGNORED_COLUMNS]
            if unknown:
                warnings.append(f"ascend: {command}: column(s) not known to mixops, not read: "
                                f"{', '.join(repr(n) for n in unknown)}")
            continue
        if "process" in line.lower() or "no running processes" in line.lower():
            if head1 is not None:
                break
            continue
        if head1 is None or head2 is None:
            continue
        if pending is None:
            pending, pending_line = cells, line
            continue
        row1, row2, pending = pending, cells, None
        if len(row1) <= at1 + 1 or len(row2) <= at2 + 1:
            warnings.append(f"ascend: {command}: cannot read row: {first_line(pending_line)}")
            continue
        ident = " ".join(row1[:at1])
        chip = row2[0] if at2 == 1 else (row2[0] or "0")
        card = _card(ident, row1[at1], chip, row2[at2], _read(_mapped(head1, _raw_cell(pending_line, at1 + 1))),
                     _read(_mapped(head2, _raw_cell(line, at2 + 1))), warnings, command,
                     hbm_column=any(METRIC_COLUMNS.get(n) == "hbm" for _, n in head2))
        if card is not None:
            cards.append(card)
    if pending is not None:
        warnings.append(f"ascend: {command}: table ends after half a row: {first_line('|'.join(pending))}")
    if head1 is not None and not cards and not warnings:
        warnings.append(f"ascend: {command}: table header but no NPU rows (output cut short?); "
                        f"last line: {first_line(lines[-1] if lines else text)}")
    if head1 is None:
        warnings.append(f"ascend: {command}: no npu-smi table header found; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def _card(ident_cell: str, health_cell: str, chip_cell: str, bus_cell: str, a: dict[str, tuple[str, str | None]],
          b: dict[str, tuple[str, str | None]], warnings: list[str], command: str,
          hbm_column: bool = False) -> CardSample | None:
    ident = ident_cell.split(None, 1)
    chip_ids = chip_cell.split()
    npu = ident[0] if ident else ""
    if not npu.isdigit() or not chip_ids or not chip_ids[0].isdigit():
        warnings.append(f"ascend: {command}: cannot read row: {first_line('| ' + ident_cell + ' | ' + health_cell)}")
        return None
    health = _HEALTH.get(health_cell.strip().lower(), Health.UNKNOWN)
    if health is Health.UNKNOWN and health_cell.strip():
        warnings.append(f"ascend: {command}: NPU {npu}: unknown health '{health_cell.strip()}'")
    power = a.get("power", ("NA", None))[0]
    temp = a.get("temp", ("NA", None))[0]
    aicore = b.get("aicore", ("NA", None))[0]
    used: float | None = None
    total: float | None = None
    hbm = b.get("hbm")
    mem = b.get("memory")
    # 910-class cards report their working memory as HBM; the "Memory" column is the small DDR. It stands
    # in only where the table has no HBM column or prints HBM as 0 / 0, never for an HBM value not shown.
    shown = hbm is not None and number(hbm[1]) is not None
    for pair in (hbm, mem) if shown or not hbm_column else (hbm,):
        if pair is not None and pair[1] is not None and (number(pair[1]) or 0) > 0:
            used, total = number(pair[0]), number(pair[1])
            break
    card = CardSample(
        index=int(npu),
        chip=int(chip_ids[0]),
        model=ident[1].strip() if len(ident) > 1 and not is_na(ident[1]) else None,
        bus_id=norm_bus_id(bus_cell),
        health=health,
        temperature_c=number(temp),
        utilization_pct=number(aicore),
        memory_used_mib=used,
        memory_total_mib=total,
        power_w=number(power),
    )
    return sanity(card, warnings, command)


def parse_health(text: str, npu: int, chip: int, command: str = "npu-smi info -t health") -> ParseResult:
    """Parse `npu-smi info -t health`: health status plus error codes as faults."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
    status = fields.get("health status")
    if status is None:
        return ParseResult(VENDOR, command, warnings=(
            f"ascend: {command}: no 'Health Status' line; first line: {first_line(text)}",))
    health = _HEALTH.get(status.lower(), Health.UNKNOWN)
    faults: list[Fault] = []
    codes = fields.get("error code", "NA")
    info = fields.get("error information", "")
    if not is_na(codes):
        for code in re.split(r"[\s,]+", codes):
            if code:
                severity, action = fault_ladder(code, health)
                faults.append(Fault(code, severity, action,
                                    f"NPU {npu} chip {chip}: {status}: {info}".strip(), npu))
    return ParseResult(VENDOR, command, (), tuple(faults), ())


# Handling levels of the Ascend device plugin's faultCode.json, for the codes most often seen; the
# rest take their level from the chip's health status.
_CODE_ACTIONS: dict[str, Action] = {
    "80E18005": Action.IGNORE, "80E21007": Action.IGNORE,
    "8C084E00": Action.RESTART_JOB, "80CF8009": Action.RESTART_JOB,
    "80E01801": Action.RESET_CARD, "80E18402": Action.RESET_CARD,
    "80C98008": Action.ISOLATE, "80CB8008": Action.ISOLATE,
}


# The device plugin's handling levels (fault_catalogs.ASCEND_LEVEL) on mixops's ladder.
LEVEL_ACTIONS: dict[str, tuple[Severity, Action]] = {
    "NotHandleFault": (Severity.INFO, Action.IGNORE),
    "SubHealthFault": (Severity.WARNING, Action.WATCH),
    "RestartRequest": (Severity.WARNING, Action.RESTART_JOB),
    "RestartBusiness": (Severity.WARNING, Action.RESTART_JOB),
    "FreeRestartNPU": (Severity.CRITICAL, Action.RESET_CARD),
    "RestartNPU": (Severity.CRITICAL, Action.RESET_CARD),
    "PreSeparateNPU": (Severity.CRITICAL, Action.ISOLATE),
    "SeparateNPU": (Severity.CRITICAL, Action.ISOLATE),
}


def fault_ladder(code: str, health: Health) -> tuple[Severity, Action]:
    """Severity and ladder action of an Ascend error code: the device plugin's handling level when the
    code is in its catalog, else mixops's own table, else the chip's health status."""
    by_health = {Health.CRITICAL: Severity.CRITICAL, Health.WARNING: Severity.WARNING}.get(health, Severity.INFO)
    level = ASCEND_LEVEL.get(code.upper())
    if level in LEVEL_ACTIONS:
        severity, action = LEVEL_ACTIONS[level]
        rank = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]
        return max(severity, by_health, key=rank.index), action
    known = _CODE_ACTIONS.get(code.upper())
    action = known if known is not None else {Health.CRITICAL: Action.RESET_CARD, Health.WARNING: Action.WATCH}.get(
        health, Action.WATCH)
    severity = {Health.CRITICAL: Severity.CRITICAL, Health.WARNING: Severity.WARNING}.get(health, Severity.INFO)
    return severity, action


def parse(sections: dict[str, str]) -> ParseResult:
    """Combine one sweep's sections into cards and faults."""
    info = parse_info(sections.get("info", ""))
    faults: list[Fault] = []
    warnings = list(info.warnings)
    for name, text in sections.items():
        if not name.startswith("health."):
            continue
        _, npu_s, chip_s = name.split(".")
        res = parse_health(text, int(npu_s), int(chip_s), f"npu-smi info -t health -i {npu_s} -c {chip_s}")
        faults.extend(res.faults)
        warnings.extend(res.warnings)
    return ParseResult(VENDOR, INFO, info.cards, tuple(faults), tuple(warnings))


def unhealthy_chips(result: ParseResult) -> tuple[tuple[int, int], ...]:
    """The (npu, chip) pairs whose table health is not OK: they get a health query next sweep."""
    return tuple((c.index, c.chip or 0) for c in result.cards if c.health not in (Health.OK,))


_KV_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


def parse_kv(text: str, command: str = "npu-smi info -t common") -> ParseResult:
    """`npu-smi info -t usages|common|board|power|ecc|product`: `key : value` paragraphs, one per chip.

    Memory comes as a capacity and a usage rate (HBM preferred over DDR); uncorrectable ECC is the sum
    of the HBM and DDR double-bit counts. MCU paragraphs are not cards.
    """
    warnings: list[str] = []
    cards: list[CardSample] = []
    npu: int | None = None
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        m = _KV_LINE.match(line)
        if m is None:
            if current:
                paragraphs.append(current)
                current = {}
            continue
        current.setdefault(m.group(1).strip().lower(), m.group(2))
    if current:
        paragraphs.append(current)
    for para in paragraphs:
        if "npu id" in para:
            npu = integer(para["npu id"])
        name = para.get("chip name", "")
        if name.lower() == "mcu":
            continue
        metric_keys = {k for k in para if k not in ("npu id", "chip count", "chip id")}
        if not metric_keys or npu is None:
            continue
        chip = integer(para.get("chip id")) or 0
        cap = number(para.get("hbm capacity(mb)"))
        rate = number(para.get("hbm usage rate(%)"))
        if cap is None:
            cap, rate = number(para.get("ddr capacity(mb)")), number(para.get("ddr usage rate(%)"))
        used = None if cap is None or rate is None else round(cap * rate / 100.0, 1)
        ecc_parts = [integer(para.get(k)) for k in ("hbm double bit error count", "ddr double bit error count")]
        known = [e for e in ecc_parts if e is not None]
        ecc = sum(known) if known else None
        power = para.get("npu real-time power(w)") or para.get("power dissipation(w)")
        card = CardSample(index=npu, chip=chip, model=para.get("product name") or (name or None),
                          serial=para.get("serial number") or None, bus_id=norm_bus_id(para.get("pcie bus info")),
                          health=Health.UNKNOWN,       # these views print no health; ECC is a counter
                          temperature_c=number(para.get("temperature(c)")),
                          utilization_pct=number(para.get("aicore usage rate(%)")),
                          memory_used_mib=used, memory_total_mib=cap, power_w=number(power), ecc_uncorrected=ecc)
        cards.append(sanity(card, warnings, command))
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no chip paragraph found; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))


def parse_map(text: str, command: str = "npu-smi info -m") -> ParseResult:
    """`npu-smi info -m`: NPU ID, Chip ID, Chip Logic ID, Chip Name per chip (MCU rows are not cards)."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    header: list[str] | None = None
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"\s{2,}", line.strip()) if c.strip()]
        if not cells:
            continue
        if header is None:
            if cells[0].lower() == "npu id":
                header = [c.lower() for c in cells]
            continue
        row = dict(zip(header, cells, strict=False))
        npu, chip = integer(row.get("npu id")), integer(row.get("chip id"))
        name = row.get("chip name", "")
        if npu is None or chip is None or name.lower() == "mcu":
            continue
        cards.append(CardSample(index=npu, chip=chip, model=name or None, health=Health.UNKNOWN))
    if not cards and text.strip():
        warnings.append(f"{VENDOR}: {command}: no 'NPU ID' table; first line: {first_line(text)}")
    return ParseResult(VENDOR, command, tuple(cards), (), tuple(warnings))
