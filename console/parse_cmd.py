"""`mixops parse`: one captured vendor-tool output to the contract JSON (DESIGN §6)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from collectors import (
    amd,
    ascend,
    biren,
    cambricon,
    denglin,
    enflame,
    hygon,
    iluvatar,
    kunlunxin,
    ladder,
    links,
    metax,
    mthreads,
    nvidia,
    registry,
    smitable,
    smixml,
)
from collectors.model import ParseResult, strip_ansi


class ParseInputError(Exception):
    """The capture cannot be attributed to a vendor/command mixops reads."""


# (vendor, command, test on the text) in order: the most specific markers first.
_SNIFF: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("nvidia", "nvidia-smi topo -m", lambda t: re.search(r"^\s*NV#\s+= Connection traversing", t, re.M) is not None
     and re.search(r"^\s+GPU0\s+GPU1\b", t, re.M) is not None),
    ("ascend", "npu-smi info -t topo", lambda t: re.search(r"^\s*NPU0\s+NPU1\b.*CPU Affinity", t, re.M) is not None),
    ("metax", "mx-smi topo -m", lambda t: "Device link type matrix" in t),
    ("amd", "rocm-smi --showtopo", lambda t: "Link Type between two GPUs" in t),
    ("nvidia", links.NVLINK_ERRORS, lambda t: re.search(r"^\s*Link \d+: [A-Za-z][\w ]*Errors\s*:", t, re.M) is not None),
    ("nvidia", links.NVLINK_STATUS, lambda t: re.search(r"^\s*Link \d+: (?:[\d.]+ GB/s|<inactive>)", t, re.M)
     is not None or re.search(r"^GPU \d+: .*\n(?:Device does not have or support Nvlink|Nvlink queries)", t, re.M)
     is not None),
    ("ascend", "hccn_tool -link_stat -g", lambda t: re.search(r"^(?:\[dev\w* ?\d+\])?link up count\s*:", t, re.M)
     is not None),
    ("ascend", "hccn_tool -link -g", lambda t: re.search(r"^link status\s*:", t, re.M) is not None),
    ("ascend", "hccn_tool -net_health -g", lambda t: re.search(r"^net health status\s*:", t, re.M) is not None),
    ("ascend", "hccn_tool -stat -g", lambda t: t.lstrip().startswith("packet statistics:")),
    ("linux", links.RDMA_SYSFS, lambda t: re.search(r"^(?:\S*/)?[^/\s:]+/ports/\d+/[\w/]+:", t, re.M) is not None),
    ("nvidia", "kernel log", lambda t: "NVRM: " in t and "Xid" in t),
    ("nvidia", "nvidia-smi -q -x", lambda t: "<nvidia_smi_log" in t),
    ("iluvatar", "ixsmi -q -x", lambda t: "<ixsmi_log" in t),
    ("denglin", denglin.QUERY, lambda t: "<dlsmi_log" in t),
    ("nvidia", "nvidia-smi", lambda t: "NVIDIA-SMI" in t),
    ("iluvatar", "ixsmi", lambda t: "IX-ML" in t),
    ("kunlunxin", "xpu_smi", lambda t: "XPU-SMI" in t or ("DEVICES" in t and "DevID" in t)),
    ("kunlunxin", "xpu_smi -m", lambda t: re.search(r'^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.\d \d+ .*"', t,
                                                    re.M) is not None),
    ("cambricon", cambricon.TABLE, lambda t: re.search(r"\|\s*CNMON\s+v", t) is not None),
    ("metax", "mx-smi --show-temperature --show-usage --show-memory",
     lambda t: ("MetaX System Management" in t or "mx-smi" in t) and re.search(r"^GPU#\d+", t, re.M) is not None),
    ("metax", metax.TABLE, lambda t: re.search(r"MX-SMI\s+\d|MetaX System Management", t) is not None),
    ("mthreads", mthreads.TABLE, lambda t: "mthreads-gmi" in t),
    ("enflame", enflame.QUERY, lambda t: "Enflame" in t and re.search(r"^DEV ID\s+\d", t, re.M) is not None),
    ("enflame", enflame.TABLE, lambda t: "EFSMI" in t or "Enflame System Management" in t),
    ("amd", "amd-smi", lambda t: "AMD-SMI" in t),
    ("amd", "amd-smi metric --json", lambda t: '"gpu_data"' in t),
    ("hygon", hygon.JSON_QUERY, lambda t: re.search(r'"card\d+"\s*:', t) is not None
     and any(k in t for k in ("DCU", "HCU", "Haiguang"))),
    ("amd", amd.JSON_QUERY, lambda t: re.search(r'"card\d+"\s*:', t) is not None),
    ("hygon", hygon.TABLE, lambda t: re.search(r"^\s*(DCU|HCU)\s+Temp\b", t, re.M) is not None),
    ("amd", "rocm-smi", lambda t: re.search(r"^\s*(GPU|Device)\s+.*\bTemp\b", t, re.M) is not None
     and "ROCm" in t),
    ("ascend", ascend.INFO, lambda t: re.search(r"npu-smi\s+\d", t) is not None
     or re.search(r"^\|\s*NPU\s+.*Name", t, re.M) is not None),
    ("ascend", "npu-smi info -t health", lambda t: re.search(r"^\s*Health Status\s*:", t, re.M) is not None),
    ("ascend", "npu-smi info -m", lambda t: re.search(r"^NPU ID\s{2,}Chip ID\s{2,}", t, re.M) is not None),
    ("ascend", "npu-smi info -t common", lambda t: re.search(r"^\s*NPU ID\s*:", t, re.M) is not None),
)


def detect(text: str) -> tuple[str, str]:
    """Guess (vendor, command) from the text of a capture."""
    for vendor, command, test in _SNIFF:
        if test(text):
            return vendor, command
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.count(",") >= 2 and ("MiB" in text or first.lower().startswith("index") or re.match(r"\s*\d+,", first)):
        return ("iluvatar" if "Iluvatar" in text else "nvidia"), "nvidia-smi --query-gpu"
    raise ParseInputError("cannot tell which vendor tool printed this; give --vendor and --command")


def _fields(command: str, default: tuple[str, ...]) -> tuple[str, ...] | None:
    m = re.search(r"--query-gpu[= ](\S+)", command)
    return tuple(f.strip() for f in m.group(1).split(",") if f.strip()) if m else default


def parse_capture(text: str, vendor: str | None, command: str | None) -> ParseResult:
    """Parse a capture, detecting vendor and command when they are not given; faults take the ladder as
    in a sweep (collectors.ladder.apply)."""
    text = strip_ansi(text)
    if vendor is None and command is not None:
        vendor = _link_vendor(command)
    if vendor is None or command is None:
        v, c = detect(text)
        vendor, command = vendor or v, command or c
    return ladder.apply(_parse(text, vendor, command))


_TOPO_VENDOR = {"nvidia-smi": "nvidia", "npu-smi": "ascend", "mx-smi": "metax", "rocm-smi": "amd", "hy-smi": "hygon"}


def _link_vendor(command: str) -> str | None:
    """The vendor a link command belongs to (the kernel's RDMA ports: "linux"), None for other commands."""
    words = command.split()
    if ("topo" in words or "--showtopo" in words) and words[0].rsplit("/", 1)[-1] in _TOPO_VENDOR:
        return _TOPO_VENDOR[words[0].rsplit("/", 1)[-1]]
    if "nvlink" in words:
        return "nvidia"
    if "hccn_tool" in command:
        return "ascend"
    return "linux" if links.RDMA_SYSFS in command else None


def _parse_links(text: str, vendor: str, cmd: str) -> ParseResult | None:
    """The link commands (DESIGN §6 links[]), whichever vendor the capture is filed under; None for others."""
    words = cmd.split()
    if "topo" in words or "--showtopo" in words:
        return links.parse_topology(text, vendor, cmd)
    if "nvlink" in words:
        if "-e" in words or "--errorcounters" in words:
            return links.parse_nvlink_errors(text, cmd)
        if "-s" in words or "--status" in words:
            return links.parse_nvlink_status(text, cmd)
        raise ParseInputError(f"nvidia-smi nvlink: mixops reads --status (-s) and -e, not '{cmd}'")
    if "hccn_tool" in cmd:
        option = links.hccn_option(cmd)
        if option is None:
            raise ParseInputError(f"hccn_tool: mixops reads {', '.join(links.HCCN_OPTIONS)} -g, not '{cmd}'")
        return links.parse_hccn(text, option, links.hccn_device(cmd, text), cmd)
    if links.RDMA_SYSFS in cmd or vendor in ("linux", "rdma"):
        return links.parse_rdma_sysfs(text, cmd, vendor)
    return None


def _parse(text: str, vendor: str, cmd: str) -> ParseResult:
    linked = _parse_links(text, vendor, cmd)
    if linked is not None:
        return linked
    if vendor == "nvidia":
        if "kernel" in cmd or "dmesg" in cmd or "journalctl" in cmd:
            return nvidia.parse_kernel_log(text)
        if "-x" in cmd.split() or text.lstrip().startswith("<?xml"):
            return smixml.parse_xml(text, "nvidia", cmd)
        if "--query-gpu" in cmd:
            return nvidia.parse_query_csv(text, _fields(cmd, nvidia.QUERY_FIELDS), cmd)
        return smitable.parse_smi_table(text, "nvidia", cmd)
    if vendor == "ascend":
        if "health" in cmd:
            npu = re.search(r"-i\s+(\d+)", cmd)
            chip = re.search(r"-c\s+(\d+)", cmd)
            return ascend.parse_health(text, int(npu.group(1)) if npu else 0, int(chip.group(1)) if chip else 0, cmd)
        if "-m" in cmd.split():
            return ascend.parse_map(text, cmd)
        if "-t" in cmd.split():
            return ascend.parse_kv(text, cmd)
        return ascend.parse_info(text, cmd)
    if vendor == "cambricon":
        return cambricon.parse_table(text, cmd)
    if vendor == "metax":
        return metax.parse_show(text, cmd) if "--show" in cmd else metax.parse_table(text, cmd)
    if vendor == "hygon":
        return hygon.parse_json(text, cmd) if "json" in cmd else hygon.parse_table(text, cmd)
    if vendor == "amd":
        if "metric" in cmd:
            return amd.parse_metric_json(text, cmd)
        if "json" in cmd:
            return amd.parse_json(text, cmd)
        return amd.parse_amd_smi_table(text, cmd) if cmd.startswith("amd-smi") else amd.parse_concise(text, cmd)
    if vendor == "mthreads":
        return mthreads.parse_table(text, cmd)
    if vendor == "iluvatar":
        if "-x" in cmd.split() or "<ixsmi_log" in text:
            return iluvatar.parse_xml(text, cmd)
        if "--query-gpu" in cmd or "," in text.splitlines()[0] if text.strip() else False:
            return iluvatar.parse_query_csv(text, _fields(cmd, iluvatar.QUERY_FIELDS), cmd)
        return iluvatar.parse_table(text, cmd)
    if vendor == "enflame":
        return enflame.parse_query(text, cmd) if "-q" in cmd.split() else enflame.parse_table(text, cmd)
    if vendor == "kunlunxin":
        return kunlunxin.parse_rows(text, cmd) if "-m" in cmd.split() else kunlunxin.parse_table(text, cmd)
    if vendor == "denglin":
        return denglin.parse_xml(text, cmd)
    if vendor == "biren":
        return biren.parse_list(text, cmd)
    raise ParseInputError(f"vendor '{vendor}' has no parser (known: {', '.join(registry.KNOWN_VENDORS)})")


def to_json(result: ParseResult) -> dict[str, Any]:
    """The contract object of parse-output.schema.json."""
    return {
        "vendor": result.vendor,
        "command": result.command,
        "cards": [{
            "index": c.index, "chip": c.chip, "model": c.model, "serial": c.serial, "bus_id": c.bus_id,
            "health": c.health.value, "temperature_c": c.temperature_c, "utilization_pct": c.utilization_pct,
            "memory_used_mib": c.memory_used_mib, "memory_total_mib": c.memory_total_mib, "power_w": c.power_w,
            "ecc_uncorrected": c.ecc_uncorrected,
        } for c in result.cards],
        "faults": [{"code": f.code, "severity": f.severity.value, "action": f.action.value,
                    "message": f.message, "card_index": f.card_index} for f in result.faults],
        "links": [{
            "card_index": ln.card_index, "kind": ln.kind, "link": ln.link, "peer": ln.peer, "state": ln.state.value,
            "speed_gbps": ln.speed_gbps, "counters": dict(ln.counters), "detail": ln.detail,
        } for ln in result.links],
        "warnings": list(result.warnings),
    }
