"""`mixops collect --metrics-listen HOST:PORT` and `--remote-write URL`: each sweep as Prometheus metrics
(DESIGN §8), served at /metrics and/or pushed with the remote-write protocol (see RemoteWriter below).

After each sweep the collector builds a snapshot, an immutable tuple of metric families, from the sweep's
node reports and the store's incidents and jobs, and swaps it in; the HTTP server (prometheus_client's, in
its own threads) only hands out the last snapshot, so a scrape never waits on a sweep and never sees half
of one. A value the vendor did not report, and every card of a node that failed or is still busy from an
earlier sweep (stale), is absent: no sample, never 0.

NVIDIA cards are also exported under dcgm-exporter's names and labels (its `etc/default-counters.csv` and
`internal/pkg/rendermetrics`): `gpu` (the index), `UUID`, `pci_bus_id`, `device` (`nvidiaN`),
`modelName`, and the host as both `Hostname` (dcgm-exporter up to 4.x, DESIGN §8) and `hostname` (its
name since 2026). `UUID` carries the card's serial as mixops stores it (nvidia-smi's `serial`, its `uuid`
where the serial is N/A): the card record keeps no separate UUID.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from collectors.model import CardSample, Health, NodeReport
from console.incidents import IncidentRow, read_open_incidents

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from console.service import SweepSummary
    from console.site import Site
    from console.store import Store

CARD_LABELS = ("site", "row", "rack", "node", "vendor", "model", "card", "serial")
NODE_LABELS = ("site", "row", "rack", "node", "vendor")
DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "hostname")
HEALTH_CODE = {Health.OK: 0, Health.WARNING: 1, Health.CRITICAL: 2, Health.UNKNOWN: 3}
SEVERITIES = ("P1", "P2", "P3", "P4")
# every state the continuity model gives a job; one the model adds later still gets its 1 (and 0 elsewhere)
JOB_STATES = ("running", "stalled", "down", "resuming", "finished", "no data", "cannot read", "no progress pattern")

# (family, help, the CardSample field, factor to the family's unit)
CARD_FAMILIES: tuple[tuple[str, str, str, float], ...] = (
    ("mixops_card_temperature_celsius", "Card temperature (degrees C) as the vendor tool reported it.",
     "temperature_c", 1.0),
    ("mixops_card_utilization_ratio", "Card utilization, 0 to 1.", "utilization_pct", 0.01),
    ("mixops_card_memory_used_bytes", "Card memory in use (bytes).", "memory_used_mib", 1048576.0),
    ("mixops_card_memory_total_bytes", "Card memory in all (bytes).", "memory_total_mib", 1048576.0),
    ("mixops_card_power_watts", "Card power draw (W).", "power_w", 1.0),
)
DCGM_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_c"),
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization_pct"),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "memory_used_mib"),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_w"),
)


class ListenError(Exception):
    """--metrics-listen cannot be served (a bad host, a port in use): one line, exit 2."""


def card_id(card: CardSample) -> str:
    """The card label: "idx", or "idx.chip" for one chip of a multi-chip card."""
    return str(card.index) if card.chip is None else f"{card.index}.{card.chip}"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a node is: the labels it shares with its cards."""

    row: str
    rack: str
    vendor: str


def places(site: Site) -> dict[str, Place]:
    """Every site node's row, rack and configured vendor ("" where the site has none)."""
    rows = {r.name: r.row for r in site.racks}
    return {n.name: Place(rows.get(n.rack or "") or "", n.rack or "", n.vendor or "") for n in site.nodes}


def xid_code(code: str) -> int | None:
    """The number of a fault code "Xid 79" (None for anything else, SXid included)."""
    head, _, number = code.partition(" ")
    return int(number) if head == "Xid" and number.isdigit() else None


def build(site_name: str, where: Mapping[str, Place], reports: Sequence[NodeReport], stale: Iterable[str],
          *, xids: Mapping[tuple[str, int], int] | None = None,
          incidents: Mapping[str, Mapping[str, int]] | None = None,
          jobs: Sequence[JobFigures] | None = None, sweep: SweepFigures | None = None,
          open_incidents: Sequence[IncidentRow] | None = None, shard: str | None = None) -> tuple[Metric, ...]:
    """The metric families of one sweep. `where` gives each node's row/rack/vendor; a node of `where` that is
    in neither `reports` (ok) nor answered gets node_up 0. `xids`: the last Xid per (node, card index);
    `incidents`: counts by state then severity; `jobs`: the jobs' figures; `open_incidents`: one info series
    each; None leaves a family out. `shard` ("K/N", `collect --shard`) labels the incident, job and collector
    families, so the collectors writing one store do not overwrite each other's series."""
    cards = {name: GaugeMetricFamily(name, text, labels=CARD_LABELS) for name, text, _, _ in CARD_FAMILIES}
    health = GaugeMetricFamily("mixops_card_health", "Card health: 0 ok, 1 warning, 2 critical, 3 unknown.",
                               labels=CARD_LABELS)
    dcgm = {name: GaugeMetricFamily(name, text, labels=DCGM_LABELS) for name, text, _ in DCGM_FAMILIES}
    fb_free = GaugeMetricFamily("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", labels=DCGM_LABELS)
    xid = GaugeMetricFamily("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.",
                            labels=DCGM_LABELS)
    up = GaugeMetricFamily("mixops_node_up", "1: the node answered the last sweep; 0: it failed or is stale.",
                           labels=NODE_LABELS)
    seen: set[str] = set()
    for report in reports:
        seen.add(report.node)
        place = where.get(report.node, Place("", "", ""))
        vendor = place.vendor or report.vendor or ""
        up.add_metric([site_name, place.row, place.rack, report.node, vendor], 1.0 if report.ok else 0.0)
        if not report.ok:
            continue
        # cards an existing Prometheus already scrapes ([[sources]]) are there under the exporter's own names:
        # again under dcgm-exporter's would count them twice on the dashboards
        via_prometheus = report.tools == ("prometheus",)
        for card in report.cards:
            labels = [site_name, place.row, place.rack, report.node, vendor, card.model or "", card_id(card),
                      card.serial or ""]
            for name, _, field, factor in CARD_FAMILIES:
                value = getattr(card, field)
                if value is not None:
                    cards[name].add_metric(labels, float(value) * factor)
            health.add_metric(labels, float(HEALTH_CODE.get(card.health, 3)))
            if vendor != "nvidia" or via_prometheus:
                continue
            dlabels = [str(card.index), card.serial or "", card.bus_id or "", f"nvidia{card.index}",
                       card.model or "", report.node, report.node]
            for name, _, field in DCGM_FAMILIES:
                value = getattr(card, field)
                if value is not None:
                    dcgm[name].add_metric(dlabels, float(value))
            if card.memory_used_mib is not None and card.memory_total_mib is not None:
                fb_free.add_metric(dlabels, max(0.0, float(card.memory_total_mib) - float(card.memory_used_mib)))
            last = (xids or {}).get((report.node, card.index))
            if last is not None:
                xid.add_metric(dlabels, float(last))
    for name in stale:
        if name not in seen:
            seen.add(name)
            place = where.get(name, Place("", "", ""))
            up.add_metric([site_name, place.row, place.rack, name, place.vendor], 0.0)
    for name, place in where.items():
        if name not in seen:            # not swept (none of this sweep's): not up
            up.add_metric([site_name, place.row, place.rack, name, place.vendor], 0.0)
    out: list[Metric] = [*cards.values(), health, up, *dcgm.values(), fb_free, xid]
    extra = ("shard",) if shard is not None else ()
    tag = [shard] if shard is not None else []
    if incidents is not None:
        for state in ("open", "acknowledged"):
            fam = GaugeMetricFamily(f"mixops_incidents_{state}", f"Incidents {state}, by severity.",
                                    labels=("severity", *extra))
            counts = incidents.get(state, {})
            for sev in sorted(set(SEVERITIES) | set(counts)):
                fam.add_metric([sev, *tag], float(counts.get(sev, 0)))
            out.append(fam)
    if open_incidents is not None:
        out += _incident_families(open_incidents, shard)
    if jobs is not None:
        out += _job_families(jobs, shard)
    if sweep is not None:
        out += _sweep_families(sweep, shard)
    return tuple(out)


MAX_TITLE = 200                 # a title is a label value: bounded, so one odd incident cannot bloat every sample
MAX_INCIDENT_SERIES = 2_000     # as many as the window's list shows (console.live.read_snapshot)
_CONTROL = str.maketrans({c: " " for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
                                           *range(0x2066, 0x206A), 0x200E, 0x200F)})


def label_text(text: str | None, limit: int = MAX_TITLE) -> str:
    """Plain text for a label value: control and bidi characters as spaces, runs of blanks as one, at most
    `limit` characters ("…" at the end when cut)."""
    plain = " ".join((text or "").translate(_CONTROL).split())
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


INCIDENT_LABELS = ("key", "severity", "state", "title", "node", "card", "job", "code", "action", "serial")


def _incident_families(rows: Sequence[IncidentRow], shard: str | None) -> list[Metric]:
    extra = ("shard",) if shard is not None else ()
    tag = [shard] if shard is not None else []
    opened = GaugeMetricFamily("mixops_incident_open", "An incident not resolved (info series; value: when it "
                               "opened, unix seconds).", labels=(*INCIDENT_LABELS, *extra))
    acked = GaugeMetricFamily("mixops_incident_acknowledged_timestamp_seconds",
                              "When an incident was acknowledged, and by whom (unix seconds).",
                              labels=("key", "by", *extra))
    faults = GaugeMetricFamily("mixops_incident_faults", "Faults grouped in an incident not resolved.",
                               labels=("key", *extra))
    for r in rows[:MAX_INCIDENT_SERIES]:
        key = str(r.id)
        opened.add_metric([key, r.severity, r.state, label_text(r.title), label_text(r.node),
                           "" if r.card_idx is None else str(r.card_idx), label_text(r.job), label_text(r.code),
                           label_text(r.action), label_text(r.serial), *tag], r.opened_at)
        faults.add_metric([key, *tag], float(r.count))
        if r.acknowledged_at is not None:
            acked.add_metric([key, label_text(r.acknowledged_by), *tag], r.acknowledged_at)
    return [opened, acked, faults]


@dataclass(frozen=True, slots=True)
class JobFigures:
    """What /metrics says of one job (None: not known, left out)."""

    name: str
    state: str
    last_progress_at: float | None
    checkpoint_age_s: float | None
    ettr: float | None
    ettr_24h: float | None


def _job_families(jobs: Sequence[JobFigures], shard: str | None = None) -> list[Metric]:
    x = ("shard",) if shard is not None else ()
    tag = [shard] if shard is not None else []
    state = GaugeMetricFamily("mixops_job_state", "1 for the job's state now, 0 for the others.",
                              labels=("job", "state", *x))
    last = GaugeMetricFamily("mixops_job_last_progress_timestamp_seconds",
                             "When the job's log last showed progress (unix seconds).", labels=("job", *x))
    age = GaugeMetricFamily("mixops_job_checkpoint_age_seconds",
                            "Age of the job's newest committed checkpoint at the last sweep (s).", labels=("job", *x))
    ettr = GaugeMetricFamily("mixops_job_ettr_ratio",
                             "Effective training time ratio, 0 to 1, since the first progress (window=all) "
                             "or over the last 24 h.", labels=("job", "window", *x))
    for j in jobs:
        for s in (*JOB_STATES, *(() if j.state in JOB_STATES else (j.state,))):
            state.add_metric([j.name, s, *tag], 1.0 if s == j.state else 0.0)
        if j.last_progress_at is not None:
            last.add_metric([j.name, *tag], j.last_progress_at)
        if j.checkpoint_age_s is not None:
            age.add_metric([j.name, *tag], j.checkpoint_age_s)
        if j.ettr is not None:
            ettr.add_metric([j.name, "all", *tag], j.ettr)
        if j.ettr_24h is not None:
            ettr.add_metric([j.name, "24h", *tag], j.ettr_24h)
    return [state, last, age, ettr]


@dataclass(frozen=True, slots=True)
class SweepFigures:
    """The collector's own health after a sweep."""

    finished_at: float
    duration_s: float
    nodes: int
    failed: int
    stale: int
    cards: int
    sweeps: int
    held: int
    store_ok: bool
    build_s: float = 0.0


def _sweep_families(s: SweepFigures, shard: str | None = None) -> list[Metric]:
    def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
        if shard is None:
            return GaugeMetricFamily(name, text, value=value)
        fam = GaugeMetricFamily(name, text, labels=("shard",))
        fam.add_metric([shard], value)
        return fam

    if shard is None:
        sweeps = CounterMetricFamily("mixops_collector_sweeps", "Sweeps done since the collector started.",
                                     value=s.sweeps)
    else:
        sweeps = CounterMetricFamily("mixops_collector_sweeps", "Sweeps done since the collector started.",
                                     labels=("shard",))
        sweeps.add_metric([shard], s.sweeps)
    return [
        gauge("mixops_collector_last_sweep_timestamp_seconds", "When the last sweep ended (unix seconds).",
              s.finished_at),
        gauge("mixops_collector_sweep_duration_seconds", "How long the last sweep took (s).", s.duration_s),
        gauge("mixops_collector_nodes", "Nodes of the site.", s.nodes),
        gauge("mixops_collector_nodes_failed", "Nodes that failed the last sweep.", s.failed),
        gauge("mixops_collector_nodes_stale", "Nodes still busy from an earlier sweep (stale).", s.stale),
        gauge("mixops_collector_cards", "Cards read in the last sweep.", s.cards),
        gauge("mixops_collector_sweeps_held", "Sweeps held in memory because the database cannot be written.",
              s.held),
        gauge("mixops_collector_store_ok", "1: the last sweep was written to the database; 0: it is held.",
              1.0 if s.store_ok else 0.0),
        gauge("mixops_collector_snapshot_build_seconds", "Time to build this /metrics snapshot (s).", s.build_s),
        sweeps,
    ]


def read_incidents(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Open and acknowledged incidents counted by severity."""
    out: dict[str, dict[str, int]] = {"open": {}, "acknowledged": {}}
    for state, sev, n in conn.execute(
            "SELECT state, severity, count(*) FROM incidents WHERE state IN ('open', 'acknowledged') GROUP BY 1, 2"):
        out[str(state)][str(sev)] = int(n)
    return out


def read_jobs(conn: sqlite3.Connection, now: float) -> list[JobFigures]:
    """Every job's state, last progress, checkpoint age and ETTR from the stored continuity model."""
    from console import jobview

    return [JobFigures(r.name, r.state, r.model.last_progress_at, r.model.checkpoint_age_s, r.model.ettr,
                       r.model.ettr_24h) for r in jobview.read_jobs(conn, now, window_s=86400.0)]


def read_xids(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
    """The last Xid the store holds for each NVIDIA card (node, index)."""
    out: dict[tuple[str, int], int] = {}
    for node, idx, code in conn.execute(
            "SELECT node, card_idx, code FROM faults WHERE code LIKE 'Xid %' AND card_idx IS NOT NULL ORDER BY id"):
        number = xid_code(str(code))
        if number is not None:
            out[(str(node), int(idx))] = number
    return out


def read_links(conn: sqlite3.Connection, answered: set[str]) -> list[tuple[str, int | None, str, str, int]]:
    """(node, card, kind, link, 1 up / 0 down) of every state link of the nodes that answered; a link in
    state unknown, a topology pair (it has a peer) or a node that did not answer is left out."""
    if not answered:
        return []
    return [(str(node), None if card is None else int(card), str(kind), str(link), 1 if state == "up" else 0)
            for node, card, kind, link, state in conn.execute(
                "SELECT node, card_idx, kind, link, state FROM links WHERE peer IS NULL AND state IN ('up', 'down')")
            if node in answered]


def _link_family(site_name: str, where: Mapping[str, Place],
                 links: Sequence[tuple[str, int | None, str, str, int]]) -> GaugeMetricFamily:
    fam = GaugeMetricFamily("mixops_link_up", "1: the link is up; 0: down (NVLink, HCCS, RoCE/IB ports, …).",
                            labels=("site", "row", "rack", "node", "vendor", "card", "kind", "link"))
    for node, card, kind, link, up in links:
        place = where.get(node)
        fam.add_metric([site_name, (place.row if place else None) or "", (place.rack if place else None) or "",
                        node, (place.vendor if place else None) or "", "" if card is None else str(card),
                        kind, link], float(up))
    return fam


class SnapshotCollector(Collector):
    """A prometheus_client collector that returns the last snapshot; swapping it is one assignment."""

    def __init__(self) -> None:
        self._families: tuple[Metric, ...] = ()

    def set(self, families: tuple[Metric, ...]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class Snapshots:
    """Builds each sweep's families, keeping what outlives a sweep (the last Xid per card, the sweep count)."""

    def __init__(self, site: Site, shard: str | None = None) -> None:
        self.site = site
        self.shard = shard              # "K/N" of `collect --shard`, a label of its incident/job/collector series
        self._where = places(site)
        self._xids: dict[tuple[str, int], int] | None = None
        self._sweeps = 0

    def update(self, summary: SweepSummary, store: Store | None) -> tuple[Metric, ...]:
        """The families of this sweep (read from its reports and, when given, the store)."""
        t0 = time.perf_counter()
        now = summary.started + summary.duration_s
        incidents: dict[str, dict[str, int]] | None = None
        jobs: list[JobFigures] | None = None
        open_incidents: list[IncidentRow] | None = None
        links: list[tuple[str, int | None, str, str, int]] | None = None
        if store is not None:
            try:
                if self._xids is None:
                    self._xids = read_xids(store.conn)
                incidents = read_incidents(store.conn)
                open_incidents = read_open_incidents(store.conn, MAX_INCIDENT_SERIES)
                jobs = read_jobs(store.conn, now)
                # from the store: links that did not change arrive as one "same as last sweep" line
                links = read_links(store.conn, {r.node for r in summary.reports if r.ok})
            except sqlite3.Error:
                incidents, jobs, open_incidents, links = None, None, None, None   # not known now: left out, never 0
        xids = self._xids if self._xids is not None else {}
        for report in summary.reports:
            place = self._where.get(report.node)
            if report.ok and report.vendor and place is not None and place.vendor != report.vendor:
                # a vendor the site file leaves to detection: kept, so the node's series do not change
                # labels when it fails (a failed node reports no vendor)
                self._where[report.node] = Place(place.row, place.rack, report.vendor)
            for fault in report.faults:
                number = xid_code(fault.code)
                if number is not None and fault.card_index is not None:
                    xids[(report.node, fault.card_index)] = number
        self._xids = xids
        self._sweeps += 1
        failed = sum(1 for r in summary.reports if not r.ok)
        families = build(self.site.name, self._where, summary.reports, summary.stale, xids=xids,
                         incidents=incidents, jobs=jobs, open_incidents=open_incidents, shard=self.shard)
        figures = SweepFigures(now, summary.duration_s, len(self._where), failed, len(summary.stale),
                               sum(len(r.cards) for r in summary.reports if r.ok), self._sweeps, summary.held,
                               summary.store_problem is None, time.perf_counter() - t0)
        extra = (_link_family(self.site.name, self._where, links),) if links is not None else ()
        return (*families, *extra, *_sweep_families(figures, self.shard))


class Exporter:
    """The /metrics server of one collector: start it, give it each sweep's families, close it."""

    def __init__(self, site: Site, host: str, port: int, shard: str | None = None) -> None:
        self.snapshots = Snapshots(site, shard)
        self._collector = SnapshotCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._collector)
        ProcessCollector(registry=self.registry)      # the collector's own CPU, memory, open files
        try:
            self._server, self._thread = start_http_server(port, host, self.registry)
        except OSError as exc:          # socket.gaierror included
            shown = f"[{host}]" if ":" in host else host
            raise ListenError(f"--metrics-listen {shown}:{port}: {exc.strerror or exc}") from None
        # until the first sweep nothing is known: no family at all (not every node down)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) it listens on (the port chosen when 0 was given)."""
        server: WSGIServer = self._server
        name = server.socket.getsockname()
        return str(name[0]), int(name[1])

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def set(self, families: tuple[Metric, ...]) -> None:
        """Make these the families scrapes get: one assignment, so a scrape gets the old or the new, whole."""
        self._collector.set(families)

    def update(self, summary: SweepSummary, store: Store | None) -> tuple[Metric, ...]:
        """Build the snapshot of this sweep and serve it."""
        families = self.snapshots.update(summary, store)
        self.set(families)
        return families

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# ---- --remote-write URL ----------------------------------------------------------------------------------
#
# Each sweep's families become one WriteRequest (Prometheus remote write 1.0: protobuf, snappy block format),
# timestamped at the sweep's end, put in a bounded queue on disk (SQLite beside the database), and sent
# oldest first by a thread of its own. A store that is down or answers 5xx/429 is retried (1 s doubling to
# 30 s) and nothing is lost that fits in the queue; past the bound the oldest sweeps go, and it says so.
# Series that vanish (a node fails) get Prometheus's stale marker, as a scrape would give them.

QUEUE_MAX_BYTES = 256 * 1048576         # ~160 KB a sweep of 1,000 NVIDIA cards: ~4.5 h of such a site at 10 s
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_PROTO_CLASSES: dict[str, Any] = {}


def _prompb() -> dict[str, Any]:
    """prompb's WriteRequest, TimeSeries, Label and Sample (remote write 1.0), built with the protobuf library
    from their field numbers (no generated code: the schema is four small messages)."""
    if _PROTO_CLASSES:
        return _PROTO_CLASSES
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="mixops_prompb.proto", package="prometheus", syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        m = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name

    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    message("Label", [("name", 1, f.TYPE_STRING, one, None), ("value", 2, f.TYPE_STRING, one, None)])
    message("Sample", [("value", 1, f.TYPE_DOUBLE, one, None), ("timestamp", 2, f.TYPE_INT64, one, None)])
    message("TimeSeries", [("labels", 1, f.TYPE_MESSAGE, many, ".prometheus.Label"),
                           ("samples", 2, f.TYPE_MESSAGE, many, ".prometheus.Sample")])
    message("WriteRequest", [("timeseries", 1, f.TYPE_MESSAGE, many, ".prometheus.TimeSeries")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    for name in ("WriteRequest", "TimeSeries", "Label", "Sample"):
        _PROTO_CLASSES[name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
    return _PROTO_CLASSES


SeriesKey = tuple[tuple[str, str], ...]


def series(families: Iterable[Metric]) -> dict[SeriesKey, float]:
    """Every sample of the families as {labels with __name__, sorted: value}."""
    out: dict[SeriesKey, float] = {}
    for fam in families:
        for s in fam.samples:
            labels = {k: v for k, v in s.labels.items() if v != ""}      # an empty label is no label
            out[tuple(sorted({**labels, "__name__": s.name}.items()))] = float(s.value)
    return out


def write_request(samples: Mapping[SeriesKey, float], ts_ms: int) -> bytes:
    """One snappy-compressed WriteRequest of these series at ts_ms."""
    import cramjam

    pb = _prompb()
    req = pb["WriteRequest"]()
    for key, value in samples.items():
        ts = req.timeseries.add()
        for name, label_value in key:
            ts.labels.add(name=name, value=label_value)
        ts.samples.add(value=value, timestamp=ts_ms)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


class RemoteWriter:
    """--remote-write URL: each sweep queued on disk and sent in order by a thread of its own."""

    def __init__(self, url: str, queue_path: str, max_bytes: int = QUEUE_MAX_BYTES,
                 tell: Callable[[str], None] | None = None, timeout_s: float = 10.0) -> None:
        self.url = url
        self.queue_path = queue_path
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._tell = tell or (lambda line: None)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(queue_path, check_same_thread=False, timeout=5, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, "
                           "samples INTEGER NOT NULL, body BLOB NOT NULL)")
        self._last: dict[SeriesKey, float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.sent = 0                   # requests the store took
        self.dropped = 0                # queued sweeps dropped (queue full, or refused for good)
        self.failing: str | None = None
        self._thread = threading.Thread(target=self._run, name="mixops-remote-write", daemon=True)
        self._thread.start()

    def queued(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM queue").fetchone()[0])

    def push(self, families: Iterable[Metric], ts: float) -> None:
        """Queue this sweep (series gone since the last push get a stale marker) and wake the sender."""
        now = series(families)
        samples = {**{k: STALE_NAN for k in self._last if k not in now}, **now}
        self._last = now
        body = write_request(samples, int(ts * 1000))
        with self._lock:
            self._conn.execute("INSERT INTO queue (ts_ms, samples, body) VALUES (?, ?, ?)",
                               (int(ts * 1000), len(samples), body))
            total = int(self._conn.execute("SELECT ifnull(sum(length(body)), 0) FROM queue").fetchone()[0])
            gone = 0
            while total > self.max_bytes:
                row = self._conn.execute("SELECT id, length(body) FROM queue ORDER BY id LIMIT 1").fetchone()
                if row is None or row[0] == self._conn.execute("SELECT max(id) FROM queue").fetchone()[0]:
                    break                   # never the sweep just queued
                self._conn.execute("DELETE FROM queue WHERE id = ?", (row[0],))
                total -= int(row[1])
                gone += 1
        if gone:
            self.dropped += gone
            self._tell(f"remote write {self.url}: queue full ({self.max_bytes // 1048576} MiB): dropped the "
                       f"{gone} oldest queued sweep(s)")
        self._wake.set()

    def _send(self, body: bytes) -> tuple[bool, str | None]:
        """(sent, problem): problem None and not sent means refused for good (a 4xx but 429)."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "mixops"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
            return True, None
        except urllib.error.HTTPError as exc:
            detail = exc.read(200).decode(errors="replace").strip().splitlines()
            text = f"HTTP {exc.code}" + (f": {detail[0]}" if detail else "")
            if 400 <= exc.code < 500 and exc.code != 429:
                return False, None if exc.code != 404 else text
            return False, text
        except (OSError, ValueError) as exc:
            return False, str(getattr(exc, "reason", None) or exc)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            with self._lock:
                row = self._conn.execute("SELECT id, body FROM queue ORDER BY id LIMIT 1").fetchone()
            if row is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            ok, problem = self._send(bytes(row[1]))
            if ok or problem is None:
                with self._lock:
                    self._conn.execute("DELETE FROM queue WHERE id = ?", (row[0],))
                if ok:
                    self.sent += 1
                else:
                    self.dropped += 1
                    self._tell(f"remote write {self.url}: a sweep was refused for good (HTTP 4xx), dropped")
                if self.failing is not None and ok:
                    self._tell(f"remote write {self.url}: sending again ({self.queued()} sweep(s) still queued)")
                    self.failing = None
                backoff = 1.0
                continue
            if problem != self.failing:
                self._tell(f"remote write {self.url}: cannot send: {problem}; sweeps queued on disk and retried "
                           f"(up to {self.max_bytes // 1048576} MiB)")
                self.failing = problem
            self._stop.wait(backoff)
            backoff = min(30.0, backoff * 2)

    def close(self, drain_s: float = 5.0) -> None:
        """Stop the sender, after up to `drain_s` of sending what is queued while the store takes it; what is
        still queued stays on disk for the next start, and it says so."""
        deadline = time.monotonic() + drain_s
        while self.failing is None and self.queued() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        left = self.queued()
        if left:
            self._tell(f"remote write {self.url}: {left} sweep(s) still queued in {self.queue_path}, sent after "
                       "the next start")
        self._stop.set()
        self._wake.set()
        self._thread.join(self.timeout_s + 5)
        with self._lock:
            self._conn.close()
