"""Boxed status tables in the nvidia-smi style (cnmon, mx-smi, ixsmi, mthreads-gmi, nvidia-smi).

Each card is a block of `|`-framed rows between `+---+` rules; the rows above the `|===|` rule name
the fields of each cell. Values are matched to header names by position within the cell (tokens are
separated by two or more spaces), never by fixed character columns, so widths may change freely.

A value reaches a metric only through a header name the vendor's parser lists (`Columns`): a column
whose header is not listed gives a warning and no value, a column that is absent gives None, a value
under no header is dropped, and a table of sub-devices (MIG instances, partitions) is never read as
the device table (issue 16: a renamed, added or missing column can never become a number).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from collectors.model import (
    CardSample,
    ParseResult,
    first_line,
    integer,
    mebibytes,
    memory_unit,
    number,
    sanity,
)


@dataclass(frozen=True, slots=True)
class Columns:
    """The header spellings one table parser recognises.

    `metrics`: header name (lower-case, as printed) → the key the parser reads; newer or other spellings
    of one column are listed as aliases of the same key. `feeds`: key → the CardSample fields it fills
    (what a test checks stays None when the column is missing). `ignored`: headers known to hold nothing
    mixops reads (no warning). `subdevice`: headers that mark a table of sub-devices (MIG GI/CI, …),
    which is never read as the device table. `index`: the key of the tool's own device enumeration.
    """

    metrics: Mapping[str, str]
    feeds: Mapping[str, tuple[str, ...]]
    ignored: frozenset[str] = frozenset()
    subdevice: frozenset[str] = frozenset()
    index: str = "index"
    _known: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_known", frozenset(self.metrics) | self.ignored | self.subdevice)

    def key(self, header: str) -> str | None:
        """The metric key of a printed header name, or None when the parser does not read it."""
        return self.metrics.get(header.lower())

    def unknown(self, headers: list[str]) -> list[str]:
        """Header names neither read nor known to be ignorable, in order."""
        return [h for h in headers if h.lower() not in self._known]

    def fields_of(self, header: str) -> tuple[str, ...]:
        """The CardSample fields a header's column fills (empty when not read)."""
        key = self.key(header)
        return self.feeds.get(key, ()) if key is not None else ()

_RULE = re.compile(r"^\s*[+|][-=+|\s]*[+|]\s*$")
_PREFIX = re.compile(r"^#\s*\[\w+\]\s*>>\s?")   # `# [tag] >> ` of captures pasted from scripts


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return body.split("|")


_TOKEN = re.compile(r"\S+(?:\s\S+)*")


def _tokens(cell: str) -> list[tuple[int, str]]:
    """(start column, text) of each token separated by 2+ spaces."""
    return [(m.start(), m.group()) for m in _TOKEN.finditer(cell)]


UNBOUND = ""      # the record key of values under no header: never read as a metric


Span = tuple[int, int, str]      # a header token: start, end, lower-case name


def _best(header: list[Span], start: int, end: int) -> tuple[str, int]:
    """The header the text span [start, end) overlaps most (UNBOUND when none), and how many it overlaps."""
    best, name, hits = 0, UNBOUND, 0
    for h_start, h_end, h_name in header:
        overlap = (end if end < h_end else h_end) - (start if start > h_start else h_start)
        if overlap > 0:
            hits += 1
            if overlap > best:
                best, name = overlap, h_name
    return name, hits


def _aligned(header: list[Span], values: list[tuple[int, str]]) -> bool:
    """Counts match and every value lies under its own header, or in the gap beside it without touching
    a neighbour: only then is pairing by order safe (a blank value must not shift the rest)."""
    n = len(header)
    if n != len(values):
        return False
    for k in range(n):
        h_start, h_end, _ = header[k]
        v_start, v = values[k]
        v_end = v_start + len(v)
        if v_end > h_start and v_start < h_end:
            continue
        left = header[k - 1][1] if k else -1
        right = header[k + 1][0] if k + 1 < n else 1 << 30
        if not (left <= v_start and v_end <= right):
            return False
    return True


def _assign(header: list[Span], values: list[tuple[int, str]]) -> dict[str, str]:
    """Pair value tokens with header names: by order when aligned, else each value goes to the header whose
    span it overlaps most (a value overlapping none is UNBOUND, never given to a neighbour)."""
    if not header:
        return {UNBOUND: " ".join(v for _, v in values)} if values else {}
    if _aligned(header, values):
        return {h[2]: v for h, (_, v) in zip(header, values, strict=True)}
    out: dict[str, str] = {}
    for start, text in values:
        name, hits = _best(header, start, start + len(text))
        if hits > 1 and " " in text:
            # one token under several headers (efsmi: `42976MiB Disable` under `Mem     GCU Virt`): its words
            # are bound one by one
            for m in _WORD.finditer(text):
                w_start = start + m.start()
                word = m.group()
                w_name, _ = _best(header, w_start, w_start + len(word))
                out[w_name] = f"{out[w_name]} {word}" if w_name in out else word
            continue
        out[name] = f"{out[name]} {text}" if name in out else text
    return out


_WORD = re.compile(r"\S+")


@dataclass(slots=True)
class Table:
    """One boxed table: its header names (in order) and one record (header name → text) per card block,
    with the raw first line of each block for warnings."""

    headers: list[str]
    records: list[dict[str, str]]
    firsts: list[str]


def iter_tables(text: str) -> Iterator[Table]:
    """Every boxed table with a `|===|` (or `|---|`, `+---+`) rule under its header rows, in order, read
    only as far as the caller asks."""
    lines = [_PREFIX.sub("", ln) for ln in text.splitlines()] if "#" in text else text.splitlines()
    i = 0
    while i < len(lines):
        table, i = _table_at(lines, i)
        if table is not None:
            yield table


def parse_tables(text: str) -> list[Table]:
    """Every boxed table of the text, in order."""
    return list(iter_tables(text))


def parse_blocks(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of the first boxed table: one dict (header name → text) per card block, and raw first lines."""
    tables = parse_tables(text)
    return (tables[0].records, tables[0].firsts) if tables else ([], [])


def _table_at(lines: list[str], start: int) -> tuple[Table | None, int]:
    """The next table at or after line `start`, and the line to continue from."""
    # The header: a run of multi-cell `|` rows that ends on a rule (`|===|`, `|---|`, `+---+`).
    head_rows: list[str] = []
    eq = None
    for i in range(start, len(lines)):
        line = lines[i]
        stripped = line.strip()
        if _RULE.match(line):
            if head_rows:
                eq = i
                break
            continue
        if stripped.startswith("|") and len(_cells(line)) >= 2:
            first = _cells(line)[0].strip()
            if not head_rows and first[:1].isdigit():
                continue            # a card row with no header above it (a table pasted in pieces)
            head_rows.append(line)
        else:
            head_rows = []
    if eq is None:
        return None, len(lines)
    tokens = [[_tokens(c) for c in _cells(row)] for row in head_rows]
    names = [name for row in tokens for cell in row for _, name in cell]
    headers = [[[(at, at + len(name), name.lower()) for at, name in cell] for cell in row] for row in tokens]
    table = Table(names, [], [])
    current: list[str] = []

    def flush() -> None:
        if not current:
            return
        record: dict[str, str] = {}
        for row_index, row in enumerate(current[: len(headers)]):
            for cell_index, cell in enumerate(_cells(row)):
                if cell_index < len(headers[row_index]):
                    for name, value in _assign(headers[row_index][cell_index], _tokens(cell)).items():
                        record[name] = f"{record[name]} {value}" if name in record else value
        table.records.append(record)
        table.firsts.append(current[0].strip())
        current.clear()

    width = len(headers[0])
    i = eq + 1
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _RULE.match(line):
            flush()
            i += 1
            continue
        if not stripped or not stripped.startswith("|") or len(_cells(line)) != width:
            break
        current.append(line)
        i += 1
    flush()
    return table, max(i, eq + 1)


def read_cards(text: str, vendor: str, command: str, columns: Columns,
               make: Callable[[dict[str, str], int], CardSample]) -> ParseResult:
    """Cards of the device table: `make` turns one card block (metric key → text, only from headers that
    `columns` lists) into a sample. Tables of sub-devices are skipped; unknown headers, rows without a
    device number and a missing table become warnings naming vendor and command."""
    warnings: list[str] = []
    cards: list[CardSample] = []
    tables: list[Table] = []
    device = None
    for table in iter_tables(text):
        tables.append(table)
        lowered = {h.lower() for h in table.headers}
        if lowered & columns.subdevice:
            continue                # MIG instances / partitions: never the device's own values
        if any(columns.key(h) == columns.index for h in table.headers):
            device = table
            break
    if device is not None:
        unknown = columns.unknown(device.headers)
        if unknown:
            warnings.append(f"{vendor}: {command}: column(s) not known to mixops, not read: "
                            f"{', '.join(repr(h) for h in unknown)}")
        for record, raw in zip(device.records, device.firsts, strict=True):
            bound: dict[str, str] = {}
            for name, value in record.items():
                key = columns.key(name) if name else None
                if key is not None:
                    bound[key] = value
            index = integer(bound.get(columns.index))
            if index is None:
                warnings.append(f"{vendor}: {command}: card row without a device number: {raw[:120]}")
                continue
            cards.append(sanity(make(bound, index), warnings, command))
    if not cards and text.strip():
        what = "only a sub-device (MIG/partition) table" if tables and device is None and any(
            {h.lower() for h in t.headers} & columns.subdevice for t in tables) else "no card table found"
        warnings.append(f"{vendor}: {command}: {what}; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), (), tuple(warnings))


_READINGS = {
    "C": re.compile(r"^\s*[-+]?\d+(?:\.\d+)?\s*(?:°C|°|℃|[Cc])?\s*$"),
    "%": re.compile(r"^\s*\d+(?:\.\d+)?\s*%?\s*$"),
    "W": re.compile(r"^\s*\d+(?:\.\d+)?\s*[Ww]?\s*$"),
}


def reading(text: str | None, unit: str) -> float | None:
    """A table cell that is one number with at most the metric's own unit (`C`: `34C`, `43.0°C`, `66℃`;
    `%`: `97%`; `W`: `611.0W`), else None: text that only contains a digit (`NPS1, SPX`, `P0`) or a number
    in another unit (a fan's `0.0%` under a power header) is never a reading."""
    if text is None or _READINGS[unit].match(text) is None:
        return None
    return number(text)


def used_total_mib(text: str | None, default_unit: str = "MiB") -> tuple[float | None, float | None]:
    """'0 MiB/ 23308 MiB', '826/65536 MiB', '0 / 32768 MB' → (used, total) in MiB; a side without a unit
    takes the other side's. Text without the '/' is not a used/total pair: (None, None), never a guess."""
    if text is None or "/" not in text:
        return None, None
    used, total = used_total(text)
    unit = memory_unit(total) or memory_unit(used) or default_unit
    return mebibytes(used, unit), mebibytes(total, unit)


def used_total(text: str | None) -> tuple[str | None, str | None]:
    """Split '826/65536 MiB', '0 MiB/ 23308 MiB' or '27 W/ 150 W' into its two sides."""
    if text is None:
        return None, None
    if "/" not in text:
        return text, None
    left, right = text.split("/", 1)
    return left.strip(), right.strip()


def pipe_grid(text: str, first_header: str) -> list[dict[str, str]]:
    """A plain `| a | b |` grid whose header row starts with `first_header` (e.g. xpu_smi 4.x DEVICES)."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            if header is not None and rows and not stripped.startswith("-"):
                break
            continue
        cells = [c.strip() for c in _cells(line)]
        if header is None:
            if cells and cells[0].lower() == first_header.lower():
                header = [c.lower() for c in cells]
            continue
        if len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows
