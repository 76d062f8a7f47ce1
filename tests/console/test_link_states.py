"""The room's worst link per card from a real SQLite store (console.links.read_link_states): degraded for a link
slower than its peers, flapping, or with error counters over its kind's limit; a stale node's links not shown up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from console.links import LINK_CRITICAL, LINK_NA, LINK_OK, LINK_WARNING, read_link_states
from console.live import read_snapshot
from console.store import Store

NOW = 1_800_000_000.0


def _db(tmp_path: Path, links: list[tuple], nodes: list[tuple] | None = None) -> sqlite3.Connection:
    """links: (id, node, card, kind, link, state, speed_gbps); every node has cards 0..3."""
    path = tmp_path / "ops.db"
    Store(str(path)).close()
    conn = sqlite3.connect(path)
    names = sorted({r[1] for r in links})
    conn.executemany("INSERT INTO nodes (name, rack, slot, vendor, status, last_seen) VALUES (?,?,?,?,?,?)",
                     nodes or [(n, "A", i, "nvidia", "ok", NOW) for i, n in enumerate(names, 1)])
    conn.executemany("INSERT INTO cards (node, idx, vendor) VALUES (?,?,?)",
                     [(n, i, "nvidia") for n in names for i in range(4)])
    conn.executemany("INSERT INTO links (id, node, card_idx, kind, link, state, speed_gbps, first_seen) "
                     "VALUES (?,?,?,?,?,?,?,?)", [(*r, NOW - 3600) for r in links])
    conn.commit()
    return conn


def _states(conn: sqlite3.Connection, nodes: list[str]) -> dict[tuple[str, int], int]:
    card_node = [n for n in nodes for _ in range(4)]
    card_idx = [i for _ in nodes for i in range(4)]
    got = read_link_states(conn, card_node, card_idx, NOW)
    return {(n, i): int(s) for n, i, s in zip(card_node, card_idx, got, strict=True)}


def test_a_link_slower_than_its_peers_is_degraded(tmp_path: Path) -> None:
    conn = _db(tmp_path, [
        (1, "n1", 0, "nvlink", "0", "up", 200.0), (2, "n1", 1, "nvlink", "0", "up", 100.0),   # below 0.75 × 200
        (3, "n1", 2, "nvlink", "0", "up", 160.0),                                              # 0.8 × 200: fine
        (4, "n1", 3, "nvlink", "0", "up", None),                                               # no speed: no rank
        (5, "n2", 0, "roce", "0", "up", 100.0),                       # the only one of its kind: no peer
        (6, "n2", 1, "nvlink", "0", "up", 50.0), (7, "n2", 1, "nvlink", "1", "down", None),  # a down peer: none
        (8, "n3", None, "roce", "eth0", "up", 400.0), (9, "n3", None, "roce", "eth1", "up", 100.0),  # a slow NIC
        (10, "n4", 0, "nvlink", "0", "up", 200.0), (11, "n4", 1, "nvlink", "0", "up", 100.0),
        (12, "n4", 1, "nvlink", "1", "down", None)])                  # slow and down: down is worse
    got = _states(conn, ["n1", "n2", "n3", "n4"])
    assert [got[("n1", i)] for i in range(4)] == [LINK_OK, LINK_WARNING, LINK_OK, LINK_OK]
    assert got[("n2", 0)] == LINK_OK and got[("n2", 1)] == LINK_CRITICAL and got[("n2", 2)] == LINK_NA
    assert all(got[("n3", i)] == LINK_WARNING for i in range(4))      # a node's NIC counts for each card
    assert got[("n4", 1)] == LINK_CRITICAL


def test_flapping_and_error_counters_against_each_kinds_limit(tmp_path: Path) -> None:
    conn = _db(tmp_path, [
        (1, "n1", 0, "ib", "p1", "up", None), (2, "n1", 1, "nvlink", "0", "up", None),
        (3, "n1", 2, "nvlink", "1", "up", None), (4, "n1", 3, "nvlink", "2", "up", None),
        (5, "n2", 0, "nvlink", "0", "up", None), (6, "n2", 1, "nvlink", "0", "down", None),
        (7, "n2", 2, "nvlink", "0", "up", None)])
    conn.executemany("INSERT INTO link_counter_deltas VALUES (?,?,?,?)", [
        (NOW - 30, 1, "symbol_error", 100),          # ib: 20/min over 5 min, above its 10/min
        (NOW - 30, 2, "crc_errors", 100),            # nvlink: 20/min, below its 60/min
        (NOW - 30, 3, "crc_errors", 20_000),         # nvlink: far above
        (NOW - 400, 4, "crc_errors", 20_000),        # above, but before the 5 min window
        (NOW - 300, 5, "link_downed", 2),            # the vendor's flap counter: 2 downs (and ups) in 10 min
        (NOW - 30, 6, "crc_errors", 20_000)])        # down anyway
    conn.executemany("INSERT INTO link_events VALUES (?,?,?,?,?,?,?,?)",
                     [(NOW - 60 * k, 7, "n2", 2, "nvlink", "0", "up", "down") for k in range(2)])   # 2 < 3
    conn.commit()
    got = _states(conn, ["n1", "n2"])
    assert [got[("n1", i)] for i in range(4)] == [LINK_WARNING, LINK_OK, LINK_WARNING, LINK_OK]
    assert [got[("n2", i)] for i in range(3)] == [LINK_WARNING, LINK_CRITICAL, LINK_OK]
    conn.execute("INSERT INTO link_events VALUES (?,?,?,?,?,?,?,?)", (NOW - 1, 7, "n2", 2, "nvlink", "0", "up", "down"))
    conn.commit()
    assert _states(conn, ["n2"])[("n2", 2)] == LINK_WARNING        # the third change in 10 min: flapping


def test_a_stale_nodes_links_are_not_shown_up(tmp_path: Path) -> None:
    conn = _db(tmp_path, [(1, "n1", 0, "nvlink", "0", "up", None), (2, "n2", 0, "nvlink", "0", "up", None),
                          (3, "n2", 1, "nvlink", "0", "down", None), (4, "n3", 0, "nvlink", "0", "up", None)],
               nodes=[("n1", "A", 1, "nvidia", "ok", NOW), ("n2", "A", 2, "nvidia", "ok", NOW - 3600),
                      ("n3", "A", 3, "nvidia", "failed", NOW)])
    snap = read_snapshot(conn, now=NOW)
    assert snap.link_state is not None
    got = {(n, int(i)): int(s) for n, i, s in zip(snap.card_node, snap.card_idx, snap.link_state, strict=True)}
    assert got[("n1", 0)] == LINK_OK
    assert got[("n2", 0)] == LINK_NA               # stale: its link's last "up" is not known now
    assert got[("n2", 1)] == LINK_CRITICAL         # last known down: kept, never shown as up
    assert got[("n3", 0)] == LINK_NA               # failed node


def test_no_links_stored_is_na_for_every_card(tmp_path: Path) -> None:
    conn = _db(tmp_path, [(1, "n1", 0, "nvlink", "0", "unknown", None)])
    assert set(_states(conn, ["n1"]).values()) == {LINK_NA}
