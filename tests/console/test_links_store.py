"""Links in a real SQLite file: the v8 tables, counters as increases per sweep (a reset is no burst), state
changes with their time, a collector restart reading the baseline back, the upgrade of an older database."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from collectors.model import CardSample, Link, LinkState, NodeReport
from console.links import deltas
from console.store import SCHEMA_VERSION, Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def report(t: float, *links: Link, node: str = "gpu-1", ok: bool = True) -> NodeReport:
    return NodeReport(node, ok, t, 0.1, "nvidia", cards=(CardSample(0, model="H100"),), links=links)


def nv(link: str = "3", state: LinkState = LinkState.UP, crc: int | None = 0, card: int = 0) -> Link:
    return Link("nvlink", link, card, state=state, speed_gbps=212.496 if state is LinkState.UP else None,
                counters={"crc_errors": crc, "replay_errors": 0})


def rows(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def test_deltas_rules():
    assert deltas({}, {"a": 5}) == ({"a": None}, {"a": 5})                   # no baseline
    assert deltas({"a": 5}, {"a": 9}) == ({"a": 4}, {"a": 9})
    assert deltas({"a": 9}, {"a": 2}) == ({"a": None}, {"a": 2})             # reset: no burst, new baseline
    assert deltas({"a": 9}, {"a": None}) == ({"a": None}, {"a": 9})          # not printed: keep the baseline


def test_links_table_counters_and_events(tmp_path):
    db = tmp_path / "m.db"
    store = Store(str(db))
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    ib = Link("ib", "mlx5_0/1", None, state=LinkState.UP, speed_gbps=400.0, counters={"symbol_error": 10})
    store.write_sweep(100, 101, [report(100, nv(crc=100), ib)])
    got = rows(db, "SELECT node, card_idx, kind, link, state, speed_gbps, last_change, counters FROM links ORDER BY id")
    assert got[0] == ("gpu-1", 0, "nvlink", "3", "up", 212.496, 100.0,
                      json.dumps({"crc_errors": None, "replay_errors": None}))
    assert got[1][:4] == ("gpu-1", None, "ib", "mlx5_0/1")
    store.write_sweep(110, 111, [report(110, nv(crc=130), ib)])
    (counters,) = rows(db, "SELECT counters FROM links WHERE kind = 'nvlink'")[0]
    assert json.loads(counters) == {"crc_errors": 30, "replay_errors": 0}
    assert rows(db, "SELECT ts, name, delta FROM link_counter_deltas") == [(110.0, "crc_errors", 30)]
    # the node rebooted: the total went down: no burst, the lower total is the new baseline
    store.write_sweep(120, 121, [report(120, nv(crc=2), ib)])
    assert json.loads(rows(db, "SELECT counters FROM links WHERE kind = 'nvlink'")[0][0])["crc_errors"] is None
    assert len(rows(db, "SELECT * FROM link_counter_deltas")) == 1
    # link down, then up: two events with their times; a failed node's sweep changes nothing
    store.write_sweep(130, 131, [report(130, nv(state=LinkState.DOWN, crc=2), ib)])
    store.write_sweep(135, 136, [report(135, nv(state=LinkState.UP, crc=2), node="gpu-1", ok=False)])
    store.write_sweep(140, 141, [report(140, nv(crc=2), ib)])
    assert rows(db, "SELECT ts, kind, link, state, previous FROM link_events") == [
        (130.0, "nvlink", "3", "down", "up"), (140.0, "nvlink", "3", "up", "down")]
    assert rows(db, "SELECT last_change, ever_up FROM links WHERE kind = 'nvlink'") == [(140.0, 1)]
    store.close()
    # a restart: the totals come back from the file, the next increase is counted from them
    store = Store(str(db))
    store.write_sweep(150, 151, [report(150, nv(crc=7), ib)])
    assert rows(db, "SELECT ts, delta FROM link_counter_deltas WHERE ts = 150") == [(150.0, 5)]
    store.close()


def test_a_steady_sweep_writes_no_link_row(tmp_path):
    db = tmp_path / "m.db"
    store = Store(str(db))
    store.write_sweep(100, 101, [report(100, nv(crc=1))])
    store.write_sweep(110, 111, [report(110, nv(crc=1))])     # first increase: 0 (was None)
    before = store.conn.total_changes
    store.write_sweep(120, 121, [report(120, nv(crc=1))])
    # sweep row, node row, card's last_seen, sample: no link update, no event, no delta row
    assert store.conn.total_changes - before <= 4
    store.close()


def test_unknown_state_keeps_the_last_known_one(tmp_path):
    db = tmp_path / "m.db"
    store = Store(str(db))
    store.write_sweep(100, 101, [report(100, Link("roce", "0", 2, state=LinkState.DOWN))])
    store.write_sweep(110, 111, [report(110, Link("roce", "0", 2, counters={"link_up_count": 4}))])
    assert rows(db, "SELECT state FROM links") == [("down",)]
    assert rows(db, "SELECT * FROM link_events") == []
    store.close()


def test_older_database_upgrades_in_place_with_links(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURES / "db" / "v5-demo.db", db)
    store = Store(str(db))
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {"links", "link_events", "link_counter_deltas"} <= set(store.db.table_names())
    node = rows(db, "SELECT name FROM nodes LIMIT 1")[0][0]
    store.write_sweep(2e9, 2e9 + 1, [report(2e9, nv(), node=node)])
    store.close()
    assert rows(db, "SELECT node, state FROM links") == [(node, "up")]


def test_an_unchanged_source_is_an_increase_of_zero(tmp_path):
    db = tmp_path / "m.db"
    store = Store(str(db))
    store.write_sweep(100, 101, [report(100, nv(crc=1))])
    store.write_sweep(110, 111, [report(110, nv(crc=31))])
    assert json.loads(rows(db, "SELECT counters FROM links")[0][0])["crc_errors"] == 30
    same = replace(report(120), links=(), links_same=("nvlink", "nvlink-errors"))
    store.write_sweep(120, 121, [same])
    assert json.loads(rows(db, "SELECT counters FROM links")[0][0]) == {"crc_errors": 0, "replay_errors": 0}
    assert rows(db, "SELECT state, speed_gbps FROM links") == [("up", 212.496)]      # the state as stored
    store.close()
