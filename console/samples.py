"""Full-resolution history, wherever the store keeps it: the recent raw rows of `samples` (the head) and
the compressed hourly chunks of `sample_chunks` (console.chunks) behind them.

The store moves a finished hour of a card from the head into its chunk in one transaction (rows deleted,
chunk written), so a reader that reads both inside one read transaction sees every sample exactly once.
Every function here does that (`_snapshot`). Reading never needs the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from console.chunks import COLUMNS, ChunkError, Columns, decode, empty

HOUR = 3600.0
# the head's columns as numbers: health as its code (console.chunks.HEALTH order), NULL as NaN
HEAD_SELECT = """SELECT ts, temperature_c, utilization_pct, memory_used_mib, memory_total_mib, power_w,
       CASE health WHEN 'ok' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 ELSE 3 END, ecc_uncorrected
       FROM samples"""


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction (the head and the chunks as of one commit), unless the caller holds one."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def head_columns(rows: list[tuple[object, ...]]) -> Columns:
    """Rows of HEAD_SELECT (card_id left out) as columns, in one conversion."""
    if not rows:
        return empty()
    arr = np.array(rows, dtype=np.float64)      # None → NaN
    values = {name: arr[:, k] for k, name in enumerate(COLUMNS) if k}
    values["health"] = arr[:, COLUMNS.index("health")].astype(np.uint8)
    return Columns(arr[:, 0].copy(), values)


def _chunks(conn: sqlite3.Connection, card_id: int, start: float, end: float) -> list[Columns]:
    parts: list[Columns] = []
    for (blob,) in conn.execute(
            "SELECT data FROM sample_chunks WHERE card_id = ? AND hour > ? AND hour < ? ORDER BY hour",
            (card_id, start - HOUR, end)):
        try:
            parts.append(decode(blob))
        except ChunkError:
            continue                    # a damaged chunk loses its hour, never the read
    return parts


def _within(cols: Columns, start: float, end: float) -> Columns:
    mask = (cols.ts >= start) & (cols.ts < end)
    return cols if bool(mask.all()) else cols.select(mask)


def read_card(conn: sqlite3.Connection, card_id: int, start: float, end: float) -> Columns:
    """Every stored sample of one card with start <= ts < end, sorted by time."""
    with _snapshot(conn):
        head = conn.execute(f"{HEAD_SELECT} WHERE card_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
                            (card_id, start, end)).fetchall()
        parts = _chunks(conn, card_id, start, end)
    if not parts:
        return head_columns(head)
    parts.append(head_columns(head))
    return _within(Columns.concat(parts), start, end)


def read_cards(conn: sqlite3.Connection, start: float, end: float,
               card_ids: Iterable[int] | None = None) -> Iterator[tuple[int, Columns]]:
    """(card id, its samples in [start, end)) for the given cards (every card when None), in id order; each
    card is read in its own short read transaction, so a long export never pins the WAL."""
    ids = sorted(set(card_ids)) if card_ids is not None else [
        int(r[0]) for r in conn.execute("SELECT id FROM cards ORDER BY id")]
    for cid in ids:
        cols = read_card(conn, cid, start, end)
        if len(cols):
            yield cid, cols


@dataclass(slots=True)
class WindowStats:
    """Per card over a window: temperature max/sum/count and the time of its max, and samples stored."""

    temp_max: dict[int, float]
    temp_sum: dict[int, float]
    temp_n: dict[int, int]
    samples: int
    hottest_at: float | None


def window_stats(conn: sqlite3.Connection, start: float, end: float) -> WindowStats:
    """Temperature figures of every card over [start, end) for the reports: whole hours already rolled up
    come from `rollups_hourly` (no chunk is opened for them), the rest from the head and the chunks."""
    with _snapshot(conn):
        row = conn.execute("SELECT value FROM meta WHERE key = 'rolled_until'").fetchone()
        rolled = float(row[0]) if row else 0.0
        first_full = start if start % HOUR == 0 else start - start % HOUR + HOUR
        last_full = min(end - end % HOUR, rolled - rolled % HOUR)
        stats = WindowStats({}, {}, {}, 0, None)
        hottest: tuple[float, int, float] | None = None       # (°C, card, hour) of the hottest rolled hour

        def add(cid: int, tmax: float | None, tsum: float | None, n: int) -> None:
            if tmax is None or n == 0:
                return
            stats.temp_max[cid] = max(tmax, stats.temp_max.get(cid, tmax))
            stats.temp_sum[cid] = stats.temp_sum.get(cid, 0.0) + float(tsum or 0.0)
            stats.temp_n[cid] = stats.temp_n.get(cid, 0) + n

        ranges: list[tuple[float, float]] = []
        if last_full > first_full:
            for cid, hour, n, tmax, tavg in conn.execute(
                    """SELECT card_id, hour, n, temperature_c_max, temperature_c_avg FROM rollups_hourly
                       WHERE hour >= ? AND hour < ?""", (first_full, last_full)):
                stats.samples += int(n)
                # the rollup's n counts samples; the average is over the reported temperatures only: the
                # count of those is not kept, so n stands in for it (a card either reports it or not)
                add(int(cid), tmax, None if tavg is None else float(tavg) * int(n), int(n) if tavg is not None else 0)
                if tmax is not None and (hottest is None or float(tmax) > hottest[0]):
                    hottest = (float(tmax), int(cid), float(hour))
            ranges = [(start, first_full), (last_full, end)]
        else:
            ranges = [(start, end)]
        best: tuple[float, float] | None = None                # (°C, ts) of the hottest raw reading
        for a, b in ranges:
            if b <= a:
                continue
            for cid, tmax, tsum, n, count in conn.execute(
                    """SELECT card_id, max(temperature_c), sum(temperature_c), count(temperature_c), count(*)
                       FROM samples WHERE ts >= ? AND ts < ? GROUP BY card_id""", (a, b)):
                stats.samples += int(count)
                add(int(cid), tmax, tsum, int(n))
            at = conn.execute("""SELECT temperature_c, ts FROM samples WHERE ts >= ? AND ts < ?
                                 AND temperature_c IS NOT NULL ORDER BY temperature_c DESC LIMIT 1""",
                              (a, b)).fetchone()
            if at is not None and (best is None or float(at[0]) > best[0]):
                best = (float(at[0]), float(at[1]))
            for cid, blob in conn.execute(
                    "SELECT card_id, data FROM sample_chunks WHERE hour > ? AND hour < ?", (a - HOUR, b)):
                try:
                    cols = _within(decode(blob), a, b)
                except ChunkError:
                    continue
                if not len(cols):
                    continue
                stats.samples += len(cols)
                temp = cols.values["temperature_c"]
                ok = ~np.isnan(temp)
                if ok.any():
                    k = int(np.nanargmax(temp))
                    add(int(cid), float(temp[k]), float(temp[ok].sum()), int(ok.sum()))
                    if best is None or float(temp[k]) > best[0]:
                        best = (float(temp[k]), float(cols.ts[k]))
        if hottest is not None and (best is None or hottest[0] > best[0]):
            # the hottest reading lies in a rolled-up hour: its time is in that hour's chunk or raw rows
            _, cid, hour = hottest
            cols = read_card(conn, cid, hour, hour + HOUR)
            temp = cols.values["temperature_c"]
            if len(cols) and not np.isnan(temp).all():
                best = (float(np.nanmax(temp)), float(cols.ts[int(np.nanargmax(temp))]))
            else:
                best = (hottest[0], hour + HOUR / 2)
        stats.hottest_at = best[1] if best is not None else None
    return stats


def oldest_sample(conn: sqlite3.Connection) -> float | None:
    """The time of the oldest stored full-resolution sample (head or chunk)."""
    with _snapshot(conn):
        head = conn.execute("SELECT min(ts) FROM samples").fetchone()[0]
        chunk = conn.execute("""SELECT min(first_ts) FROM sample_chunks
                                WHERE hour = (SELECT min(hour) FROM sample_chunks)""").fetchone()[0]
    found = [float(v) for v in (head, chunk) if v is not None]
    return min(found) if found else None
