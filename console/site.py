"""The site file (DESIGN §5): TOML parsed with tomllib, validated with one clear line per problem."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors import jobs as jobs_mod
from collectors import slurm
from collectors.adapter import KINDS, TARGETS, UNITS, Adapter, FieldMap
from collectors.registry import KNOWN_VENDORS

if TYPE_CHECKING:  # paramiko is imported only when a site's SSH endpoints are built (fast GUI start)
    import paramiko

    from collectors.ssh import Endpoint


class SiteError(Exception):
    """A site file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class SSHDefaults:
    """The [ssh] table: defaults for every node."""

    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 8.0
    config_file: str = "~/.ssh/config"
    max_parallel: int = 64


@dataclass(frozen=True, slots=True)
class Rack:
    """A rack in the room layout."""

    name: str
    row: str | None
    slots: int


@dataclass(frozen=True, slots=True)
class Node:
    """A server reached over SSH."""

    name: str
    host: str
    port: int | None
    rack: str | None
    slot: int | None
    vendor: str | None
    jump: str | None


@dataclass(frozen=True, slots=True)
class Job:
    """A training job spanning nodes."""

    name: str
    nodes: tuple[str, ...]
    checkpoint_dir: str | None
    log: str | None
    framework: str | None
    progress_regex: str | None
    slurm_job: str | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """A named shift (start in the site's timezone)."""

    name: str
    start: str
    hours: float


@dataclass(frozen=True, slots=True)
class Site:
    """A whole computing center as described by its site file."""

    path: str
    name: str
    timezone: str
    interval_s: float
    ssh: SSHDefaults
    racks: tuple[Rack, ...] = ()
    nodes: tuple[Node, ...] = ()
    jobs: tuple[Job, ...] = ()
    shifts: tuple[Shift, ...] = ()
    adapters: tuple[Adapter, ...] = ()
    thresholds: dict[str, Any] = field(default_factory=dict)     # [thresholds] as validated
    _ssh_config: paramiko.SSHConfig | None = field(default=None, compare=False, repr=False)

    def endpoint(self, node: Node) -> Endpoint:
        """How to reach a node: site node fields, then ~/.ssh/config, then [ssh] defaults."""
        from collectors.ssh import Endpoint

        ep = _endpoint(self, node.host, node.port, node.jump, depth=0)
        return Endpoint(**{**_fields(ep), "name": node.name})


# ---- schema: key -> (types, required) per table ---------------------------------------------------
_Spec = dict[str, tuple[tuple[type, ...], bool]]
_NUM = (int, float)
SITE_KEYS: _Spec = {"name": ((str,), True), "timezone": ((str,), False), "interval_s": (_NUM, False)}
SSH_KEYS: _Spec = {"user": ((str,), False), "port": ((int,), False), "identity_file": ((str,), False),
                   "known_hosts": ((str,), False), "connect_timeout_s": (_NUM, False),
                   "command_timeout_s": (_NUM, False), "config_file": ((str,), False),
                   "max_parallel": ((int,), False)}
RACK_KEYS: _Spec = {"name": ((str,), True), "row": ((str,), False), "slots": ((int,), False)}
NODE_KEYS: _Spec = {"name": ((str,), True), "host": ((str,), False), "port": ((int,), False),
                    "rack": ((str,), False), "slot": ((int,), False), "vendor": ((str,), False),
                    "jump": ((str,), False)}
JOB_KEYS: _Spec = {"name": ((str,), True), "nodes": ((list,), True), "checkpoint_dir": ((str,), False),
                   "log": ((str,), False), "framework": ((str,), False), "progress_regex": ((str,), False),
                   "slurm_job": ((str, int), False)}
SHIFT_KEYS: _Spec = {"name": ((str,), True), "start": ((str,), True), "hours": (_NUM, True)}
ADAPTER_KEYS: _Spec = {"name": ((str,), True), "tool": ((str,), True), "command": ((str,), True),
                       "kind": ((str,), True), "block_start": ((str,), False), "fields": ((dict,), True)}
THRESHOLD_KEYS: _Spec = {"temp_warn_c": (_NUM, False), "temp_crit_c": (_NUM, False),
                         "temp_clear_margin_c": (_NUM, False), "memory_full_pct": (_NUM, False),
                         "power_clear_pct": (_NUM, False), "vendors": ((dict,), False)}
VENDOR_THRESHOLD_KEYS: _Spec = {"temp_warn_c": (_NUM, False), "temp_crit_c": (_NUM, False),
                                "power_warn_w": (_NUM, False)}
TOP_KEYS = {"site", "ssh", "racks", "nodes", "jobs", "shifts", "adapters", "thresholds"}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", bool: "true/false"}


class _Checker:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.problems: list[str] = []

    def line_of(self, table: str, index: int | None, key: str | None) -> int | None:
        """Best-effort line number of `key` in the index-th [[table]] (or [table])."""
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]" if index is not None
                            else rf"^\s*\[\s*{re.escape(table)}\s*\]")
        seen = -1
        start = None
        for no, line in enumerate(self.lines, 1):
            if header.match(line):
                seen += 1
                if index is None or seen == index:
                    start = no
                    break
        if start is None:
            return None
        if key is None:
            return start
        key_re = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for no in range(start, len(self.lines)):
            line = self.lines[no]
            if line.lstrip().startswith("["):
                break
            if key_re.match(line):
                return no + 1
        return start

    def add(self, table: str, index: int | None, key: str | None, message: str) -> None:
        line = self.line_of(table, index, key)
        where = f"{self.path}:{line}" if line else self.path
        field_name = table + (f"[{index}]" if index is not None else "") + (f".{key}" if key else "")
        self.problems.append(f"{where}: {field_name}: {message}")

    def table(self, data: Any, table: str, index: int | None, spec: _Spec) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.add(table, index, None, "must be a table")
            return {}
        for key in data:
            if key not in spec:
                known = ", ".join(spec)
                self.add(table, index, key, f"unknown key (known: {known})")
        out: dict[str, Any] = {}
        for key, (types, required) in spec.items():
            if key not in data:
                if required:
                    self.add(table, index, None, f"missing required key '{key}'")
                continue
            value = data[key]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if not ok:
                want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
                self.add(table, index, key, f"must be {want}, got {value!r}")
                continue
            out[key] = value
        return out


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and validate a site file; raises SiteError listing every problem with file:line: field."""
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SiteError([f"{p}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError([f"{p}: cannot read: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{p}:{m.group(1)}:{m.group(2)}" if m else p
        raise SiteError([f"{where}: TOML syntax error: {msg}"]) from None
    return parse_site(data, p, text)


def parse_site(data: dict[str, Any], path: str = "<site>", text: str = "") -> Site:
    """Validate already-parsed TOML data."""
    c = _Checker(path, text)
    for key in data:
        if key not in TOP_KEYS:
            c.add(key, None, None, f"unknown table (known: {', '.join(sorted(TOP_KEYS))})")
    if "site" not in data:
        c.problems.append(f"{path}: site: missing [site] table with at least name = \"...\"")
    s = c.table(data.get("site", {}), "site", None, SITE_KEYS)
    tz = s.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        c.add("site", None, "timezone", f"unknown timezone '{tz}' (use an IANA name like Asia/Shanghai)")
    interval = float(s.get("interval_s", 10))
    if interval <= 0:
        c.add("site", None, "interval_s", "must be > 0")
    sh = c.table(data.get("ssh", {}), "ssh", None, SSH_KEYS)
    ssh = SSHDefaults(**{k: v for k, v in sh.items()})
    for key in ("connect_timeout_s", "command_timeout_s"):
        if getattr(ssh, key) <= 0:
            c.add("ssh", None, key, "must be > 0")
    if ssh.max_parallel < 1:
        c.add("ssh", None, "max_parallel", "must be >= 1")

    adapters = _adapters(c, data)
    vendor_names = set(KNOWN_VENDORS) | {a.name for a in adapters}

    racks: list[Rack] = []
    for i, raw in enumerate(_array(c, data, "racks")):
        r = c.table(raw, "racks", i, RACK_KEYS)
        if "name" not in r:
            continue
        if any(x.name == r["name"] for x in racks):
            c.add("racks", i, "name", f"duplicate rack '{r['name']}'")
        racks.append(Rack(r["name"], r.get("row"), int(r.get("slots", 8))))
    rack_by_name = {r.name: r for r in racks}

    nodes: list[Node] = []
    names: set[str] = set()
    used_slots: dict[tuple[str, int], str] = {}
    for i, raw in enumerate(_array(c, data, "nodes")):
        n = c.table(raw, "nodes", i, NODE_KEYS)
        if "name" not in n:
            continue
        name = n["name"]
        if name in names:
            c.add("nodes", i, "name", f"duplicate node '{name}'")
        names.add(name)
        rack = n.get("rack")
        if rack is not None and rack not in rack_by_name:
            c.add("nodes", i, "rack", f"rack '{rack}' does not exist (define it in [[racks]])")
        slot = n.get("slot")
        if slot is not None and rack in rack_by_name:
            if not 1 <= slot <= rack_by_name[rack].slots:
                c.add("nodes", i, "slot", f"slot {slot} outside rack '{rack}' (1..{rack_by_name[rack].slots})")
            elif (rack, slot) in used_slots:
                c.add("nodes", i, "slot", f"slot {slot} of rack '{rack}' is already node '{used_slots[(rack, slot)]}'")
            else:
                used_slots[(rack, slot)] = name
        vendor = n.get("vendor")
        if vendor is not None and vendor not in vendor_names:
            c.add("nodes", i, "vendor", f"unknown vendor '{vendor}' (known: {', '.join(sorted(vendor_names))}; "
                  "or define an [[adapters]] entry)")
        port = n.get("port")
        if port is not None and not 1 <= port <= 65535:
            c.add("nodes", i, "port", f"port {port} out of range")
        nodes.append(Node(name, n.get("host", name), port, rack, slot, vendor, n.get("jump")))

    jobs: list[Job] = []
    for i, raw in enumerate(_array(c, data, "jobs")):
        j = c.table(raw, "jobs", i, JOB_KEYS)
        if "name" not in j or "nodes" not in j:
            continue
        globs = j["nodes"]
        for g in globs:
            problem = _glob_problem(g, names)
            if problem:
                c.add("jobs", i, "nodes", problem)
        regex = j.get("progress_regex")
        if regex is not None:
            try:
                if "step" not in re.compile(regex).groupindex:
                    c.add("jobs", i, "progress_regex", "needs a (?P<step>…) group for the step number")
            except re.error as exc:
                c.add("jobs", i, "progress_regex", f"invalid regular expression: {exc}")
        framework = j.get("framework")
        if framework is not None and framework not in jobs_mod.FRAMEWORKS:
            c.add("jobs", i, "framework", f"unknown framework {framework!r} (known: {', '.join(jobs_mod.FRAMEWORKS)};"
                  " or give progress_regex)")
        slurm_job = None if j.get("slurm_job") is None else str(j["slurm_job"])
        if slurm_job is not None and not slurm.valid_id(slurm_job):
            c.add("jobs", i, "slurm_job", f"not a Slurm job id: {slurm_job!r}")
        jobs.append(Job(j["name"], tuple(str(g) for g in globs), j.get("checkpoint_dir"), j.get("log"),
                        framework, regex, slurm_job))

    shifts: list[Shift] = []
    for i, raw in enumerate(_array(c, data, "shifts")):
        sf = c.table(raw, "shifts", i, SHIFT_KEYS)
        if "name" not in sf or "start" not in sf or "hours" not in sf:
            continue
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", sf["start"]):
            c.add("shifts", i, "start", f"must be HH:MM, got '{sf['start']}'")
        if not 0 < sf["hours"] <= 24:
            c.add("shifts", i, "hours", "must be between 0 and 24")
        shifts.append(Shift(sf["name"], sf["start"], float(sf["hours"])))

    thresholds = c.table(data.get("thresholds", {}), "thresholds", None, THRESHOLD_KEYS)
    for key, value in list(thresholds.get("vendors", {}).items()):
        if key not in vendor_names:
            c.add("thresholds", None, "vendors", f"unknown vendor '{key}'")
        else:
            thresholds["vendors"][key] = c.table(value, "thresholds.vendors", None, VENDOR_THRESHOLD_KEYS)
    if thresholds.get("temp_crit_c", 95) <= thresholds.get("temp_warn_c", 85):
        c.add("thresholds", None, "temp_crit_c", "must be above temp_warn_c")

    if c.problems:
        raise SiteError(c.problems)
    config: paramiko.SSHConfig | None = None
    cfg_path = os.path.expanduser(ssh.config_file)
    if os.path.exists(cfg_path):
        import paramiko

        try:
            config = paramiko.SSHConfig.from_path(cfg_path)
        except (OSError, paramiko.ConfigParseError) as exc:
            raise SiteError([f"{cfg_path}: cannot read SSH config: {exc}"]) from None
    return Site(path, s.get("name", ""), tz, interval, ssh, tuple(racks), tuple(nodes), tuple(jobs),
                tuple(shifts), tuple(adapters), thresholds, config)


def _adapters(c: _Checker, data: dict[str, Any]) -> list[Adapter]:
    """[[adapters]]: name, tool, command, kind (csv|jsonl|kv), optional block_start, [adapters.fields]."""
    out: list[Adapter] = []
    for i, raw in enumerate(_array(c, data, "adapters")):
        a = c.table(raw, "adapters", i, ADAPTER_KEYS)
        if not {"name", "tool", "command", "kind", "fields"} <= a.keys():
            continue
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", a["name"]):
            c.add("adapters", i, "name", "must be a lower-case word (letters, digits, _ or -)")
        if a["kind"] not in KINDS:
            c.add("adapters", i, "kind", f"must be one of {', '.join(KINDS)}, got '{a['kind']}'")
        if a.get("block_start") is not None:
            try:
                re.compile(a["block_start"])
            except re.error as exc:
                c.add("adapters", i, "block_start", f"invalid regular expression: {exc}")
        fields: dict[str, FieldMap] = {}
        for target, spec in a["fields"].items():
            if target not in TARGETS:
                c.add("adapters", i, "fields", f"unknown sample field '{target}' (known: {', '.join(TARGETS)})")
                continue
            if isinstance(spec, str):
                fields[target] = FieldMap(spec)
                continue
            if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
                c.add("adapters", i, "fields", f"{target}: must be a field name or {{ field = \"…\", unit = \"…\" }}")
                continue
            unit = spec.get("unit")
            family = {"memory_used_mib": "memory", "memory_total_mib": "memory", "power_w": "power",
                      "temperature_c": "temperature", "utilization_pct": "utilization"}.get(target)
            if unit is not None and (family is None or unit not in UNITS[family]):
                allowed = ", ".join(UNITS[family]) if family else "none"
                c.add("adapters", i, "fields", f"{target}: unknown unit '{unit}' (allowed: {allowed})")
                continue
            extra = {k: tuple(str(x) for x in spec[k]) for k in ("ok", "critical") if isinstance(spec.get(k), list)}
            fields[target] = FieldMap(spec["field"], unit, **extra)
        if any(x.name == a["name"] for x in out):
            c.add("adapters", i, "name", f"duplicate adapter '{a['name']}'")
        out.append(Adapter(a["name"], a["tool"], a["command"], a["kind"], fields, a.get("block_start")))
    return out


def _array(c: _Checker, data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        c.add(key, None, None, f"must be an array of tables ([[{key}]])")
        return []
    return value


def _glob_problem(pattern: Any, names: set[str]) -> str | None:
    if not isinstance(pattern, str) or not pattern:
        return f"bad glob {pattern!r}: must be a non-empty string"
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    if depth:
        return f"bad glob '{pattern}': unbalanced '['"
    if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
        return f"glob '{pattern}' matches no node"
    return None


def _endpoint(site: Site, host_alias: str, port: int | None, jump: str | None, depth: int) -> Endpoint:
    from collectors.ssh import Endpoint

    cfg: dict[str, Any] = dict(site._ssh_config.lookup(host_alias)) if site._ssh_config else {}
    hostname = str(cfg.get("hostname", host_alias))
    final_port = port or (int(cfg["port"]) if "port" in cfg else site.ssh.port)
    user = cfg.get("user") or site.ssh.user
    idents = tuple(str(x) for x in cfg.get("identityfile", ()))
    if site.ssh.identity_file:
        idents = (site.ssh.identity_file, *idents)
    jump_name = jump or cfg.get("proxyjump")
    jump_ep: Endpoint | None = None
    if jump_name and str(jump_name).lower() != "none" and depth < 3:
        first = str(jump_name).split(",")[0]
        juser, _, jhost = first.rpartition("@")
        jhost, _, jport = jhost.partition(":")
        jump_ep = _endpoint(site, jhost, int(jport) if jport else None, None, depth + 1)
        if juser:
            jump_ep = Endpoint(**{**_fields(jump_ep), "user": juser})
    return Endpoint(
        name=host_alias, host=hostname, port=final_port, user=str(user) if user else None,
        identity_files=idents, known_hosts=site.ssh.known_hosts,
        connect_timeout_s=site.ssh.connect_timeout_s, command_timeout_s=site.ssh.command_timeout_s,
        jump=jump_ep,
    )


def _fields(ep: Endpoint) -> dict[str, Any]:
    from collectors.ssh import Endpoint

    return {f: getattr(ep, f) for f in Endpoint.__dataclass_fields__}


def job_nodes(site: Site, job: Job) -> list[Node]:
    """The nodes a job's globs select, in site order."""
    return [n for n in site.nodes if any(fnmatch.fnmatchcase(n.name, g) for g in job.nodes)]
