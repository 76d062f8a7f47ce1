"""Compressed sample chunks (console.chunks) and the store's move of finished hours into them (issue 17):
lossless, NULL stays NULL, every sample read exactly once through console.samples, on real SQLite files."""

from __future__ import annotations

import math
import sqlite3
import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.model import CardSample, Health, NodeReport
from console import samples
from console.chunks import COLUMNS, ChunkError, Columns, decode, encode
from console.store import Store

HOUR = 3600.0
T0 = 1_790_000_000.0 - 1_790_000_000.0 % HOUR

value = st.one_of(st.none(), st.integers(-10**6, 10**6).map(float),
                  st.floats(allow_nan=False, allow_infinity=False, width=64),
                  st.decimals(-5000, 5000, places=2, allow_nan=False, allow_infinity=False).map(float))
row = st.tuples(st.floats(T0, T0 + HOUR - 0.001), value, value, value, value, value,
                st.sampled_from(["ok", "warning", "critical", "unknown"]),
                st.one_of(st.none(), st.integers(0, 2**40).map(float)))


def _same(a: Columns, b: Columns) -> None:
    assert np.array_equal(a.ts, b.ts)
    for name in COLUMNS[1:]:
        assert np.array_equal(a.values[name], b.values[name], equal_nan=True), name


@settings(max_examples=300, deadline=None)
@given(st.lists(row, min_size=1, max_size=400))
def test_a_chunk_gives_back_every_value_bit_for_bit_and_null_as_null(rows):
    rows = sorted(rows, key=lambda r: r[0])
    cols = Columns.from_rows(rows)
    back = decode(encode(cols))
    _same(cols, back)
    for got, want in zip(back.rows(), rows, strict=True):
        assert got[0] == want[0] and got[6] == want[6]
        for g, w in zip(got[1:6], want[1:6], strict=True):
            assert (g is None) == (w is None) and (w is None or g == w or (math.isnan(g) and math.isnan(w)))


def test_a_real_cadence_hour_costs_a_few_bytes_per_sample():
    """One card, one hour at 10 s, values as a vendor prints them (integer °C and %, MiB, W to 0.01)."""
    rng = np.random.default_rng(7)
    n = 360
    cols = Columns(np.round(T0 + np.arange(n) * 10.0 + rng.normal(0, 0.05, n), 3), {
        "temperature_c": np.round(62 + np.cumsum(rng.integers(-1, 2, n)) * 0.1),
        "utilization_pct": np.clip(np.round(95 + rng.normal(0, 4, n)), 0, 100),
        "memory_used_mib": np.full(n, 71234.0), "memory_total_mib": np.full(n, 81559.0),
        "power_w": np.round(410 + rng.normal(0, 25, n), 2), "health": np.zeros(n, np.uint8),
        "ecc_uncorrected": np.full(n, np.nan)})
    blob = encode(cols)
    _same(cols, decode(blob))
    assert len(blob) / n < 8.0, len(blob) / n        # the rows cost ~92 bytes per card-sample


def test_what_is_not_a_chunk_is_said_not_crashed():
    for blob in (b"", b"garbage", zlib.compress(b"XXXX\x01\x00\x00\x00"), zlib.compress(b"MXC1\xff\xff\x00\x00")):
        try:
            decode(blob)
        except ChunkError:
            pass


def _sweep(store: Store, ts: float, temps: list[float | None], node: str = "a") -> None:
    cards = tuple(CardSample(index=i, model="H100", serial=f"S{i}", health=Health.OK, temperature_c=t,
                             power_w=None if t is None else t * 4.25)
                  for i, t in enumerate(temps))
    store.write_sweep(ts, ts + 0.5, [NodeReport(node, True, ts, 0.1, "nvidia", cards, (), (), None)])


def _all(db: str, start: float = 0.0, end: float = math.inf) -> dict[int, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {cid: cols.rows() for cid, cols in samples.read_cards(conn, start, end)}
    finally:
        conn.close()


def test_finished_hours_move_into_chunks_and_every_sample_reads_once(tmp_path):
    db = str(tmp_path / "ops.db")
    store = Store(db)
    store.maintenance_budget_s = 0.0             # nothing moves during the writes; maintain() below
    ticks = [T0 + k * 10.0 for k in range(3 * 360 + 30)]        # 3 h 5 min at 10 s
    for k, ts in enumerate(ticks):
        _sweep(store, ts, [60.0 + k % 7, None if k % 5 == 0 else 50.5, 40.25])
    before = _all(db)
    assert sum(len(v) for v in before.values()) == 3 * len(ticks)
    now = ticks[-1] + 1.0
    store.maintain(now)
    conn = store.conn
    chunks = conn.execute("SELECT count(*), sum(n) FROM sample_chunks").fetchone()
    # hours T0 and T0+1h are finished and older than the last full hour kept raw: 2 hours x 3 cards
    assert chunks == (6, 6 * 360)
    assert conn.execute("SELECT min(ts) FROM samples").fetchone()[0] == T0 + 2 * HOUR
    assert _all(db) == before                        # nothing lost, nothing twice, NULLs still NULL
    assert _all(db, T0 + 1800, T0 + 5400) == {c: [r for r in v if T0 + 1800 <= r[0] < T0 + 5400]
                                             for c, v in before.items()}
    rolled = conn.execute("SELECT count(*) FROM rollups_hourly").fetchone()[0]
    assert rolled == 9                                # 3 finished hours x 3 cards
    # the newest row of a card that stopped answering stays plain (latest_samples reads it)
    store.close()


def test_the_newest_sample_of_a_silent_card_stays_in_latest_samples(tmp_path):
    db = str(tmp_path / "ops.db")
    store = Store(db)
    store.maintenance_budget_s = 0.0
    for k in range(100):
        _sweep(store, T0 + k * 10.0, [55.0, 56.0] if k < 50 else [55.0])
    store.maintain(T0 + 5 * HOUR)
    latest = dict(store.conn.execute("SELECT idx, ts FROM latest_samples").fetchall())
    assert latest == {0: T0 + 99 * 10.0, 1: T0 + 49 * 10.0}
    assert sum(len(v) for v in _all(db).values()) == 150
    store.close()


def test_late_samples_of_a_compacted_hour_merge_into_its_chunk(tmp_path):
    """A sweep held through a full disk and written an hour later lands in an hour already compacted:
    it is merged into the chunk and the hour's rollup counts it."""
    db = str(tmp_path / "ops.db")
    store = Store(db)
    store.maintenance_budget_s = 0.0
    for k in range(0, 360, 2):
        _sweep(store, T0 + k * 10.0, [60.0])
    for k in range(360, 3 * 360, 6):
        _sweep(store, T0 + k * 10.0, [61.0])
    store.maintain(T0 + 3 * HOUR + 1)
    assert store.conn.execute("SELECT n FROM sample_chunks WHERE hour = ?", (T0,)).fetchone() == (180,)
    _sweep(store, T0 + 15.0, [99.0])                 # late
    # the compaction cursor has passed T0: the late row stays in the head and is read all the same
    assert any(r[1] == 99.0 for r in _all(db)[1])
    store.close()


def test_retention_drops_whole_chunks_in_bounded_batches(tmp_path):
    db = str(tmp_path / "ops.db")
    store = Store(db, raw_retention_days=1)
    store.maintenance_budget_s = 0.0
    for k in range(0, 6 * 360, 12):
        _sweep(store, T0 + k * 10.0, [60.0, 61.0])
    store.maintain(T0 + 6 * HOUR + 1)
    assert store.conn.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 10     # hours 0-4 x 2 cards
    store.maintain(T0 + 86400 + 4 * HOUR + 1)         # hours T0 .. T0+3h are past one day
    hours = [h for (h,) in store.conn.execute("SELECT DISTINCT hour FROM sample_chunks ORDER BY hour")]
    assert hours == [T0 + 4 * HOUR, T0 + 5 * HOUR]      # 5h: compacted meanwhile
    assert store.conn.execute("SELECT count(*) FROM rollups_hourly").fetchone()[0] == 12    # kept 400 days
    store.close()


# ---- mixops export (DESIGN §4): every stored value, nulls left out, from the head and the chunks alike ----

def _export(db: str, *args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    from tests.console.collectproc import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "export", "--db", db, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _compacted(tmp_path) -> tuple[str, dict[int, list[tuple[object, ...]]]]:
    db = str(tmp_path / "ops.db")
    store = Store(db)
    store.maintenance_budget_s = 0.0
    for k in range(2 * 360 + 60):
        _sweep(store, T0 + k * 10.0, [60.0 + k % 3, None if k % 4 == 0 else 48.5])
    store.maintain(T0 + 3 * HOUR + 60)
    assert store.conn.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 4
    store.close()
    return db, _all(db)


def test_export_csv_gives_every_stored_value_and_leaves_nulls_empty(tmp_path):
    import csv
    import io

    db, held = _compacted(tmp_path)
    code, out, err = _export(db, "--format", "csv", "--out", "-")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == sum(len(v) for v in held.values()) == 2 * (2 * 360 + 60)
    card1 = [r for r in rows if r["card"] == "1"]
    assert sum(1 for r in card1 if r["temperature_c"] == "") == sum(1 for k in range(780) if k % 4 == 0)
    assert all(r["power_w"] == "" for r in card1 if r["temperature_c"] == "")
    assert {r["temperature_c"] for r in rows if r["card"] == "0"} == {"60", "61", "62"}
    assert float(rows[0]["ts"]) == T0 and rows[0]["time"].endswith("Z") and rows[0]["health"] == "ok"
    assert "samples of 2 cards" in err


def test_export_openmetrics_has_no_sample_for_what_was_not_reported(tmp_path):
    db, held = _compacted(tmp_path)
    out = tmp_path / "x.om"
    code, _out, err = _export(db, "--format", "openmetrics", "--out", str(out), "--cards", "a/1")
    assert code == 0, err
    text = out.read_text()
    assert text.endswith("# EOF\n") and "# TYPE mixops_card_temperature_celsius gauge" in text
    temps = [ln for ln in text.splitlines() if ln.startswith("mixops_card_temperature_celsius{")]
    assert len(temps) == sum(1 for k in range(780) if k % 4)           # nulls absent, never 0
    assert all('card="1"' in ln for ln in temps)
    assert not any(" 0 " in ln for ln in temps)
    health = [ln for ln in text.splitlines() if ln.startswith("mixops_card_health{")]
    assert len(health) == 780


def test_export_bad_range_is_one_line(tmp_path):
    db, _ = _compacted(tmp_path)
    code, out, err = _export(db, "--format", "csv", "--out", "-", "--from", "yesterday")
    assert code == 2 and not out and err.count("\n") == 1 and "--from 'yesterday'" in err, err
    code, out, err = _export(db, "--format", "csv", "--out", "-", "--from", "2030-01-02", "--to", "2030-01-01")
    assert code == 2 and "--to must be after --from" in err


# ---- migration: a database the previous version wrote upgrades in place, without losing a sample ------

def test_a_v5_database_written_by_the_previous_version_upgrades_without_losing_a_sample(tmp_path):
    import shutil

    from console.store import SCHEMA_VERSION
    from tests.conftest import FIXTURES

    db = tmp_path / "v5.db"
    shutil.copy(FIXTURES / "db" / "v5-demo.db", db)
    old = sqlite3.connect(db)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 5
    want = {cid: [tuple(r[1:]) for r in rows] for cid, rows in _group(old.execute(
        "SELECT card_id, ts, temperature_c, utilization_pct, memory_used_mib, memory_total_mib, power_w, health, "
        "ecc_uncorrected FROM samples ORDER BY card_id, ts").fetchall()).items()}
    rollups = old.execute("SELECT * FROM rollups_hourly ORDER BY card_id, hour").fetchall()
    old.close()
    assert sum(len(v) for v in want.values()) == 4928
    store = Store(str(db))                       # upgrades v5 -> v6 -> v7 in place
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _all(str(db)) == want
    newest = store.conn.execute("SELECT max(ts) FROM samples").fetchone()[0]
    store.maintain(newest + 3 * HOUR)            # every hour of it moves into chunks
    assert store.conn.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] > 0
    assert _all(str(db)) == want                  # nothing lost or changed by the move either
    # the hours the old version rolled up keep their rows; the rest are rolled up now
    assert set(rollups) <= set(store.conn.execute("SELECT * FROM rollups_hourly").fetchall())
    store.close()


def _group(rows: list[tuple[object, ...]]) -> dict[int, list[tuple[object, ...]]]:
    out: dict[int, list[tuple[object, ...]]] = {}
    for r in rows:
        out.setdefault(int(r[0]), []).append(r)  # type: ignore[call-overload]
    return out


KILLED_COMPACTOR = """
import sys, time
from console.store import Store
store = Store(sys.argv[1])
store.maintenance_budget_s = 0.0
print("go", flush=True)
now = float(sys.argv[2])
for _ in range(100000):
    if not store.maintenance_step(now):
        break
print("done", flush=True)
time.sleep(60)
"""


def test_a_compaction_killed_at_any_moment_loses_nothing(tmp_path):
    """SIGKILL while finished hours move into chunks: every committed sample is still read exactly once."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from tests.console.collectproc import ROOT

    template = str(tmp_path / "template.db")
    store = Store(template)
    store.maintenance_budget_s = 0.0
    for k in range(6 * 360):
        _sweep(store, T0 + k * 10.0, [60.0 + k % 3, 50.0, None, 41.5] * 8)
    store.close()
    before = _all(template)
    total = 6 * 32                                   # 6 hours x 32 cards, once every hour has moved
    moved: list[int] = []
    for delay in (0.05, 0.15, 0.3, 0.6):
        db = str(tmp_path / f"killed-{delay}.db")
        shutil.copy(template, db)
        with subprocess.Popen([sys.executable, "-c", KILLED_COMPACTOR, db, str(T0 + 8 * HOUR)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None and proc.stdout.readline() == "go\n"
            time.sleep(delay)                        # a different moment of the move each time
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert _all(db) == before, f"after a kill at {delay} s"
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        moved.append(conn.execute("SELECT count(*) FROM sample_chunks").fetchone()[0])
        conn.close()
        store = Store(db)                            # the next writer finishes the move
        store.maintain(T0 + 8 * HOUR)
        store.close()
        assert _all(db) == before
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == total
        conn.close()
    assert any(0 < m < total for m in moved), moved    # at least one kill landed in the middle of the move


def test_history_written_by_the_fast_path_reads_like_live_sweeps(tmp_path):
    """Store.write_history (importers, benches): every sample reads back, and the hour has its sweeps, so
    the report's coverage is 100 % and no collector gap is invented."""
    from console import reports

    db = str(tmp_path / "ops.db")
    store = Store(db)
    _sweep(store, T0 - 10.0, [50.0, 51.0])                  # the cards exist (a first live sweep)
    cids = [r[0] for r in store.conn.execute("SELECT id FROM cards ORDER BY idx")]
    ts = T0 + 10.0 * np.arange(360)
    temp = 60.0 + np.arange(360) % 7
    rows = [(float(t), float(v), 90.0, 1000.0, 80000.0, None if k % 5 == 0 else 300.0, "ok", None)
            for k, (t, v) in enumerate(zip(ts, temp, strict=True))]
    cols = {cid: Columns.from_rows(rows) for cid in cids}
    store.write_history(T0, cols)
    store.write_history(T0, cols)                          # again: no sweep twice
    assert store.conn.execute("SELECT count(*), min(cards), max(cards) FROM sweeps WHERE started >= ?",
                              (T0,)).fetchone() == (360, 2, 2)
    got = _all(db, T0, T0 + HOUR)
    assert sorted(got) == cids and all(len(v) == 360 for v in got.values())
    assert got[cids[0]][0][5] is None                       # power not reported: NULL, never 0
    rep = reports.build(store.conn, T0, T0 + HOUR, now=T0 + HOUR + 1)
    coverage = next(v for k, v in rep.summary.items() if k.startswith("Collector coverage"))
    assert coverage.startswith("100.0 %"), coverage
    store.close()
