"""The demo site: a simulated computing center that plugs in at the transport boundary.

Every simulated node answers the same commands a real node gets (the vendor's command plan), with
text in that vendor's real output format, so the demo runs the real parsers, store and GUI. The
state is a function of time and a seeded random stream per node, so a demo is reproducible.

Physics, kept simple but honest: utilization follows the training jobs placed on the nodes (steady
load, a dip while a checkpoint is saved, zero while a job is down); power follows utilization;
temperature follows power plus the rack's inlet temperature, which rises along a hot aisle in the
middle of each row and towards the top of each rack. Faults arrive as Poisson events at rates per
card-hour (NVIDIA Xid 79/48/63/94, HBM ECC, Ascend health alarms), and nodes go silent or their
vendor tool hangs for a while. Each node has its links (NVLink lanes and topology, Ascend RoCE ports and
HCCS, RDMA NICs) and answers the plan's link commands in the tools' formats; a few links go wrong in the
opening story, and a RoCE port that flaps stops a job (`seed_flap`).

The room and the jobs tell one story, as in a real center: on a job's nodes, the faults that stop a job
(a node going silent, a card lost, a DBE or an uncorrectable HBM/ECC error, a card unavailable) come from
the job's own fault plan, so the job stops with them and restarts only once that node or card is back;
the events that do not stop a job (a hot card, a hung vendor tool, Xid 63/94) arrive on any node. A fault
of the opening story on a job's node goes through the job (`SimJob.interrupt`) the same way.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from collectors import ascend, cambricon, hygon, jobs, links, metax, nvidia, registry
from collectors.model import Command
from collectors.ssh import Endpoint, Pending, Section, SSHError, SweepOutput
from console.service import HOLD_ROWS, Collector
from console.simjobs import STOPPING_KINDS, FaultPlan, JobSpec, SimJob
from console.site import Job, Node, Rack, Shift, Site, SSHDefaults
from console.store import Store, WriterLock

DEMO_NAME = "DEMO — simulated computing center"
DEFAULT_CARDS = 1280
MAX_CARDS = 102_400
CARDS_PER_NODE = 8
SLOTS_PER_RACK = 8
VENDOR_MIX = ("nvidia", "ascend", "hygon", "cambricon", "metax")


@dataclass(frozen=True, slots=True)
class Model:
    """What a simulated card is: the vendor's model name, memory and power envelope."""

    name: str
    memory_mib: int
    idle_w: float
    max_w: float
    cards: int = CARDS_PER_NODE


MODELS = {
    "nvidia": Model("NVIDIA H800", 81559, 70.0, 700.0),
    "ascend": Model("910B2C", 65536, 90.0, 400.0),
    "hygon": Model("K100_AI", 65520, 60.0, 300.0),
    "cambricon": Model("MLU370-X8", 23374, 40.0, 250.0),
    "metax": Model("MetaX C500", 65536, 55.0, 350.0),
}

# Poisson rates of card events per card-hour, and node events per node-hour. They are a few times
# what large fleets report so that a demo shift has something to look at.
CARD_EVENTS: dict[str, tuple[tuple[str, float], ...]] = {
    "nvidia": (("xid79", 2e-5), ("xid48", 3e-5), ("xid63", 1.5e-4), ("xid94", 5e-5), ("hot", 5e-5)),
    "ascend": (("hbm", 6e-5), ("alarm", 8e-5), ("hot", 5e-5)),
    "hygon": (("hot", 8e-5),),
    "cambricon": (("ecc", 6e-5), ("hot", 5e-5)),
    "metax": (("unavailable", 6e-5), ("hot", 5e-5)),
}
NODE_SILENT_PER_HOUR = 8e-4
TOOL_HANG_PER_HOUR = 8e-4

# The links of a simulated node, read through the link commands of the real plan (collectors.links): an H800
# has 8 NVLink lanes per GPU (nvidia-smi prints 26.562 GB/s a lane) and an NV8 topology; an Ascend 910B node
# one RoCE port per NPU (hccn_tool) and an HCCS topology, and no RDMA device on the host; every other node
# its NICs in /sys/class/infiniband (mlx5, the InfiniBand or Ethernet link layer, the rate as the file says).
NVLINK_LANES = 8
NVLINK_LANE = "26.562 GB/s"
NICS: dict[str, tuple[str, int, str]] = {          # vendor → (link_layer, ports, rate)
    "nvidia": ("InfiniBand", 8, "400 Gb/sec (4X NDR)"),
    "hygon": ("Ethernet", 4, "200 Gb/sec (4X HDR)"),
    "cambricon": ("Ethernet", 4, "100 Gb/sec (4X EDR)"),
    "metax": ("Ethernet", 4, "200 Gb/sec (4X HDR)"),
}
# The link story (DemoCenter.seed_flap): this long before the history's end a RoCE port of an NPU of a job's
# Ascend node flaps FLAP_CYCLES times over FLAP_S, so the job's stop, its resume and the incident's close are
# all in the history, and well before the opening story's Hygon node goes silent (10 min before the end).
FLAP_BEFORE_END_S = 3000.0
FLAP_S = 240.0
FLAP_CYCLES = 5
# The seeded link faults of the opening story start this long after it: once the story's silent node has its
# incident, so that a link incident opened later is never taken for the cause of that node's job stop.
LINK_FAULTS_AFTER_S = 300.0


@dataclass(slots=True)
class LinkFault:
    """What is wrong with one simulated link: the spans it is down (`(down at, up again at)`, inf: stays down)
    and counters climbing (`(name as the tool prints it, per minute, from)`)."""

    downs: tuple[tuple[float, float], ...] = ()
    climbs: tuple[tuple[str, float, float], ...] = ()

    def down(self, t: float) -> bool:
        """True when the link is down at t."""
        return any(a <= t < b for a, b in self.downs)

    def went_down(self, t: float) -> int:
        """How many times the link has gone down by t."""
        return sum(1 for a, _ in self.downs if a <= t)

    def came_up(self, t: float) -> int:
        """How many times it has come up again by t."""
        return sum(1 for _, b in self.downs if b <= t)

    def count(self, name: str, t: float) -> int:
        """The increase of one counter by t."""
        return sum(int(rate * (t - since) / 60.0) for n, rate, since in self.climbs if n == name and t > since)

    def at(self, t: float) -> tuple[object, ...]:
        """Everything the link's text shows at t (the node's link texts are made again only when it changes)."""
        return (self.down(t), self.went_down(t), self.came_up(t),
                tuple(int(rate * (t - since) / 60.0) if t > since else 0 for _, rate, since in self.climbs))


def flap_spans(node: str, card: int | None, at: float, back_at: float, cycles: int = FLAP_CYCLES
               ) -> tuple[tuple[float, float], ...]:
    """The spans a flapping port is down: `cycles` downs between `at` and `back_at`, a few seconds each, the
    last ending at `back_at` (drawn from the node, card and time: the same for the same story)."""
    rng = random.Random(f"flap/{node}/{card}/{at:.3f}")
    slot = (back_at - at) / cycles
    spans = []
    for k in range(cycles):
        a = at if k == 0 else at + k * slot + rng.uniform(0.0, slot / 3.0)
        b = back_at if k == cycles - 1 else a + rng.uniform(4.0, 15.0)
        spans.append((a, b))
    return tuple(spans)


def layout(cards: int = DEFAULT_CARDS) -> tuple[int, int]:
    """(rows, racks per row) for a demo of about `cards` cards: 8 nodes of 8 cards per rack."""
    cards = max(CARDS_PER_NODE * SLOTS_PER_RACK, min(int(cards), MAX_CARDS))
    racks = math.ceil(cards / (CARDS_PER_NODE * SLOTS_PER_RACK))
    rows = 2 if racks <= 40 else math.ceil(racks / 20)
    return rows, math.ceil(racks / rows)


def demo_site(cards: int = DEFAULT_CARDS) -> Site:
    """The demo site: rows of racks, nodes of one vendor per rack, jobs over groups of racks."""
    rows, per_row = layout(cards)
    nodes_wanted = max(1, min(int(cards), MAX_CARDS) // CARDS_PER_NODE)
    racks: list[Rack] = []
    nodes: list[Node] = []
    for r in range(rows):
        row = chr(ord("A") + r)
        for k in range(per_row):
            if len(nodes) >= nodes_wanted:
                break
            rack = f"{row}{k + 1:02d}"
            racks.append(Rack(rack, row, SLOTS_PER_RACK))
            vendor = VENDOR_MIX[(r * per_row + k) % len(VENDOR_MIX)]
            prefix = {"nvidia": "gpu", "ascend": "npu", "hygon": "dcu", "cambricon": "mlu", "metax": "mxc"}[vendor]
            for slot in range(1, SLOTS_PER_RACK + 1):
                if len(nodes) >= nodes_wanted:
                    break
                name = f"{prefix}-{rack.lower()}-{slot}"
                nodes.append(Node(name, "127.0.0.1", None, rack, slot, vendor, None))
    jobs = _demo_jobs(racks, nodes)
    return Site("<demo>", DEMO_NAME, "Asia/Shanghai", 10.0,
                SSHDefaults(known_hosts="/dev/null", config_file="/dev/null", max_parallel=16),
                tuple(racks), tuple(nodes), tuple(jobs), (Shift("day", "08:00", 12.0), Shift("night", "20:00", 12.0)))


JOB_DAYS = 15.0        # the demo's jobs have been training this long when the demo starts


def _demo_jobs(racks: list[Rack], nodes: list[Node]) -> list[Job]:
    """Three jobs: a heterogeneous one over up to four racks each of NVIDIA, Ascend, Hygon and MetaX (1,024
    cards at the default size), and two on the Cambricon racks; sites too small for them get fewer."""
    by_vendor: dict[str, list[str]] = {}
    for rack in racks:
        vendor = next((n.vendor for n in nodes if n.rack == rack.name), None)
        if vendor is not None:
            by_vendor.setdefault(vendor, []).append(rack.name)

    def members(rack_names: list[str]) -> tuple[str, ...]:
        return tuple(n.name for n in nodes if n.rack in rack_names)

    jobs: list[Job] = []
    mix = [r for v in ("nvidia", "ascend", "hygon", "metax") for r in by_vendor.get(v, [])[:4]]
    if mix:
        jobs.append(Job("llm-70b-mix", members(mix), "/demo/ckpt/llm-70b-mix", "/demo/logs/llm-70b-mix/train.log",
                        "megatron", None))
    mlu = by_vendor.get("cambricon", [])[:4]
    if len(mlu) >= 2:
        half = len(mlu) // 2
        jobs.append(Job("moe-16b-sft", members(mlu[:half]), "/demo/ckpt/moe-16b-sft",
                        "/demo/logs/moe-16b-sft/train.log", "deepspeed", None))
        jobs.append(Job("vlm-7b-pt", members(mlu[half:]), "/demo/ckpt/vlm-7b-pt", "/demo/logs/vlm-7b-pt/train.log",
                        "megatron", None))
    return jobs


# How each demo job trains and how often it fails (mean time between failures): the big mixed job about
# every 2 days, as 1,000-card jobs do; the SFT job has been clean for weeks; the third one is troubled.
JOB_PROFILES = {
    "llm-70b-mix": dict(step_s=6.0, log_every=10, ckpt_every=300, save_s=50.0, mtbf_s=2.0 * 86400, hang_share=0.25),
    "moe-16b-sft": dict(step_s=2.0, log_every=30, ckpt_every=900, save_s=25.0, mtbf_s=60.0 * 86400, hang_share=0.0),
    "vlm-7b-pt": dict(step_s=3.0, log_every=20, ckpt_every=1200, save_s=40.0, mtbf_s=0.6 * 86400, hang_share=0.5),
}


@dataclass(slots=True)
class CardState:
    """One simulated card as its vendor tool would print it; None is a value the tool cannot give."""

    index: int
    bus_id: str
    serial: str
    temperature_c: float | None = 35.0
    utilization_pct: float | None = 0.0
    memory_used_mib: float | None = 0.0
    power_w: float | None = 50.0
    lost_until: float = 0.0     # fallen off the bus (Xid 79) until the node is rebooted
    hot_until: float = 0.0      # a fan or cold-plate problem
    alarm_until: float = 0.0    # Ascend health alarm / MetaX unavailable
    alarm_code: str = ""
    ecc_uncorrected: int = 0


@dataclass(slots=True)
class NodeState:
    """One simulated node: its cards, its pending kernel-log lines and its misbehaviour windows."""

    name: str
    vendor: str
    rack_pos: float              # 0..1 along the row (the hot aisle is in the middle)
    slot_pos: float              # 0..1 bottom to top of the rack
    job: str | None
    rng: random.Random
    cards: list[CardState]
    t: float = 0.0
    kmsg: list[tuple[float, str]] = field(default_factory=list)
    silent_since: float = 0.0
    silent_until: float = 0.0
    hung_until: float = 0.0
    events: tuple[tuple[str, float], ...] = ()      # the card events the room draws here (CARD_EVENTS)
    silent_per_hour: float = NODE_SILENT_PER_HOUR
    faults_seen: float = -math.inf                  # the jobs' faults up to this time have been applied
    boot: float = 0.0                               # when the node last booted (its ports came up)
    # (kind, card, link) → what is wrong with that link; every other link is up with no errors
    link_faults: dict[tuple[str, int | None, str], LinkFault] = field(default_factory=dict)
    link_text: dict[str, tuple[object, str, int]] = field(default_factory=dict)   # section → (state, text, sum)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def link_state(self, now: float) -> tuple[object, ...]:
        """What the node's link texts depend on at `now`: its link faults and its lost GPUs."""
        if not self.link_faults:
            return tuple(c.index for c in self.cards if c.lost_until > now)
        return (tuple(c.index for c in self.cards if c.lost_until > now),
                tuple((k, f.at(now)) for k, f in self.link_faults.items()))

    def go_silent(self, t: float, until: float) -> None:
        """The node stops answering from t (or stays silent longer) until `until`."""
        if self.silent_until <= t:
            self.silent_since = t
        self.silent_until = max(self.silent_until, until)




class DemoCenter:
    """All simulated nodes of a demo site; thread-safe per node, deterministic for a seed."""

    def __init__(self, site: Site, seed: int = 2026, start: float | None = None,
                 story: bool = True, job_days: float = JOB_DAYS) -> None:
        self.site = site
        self.seed = seed
        self.start = time.time() if start is None else start
        self.flap: FaultPlan | None = None          # the link story's fault, once told (seed_flap)
        self._story_nodes: set[str] = set()         # nodes the stories have picked (one problem per node)
        per_row: dict[str | None, int] = {}
        for r in site.racks:
            per_row[r.row] = per_row.get(r.row, 0) + 1
        position: dict[str, float] = {}
        seen_in_row: dict[str | None, int] = {}
        for r in site.racks:
            k = seen_in_row.get(r.row, 0)
            seen_in_row[r.row] = k + 1
            position[r.name] = k / max(1, per_row[r.row] - 1)
        job_of = {n: j.name for j in site.jobs for n in j.nodes}
        self.jobs: dict[str, SimJob] = {}
        self._jobs_on: dict[str, list[str]] = {}       # node → the jobs placed on it
        for j in site.jobs:
            for member in j.nodes:
                self._jobs_on.setdefault(member, []).append(j.name)
        self._scheduled_lock = threading.Lock()
        self._scheduled: dict[str, list[tuple[float, FaultPlan]]] = {}   # room faults not yet due
        self.nodes: dict[str, NodeState] = {}
        for i, n in enumerate(site.nodes):
            vendor = n.vendor or "nvidia"
            model = MODELS[vendor]
            rng = random.Random(seed * 1_000_003 + i)
            cards = [CardState(c, f"0000:{0x18 + 0x10 * c:02x}:00.0", f"{vendor[:2].upper()}{seed % 100:02d}{i:05d}{c}")
                     for c in range(model.cards)]
            # a job's nodes get the faults that stop a job from the job's plan (its MTBF), not from the room
            in_job = n.name in self._jobs_on
            events = tuple(e for e in CARD_EVENTS.get(vendor, ()) if not (in_job and e[0] in STOPPING_KINDS))
            self.nodes[n.name] = NodeState(n.name, vendor, position.get(n.rack or "", 0.5),
                                           ((n.slot or 1) - 1) / max(1, SLOTS_PER_RACK - 1),
                                           job_of.get(n.name), rng, cards, t=self.start, events=events,
                                           silent_per_hour=0.0 if in_job else NODE_SILENT_PER_HOUR,
                                           boot=self.start - job_days * 86400.0 - 3600.0
                                           - zlib.crc32(n.name.encode()) % 86400)
        vendor_of = {n.name: n.vendor or "nvidia" for n in site.nodes}
        tz = ZoneInfo(site.timezone)
        for k, job in enumerate(site.jobs):
            if job.log is None or job.checkpoint_dir is None:
                continue
            profile = JOB_PROFILES.get(job.name, JOB_PROFILES["llm-70b-mix"])
            spec = JobSpec(job.name, job.framework or "megatron", job.nodes, {n: vendor_of[n] for n in job.nodes},
                           job.log, job.checkpoint_dir, seed=seed * 31 + k, **profile)  # type: ignore[arg-type]
            self.jobs[job.name] = SimJob(spec, self.start - job_days * 86400.0, tz)
        if story:
            self.seed_story(self.start)

    def jobs_on(self, node: str) -> list[SimJob]:
        """The simulated jobs placed on a node."""
        return [sim for name in self._jobs_on.get(node, ()) if (sim := self.jobs.get(name)) is not None]

    def strike(self, fault: FaultPlan, at: float) -> float:
        """A fault from outside the jobs' plans strikes `fault.node` at `at`. One that stops a job, on a job's
        node, goes through the job (it stops, and hands the fault back to the room, at the latest time it has
        already shown if `at` is earlier); anything else is applied when the node's time reaches it. Returns
        the time it strikes."""
        if fault.node not in self.nodes:
            return at
        sims = self.jobs_on(fault.node) if fault.kind in STOPPING_KINDS else []
        if sims:
            return max(sim.interrupt(at, fault) for sim in sims)
        with self._scheduled_lock:
            self._scheduled.setdefault(fault.node, []).append((at, fault))
        return at

    def job_load(self, job: str | None, t: float) -> float:
        """Utilization fraction of a job's cards at time t (idle cards run at 2 %)."""
        sim = self.jobs.get(job or "")
        return 0.02 if sim is None else sim.load(t)

    def job_output(self, job: str, section: str, shell: str, now: float) -> str | None:
        """What a node prints for a job's log read or checkpoint listing."""
        sim = self.jobs.get(job)
        if sim is None:
            return None
        if section.endswith(".ckpt"):
            return sim.listing_output(now)
        m = re.search(r"\bo=(\d+);", shell)                # the offset mixops asked for
        return sim.log_output(int(m.group(1)) if m else 0, now, jobs.LOG_CAP_BYTES)

    def seed_story(self, t: float) -> None:
        """A few ongoing problems from time t, so the first screen of the demo shows what mixops is for: a
        Hygon node of a job stops answering for 20 min (the job goes down and resumes once the node is back),
        a GPU falls off the bus and an Ascend card raises an alarm (on nodes outside the jobs where there are
        any, else they hold the job down too), a MetaX vendor tool hangs and a Cambricon card runs hot. Then
        the links (`seed_links`): an NVLink lane goes down, error counters climb on a few ports."""
        if len(self.nodes) < 8:
            return
        rng = random.Random(7)
        by_vendor: dict[str, list[NodeState]] = {}
        for ns in self.nodes.values():
            by_vendor.setdefault(ns.vendor, []).append(ns)

        def pick(vendor: str, in_job: bool) -> NodeState | None:
            nodes = by_vendor.get(vendor, [])
            preferred = [ns for ns in nodes if (ns.name in self._jobs_on) == in_job]
            return rng.choice(preferred or nodes) if nodes else None

        if (hit := pick("hygon", True)) is not None:
            self.strike(FaultPlan("silent", hit.name, None, t + 1200.0), t)
            self._story_nodes.add(hit.name)
        if (hit := pick("nvidia", False)) is not None:
            self.strike(FaultPlan("xid79", hit.name, 3, t + 1080.0), t + 60.0)
            self._story_nodes.add(hit.name)
        if (hit := pick("ascend", False)) is not None:
            self.strike(FaultPlan("alarm", hit.name, 5, t + 720.0), t + 120.0)
            self._story_nodes.add(hit.name)
        if (hit := pick("metax", False)) is not None:
            with hit.lock:
                hit.hung_until = max(hit.hung_until, t + 900.0)
            self._story_nodes.add(hit.name)
        if (hit := pick("cambricon", False)) is not None:
            self.strike(FaultPlan("hot", hit.name, 1, None), t - 60.0)
            self._story_nodes.add(hit.name)
        self.seed_links(t + LINK_FAULTS_AFTER_S)

    def _quiet_node(self, vendor: str, rng: random.Random) -> NodeState | None:
        """A node of `vendor` no story has picked, among those outside the jobs, else among the nodes of the job
        that fails least often (a link fault that does not stop a job is best where no job stop is near)."""
        nodes = sorted((ns for ns in self.nodes.values() if ns.vendor == vendor and ns.name not in self._story_nodes),
                       key=lambda ns: ns.name)

        def risk(ns: NodeState) -> float:
            return max((1.0 / sim.spec.mtbf_s for sim in self.jobs_on(ns.name)), default=0.0)

        if not nodes:
            return None
        least = min(risk(ns) for ns in nodes)
        hit = rng.choice([ns for ns in nodes if risk(ns) == least])
        self._story_nodes.add(hit.name)
        return hit

    def seed_links(self, t: float) -> None:
        """Link faults from time t (nodes and links drawn from the center's seed): an NVLink lane of a GPU goes
        down and stays down (LINK-DOWN); another GPU's lane counts CRC and replay errors, too slowly for an
        incident (its counters show in the card detail); the RoCE port of an Ascend NPU counts FCS (CRC) errors
        at 400 a minute and a Cambricon node's RoCE NIC receive errors at 150 a minute (LINK-ERRORS). None of
        them stops a job: a job's stop on a link is the link story's (seed_flap)."""
        rng = random.Random(self.seed * 7_919 + 23)
        faults: list[tuple[NodeState | None, tuple[str, int | None, str], LinkFault]] = []
        if (hit := self._quiet_node("nvidia", rng)) is not None:
            card, lane = rng.randrange(len(hit.cards)), rng.randrange(NVLINK_LANES)
            faults.append((hit, ("nvlink", card, str(lane)), LinkFault(downs=((t, math.inf),))))
        if (hit := self._quiet_node("nvidia", rng)) is not None:
            card, lane = rng.randrange(len(hit.cards)), rng.randrange(NVLINK_LANES)
            faults.append((hit, ("nvlink", card, str(lane)), LinkFault(
                climbs=(("CRC Errors", 12.0, t), ("Replay Errors", 2.0, t)))))
        if (hit := self._quiet_node("ascend", rng)) is not None:
            card = rng.randrange(len(hit.cards))
            faults.append((hit, ("roce", card, "0"), LinkFault(climbs=(("mac_rx_fcs_err_pkt_num", 400.0, t),
                                                                        ("mac_rx_bad_pkt_num", 30.0, t)))))
        if (hit := self._quiet_node("cambricon", rng)) is not None:
            port = rng.randrange(NICS["cambricon"][1])
            faults.append((hit, ("rdma", None, f"mlx5_{port}/1"), LinkFault(climbs=(("port_rcv_errors", 150.0, t),))))
        for ns, key, fault in faults:
            if ns is not None:
                with ns.lock:
                    ns.link_faults[key] = fault

    def seed_flap(self, at: float) -> FaultPlan | None:
        """The link story: from `at`, the RoCE port of one NPU of a job's Ascend node goes down and up
        FLAP_CYCLES times over FLAP_S (hccn_tool shows it down, its link up count and change records climb),
        the job's HCCL collective times out and it stops (through the job, as every fault that stops a job);
        it restarts once the port has held up and the node is back in service. Returns the fault (None: no
        Ascend node in a job)."""
        rng = random.Random(self.seed * 7_919 + 19)
        nodes = sorted((ns for ns in self.nodes.values() if ns.vendor == "ascend" and ns.name in self._jobs_on
                        and ns.name not in self._story_nodes), key=lambda ns: ns.name)
        if not nodes:
            return None
        hit = rng.choice(nodes)
        self._story_nodes.add(hit.name)
        self.flap = FaultPlan("flap", hit.name, rng.randrange(len(hit.cards)), at + FLAP_S)
        self.strike(self.flap, at)
        return self.flap

    # ---- evolution --------------------------------------------------------------------------------

    def _card_event(self, ns: NodeState, card: CardState, kind: str, t: float, until: float | None = None) -> None:
        """One card event at t; `until`: when the card is back (a job's fault says), else drawn here."""
        rng = ns.rng
        if kind.startswith("xid"):
            code = int(kind[3:])
            text = {79: "GPU has fallen off the bus.",
                    48: "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer.",
                    63: "Row remapping event: page retirement pending.",
                    94: "Contained ECC error."}[code]
            stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S,%f+00:00")
            bus = card.bus_id[:-2]
            ns.kmsg.append((t, f"{stamp} {ns.name} kernel: NVRM: Xid (PCI:{bus}): {code}, pid={rng.randint(900, 90000)}, "
                               f"name=python, {text}"))
            if code == 79:
                card.lost_until = max(card.lost_until, until if until is not None else t + rng.uniform(1200, 3600))
            if code == 48:
                card.ecc_uncorrected += 1
        elif kind == "hot":
            card.hot_until = max(card.hot_until, until if until is not None else t + rng.uniform(600, 2400))
        elif kind in ("alarm", "hbm"):
            card.alarm_until = max(card.alarm_until, until if until is not None else t + rng.uniform(600, 3600))
            card.alarm_code = "80E01801" if kind == "hbm" else "8C084E00"
        elif kind == "ecc":
            card.ecc_uncorrected += 1
            card.alarm_until = max(card.alarm_until, until if until is not None else t + rng.uniform(1800, 7200))
        elif kind == "unavailable":
            card.alarm_until = max(card.alarm_until, until if until is not None else t + rng.uniform(600, 1800))

    def advance(self, name: str, now: float) -> NodeState:
        """Bring one node's state forward to `now` (events drawn for the elapsed time)."""
        ns = self.nodes[name]
        with self._scheduled_lock:
            pending = self._scheduled.get(name, [])
            due = [e for e in pending if e[0] <= now]
            if due:
                self._scheduled[name] = [e for e in pending if e[0] > now]
        with ns.lock:
            if now > ns.faults_seen:
                for sim in self.jobs_on(name):
                    due += sim.faults_due(name, ns.faults_seen, now)
                ns.faults_seen = now
            dt = now - ns.t
            if dt > 0:
                self._events(ns, ns.t, now)
                ns.t = now
            applied: set[tuple[float, str, int | None]] = set()     # a node in two jobs: one event, not two
            for t, fault in sorted(due, key=lambda e: e[0]):
                if (t, fault.kind, fault.card) in applied:
                    continue
                applied.add((t, fault.kind, fault.card))
                if fault.kind == "silent":
                    ns.go_silent(t, fault.back_at if fault.back_at is not None else t + ns.rng.uniform(600, 1500))
                elif fault.kind == "flap":
                    _flap(ns, fault, t)
                elif fault.card is not None and fault.card < len(ns.cards):
                    self._card_event(ns, ns.cards[fault.card], fault.kind, t, fault.back_at)
            self._physics(ns, now)
            if ns.kmsg:
                ns.kmsg = [(ts, line) for ts, line in ns.kmsg if ts > now - 86400]
        return ns

    def _events(self, ns: NodeState, t0: float, t1: float) -> None:
        rng = ns.rng
        hours = (t1 - t0) / 3600.0
        for card in ns.cards:
            for kind, rate in ns.events:
                if rng.random() < 1.0 - math.exp(-rate * hours):
                    self._card_event(ns, card, kind, rng.uniform(t0, t1))
        if ns.silent_per_hour and rng.random() < 1.0 - math.exp(-ns.silent_per_hour * hours):
            ns.go_silent(t1, t1 + rng.uniform(300, 1800))
        if rng.random() < 1.0 - math.exp(-TOOL_HANG_PER_HOUR * hours):
            ns.hung_until = t1 + rng.uniform(120, 600)

    def _physics(self, ns: NodeState, t: float) -> None:
        model = MODELS[ns.vendor]
        load = self.job_load(ns.job, t)
        inlet = 22.0 + 9.0 * math.exp(-((ns.rack_pos - 0.5) ** 2) / 0.03) + 4.0 * ns.slot_pos
        for card in ns.cards:
            if card.lost_until > t:
                card.temperature_c = card.utilization_pct = card.memory_used_mib = card.power_w = None
                continue
            jitter = ns.rng.uniform(-0.03, 0.03)
            util = max(0.0, min(1.0, load + jitter)) if load > 0.05 else 0.0
            power = model.idle_w + (model.max_w - model.idle_w) * util
            temp = inlet + 8.0 + 0.075 * power * (250.0 / model.max_w) + (22.0 if card.hot_until > t else 0.0)
            card.utilization_pct = float(round(util * 100))
            card.power_w = float(round(power, 1 if ns.vendor in ("nvidia", "ascend", "hygon") else None))
            card.temperature_c = float(round(temp))
            card.memory_used_mib = float(int(model.memory_mib * (0.86 if util > 0.1 else 0.01)))

    # ---- answers in each vendor's format ------------------------------------------------------------

    def answer(self, name: str, commands: tuple[Command, ...], since: float, now: float) -> SweepOutput:
        """The framed sections a real node would return for these commands at time `now`."""
        ns = self.advance(name, now)
        if ns.silent_until > now:
            raise SSHError(f"{name}: connection timed out (no answer within the connect timeout)")
        out = SweepOutput()
        for cmd in commands:
            out.sections[cmd.section] = self._section(ns, cmd, since, now)
        return out

    def _section(self, ns: NodeState, cmd: Command, since: float, now: float) -> Section:
        if cmd.section == "detect":
            return Section("\n".join(registry.VENDORS[ns.vendor].tools) + "\n", 0)
        if cmd.section.startswith("job"):
            i = int(cmd.section[3:].split(".")[0])
            out = self.job_output(self.site.jobs[i].name, cmd.section, cmd.shell, now)
            return Section(out or "", 0)
        if ns.hung_until > now and cmd.section in ("query", "info", "json", "table"):
            return Section("", 124, "")
        with ns.lock:
            text = render(ns, cmd, since, now)
        if text is None:
            return Section("", 127, f"sh: 1: {cmd.shell.split()[0]}: not found")
        return Section(text, 0)


def _flap(ns: NodeState, fault: FaultPlan, t: float) -> None:
    """A flapping port (the link story) reaches the room at t: an Ascend NPU's RoCE port, else a NIC port."""
    back = fault.back_at if fault.back_at is not None and fault.back_at > t else t + FLAP_S
    if ns.vendor == "ascend" and fault.card is not None:
        key: tuple[str, int | None, str] = ("roce", fault.card, "0")
    elif ns.vendor in NICS:
        key = ("rdma", None, f"mlx5_{(fault.card or 0) % NICS[ns.vendor][1]}/1")
    else:
        return
    old = ns.link_faults.get(key, LinkFault())
    ns.link_faults[key] = LinkFault(old.downs + flap_spans(ns.name, fault.card, t, back), old.climbs)


def render(ns: NodeState, cmd: Command, since: float, now: float) -> str | None:
    """Text of one command in the vendor's format, or None for a command this node does not have."""
    shell = cmd.shell
    if cmd.section.startswith("links."):
        return render_links(ns, cmd, now)
    if ns.vendor == "nvidia" and shell == nvidia.QUERY:
        return render_nvidia_query(ns)
    if ns.vendor == "nvidia" and shell == nvidia.KERNEL_LOG:
        return "".join(line + "\n" for ts, line in ns.kmsg if ts >= since)
    if ns.vendor == "ascend" and shell == ascend.INFO:
        return render_npu_smi(ns, now)
    if ns.vendor == "ascend" and shell.startswith("npu-smi info -t health"):
        idx = int(shell.split("-i")[1].split()[0])
        card = next((c for c in ns.cards if c.index == idx), None)
        if card is None:
            return None
        if card.alarm_until > now:
            return (f"    Health Status                  : Alarm\n    Error Code                     : {card.alarm_code}\n"
                    "    Error Information              : node type=HBM, sensor type=Memory, event state=uncorrectable "
                    "ECC error\n" if card.alarm_code == "80E01801" else
                    f"    Health Status                  : Alarm\n    Error Code                     : {card.alarm_code}\n"
                    "    Error Information              : node type=HCCS, sensor type=Link, event state=link down\n")
        return "    Health Status                  : OK\n    Error Code                     : NA\n"
    if ns.vendor == "hygon" and shell == hygon.JSON_QUERY:
        return render_hy_smi_json(ns)
    if ns.vendor == "cambricon" and shell == cambricon.TABLE:
        return render_cnmon(ns, now)
    if ns.vendor == "metax" and shell == metax.TABLE:
        return render_mx_smi(ns, now)
    return None


def _v(value: float | None, fmt: str, na: str) -> str:
    return na if value is None else format(value, fmt)


def render_nvidia_query(ns: NodeState) -> str:
    model = MODELS[ns.vendor]
    lines = []
    for c in ns.cards:
        if c.temperature_c is None:
            lines.append(f"{c.index}, [GPU is lost], [GPU is lost], [GPU is lost], [GPU is lost], [GPU is lost], "
                         "[GPU is lost], [GPU is lost], [GPU is lost], [GPU is lost], [GPU is lost]")
            continue
        lines.append(f"{c.index}, GPU-{c.serial.lower()}-0000-demo, {c.serial}, {model.name}, "
                     f"0000{c.bus_id.upper()}, {_v(c.temperature_c, '.0f', '[N/A]')}, "
                     f"{_v(c.utilization_pct, '.0f', '[N/A]')}, {_v(c.memory_used_mib, '.0f', '[N/A]')}, "
                     f"{model.memory_mib}, {_v(c.power_w, '.2f', '[N/A]')}, {c.ecc_uncorrected}")
    return "\n".join(lines) + "\n"


def render_npu_smi(ns: NodeState, now: float) -> str:
    model = MODELS[ns.vendor]
    out = ["+------------------------------------------------------------------------------------------------+",
           "| npu-smi 23.0.3                   Version: 23.0.3                                               |",
           "+---------------------------+---------------+----------------------------------------------------+",
           "| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|",
           "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |",
           "+===========================+===============+====================================================+"]
    for c in ns.cards:
        health = "Alarm" if c.alarm_until > now else "OK"
        power = _v(c.power_w, ".1f", "NA")
        temp = _v(c.temperature_c, ".0f", "NA")
        hbm = f"{_v(c.memory_used_mib, '.0f', 'NA')} / {model.memory_mib}"
        out.append(f"| {c.index:<5} {model.name:<19} | {health:<13} | {power:<11} {temp:<17} {'0    / 0':<21}|")
        out.append(f"| {0:<25} | {c.bus_id.upper():<13} | {_v(c.utilization_pct, '.0f', 'NA'):<11} "
                   f"{'0    / 0':<17} {hbm:<21}|")
        out.append("+===========================+===============+====================================================+")
    return "\n".join(out) + "\n"


def render_hy_smi_json(ns: NodeState) -> str:
    model = MODELS[ns.vendor]
    data = {}
    for c in ns.cards:
        data[f"card{c.index}"] = {
            "Device ID": "0x6210", "Card Series": model.name, "Card Vendor": "Chengdu Haiguang IC Design Co., Ltd.",
            "Serial Number": c.serial, "Unique ID": f"{zlib.crc32(c.serial.encode()):08x}",
            "Average Graphics Package Power (W)": _v(c.power_w, ".1f", "N/A"),
            "Temperature (Sensor junction) (C)": _v(c.temperature_c, ".1f", "N/A"),
            "DCU use (%)": _v(c.utilization_pct, ".0f", "N/A"),
            "vram Total Memory (MiB)": str(model.memory_mib),
            "vram Total Used Memory (MiB)": _v(c.memory_used_mib, ".0f", "N/A"),
        }
    return "hygon module is loaded\n" + json.dumps(data, indent=2) + "\n"


def render_cnmon(ns: NodeState, now: float) -> str:
    model = MODELS[ns.vendor]
    out = [datetime.fromtimestamp(now, UTC).strftime("%a %b %d %H:%M:%S %Y"),
           "+------------------------------------------------------------------------------+",
           "| CNMON v5.10.13                                               Driver v5.10.13 |",
           "+-------------------------------+----------------------+-----------------------+",
           "| Card  VF  Name       Firmware |               Bus-Id | Util        Ecc-Error |",
           "| Fan   Temp      Pwr:Usage/Cap |         Memory-Usage | SR-IOV   Compute-Mode |",
           "|===============================+======================+=======================|"]
    for c in ns.cards:
        util = _v(c.utilization_pct, ".0f", "N/A") + ("%" if c.utilization_pct is not None else "")
        temp = _v(c.temperature_c, ".0f", "N/A") + ("C" if c.temperature_c is not None else "")
        pwr = f"{_v(c.power_w, '.0f', 'N/A')} W/ {model.max_w:.0f} W"
        mem = f"{_v(c.memory_used_mib, '.0f', 'N/A')} MiB/ {model.memory_mib} MiB"
        out.append(f"| {c.index:<5} /   {model.name:<12} v1.1.6 | {c.bus_id.upper():>20} | {util:<6}{c.ecc_uncorrected:>15} |")
        out.append(f"|  0%   {temp:<5} {pwr:>17} | {mem:>20} | N/A           Default |")
        out.append("+-------------------------------+----------------------+-----------------------+")
    return "\n".join(out) + "\n"


def render_mx_smi(ns: NodeState, now: float) -> str:
    model = MODELS[ns.vendor]
    stamp = datetime.fromtimestamp(now, UTC).strftime("%a %b %d %H:%M:%S %Y")
    out = ["mx-smi  version: 2.2.9", "", "=================== MetaX System Management Interface Log ===================",
           f"Timestamp                                         : {stamp}", "",
           f"Attached GPUs                                     : {len(ns.cards)}",
           "+---------------------------------------------------------------------------------+",
           "| MX-SMI 2.2.9                       Kernel Mode Driver Version: 3.4.4            |",
           "| MACA Version: 3.3.0.15             BIOS Version: 1.30.0.0                       |",
           "|------------------+-----------------+---------------------+----------------------|",
           "| Board       Name | GPU   Persist-M | Bus-id              | GPU-Util      sGPU-M |",
           "| Pwr:Usage/Cap    | Temp       Perf | Memory-Usage        | GPU-State            |",
           "|==================+=================+=====================+======================|"]
    for c in ns.cards:
        util = _v(c.utilization_pct, ".0f", "N/A") + ("%" if c.utilization_pct is not None else "")
        temp = _v(c.temperature_c, ".0f", "N/A") + ("C" if c.temperature_c is not None else "")
        pwr = f"{_v(c.power_w, '.0f', 'N/A')}W / {model.max_w:.0f}W"
        mem = f"{_v(c.memory_used_mib, '.0f', 'N/A')}/{model.memory_mib} MiB"
        state = "Unavailable" if c.alarm_until > now else "Available"
        out.append(f"| {c.index:<5} {model.name:>10} | {c.index:<5}       Off | {c.bus_id:<19} | {util:<6}   Disabled |")
        out.append(f"| {pwr:<16} | {temp:<5}        P0 | {mem:<19} | {state:<20} |")
        out.append("+------------------+-----------------+---------------------+----------------------+")
    out += ["", "End of Log"]
    return "\n".join(out) + "\n"


# ---- links: the text each link command of the plan prints on the node (collectors.links) ----------------

_PREVIOUS_SUM = re.compile(r'if \[ "\$s" = (\w+) \]; then')
_HCCN_DEVICES = re.compile(r"for i in ([\d ]+); do for o in")


def render_links(ns: NodeState, cmd: Command, now: float) -> str | None:
    """What one link command of the plan prints on this node (after the plan's own filters on the node), or
    None for a source this node's vendor is not asked for. A text the same as the one whose checksum the plan
    carries goes as one `mixops-same` line, as the node's cksum makes it (the checksum here is a CRC-32 of the
    text: the plan compares it, never reads it)."""
    name = cmd.section[len("links."):]
    vendors = links.source(name).vendors if name in {src.name for src in links.SOURCES} else ()
    if vendors is not None and ns.vendor not in vendors:
        return None
    if name.startswith("topo-"):
        if "/proc/uptime" in cmd.shell:
            return links.SKIP + "\n"          # the node has been up for days: the plan's gate skips the matrix
        text = _topology(ns, name)
        return None if text is None else text + "mixops-rc=0\n"
    make = _LINK_TEXTS.get(name)
    if make is None:
        return None
    devices = _HCCN_DEVICES.search(cmd.shell) if name == "hccn" else None
    state = (ns.link_state(now), devices.group(1) if devices else None)
    kept = ns.link_text.get(name)
    if kept is None or kept[0] != state:
        text = make(ns, now, [int(d) for d in devices.group(1).split()] if devices else None)
        kept = (state, text, zlib.crc32(text.encode()))
        ns.link_text[name] = kept
    _, text, crc = kept
    previous = _PREVIOUS_SUM.search(cmd.shell)
    if previous is None:
        return text                             # a plan without the checksum (a capture): the text as printed
    if previous.group(1) == str(crc):
        return f"{links.SAME} {crc}\n"
    return f"{text}mixops-sum {crc}\n"


def _lanes(ns: NodeState, now: float) -> list[CardState]:
    """The GPUs nvidia-smi lists (one fallen off the bus is not listed)."""
    return [c for c in ns.cards if c.lost_until <= now]


def _gpu_header(ns: NodeState, c: CardState) -> str:
    return f"GPU {c.index}: {MODELS[ns.vendor].name} (UUID: GPU-{c.serial.lower()}-0000-demo)"


def _nvlink_status(ns: NodeState, now: float, _devices: list[int] | None) -> str:
    """`nvidia-smi nvlink --status`: each GPU's lanes at their speed, `<inactive>` for a lane down."""
    out = []
    for c in _lanes(ns, now):
        out.append(_gpu_header(ns, c))
        for lane in range(NVLINK_LANES):
            fault = ns.link_faults.get(("nvlink", c.index, str(lane)))
            out.append(f"\t Link {lane}: " + ("<inactive>" if fault is not None and fault.down(now) else NVLINK_LANE))
    return "\n".join(out) + "\nmixops-rc=0\n"


def _nvlink_errors(ns: NodeState, now: float, _devices: list[int] | None) -> str:
    """`nvidia-smi nvlink -e` as the plan's awk leaves it: the GPU headers and the counters that are not 0."""
    out = [links.ZEROS_OMITTED]
    for c in _lanes(ns, now):
        out.append(_gpu_header(ns, c))
        for lane in range(NVLINK_LANES):
            fault = ns.link_faults.get(("nvlink", c.index, str(lane)))
            if fault is None or fault.down(now):
                continue
            for counter in ("Replay Errors", "Recovery Errors", "CRC Errors"):
                n = fault.count(counter, now)
                if n:
                    out.append(f"\t Link {lane}: {counter}: {n}")
    return "\n".join(out) + "\nmixops-rc=0\n"


# `hccn_tool -i N -stat -g` as the plan's awk leaves it: the error counters (traffic and pause counters stay on
# the node), in the tool's order
HCCN_ERROR_COUNTERS = ("mac_tx_bad_pkt_num", "mac_rx_bad_pkt_num", "mac_rx_fcs_err_pkt_num", "roce_rx_err_pkt_num",
                       "roce_tx_err_pkt_num", "roce_cqe_err_num", "roce_qp_status_err_num")


def _hccn(ns: NodeState, now: float, devices: list[int] | None) -> str:
    """The plan's hccn_tool loop: for each NPU id, `-link`, `-net_health`, `-link_stat` (without its clock
    line) and `-stat` (its error counters), each block after its `@@hccn DEV OPTION` mark and with its rc."""
    ids = devices if devices is not None else [c.index for c in ns.cards]
    out = []
    for dev in ids:
        if dev >= len(ns.cards):
            continue
        fault = ns.link_faults.get(("roce", dev, "0"))
        down = fault is not None and fault.down(now)
        out += [f"@@hccn {dev} -link", f"link status: {'DOWN' if down else 'UP'}", "mixops-rc=0",
                f"@@hccn {dev} -net_health", f"net health status: {'Socket failed' if down else 'Success'}",
                "mixops-rc=0", f"@@hccn {dev} -link_stat"]
        records = [(ns.boot, "LINK UP")]
        if fault is not None:
            for a, b in fault.downs:
                if a <= now:
                    records.append((a, "LINK DOWN"))
                if b <= now:
                    records.append((b, "LINK UP"))
        out.append(f"[devid {dev}]link up count       : {1 + (fault.came_up(now) if fault is not None else 0)}")
        out.append(f"[devid {dev}]link change records :")
        for ts, what in sorted(records, reverse=True)[:10]:
            out.append(f"[devid {dev}]    {datetime.fromtimestamp(ts, UTC).ctime()}    {what}")
        out += ["mixops-rc=0", f"@@hccn {dev} -stat", "packet statistics:"]
        out += [f"{n}:{fault.count(n, now) if fault is not None else 0}" for n in HCCN_ERROR_COUNTERS]
        out.append("mixops-rc=0")
    return "\n".join(out) + "\n"


def _rdma(ns: NodeState, now: float, _devices: list[int] | None) -> str:
    """The plan's read of /sys/class/infiniband/*/ports/*: `DEV/ports/N/FILE:VALUE` for the files it reads."""
    nic = NICS.get(ns.vendor)
    if nic is None:
        return f"mixops-missing: no RDMA ports in {links.RDMA_SYSFS}\n"
    layer, ports, rate = nic
    out = []
    for k in range(ports):
        port = f"mlx5_{k}/ports/1"
        fault = ns.link_faults.get(("rdma", None, f"mlx5_{k}/1"))
        down = fault is not None and fault.down(now)
        out += [f"{port}/state:{'1: DOWN' if down else '4: ACTIVE'}",
                f"{port}/phys_state:{'2: Polling' if down else '5: LinkUp'}",
                f"{port}/rate:{rate}", f"{port}/link_layer:{layer}"]
        for f in links.RDMA_FILES:
            if f.startswith("counters/"):
                name = f.split("/", 1)[1]
                n = 0 if fault is None else fault.went_down(now) if name == "link_downed" else fault.count(name, now)
                out.append(f"{port}/{f}:{n}")
    return "\n".join(out) + "\nmixops-rc=0\n"


_LINK_TEXTS: dict[str, Callable[[NodeState, float, list[int] | None], str]] = {
    "nvlink": _nvlink_status, "nvlink-errors": _nvlink_errors, "hccn": _hccn, "rdma": _rdma}


def _topology(ns: NodeState, name: str) -> str | None:
    """`nvidia-smi topo -m` (GPUs bonded by NV8, each GPU's NIC on its PCIe switch) or `npu-smi info -t topo`
    (NPUs joined by HCCS), as the vendor tools print them."""
    n = len(ns.cards)
    half = max(1, n // 2)
    if name == "topo-nvidia" and ns.vendor == "nvidia":
        nics = NICS["nvidia"][1]
        cols = [f"GPU{i}" for i in range(n)] + [f"NIC{k}" for k in range(nics)]

        def path(a: str, b: str) -> str:
            i, j = int(a[3:]), int(b[3:])
            if a == b:
                return " X "
            if a[:3] == b[:3] == "GPU":
                return "NV8"
            if a[:3] != b[:3] and i == j:
                return "PIX"
            return "NODE" if (i < half) == (j < half) else "SYS"

        out = ["\t" + "\t".join(cols) + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID"]
        for a in cols:
            row = [a] + [path(a, b) for b in cols]
            if a.startswith("GPU"):
                numa = 0 if int(a[3:]) < half else 1
                row += ["0-47,96-143" if numa == 0 else "48-95,144-191", str(numa), "", "N/A"]
            out.append("\t".join(row))
        out += ["", "Legend:", "", "  X    = Self",
                "  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)",
                "  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges within a "
                "NUMA node",
                "  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)",
                "  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)",
                "  PIX  = Connection traversing at most a single PCIe bridge",
                "  NV#  = Connection traversing a bonded set of # NVLinks", "", "NIC Legend:", ""]
        out += [f"  NIC{k}: mlx5_{k}" for k in range(nics)]
        return "\n".join(out) + "\n"
    if name == "topo-ascend" and ns.vendor == "ascend":
        cols = [f"NPU{i}" for i in range(n)]
        out = ["\t   " + "".join(f"{c:<11}" for c in cols) + "CPU Affinity"]
        for i, a in enumerate(cols):
            cells = "".join(f"{'X' if a == b else 'HCCS':<11}" for b in cols)
            out.append(f"{a:<11}{cells}{['144-167', '96-119', '0-23', '48-71'][min(3, i * 4 // n)]}")
        return "\n".join(out) + "\n"
    return None


class SimSession:
    """The transport of one simulated node: same interface as collectors.ssh.NodeSession."""

    def __init__(self, center: DemoCenter, endpoint: Endpoint, clock: Callable[[], float] = time.time) -> None:
        self.center = center
        self.name = endpoint.name
        self.clock = clock
        self._since = 0

    def run(self, commands: tuple[Command, ...], since: int = 0) -> SweepOutput:
        return self.center.answer(self.name, commands, since, self.clock())

    def start(self, commands: tuple[Command, ...], since: int = 0) -> Pending:
        self._since = since
        return Pending(commands, "demo", self.clock())

    def finish(self, pending: Pending) -> SweepOutput:
        return self.center.answer(self.name, pending.commands, self._since, self.clock())

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What `demo --headless` built."""

    path: str
    nodes: int
    cards: int
    sweeps: int
    days: float
    seconds: float


def build_history(db_path: str, days: float = 1.0, cards: int = DEFAULT_CARDS,
                  progress: Callable[[float], None] | None = None, end: float | None = None,
                  seed: int = 2026, stop: threading.Event | None = None,
                  center: DemoCenter | None = None, lock: bool = True, interval: float | None = None
                  ) -> BuildSummary:
    """Write `days` of the demo site's history into db_path through the real collector, parsers and store.

    Sweeps are every 10 minutes up to the last 6 hours, every 5 minutes up to the last hour and every
    minute within it or while a job is down for a node or card fault (`history_step`; rollups make the
    long ranges); with `interval`, every `interval` seconds throughout, as a real site records it. The
    simulated clock stands in for the wall clock; the store's maintenance (rollups, chunks, retention)
    runs after every sweep as it does live. The link story (`DemoCenter.seed_flap`) is told FLAP_BEFORE_END_S
    before the end (in a history at least that long), the opening story (`seed_story`) 10 min before it.
    """
    t0 = time.perf_counter()
    end = time.time() if end is None else end
    start = end - max(0.0, days) * 86400.0
    if center is None:
        center = DemoCenter(demo_site(cards), seed=seed, start=start, story=False)
    site = center.site
    now = [start]
    store = Store(db_path, lock=lock)
    with store.conn:
        store.conn.execute("INSERT OR REPLACE INTO meta VALUES ('demo', ?)", (DEMO_NAME,))
    collector = Collector(site, store, max_parallel=4,
                          session_factory=lambda ep: SimSession(center, ep, lambda: now[0]),
                          clock=lambda: now[0])
    build_job_history(collector, center, start, stop)
    story_at = end - 600.0
    told = False
    flap_at = end - FLAP_BEFORE_END_S
    flapped = flap_at < start + 600.0           # a history too short for the link story does without it
    sweeps = 0
    t = start
    try:
        while t <= end:
            if stop is not None and stop.is_set():
                break
            if not flapped and t >= flap_at:
                center.seed_flap(t)
                flapped = True
            if not told and t >= story_at:
                center.seed_story(t)
                told = True
            now[0] = t
            collector.sweep()
            if progress is not None and sweeps % 10 == 0:
                progress((t - start) / max(1.0, end - start))
            sweeps += 1
            t += interval if interval is not None else history_step(center, t, end)
        store.rollup(end)
        if progress is not None:
            progress(1.0)
    finally:
        collector.close()
        store.close()
    return BuildSummary(db_path, len(site.nodes), sum(len(n.cards) for n in center.nodes.values()), sweeps,
                        days, time.perf_counter() - t0)


def history_step(center: DemoCenter, t: float, end: float) -> float:
    """Seconds to the next history sweep after t: 10 min up to the last 6 hours, 5 min up to the last hour,
    1 min within it, and 1 min while a node or card fault holds a job down. A stop is then recorded as a live
    site records it: the node's incident resolves (3 clear sweeps) once the node is back, before the job has
    restarted, where 10-min sweeps would leave it open for half an hour over a job training again."""
    step = 600.0 if end - t > 6 * 3600.0 else 300.0 if end - t > 3600.0 else 60.0
    if step > 60.0 and any(sim.stopped_by_room(t) for sim in center.jobs.values()):
        return 60.0
    return step


JOB_HISTORY_READ_S = 600.0


def build_job_history(collector: Collector, center: DemoCenter, until: float,
                      stop: threading.Event | None = None) -> int:
    """The jobs' lives before the card history begins: their logs and checkpoint directories read every
    10 minutes through the collector's job path (parsers, continuity tracker, store). Returns the reads."""
    first = min((sim.start for sim in center.jobs.values()), default=until)
    reads = 0
    t = first + JOB_HISTORY_READ_S
    while t < until and not (stop is not None and stop.is_set()):
        with collector.store.batch():       # 200 reads per transaction
            for _ in range(200):
                if t >= until:
                    break
                _read_jobs_once(collector, center, t)
                reads += 1
                t += JOB_HISTORY_READ_S
    return reads


def _read_jobs_once(collector: Collector, center: DemoCenter, t: float) -> None:
    """What one sweep's job commands would return at time t, through the collector's job path."""
    offsets = collector.store.job_offsets()
    outputs: dict[str, str] = {}
    for i, job in enumerate(center.site.jobs):
        sim = center.jobs.get(job.name)
        if sim is not None:
            outputs[f"job{i}.log"] = sim.log_output(offsets.get(job.name, 0), t, jobs.LOG_CAP_BYTES)
            outputs[f"job{i}.ckpt"] = sim.listing_output(t)
    collector.update_jobs(t, outputs)


def is_demo_db(path: str) -> bool:
    """True when path is a database a demo build wrote (so it may be replaced)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables or ("nodes" in tables and conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 0):
                return True  # an empty file: a demo build that stopped before writing anything
            row = conn.execute("SELECT value FROM meta WHERE key = 'demo'").fetchone() if "meta" in tables else None
        finally:
            conn.close()
    except sqlite3.Error:
        return os.path.getsize(path) == 0
    return row is not None


def replace_demo_db(path: str) -> None:
    """Remove an earlier demo database (and its WAL) before a new build; refuse any other file."""
    if not os.path.exists(path):
        return
    if not is_demo_db(path):
        raise FileExistsError(f"{path}: exists and is not a mixops demo database; refusing to overwrite it")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


class DemoRun:
    """The demo inside the window: a short history first, then live sweeps on the wall clock."""

    def __init__(self, db_path: str, cards: int = DEFAULT_CARDS, history_s: float = 7200.0, seed: int = 2026,
                 stop: threading.Event | None = None) -> None:
        self.db_path = db_path
        self.site = demo_site(cards)
        self.history_s = history_s
        self.stop = stop or threading.Event()
        self.center = DemoCenter(self.site, seed=seed, start=time.time() - history_s, story=False)
        self.lock: WriterLock | None = None

    def prepare(self, progress: Callable[[float], None]) -> None:
        """Take the database's writer lock, replace an earlier demo database and write the history (stops
        early when asked). The lock is held for the run: a second demo window must not delete this one's
        database under it (it is told who writes it instead)."""
        if self.lock is None:
            self.lock = WriterLock(self.db_path)
        replace_demo_db(self.db_path)
        build_history(self.db_path, self.history_s / 86400.0, progress=progress, stop=self.stop,
                      center=self.center, lock=False)

    def make(self) -> tuple[Site, Callable[[], object], Callable[[], None]]:
        """The live collector over the same simulated nodes (call in the thread that will sweep)."""
        if self.lock is None:
            self.lock = WriterLock(self.db_path)
        store = Store(self.db_path, lock=False)
        collector = Collector(self.site, store, max_parallel=1,
                              session_factory=lambda ep: SimSession(self.center, ep), hold_rows=HOLD_ROWS)

        def close() -> None:
            collector.close()
            store.close()
            if self.lock is not None:
                self.lock.release()
                self.lock = None

        return self.site, collector.sweep, close
