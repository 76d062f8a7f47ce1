"""Compressed sample chunks: one card's samples of one hour in one BLOB (the `sample_chunks` table).

Why this layout. A card's samples within an hour share almost everything with their neighbours: the
sweep's timestamps step by the interval, a temperature moves by a degree, the memory total never moves.
Rows of `samples` spend ~92 bytes per card-sample on that (the row, its REAL columns, two indexes);
a chunk stores each column once, as integers when its values are decimals (a reading of 245.37 W is
24537 hundredths, exactly), differenced, in the narrowest integer type that holds them, and then
deflated with zlib. zlib because it is in every Python and every SQLite tool chain: anyone can read a
chunk with the standard library and the layout below, without mixops.

Lossless: a float column is stored as scaled integers only when scaling back gives every value bit for
bit; otherwise its float64 values are stored as they are. A value that was not reported (NULL) stays
absent: a presence bitmap per column, never a 0.

Layout of `data` (little-endian), before zlib:

    b"MXC1"                       magic and version
    u32 n                         number of samples
    then for each column, in COLUMNS order:
        u8  kind                  0: every value NULL; 1: integers; 2: raw float64; 3: categorical (health)
        u8  decimals              kind 1: value = integer / 10**decimals
        u8  width                 kind 1: bytes per stored difference (1, 2, 4 or 8, signed)
        u8  order                 kind 1: differences taken `order` times (1; 2 for `ts`)
        u8  has_nulls             1: a presence bitmap of ceil(n/8) bytes follows (numpy.packbits order, MSB first)
        [bitmap]
        payload                   m = present values. kind 1: min(order, m) int64 heads (the first value, then
                                  for order 2 the first difference), then m - order differences of `width`
                                  bytes; kind 2: m float64; kind 3: n codes, u8 each (HEALTH order).
                                  `ts` is kind 1 in milliseconds when every timestamp is whole milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]                # numpy arrays of any dtype in annotations

MAGIC = b"MXC1"
# the stored columns of one card-sample, in the `samples` table's order (card_id aside)
COLUMNS = ("ts", "temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w",
           "health", "ecc_uncorrected")
HEALTH = ("ok", "warning", "critical", "unknown")
HEALTH_CODE = {h: i for i, h in enumerate(HEALTH)}
MAX_DECIMALS = 4
LEVEL = 6
_WIDTHS = ((1, np.int8), (2, np.int16), (4, np.int32), (8, np.int64))


class ChunkError(ValueError):
    """A chunk that cannot be read (not written by this layout, or damaged)."""


@dataclass(slots=True)
class Columns:
    """Samples as columns: `ts` float64 seconds, metrics float64 with NaN for NULL, `health` as codes
    (uint8, HEALTH order; 255 unknown value), `ecc_uncorrected` float64 with NaN for NULL."""

    ts: Array
    values: dict[str, Array]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[object]]) -> Columns:
        """From rows in COLUMNS order (as `SELECT ts, temperature_c, … FROM samples` returns them)."""
        n = len(rows)
        ts = np.fromiter((float(r[0]) for r in rows), dtype=np.float64, count=n)  # type: ignore[arg-type]
        values: dict[str, Array] = {}
        for k, name in enumerate(COLUMNS[1:], start=1):
            if name == "health":
                values[name] = np.fromiter((HEALTH_CODE.get(r[k], 3) for r in rows),  # type: ignore[call-overload]
                                           dtype=np.uint8, count=n)
            else:
                values[name] = np.fromiter((np.nan if r[k] is None else float(r[k]) for r in rows),  # type: ignore[arg-type]
                                           dtype=np.float64, count=n)
        return cls(ts, values)

    def rows(self) -> list[tuple[object, ...]]:
        """Back to rows in COLUMNS order, NULL as None, health as its word."""
        out: list[list[object]] = [[float(t)] for t in self.ts]
        for name in COLUMNS[1:]:
            col = self.values[name]
            if name == "health":
                for row, code in zip(out, col.tolist(), strict=True):
                    row.append(HEALTH[code] if code < len(HEALTH) else "unknown")
            elif name == "ecc_uncorrected":
                for row, v in zip(out, col.tolist(), strict=True):
                    row.append(None if v != v else int(v))
            else:
                for row, v in zip(out, col.tolist(), strict=True):
                    row.append(None if v != v else v)
        return [tuple(r) for r in out]

    def select(self, mask: Array) -> Columns:
        """The samples where `mask` is true."""
        return Columns(self.ts[mask], {k: v[mask] for k, v in self.values.items()})

    @staticmethod
    def concat(parts: Sequence[Columns]) -> Columns:
        """Parts joined and sorted by time."""
        if not parts:
            return empty()
        ts = np.concatenate([p.ts for p in parts])
        order = np.argsort(ts, kind="stable")
        return Columns(ts[order], {k: np.concatenate([p.values[k] for p in parts])[order] for k in parts[0].values})


def empty() -> Columns:
    """No samples."""
    return Columns(np.empty(0, dtype=np.float64),
                   {k: np.empty(0, dtype=np.uint8 if k == "health" else np.float64) for k in COLUMNS[1:]})


def _narrowest(values: Array) -> tuple[int, Array]:
    if values.size == 0:
        return 1, values.astype(np.int8)
    lo, hi = int(values.min()), int(values.max())
    for width, dtype in _WIDTHS:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return width, values.astype(dtype)
    raise AssertionError("int64 always fits")


def _as_scaled_ints(present: Array) -> tuple[int, Array] | None:
    """(decimals, integers) such that integers / 10**decimals gives every value back exactly, or None."""
    if not np.all(np.isfinite(present)) or (present.size and float(np.abs(present).max()) >= 2.0**52 / 10**MAX_DECIMALS):
        return None
    for decimals in range(MAX_DECIMALS + 1):
        scale = 10.0**decimals
        q = np.round(present * scale)
        if np.array_equal(q / scale, present):
            return decimals, q.astype(np.int64)
    return None


_HEAD = struct.Struct("<BBBBB")


def _encode_column(out: list[bytes], name: str, col: Array) -> None:
    n = col.shape[0]
    if name == "health":
        out.append(_HEAD.pack(3, 0, 1, 0, 0))
        out.append(col.astype(np.uint8).tobytes())
        return
    present_mask = ~np.isnan(col)
    present = col[present_mask]
    if present.size == 0:
        out.append(_HEAD.pack(0, 0, 0, 0, 0))
        return
    has_nulls = int(present.size != n)
    scaled = _as_scaled_ints(present)
    bitmap = np.packbits(present_mask).tobytes() if has_nulls else b""
    if scaled is None:
        out.append(_HEAD.pack(2, 0, 8, 0, has_nulls))
        out.append(bitmap)
        out.append(present.astype("<f8").tobytes())
        return
    decimals, ints = scaled
    order = 2 if name == "ts" else 1
    heads: list[int] = []
    rest = ints
    for _ in range(order):
        if rest.size == 0:
            break
        heads.append(int(rest[0]))
        rest = np.diff(rest)
    width, narrow = _narrowest(rest)
    out.append(_HEAD.pack(1, decimals, width, order, has_nulls))
    out.append(bitmap)
    out.append(np.array(heads, dtype="<i8").tobytes())
    out.append(narrow.astype(narrow.dtype.newbyteorder("<")).tobytes())


def encode(cols: Columns) -> bytes:
    """One chunk (sorted by time: the caller sorts)."""
    n = len(cols)
    out = [MAGIC, struct.pack("<I", n)]
    ms = np.round(cols.ts * 1000.0)
    ts_ints = ms.astype(np.int64)
    if np.array_equal(ts_ints / 1000.0, cols.ts):
        _encode_column(out, "ts", ts_ints.astype(np.float64) / 1000.0)
    else:                               # sub-millisecond timestamps: kept exactly all the same
        out.append(_HEAD.pack(2, 0, 8, 0, 0))
        out.append(cols.ts.astype("<f8").tobytes())
    for name in COLUMNS[1:]:
        _encode_column(out, name, cols.values[name])
    return zlib.compress(b"".join(out), LEVEL)


def decode(blob: bytes) -> Columns:
    """A chunk back to columns (raises ChunkError when it is not one)."""
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise ChunkError(f"not a sample chunk: {exc}") from exc
    if raw[:4] != MAGIC:
        raise ChunkError("not a sample chunk: bad magic")
    (n,) = struct.unpack_from("<I", raw, 4)
    pos = 8
    cols: dict[str, Array] = {}
    try:
        for name in COLUMNS:
            kind, decimals, width, order, has_nulls = _HEAD.unpack_from(raw, pos)
            pos += _HEAD.size
            if kind == 3:
                cols[name] = np.frombuffer(raw, dtype=np.uint8, count=n, offset=pos).copy()
                pos += n
                continue
            mask: Array | None = None
            if has_nulls:
                nbytes = (n + 7) // 8
                mask = np.unpackbits(np.frombuffer(raw, dtype=np.uint8, count=nbytes, offset=pos))[:n].astype(bool)
                pos += nbytes
            m = n if mask is None else int(mask.sum())
            full = np.full(n, np.nan)
            if kind == 0:
                cols[name] = full
                continue
            if kind == 2:
                present = np.frombuffer(raw, dtype="<f8", count=m, offset=pos).astype(np.float64)
                pos += 8 * m
            elif kind == 1:
                dtype = dict(_WIDTHS).get(width)
                if dtype is None:
                    raise ChunkError(f"not a sample chunk: width {width}")
                nheads = min(order, m)
                heads = np.frombuffer(raw, dtype="<i8", count=nheads, offset=pos).astype(np.int64)
                pos += 8 * nheads
                count = m - nheads
                ints = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=count,
                                     offset=pos).astype(np.int64)
                pos += width * count
                for level in range(nheads - 1, -1, -1):     # undo the differences, innermost first
                    ints = np.concatenate(([heads[level]], heads[level] + np.cumsum(ints)))
                present = ints.astype(np.float64) / 10.0**decimals
            else:
                raise ChunkError(f"not a sample chunk: column kind {kind}")
            if mask is None:
                full = present
            else:
                full[mask] = present
            cols[name] = full
    except (struct.error, ValueError) as exc:
        if isinstance(exc, ChunkError):
            raise
        raise ChunkError(f"damaged sample chunk: {exc}") from exc
    return Columns(cols.pop("ts"), cols)

