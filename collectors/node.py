"""One node's collector: detection, the vendor's command plan, parsing and incremental faults."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from typing import Protocol, TypeVar

from collectors import links, registry
from collectors.model import Action, Command, Fault, NodeReport, ParseResult, Severity, first_line, strip_ansi
from collectors.ssh import Endpoint, HostKeyChanged, NodeSession, Pending, SSHError, SweepOutput, clean_text

_SEEN_LIMIT = 4096
# At most this many nodes have a sweep sent and not yet read (see sweep_window).
SEND_WINDOW = 128

T = TypeVar("T")
R = TypeVar("R")


def sweep_window(pool: Executor, items: Sequence[T], begin: Callable[[T], object], end: Callable[[T], R],
                 window: int = SEND_WINDOW) -> Iterator[R]:
    """Two-phase sweep over `items` with at most `window` answers outstanding: the first `window` are sent
    at once, and as each answer is read (in order) the item `window` places later is sent. Yields end()'s
    results in the order of `items`.

    Sending every node first and reading after keeps each read to one buffered answer (client CPU), but
    with every node in flight at once a fleet whose nodes share CPUs (the loopback fleet: 1,280 sshds on
    2 cores) answers only as fast as it can run them all, and the later answers pass their deadline of
    command_timeout_s + 1 after sending; a node then fails and reconnects, costing more. The window bounds
    that, while a hung node holds only one of its places. begin and end must not raise."""
    n = len(items)
    window = max(1, window)
    sent = [threading.Event() for _ in range(n)]

    def send(i: int) -> None:
        try:
            begin(items[i])
        finally:
            sent[i].set()

    def read(i: int) -> R:
        # read(i - window), which sends i, was taken from the pool's queue before this task: no deadlock
        sent[i].wait()
        try:
            return end(items[i])
        finally:
            if i + window < n:
                send(i + window)

    list(pool.map(send, range(min(window, n))))
    return pool.map(read, range(n))


class Session(Protocol):
    """What a node collector needs of its transport: a real SSH session, or the demo's simulated node."""

    def run(self, commands: tuple[Command, ...], since: int = 0) -> SweepOutput: ...

    def start(self, commands: tuple[Command, ...], since: int = 0) -> Pending: ...

    def finish(self, pending: Pending) -> SweepOutput: ...

    def close(self) -> None: ...


class SweptNode:
    """What the service calls on every node, whatever it is read from: `begin` (send), `end` (the
    report; never raises), `sweep` (both), `close`; `cursor`, `vendor`, `tools` and `extra_commands`."""

    vendor: str | None
    clock: Callable[[], float]
    _started: float
    _t0: float

    def sweep(self) -> NodeReport:
        """Collect once; never raises for node-side problems: they become a failed NodeReport."""
        self.begin()
        return self.end()

    def begin(self) -> None:
        self._mark()

    def end(self) -> NodeReport:
        raise NotImplementedError

    def close(self) -> None:
        """Release the node's connection, if any."""

    def _mark(self) -> None:
        """The sweep starts now: its wall-clock time and the start of its elapsed time."""
        self._started = self.clock()
        self._t0 = time.perf_counter()

    def _elapsed(self) -> float:
        return time.perf_counter() - self._t0


class NodeCollector(SweptNode):
    """Sweeps one node over its kept-open session and turns the answer into a NodeReport."""

    def __init__(self, endpoint: Endpoint, vendor: str | None = None, cursor: float | None = None,
                 session: Session | None = None, clock: Callable[[], float] = time.time) -> None:
        self.endpoint = endpoint
        self.vendor = vendor
        self.session: Session = session or NodeSession(endpoint)
        self.clock = clock
        # Kernel-log cursor: events at or before it were reported already. A fresh collector looks
        # back one hour so a restart neither floods old events nor misses recent ones.
        self.cursor = cursor if cursor is not None else clock() - 3600
        self._seen: deque[str] = deque(maxlen=_SEEN_LIMIT)
        self._previous: ParseResult | None = None
        self.tools: tuple[str, ...] = ()
        self._started = 0.0
        self._t0 = 0.0
        self._pending: Pending | None = None
        self._early: NodeReport | None = None
        self._plan: tuple[Command, ...] = ()
        self._vendor_parse: Callable[[dict[str, str]], ParseResult] | None = None
        # commands the service adds for this node (training-job logs and checkpoint listings)
        self.extra_commands: tuple[Command, ...] = ()

    def close(self) -> None:
        """Close the node's session."""
        self.session.close()

    def begin(self) -> None:
        """Send this sweep's commands (connecting and detecting first when needed); never raises."""
        self._mark()
        self._pending = None
        self._early = None
        try:
            self._early = self._begin()
        except (SSHError, HostKeyChanged) as exc:
            self._early = self._error(exc)

    def end(self) -> NodeReport:
        """Read the answer of begin() and turn it into the node's report; never raises."""
        if self._early is not None or self._pending is None:
            return self._early or self._fail(self._started, self._t0, "sweep was not started")
        try:
            out = self.session.finish(self._pending)
        except (SSHError, HostKeyChanged) as exc:
            return self._error(exc)
        return self._build(out)

    def _error(self, exc: SSHError) -> NodeReport:
        elapsed = self._elapsed()
        if isinstance(exc, HostKeyChanged) and exc.presented:
            # A fault is an event: the node showed the wrong key in this attempt. While the session waits
            # for its next attempt the refusal is repeated (same error) without a new fault; the incident
            # stays open either way until a verified connection (console.incidents).
            fault = Fault("ssh-hostkey-changed", Severity.CRITICAL, Action.ISOLATE, str(exc), None, self._started)
            return NodeReport(self.endpoint.name, False, self._started, elapsed, self.vendor, faults=(fault,),
                              error=str(exc))
        return NodeReport(self.endpoint.name, False, self._started, elapsed, self.vendor, error=str(exc))

    def _fail(self, started: float, t0: float, error: str, raw: dict[str, str] | None = None) -> NodeReport:
        return NodeReport(self.endpoint.name, False, started, time.perf_counter() - t0, self.vendor,
                          error=error, raw=raw or {}, tools=self.tools)

    def _begin(self) -> NodeReport | None:
        started, t0 = self._started, self._t0
        if self.vendor is None:
            out = self.session.run((registry.detect_command(),))
            text = clean_text(out.sections["detect"].stdout) if "detect" in out.sections else ""
            self.tools = tuple(line.strip() for line in text.splitlines() if line.strip())
            self.vendor = registry.detect(text)
            if self.vendor is None:
                looked = ", ".join(dict.fromkeys(t for v in registry.DETECT_ORDER for t in registry.VENDORS[v].tools))
                return self._fail(started, t0, f"no known vendor tool found on PATH (looked for {looked})")
        vendor = registry.get(self.vendor)
        if vendor is None:
            return self._fail(started, t0, f"vendor '{self.vendor}' has no collector in this version of mixops")
        self._plan = vendor.plan(self._previous) + self.extra_commands
        self._vendor_parse = vendor.parse
        self._pending = self.session.start(self._plan, since=int(self.cursor))
        return None

    def _build(self, out: SweepOutput) -> NodeReport:
        started, t0, plan = self._started, self._t0, self._plan
        primary = plan[0]
        main = out.sections.get(primary.section)
        if main is None:
            return self._fail(started, t0, f"no output section for `{primary.shell}`")
        if main.rc != 0:
            tool = primary.shell.split()[0]
            reason = {127: "not found", 124: f"timed out after {self.endpoint.command_timeout_s:g} s",
                      126: "not executable"}.get(main.rc, f"exited {main.rc}")
            stderr = clean_text(main.stderr_tail)
            tail = first_line(stderr, 200) if stderr.strip() else "no stderr"
            return self._fail(started, t0, f"{tool} {reason}: {tail}",
                              {primary.section: clean_text(main.stdout) + stderr})
        # Vendor sections are cleaned of every control sequence (an OSC title in a kernel-log line reached
        # faults.message raw: issue 16). Job sections keep the colour-only stripping for now: jobs.py counts
        # the log's byte offset on this text, so each byte removed before it shifts the offset back (which
        # the colour stripping already does); cleaning belongs after its offset count.
        extras = {c.section for c in self.extra_commands}
        sections = {name: strip_ansi(sec.stdout) if name in extras else clean_text(sec.stdout)
                    for name, sec in out.sections.items()}
        if self._previous is not None:
            sections["_bus_map"] = "\n".join(f"{c.bus_id}={c.index}" for c in self._previous.cards if c.bus_id)
        assert self._vendor_parse is not None
        result = self._vendor_parse(sections)
        known = {c.index: c.bus_id for c in self._previous.cards if c.bus_id} if self._previous is not None else {}
        if known and any(c.bus_id is None and c.index in known for c in result.cards):
            # keep the bus ids a lost card had, for the next sweep's mapping
            result = replace(result, cards=tuple(c if c.bus_id or c.index not in known else replace(c, bus_id=known[c.index])
                                                 for c in result.cards))
        self._previous = result
        faults = self._new_faults(result.faults)
        link_warned = links.warned_sections(result.warnings, sections)    # a link text kept as the operator's evidence
        keep_raw = bool(set(result.warnings) - set(link_warned.values())) or not result.cards
        raw = {primary.section: sections.get(primary.section, "")} if keep_raw else {}
        raw.update({section: sections[section] for section in link_warned})
        if not result.cards and not result.warnings:
            return self._fail(started, t0, f"{primary.shell.split()[0]} listed no cards", raw)
        extra = {c.section: sections.get(c.section, "") for c in self.extra_commands}
        return NodeReport(self.endpoint.name, True, started, time.perf_counter() - t0, self.vendor,
                          result.cards, faults, result.warnings, None, raw, self.tools, extra, result.links,
                          result.links_same)

    def _new_faults(self, faults: tuple[Fault, ...]) -> tuple[Fault, ...]:
        """Kernel-log events after the cursor only (the cursor is the newest event already reported, so an
        event at exactly the cursor is old news after a restart); faults without a timestamp are deduplicated
        by text."""
        fresh: list[Fault] = []
        newest = self.cursor
        for fault in faults:
            key = hashlib.blake2b(f"{fault.ts}|{fault.code}|{fault.message}".encode(), digest_size=12).hexdigest()
            if fault.ts is not None and fault.ts <= self.cursor:
                continue
            if key in self._seen:
                continue
            self._seen.append(key)
            fresh.append(fault)
            if fault.ts is not None:
                newest = max(newest, fault.ts)
        self.cursor = newest
        return tuple(fresh)
