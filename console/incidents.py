"""The incident engine: from a sweep's faults, thresholds and node outcomes to incidents a human takes.

One open incident per condition key (node/card/code); repeats count up. Many cards of one node with
the same new fault become one node incident; several nodes of one rack lost in the same sweep become
one rack incident; a node that is down suppresses its cards' incidents. Severity: P1 a running job
interrupted or a node lost under a running job, P2 a card fault needing action, P3 degraded, P4
information. Incidents resolve themselves after their condition has been clear for `clear_after`
sweeps (noted as resolved by "auto"); a changed host key counts as clear only in sweeps where the node
answered over a verified connection (issue 16: a key not looked at during the retry backoff is not a
key that is right again). Operators acknowledge, resolve, silence and annotate them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from collectors import registry
from collectors.ladder import LINK_DOWN, LINK_ERRORS, LINK_FLAPPING, LINK_SLOW, link_ladder
from collectors.links import FLAP_COUNTERS
from collectors.model import Action, NodeReport, Severity

LADDER = [a.value for a in Action]
SNAPSHOT_S = 900.0          # samples kept with an incident: 15 min before it opened and 15 min after
GROUP_CARDS = 3             # this many cards of one node with the same new fault → one node incident
GROUP_NODES = 3             # this many nodes of one rack lost in one sweep → one rack incident
# A P1 of a node becomes P2 once each of its jobs has made progress this long after the incident opened: a job
# hit by the fault stops progressing at once (a card off the bus hangs its collectives), one that trains on
# without the card or node does not
TRAINS_AGAIN_AFTER_S = 120.0
SOURCE_DOWN = "source unavailable: "    # console.promsource's error for the nodes of a source that did not answer
_CONNECT_WORDS = ("timed out", "refused", "unreachable", "no route", "connection", "host key", "authentication",
                  "reset by peer", "eof", "closed")


# Board power above which a card is reported (W): a little over each vendor's flagship TDP.
POWER_WARN_W = {"nvidia": 750.0, "ascend": 450.0, "hygon": 350.0, "amd": 800.0, "cambricon": 300.0,
                "metax": 400.0, "mthreads": 450.0, "iluvatar": 350.0, "enflame": 400.0, "kunlunxin": 450.0,
                "denglin": 200.0, "biren": 600.0}


# Link error counters' rate (errors per minute, summed over a link's error counters) above which a link is
# reported, per kind: NVLink and HCCS lanes retry in hardware and show a few CRC/replay errors under load;
# an Ethernet (RoCE) port counts FCS and bad packets that PFC storms raise in bursts.
LINK_ERROR_RATE_PER_MIN = {"nvlink": 60.0, "hccs": 60.0, "roce": 100.0, "ib": 10.0, "rdma": 10.0}
# the warnings collectors.links gives once for a link source a node lacks (a missing or failing tool)
_LINKS_UNAVAILABLE = re.compile(r"(?<= not found); links not collected on this node$|; not asked again$")
LINK_CODES = (LINK_FLAPPING, LINK_DOWN, LINK_ERRORS, LINK_SLOW)     # worst first (actions: collectors.ladder.link_ladder)


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident not resolved, as the on-call list and the /metrics info series show it."""

    id: int
    opened_at: float
    severity: str
    state: str
    title: str
    node: str | None
    card_idx: int | None
    job: str | None
    code: str | None
    action: str | None
    count: int
    acknowledged_at: float | None
    acknowledged_by: str | None
    silenced_until: float | None
    serial: str | None


def read_open_incidents(conn: sqlite3.Connection, limit: int = 2000) -> list[IncidentRow]:
    """The incidents the window's list shows (not resolved, not suppressed), most severe first, then oldest."""
    return [IncidentRow(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4] or ""), r[5],
                        None if r[6] is None else int(r[6]), r[7], r[8], r[9], int(r[10] or 1),
                        None if r[11] is None else float(r[11]), r[12],
                        None if r[13] is None else float(r[13]), r[14]) for r in conn.execute(
        """SELECT id, opened_at, severity, state, title, node, card_idx, job, code, action, count, acknowledged_at,
                  acknowledged_by, silenced_until, serial
           FROM incidents WHERE state != 'resolved' AND suppressed_by IS NULL
           ORDER BY severity, opened_at LIMIT ?""", (limit,))]


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """When links become incidents (console.incidents defaults; a site can pass its own to the engine)."""

    flap_changes: int = 3                   # this many state changes …
    flap_window_s: float = 600.0            # … within this long: the link is flapping
    rate_window_s: float = 300.0            # error counters' rate is their increase over this long
    error_rate_per_min: dict[str, float] = field(default_factory=lambda: dict(LINK_ERROR_RATE_PER_MIN))
    default_error_rate_per_min: float = 60.0
    group_links: int = 3                    # this many links of one node in one sweep → one node incident
    slow_ratio: float = 0.75                # up below this share of the best speed of its kind on the node (0: off)

    def error_limit(self, kind: str) -> float:
        """Errors per minute above which a link of this kind is reported."""
        return self.error_rate_per_min.get(kind, self.default_error_rate_per_min)


LINK_SETTINGS = LinkSettings()


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Threshold breaches with hysteresis (site file `[thresholds]`, `[thresholds.vendors.<name>]`)."""

    temp_warn_c: float = 85.0
    temp_crit_c: float = 95.0
    temp_clear_margin_c: float = 5.0
    memory_full_pct: float = 99.0
    power_clear_pct: float = 95.0               # a power breach clears below this share of the limit
    per_vendor: dict[str, tuple[float, float]] = field(default_factory=dict)   # vendor → (warn, crit) °C
    power_warn_w: dict[str, float] = field(default_factory=lambda: dict(POWER_WARN_W))

    def temp_limits(self, vendor: str | None) -> tuple[float, float]:
        """(warn, crit) for a vendor."""
        return self.per_vendor.get(vendor or "", (self.temp_warn_c, self.temp_crit_c))


def thresholds_from(config: dict[str, object]) -> Thresholds:
    """Thresholds from the site file's validated `[thresholds]` table (defaults for what it omits)."""
    base = Thresholds()
    vendors = config.get("vendors") or {}
    assert isinstance(vendors, dict)
    warn = float(str(config.get("temp_warn_c", base.temp_warn_c)))
    crit = float(str(config.get("temp_crit_c", base.temp_crit_c)))
    per_vendor = {v: (float(str(t.get("temp_warn_c", warn))), float(str(t.get("temp_crit_c", crit))))
                  for v, t in vendors.items()}
    power = dict(POWER_WARN_W)
    power.update({v: float(str(t["power_warn_w"])) for v, t in vendors.items() if "power_warn_w" in t})
    return Thresholds(warn, crit, float(str(config.get("temp_clear_margin_c", base.temp_clear_margin_c))),
                      float(str(config.get("memory_full_pct", base.memory_full_pct))),
                      float(str(config.get("power_clear_pct", base.power_clear_pct))), per_vendor, power)


@dataclass(slots=True)
class _Cond:
    """A condition seen in this sweep."""

    key: str
    source: str
    code: str
    severity: str
    title: str
    node: str | None
    card_idx: int | None = None
    rack: str | None = None
    vendor: str | None = None
    action: str | None = None
    evidence: str = ""
    cards: list[int] = field(default_factory=list)
    job: str | None = None


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT (the store's connection is in autocommit mode); rollback on error."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:         # SQLite already rolled back after a full disk: keep its cause
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _tool_error(error: str) -> bool:
    """The node answered but its vendor tool failed (`nvidia-smi timed out after 8 s: …`, `… listed no cards`)."""
    first = error.split(" ", 1)[0]
    tools = {t for v in registry.VENDORS.values() for t in v.tools} | {t for v in registry.ADAPTERS.values()
                                                                         for t in v.tools}
    return first in tools or first.startswith("$(") or "listed no cards" in error or "no output section" in error \
        or "has no collector" in error or "no known vendor tool" in error


def _p(action: str | None, severity: str, in_job: bool) -> str:
    """P1–P4 from the ladder action, the fault severity and whether a running job is on the node."""
    rank = LADDER.index(action) if action in LADDER else 1
    if rank >= LADDER.index("restart_job"):
        return "P1" if in_job else "P2"
    if severity == Severity.CRITICAL.value:
        return "P2"
    if rank == LADDER.index("watch") or severity == Severity.WARNING.value:
        return "P3"
    return "P4"


class IncidentEngine:
    """Runs after every sweep in the writer's thread, on the writer's connection."""

    def __init__(self, conn: sqlite3.Connection, clear_after: int = 3, thresholds: Thresholds | None = None,
                 rack_of: dict[str, str | None] | None = None, jobs_of: dict[str, list[str]] | None = None,
                 links: LinkSettings | None = None) -> None:
        self.conn = conn
        self.links = links or LINK_SETTINGS
        self._slow: dict[str, dict[int, tuple[float, float]]] = {}     # node → its slow links, as last looked up
        self.clear_after = clear_after
        self.thresholds = thresholds or Thresholds()
        self.rack_of = rack_of or {}
        self.jobs_of = jobs_of or {}
        self._hot: set[str] = set()      # temperature keys currently breached (hysteresis state)
        self._open_fault_cards: set[tuple[object, object]] = set()
        self._critical_cards: set[tuple[str, int]] = set()
        self._refused_nodes: set[str] = set()       # nodes with an open host-key incident
        self._verified_nodes: set[str] = set()      # nodes that answered this sweep over a verified connection

    # ---- one sweep -------------------------------------------------------------------------------

    def process(self, now: float, reports: Sequence[NodeReport], stale: Sequence[str] = (),
                stopped_jobs: Sequence[tuple[str, str, str]] = ()) -> list[int]:
        """Update incidents from one sweep and the training jobs that are stopped in it (job, state,
        evidence); returns the ids of incidents opened by it."""
        open_rows = {row[1]: row for row in self.conn.execute(
            "SELECT id, key, state, count, clear_sweeps, silenced_until, acknowledged_at, node, card_idx, source "
            "FROM incidents WHERE state != 'resolved'")}
        self._open_fault_cards = {(row[7], row[8]) for row in open_rows.values() if row[9] == "fault"}
        self._refused_nodes = {str(row[7]) for row in open_rows.values() if row[9] == "hostkey"}
        self._verified_nodes = {r.node for r in reports if r.ok}
        conds = self._conditions(reports, stale)
        self._link_conditions(now, reports, conds)
        for job, state, evidence in stopped_jobs:
            key = f"job:{job}"
            conds[key] = _Cond(key, "job", "JOB-DOWN" if state in ("down", "resuming") else "JOB-STALLED", "P1",
                               f"job {job}: training stopped ({state})", None, action=Action.RESTART_JOB.value,
                               evidence=evidence, job=job)
        down_nodes = {c.node for c in conds.values() if c.source in ("node", "rack") and c.node}
        down_racks = {c.rack for c in conds.values() if c.source == "rack" and c.rack}
        new_ids: list[int] = []
        updates: list[tuple[object, ...]] = []
        escalations: list[tuple[object, ...]] = []
        with _tx(self.conn):
            for key, c in conds.items():
                row = open_rows.get(key)
                if row is not None:
                    updates.append((now, c.evidence[:2000], row[0]))
                    if c.source == "link":
                        escalations.append((c.code, c.title, c.action, c.severity, row[0], LINK_CODES.index(c.code)))
                    continue
                upgraded = self._upgrade_health(c, open_rows, now)
                if upgraded:
                    updates.append((now, c.evidence[:2000], upgraded))
                    continue
                if c.source == "node" and c.rack in down_racks:
                    continue                # inhibited by its rack incident
                if c.node in down_nodes and c.source not in ("node", "rack", "hostkey"):
                    continue                # inhibited: the node is down, its cards' symptoms are noise
                new_ids.append(self._open(now, c))
            self.conn.executemany(
                "UPDATE incidents SET count = count + 1, last_seen = ?, evidence = ?, clear_sweeps = 0 WHERE id = ?",
                updates)
            # a link's one incident takes its worst condition so far (a link down that starts flapping)
            self.conn.executemany(
                "UPDATE incidents SET code = ?, title = ?, action = ?, severity = min(severity, ?) WHERE id = ? AND "
                "(CASE code WHEN 'LINK-FLAPPING' THEN 0 WHEN 'LINK-DOWN' THEN 1 WHEN 'LINK-ERRORS' THEN 2 ELSE 3 END) > ?",
                escalations)
            self._clear_and_expire(now, conds, open_rows)
            self._lower_when_jobs_train(now)
            self._snapshot_after(now)
        return new_ids

    def _lower_when_jobs_train(self, now: float) -> None:
        """P1 says a job is hurt now. An open P1 of a node (a card fault, the node down, a link) whose every
        job has trained since it opened — the job resumed without that card or node, or finished — becomes P2,
        with a note saying why: the hardware still needs its action, the job is no longer at risk from it."""
        jobs = {str(name): (state, last) for name, state, last in
                self.conn.execute("SELECT name, state, last_progress_at FROM jobs")}
        rows = self.conn.execute(
            "SELECT id, opened_at, node FROM incidents WHERE state != 'resolved' AND severity = 'P1' "
            "AND node IS NOT NULL AND source IN ('fault', 'health', 'node', 'link', 'threshold')").fetchall()
        for incident, opened_at, node in rows:
            names = self.jobs_of.get(str(node)) or []
            if not names:
                continue
            trained = all(
                (jobs.get(j, (None, None))[0] == "finished")
                or (jobs.get(j, (None, None))[0] == "running"
                    and (jobs.get(j, (None, None))[1] or 0.0) > float(opened_at) + TRAINS_AGAIN_AFTER_S)
                for j in names)
            if trained:
                self.conn.execute("UPDATE incidents SET severity = 'P2' WHERE id = ?", (incident,))
                self.conn.execute("INSERT INTO incident_notes VALUES (?,?,?,?)", (
                    incident, now, "mixops",
                    f"P1 → P2: job {', '.join(names)} trains again since this opened (or has finished)"))

    def _conditions(self, reports: Sequence[NodeReport], stale: Sequence[str]) -> dict[str, _Cond]:
        conds: dict[str, _Cond] = {}
        self._critical_cards = set()
        lost: dict[str | None, list[NodeReport]] = defaultdict(list)
        unavailable: dict[str, list[str]] = defaultdict(list)      # a link source a node lacks → the nodes
        sources_down: dict[str, list[NodeReport]] = defaultdict(list)   # a Prometheus source's URL → its nodes
        for r in reports:
            rack = self.rack_of.get(r.node)
            if not r.ok:
                error = r.error or "no answer"
                if any(f.code == "ssh-hostkey-changed" for f in r.faults) or r.node in self._refused_nodes:
                    # The key is seen (and refused) only when the session tries again, not during its retry
                    # backoff; a refused key never counts as clear, and nothing short of a verified connection
                    # says it is right again. Whatever else this node fails with meanwhile is evidence here.
                    conds[f"hostkey:{r.node}"] = _Cond(
                        f"hostkey:{r.node}", "hostkey", "ssh-hostkey-changed", "P2",
                        f"{r.node}: SSH host key CHANGED", r.node, rack=rack, action=Action.ISOLATE.value,
                        evidence=error)
                elif error.startswith(SOURCE_DOWN):
                    # a Prometheus source that did not answer: one incident for the source, not one per node
                    sources_down[error[len(SOURCE_DOWN):].split(": ", 1)[0]].append(r)
                elif error.startswith(("stale: ", "exporter target down")) or (
                        not _tool_error(error) and any(w in error.lower() for w in _CONNECT_WORDS)):
                    lost[rack].append(r)
                else:
                    conds[f"collector:{r.node}"] = _Cond(
                        f"collector:{r.node}", "collector", "COLLECTOR", "P3", f"{r.node}: vendor tool failed",
                        r.node, rack=rack, vendor=r.vendor, action=Action.WATCH.value, evidence=error)
                continue
            warnings = [w for w in r.warnings if not _LINKS_UNAVAILABLE.search(w)]
            for w in r.warnings:
                if w not in warnings:
                    unavailable[w].append(r.node)
            if warnings:
                conds[f"collector:{r.node}"] = _Cond(
                    f"collector:{r.node}", "collector", "COLLECTOR", "P4", f"{r.node}: output mixops cannot fully read",
                    r.node, rack=rack, vendor=r.vendor, action=Action.WATCH.value, evidence="; ".join(warnings))
            self._card_conditions(r, rack, conds)
        for url, reports in sources_down.items():
            key = f"source:{url}"
            in_job = any(self.jobs_of.get(n.node) for n in reports)
            conds[key] = _Cond(key, "source", "SOURCE-UNAVAILABLE", "P1" if in_job else "P2",
                               f"Prometheus source {url}: {len(reports)} node(s) not read", None,
                               action=Action.WATCH.value,
                               evidence=(reports[0].error or "")[:500] + "; nodes: "
                               + ", ".join(n.node for n in reports)[:1500])
        for text, names in unavailable.items():
            # said once per node (the source is not asked again): one incident for the whole sweep, not one per node
            key = f"links-unavailable:{text}"
            conds[key] = _Cond(key, "collector", "LINKS-UNAVAILABLE", "P4",
                               f"links not collected on {len(names)} node(s): " + _LINKS_UNAVAILABLE.sub("", text), None,
                               action=Action.WATCH.value, evidence=(text + ": " + ", ".join(names))[:2000])
        for node in stale:
            if node in self._refused_nodes:
                continue            # its host-key incident stays open (not verified) and says more
            lost[self.rack_of.get(node)].append(NodeReport(node, False, 0.0, 0.0, None,
                                                           error="still busy from the last sweep (stale)"))
        for rack, nodes in lost.items():
            if rack is not None and len(nodes) >= GROUP_NODES:
                in_job = any(self.jobs_of.get(n.node) for n in nodes)
                key = f"rack:{rack}"
                conds[key] = _Cond(key, "rack", "RACK-UNREACHABLE", "P1" if in_job else "P2",
                                   f"rack {rack}: {len(nodes)} nodes not answering", None, rack=rack,
                                   action=Action.REBOOT_NODE.value,
                                   evidence="; ".join(f"{n.node}: {n.error}" for n in nodes)[:2000])
            for n in nodes:
                in_job = bool(self.jobs_of.get(n.node))
                key = f"node:{n.node}"
                conds[key] = _Cond(key, "node", "NODE-UNREACHABLE", "P1" if in_job else "P2",
                                   f"{n.node}: not answering" + (" (jobs: " + ", ".join(self.jobs_of[n.node]) + ")"
                                                                 if in_job else ""),
                                   n.node, rack=rack, action=Action.REBOOT_NODE.value, evidence=n.error or "")
        return conds

    def _card_conditions(self, r: NodeReport, rack: str | None, conds: dict[str, _Cond]) -> None:
        in_job = bool(self.jobs_of.get(r.node))
        by_code: dict[str, list[_Cond]] = defaultdict(list)
        explained = {f.card_index for f in r.faults if f.code != "HEALTH"}
        for f in r.faults:
            if f.code == "THERMAL":
                continue    # temperature has one rule here: the threshold, with hysteresis and site settings
            if f.code == "HEALTH" and f.card_index is not None and (
                    f.card_index in explained or (r.node, f.card_index) in self._open_fault_cards):
                # the card's critical state is already explained by a vendor fault: no second incident
                self._critical_cards.add((r.node, f.card_index))
                continue
            key = f"fault:{r.node}:{'-' if f.card_index is None else f.card_index}:{f.code}"
            where = f"{r.node}" + (f" card {f.card_index}" if f.card_index is not None else "")
            c = _Cond(key, "fault", f.code, _p(f.action.value, f.severity.value, in_job), f"{where}: {f.code}",
                      r.node, f.card_index, rack, r.vendor, f.action.value, f.message)
            by_code[f.code].append(c)
        for code, items in by_code.items():
            cards = sorted({c.card_idx for c in items if c.card_idx is not None})
            if len(cards) >= GROUP_CARDS:
                top = max(items, key=lambda c: LADDER.index(c.action) if c.action in LADDER else 0)
                key = f"fault:{r.node}:*:{code}"
                conds[key] = _Cond(key, "fault", code, top.severity, f"{r.node}: {code} on {len(cards)} cards",
                                   r.node, None, rack, r.vendor, top.action,
                                   "; ".join(c.evidence for c in items)[:2000], cards)
            else:
                for c in items:
                    conds[c.key] = c
        t = self.thresholds
        warn, crit = t.temp_limits(r.vendor)
        for card in r.cards:
            temp = card.temperature_c
            key = f"temp:{r.node}:{card.index}"
            if temp is not None:
                breached = temp >= warn or (key in self._hot and temp >= warn - t.temp_clear_margin_c)
                if breached:
                    self._hot.add(key)
                    conds[key] = _Cond(key, "threshold", "TEMP", "P2" if temp >= crit else "P3",
                                       f"{r.node} card {card.index}: temperature {temp:g} °C", r.node, card.index,
                                       rack, r.vendor, Action.WATCH.value,
                                       f"{temp:g} °C (warn {warn:g}, crit {crit:g}, clears below "
                                       f"{warn - t.temp_clear_margin_c:g})")
                else:
                    self._hot.discard(key)
            power_limit = t.power_warn_w.get(r.vendor or "")
            key = f"power:{r.node}:{card.index}"
            if card.power_w is not None and power_limit:
                over = card.power_w >= power_limit or (
                    key in self._hot and card.power_w >= power_limit * t.power_clear_pct / 100.0)
                if over:
                    self._hot.add(key)
                    conds[key] = _Cond(key, "threshold", "POWER", "P3", f"{r.node} card {card.index}: power "
                                       f"{card.power_w:g} W", r.node, card.index, rack, r.vendor, Action.WATCH.value,
                                       f"{card.power_w:g} W (limit {power_limit:g} W)")
                else:
                    self._hot.discard(key)
            used, total = card.memory_used_mib, card.memory_total_mib
            if used is not None and total and 100.0 * used / total >= t.memory_full_pct:
                key = f"mem:{r.node}:{card.index}"
                conds[key] = _Cond(key, "threshold", "MEMORY", "P4", f"{r.node} card {card.index}: memory full",
                                   r.node, card.index, rack, r.vendor, Action.IGNORE.value,
                                   f"{used:g} / {total:g} MiB")
            if card.health.value == "critical":
                key = f"critical:{r.node}:{card.index}"
                has_fault = any(c.node == r.node and c.card_idx == card.index and c.source == "fault"
                                for c in conds.values()) or (r.node, card.index) in self._open_fault_cards
                if has_fault:
                    # the card's fault incident says it already; it stays open while the card is critical
                    self._critical_cards.add((r.node, card.index))
                    continue
                conds.setdefault(key, _Cond(key, "health", "HEALTH", _p("isolate", "critical", in_job),
                                            f"{r.node} card {card.index}: health critical", r.node, card.index,
                                            rack, r.vendor, Action.ISOLATE.value, "vendor tool reports critical"))

    def _link_conditions(self, now: float, reports: Sequence[NodeReport], conds: dict[str, _Cond]) -> None:
        """Links of the nodes that answered, from what the store wrote of this sweep (console.links): a link
        down that was up before (a port never connected is no incident), a link flapping (state changes and
        the vendor's flap counters within the window), a link whose error counters rise faster than its kind's
        limit. One incident per link (its worst condition), many links of one node at once → one incident."""
        answered = {r.node: r for r in reports if r.ok and (r.links or r.links_same)}
        if not answered:
            return
        s = self.links
        conn = self.conn
        found: dict[int, tuple[str, int | None, str, str]] = {}
        down: dict[int, float | None] = {}
        for lid, node, card, kind, link, since in conn.execute(
                "SELECT id, node, card_idx, kind, link, last_change FROM links WHERE state = 'down' AND ever_up = 1"):
            if node in answered:
                found[lid] = (node, card, kind, link)
                down[lid] = since
        flaps: dict[int, int] = defaultdict(int)
        for lid, n in conn.execute("SELECT link_id, count(*) FROM link_events WHERE ts > ? GROUP BY link_id",
                                   (now - s.flap_window_s,)):
            flaps[lid] = int(n)
        marks = ",".join("?" * len(FLAP_COUNTERS))
        for lid, n in conn.execute(f"SELECT link_id, sum(delta) FROM link_counter_deltas WHERE ts > ? AND name IN "
                                   f"({marks}) GROUP BY link_id", (now - s.flap_window_s, *sorted(FLAP_COUNTERS))):
            flaps[lid] = max(flaps[lid], 2 * int(n))       # one more up count: a down and an up between readings
        errors: dict[int, tuple[int, str]] = {}
        for lid, n, names in conn.execute(
                f"SELECT link_id, sum(delta), group_concat(DISTINCT name) FROM link_counter_deltas WHERE ts > ? "
                f"AND name NOT IN ({marks}) GROUP BY link_id", (now - s.rate_window_s, *sorted(FLAP_COUNTERS))):
            errors[lid] = (int(n), str(names))
        slow: dict[int, tuple[float, float]] = {}
        if s.slow_ratio > 0:
            # a link up at a lower speed than the best of its kind on its node (a lane or port trained down). Speeds
            # change only with the node's link text: looked up again for the nodes that sent it, else as last found.
            fresh = [n for n, r in answered.items() if r.links]
            for n in fresh:
                self._slow[n] = {}
            for chunk in range(0, len(fresh), 500):
                names = fresh[chunk:chunk + 500]
                marks = ",".join("?" * len(names))
                for lid, node, speed, best in conn.execute(
                        f"SELECT l.id, l.node, l.speed_gbps, g.best FROM links l JOIN (SELECT node, kind, "
                        f"max(speed_gbps) AS best FROM links WHERE node IN ({marks}) AND state = 'up' AND speed_gbps "
                        f"IS NOT NULL GROUP BY node, kind HAVING count(*) >= 2) g ON g.node = l.node AND g.kind = l.kind "
                        f"WHERE l.state = 'up' AND l.speed_gbps < g.best * ?", (*names, s.slow_ratio)):
                    self._slow[str(node)][int(lid)] = (float(speed), float(best))
            for n in answered:
                slow.update(self._slow.get(n, {}))
        unknown = [lid for lid in {*flaps, *errors, *slow} if lid not in found]
        for chunk in range(0, len(unknown), 500):
            ids = unknown[chunk:chunk + 500]
            for lid, node, card, kind, link in conn.execute(
                    f"SELECT id, node, card_idx, kind, link FROM links WHERE id IN ({','.join('?' * len(ids))})", ids):
                if node in answered:
                    found[lid] = (node, card, kind, link)
        per_node: dict[str, list[_Cond]] = defaultdict(list)
        for lid, (node, card, kind, link) in found.items():
            r = answered[node]
            in_job = bool(self.jobs_of.get(node))
            where = f"{node}" + (f" card {card}" if card is not None else "") + f" {kind} {link}"
            rate_min = s.rate_window_s / 60.0
            if flaps.get(lid, 0) >= s.flap_changes:
                code = LINK_FLAPPING
                what = f"flapping ({flaps[lid]} changes in {s.flap_window_s / 60:g} min)"
            elif lid in down:
                code = LINK_DOWN
                since = down[lid]
                what = "down" + (f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(since))} UTC"
                                 if since is not None else "")
            elif lid in errors and errors[lid][0] / rate_min > s.error_limit(kind):
                code = LINK_ERRORS
                n, names = errors[lid]
                what = (f"errors at {n / rate_min:.0f}/min over {s.rate_window_s / 60:g} min ({names}; "
                        f"limit {s.error_limit(kind):g}/min)")
            elif lid in slow:
                code = LINK_SLOW
                speed, best = slow[lid]
                what = f"slower than its peers ({speed:g} Gb/s, best of its kind on the node {best:g} Gb/s)"
            else:
                continue
            severity, action = link_ladder(code, kind)
            key = f"link:{node}:{'-' if card is None else card}:{kind}:{link}"
            per_node[node].append(_Cond(key, "link", code, _p(action.value, severity.value, in_job), f"{where}: {what}",
                                        node, card, self.rack_of.get(node), r.vendor, action.value, f"{where}: {what}"))
        order = LINK_CODES
        for node, items in per_node.items():
            if len(items) < s.group_links:
                for c in items:
                    conds[c.key] = c
                continue
            top = min(items, key=lambda c: (order.index(c.code), c.severity))
            cards = sorted({c.card_idx for c in items if c.card_idx is not None})
            counts = ", ".join(f"{sum(1 for c in items if c.code == code)} {code.split('-')[1].lower()}"
                               for code in order if any(c.code == code for c in items))
            key = f"link:{node}:*"
            conds[key] = _Cond(key, "link", top.code, min(c.severity for c in items),
                               f"{node}: {len(items)} links ({counts})", node, None, top.rack, top.vendor, top.action,
                               "; ".join(c.evidence for c in items)[:2000], cards)

    # ---- lifecycle -------------------------------------------------------------------------------

    def _upgrade_health(self, c: _Cond, open_rows: dict[str, tuple[object, ...]], now: float) -> int | None:
        """A vendor fault for a card whose 'health critical' incident is already open becomes that incident
        (with the fault's code, title and action), rather than a second incident for the same card."""
        if c.source != "fault" or c.card_idx is None or c.code == "HEALTH":
            return None
        old_key = next((k for k in (f"critical:{c.node}:{c.card_idx}", f"fault:{c.node}:{c.card_idx}:HEALTH")
                        if k in open_rows), None)
        if old_key is None:
            return None
        row = open_rows[old_key]
        incident = int(str(row[0]))
        self.conn.execute("UPDATE incidents SET key = ?, source = 'fault', code = ?, title = ?, action = ?, "
                          "severity = min(severity, ?) WHERE id = ?",
                          (c.key, c.code, c.title, c.action, c.severity, incident))
        open_rows[c.key] = row
        del open_rows[old_key]
        self._open_fault_cards.add((c.node, c.card_idx))
        return incident

    def _open(self, now: float, c: _Cond) -> int:
        jobs = c.job or ", ".join(self.jobs_of.get(c.node or "", [])) or None
        serial = None
        if c.node is not None and c.card_idx is not None:
            row = self.conn.execute("SELECT serial FROM cards WHERE node = ? AND idx = ?", (c.node, c.card_idx)).fetchone()
            serial = row[0] if row else None
        cur = self.conn.execute(
            """INSERT INTO incidents(opened_at, severity, state, title, node, card_idx, job, key, source, code, vendor,
               rack, cards, serial, action, evidence, count, last_seen, clear_sweeps)
               VALUES (?,?,'open',?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,0)""",
            (now, c.severity, c.title, c.node, c.card_idx, jobs, c.key, c.source, c.code, c.vendor, c.rack,
             json.dumps(c.cards) if c.cards else None, serial, c.action, c.evidence[:2000], now))
        incident = int(cur.lastrowid or 0)
        if c.source == "link" and c.node:
            # the job stop this link caused was written earlier in the sweep (console.store: jobs before incidents)
            where = c.node + ("" if c.card_idx is None else f" card {c.card_idx}")
            self.conn.execute("UPDATE job_interruptions SET incident_id = ? WHERE incident_id IS NULL AND cause LIKE ? "
                              "AND job IN (SELECT job FROM job_nodes WHERE node = ?)",
                              (incident, f"LINK-% on {where} %", c.node))
        if c.source in ("node", "rack"):
            nodes = [c.node] if c.node else [n for n, r in self.rack_of.items() if r == c.rack]
            marks = ",".join("?" * len(nodes))
            self.conn.execute(f"UPDATE incidents SET suppressed_by = ? WHERE state != 'resolved' AND source NOT IN "
                              f"('node','rack','hostkey') AND node IN ({marks})", (incident, *nodes))
        self._snapshot_before(incident, now, c)
        return incident

    def _card_ids_of(self, c: _Cond) -> list[int]:
        if c.node is None:
            return []
        if c.card_idx is not None:
            idxs: Iterable[int] = [c.card_idx]
        elif c.cards:
            idxs = c.cards
        else:
            return [r[0] for r in self.conn.execute("SELECT id FROM cards WHERE node = ? LIMIT 16", (c.node,))]
        marks = ",".join("?" * len(list(idxs)))
        return [r[0] for r in self.conn.execute(f"SELECT id FROM cards WHERE node = ? AND idx IN ({marks})",
                                                (c.node, *idxs))]

    def _snapshot_before(self, incident: int, now: float, c: _Cond) -> None:
        ids = self._card_ids_of(c)
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        self.conn.execute(
            f"""INSERT OR IGNORE INTO incident_samples SELECT ?, card_id, ts, temperature_c, utilization_pct,
                memory_used_mib, power_w, health FROM samples WHERE card_id IN ({marks}) AND ts >= ? AND ts <= ?""",
            (incident, *ids, now - SNAPSHOT_S, now))

    def _snapshot_after(self, now: float) -> None:
        """Add the samples of the 15 minutes after each recent incident opened (kept past raw retention)."""
        recent = self.conn.execute("SELECT id, opened_at FROM incidents WHERE opened_at >= ?",
                                   (now - SNAPSHOT_S,)).fetchall()
        for incident, opened in recent:
            self.conn.execute(
                """INSERT OR IGNORE INTO incident_samples SELECT ?, s.card_id, s.ts, s.temperature_c,
                   s.utilization_pct, s.memory_used_mib, s.power_w, s.health FROM samples s
                   WHERE s.card_id IN (SELECT DISTINCT card_id FROM incident_samples WHERE incident_id = ?)
                   AND s.ts > ? AND s.ts <= ?""", (incident, incident, opened, opened + SNAPSHOT_S))

    def _clear_and_expire(self, now: float, conds: dict[str, _Cond], open_rows: dict[str, tuple[object, ...]]) -> None:
        cleared: list[tuple[int]] = []
        resolve: list[tuple[float, int]] = []
        critical_nodes = {n for n, _ in self._critical_cards}
        for key, row in open_rows.items():
            incident, _key, state, _count, clear_sweeps, silenced_until, acknowledged_at, node, card_idx, source = row
            if state == "silenced" and silenced_until is not None and float(str(silenced_until)) <= now:
                self.conn.execute("UPDATE incidents SET state = ?, silenced_until = NULL WHERE id = ?",
                                  ("acknowledged" if acknowledged_at else "open", incident))
            if key in conds:
                continue            # the condition (or the event) is still there
            if source == "hostkey" and node not in self._verified_nodes:
                continue            # only a verified connection clears a refused key (stale or failed: not seen)
            if source == "fault" and ((node, card_idx) in self._critical_cards
                                      or (card_idx is None and node in critical_nodes)):
                continue            # a one-shot event whose card has not recovered yet
            n = int(str(clear_sweeps)) + 1
            if n >= self.clear_after:
                resolve.append((now, int(str(incident))))
            else:
                cleared.append((int(str(incident)),))
        self.conn.executemany("UPDATE incidents SET clear_sweeps = clear_sweeps + 1 WHERE id = ?", cleared)
        self.conn.executemany(
            "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = 'auto' WHERE id = ?", resolve)
        if resolve:
            ids = [r[1] for r in resolve]
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"UPDATE incidents SET suppressed_by = NULL WHERE suppressed_by IN ({marks})", ids)


# ---- operator actions and figures -----------------------------------------------------------------

class IncidentError(Exception):
    """An unknown incident or a state change that is not allowed (one line for the operator)."""


def _state(conn: sqlite3.Connection, incident: int) -> str:
    row = conn.execute("SELECT state FROM incidents WHERE id = ?", (incident,)).fetchone()
    if row is None:
        raise IncidentError(f"incident {incident}: no such incident")
    return str(row[0])


def acknowledge(conn: sqlite3.Connection, incident: int, by: str, now: float | None = None) -> None:
    """open (or silenced) → acknowledged."""
    state = _state(conn, incident)
    if state not in ("open", "silenced"):
        raise IncidentError(f"incident {incident}: cannot acknowledge, it is {state}")
    with _tx(conn):
        conn.execute("UPDATE incidents SET state = 'acknowledged', acknowledged_at = coalesce(acknowledged_at, ?), "
                     "acknowledged_by = coalesce(acknowledged_by, ?), silenced_until = NULL WHERE id = ?",
                     (now or time.time(), by, incident))


def resolve(conn: sqlite3.Connection, incident: int, by: str, note: str | None = None, now: float | None = None) -> None:
    """Any state but resolved → resolved (by an operator)."""
    now = now or time.time()
    state = _state(conn, incident)
    if state == "resolved":
        raise IncidentError(f"incident {incident}: already resolved")
    with _tx(conn):
        conn.execute("UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = ? WHERE id = ?",
                     (now, by, incident))
        conn.execute("UPDATE incidents SET suppressed_by = NULL WHERE suppressed_by = ?", (incident,))
        if note:
            conn.execute("INSERT INTO incident_notes VALUES (?,?,?,?)", (incident, now, by, note))


def silence(conn: sqlite3.Connection, incident: int, until: float, by: str, now: float | None = None) -> None:
    """Silence notifications until a time; the incident stays listed."""
    now = now or time.time()
    state = _state(conn, incident)
    if state == "resolved":
        raise IncidentError(f"incident {incident}: cannot silence, it is resolved")
    if until <= now:
        raise IncidentError(f"incident {incident}: silence must end in the future")
    with _tx(conn):
        conn.execute("UPDATE incidents SET state = 'silenced', silenced_until = ? WHERE id = ?", (until, incident))
        conn.execute("INSERT INTO incident_notes VALUES (?,?,?,?)",
                     (incident, now, by, f"silenced until {time.strftime('%Y-%m-%d %H:%M', time.localtime(until))}"))


def add_note(conn: sqlite3.Connection, incident: int, by: str, text: str, now: float | None = None) -> None:
    """A note on an incident."""
    _state(conn, incident)
    if not text.strip():
        raise IncidentError(f"incident {incident}: empty note")
    with _tx(conn):
        conn.execute("INSERT INTO incident_notes VALUES (?,?,?,?)", (incident, now or time.time(), by, text))


@dataclass(frozen=True, slots=True)
class Timing:
    """Mean time to acknowledge and to resolve over a window (seconds; None without data)."""

    mtta_s: float | None
    mttr_s: float | None
    opened: int
    acknowledged: int
    resolved: int


def timing(conn: sqlite3.Connection, start: float, end: float) -> Timing:
    """MTTA and MTTR of the incidents opened in [start, end)."""
    row = conn.execute(
        """SELECT avg(acknowledged_at - opened_at), avg(resolved_at - opened_at), count(*),
                  count(acknowledged_at), count(resolved_at)
           FROM incidents WHERE opened_at >= ? AND opened_at < ?""", (start, end)).fetchone()
    return Timing(row[0], row[1], int(row[2]), int(row[3]), int(row[4]))


def repeat_offenders(conn: sqlite3.Connection, now: float | None = None, days: float = 30.0,
                     min_count: int = 3) -> list[tuple[str, str, int]]:
    """Cards (by serial) and nodes with at least `min_count` incidents in `days`: RMA candidates.
    Rows are (kind 'card'|'node', serial or node name, count)."""
    since = (now or time.time()) - days * 86400
    cards = conn.execute(
        """SELECT 'card', serial, count(*) FROM incidents WHERE serial IS NOT NULL AND opened_at >= ?
           AND source IN ('fault', 'health', 'threshold') GROUP BY serial HAVING count(*) >= ? ORDER BY 3 DESC""",
        (since, min_count)).fetchall()
    nodes = conn.execute(
        """SELECT 'node', node, count(*) FROM incidents WHERE node IS NOT NULL AND opened_at >= ?
           GROUP BY node HAVING count(*) >= ? ORDER BY 3 DESC""", (since, min_count)).fetchall()
    return [(str(a), str(b), int(c)) for a, b, c in cards + nodes]
