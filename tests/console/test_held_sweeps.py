"""The collector's sweeps held in memory while the database cannot be written (issue 16 #4): bounded, in
order, no fault lost, no half-written sweep left in the store's caches. A real SQLite file whose write lock
another connection holds; the fake transport answers cnmon with fixture text (the layers above SSH)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from console.service import Collector
from console.store import Store, StoreError
from tests.console.test_counters import _Node, site  # noqa: F401 - the site fixture


def _locked(db: str) -> sqlite3.Connection:
    """Another connection holding the write lock (BEGIN EXCLUSIVE) until it commits."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_held_sweeps_are_bounded_and_keep_their_faults(site, tmp_path: Path):  # noqa: F811
    db = str(tmp_path / "ops.db")
    state = {"ecc": 0}
    store = Store(db)
    store.set_busy_timeout(0)
    first = Collector(site, store, session_factory=lambda ep: _Node(state), hold_rows=1)
    one = first.sweep()
    first.close()
    rows = len(one.reports) + sum(len(r.cards) for r in one.reports)
    collector = Collector(site, store, session_factory=lambda ep: _Node(state), hold_rows=2 * rows)
    try:
        locker = _locked(db)
        held = []
        for ecc in (0, 3, 3, 3, 3):                 # the total grows once: one ECC fault, in the 2nd held sweep
            state["ecc"] = ecc
            held.append(collector.sweep())
        assert [s.store_problem for s in held] == ["database is locked"] * 5
        assert [s.held for s in held] == [1, 2, 2, 2, 2]          # never more than the bound
        assert all(s.sweep_id == 0 for s in held)
        locker.execute("COMMIT")
        locker.close()
        back = collector.sweep()
        # the bound counts the sweep just made: 2 sweeps fit, the other 4 gave up their samples
        assert back.store_problem is None and back.written == 2 and back.dropped == 4
    finally:
        collector.close()
        store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    started = [r[0] for r in conn.execute("SELECT started FROM sweeps ORDER BY id")]
    assert started == [one.started, held[-1].started, back.started]
    # the fault came from a sweep whose samples did not fit: it is stored once, at its own time
    faults = conn.execute("SELECT ts FROM faults WHERE code = 'ECC-UE'").fetchall()
    assert faults == [(held[1].reports[0].started,)]
    assert conn.execute("SELECT value FROM card_counters WHERE name = 'ecc_uncorrected' AND idx = 1").fetchone() == (3,)
    assert conn.execute("SELECT count(*) FROM samples WHERE ts = ?", (held[1].reports[0].started,)).fetchone() == (0,)
    conn.close()


def test_a_failed_write_leaves_no_card_id_behind(site, tmp_path: Path):  # noqa: F811
    """Not holding (--once, the window): the error is raised; the next sweep still stores the new cards."""
    db = str(tmp_path / "ops.db")
    store = Store(db)
    store.set_busy_timeout(0)
    collector = Collector(site, store, session_factory=lambda ep: _Node({"ecc": 0}))
    try:
        locker = _locked(db)
        with pytest.raises(StoreError, match="cannot write sweep: database is locked"):
            collector.sweep()
        locker.execute("ROLLBACK")
        locker.close()
        ok = collector.sweep()
        assert ok.sweep_id == 1 and ok.store_problem is None
    finally:
        collector.close()
        store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM samples WHERE card_id NOT IN (SELECT id FROM cards)").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM cards").fetchone()[0] == len(ok.reports[0].cards) > 0
    conn.close()


def test_full_disk_rollback_names_the_real_cause(tmp_path: Path):
    """After SQLITE_FULL SQLite has rolled back itself: the error is the disk, not "cannot rollback"."""
    from console.store import error_text

    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise sqlite3.OperationalError("cannot rollback - no transaction is active") from None
    except sqlite3.OperationalError as exc:
        exc.__context__ = sqlite3.OperationalError("database or disk is full")
        assert error_text(exc) == "database or disk is full"
