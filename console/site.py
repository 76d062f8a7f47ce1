"""The site file (DESIGN §5): TOML parsed with tomllib, validated with one clear line per problem."""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors import jobs as jobs_mod
from collectors import slurm
from collectors.adapter import KINDS, TARGETS, UNITS, Adapter, FieldMap
from collectors.registry import KNOWN_VENDORS
from console.argv import printable

if TYPE_CHECKING:  # paramiko is imported only when a site's SSH endpoints are built (fast GUI start)
    import paramiko

    from collectors.ssh import Endpoint


class SiteError(Exception):
    """A site file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        # a problem line quotes the operator's file: never let a control character through to a terminal
        self.problems = [printable(p) for p in problems]
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
class Source:
    """A [[sources]] entry: nodes whose cards an existing Prometheus already scrapes (read by PromQL, no SSH)."""

    kind: str
    url: str
    nodes: tuple[str, ...]                  # globs over node names
    timeout_s: float = 5.0                  # one query's bound: connect, answer and read
    max_age_s: float | None = None          # a sample older than this is not fresh (None: 2 x interval_s)
    node_label: str | None = None           # the series label naming the node, tried first (e.g. kubernetes_node)


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
    sources: tuple[Source, ...] = ()

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
SOURCE_KEYS: _Spec = {"kind": ((str,), True), "url": ((str,), True), "nodes": ((list,), True),
                      "timeout_s": (_NUM, False), "max_age_s": (_NUM, False), "node_label": ((str,), False)}
SOURCE_KINDS = ("prometheus",)
TOP_KEYS = {"site", "ssh", "racks", "nodes", "jobs", "shifts", "adapters", "thresholds", "sources"}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", bool: "true/false"}


@dataclass(frozen=True, slots=True)
class _Range:
    """The sane values of a numeric key: finite, lo < or <= value <= hi."""

    lo: float
    hi: float
    lo_open: bool = False

    def accepts(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):   # an int is finite, and may be too big
            return False                                            # for a float: compare it as an int
        return (value > self.lo if self.lo_open else value >= self.lo) and value <= self.hi

    def text(self) -> str:
        lo = f"{self.lo:g}"
        return f"{'> ' + lo if self.lo_open else '>= ' + lo} and <= {self.hi:g}"


_POSITIVE_S = _Range(0, 86_400, lo_open=True)             # a period or timeout: above 0, at most a day
_TIMEOUT_S = _Range(0, 3_600, lo_open=True)
_PORT = _Range(1, 65_535)
_TEMP_C = _Range(-50, 200)
_PCT = _Range(0, 100, lo_open=True)
# Every numeric key of the site file, by table: a value outside is one problem line (nan, inf, 1e300, -3 ...).
RANGES: dict[str, dict[str, _Range]] = {
    "site": {"interval_s": _POSITIVE_S},
    "ssh": {"port": _PORT, "connect_timeout_s": _TIMEOUT_S, "command_timeout_s": _TIMEOUT_S,
            "max_parallel": _Range(1, 4_096)},
    "racks": {"slots": _Range(1, 1_024)},
    "nodes": {"port": _PORT, "slot": _Range(1, 1_024)},
    "jobs": {"slurm_job": _Range(1, 2**63 - 1)},
    "shifts": {"hours": _Range(0, 24, lo_open=True)},
    "sources": {"timeout_s": _Range(0, 60, lo_open=True), "max_age_s": _POSITIVE_S},
    "thresholds": {"temp_warn_c": _TEMP_C, "temp_crit_c": _TEMP_C, "temp_clear_margin_c": _Range(0, 100),
                   "memory_full_pct": _PCT, "power_clear_pct": _PCT},
    "thresholds.vendors": {"temp_warn_c": _TEMP_C, "temp_crit_c": _TEMP_C,
                           "power_warn_w": _Range(0, 100_000, lo_open=True)},
}
# Keys that name things or paths: never empty, never a control character (a node name is printed on
# terminals and in reports; a newline or ESC in it would forge lines or terminal commands there).
NAME_KEYS: dict[str, set[str]] = {
    "site": {"name", "timezone"}, "ssh": {"user", "identity_file", "known_hosts", "config_file"},
    "racks": {"name", "row"}, "nodes": {"name", "host", "rack", "vendor", "jump"},
    "jobs": {"name", "checkpoint_dir", "log", "framework"}, "shifts": {"name", "start"},
    "adapters": {"name", "tool", "command"}, "sources": {"kind", "url", "node_label"},
}
NO_SPACE_KEYS: dict[str, set[str]] = {"ssh": {"user"}, "nodes": {"name", "host", "jump"},
                                      "sources": {"url", "node_label"}}
# Regular expressions may hold a TAB; nothing else from C0/C1, no DEL, no bidirectional override.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_TAB = re.compile("[\t]|" + _CONTROL.pattern)
MAX_SITE_BYTES = 16 * 1024 * 1024


def _show(value: Any, limit: int = 60) -> str:
    """A value for a problem line: repr (control characters escaped), shortened."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _control_problem(value: str, allow_tab: bool) -> str | None:
    m = (_CONTROL if allow_tab else _CONTROL_OR_TAB).search(value)
    if m is None:
        return None
    return f"contains the control character {ascii(m.group())[1:-1]} (at {m.start() + 1}): {_show(value)}"


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
                self.add(table, index, key, f"must be {want}, got {_show(value)}")
                continue
            problem = self.value_problem(table, key, value)
            if problem is not None:
                self.add(table, index, key, problem)
                continue
            out[key] = value
        return out

    def value_problem(self, table: str, key: str, value: Any) -> str | None:
        """Range of a number, emptiness and control characters of a string; None when fine."""
        sane = RANGES.get(table if table in RANGES else ".".join(table.split(".")[:2]), {}).get(key)
        if sane is not None and isinstance(value, int | float) and not isinstance(value, bool):
            if not sane.accepts(value):
                return f"must be {sane.text()}, got {_show(value)}"
            return None
        if isinstance(value, str):
            if key in NAME_KEYS.get(table, set()) and not value.strip():
                return "must not be empty"
            control = _control_problem(value, allow_tab=key not in NAME_KEYS.get(table, set()))
            if control is None and key in NO_SPACE_KEYS.get(table, set()) and any(ch.isspace() for ch in value):
                # an SSH host or user never has one; a space would also split its known_hosts line
                return f"must not contain spaces: {_show(value)}"
            return control
        return None


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and validate a site file; raises SiteError listing every problem with file:line: field."""
    p = str(path)
    text = _read_text(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{p}:{m.group(1)}:{m.group(2)}" if m else p
        raise SiteError([f"{where}: TOML syntax error: {msg}"]) from None
    except RecursionError:
        raise SiteError([f"{p}: TOML nested too deeply (arrays or inline tables inside each other)"]) from None
    except ValueError as exc:      # an integer too long to convert (sys.get_int_max_str_digits) and the like
        raise SiteError([f"{p}: TOML value cannot be read: {_show(str(exc), 120)}"]) from None
    return parse_site(data, p, text)


def _read_text(p: str) -> str:
    """The site file's text; a missing, non-regular, huge, unreadable or non-UTF-8 file is one SiteError."""
    if not p:
        raise SiteError(["(empty path): no such file"])
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode):
            raise SiteError([f"{p}: is a directory, not a site file"])
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            raise SiteError([f"{p}: not a regular file"])
        with open(p, "rb") as fh:
            raw = fh.read(MAX_SITE_BYTES + 1)
    except FileNotFoundError:
        raise SiteError([f"{p}: no such file"]) from None
    except OSError as exc:
        raise SiteError([f"{p}: cannot read: {exc.strerror or exc}"]) from None
    except ValueError as exc:     # an embedded NUL in the path
        raise SiteError([f"{_show(p)}: cannot read: {exc}"]) from None
    if len(raw) > MAX_SITE_BYTES:
        raise SiteError([f"{p}: larger than {MAX_SITE_BYTES // (1024 * 1024)} MiB: not a site file"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SiteError([f"{p}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})"]) from None


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
    except (ZoneInfoNotFoundError, ValueError, OSError):   # OSError: a name too long, or a tzdata directory
        c.add("site", None, "timezone", f"unknown timezone {_show(tz)} (use an IANA name like Asia/Shanghai)")
        tz = "UTC"
    interval = float(s.get("interval_s", 10))      # in range: checked by the table (RANGES)
    sh = c.table(data.get("ssh", {}), "ssh", None, SSH_KEYS)
    ssh = SSHDefaults(**{k: v for k, v in sh.items()})

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
        jump = n.get("jump")
        if jump is not None and _jump_port(jump) is None:
            c.add("nodes", i, "jump", f"must be [user@]host[:port] with a port 1..65535, got {_show(jump)}")
            jump = None
        nodes.append(Node(name, n.get("host", name), port, rack, slot, vendor, jump))

    jobs: list[Job] = []
    for i, raw in enumerate(_array(c, data, "jobs")):
        j = c.table(raw, "jobs", i, JOB_KEYS)
        if "name" not in j or "nodes" not in j:
            continue
        if any(x.name == j["name"] for x in jobs):
            c.add("jobs", i, "name", f"duplicate job '{j['name']}'")
        globs = j["nodes"]
        if not globs:
            c.add("jobs", i, "nodes", "must list at least one node name or glob")
        for g in globs:
            problem = _glob_problem(g, names)
            if problem:
                c.add("jobs", i, "nodes", problem)
        regex = j.get("progress_regex")
        if regex is not None:
            try:
                if "step" not in re.compile(regex).groupindex:
                    c.add("jobs", i, "progress_regex", "needs a (?P<step>…) group for the step number")
            except (re.error, OverflowError, RecursionError) as exc:
                c.add("jobs", i, "progress_regex", f"invalid regular expression: {_regex_error(exc)}")
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
        if any(x.name == sf["name"] for x in shifts):
            c.add("shifts", i, "name", f"duplicate shift '{sf['name']}'")
        shifts.append(Shift(sf["name"], sf["start"], float(sf["hours"])))

    sources = _sources(c, data, names)

    thresholds = c.table(data.get("thresholds", {}), "thresholds", None, THRESHOLD_KEYS)
    for key, value in list(thresholds.get("vendors", {}).items()):
        if key not in vendor_names:
            c.add("thresholds", None, "vendors", f"unknown vendor {_show(key)}")
        else:
            # named after its own header, [thresholds.vendors.<vendor>], so the problem line has its line number
            thresholds["vendors"][key] = c.table(value, f"thresholds.vendors.{key}", None, VENDOR_THRESHOLD_KEYS)
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
        except (OSError, ValueError, paramiko.ConfigParseError) as exc:   # ValueError: not UTF-8
            raise SiteError([f"{cfg_path}: cannot read SSH config: {exc}"]) from None
    return Site(path, s.get("name", ""), tz, interval, ssh, tuple(racks), tuple(nodes), tuple(jobs),
                tuple(shifts), tuple(adapters), thresholds, config, sources=tuple(sources))


def _sources(c: _Checker, data: dict[str, Any], names: set[str]) -> list[Source]:
    """[[sources]]: kind = "prometheus", url (http(s), no user or password in it), nodes (globs), and the
    optional timeout_s, max_age_s and node_label. A node is read from one source at most."""
    from urllib.parse import urlsplit

    out: list[Source] = []
    owner: dict[str, int] = {}
    for i, raw in enumerate(_array(c, data, "sources")):
        src = c.table(raw, "sources", i, SOURCE_KEYS)
        if not {"kind", "url", "nodes"} <= src.keys():
            continue
        if src["kind"] not in SOURCE_KINDS:
            c.add("sources", i, "kind", f"must be one of {', '.join(SOURCE_KINDS)}, got {_show(src['kind'])}")
            continue
        url = src["url"]
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises ValueError on a bad port
        except ValueError as exc:
            c.add("sources", i, "url", f"not a URL ({exc}): {_show(url)}")
            continue
        if parts.scheme not in ("http", "https") or not parts.hostname:
            c.add("sources", i, "url", f"must be an http(s) URL like http://prometheus.example:9090, got {_show(url)}")
            continue
        if parts.username is not None or parts.password is not None:
            # DESIGN §9: no secret in the site file
            c.add("sources", i, "url", "must not hold a user or password (no secret in the site file)")
            continue
        if parts.query or parts.fragment:
            c.add("sources", i, "url", f"must be the server's base URL, without ?query or #fragment: {_show(url)}")
            continue
        globs = src["nodes"]
        if not globs:
            c.add("sources", i, "nodes", "must list at least one node name or glob")
        bad = False
        for g in globs:
            problem = _glob_problem(g, names)
            if problem:
                c.add("sources", i, "nodes", problem)
                bad = True
        if bad:
            continue
        for name in sorted(names):
            if any(fnmatch.fnmatchcase(name, g) for g in globs):
                if name in owner and owner[name] != i:
                    c.add("sources", i, "nodes", f"node '{name}' is already read from sources[{owner[name]}]")
                    bad = True
                    break
                owner[name] = i
        if bad:
            continue
        max_age = src.get("max_age_s")
        out.append(Source(src["kind"], url.rstrip("/"), tuple(str(g) for g in globs),
                          float(src.get("timeout_s", 5.0)), None if max_age is None else float(max_age),
                          src.get("node_label")))
    return out


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
            except (re.error, OverflowError, RecursionError) as exc:
                c.add("adapters", i, "block_start", f"invalid regular expression: {_regex_error(exc)}")
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


def _regex_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _glob_problem(pattern: Any, names: set[str]) -> str | None:
    if not isinstance(pattern, str) or not pattern:
        return f"bad glob {_show(pattern)}: must be a non-empty string"
    control = _control_problem(pattern, allow_tab=False)
    if control is not None:
        return f"bad glob: {control}"
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
    cfg_port = _config_port(site, host_alias, cfg.get("port"))
    final_port = port or cfg_port or site.ssh.port
    user = cfg.get("user") or site.ssh.user
    idents = tuple(str(x) for x in cfg.get("identityfile", ()))
    if site.ssh.identity_file:
        idents = (site.ssh.identity_file, *idents)
    jump_name = jump or cfg.get("proxyjump")
    jump_ep: Endpoint | None = None
    if jump_name and str(jump_name).lower() != "none" and depth < 3:
        first = str(jump_name).split(",")[0]
        juser, _, jhost = first.rpartition("@")
        jhost, _, _jport = jhost.partition(":")
        jport = _jump_port(first)
        if jport is None:
            raise SiteError([f"{site.path}: host {host_alias}: ProxyJump {_show(first)}: not [user@]host[:port]"])
        jump_ep = _endpoint(site, jhost, jport or None, None, depth + 1)
        if juser:
            jump_ep = Endpoint(**{**_fields(jump_ep), "user": juser})
    return Endpoint(
        name=host_alias, host=hostname, port=final_port, user=str(user) if user else None,
        identity_files=idents, known_hosts=site.ssh.known_hosts,
        connect_timeout_s=site.ssh.connect_timeout_s, command_timeout_s=site.ssh.command_timeout_s,
        jump=jump_ep,
    )


def _jump_port(jump: str) -> int | None:
    """The port of `[user@]host[:port]` (0 when not given); None when it is not a port."""
    host = jump.rpartition("@")[2]
    if not host or host.startswith(":"):
        return None
    _, colon, port = host.partition(":")
    if not colon:
        return 0
    return int(port) if port.isascii() and port.isdigit() and 1 <= int(port) <= 65535 else None


def _config_port(site: Site, alias: str, value: Any) -> int | None:
    """`Port` from ~/.ssh/config for a host: a number 1..65535, else one SiteError naming the file."""
    if value is None:
        return None
    text = str(value)
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    raise SiteError([f"{os.path.expanduser(site.ssh.config_file)}: Host {alias}: Port {_show(text)} "
                     "is not a port (1..65535)"])


def _fields(ep: Endpoint) -> dict[str, Any]:
    from collectors.ssh import Endpoint

    return {f: getattr(ep, f) for f in Endpoint.__dataclass_fields__}


def job_nodes(site: Site, job: Job) -> list[Node]:
    """The nodes a job's globs select, in site order."""
    return [n for n in site.nodes if any(fnmatch.fnmatchcase(n.name, g) for g in job.nodes)]


def source_nodes(site: Site) -> dict[str, int]:
    """Which [[sources]] entry (its index) reads each source-matched node; nodes not listed are reached by SSH."""
    out: dict[str, int] = {}
    for i, src in enumerate(site.sources):
        for n in site.nodes:
            if n.name not in out and any(fnmatch.fnmatchcase(n.name, g) for g in src.nodes):
                out[n.name] = i
    return out


# ---- shards (`mixops collect --shard K/N`) ---------------------------------------------------------

def shard_group(site: Site, node: Node) -> str:
    """The unit a shard takes whole: the node's row, else its rack, else the node itself."""
    rack = next((r for r in site.racks if r.name == node.rack), None) if node.rack is not None else None
    if rack is not None and rack.row:
        return f"row:{rack.row}"
    if node.rack is not None:
        return f"rack:{node.rack}"
    return f"node:{node.name}"


def _stable_hash(text: str) -> int:
    # not hash(): Python salts str hashes per process (PYTHONHASHSEED), the split must be the same everywhere
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def shard_assignment(site: Site, count: int) -> dict[str, int]:
    """Each node's shard (0-based) among `count`: whole groups (rows, else racks, else nodes), balanced by node
    count. Groups are dealt largest first, in the order of a stable hash of their name, each to the shard with
    the fewest nodes so far (the lowest shard on a tie): the split depends only on the site file and `count`,
    so every machine and every restart computes the same one."""
    groups: dict[str, list[str]] = {}
    for n in site.nodes:
        groups.setdefault(shard_group(site, n), []).append(n.name)
    load = [0] * count
    out: dict[str, int] = {}
    for key in sorted(groups, key=lambda g: (-len(groups[g]), _stable_hash(g), g)):
        k = min(range(count), key=lambda i: (load[i], i))
        load[k] += len(groups[key])
        for name in groups[key]:
            out[name] = k
    return out


def shard_site(site: Site, index: int, count: int) -> Site:
    """The site as shard `index` (1-based) of `count` sees it: its nodes, and the jobs whose first node is
    one of them (each job is followed by one shard only)."""
    shard = shard_assignment(site, count)
    mine = tuple(n for n in site.nodes if shard[n.name] == index - 1)
    names = {n.name for n in mine}
    jobs = tuple(j for j in site.jobs if (first := next(iter(job_nodes(site, j)), None)) is not None
                 and first.name in names)
    return replace(site, nodes=mine, jobs=jobs)
