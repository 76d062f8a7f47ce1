"""Links in the store (DESIGN §7 `links`): each link's last state, its counters as increases per sweep, its
state changes with their time. Used by console.store inside the sweep's transaction (one writer).

A counter's increase is counted against the last total stored for it: a link seen for the first time, a
counter not printed before and a total lower than the last (a node reboot, a driver reload, an operator's
`nvidia-smi nvlink -r`) give no increase (None) for that sweep and become the new baseline: a reset is never
an error burst. A collector restart reads the totals back from the database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from collectors.links import FLAP_COUNTERS, counted
from collectors.model import LinkState, NodeReport
from console.incidents import LINK_SETTINGS

LinkKey = tuple[str, int, str, str]     # node, card index (-1: a NIC of no card), kind, link
# the kinds whose counters a link source reads (a source whose text is unchanged: their increase is 0)
SAME_KINDS: dict[str, frozenset[str]] = {"nvlink-errors": frozenset({"nvlink"}), "hccn": frozenset({"roce"}),
                                         "rdma": frozenset({"ib", "roce", "rdma"})}


def deltas(totals: dict[str, int], counters: dict[str, int | None]) -> tuple[dict[str, int | None], dict[str, int]]:
    """This sweep's increase of each printed counter against the last totals, and the totals to keep.
    None where there is no baseline, where the value is not printed, and where it went down (a reset)."""
    out: dict[str, int | None] = {}
    kept = dict(totals)
    for name, value in counters.items():
        if value is None:
            out[name] = None
            continue
        before = totals.get(name)
        out[name] = None if before is None or value < before else value - before
        kept[name] = value
    return out, kept


@dataclass(slots=True)
class _Row:
    id: int
    state: str
    speed_gbps: float | None
    peer: str | None
    detail: str | None
    ever_up: bool
    last_change: float | None
    counters: dict[str, int | None] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


class LinkBook:
    """The links table's last rows, kept in memory by the one writer so a steady sweep writes nothing."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._rows: dict[LinkKey, _Row] | None = None
        self._by_node: dict[str, list[LinkKey]] = {}
        self._counting: dict[str, set[LinkKey]] = {}    # per node: the links whose last increase is not all 0

    def forget(self) -> None:
        """Drop the cache (a write was rolled back); it is read again at the next sweep."""
        self._rows = None
        self._by_node = {}
        self._counting = {}

    def _load(self) -> dict[LinkKey, _Row]:
        if self._rows is None:
            rows: dict[LinkKey, _Row] = {}
            for (lid, node, card, kind, link, peer, state, speed, detail, ever, last_change, counters,
                 totals) in self.conn.execute(
                    "SELECT id, node, card_idx, kind, link, peer, state, speed_gbps, detail, ever_up, last_change, "
                    "counters, totals FROM links"):
                rows[(str(node), -1 if card is None else int(card), str(kind), str(link))] = _Row(
                    int(lid), str(state), speed, peer, detail, bool(ever), last_change,
                    json.loads(counters) if counters else {}, json.loads(totals) if totals else {})
            self._rows = rows
            self._by_node = {}
            self._counting = {}
            for key, row in rows.items():
                self._by_node.setdefault(key[0], []).append(key)
                if any(row.counters.values()):
                    self._counting.setdefault(key[0], set()).add(key)
        return self._rows

    def write(self, reports: Sequence[NodeReport]) -> dict[LinkKey, _Row]:
        """Write the links of the nodes that answered (in the caller's transaction); returns the rows to keep
        once it commits (LinkBook.commit)."""
        rows = self._load()
        changed: dict[LinkKey, _Row] = {}
        events: list[tuple[object, ...]] = []
        updates: list[tuple[object, ...]] = []
        increases: list[tuple[float, int, str, int]] = []
        for r in reports:
            if r.ok and r.links_same:
                self._unchanged(r, rows, changed, updates)
            if not r.ok or not r.links:
                continue
            ts = r.started
            for ln in r.links:
                key = (r.node, -1 if ln.card_index is None else ln.card_index, ln.kind, ln.link)
                row = changed.get(key) or rows.get(key)     # as _unchanged left it in this sweep
                printed: dict[str, int] = {k: v for k, v in ln.counters.items() if v is not None}
                if row is None:
                    first: dict[str, int | None] = dict.fromkeys(ln.counters)
                    cur = self.conn.execute(
                        """INSERT INTO links(node, card_idx, kind, link, peer, state, speed_gbps, last_change,
                           first_seen, ever_up, detail, counters, totals) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                        (r.node, ln.card_index, ln.kind, ln.link, ln.peer, ln.state.value, ln.speed_gbps, ts, ts,
                         int(ln.state is LinkState.UP), ln.detail, json.dumps(first, sort_keys=True),
                         json.dumps(printed, sort_keys=True)))
                    changed[key] = _Row(int(cur.lastrowid or 0), ln.state.value, ln.speed_gbps, ln.peer, ln.detail,
                                        ln.state is LinkState.UP, ts, first, printed)
                    continue
                inc, totals = deltas(row.totals, ln.counters) if ln.counters else ({}, row.totals)
                state = row.state if ln.state is LinkState.UNKNOWN else ln.state.value
                last_change = row.last_change
                if state != row.state:
                    events.append((ts, row.id, r.node, ln.card_index, ln.kind, ln.link, state, row.state))
                    last_change = ts
                speed = ln.speed_gbps if ln.speed_gbps is not None or ln.state is not LinkState.UP else row.speed_gbps
                if ln.state is LinkState.DOWN:
                    speed = None            # a down link has no speed (NVLink prints none for <inactive>)
                counters = inc if ln.counters else row.counters
                new = _Row(row.id, state, speed, ln.peer or row.peer, ln.detail if ln.detail else row.detail,
                           row.ever_up or state == LinkState.UP.value, last_change, counters, totals)
                increases.extend((ts, row.id, k, v) for k, v in inc.items() if v and counted(k))
                if (new.state, new.speed_gbps, new.peer, new.detail, new.ever_up, new.counters, new.totals) != (
                        row.state, row.speed_gbps, row.peer, row.detail, row.ever_up, row.counters, row.totals):
                    updates.append((new.state, new.speed_gbps, new.peer, new.detail, int(new.ever_up), new.last_change,
                                    json.dumps(new.counters, sort_keys=True), json.dumps(new.totals, sort_keys=True),
                                    row.id))
                    changed[key] = new
        self.conn.executemany(
            """UPDATE links SET state = ?, speed_gbps = ?, peer = ?, detail = ?, ever_up = ?, last_change = ?,
               counters = ?, totals = ? WHERE id = ?""", updates)
        self.conn.executemany("INSERT INTO link_events VALUES (?,?,?,?,?,?,?,?)", events)
        self.conn.executemany("INSERT INTO link_counter_deltas VALUES (?,?,?,?)", increases)
        return changed

    def _unchanged(self, r: NodeReport, rows: dict[LinkKey, _Row], changed: dict[LinkKey, _Row],
                   updates: list[tuple[object, ...]]) -> None:
        """The node's counters printed the same text as in its last sweep: their increase in this sweep is 0."""
        kinds = set().union(*(SAME_KINDS.get(name, frozenset()) for name in r.links_same))
        for key in self._counting.get(r.node, ()):
            row = rows[key]
            if key[2] not in kinds or not row.counters or all(v == 0 for v in row.counters.values()):
                continue
            zeros: dict[str, int | None] = dict.fromkeys(row.counters, 0)
            new = _Row(row.id, row.state, row.speed_gbps, row.peer, row.detail, row.ever_up, row.last_change, zeros,
                       row.totals)
            updates.append((new.state, new.speed_gbps, new.peer, new.detail, int(new.ever_up), new.last_change,
                            json.dumps(zeros, sort_keys=True), json.dumps(new.totals, sort_keys=True), row.id))
            changed[key] = new

    def commit(self, changed: dict[LinkKey, _Row]) -> None:
        """Keep the rows of a committed write."""
        if self._rows is not None:
            for key, row in changed.items():
                if key not in self._rows:
                    self._by_node.setdefault(key[0], []).append(key)
                if any(row.counters.values()):
                    self._counting.setdefault(key[0], set()).add(key)
                else:
                    self._counting.get(key[0], set()).discard(key)
            self._rows.update(changed)


# Worst link state of a card, as the room's "links" colour mode draws it (console.live.Snapshot.link_state).
LINK_OK, LINK_WARNING, LINK_CRITICAL, LINK_NA = 0, 1, 2, 3


def read_link_states(conn: sqlite3.Connection, card_node: Sequence[str], card_idx: Sequence[int],
                     now: float) -> npt.NDArray[np.int8]:
    """The worst link state of every card (LINK_* codes): down → critical; flapping (the incidents' flap
    rule), error counters rising above the kind's limit, or slower than its peers (up below `slow_ratio` of
    the best speed of its kind on its node, as LINK-SLOW) → warning; up → ok. A node-level link (a RoCE/IB
    NIC, no card) counts for every card of its node. A card with no link in any known state is LINK_NA,
    never ok.

    Cheap at 64,000 links: one pass over `links` grouped by card and kind (no row per link reaches Python),
    and over the windows of events and counter increases returning only the links over a limit."""
    s = LINK_SETTINGS
    per_card: dict[tuple[str, int], int] = {}
    per_node: dict[str, int] = {}

    def mark(node: str, card: int | None, rank: int) -> None:
        if card is None:
            if rank > per_node.get(node, -1):
                per_node[node] = rank
        elif rank > per_card.get((node, card), -1):
            per_card[(node, card)] = rank

    groups = conn.execute(
        """SELECT node, card_idx, kind, max(state = 'down'), max(state = 'up'),
                  min(CASE WHEN state = 'up' THEN speed_gbps END), max(CASE WHEN state = 'up' THEN speed_gbps END),
                  count(CASE WHEN state = 'up' THEN speed_gbps END)
           FROM links WHERE state IN ('up', 'down') GROUP BY node, card_idx, kind""").fetchall()
    out = np.full(len(card_node), LINK_NA, dtype=np.int8)
    if not groups:
        return out
    # the best speed of each kind on each node among its links up with a speed, with two at least (a peer to
    # be slower than): a card (or the node's NICs) whose slowest link up of that kind is below its share is slow
    best: dict[tuple[str, str], tuple[float, int]] = {}
    for node, _card, kind, _down, _up, _low, high, n in groups:
        if high is not None:
            top, seen = best.get((node, kind), (high, 0))
            best[(node, kind)] = (max(top, high), seen + int(n))
    for node, card, kind, down, up, low, _high, _n in groups:
        top, peers = best.get((node, kind), (0.0, 0))
        slow = s.slow_ratio > 0 and low is not None and peers >= 2 and low < top * s.slow_ratio
        mark(node, card, LINK_CRITICAL if down else LINK_WARNING if slow else LINK_OK if up else -1)
    # flapping and error bursts: only the links over a limit come back (the lowest error limit of any kind in
    # SQL, each link's own kind checked below)
    marks = ",".join("?" * len(FLAP_COUNTERS))
    flap_names = sorted(FLAP_COUNTERS)
    minutes = s.rate_window_s / 60.0
    lowest = min([*s.error_rate_per_min.values(), s.default_error_rate_per_min]) * minutes
    flap_from, rate_from = now - s.flap_window_s, now - s.rate_window_s
    flagged: dict[int, tuple[int, int, int]] = {}           # link id → (state changes, flap counts, errors)
    for lid, n in conn.execute("SELECT link_id, count(*) FROM link_events WHERE ts > ? GROUP BY link_id HAVING "
                               "count(*) >= ?", (flap_from, s.flap_changes)):
        flagged[int(lid)] = (int(n), 0, 0)
    for lid, n in conn.execute(f"SELECT link_id, sum(delta) FROM link_counter_deltas WHERE ts > ? AND name IN "
                               f"({marks}) GROUP BY link_id HAVING 2 * sum(delta) >= ?",
                               (flap_from, *flap_names, s.flap_changes)):
        events, _, errs = flagged.get(int(lid), (0, 0, 0))
        flagged[int(lid)] = (events, int(n), errs)
    for lid, n in conn.execute(f"SELECT link_id, sum(delta) FROM link_counter_deltas WHERE ts > ? AND name NOT IN "
                               f"({marks}) GROUP BY link_id HAVING sum(delta) > ?", (rate_from, *flap_names, lowest)):
        events, flaps, _ = flagged.get(int(lid), (0, 0, 0))
        flagged[int(lid)] = (events, flaps, int(n))
    ids = list(flagged)
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        # by primary key only: a `state = 'up'` here would make SQLite walk the links_state index instead
        for lid, node, card, kind, state in conn.execute(
                f"SELECT id, node, card_idx, kind, state FROM links WHERE id IN ({','.join('?' * len(part))})", part):
            events, flaps, errs = flagged[int(lid)]
            if state == "up" and (max(events, 2 * flaps) >= s.flap_changes
                                  or errs / minutes > s.error_limit(str(kind))):
                mark(node, card, LINK_WARNING)
    for i, (node, idx) in enumerate(zip(card_node, card_idx, strict=True)):
        rank = max(per_card.get((node, idx), -1), per_node.get(node, -1))
        if rank >= 0:
            out[i] = rank
    return out


@dataclass(frozen=True, slots=True)
class CardLink:
    """One link of a card (or of its node: a NIC) for the card detail: counters as deltas over the range."""

    kind: str
    link: str
    state: str
    speed_gbps: float | None                 # None: not reported
    peer: str | None
    last_change: float | None
    counters: dict[str, int] = field(default_factory=dict)   # name → increase over the range (only those stored)


def read_card_links(conn: sqlite3.Connection, card_id: int, start: float, end: float) -> list[CardLink]:
    """The links of a card and of its node (card_idx NULL), with each counter's increase in (start, end]."""
    row = conn.execute("SELECT node, idx FROM cards WHERE id = ?", (card_id,)).fetchone()
    if row is None:
        return []
    links = conn.execute(
        "SELECT id, kind, link, state, speed_gbps, peer, last_change FROM links WHERE node = ? "
        "AND (card_idx = ? OR card_idx IS NULL) ORDER BY card_idx IS NULL, kind, link", (row[0], row[1])).fetchall()
    counters: dict[int, dict[str, int]] = {}
    ids = [int(r[0]) for r in links]
    if ids:
        for lid, name, total in conn.execute(
                f"SELECT link_id, name, sum(delta) FROM link_counter_deltas WHERE link_id IN ({','.join('?' * len(ids))}) "
                "AND ts > ? AND ts <= ? GROUP BY link_id, name ORDER BY name", (*ids, start, end)):
            counters.setdefault(int(lid), {})[str(name)] = int(total)
    return [CardLink(str(k), str(lk), str(st), None if sp is None else float(sp), None if p is None else str(p),
                     None if lc is None else float(lc), counters.get(int(lid), {}))
            for lid, k, lk, st, sp, p, lc in links]
