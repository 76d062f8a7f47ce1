"""The store on a real SQLite file: schema, transactions, retention, rollups, file mode."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity
from console.store import SCHEMA_VERSION, Store, StoreError

CONTRACT = {
    "nodes": {"name", "host", "port", "rack", "slot", "vendor", "status", "last_seen", "last_error"},
    "cards": {"id", "node", "idx", "vendor", "model", "serial", "bus_id"},
    "samples": {"card_id", "ts", "temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib",
                "power_w", "health"},
    "faults": {"id", "ts", "node", "card_idx", "vendor", "code", "severity", "action", "message"},
    "incidents": {"id", "opened_at", "severity", "state", "title", "node", "card_idx", "job",
                  "acknowledged_at", "acknowledged_by", "resolved_at"},
    "jobs": {"name", "state", "last_progress_at", "last_step"},
    "checkpoints": {"job", "step", "ts", "path"},
}


def _report(node, ts, temps, ok=True, error=None, faults=()):
    cards = tuple(CardSample(index=i, model="H100", serial=f"S{node}{i}", health=Health.OK, temperature_c=t)
                  for i, t in enumerate(temps))
    return NodeReport(node, ok, ts, 0.1, "nvidia", cards if ok else (), faults, (), error)


def test_contract_relations_and_private_file(tmp_path):
    path = str(tmp_path / "ops.db")
    Store(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for table, cols in CONTRACT.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        assert cols <= have, (table, cols - have)


def test_sweep_written_in_one_transaction(tmp_path):
    store = Store(str(tmp_path / "ops.db"))
    store.sync_nodes([("a", "a", 22, "R1", 1, "nvidia"), ("b", "b", 22, "R1", 2, None)])
    fault = Fault("Xid 79", Severity.CRITICAL, Action.REBOOT_NODE, "fallen off", 0, 1000.0)
    sid = store.write_sweep(1000.0, 1001.0, [_report("a", 1000.0, [50, None], faults=(fault,)),
                                            _report("b", 1000.0, [], ok=False, error="connection refused")])
    c = store.conn
    assert c.execute("SELECT count(*) FROM samples").fetchone()[0] == 2
    assert c.execute("SELECT temperature_c FROM samples ORDER BY card_id").fetchall() == [(50.0,), (None,)]
    assert c.execute("SELECT name, status, last_error FROM nodes ORDER BY name").fetchall() == [
        ("a", "ok", None), ("b", "failed", "connection refused")]
    # only the node that did not answer has an outcome row; the sweep row counts the rest
    assert c.execute("SELECT node, status FROM node_outcomes WHERE sweep_id=?", (sid,)).fetchall() == [
        ("b", "failed")]
    assert c.execute("SELECT nodes_ok, nodes_failed FROM sweeps WHERE id=?", (sid,)).fetchone() == (1, 1)
    assert c.execute("SELECT code, action, card_idx FROM faults").fetchall() == [("Xid 79", "reboot_node", 0)]
    # the same cards map to the same ids in the next sweep
    store.write_sweep(1010.0, 1011.0, [_report("a", 1010.0, [51, 52])])
    assert c.execute("SELECT count(*) FROM cards").fetchone()[0] == 2
    store.close()


def test_rollup_and_retention(tmp_path):
    store = Store(str(tmp_path / "ops.db"), raw_retention_days=1)
    base = 1_700_000_000 - 1_700_000_000 % 3600
    for k in range(6):
        store.write_sweep(base + k * 600, base + k * 600 + 1, [_report("a", base + k * 600, [40 + k])])
    assert store.rollup(base + 7200) == 1
    row = store.conn.execute("SELECT n, temperature_c_min, temperature_c_avg, temperature_c_max "
                             "FROM rollups_hourly").fetchone()
    assert row == (6, 40.0, 42.5, 45.0)
    store.expire(base + 2 * 86400)
    assert store.conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM rollups_hourly").fetchone()[0] == 1
    store.close()


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE x(y)").connection.commit()
    with pytest.raises(StoreError, match="not a mixops database"):
        Store(str(path))


def test_unwritable_location_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError):
        Store("/proc/mixops/ops.db")
