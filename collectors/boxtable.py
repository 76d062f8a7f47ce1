"""Boxed status tables in the nvidia-smi style (cnmon, mx-smi, ixsmi, mthreads-gmi, nvidia-smi).

Each card is a block of `|`-framed rows between `+---+` rules; the rows above the `|===|` rule name
the fields of each cell. Values are matched to header names by position within the cell (tokens are
separated by two or more spaces), never by fixed character columns, so widths may change freely.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from collectors.model import CardSample, ParseResult, first_line, integer, mebibytes, memory_unit, sanity

_SPLIT = re.compile(r"\s{2,}")
_RULE = re.compile(r"^\s*[+|][-=+|\s]*[+|]\s*$")
_PREFIX = re.compile(r"^#\s*\[\w+\]\s*>>\s?")   # `# [tag] >> ` of captures pasted from scripts


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return body.split("|")


def _tokens(cell: str) -> list[tuple[int, str]]:
    """(start column, text) of each token separated by 2+ spaces."""
    out: list[tuple[int, str]] = []
    pos = 0
    for part in _SPLIT.split(cell):
        if not part.strip():
            pos += len(part) + 2
            continue
        start = cell.find(part, pos)
        out.append((start, part.strip()))
        pos = start + len(part)
    return out


def _assign(header: list[tuple[int, str]], values: list[tuple[int, str]]) -> dict[str, str]:
    """Pair value tokens with header names: by order when counts match, else by nearest column."""
    if not header:
        return {}
    if len(header) == len(values):
        return {h.lower(): v for (_, h), (_, v) in zip(header, values, strict=True)}
    out: dict[str, str] = {}
    for start, text in values:
        name = min(header, key=lambda h: abs(h[0] - start))[1].lower()
        out[name] = f"{out[name]} {text}" if name in out else text
    return out


def parse_blocks(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of the first boxed table with a `|===|` rule: one dict (header name → text) per card block.

    The second value holds the raw first line of every card block, for warnings.
    """
    lines = [_PREFIX.sub("", ln) for ln in text.splitlines()]
    # The header: the first run of multi-cell `|` rows that ends on a rule (`|===|`, `|---|`, `+---+`).
    head_rows: list[str] = []
    eq = None
    for i, line in enumerate(lines):
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
        return [], []
    headers = [[_tokens(c) for c in _cells(row)] for row in head_rows]
    blocks: list[dict[str, str]] = []
    firsts: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if not current:
            return
        record: dict[str, str] = {}
        for row_index, row in enumerate(current[: len(headers)]):
            for cell_index, cell in enumerate(_cells(row)):
                if cell_index < len(headers[row_index]):
                    record.update(_assign(headers[row_index][cell_index], _tokens(cell)))
        blocks.append(record)
        firsts.append(current[0].strip())
        current.clear()

    for line in lines[eq + 1:]:
        stripped = line.strip()
        if not stripped:
            flush()
            break
        if _RULE.match(line):
            flush()
            continue
        if not stripped.startswith("|"):
            flush()
            break
        if len(_cells(line)) != len(headers[0]) if headers else True:
            flush()
            break
        current.append(line)
    flush()
    return blocks, firsts


def read_cards(text: str, vendor: str, command: str, index_keys: tuple[str, ...],
               make: Callable[[dict[str, str], int], CardSample]) -> ParseResult:
    """Cards of a boxed table: `make` turns one card block (header name → text) into a sample; rows
    without a device number and tables that are not there become warnings naming vendor and command."""
    blocks, firsts = parse_blocks(text)
    warnings: list[str] = []
    cards: list[CardSample] = []
    for record, raw in zip(blocks, firsts, strict=True):
        index = next((i for i in (integer(record.get(k)) for k in index_keys) if i is not None), None)
        if index is None:
            warnings.append(f"{vendor}: {command}: card row without a device number: {raw[:120]}")
            continue
        cards.append(sanity(make(record, index), warnings, command))
    if not cards and text.strip():
        warnings.append(f"{vendor}: {command}: no card table found; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), (), tuple(warnings))


def used_total_mib(text: str | None, default_unit: str = "MiB") -> tuple[float | None, float | None]:
    """'0 MiB/ 23308 MiB', '826/65536 MiB', '0 / 32768 MB' → (used, total) in MiB; a side without a unit
    takes the other side's."""
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
