"""`mixops gui --prometheus URL`: what the window shows, read from a Prometheus-compatible store (DESIGN §8).

Several `collect --shard K/N --remote-write` collectors (or scraped `--metrics-listen` ones) put the whole site in
one Prometheus or VictoriaMetrics; `read_snapshot_prom` builds the same `console.live.Snapshot` as
`read_snapshot` does from the database, with one instant query per family (never one per card), run side by
side, each bounded by a timeout and gzip-compressed. The same rules hold: a value no series gives is NaN (N/A),
never 0; a node whose `mixops_node_up` is 0, or whose newest `mixops_node_up` sample is older than
`STALE_AFTER_INTERVALS` sweeps, is stale, and so are its cards. The cards of a node that stopped answering
keep their place in the room for `LAYOUT_LOOKBACK_S` (their series end with a stale marker, so an instant query
no longer returns them): the room does not re-layout when a node fails.

Incidents and jobs come from the info series the collectors export (`mixops_incident_open`,
`mixops_job_state`, …). The room's links come from `mixops_link_up` (down or up; no series: N/A) and the open
link incidents (flapping, errors, slow: degraded), with a stale node's links never shown as up. Anything wrong with the store (down, slow, an answer that is not Prometheus's JSON)
is one line: "source unavailable: URL: reason".
"""

from __future__ import annotations

import gzip
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from collectors.ladder import LINK_ERRORS, LINK_FLAPPING, LINK_SLOW
from console.argv import printable
from console.continuity import JobModel
from console.incidents import IncidentRow
from console.jobview import JobRow
from console.links import LINK_CRITICAL, LINK_NA, LINK_OK, LINK_WARNING
from console.live import (
    HEALTH_CODES,
    METRICS,
    STALE_AFTER_INTERVALS,
    History,
    NodeRow,
    PollingReader,
    Snapshot,
    not_shown_up,
)

TIMEOUT_S = 5.0                     # one query; the whole read is bounded by it too (queries run side by side)
MAX_BODY = 512 * 1048576            # an answer larger than this is not one of ours
LAYOUT_LOOKBACK_S = 900.0           # a card seen in the last 15 min keeps its place in the room
MAX_POINTS = 1_500                  # a range query asks for at most this many points per series
PARALLEL = 8

# Snapshot metric → (family, factor from the family's unit back to the Snapshot's)
CARD_VALUES: dict[str, tuple[str, float]] = {
    "temperature_c": ("mixops_card_temperature_celsius", 1.0),
    "utilization_pct": ("mixops_card_utilization_ratio", 100.0),
    "memory_used_mib": ("mixops_card_memory_used_bytes", 1.0 / 1048576.0),
    "memory_total_mib": ("mixops_card_memory_total_bytes", 1.0 / 1048576.0),
    "power_w": ("mixops_card_power_watts", 1.0),
}
HEALTH_BY_CODE = {v: k for k, v in HEALTH_CODES.items()}


class PromViewError(Exception):
    """The store cannot be read: the text is the one line the window shows."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of an instant or range query: its labels and (t, value) points."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]

    @property
    def value(self) -> float:
        return self.points[-1][1] if self.points else math.nan

    @property
    def ts(self) -> float:
        return self.points[-1][0] if self.points else math.nan


def base_url(url: str) -> str:
    """The store's root as given (a trailing slash or a trailing /api/v1 dropped)."""
    out = url.rstrip("/")
    if out.endswith("/api/v1"):
        out = out[: -len("/api/v1")]
    return out


def _number(text: object) -> float:
    if not isinstance(text, str):
        raise ValueError(f"a sample value {text!r} is not a string")
    return float(text)          # "NaN", "+Inf" included


def _result(body: bytes) -> list[Any]:
    """The `data.result` list of a Prometheus HTTP API answer (vector or matrix)."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a Prometheus API answer")
    if doc.get("status") != "success":
        raise ValueError(f"query failed: {doc.get('errorType', '?')}: {doc.get('error', '?')}")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") not in ("vector", "matrix") \
            or not isinstance(data.get("result"), list):
        raise ValueError("not a vector or matrix answer")
    result: list[Any] = data["result"]
    return result


def _parse(body: bytes) -> list[Series]:
    """The series of an answer, checked item by item."""
    out: list[Series] = []
    for item in _result(body):
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise ValueError("a result without its labels")
        labels = {str(k): str(v) for k, v in item["metric"].items()}
        raw = item.get("values") if "values" in item else [item.get("value")]
        if not isinstance(raw, list):
            raise ValueError("a result without values")
        points = []
        for p in raw:
            if not isinstance(p, list) or len(p) != 2 or not isinstance(p[0], int | float):
                raise ValueError("a sample that is not [time, value]")
            points.append((float(p[0]), _number(p[1])))
        out.append(Series(labels, tuple(points)))
    return out


def by_card(body: bytes) -> dict[tuple[str, str], float]:
    """A vector whose series carry only `node` and `card` (`max by (node, card) (…)`) as {(node, card): value}:
    one tight loop, no objects per series (10,240 cards × 6 families a poll)."""
    out: dict[tuple[str, str], float] = {}
    try:
        for item in _result(body):
            labels = item["metric"]
            out[(str(labels.get("node", "")), str(labels.get("card", "")))] = _number(item["value"][1])
    except (KeyError, TypeError, IndexError, AttributeError):
        raise ValueError("a result that is not {metric, value: [time, value]}") from None
    return out


def query(url: str, promql: str, *, at: float | None = None, timeout_s: float = TIMEOUT_S,
          range_: tuple[float, float, float] | None = None,
          parse: Callable[[bytes], Any] = _parse) -> Any:
    """One instant query (or, with range_=(start, end, step), one range query), its answer through `parse`
    (the series by default); PromViewError on any failure."""
    params: dict[str, str] = {"query": promql}
    if range_ is not None:
        params.update(start=f"{range_[0]:.3f}", end=f"{range_[1]:.3f}", step=f"{range_[2]:g}")
    elif at is not None:
        params["time"] = f"{at:.3f}"
    path = "/api/v1/query_range" if range_ is not None else "/api/v1/query"
    full = base_url(url) + path
    req = urllib.request.Request(full, data=urllib.parse.urlencode(params).encode(), method="POST", headers={
        "Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "mixops",
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read(MAX_BODY + 1)
            encoding = resp.headers.get("Content-Encoding", "")
        if len(body) > MAX_BODY:
            raise ValueError(f"an answer over {MAX_BODY // 1048576} MiB")
        if encoding == "gzip":
            body = gzip.decompress(body)
        return parse(body)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        try:
            detail = str(json.loads(detail).get("error", detail))
        except (ValueError, AttributeError):
            pass
        first = detail.strip().splitlines()[0] if detail.strip() else ""
        raise PromViewError(_line(url, f"HTTP {exc.code}" + (f": {first}" if first else ""))) from None
    except TimeoutError:
        raise PromViewError(_line(url, f"no answer in {timeout_s:g} s")) from None
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PromViewError(_line(url, str(reason))) from None


def _line(url: str, reason: str) -> str:
    return printable(f"source unavailable: {url}: {' '.join(reason.split())}")[:400]


def _queries(url: str, promqls: Sequence[tuple[str, Callable[[bytes], Any]]], at: float,
             timeout_s: float) -> list[Any]:
    """The queries side by side; the first failure is the read's."""
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(promqls))) as pool:
        futures = [pool.submit(query, url, q, at=at, timeout_s=timeout_s, parse=parse) for q, parse in promqls]
        return [f.result() for f in futures]


CardKey = tuple[str, int, int, str]     # node, index, chip (-1: none), the card label as exported


@dataclass(frozen=True, slots=True)
class CardLayout:
    """Every card seen in the last LAYOUT_LOOKBACK_S, in room order, with its labels (vendor, model, serial)."""

    keys: tuple[CardKey, ...]
    labels: tuple[dict[str, str], ...]
    read_at: float


LAYOUT_REFRESH_S = 60.0          # the layout's full-label query is repeated this often (cards rarely come and go)


def _key_of(node: str, card: str) -> CardKey | None:
    parsed = _card_label(card)
    if not node or parsed is None:
        return None
    return node, parsed[0], -1 if parsed[1] is None else parsed[1], card


def _card_label(text: str) -> tuple[int, int | None] | None:
    """ "3" → (3, None), "6.1" → (6, 1); anything else None."""
    head, dot, chip = text.partition(".")
    if not head.isdigit() or (dot and not chip.isdigit()):
        return None
    return int(head), int(chip) if dot else None


def _opt(labels: dict[str, str], key: str) -> str | None:
    value = labels.get(key, "")
    return value or None


def read_snapshot_prom(url: str, *, interval_s: float = 10.0, now: float | None = None,
                       timeout_s: float = TIMEOUT_S, layout: CardLayout | None = None) -> Snapshot:
    """The room, fleet, incidents, jobs and links of every shard, from one instant query per family (the card
    values with only their node and card labels), plus the layout's query when `layout` is None or old, or a
    card is not in it. The layout used is in `derived["prom_layout"]`, for the next read."""
    now = time.time() if now is None else now
    lean = [(f"max by (node, card) ({CARD_VALUES[m][0]})", by_card) for m in METRICS]
    families: list[tuple[str, Callable[[bytes], Any]]] = [
        ("mixops_node_up", _parse),                                             # 0
        ("timestamp(mixops_node_up)", _parse),                                  # 1
        ("vector(0)", _parse),                                                  # 2: the layout when due
        ("max by (node, card) (mixops_card_health)", by_card),                  # 3
        *lean,                                                                  # 4..8
        ("mixops_job_state == 1", _parse),                                      # 9
        ("mixops_job_last_progress_timestamp_seconds", _parse),                 # 10
        ("mixops_job_checkpoint_age_seconds", _parse),                          # 11
        ("mixops_job_ettr_ratio", _parse),                                      # 12
        ("mixops_incident_open", _parse),                                       # 13
        ("mixops_incident_acknowledged_timestamp_seconds", _parse),             # 14
        ("mixops_incident_faults", _parse),                                     # 15
        ("mixops_collector_last_sweep_timestamp_seconds", _parse),              # 16
        ("min by (node, card) (mixops_link_up)", by_card),                      # 17: 0 when a link is down
    ]
    if layout is None or now - layout.read_at > LAYOUT_REFRESH_S or now < layout.read_at:
        families[2] = (f"last_over_time(mixops_card_health[{int(LAYOUT_LOOKBACK_S)}s])", _parse)
        layout = None
    got = _queries(url, families, now, timeout_s)
    stale_after = max(30.0, STALE_AFTER_INTERVALS * interval_s)

    # nodes: every node some collector says it owns
    seen_at = {s.labels.get("node", ""): s.value for s in got[1]}
    node_info: dict[str, tuple[dict[str, str], float]] = {}
    for s in got[0]:
        name = s.labels.get("node", "")
        if name:
            node_info[name] = (s.labels, s.value)
    bad: set[str] = set()
    status: dict[str, str] = {}
    for name, (_labels, up) in node_info.items():
        last = seen_at.get(name, math.nan)
        if not math.isfinite(up) or up != 1.0:
            status[name] = "failed"
        elif not math.isfinite(last) or now - last > stale_after:
            status[name] = "stale"          # the collector stopped writing: stale, never healthy
        else:
            status[name] = "ok"
        if status[name] != "ok":
            bad.add(name)

    # cards: the layout from the lookback, the values only where an instant series is there now
    if layout is None:
        found: dict[CardKey, dict[str, str]] = {}
        for s in got[2]:
            k = _key_of(s.labels.get("node", ""), s.labels.get("card", ""))
            if k is not None:
                found[k] = s.labels
        ordered = tuple(sorted(found))
        layout = CardLayout(ordered, tuple(found[k] for k in ordered), now)
    known = {k[0:1] + k[3:4] for k in layout.keys}
    extra: dict[CardKey, dict[str, str]] = {}
    for values in got[3:9]:                 # a card new since the layout was read: placed now, its labels later
        for node, card in values.keys() - known:
            k = _key_of(node, card)
            if k is not None:
                extra[k] = {"node": node, "card": card}
    if extra:
        merged = {**dict(zip(layout.keys, layout.labels, strict=True)), **extra}
        ordered = tuple(sorted(merged))
        # read_at kept: the full labels of the new cards come with the next layout read
        layout = CardLayout(ordered, tuple(merged[k] for k in ordered), layout.read_at if layout.keys else 0.0)
    keys = layout.keys
    pos = {k[0:1] + k[3:4]: i for i, k in enumerate(keys)}          # (node, card label) → position
    n = len(keys)
    metrics = {m: np.full(n, np.nan, dtype=np.float32) for m in METRICS}
    health = np.full(n, HEALTH_CODES["unknown"], dtype=np.int8)
    ts = np.full(n, np.nan, dtype=np.float64)
    for where, value in got[3].items():
        i = pos.get(where)
        if i is not None and math.isfinite(value):
            code = int(value)
            health[i] = code if code in HEALTH_BY_CODE else HEALTH_CODES["unknown"]
            ts[i] = seen_at.get(where[0], math.nan)
    for m, values in zip(METRICS, got[4:9], strict=True):
        factor = CARD_VALUES[m][1]
        arr = metrics[m]
        for where, value in values.items():
            i = pos.get(where)
            if i is not None:
                arr[i] = value * factor             # NaN stays NaN
    card_node = [k[0] for k in keys]
    for name in set(card_node) - set(node_info):      # cards whose node_up is gone: not answering
        bad.add(name)
        status[name] = "stale"
    stale = np.fromiter((k[0] in bad for k in keys), dtype=bool, count=n)
    counts: dict[str, int] = {}
    for name in card_node:
        counts[name] = counts.get(name, 0) + 1
    nodes: list[NodeRow] = []
    for name in sorted(set(node_info) | set(card_node),
                       key=lambda x: (node_info.get(x, ({}, 0.0))[0].get("rack", ""), x)):
        labels = node_info.get(name, ({}, math.nan))[0] or layout.labels[card_node.index(name)]
        seen = seen_at.get(name)
        nodes.append(NodeRow(name, status[name], _opt(labels, "vendor"), _opt(labels, "rack"), None,
                             counts.get(name, 0), seen if seen is not None and math.isfinite(seen) else None,
                             None if status[name] != "stale" else "no fresh series in the store", None))
    snap = Snapshot(now, card_node, np.array([k[1] for k in keys], dtype=np.int32),
                    np.arange(1, n + 1, dtype=np.int64), [_opt(lab, "vendor") for lab in layout.labels],
                    [_opt(lab, "model") for lab in layout.labels], [_opt(lab, "serial") for lab in layout.labels],
                    ts, metrics, health, stale, nodes)
    snap.layout_key = hash((tuple(keys), tuple((r.name, r.rack) for r in nodes)))
    snap.derived["prom_cards"] = [k[3] for k in keys]          # the card label of each position (history reads)
    snap.derived["prom_url"] = url
    snap.derived["prom_layout"] = layout
    snap.nodes_ok = sum(1 for r in nodes if r.status == "ok")
    snap.nodes_failed = sum(1 for r in nodes if r.status == "failed")
    snap.nodes_stale = sum(1 for r in nodes if r.status in ("stale", "unknown"))
    sweeps = [s.value for s in got[16] if math.isfinite(s.value)]
    snap.last_sweep_at = max(sweeps) if sweeps else None
    snap.jobs = _jobs(got[9], got[10], got[11], got[12])
    snap.incidents = _incidents(got[13], got[14], got[15])
    snap.link_state = not_shown_up(link_states(got[17], snap.incidents, card_node, [k[1] for k in keys]), stale)
    return snap


# the open incidents that make a link that is up "degraded" (console.incidents' link rules: the collector saw the
# flaps, counters and speeds between its sweeps, which mixops_link_up alone does not show)
DEGRADED_CODES = frozenset({LINK_FLAPPING, LINK_ERRORS, LINK_SLOW})


def link_states(up: dict[tuple[str, str], float], incidents: Sequence[IncidentRow], card_node: Sequence[str],
                card_idx: Sequence[int]) -> npt.NDArray[np.int8]:
    """The worst link of every card (console.links LINK_* codes), from `min by (node, card) (mixops_link_up)`
    (card "" is a node's NIC and counts for each of its cards) and the open link incidents of the collectors:
    a link down → critical; up with a flapping, error or slow incident open on its card (or, one with no card
    such as a node's NICs or many links at once, on its node) → degraded; up → ok; no series → N/A."""
    per_card: dict[tuple[str, int], int] = {}
    per_node: dict[str, int] = {}
    for (node, card), value in up.items():
        if not math.isfinite(value):
            continue
        rank = LINK_OK if value >= 1.0 else LINK_CRITICAL
        if card == "":
            per_node[node] = max(per_node.get(node, -1), rank)
        elif card.isdigit():
            per_card[(node, int(card))] = max(per_card.get((node, int(card)), -1), rank)
    degraded_cards = {(r.node, r.card_idx) for r in incidents if r.code in DEGRADED_CODES and r.node is not None
                      and r.card_idx is not None}
    degraded_nodes = {r.node for r in incidents if r.code in DEGRADED_CODES and r.node is not None
                      and r.card_idx is None}
    out = np.full(len(card_node), LINK_NA, dtype=np.int8)
    for i, (node, idx) in enumerate(zip(card_node, card_idx, strict=True)):
        rank = max(per_card.get((node, idx), -1), per_node.get(node, -1))
        if rank == LINK_OK and ((node, idx) in degraded_cards or node in degraded_nodes):
            rank = LINK_WARNING
        if rank >= 0:
            out[i] = rank
    return out


def _jobs(state: list[Series], last: list[Series], age: list[Series], ettr: list[Series]) -> list[JobRow]:
    def by_job(fam: list[Series], window: str | None = None) -> dict[str, float]:
        return {s.labels.get("job", ""): s.value for s in fam
                if window is None or s.labels.get("window") == window}

    def opt(values: dict[str, float], job: str) -> float | None:
        v = values.get(job)
        return v if v is not None and math.isfinite(v) else None

    lasts, ages, all_, day = by_job(last), by_job(age), by_job(ettr, "all"), by_job(ettr, "24h")
    out: list[JobRow] = []
    for s in sorted(state, key=lambda x: x.labels.get("job", "")):
        name = s.labels.get("job", "")
        if not name:
            continue
        st = s.labels.get("state", "no data")
        model = JobModel(name, st, last_progress_at=opt(lasts, name), checkpoint_age_s=opt(ages, name),
                         ettr=opt(all_, name), ettr_24h=opt(day, name))
        out.append(JobRow(name, [], st, model))
    return out


def _shard_index(shard: str) -> int:
    head, _, _ = shard.partition("/")
    return int(head) if head.isdigit() else 0


def incident_id(key: str, shard: str) -> int | None:
    """A window-wide id: the collector's incident id, with shard K's ids from K × 10^12 on (ids are per store)."""
    if not key.isdigit() or int(key) >= 10**12:
        return None
    return _shard_index(shard) * 10**12 + int(key)


def _incidents(opened: list[Series], acked: list[Series], faults: list[Series]) -> list[IncidentRow]:
    def ident(labels: dict[str, str]) -> tuple[str, str]:
        return labels.get("shard", ""), labels.get("key", "")

    by = {ident(s.labels): s.labels.get("by", "") for s in acked}
    acked_at = {ident(s.labels): s.value for s in acked if math.isfinite(s.value)}
    count = {ident(s.labels): s.value for s in faults}
    out: list[IncidentRow] = []
    for s in opened:
        lab = s.labels
        iid = incident_id(lab.get("key", ""), lab.get("shard", ""))
        if iid is None or not math.isfinite(s.value):
            continue
        card = lab.get("card", "")
        n = count.get(ident(lab), math.nan)
        out.append(IncidentRow(iid, s.value, lab.get("severity", "P4"), lab.get("state", "open"),
                               lab.get("title", ""), _opt(lab, "node"), int(card) if card.isdigit() else None,
                               _opt(lab, "job"), _opt(lab, "code"), _opt(lab, "action"),
                               int(n) if math.isfinite(n) and n >= 1 else 1, acked_at.get(ident(lab)),
                               by.get(ident(lab)) or None, None, _opt(lab, "serial")))
    out.sort(key=lambda r: (r.severity, r.opened_at))
    return out


def _selector(node: str, card: str) -> str:
    return "{" + f"node={json.dumps(node)},card={json.dumps(card)}" + "}"


def history_step(seconds: float) -> float:
    """The range query's step: at most MAX_POINTS points, never finer than 10 s."""
    return max(10.0, math.ceil(seconds / MAX_POINTS))


def read_history_prom(url: str, node: str, card: str, seconds: float, *, card_id: int = 0,
                      now: float | None = None, timeout_s: float = 10.0) -> History:
    """One card's history from range queries (one per metric, side by side), at most ~MAX_POINTS points.

    Over more than a day the points are averages over each step (avg_over_time), as the database's rollups."""
    now = time.time() if now is None else now
    start = now - seconds
    step = history_step(seconds)
    sel = _selector(node, card)
    rolled = seconds > 86400
    promqls = [f"avg_over_time({CARD_VALUES[m][0]}{sel}[{int(step)}s])" if rolled else f"{CARD_VALUES[m][0]}{sel}"
               for m in METRICS]
    with ThreadPoolExecutor(max_workers=len(promqls)) as pool:
        futures = [pool.submit(query, url, q, timeout_s=timeout_s, range_=(start, now, step)) for q in promqls]
        got = [f.result() for f in futures]
    times = sorted({t for fam in got for s in fam for t, _ in s.points})
    at = {t: i for i, t in enumerate(times)}
    t_arr = np.array(times, dtype=np.float64)
    metrics: dict[str, npt.NDArray[np.float64]] = {}
    for m, fam in zip(METRICS, got, strict=True):
        arr = np.full(len(times), np.nan, dtype=np.float64)
        for s in fam:
            for t, v in s.points:
                arr[at[t]] = v * CARD_VALUES[m][1]
        metrics[m] = arr
    return History(card_id, start, now, t_arr, metrics, [], rolled)


class PromSnapshotReader(PollingReader):
    """`console.live.PollingReader` over a Prometheus-compatible store: emits `snapshot(Snapshot)` or
    `failed("source unavailable: URL: reason")`."""

    ERRORS = (PromViewError,)

    def __init__(self, url: str, interval_s: float = 10.0, period_s: float = 2.0,
                 prepare: Callable[[Snapshot], None] | None = None, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(url, interval_s, period_s, prepare)
        self.url = url
        self.timeout_s = timeout_s
        self._layout: CardLayout | None = None

    def describe(self, exc: Exception) -> str:
        return str(exc)

    def read(self) -> Snapshot:
        snap = read_snapshot_prom(self.url, interval_s=self.interval_s, timeout_s=self.timeout_s,
                                  layout=self._layout)
        layout = snap.derived.get("prom_layout")
        self._layout = layout if isinstance(layout, CardLayout) else None
        return snap
