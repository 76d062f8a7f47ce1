"""Nodes read from an existing Prometheus instead of SSH (DESIGN §5 `[[sources]] kind = "prometheus"`).

A site's `[[sources]]` entry names a Prometheus-compatible server (Prometheus, VictoriaMetrics) that already
scrapes the vendors' exporters on some nodes. Those nodes are not reached by SSH: each sweep sends the
source one PromQL instant query for all of its nodes (`/api/v1/query`, a range selector over the last
`max_age_s` so every sample comes back with its own timestamp), and maps the series to the same
`CardSample`/`NodeReport` objects an SSH node gives, so the room, the incidents and the reports need nothing
else.

Series names and labels are the exporters' own, as their sources define them:

| mixops field | NVIDIA dcgm-exporter | Ascend npu-exporter | Cambricon mlu-exporter (prefix `mlu`) |
|---|---|---|---|
| card index | label `gpu` | label `id` (physical id) | label `mlu` |
| model | label `modelName` | label `model_name`, else `npu_chip_info_name{name}` | label `model` |
| serial | label `UUID` (as the SSH path does where nvidia-smi has no serial) | `npu_chip_info_serial_number{serial_number}` | label `sn` |
| bus id | label `pci_bus_id` | label `pcie_bus_info` | — |
| temperature_c | `DCGM_FI_DEV_GPU_TEMP` (°C) | `npu_chip_info_temperature` (°C) | `mlu_temperature` (board, °C) |
| utilization_pct | `DCGM_FI_DEV_GPU_UTIL` (%) | `npu_chip_info_utilization` (AI core, %) | `mlu_utilization` (%) |
| memory_used_mib | `DCGM_FI_DEV_FB_USED` (MiB) | `npu_chip_info_hbm_used_memory`, else `npu_chip_info_used_memory` (MB) | `mlu_memory_used` (B) |
| memory_total_mib | `FB_USED + DCGM_FI_DEV_FB_FREE (+ DCGM_FI_DEV_FB_RESERVED)` | `npu_chip_info_hbm_total_memory`, else `npu_chip_info_total_memory` (MB) | `mlu_memory_total` (B) |
| power_w | `DCGM_FI_DEV_POWER_USAGE` (W) | `npu_chip_info_power` (W) | `mlu_power_usage` (W) |
| health | ok unless a new Xid is critical | `npu_chip_info_health_status` (1 healthy, 0 not) | `mlu_health` (1 healthy, 0 sick) |
| ecc_uncorrected | `DCGM_FI_DEV_ECC_DBE_VOL_TOTAL` (optional counter) | — | `mlu_ecc_uncorrected_error_total` |
| faults | `DCGM_FI_DEV_XID_ERRORS` (value of the last Xid) | `npu_chip_info_error_code` (first error code) | — |
| node | label `Hostname` (dcgm-exporter ≤ 4.x), `hostname` (after its rename), else the target's `instance` | the target's `instance` (or a `node`/`hostname` target label) | label `node` |

(The source's `node_label`, when set, is tried before all of these: in Kubernetes `Hostname` is the exporter
pod's name, and a relabelled label such as `kubernetes_node` names the node.)

Sources: NVIDIA/dcgm-exporter `etc/default-counters.csv` (the DCGM_FI_* names, units and "Value of the last
XID error encountered") and `internal/pkg/rendermetrics/render_metrics.go` (labels `gpu`, `UUID`,
`pci_bus_id`, `device`, `modelName`, `Hostname`, renamed `hostname` in commit d5e5f51, "Rename Hostname label
to hostname (#655)"); Ascend/ascend-npu-exporter `collector/npu_collector.go` (the `npu_chip_info_*` names,
label `id`; health 1 = healthy) and Ascend mind-cluster npu-exporter v6 `collector/common` (`CardLabel`: `id`,
`model_name`, `vdie_id`, `pcie_bus_info`, …, `npu_chip_info_serial_number{serial_number}`);
Cambricon/mlu-exporter `examples/metrics.yaml` (`temperature`, `utilization`, `memory_used`, `memory_total`
in bytes, `power_usage`, `health`, `ecc_uncorrected_error_total`, labels `mlu`, `model`, `node`, `sn`,
`uuid`, `vf`) with the `mlu` prefix of its README and Kubernetes deployment.

The same N/A and stale rules as SSH: a series absent is None, never 0 (npu-exporter's -1 for a reading it
could not take is None too); a node with no sample newer than `max_age_s` (default 2 × the site's
`interval_s`) or whose exporter target is down (`up == 0`, which Prometheus writes at the first failed
scrape) fails, it is never shown healthy. A range selector skips Prometheus's staleness markers: a series
an exporter stops serving while its scrape still succeeds keeps its last value for up to `max_age_s` (that
bound is the rule, one query per sweep keeps it so); a source that is down, slow or answers garbage fails its nodes
with one line, `source unavailable: …`, and the rest of the sweep goes on. Xid values become faults through
the counters' baseline (`card_counters`, console.counters): a change to a new nonzero Xid is the event, the
first sighting and a restart report nothing. dcgm-exporter's gauge holds the *last* Xid, so the same Xid
twice in a row is one fault.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http.client import HTTPException

from collectors.ascend import fault_ladder as ascend_fault_ladder
from collectors.model import (
    CardSample,
    Command,
    Fault,
    Health,
    NodeReport,
    Severity,
    first_line,
    norm_bus_id,
    sanity,
)
from collectors.node import SweptNode
from collectors.nvidia import xid_ladder
from console.argv import printable
from console.counters import CounterKey
from console.site import Node, Source

MAX_ANSWER_BYTES = 256 * 1024 * 1024

# series name -> (vendor, field); fields starting with "_" are combined or turned into faults below
DCGM: dict[str, str] = {
    "DCGM_FI_DEV_GPU_TEMP": "temperature_c", "DCGM_FI_DEV_GPU_UTIL": "utilization_pct",
    "DCGM_FI_DEV_FB_USED": "memory_used_mib", "DCGM_FI_DEV_FB_FREE": "_fb_free",
    "DCGM_FI_DEV_FB_RESERVED": "_fb_reserved", "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_XID_ERRORS": "_xid", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "ecc_uncorrected",
}
NPU: dict[str, str] = {
    "npu_chip_info_temperature": "temperature_c", "npu_chip_info_utilization": "utilization_pct",
    "npu_chip_info_hbm_used_memory": "_hbm_used", "npu_chip_info_hbm_total_memory": "_hbm_total",
    "npu_chip_info_used_memory": "_ddr_used", "npu_chip_info_total_memory": "_ddr_total",
    "npu_chip_info_power": "power_w", "npu_chip_info_health_status": "_health",
    "npu_chip_info_error_code": "_error_code", "npu_chip_info_name": "_name",
    "npu_chip_info_serial_number": "_serial",
}
MLU: dict[str, str] = {
    "mlu_temperature": "temperature_c", "mlu_utilization": "utilization_pct", "mlu_memory_used": "_used_b",
    "mlu_memory_total": "_total_b", "mlu_power_usage": "power_w", "mlu_health": "_health",
    "mlu_ecc_uncorrected_error_total": "ecc_uncorrected",
}
FAMILIES: dict[str, tuple[str, str, dict[str, str]]] = {    # vendor -> (index label, model label, series)
    "nvidia": ("gpu", "modelName", DCGM), "ascend": ("id", "model_name", NPU), "cambricon": ("mlu", "model", MLU),
}
VENDOR_OF: dict[str, str] = {name: vendor for vendor, (_i, _m, names) in FAMILIES.items() for name in names}
NODE_LABELS = ("Hostname", "hostname", "node")     # before `instance`: the exporter's own name for its host
XID = "xid"                                        # card_counters name of dcgm-exporter's last Xid
ASCEND_CODE = "ascend_error_code"                  # card_counters name of npu-exporter's first error code


class SourceError(Exception):
    """A source that cannot be read this sweep: the one line its nodes fail with."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of the answer: its labels and its newest sample (value None for NaN/Inf)."""

    name: str
    labels: dict[str, str]
    ts: float
    value: float | None


def selector(window_s: float) -> str:
    """The one query of a sweep: every mapped series and `up`, each with its samples of the last window."""
    names = "|".join(["up", *sorted(VENDOR_OF)])
    return f'{{__name__=~"{names}"}}[{max(1, round(window_s * 1000))}ms]'


def parse_answer(body: bytes) -> list[Series]:
    """The series of an /api/v1/query answer (a matrix; a vector is taken too); SourceError for anything
    else, naming what was wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        text = body[:200].decode("utf-8", "replace")
        raise SourceError(f"answered garbage, not JSON: {printable(first_line(text, 80))!r}") from None
    if not isinstance(doc, dict):
        raise SourceError("answered garbage: JSON but not a Prometheus API answer")
    if doc.get("status") != "success":
        why = doc.get("error") or doc.get("status")
        raise SourceError(f"query refused: {printable(first_line(str(why), 160))}")
    data = doc.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise SourceError("answered garbage: no data.result in the API answer")
    kind = data.get("resultType")
    out: list[Series] = []
    for item in data["result"]:
        metric = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(metric, dict):
            raise SourceError("answered garbage: a result without its metric labels")
        points = item.get("values") if kind == "matrix" else [item.get("value")]
        if not isinstance(points, list) or not points:
            continue
        last = points[-1]
        try:
            ts = float(last[0])
            raw = float(last[1])
        except (TypeError, ValueError, IndexError):
            raise SourceError(f"answered garbage: a sample that is not [time, \"value\"]: {printable(str(last)[:60])}") from None
        labels = {str(k): str(v) for k, v in metric.items()}
        out.append(Series(labels.pop("__name__", ""), labels, ts, raw if math.isfinite(raw) else None))
    return out


def fetch(source: Source, window_s: float, at: float, opener: urllib.request.OpenerDirector) -> list[Series]:
    """One instant query at `at` (unix s); at most source.timeout_s to connect and between reads, and that
    much again in all to read the answer. SourceError with the reason otherwise."""
    url = f"{source.url}/api/v1/query?" + urllib.parse.urlencode({"query": selector(window_s), "time": f"{at:.3f}"})
    timeout = source.timeout_s
    deadline = time.monotonic() + 2 * timeout
    # gzip: a 10,240-card answer is ~19 MB of JSON, ~1 MB compressed (Prometheus and VictoriaMetrics both do it)
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "Accept": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            gzipped = resp.headers.get("Content-Encoding", "").lower() == "gzip"
            chunks: list[bytes] = []
            size = 0
            while chunk := resp.read(1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise SourceError(f"answer larger than {MAX_ANSWER_BYTES >> 20} MiB")
                if time.monotonic() > deadline:
                    raise SourceError(f"answer not read in {2 * timeout:g} s (too slow)")
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace") if exc.fp is not None else ""
        try:
            why = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            why = detail
        raise SourceError(f"HTTP {exc.code}: {printable(first_line(str(why) or str(exc.reason), 160))}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise SourceError(f"no answer in {timeout:g} s") from None
        raise SourceError(f"cannot connect: {getattr(reason, 'strerror', None) or reason}") from None
    except TimeoutError:
        raise SourceError(f"no answer in {timeout:g} s") from None
    except (OSError, HTTPException) as exc:
        raise SourceError(f"connection broken: {exc.__class__.__name__}: {exc}") from None
    body = b"".join(chunks)
    if gzipped:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflate.decompress(body, MAX_ANSWER_BYTES)
        except zlib.error as exc:
            raise SourceError(f"answered garbage: a broken gzip body ({exc})") from None
        if inflate.unconsumed_tail:
            raise SourceError(f"answer larger than {MAX_ANSWER_BYTES >> 20} MiB")
    return parse_answer(body)


@dataclass(slots=True)
class NodeSeries:
    """What one sweep's answer holds for one node: its card series and the `up` of its exporter targets."""

    series: list[Series] = field(default_factory=list)
    targets: set[tuple[str, str]] = field(default_factory=set)        # (job, instance)


@dataclass(frozen=True, slots=True)
class Answer:
    """One sweep's answer of a source, grouped by node; `error` set when the source could not be read."""

    by_node: dict[str, NodeSeries]
    up: dict[tuple[str, str], float | None]
    error: str | None = None


def group(series: Iterable[Series], nodes: Iterable[Node], node_label: str | None = None) -> Answer:
    """The series of the source's nodes, by node: matched on `node_label` when the source names one, then the
    exporter's host label (NODE_LABELS), then the target's `instance` (with or without its port), each against
    the node's name, then its host. (In Kubernetes dcgm-exporter's `Hostname` is its pod's name: a relabelled
    node label, e.g. `kubernetes_node`, is what names the node there.)"""
    labels_tried = ((node_label,) if node_label else ()) + NODE_LABELS
    by_key: dict[str, str] = {}
    node_list = list(nodes)
    for n in node_list:
        by_key.setdefault(n.host, n.name)
    for n in node_list:
        by_key[n.name] = n.name                      # a name wins over another node's host
    by_node: dict[str, NodeSeries] = {n.name: NodeSeries() for n in node_list}
    up: dict[tuple[str, str], float | None] = {}
    for s in series:
        target = (s.labels.get("job", ""), s.labels.get("instance", ""))
        if s.name == "up":
            up[target] = s.value
            continue
        name = None
        for label in labels_tried:
            value = s.labels.get(label)
            if value and value in by_key:
                name = by_key[value]
                break
        if name is None:
            instance = target[1]
            name = by_key.get(instance) or by_key.get(_host_of(instance))
        if name is None:
            continue
        entry = by_node[name]
        entry.series.append(s)
        entry.targets.add(target)
    return Answer(by_node, up)


def _host_of(instance: str) -> str:
    if instance.startswith("["):                       # [::1]:9400
        return instance[1:].partition("]")[0]
    host, sep, port = instance.rpartition(":")
    return host if sep and port.isdigit() else instance


class PromSource:
    """One [[sources]] entry: one query per sweep for all of its nodes, on a thread of its own."""

    def __init__(self, source: Source, nodes: Iterable[Node], interval_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.nodes = tuple(nodes)
        self.window_s = source.max_age_s if source.max_age_s is not None else 2 * interval_s
        self.clock = clock
        # environment proxies are not used: a source is a server of the site's own network
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mixops-source")
        self._lock = threading.Lock()
        self._future: Future[Answer] | None = None

    def start(self) -> None:
        """Send this sweep's query (the answer is read by the nodes' end())."""
        with self._lock:
            if self._future is not None and not self._future.done():
                return              # the last sweep's query still runs: its answer serves this sweep too
            self._future = self._pool.submit(self._query, self.clock())

    def _query(self, at: float) -> Answer:
        try:
            series = fetch(self.source, self.window_s, at, self._opener)
        except SourceError as exc:
            return Answer({}, {}, f"source unavailable: {self.source.url}: {exc}")
        return group(series, self.nodes, self.source.node_label)

    def answer(self) -> Answer:
        """This sweep's answer (waits for it, bounded by the query's own timeouts)."""
        with self._lock:
            future = self._future
        if future is None:
            return Answer({}, {}, f"source unavailable: {self.source.url}: not queried")
        try:
            return future.result(timeout=3 * self.source.timeout_s + 1)
        except TimeoutError:
            return Answer({}, {}, f"source unavailable: {self.source.url}: no answer in "
                                  f"{3 * self.source.timeout_s + 1:g} s")

    def close(self) -> None:
        """Stop the query thread (a query under way ends by its own timeout)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class PromNodeCollector(SweptNode):
    """A node read from a PromSource, swept by the service like any other node (collectors.node.SweptNode).
    `begin` only marks the sweep's start: the query itself is the source's (PromSource.start)."""

    def __init__(self, source: PromSource, node: Node, cursor: float | None = None,
                 baseline: dict[CounterKey, int] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.node = node
        self.vendor = node.vendor
        self.clock = clock
        self.cursor = cursor if cursor is not None else clock() - 3600     # kept for the store; no kernel log
        self.tools: tuple[str, ...] = ()
        self.extra_commands: tuple[Command, ...] = ()          # no shell here: never a job's reader
        self.baseline: dict[CounterKey, int] = baseline if baseline is not None else {}
        self._changes: list[tuple[str, int, int, str, int, float]] = []
        self._started = 0.0
        self._t0 = 0.0

    def take_changes(self) -> list[tuple[str, int, int, str, int, float]]:
        """The counter totals this node changed since the last call, for card_counters."""
        out, self._changes = self._changes, []
        return out

    def end(self) -> NodeReport:
        """This node's report from the source's answer; never raises."""
        answer = self.source.answer()
        name = self.node.name
        if answer.error is not None:
            return self._fail(answer.error)
        mine = answer.by_node.get(name, NodeSeries())
        if not mine.series:
            return self._fail(f"stale: no series for {name} newer than {self.source.window_s:g} s in "
                              f"{self.source.source.url} (exporter stopped, node down, or not scraped)")
        down = sorted(f"{job}/{inst}" for job, inst in mine.targets if answer.up.get((job, inst)) == 0)
        if down:
            return self._fail(f"exporter target down in {self.source.source.url} (up == 0): {', '.join(down)}")
        return self._build(mine.series)

    def _fail(self, error: str) -> NodeReport:
        return NodeReport(self.node.name, False, self._started, self._elapsed(), self.vendor, error=error)

    def _build(self, series: list[Series]) -> NodeReport:
        counts: dict[str, int] = {}
        for s in series:
            if s.name in VENDOR_OF:
                counts[VENDOR_OF[s.name]] = counts.get(VENDOR_OF[s.name], 0) + 1
        vendor = self.vendor if self.vendor in counts else max(counts, key=lambda v: (counts[v], v))
        index_label, model_label, names = FAMILIES[vendor]
        warnings: list[str] = []
        if len(counts) > 1:
            others = ", ".join(sorted(v for v in counts if v != vendor))
            warnings.append(f"series of {others} exporters too; only {vendor}'s are read for this node")
        per_card: dict[int, dict[str, Series]] = {}
        labels: dict[int, dict[str, str]] = {}
        skipped = 0
        for s in series:
            key = names.get(s.name)
            if key is None:
                continue
            if s.labels.get("GPU_I_ID") or s.labels.get("vf"):
                continue                # a MIG instance or a virtual function, not the whole card
            try:
                idx = int(s.labels.get(index_label, ""))
            except ValueError:
                skipped += 1
                continue
            have = per_card.setdefault(idx, {}).get(key)
            if have is None or s.ts >= have.ts:
                per_card[idx][key] = s
            labels.setdefault(idx, {}).update(s.labels)
        if skipped:
            warnings.append(f"{skipped} series without a card index label `{index_label}` ignored")
        command = f"Prometheus {self.source.source.url}"
        cards: list[CardSample] = []
        faults: list[Fault] = []
        for idx in sorted(per_card):
            values = per_card[idx]
            lab = labels[idx]
            card = self._card(vendor, idx, values, lab, model_label)
            card, fault = self._events(vendor, card, values)
            if fault is not None:
                faults.append(fault)
            cards.append(sanity(card, warnings, command))
        if not cards:
            return self._fail(f"no card series of {vendor} for {self.node.name} in {self.source.source.url}")
        return NodeReport(self.node.name, True, self._started, self._elapsed(), vendor,
                          cards=tuple(cards), faults=tuple(faults), warnings=tuple(warnings), tools=("prometheus",))

    @staticmethod
    def _card(vendor: str, idx: int, values: dict[str, Series], lab: dict[str, str], model_label: str) -> CardSample:
        def v(key: str) -> float | None:
            s = values.get(key)
            if s is None or s.value is None:
                return None
            if vendor == "ascend" and s.value < 0:
                return None            # npu-exporter's -1 (DefaultErrorValue) for a reading it could not take
            return s.value

        model = lab.get(model_label) or None
        serial: str | None = None
        bus: str | None = None
        used = total = None
        health = Health.UNKNOWN
        if vendor == "nvidia":
            serial = lab.get("UUID") or lab.get("uuid") or None
            bus = norm_bus_id(lab.get("pci_bus_id"))
            used = v("memory_used_mib")
            free = v("_fb_free")
            if used is not None and free is not None:
                total = used + free + (v("_fb_reserved") or 0.0)
            health = Health.OK
        elif vendor == "ascend":
            name_series = values.get("_name")
            if model is None and name_series is not None:
                model = name_series.labels.get("name") or None
            sn = values.get("_serial")
            serial = sn.labels.get("serial_number") or None if sn is not None else None
            bus = norm_bus_id(lab.get("pcie_bus_info"))
            hbm_total = v("_hbm_total")
            if hbm_total:                              # 0: a chip without HBM (310P): its DDR figures
                used, total = v("_hbm_used"), hbm_total
            else:
                used, total = v("_ddr_used"), v("_ddr_total") or None
            state = v("_health")
            health = Health.UNKNOWN if state is None else Health.OK if state == 1 else Health.CRITICAL
        elif vendor == "cambricon":
            serial = lab.get("sn") or None
            used_b, total_b = v("_used_b"), v("_total_b")
            used = None if used_b is None else used_b / 1048576
            total = None if total_b is None else total_b / 1048576
            state = v("_health")
            health = Health.UNKNOWN if state is None else Health.OK if state == 1 else Health.CRITICAL
        ecc = v("ecc_uncorrected")
        return CardSample(idx, None, model, serial, bus, health, v("temperature_c"), v("utilization_pct"),
                          used, total, v("power_w"), None if ecc is None else int(ecc))

    def _events(self, vendor: str, card: CardSample, values: dict[str, Series]) -> tuple[CardSample, Fault | None]:
        """A new Xid (NVIDIA) or error code (Ascend) is a fault once: compared with the stored baseline."""
        counter, series = {"nvidia": (XID, values.get("_xid")), "ascend": (ASCEND_CODE, values.get("_error_code"))}.get(
            vendor, ("", None))
        if series is None or series.value is None or series.value < 0:
            return card, None
        value = int(series.value)
        key: CounterKey = (self.node.name, card.index, -1, counter)
        previous = self.baseline.get(key)
        if previous == value:
            return card, None
        self.baseline[key] = value
        self._changes.append((key[0], key[1], key[2], key[3], value, series.ts))
        if previous is None or value == 0:
            return card, None           # first sighting (a restart, a new card) or cleared: nothing new
        url = self.source.source.url
        if vendor == "nvidia":
            severity, action, meaning = xid_ladder(value)
            fault = Fault(f"Xid {value}", severity, action,
                          f"{meaning}: DCGM_FI_DEV_XID_ERRORS = {value} on gpu {card.index} (from {url})",
                          card.index, series.ts)
        else:
            code = f"{value:08X}"
            health = card.health if card.health is not Health.OK else Health.WARNING
            severity, action = ascend_fault_ladder(code, health)
            fault = Fault(code, severity, action,
                          f"npu_chip_info_error_code = {code} on NPU {card.index} (from {url})", card.index, series.ts)
        if severity is Severity.CRITICAL:
            card = replace(card, health=Health.CRITICAL)
        return card, fault
