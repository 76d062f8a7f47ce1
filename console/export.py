"""`mixops export`: every stored full-resolution sample of a range, as CSV or OpenMetrics (DESIGN §4).

Read through console.samples, so the head's rows and the compressed chunks come out alike. A value the
vendor did not report is left out (an empty CSV field; no OpenMetrics sample), never written as 0.

OpenMetrics is written family by family (the format wants a family's samples together), card by card
within a family and in time order within a card: what `promtool tsdb create-blocks-from openmetrics`
backfills into a Prometheus TSDB. Names and units are DESIGN §8's.
"""

from __future__ import annotations

import fnmatch
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

import numpy as np

from console.chunks import HEALTH
from console.samples import read_card

CSV_COLUMNS = ("time", "ts", "node", "card", "chip", "vendor", "model", "serial", "temperature_c",
               "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w", "health", "ecc_uncorrected")
# family, unit line, the chunk column, the factor to the family's unit
FAMILIES: tuple[tuple[str, str, str, float], ...] = (
    ("mixops_card_temperature_celsius", "celsius", "temperature_c", 1.0),
    ("mixops_card_utilization_ratio", "ratio", "utilization_pct", 0.01),
    ("mixops_card_memory_used_bytes", "bytes", "memory_used_mib", 1048576.0),
    ("mixops_card_memory_total_bytes", "bytes", "memory_total_mib", 1048576.0),
    ("mixops_card_power_watts", "watts", "power_w", 1.0),
    ("mixops_card_health", "", "health", 1.0),
)


@dataclass(frozen=True, slots=True)
class Card:
    """One card's identity as the labels and CSV columns carry it."""

    id: int
    node: str
    idx: int
    chip: int | None
    vendor: str | None
    model: str | None
    serial: str | None
    site: str
    rack: str | None


def cards(conn: sqlite3.Connection, pattern: str | None) -> list[Card]:
    """The cards whose "node/idx", node or serial matches the glob `pattern` (all when None)."""
    site = conn.execute("SELECT value FROM meta WHERE key = 'site_name'").fetchone()
    rows = conn.execute(
        """SELECT c.id, c.node, c.idx, c.chip, c.vendor, c.model, c.serial, n.rack
           FROM cards c LEFT JOIN nodes n ON n.name = c.node ORDER BY c.id""").fetchall()
    out: list[Card] = []
    for cid, node, idx, chip, vendor, model, serial, rack in rows:
        ident = f"{node}/{idx}" + (f".{chip}" if chip is not None else "")
        if pattern is not None and not any(
                fnmatch.fnmatchcase(str(v), pattern) for v in (ident, node, serial) if v is not None):
            continue
        out.append(Card(int(cid), str(node), int(idx), chip, vendor, model, serial,
                        str(site[0]) if site else "", rack))
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(v: float) -> str:
    if v != v:
        return ""
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(float(v))


def write_csv(conn: sqlite3.Connection, out: TextIO, start: float, end: float, chosen: list[Card]) -> int:
    """CSV with a header line; returns the samples written."""
    import csv

    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    written = 0
    for card in chosen:
        cols = read_card(conn, card.id, start, end)
        ident = (card.node, card.idx, "" if card.chip is None else card.chip, card.vendor or "", card.model or "",
                 card.serial or "")
        v = cols.values
        for k in range(len(cols)):
            ts = float(cols.ts[k])
            code = int(v["health"][k])
            w.writerow((_iso(ts), _num(ts), *ident, _num(v["temperature_c"][k]), _num(v["utilization_pct"][k]),
                        _num(v["memory_used_mib"][k]), _num(v["memory_total_mib"][k]), _num(v["power_w"][k]),
                        HEALTH[code] if code < len(HEALTH) else "unknown", _num(v["ecc_uncorrected"][k])))
        written += len(cols)
    return written


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(card: Card) -> str:
    """The DESIGN §8 labels of a card (empty ones left out)."""
    pairs = (("site", card.site), ("rack", card.rack), ("node", card.node), ("vendor", card.vendor),
             ("model", card.model),
             ("card", str(card.idx) if card.chip is None else f"{card.idx}.{card.chip}"), ("serial", card.serial))
    return ",".join(f'{k}="{_label(str(v))}"' for k, v in pairs if v not in (None, ""))


def write_openmetrics(conn: sqlite3.Connection, out: TextIO, start: float, end: float, chosen: list[Card]) -> int:
    """OpenMetrics text, family by family, ending in `# EOF`; returns the samples written (card-samples,
    counted once however many families carry them)."""
    counted: set[int] = set()
    written = 0
    for name, unit, column, factor in FAMILIES:
        out.write(f"# TYPE {name} gauge\n")
        if unit:
            out.write(f"# UNIT {name} {unit}\n")
        for card in chosen:
            cols = read_card(conn, card.id, start, end)
            if card.id not in counted:
                counted.add(card.id)
                written += len(cols)
            values = cols.values[column].astype(np.float64)
            present = ~np.isnan(values)
            if not present.any():
                continue
            head = f"{name}{{{labels(card)}}} "
            lines = [f"{head}{_num(float(v) * factor) if factor != 1.0 else _num(float(v))} {_num(float(t))}\n"
                     for v, t in zip(values[present].tolist(), cols.ts[present].tolist(), strict=True)]
            out.write("".join(lines))
    out.write("# EOF\n")
    return written


def iter_range(start: float | None, end: float | None) -> tuple[float, float]:
    """The range to export: everything held when open-ended."""
    return (-math.inf if start is None else start), (math.inf if end is None else end)
