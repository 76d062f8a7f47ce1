"""Interconnect links: NVLink (`nvidia-smi nvlink`), Ascend RoCE ports (`hccn_tool`), RDMA ports (sysfs), and
the topology matrices (`nvidia-smi topo -m`, `npu-smi info -t topo`, `mx-smi topo -m`, `rocm-smi --showtopo`).

Pure parsers from each tool's text to `Link` readings, and the link commands of a node's plan. Every link
command prints its exit status on a last line (`mixops-rc=N`) and says `mixops-missing: WHAT` instead of
failing where the tool or the hardware is absent, so a parser can tell "no links here" (the source is left
out of the node's later plans, silently for absent hardware, with one warning for an absent or failing
tool) from a link that is down. A text the same as the node's last sweep's travels as one line
(`mixops-same SUM`: Source.digest). Formats and where they come from: tests/fixtures/links/*.source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from collectors.model import Command, Link, LinkState, ParseResult, first_line, integer, is_na, number

NVLINK_STATUS = "nvidia-smi nvlink --status"
NVLINK_ERRORS = "nvidia-smi nvlink -e"
HCCN_TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"
HCCN_OPTIONS = ("-link", "-net_health", "-link_stat", "-stat")
RDMA_SYSFS = "/sys/class/infiniband"
# the sysfs files read per port, as ibstat shows them (state, physical state, rate) plus the error counters
# of the kernel's ABI (Documentation/ABI/stable/sysfs-class-infiniband)
RDMA_FILES = ("state", "phys_state", "rate", "link_layer", "counters/link_downed", "counters/link_error_recovery",
              "counters/symbol_error", "counters/port_rcv_errors", "counters/port_xmit_discards",
              "counters/local_link_integrity_errors", "counters/excessive_buffer_overrun_errors")

# Counters whose increase means the link went down and up again between two readings (Ascend's up count,
# the IB port's link_downed), and counters of errors (CRC, replay, symbol, receive errors, discards, FCS…).
FLAP_COUNTERS = frozenset({"link_up_count", "link_downed"})
_ERROR_COUNTER = re.compile(r"err|crc|replay|recovery|symbol|discard|integrity|overrun|_bad_|fcs")


def is_error_counter(name: str) -> bool:
    """A counter of errors on the link (not a flap counter, not traffic)."""
    return name not in FLAP_COUNTERS and _ERROR_COUNTER.search(name) is not None


def counted(name: str) -> bool:
    """A counter whose increases the store keeps over time (errors and flaps; traffic counters are not)."""
    return name in FLAP_COUNTERS or is_error_counter(name)


RC = re.compile(r"^mixops-rc=(\d+)\s*$", re.M)
MISSING = re.compile(r"^mixops-missing: (.*)$", re.M)


def _checked(body: str) -> str:
    return f"{body} 2>&1; echo \"mixops-rc=$?\""


@dataclass(frozen=True, slots=True)
class Source:
    """One link command of a node's plan: its section, shell and the vendors it runs for."""

    name: str
    command: str            # the command as an operator types it (warnings name it)
    shell: str
    vendors: tuple[str, ...] | None   # None: every node
    digest: bool = False    # the node sends `mixops-same SUM` when the output's checksum is the last sweep's

    @property
    def section(self) -> str:
        return f"links.{self.name}"


_NV_GUARD = "command -v nvidia-smi >/dev/null 2>&1 || { echo 'mixops-missing: nvidia-smi'; exit 0; }; "
# What of hccn_tool's answers travels: not the clock line of -link_stat (`current time`) and not the traffic
# counters of -stat (packets, octets, pause frames; their error counters stay), so that a port's text is the
# same sweep after sweep while nothing happens to it, and goes as one `mixops-same` line (Source.digest).
_HCCN_KEEP = "awk '!/current time/ && !(/_(pkt|pkg|oct)_num[ :]|pause_num[ :]/ && !/err|bad|fcs|drop|discard/)'"
_HCCN_BODY = (
    f"H=$(command -v hccn_tool 2>/dev/null) || H={HCCN_TOOL}; "
    "[ -x \"$H\" ] || { echo 'mixops-missing: hccn_tool'; exit 0; }; "
    "for i in DEVICES; do for o in " + " ".join(HCCN_OPTIONS) + "; do echo \"@@hccn $i $o\"; "
    "\"$H\" -i \"$i\" $o -g 2>&1; echo \"mixops-rc=$?\"; done; done | " + _HCCN_KEEP
)
_DAVINCI = ("$(for d in /dev/davinci[0-9]*; do [ -e \"$d\" ] && echo \"${d#/dev/davinci}\"; done)")
_RDMA_BODY = (
    f"cd {RDMA_SYSFS} 2>/dev/null && set -- */ports/* && [ -e \"$1\" ] || "
    f"{{ echo 'mixops-missing: no RDMA ports in {RDMA_SYSFS}'; exit 0; }}; "
    "for p in \"$@\"; do for f in " + " ".join(RDMA_FILES) + "; do "
    "[ -r \"$p/$f\" ] && read -r v <\"$p/$f\" 2>/dev/null && echo \"$p/$f:$v\"; done; done; echo 'mixops-rc=0'"
)

# Topology changes only with the hardware, which takes a reboot: it is read on a collector's first sweep of the
# node and again while the node has been up less than TOPO_AFTER_BOOT_S; other sweeps print `mixops-skip`
# (the shell's own `read` of /proc/uptime: no process).
TOPO_AFTER_BOOT_S = 900
NV_TOPO = "nvidia-smi topo -m"
NPU_TOPO = "npu-smi info -t topo"
_TOPO_GATE = ("read -r up _ </proc/uptime 2>/dev/null && [ \"${up%%.*}\" -ge " + str(TOPO_AFTER_BOOT_S)
              + " ] && { echo 'mixops-skip'; exit 0; }; ")
SKIP = "mixops-skip"

# `nvidia-smi nvlink -e` prints three counters for each of 18 lanes per GPU (13 KB for 8 H100s, 40 times the
# GPU query): the node leaves out the lines whose count is 0 and says so, so a sweep carries only what is not
# zero, and the parser puts the zeros back for the lanes the status shows up (NVLINK_ERROR_NAMES: the counters
# every driver seen prints). A lane that is down gets no counters (None), not zeros.
ZEROS_OMITTED = "mixops-zeros-omitted"
NVLINK_ERROR_NAMES = ("replay_errors", "recovery_errors", "crc_errors")
_NV_ERRORS_NONZERO = (f"echo '{ZEROS_OMITTED}'; {{ {NVLINK_ERRORS} 2>&1; echo \"mixops-rc=$?\"; }} | "
                      "awk 'NF && !/^[[:space:]]*Link [0-9]+: [A-Za-z ]+: 0[[:space:]]*$/'")

SOURCES: tuple[Source, ...] = (
    Source("topo-nvidia", NV_TOPO, _TOPO_GATE + _NV_GUARD + _checked(NV_TOPO), ("nvidia",)),
    Source("topo-ascend", NPU_TOPO, _TOPO_GATE + _checked(NPU_TOPO), ("ascend",)),
    Source("nvlink", NVLINK_STATUS, _NV_GUARD + _checked(NVLINK_STATUS), ("nvidia",), True),
    Source("nvlink-errors", NVLINK_ERRORS, _NV_GUARD + _NV_ERRORS_NONZERO, ("nvidia",), True),
    Source("hccn", "hccn_tool -i N -link/-net_health/-link_stat/-stat -g", _HCCN_BODY, ("ascend",), True),
    Source("rdma", f"{RDMA_SYSFS}/*/ports/*", _RDMA_BODY, None, True),
)
SAME = "mixops-same"
SUM = re.compile(r"^mixops-sum ?(\d*)\s*$", re.M)      # no digits: the node has no cksum


def _digested(shell: str, previous: int | None) -> str:
    """The source's shell, run in a subshell whose output the node checksums (cksum): the text goes out only
    when it differs from the last sweep's (an 8 × H100 node's NVLink status is the same 4.7 KB every sweep);
    else one line. `previous` is an integer from the last parse, never node text."""
    prev = "none" if previous is None else str(int(previous))
    return (f"o=$({shell}); s=$(printf '%s' \"$o\" | cksum); s=${{s%% *}}; "
            f"if [ \"$s\" = {prev} ]; then echo \"{SAME} $s\"; else printf '%s\\n' \"$o\"; echo \"mixops-sum $s\"; fi")


_BY_NAME = {s.name: s for s in SOURCES}


def sources_for(vendor: str) -> tuple[Source, ...]:
    """The link sources a node of this vendor is asked for."""
    return tuple(s for s in SOURCES if s.vendors is None or vendor in s.vendors)


def _hccn_shell(devices: Iterable[int]) -> str:
    ids = " ".join(str(int(d)) for d in sorted(set(devices))[:16])
    return _HCCN_BODY.replace("DEVICES", ids or _DAVINCI)


def plan(vendor: str, previous: ParseResult | None) -> tuple[Command, ...]:
    """The link commands of this sweep: every source of the vendor the node was not found without. Ascend's
    device ids are the NPU ids of the last table (integers from a parse), else the /dev/davinci devices."""
    missing = set(previous.links_missing) if previous is not None else set()
    digests = dict(previous.links_digest) if previous is not None else {}
    out: list[Command] = []
    for s in sources_for(vendor):
        if s.name in missing:
            continue
        shell = s.shell
        if s.name.startswith("topo-") and previous is None:
            shell = shell.replace(_TOPO_GATE, "")      # the collector's first sweep of the node: always read
        if s.name == "hccn":
            shell = _hccn_shell(c.index for c in previous.cards) if previous is not None else _hccn_shell(())
        if s.digest:
            shell = _digested(shell, digests.get(s.name))
        out.append(Command(s.section, shell))
    return tuple(out)


# ---- shared helpers --------------------------------------------------------------------------------

def _trailer(text: str) -> tuple[str, int | None]:
    """The text without its `mixops-rc=N` line, and N (None when the line is absent: a capture)."""
    rc: int | None = None
    found = list(RC.finditer(text))
    m = found[-1] if found else None
    if m is not None:
        rc = int(m.group(1))
        text = text[:m.start()] + text[m.end():]
    return text, rc


_NAMES: dict[str, str] = {}


def _counter_name(text: str) -> str:
    name = _NAMES.get(text)
    if name is None:
        name = re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")
        if len(_NAMES) < 1024:          # bounded: the names come from node text
            _NAMES[text] = name
    return name


def _count(text: str) -> int | None:
    try:
        return int(text)            # the common case: a plain count (int() allows the surrounding blanks)
    except ValueError:
        pass
    value = text.strip()
    if is_na(value):
        return None
    return integer(value) if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", value.replace(",", "")) else None


def _merge(links: Iterable[Link]) -> tuple[Link, ...]:
    """One Link per (card, kind, link): state and speed from whichever reading gives them, counters joined."""
    out: dict[tuple[int | None, str, str], Link] = {}
    for ln in links:
        key = (ln.card_index, ln.kind, ln.link)
        old = out.get(key)
        if old is None:
            out[key] = ln
            continue
        out[key] = Link(  # the constructor, not dataclasses.replace: ~4x less time per merge
            old.kind, old.link, old.card_index, ln.peer or old.peer,
            ln.state if ln.state is not LinkState.UNKNOWN else old.state,
            ln.speed_gbps if ln.speed_gbps is not None else old.speed_gbps, {**old.counters, **ln.counters},
            "; ".join(d for d in (old.detail, ln.detail) if d) or None)
    return tuple(out.values())


# ---- NVIDIA: nvidia-smi nvlink --status / -e --------------------------------------------------------

_GPU = re.compile(r"^GPU (\d+):")
_NV_STATUS = re.compile(r"^Link (\d+):\s*(.*?)\s*$")
_NV_SPEED = re.compile(r"^([\d.]+)\s*(GB/s|Gb/s)$", re.I)
_NV_ERR = re.compile(r"^Link (\d+):\s*(.+)$")
_NV_PAIR = re.compile(r"([A-Za-z][\w ]*?)\s*:\s*([^,]+)")
# what nvidia-smi prints instead of links where a GPU has none to show: none trained, MIG mode (H100/H200
# captures of utkuozdemir/nvidia_gpu_exporter, 590.48.01), no NVLink at all (L40S, 595.80)
_NV_NO_LINKS = ("unable to retrieve nvlink information", "nvlink queries are not supported",
                "does not have or support nvlink")


def _gpu_lines(text: str) -> Iterator[tuple[int | None, str]]:
    """The stripped lines of a per-GPU nvidia-smi listing with the GPU they are under (None before the
    first `GPU N:` header); blank lines, the headers and the "no links here" lines are left out."""
    gpu: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _GPU.match(line)
        if m:
            gpu = int(m.group(1))
            continue
        low = line.lower()
        if any(t in low for t in _NV_NO_LINKS):
            continue
        yield gpu, line


def parse_nvlink_status(text: str, command: str = NVLINK_STATUS) -> ParseResult:
    """`nvidia-smi nvlink --status`: `Link N: 26.562 GB/s` is up at that speed (× 8 in Gb/s); `<inactive>` is
    down. A GPU without NVLink prints nothing (A10): no links, no warning."""
    links: list[Link] = []
    warnings: list[str] = []
    for gpu, line in _gpu_lines(text):
        if line.startswith("Link ") and gpu is not None and line.endswith(" GB/s"):
            name, sep, value = line.partition(": ")
            try:                            # the common line, `Link N: 26.562 GB/s`, without a regex
                gbps = float(value[:-5]) * 8.0
            except ValueError:
                pass
            else:
                if sep and name[5:].isdigit():
                    links.append(Link("nvlink", name[5:], gpu, None, LinkState.UP, round(gbps, 3)))
                    continue
        m = _NV_STATUS.match(line)
        if m and gpu is not None:
            value = m.group(2)
            speed = _NV_SPEED.match(value)
            if speed:
                gbps = float(speed.group(1)) * (8.0 if speed.group(2) == "GB/s" else 1.0)
                links.append(Link("nvlink", m.group(1), gpu, state=LinkState.UP, speed_gbps=round(gbps, 3)))
            elif "inactive" in value.lower():
                links.append(Link("nvlink", m.group(1), gpu, state=LinkState.DOWN, detail="inactive"))
            else:
                links.append(Link("nvlink", m.group(1), gpu, detail=value or None))
                if not warnings:
                    warnings.append(f"nvidia: {command}: link state not understood: {first_line(line)}")
            continue
        if not warnings:
            warnings.append(f"nvidia: {command}: line not understood: {first_line(line)}")
    return ParseResult("nvidia", command, links=tuple(links), warnings=tuple(warnings))


def parse_nvlink_errors(text: str, command: str = NVLINK_ERRORS) -> ParseResult:
    """`nvidia-smi nvlink -e`: `Link N: Replay Errors: 0` (one counter a line; also several on one line
    separated by commas) → counters replay_errors, recovery_errors, crc_errors, … per link."""
    found: dict[tuple[int, str], dict[str, int | None]] = {}
    warnings: list[str] = []
    for gpu, line in _gpu_lines(text):
        if line.startswith("Link ") and gpu is not None:
            parts = line.split(":")
            if len(parts) == 3 and parts[0][5:].strip().isdigit():   # `Link N: Name Errors: N`, no regex
                counters = found.setdefault((gpu, parts[0][5:].strip()), {})
                counters[_counter_name(parts[1])] = _count(parts[2])
                continue
            m = _NV_ERR.match(line)
            pairs = _NV_PAIR.findall(m.group(2)) if m else []
            if m and pairs:
                found.setdefault((gpu, m.group(1)), {}).update((_counter_name(k), _count(v)) for k, v in pairs)
                continue
        if not warnings:
            warnings.append(f"nvidia: {command}: line not understood: {first_line(line)}")
    links = tuple(Link("nvlink", link, card, counters=counters) for (card, link), counters in found.items())
    return ParseResult("nvidia", command, links=links, warnings=tuple(warnings))


# ---- Ascend: hccn_tool -i N -link / -net_health / -link_stat / -stat -g --------------------------------

_DEV_PREFIX = re.compile(r"^\[(?:devid|device)\s*(\d+)\]\s*")
_HCCN_STATES = {"up": LinkState.UP, "down": LinkState.DOWN}


def _hccn_link(dev: int, state: LinkState = LinkState.UNKNOWN, counters: dict[str, int | None] | None = None,
               detail: str | None = None) -> Link:
    return Link("roce", "0", dev, state=state, counters=counters or {}, detail=detail)


def parse_hccn(text: str, option: str, dev: int, command: str | None = None) -> ParseResult:
    """One `hccn_tool -i DEV OPTION -g` output: `-link` (`link status: UP`), `-net_health` (`net health
    status: Success`), `-link_stat` (`[devid 0]link up count : 2` and the change records), `-stat`
    (`packet statistics:` then `name:value` counters). One RoCE port per NPU: link "0" of card DEV."""
    command = command or f"hccn_tool -i {dev} {option} -g"
    warnings: list[str] = []
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    link: Link | None = None
    if option == "-link":
        for line in lines:
            m = re.match(r"link status\s*:\s*(\S+)", line, re.I)
            if m:
                link = _hccn_link(dev, state=_HCCN_STATES.get(m.group(1).lower(), LinkState.UNKNOWN),
                                  detail=None if m.group(1).lower() in _HCCN_STATES else m.group(1))
                break
    elif option == "-net_health":
        for line in lines:
            m = re.match(r"net health status\s*:\s*(.+)", line, re.I)
            if m:
                link = _hccn_link(dev, detail=f"net health: {m.group(1).strip()}")
                break
    elif option == "-link_stat":
        counters: dict[str, int | None] = {}
        downs = 0
        for line in lines:
            line = _DEV_PREFIX.sub("", line)
            m = re.match(r"link up count\s*:\s*(.+)", line, re.I)
            if m:
                counters["link_up_count"] = _count(m.group(1))
            elif re.search(r"\bLINK DOWN\s*$", line):
                downs += 1
        if counters or downs:
            link = _hccn_link(dev, counters=counters, detail=f"{downs} link down record(s)" if downs else None)
    elif option == "-stat":
        counters = {}
        for line in lines:
            if line.lower().startswith("packet statistics"):
                continue
            name, sep, value = line.partition(":")
            if sep and re.fullmatch(r"[\w.]+", name.strip()):
                counters[name.strip()] = _count(value)
            elif not warnings:
                warnings.append(f"ascend: {command}: line not understood: {first_line(line)}")
        if counters:
            link = _hccn_link(dev, counters=counters)
    if link is None and lines and not warnings:
        warnings.append(f"ascend: {command}: output not understood: {first_line(lines[0])}")
    return ParseResult("ascend", command, links=(link,) if link else (), warnings=tuple(warnings))


def hccn_option(command: str) -> str | None:
    """Which hccn_tool query a command line is (`-link`, `-net_health`, `-link_stat`, `-stat`)."""
    words = command.split()
    return next((o for o in HCCN_OPTIONS if o in words), None)


def hccn_device(command: str, text: str) -> int:
    """The device of an hccn_tool command (`-i N`), else of its `[devid N]` prefix, else 0."""
    m = re.search(r"-i\s+(\d+)", command) or re.search(r"\[(?:devid|device)\s*(\d+)\]", text)
    return int(m.group(1)) if m else 0


_HCCN_BLOCK = re.compile(r"^@@hccn (\d+) (-\w+)\s*$", re.M)


def parse_hccn_sweep(text: str) -> ParseResult:
    """The `links.hccn` section: one `@@hccn DEV OPTION` block per device and query, each with its rc."""
    links: list[Link] = []
    warnings: list[str] = []
    marks = list(_HCCN_BLOCK.finditer(text))
    for n, m in enumerate(marks):
        body = text[m.end():marks[n + 1].start() if n + 1 < len(marks) else len(text)]
        body, rc = _trailer(body)
        dev, option = int(m.group(1)), m.group(2)
        command = f"hccn_tool -i {dev} {option} -g"
        if rc:
            if not warnings:
                warnings.append(f"ascend: {command}: exited {rc}: {first_line(body)}")
            continue
        got = parse_hccn(body, option, dev, command)
        links.extend(got.links)
        warnings.extend(w for w in got.warnings if not warnings)
    return ParseResult("ascend", "hccn_tool", links=_merge(links), warnings=tuple(warnings))


# ---- every node: RDMA ports from /sys/class/infiniband ------------------------------------------------

_SYSFS = re.compile(r"^(?:.*/)?(?P<dev>[^/\s:]+)/ports/(?P<port>\d+)/(?P<file>[\w/]+):(?P<value>.*)$")
_IB_STATE = {"active": LinkState.UP, "down": LinkState.DOWN, "init": LinkState.DOWN, "armed": LinkState.DOWN,
             "active_defer": LinkState.UP}
_LAYER = {"infiniband": "ib", "ethernet": "roce"}


def parse_rdma_sysfs(text: str, command: str = f"{RDMA_SYSFS}/*/ports/*", vendor: str = "linux") -> ParseResult:
    """`FILE:VALUE` lines (as `grep -H . /sys/class/infiniband/*/ports/*/…` prints them): `state` (`4: ACTIVE`),
    `phys_state` (`5: LinkUp`), `rate` (`200 Gb/sec (4X HDR)`), `link_layer` (InfiniBand → ib, Ethernet →
    roce) and `counters/*` → one link `DEV/PORT` per port (a NIC, not a card: card_index None)."""
    ports: dict[tuple[str, str], dict[str, str]] = {}
    warnings: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _SYSFS.match(line)
        if m is None:
            if not warnings:
                warnings.append(f"{vendor}: {command}: line not understood: {first_line(line)}")
            continue
        ports.setdefault((m.group("dev"), m.group("port")), {})[m.group("file")] = m.group("value").strip()
    links: list[Link] = []
    for (dev, port), files in ports.items():
        state_text = files.get("state", "")
        word = state_text.split(":", 1)[-1].strip().lower()
        state = _IB_STATE.get(word, LinkState.UNKNOWN) if state_text else LinkState.UNKNOWN
        phys = files.get("phys_state", "").split(":", 1)[-1].strip() or None
        counters = {f.split("/", 1)[1]: _count(v) for f, v in files.items() if f.startswith("counters/")}
        layer = files.get("link_layer", "InfiniBand").strip().lower()   # ibstatus: no file → IB
        rate = files.get("rate")
        links.append(Link(_LAYER.get(layer, "rdma"), f"{dev}/{port}", None, state=state,
                          speed_gbps=number(rate) if rate and state is not LinkState.DOWN else None,
                          counters=counters,   # a port down has no speed (its `rate` file then is no link speed)
                          detail=f"{word.upper()}, {phys}" if phys and word else None))
    return ParseResult(vendor, command, links=tuple(links), warnings=tuple(warnings))


# ---- topology matrices: nvidia-smi topo -m, npu-smi info -t topo, mx-smi topo -m, rocm-smi --showtopo -----

# The matrix codes that are a card-to-card link, and their kind (DESIGN §6); every other code (X, SYS, NODE,
# PHB, PXB, PIX, PCIE, NA, a weight or hop count) is a path over PCIe or the host, not a link.
TOPO_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"NV\d+"), "nvlink"), (re.compile(r"HCCS|SIO"), "hccs"), (re.compile(r"MX"), "metaxlink"),
    (re.compile(r"XGMI"), "xgmi"), (re.compile(r"MLU-?LINK", re.I), "mlulink"), (re.compile(r"MT(?:LINK)?"), "mtlink"),
)
_TOPO_PATHS = frozenset({"X", "SYS", "NODE", "PHB", "PXB", "PIX", "PCIE", "NA", "N/A", "ETH", "SOC"})
_TOPO_DEVICE = re.compile(r"^([A-Z]+)(\d+)$")


def _topo_kind(code: str) -> str | None:
    return next((kind for pattern, kind in TOPO_KINDS if pattern.fullmatch(code)), None)


def parse_topology(text: str, vendor: str, command: str) -> ParseResult:
    """A topology matrix: a header of device names (`GPU0 GPU1 … NIC0 CPU Affinity`), then one row per device
    with a code per column. One link per connected pair of cards (kind from the code: NV# → nvlink, HCCS →
    hccs, MX → metaxlink, XGMI → xgmi), from the lower card index, `link` and `peer` the other card's name;
    the code as `detail` (NV18: 18 bonded NVLinks). Several matrices in one output (rocm-smi) each count."""
    links: dict[tuple[int, int], Link] = {}
    warnings: list[str] = []
    cols: list[str] = []
    for raw in text.splitlines():
        tokens = raw.split()
        devices = []
        for tok in tokens:
            if _TOPO_DEVICE.match(tok) is None or _topo_kind(tok) is not None:    # NV18 is a code, not a device
                break
            devices.append(tok)
        if len(devices) >= 2:
            cols = devices                      # a header row (a data row's second cell is a code)
            continue
        if not cols or not tokens or tokens[0] not in cols:
            if tokens and not raw[:1].isspace() and _TOPO_DEVICE.match(tokens[0]) is None:
                cols = []                       # the matrix ended (a legend, a banner)
            continue
        me = _TOPO_DEVICE.match(tokens[0])
        assert me is not None
        for name, code in zip(cols, tokens[1:1 + len(cols)], strict=False):
            other = _TOPO_DEVICE.match(name)
            if other is None or other.group(1) != me.group(1) or name == tokens[0]:
                continue
            kind = _topo_kind(code)
            if kind is None:
                if code.upper() not in _TOPO_PATHS and not re.fullmatch(r"[\d.]+", code) and not warnings:
                    warnings.append(f"{vendor}: {command}: connection code '{code}' not known to mixops: "
                                    f"{first_line(raw)}")
                continue
            a, b = sorted((int(me.group(2)), int(other.group(2))))
            prefix = me.group(1)
            links.setdefault((a, b), Link(kind, f"{prefix}{b}", a, peer=f"{prefix}{b}", state=LinkState.UP,
                                          detail=code))
    return ParseResult(vendor, command, links=tuple(links.values()), warnings=tuple(warnings))


# ---- one sweep's link sections --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SweepLinks:
    """What the link sections of one sweep gave."""

    links: tuple[Link, ...]
    warnings: tuple[str, ...]
    missing: tuple[str, ...]
    same: tuple[str, ...] = ()
    digests: tuple[tuple[str, int], ...] = ()


def parse_sections(vendor: str, sections: dict[str, str]) -> SweepLinks:
    """Links of one sweep from the `links.*` sections. A source not in the sections was not asked (the node
    has not got it): it stays missing. `mixops-missing` is silent for absent hardware and one warning for an
    absent tool; a tool that fails gives one warning; either way the source is not asked again."""
    links: list[Link] = []
    warnings: list[str] = []
    missing: list[str] = []
    same: list[str] = []
    digests: dict[str, int] = {}
    for s in sources_for(vendor):
        text = sections.get(s.section)
        if text is None:
            missing.append(s.name)
            continue
        if s.digest:
            if text.startswith(SAME + " "):
                same.append(s.name)
                sum_text = text[len(SAME) + 1:].strip()
                if sum_text.isdigit():
                    digests[s.name] = int(sum_text)
                continue
            sums = list(SUM.finditer(text))
            if sums:
                if sums[-1].group(1):
                    digests[s.name] = int(sums[-1].group(1))
                text = text[:sums[-1].start()] + text[sums[-1].end():]
        gone = MISSING.search(text)
        if gone:
            missing.append(s.name)
            what = gone.group(1).strip()
            if what in ("nvidia-smi", "hccn_tool"):
                warnings.append(f"{vendor}: {s.command}: {what} not found; links not collected on this node")
            continue
        if text.strip() == SKIP:
            continue        # topology: not read in this sweep
        body, rc = _trailer(text)
        if rc is None and "@@hccn" not in text:
            continue        # not run to its end (the plan's time budget was used up, a demo node): ask again
        if s.name == "hccn":
            got = parse_hccn_sweep(text)
        elif rc:
            missing.append(s.name)
            warnings.append(f"{vendor}: {s.command}: exited {rc}: {first_line(body)}; not asked again")
            continue
        elif s.name == "nvlink":
            got = parse_nvlink_status(body)
            if not got.links and not got.warnings:
                missing.append(s.name)     # no NVLink on these GPUs (A10, L40S): nothing to ask next time
                missing.append("nvlink-errors")
        elif s.name == "nvlink-errors":
            got = parse_nvlink_errors(body.replace(ZEROS_OMITTED + "\n", "", 1))
            if ZEROS_OMITTED in body:
                got = replace(got, links=_zeros_back(got.links, links))
        elif s.name.startswith("topo-"):
            got = parse_topology(body, vendor, s.command)
        else:
            got = parse_rdma_sysfs(body, vendor=vendor)
        links.extend(got.links)
        warnings.extend(got.warnings)
    return SweepLinks(_merge(links), tuple(warnings), tuple(dict.fromkeys(missing)), tuple(same),
                      tuple(digests.items()))


def _zeros_back(errors: tuple[Link, ...], status: list[Link]) -> tuple[Link, ...]:
    """The error counters of every lane the status shows up, with the zeros the node left out."""
    counters = {(ln.card_index, ln.link): ln.counters for ln in errors}
    for ln in status:
        if ln.kind == "nvlink" and ln.state is LinkState.UP and ln.peer is None:
            key = (ln.card_index, ln.link)
            zeros: dict[str, int | None] = dict.fromkeys(NVLINK_ERROR_NAMES, 0)
            counters[key] = zeros | counters.get(key, {})
    return tuple(Link("nvlink", link, card, counters=c) for (card, link), c in counters.items())


def warned_sections(warnings: Iterable[str], sections: dict[str, str]) -> dict[str, str]:
    """The link sections a warning is about (section → the warning), so the node's report keeps their text."""
    out: dict[str, str] = {}
    for w in warnings:
        for s in SOURCES:
            command = "hccn_tool -i" if s.name == "hccn" else s.command
            if s.section in sections and f": {command}" in w and s.section not in out:
                out[s.section] = w
    return out


def with_links(vendor: str, result: ParseResult, sections: dict[str, str]) -> ParseResult:
    """A vendor's ParseResult with the links of the sweep's link sections."""
    got = parse_sections(vendor, sections)
    return replace(result, links=got.links, links_missing=got.missing, warnings=result.warnings + got.warnings,
                   links_same=got.same, links_digest=got.digests)


def source(name: str) -> Source:
    """A link source by name."""
    return _BY_NAME[name]
