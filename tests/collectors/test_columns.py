"""Issue 16, parsers on formats they have not seen: a column a parser does not list can never become a number.

A property test renames, drops and adds columns in every vendor's table fixture (boxed tables, npu-smi,
query CSV) and checks that no value appears under a metric whose column is absent, that an added column
changes nothing, and that an unknown header is named in a warning.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import amd, ascend, cambricon, enflame, hygon, metax, mthreads, nvidia, rocm, smitable
from collectors.boxtable import Columns
from collectors.model import Health
from tests.conftest import fixture_text

FIELDS = ("model", "bus_id", "serial", "temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib",
          "power_w", "ecc_uncorrected")
ASCEND = Columns(metrics=ascend.METRIC_COLUMNS, feeds=ascend.COLUMN_FEEDS, ignored=ascend.IGNORED_COLUMNS)

# (fixture, parser, columns)
TABLES = [
    ("nvidia/a800-default-table.txt", lambda t: smitable.parse_smi_table(t, "nvidia", "nvidia-smi"), smitable.COLUMNS),
    ("nvidia/h100-mig-590-table.txt", lambda t: smitable.parse_smi_table(t, "nvidia", "nvidia-smi"), smitable.COLUMNS),
    ("iluvatar/bi-v150-table-hung.txt", lambda t: smitable.parse_smi_table(t, "iluvatar", "ixsmi"), smitable.COLUMNS),
    ("cambricon/mlu370-x8-v5.txt", cambricon.parse_table, cambricon.COLUMNS),
    ("cambricon/mlu370-x4-v4.txt", cambricon.parse_table, cambricon.COLUMNS),
    ("metax/c500-2.2.9-table.txt", metax.parse_table, metax.COLUMNS),
    ("metax/c500-2.0-table.txt", metax.parse_table, metax.COLUMNS),
    ("enflame/s60-efsmi1.7-table.txt", enflame.parse_table, enflame.COLUMNS),
    ("amd/amd-smi-mi325x.txt", amd.parse_amd_smi_table, amd.AMD_SMI_COLUMNS),
]
NPU_SMI = ["ascend/910b2c-23.0.3-info.txt", "ascend/310-20.2.0-info.txt", "ascend/910a-21.0.rc1-info.txt",
           "ascend/910-93-25.5.1-info.txt", "ascend/950dt-25.6.rc1-info.txt"]
CASES = TABLES + [(n, ascend.parse_info, ASCEND) for n in NPU_SMI]
_RULE = re.compile(r"^\s*[+|][-=+|\s]*[+|]\s*$")


def _header_region(lines: list[str], columns: Columns) -> tuple[int, int]:
    """First and last+1 line of the device table's header rows: the `|` rows around the first line naming
    the device-number column, down to the rule under them."""
    def names(line: str) -> list[str]:
        return [t.strip().lower() for cell in line.split("|") for t in re.split(r"\s{2,}", cell) if t.strip()]
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("|") and not _RULE.match(ln)
              and any(columns.key(n) == columns.index or n in ("npu", "npu id") for n in names(ln)))
    start = at
    while start > 0 and lines[start - 1].strip().startswith("|") and not _RULE.match(lines[start - 1]):
        start -= 1
    eq = at
    while not _RULE.match(lines[eq]):
        eq += 1
    return start, eq


def _read_headers(lines: list[str], columns: Columns) -> list[tuple[int, int, int, str]]:
    """(line, start, end, name) of every header token that feeds a CardSample field."""
    start, eq = _header_region(lines, columns)
    out = []
    for i in range(start, eq):
        for m in re.finditer(r"\S+(?: \S+)*", lines[i]):
            for part in re.finditer(r"[^|]+", m.group()):
                name = part.group().strip()
                if columns.fields_of(name):
                    at = m.start() + part.start() + (len(part.group()) - len(part.group().lstrip()))
                    out.append((i, at, at + len(name), name))
    return out


def _blocks_rows(lines: list[str], header_line: int, columns: Columns) -> list[int]:
    """The data lines at the same row of each card block as header_line."""
    start, eq = _header_region(lines, columns)
    row = header_line - start
    out, block = [], []
    for i in range(eq + 1, len(lines)):
        if _RULE.match(lines[i]) or not lines[i].strip().startswith("|"):
            if block and len(block) > row:
                out.append(block[row])
            block = []
            if not lines[i].strip().startswith(("|", "+")):
                break
            continue
        block.append(i)
    if block and len(block) > row:
        out.append(block[row])
    return out


def mutate(text: str, columns: Columns, kind: str, pick: int) -> tuple[str, str, str]:
    """(mutated text, header name touched, new name) for kind rename/drop/add of the pick-th read header."""
    lines = text.splitlines()
    heads = _read_headers(lines, columns)
    line, a, b, name = heads[pick % len(heads)]
    new = ("Zq" + "x" * max(0, b - a - 2))[: max(2, b - a)]
    if kind == "rename":
        lines[line] = lines[line][:a] + new + lines[line][a + len(new):]
    elif kind in ("drop", "blank"):
        if kind == "drop":
            lines[line] = lines[line][:a] + " " * (b - a) + lines[line][b:]
        for i in _blocks_rows(lines, line, columns):
            row = lines[i]
            for m in list(re.finditer(r"[^|\s](?:[^|]*?[^|\s])?(?=\s{2,}|\s*\||$)", row)):
                if m.start() < b and m.end() > a:
                    row = row[:m.start()] + " " * (m.end() - m.start()) + row[m.end():]
            lines[i] = row
        new = ""
    else:       # add: an unknown last column in this header's cell, with a value in every card block
        new = "Xtra9"
        cell = lines[line][:a].count("|")
        lines[line], col = _append_to_cell(lines[line], cell, new, 0)
        for i in _blocks_rows(lines, line, columns):
            lines[i], _ = _append_to_cell(lines[i], cell, "777", col)
    return "\n".join(lines) + "\n", name, new


def _append_to_cell(row: str, cell: int, text: str, column: int) -> tuple[str, int]:
    """The row with text after the last character of its cell-th `|` cell, at `column` or 2 spaces after
    the cell's last character (as a tool aligns a value under its header), and the column it starts at."""
    bars = [i for i, ch in enumerate(row) if ch == "|"]
    end = bars[cell] if cell < len(bars) else len(row)
    last = len(row[:end].rstrip())
    pad = max(2, column - last)
    return row[:last] + " " * pad + text + row[last:], last + pad


def _values(result):
    return {c.index * 100 + (c.chip or 0): c for c in result.cards}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CASES), st.sampled_from(["rename", "drop", "add", "blank"]), st.integers(0, 40))
def test_a_column_not_listed_never_becomes_a_number(case, kind, pick):
    name, parse, columns = case
    original = parse(fixture_text(name))
    text, header, new = mutate(fixture_text(name), columns, kind, pick)
    result = parse(text)
    # the fields only this column fills (npu-smi's Memory-Usage and HBM-Usage both can fill memory)
    others = {f for *_, n in _read_headers(fixture_text(name).splitlines(), columns) if n != header
              for f in columns.fields_of(n)}
    fields = set(columns.fields_of(header)) - others
    if kind == "blank":      # the column is there, its values are not: the neighbours never shift into it
        before = _values(original)
        for key, card in _values(result).items():
            if before[key].health is Health.CRITICAL:
                continue        # sanity() dropped readings of a hung card: blanking one may bring another back
            for f in FIELDS:
                value = getattr(card, f)
                assert value is None or value == getattr(before[key], f), (name, header, f, value)
    elif kind in ("rename", "drop"):
        for card in result.cards:
            for f in fields:
                assert getattr(card, f) is None, (name, kind, header, f, card)
        if kind == "rename":
            assert any(new.lower() in w.lower() and "not read" in w for w in result.warnings), result.warnings
    else:
        assert any(new.lower() in w.lower() and "not read" in w for w in result.warnings), result.warnings
        before, after = _values(original), _values(result)
        assert before.keys() == after.keys()
        for key, card in after.items():
            for f in FIELDS:
                assert getattr(card, f) == getattr(before[key], f), (name, header, f)


CSV = ["nvidia/l20-535-query-header-units.csv", "nvidia/h100-570-query-instant-power.csv"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CSV), st.sampled_from(["rename", "drop", "add"]), st.integers(0, 40))
def test_query_csv_columns(name, kind, pick):
    rows = [r.split(", ") for r in fixture_text(name).splitlines() if r.strip()]
    read = [i for i, h in enumerate(rows[0]) if any(
        h.split(" [")[0] in spellings for spellings in nvidia.METRIC_FIELDS.values())]
    col = read[pick % len(read)]
    header = rows[0][col].split(" [")[0]
    metric = next(m for m, spellings in nvidia.METRIC_FIELDS.items() if header in spellings)
    if kind == "rename":
        rows[0][col] = "zq.unknown"
    elif kind == "drop":
        rows = [r[:col] + r[col + 1:] for r in rows]
    else:
        rows = [r[:col] + (["extra.field"] if i == 0 else ["777"]) + r[col:] for i, r in enumerate(rows)]
    result = nvidia.parse_query_csv("\n".join(", ".join(r) for r in rows), None)
    original = nvidia.parse_query_csv(fixture_text(name), None)
    assert len(result.cards) == len(original.cards)
    for card, before in zip(result.cards, original.cards, strict=True):
        if kind == "add":
            assert all(getattr(card, f) == getattr(before, f) for f in FIELDS)
        else:
            assert getattr(card, metric) is None


@pytest.mark.parametrize(("name", "parse", "columns"), CASES, ids=[c[0] for c in CASES])
def test_every_table_fixture_has_its_columns_listed(name, parse, columns):
    """The fixtures' own headers are all known: no 'not read' warning on the formats mixops documents."""
    assert not [w for w in parse(fixture_text(name)).warnings if "not read" in w]
    assert _read_headers(fixture_text(name).splitlines(), columns)


# ---- tables without a box: rocm-smi/hy-smi concise (one header line) and mthreads-gmi ----------------

_PLAIN_TOKEN = re.compile(r"[^\s|]+(?: [^\s|]+)*")


def _plain_layout(text: str, vendor: str) -> tuple[list[str], list[int], dict[int, list[int]]]:
    """(lines, header lines, header line → the data lines at its row in every card block)."""
    lines = text.splitlines()
    if vendor == "mthreads":
        rule = next(i for i, ln in enumerate(lines) if ln.strip().startswith("+-"))
        heads = []
        i = rule - 1
        while i >= 0 and lines[i].strip() and not lines[i].strip().startswith("-"):
            heads.insert(0, i)
            i -= 1
        rows: dict[int, list[int]] = {h: [] for h in heads}
        block: list[int] = []
        for j in range(rule + 1, len(lines) + 1):
            if j == len(lines) or lines[j].strip().startswith(("+-", "-")) or not lines[j].strip():
                for r, h in enumerate(heads):
                    if r < len(block):
                        rows[h].append(block[r])
                block = []
                if j == len(lines) or not lines[j].strip().startswith("+-"):
                    break
                continue
            block.append(j)
        return lines, heads, rows
    head = next(i for i, ln in enumerate(lines) if re.match(r"^\s*(DCU|GPU|HCU|Device)\s+.*\bTemp\b", ln))
    return lines, [head], {head: [j for j in range(head + 1, len(lines)) if re.match(r"\d", lines[j])]}


def mutate_plain(text: str, vendor: str, columns: Columns, kind: str, pick: int) -> tuple[str, str, str]:
    """Like mutate(), for the unboxed tables."""
    lines, heads, rows = _plain_layout(text, vendor)
    found = [(h, m.start(), m.end(), m.group()) for h in heads for m in _PLAIN_TOKEN.finditer(lines[h])
             if columns.fields_of(m.group())]
    h, a, b, name = found[pick % len(found)]
    new = ("Zq" + "x" * max(0, b - a - 2))[: max(2, b - a)]
    if kind == "rename":
        lines[h] = lines[h][:a] + new + lines[h][a + len(new):]
    elif kind in ("drop", "blank"):
        if kind == "drop":
            lines[h] = lines[h][:a] + " " * (b - a) + lines[h][b:]
            new = ""
        for i in rows[h]:
            for m in list(_PLAIN_TOKEN.finditer(lines[i])):
                if m.start() < b and m.end() > a:
                    lines[i] = lines[i][:m.start()] + " " * (m.end() - m.start()) + lines[i][m.end():]
    else:
        new = "Xtra9"
        col = max([len(lines[h].rstrip())] + [len(lines[i].rstrip()) for i in rows[h]]) + 2
        lines[h] = lines[h].rstrip().ljust(col) + new
        for i in rows[h]:
            lines[i] = lines[i].rstrip().ljust(col) + "777"
    return "\n".join(lines) + "\n", name, new


PLAIN = [("amd/mi300x-concise-rocm6.txt", "amd", amd.parse_concise, rocm.CONCISE_COLUMNS),
         ("hygon/dcu-table.txt", "hygon", hygon.parse_table, rocm.CONCISE_COLUMNS),
         ("mthreads/s4000-gmi2.2.txt", "mthreads", mthreads.parse_table, mthreads.COLUMNS)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PLAIN), st.sampled_from(["rename", "drop", "add", "blank"]), st.integers(0, 40))
def test_unboxed_tables_never_read_a_column_not_listed(case, kind, pick):
    name, vendor, parse, columns = case
    original = _values(parse(fixture_text(name)))
    text, header, new = mutate_plain(fixture_text(name), vendor, columns, kind, pick)
    result = parse(text)
    after = _values(result)
    if kind in ("rename", "drop"):
        for card in result.cards:
            for f in columns.fields_of(header):
                assert getattr(card, f) is None, (name, kind, header, f)
    if kind in ("rename", "add"):
        assert any(new.lower() in w.lower() and "not read" in w for w in result.warnings), result.warnings
    if kind in ("add", "blank"):
        assert after.keys() == original.keys()
        for key, card in after.items():
            if original[key].health is Health.CRITICAL:
                continue
            for f in FIELDS:
                value = getattr(card, f)
                if kind == "add":
                    assert value == getattr(original[key], f), (name, header, f)
                else:
                    assert value is None or value == getattr(original[key], f), (name, header, f, value)
