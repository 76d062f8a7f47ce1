"""Running totals (ECC counts) are deltas against the last stored value: nothing is re-reported at every
sweep or at a collector start, an increase is one fault, a counter reset is no error burst; through the
real collector path, parsers and store on a real SQLite file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity
from collectors.ssh import Pending, Section, SweepOutput
from console import counters
from console.service import Collector
from console.site import load_site
from tests.conftest import fixture_text

CNMON = fixture_text("cambricon/mlu370-x8-v5.txt")     # card 1 prints Ecc-Error 2


def _cnmon(ecc1: int) -> str:
    return CNMON.replace("| 91%                 2 |", f"| 91%{ecc1:>18} |")


class _Node:
    """The transport of one node that answers cnmon with the totals the test sets."""

    def __init__(self, state: dict[str, int]) -> None:
        self.state = state

    def _out(self, commands) -> SweepOutput:
        out = SweepOutput()
        for cmd in commands:
            out.sections[cmd.section] = (Section(_cnmon(self.state["ecc"]), 0) if cmd.shell == "cnmon"
                                         else Section("cnmon\n", 0))
        return out

    def run(self, commands, since: int = 0) -> SweepOutput:
        return self._out(commands)

    def start(self, commands, since: int = 0) -> Pending:
        return Pending(commands, "test", time.time() + 10)

    def finish(self, pending: Pending) -> SweepOutput:
        return self._out(pending.commands)

    def close(self) -> None:
        return None


@pytest.fixture
def site(tmp_path: Path):
    path = tmp_path / "site.toml"
    path.write_text('[site]\nname = "t"\n[[racks]]\nname = "A01"\nslots = 2\n'
                    '[[nodes]]\nname = "mlu-1"\nhost = "127.0.0.1"\nrack = "A01"\nslot = 1\nvendor = "cambricon"\n')
    return load_site(str(path))


def _run(site, db: str, state: dict[str, int], sweeps: int = 1):
    from console.store import Store

    store = Store(db)
    collector = Collector(site, store, session_factory=lambda ep: _Node(state))
    try:
        return [collector.sweep() for _ in range(sweeps)]
    finally:
        collector.close()
        store.close()


def _ecc_faults(db: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT message FROM faults WHERE code = 'ECC-UE' ORDER BY id")]
    finally:
        conn.close()


def _open_incidents(db: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM incidents WHERE code = 'ECC-UE' AND state != 'resolved'"
                            ).fetchone()[0]
    finally:
        conn.close()


def test_standing_total_is_no_fault_at_any_sweep_or_restart(site, tmp_path):
    db = str(tmp_path / "ops.db")
    state = {"ecc": 2}
    for _start in range(4):                               # four collector starts on the same database
        summaries = _run(site, db, state, sweeps=3)
        assert all(not s.new_incidents for s in summaries)
    assert _ecc_faults(db) == [] and _open_incidents(db) == 0
    conn = sqlite3.connect(db)
    health = {h for (h,) in conn.execute("SELECT s.health FROM samples s JOIN cards c ON c.id = s.card_id "
                                          "WHERE c.idx = 1")}
    conn.close()
    assert health == {"warning"}, "a card carrying old errors is degraded, not critical and not healthy"


def test_increase_is_one_fault_and_reset_is_no_burst(site, tmp_path):
    db = str(tmp_path / "ops.db")
    state = {"ecc": 2}
    _run(site, db, state)
    state["ecc"] = 5
    _run(site, db, state, sweeps=3)                        # one increase, then standing
    assert len(_ecc_faults(db)) == 1 and "3 new" in _ecc_faults(db)[0] and "5 in all" in _ecc_faults(db)[0]
    state["ecc"] = 0                                       # card reset / driver reload: the counter restarts
    _run(site, db, state, sweeps=2)
    assert len(_ecc_faults(db)) == 1
    state["ecc"] = 1                                       # one new error after the reset
    _run(site, db, state)
    faults = _ecc_faults(db)
    assert len(faults) == 2 and "1 new" in faults[1]


def test_increase_arithmetic():
    assert counters.increase(None, 7) == 0                 # first sighting: the baseline
    assert counters.increase(7, 7) == 0
    assert counters.increase(7, 9) == 2
    assert counters.increase(9, 3) == 3                    # reset, then 3 new (Prometheus increase())


def test_apply_keeps_other_faults_and_marks_growth_critical():
    card = CardSample(index=1, health=Health.OK, ecc_uncorrected=4)
    xid = Fault("Xid 48", Severity.CRITICAL, Action.RESET_CARD, "NVRM: Xid 48", 0)
    report = NodeReport("n", True, 100.0, 0.1, "nvidia", (card,), (xid,))
    baseline: dict = {("n", 1, -1, "ecc_uncorrected"): 1}
    out, changes = counters.apply(report, baseline)
    assert [f.code for f in out.faults] == ["Xid 48", "ECC-UE"] and "3 new" in out.faults[1].message
    assert out.cards[0].health is Health.CRITICAL
    assert changes and changes[0].value == 4 and baseline[("n", 1, -1, "ecc_uncorrected")] == 4


def test_v5_database_upgrade_seeds_the_baseline(site, tmp_path):
    """A database the previous version wrote (v5) carries its cards' last totals into card_counters."""
    from console import store as store_mod

    db = str(tmp_path / "old.db")
    conn = sqlite3.connect(db)
    for step in store_mod.MIGRATIONS[:5]:
        for statement in step.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO nodes(name, vendor) VALUES ('mlu-1', 'cambricon')")
    for idx in range(3):
        conn.execute("INSERT INTO cards(id, node, idx, vendor) VALUES (?, 'mlu-1', ?, 'cambricon')", (idx + 1, idx))
    conn.execute("INSERT INTO samples VALUES (2, 1000, 50, 50, 1, 2, 100, 'critical', 2)")
    conn.commit()
    conn.close()
    _run(site, db, {"ecc": 2}, sweeps=2)                   # same total as the old version last saw
    assert _ecc_faults(db) == []
