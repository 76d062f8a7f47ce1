"""Fault injection on the two inputs an operator types (issue 16): bad site files and bad command lines.

Every case goes through the real entry (`main.main`, in-process, stderr captured; a few through a real
`python main.py` process) and must exit 0, 1 or 2, print no traceback, and on exit 2 print one line per
problem, each naming its place (file:line: field, the option, or the file). Cases are counted:
>= 50 bad site files (hand-written + hypothesis mutations of a valid one), >= 40 bad command lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import main as entry
from collectors import registry
from collectors.ssh import SSHError
from console import cli
from console.argv import json_line, printable
from console.store import Store

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

BASE = """\
[site]
name = "fault hall"
timezone = "Asia/Shanghai"
interval_s = 10

[ssh]
user = "ops"
port = 22
connect_timeout_s = 5
command_timeout_s = 8
config_file = "/nonexistent/mixops-test/ssh_config"
max_parallel = 8

[[racks]]
name = "A01"
row = "A"
slots = 4

[[nodes]]
name = "gpu-a01-1"
host = "127.0.0.1"
port = 1
rack = "A01"
slot = 1
vendor = "nvidia"

[[nodes]]
name = "npu-a01-2"
rack = "A01"
slot = 2

[[jobs]]
name = "llm"
nodes = ["gpu-a01-*", "npu-*"]
checkpoint_dir = "/mnt/ckpt/llm"
log = "/mnt/logs/llm.log"
framework = "megatron"

[[shifts]]
name = "day"
start = "08:00"
hours = 12

[thresholds]
temp_warn_c = 85
temp_crit_c = 95
memory_full_pct = 99

[thresholds.vendors.ascend]
temp_warn_c = 80
power_warn_w = 420
"""


def sub(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


DEEP_ARRAY = "[site]\nname = \"x\"\n[thresholds]\nvendors = " + "[" * 3000 + "]" * 3000 + "\n"
DEEP_TABLE = "[site]\nname = \"x\"\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n"
# hand-written: (id, text); every one is bad and must exit 2
SITE_CASES: list[tuple[str, str | bytes]] = [
    ("empty-file", ""),
    ("only-comment", "# nothing here\n"),
    ("no-site-table", sub("[site]\nname = \"fault hall\"\n", "")),
    ("site-name-empty", sub('name = "fault hall"', 'name = ""')),
    ("site-name-blank", sub('name = "fault hall"', 'name = "   "')),
    ("site-name-int", sub('name = "fault hall"', "name = 5")),
    ("interval-nan", sub("interval_s = 10", "interval_s = nan")),
    ("interval-inf", sub("interval_s = 10", "interval_s = inf")),
    ("interval-minus-inf", sub("interval_s = 10", "interval_s = -inf")),
    ("interval-negative", sub("interval_s = 10", "interval_s = -10")),
    ("interval-zero", sub("interval_s = 10", "interval_s = 0")),
    ("interval-1e300", sub("interval_s = 10", "interval_s = 1e300")),
    ("interval-huge-int", sub("interval_s = 10", "interval_s = 1" + "0" * 400)),
    ("interval-bool", sub("interval_s = 10", "interval_s = true")),
    ("interval-string", sub("interval_s = 10", 'interval_s = "10"')),
    ("interval-date", sub("interval_s = 10", "interval_s = 1979-05-27")),
    ("interval-array", sub("interval_s = 10", "interval_s = [10]")),
    ("interval-table", sub("interval_s = 10", "interval_s = {a = 1}")),
    ("connect-timeout-nan", sub("connect_timeout_s = 5", "connect_timeout_s = nan")),
    ("connect-timeout-1e300", sub("connect_timeout_s = 5", "connect_timeout_s = 1e300")),
    ("command-timeout-negative", sub("command_timeout_s = 8", "command_timeout_s = -1")),
    ("ssh-port-zero", sub("port = 22", "port = 0")),
    ("ssh-port-70000", sub("port = 22", "port = 70000")),
    ("ssh-port-float", sub("port = 22", "port = 22.5")),
    ("max-parallel-zero", sub("max_parallel = 8", "max_parallel = 0")),
    ("max-parallel-1e12", sub("max_parallel = 8", "max_parallel = 1000000000000")),
    ("max-parallel-bool", sub("max_parallel = 8", "max_parallel = true")),
    ("slots-negative", sub("slots = 4", "slots = -3")),
    ("slots-1e12-int", sub("slots = 4", "slots = 1000000000000")),
    ("slots-1e12-float", sub("slots = 4", "slots = 1e12")),
    ("slots-zero", sub("slots = 4", "slots = 0")),
    ("node-slot-zero", sub("slot = 1\n", "slot = 0\n")),
    ("node-slot-outside", sub("slot = 1\n", "slot = 99\n")),
    ("node-port-negative", sub("port = 1\n", "port = -1\n")),
    ("node-port-beyond-64-bit", sub("port = 1\n", "port = 99999999999999999999\n")),
    ("node-name-empty", sub('name = "gpu-a01-1"', 'name = ""')),
    ("node-name-osc", sub('name = "gpu-a01-1"', 'name = "gpu\\u001b]0;owned\\u0007"')),
    ("node-name-newline", sub('name = "gpu-a01-1"', 'name = "gpu\\nmixops: all clear"')),
    ("node-name-c1-csi", sub('name = "gpu-a01-1"', 'name = "gpu\\u009b31m"')),
    ("node-name-bidi", sub('name = "gpu-a01-1"', 'name = "\\u202egpu"')),
    ("node-name-nul", sub('name = "gpu-a01-1"', 'name = "gpu\\u0000"')),
    ("node-host-empty", sub('host = "127.0.0.1"', 'host = ""')),
    ("node-vendor-typo", sub('vendor = "nvidia"', 'vendor = "nvidai"')),
    ("node-duplicate", sub('name = "npu-a01-2"', 'name = "gpu-a01-1"')),
    ("duplicate-key", sub('name = "npu-a01-2"', 'name = "npu-a01-2"\nname = "npu-a01-3"')),
    ("duplicate-table", BASE + "\n[site]\nname = \"again\"\n"),
    ("job-nodes-empty", sub('nodes = ["gpu-a01-*", "npu-*"]', "nodes = []")),
    ("job-nodes-ints", sub('nodes = ["gpu-a01-*", "npu-*"]', "nodes = [1, 2]")),
    ("job-nodes-empty-glob", sub('nodes = ["gpu-a01-*", "npu-*"]', 'nodes = ["", "gpu-*"]')),
    ("job-nodes-string", sub('nodes = ["gpu-a01-*", "npu-*"]', 'nodes = "gpu-*"')),
    ("job-nodes-control", sub('nodes = ["gpu-a01-*", "npu-*"]', 'nodes = ["gpu-*\\u001b[2J"]')),
    ("job-name-empty", sub('name = "llm"', 'name = ""')),
    ("job-log-newline", sub('log = "/mnt/logs/llm.log"', 'log = "/mnt/logs/llm.log\\nrm -rf /"')),
    ("regex-repeat-overflow", sub('framework = "megatron"', "progress_regex = '(?P<step>a{99999999999})'")),
    ("regex-deep", sub('framework = "megatron"', "progress_regex = '" + "(" * 2000 + "(?P<step>a)" + ")" * 2000 + "'")),
    ("regex-unbalanced", sub('framework = "megatron"', "progress_regex = '(?P<step>\\d+'")),
    ("slurm-negative", sub('framework = "megatron"', "slurm_job = -5")),
    ("slurm-huge", sub('framework = "megatron"', "slurm_job = 1" + "0" * 30)),
    ("slurm-injection", sub('framework = "megatron"', 'slurm_job = "12; rm -rf /"')),
    ("deep-array", DEEP_ARRAY),
    ("deep-inline-table", DEEP_TABLE),
    ("moderately-deep-unknown-key", "[site]\nname = \"x\"\nx = " + "[" * 200 + "]" * 200 + "\n"),
    ("int-5000-digits", sub("interval_s = 10", "interval_s = " + "9" * 5000)),
    ("shift-hours-nan", sub("hours = 12", "hours = nan")),
    ("shift-hours-zero", sub("hours = 12", "hours = 0")),
    ("shift-start-25h", sub('start = "08:00"', 'start = "25:00"')),
    ("temp-warn-nan", sub("temp_warn_c = 85", "temp_warn_c = nan")),
    ("temp-crit-1e300", sub("temp_crit_c = 95", "temp_crit_c = 1e300")),
    ("memory-full-zero", sub("memory_full_pct = 99", "memory_full_pct = 0")),
    ("power-warn-negative", sub("power_warn_w = 420", "power_warn_w = -1")),
    ("threshold-vendor-escape", BASE + '\n[thresholds.vendors."\\u001b[31m"]\ntemp_warn_c = 1\n'),
    ("timezone-5000-chars", sub('timezone = "Asia/Shanghai"', 'timezone = "' + "a" * 5000 + '"')),
    ("timezone-directory", sub('timezone = "Asia/Shanghai"', 'timezone = "America"')),
    ("timezone-traversal", sub('timezone = "Asia/Shanghai"', 'timezone = "../../etc/passwd"')),
    ("timezone-nul", sub('timezone = "Asia/Shanghai"', 'timezone = "UTC\\u0000"')),
    ("unknown-table", BASE + "\n[frobnicate]\nx = 1\n"),
    ("unknown-key-escape", sub("[ssh]\n", '[ssh]\n"\\u001b[2J" = 1\n')),
    ("racks-not-array", sub("[[racks]]\nname = \"A01\"\nrow = \"A\"\nslots = 4\n", "racks = 5\n")),
    ("site-as-array", sub("[site]", "[[site]]")),
    ("nodes-as-table", "[site]\nname = \"x\"\n[nodes]\nname = \"n\"\n"),
    ("invalid-utf8", BASE.encode() + b"\n# \xff\xfe\n"),
    ("nul-byte", BASE + "\x00\n"),
    ("bom", "\ufeff" + BASE),
    ("jump-bad-port", sub('vendor = "nvidia"', 'vendor = "nvidia"\njump = "bastion:notaport"')),
    ("jump-port-99999", sub('vendor = "nvidia"', 'vendor = "nvidia"\njump = "ops@bastion:99999"')),
    ("ssh-user-escape", sub('user = "ops"', 'user = "\\u001b[31mroot"')),
    ("adapter-bad-regex", BASE + '\n[[adapters]]\nname = "z"\ntool = "z"\ncommand = "z"\nkind = "csv"\n'
     'block_start = "("\nfields = { index = "i" }\n'),
    ("adapter-command-newline", BASE + '\n[[adapters]]\nname = "z"\ntool = "z"\ncommand = "z\\nreboot"\n'
     'kind = "csv"\nfields = { index = "i" }\n'),
    ("ssh-config-is-directory", sub('config_file = "/nonexistent/mixops-test/ssh_config"', 'config_file = "/"')),
]


@dataclass
class Outcome:
    """One run of the real entry."""

    code: int
    out: str
    err: str


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    capsys.readouterr()
    try:
        code = entry.main([str(a) for a in argv])
    except SystemExit as exc:              # argparse's --help on the window's path: sys.exit in real life
        code = exc.code if isinstance(exc.code, int) else 0
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def assert_clean(o: Outcome, place: str | None = None, max_lines: int | None = None) -> None:
    """The rules of DESIGN §4 for one run."""
    assert o.code in (0, 1, 2), o
    assert "Traceback" not in o.err, o.err
    assert not RAW_CONTROL.search(o.err) and not RAW_CONTROL.search(o.out), (o.out, o.err)
    if o.code == 2:
        lines = o.err.strip("\n").split("\n")
        assert lines and all(line.startswith("mixops") for line in lines), o.err
        if max_lines is not None:
            assert len(lines) <= max_lines, o.err
        if place is not None:
            assert all(place in line for line in lines), (place, o.err)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` on a site that validates: every node is refused at once (the layers above SSH are real)."""

    def refuse(endpoint: object, deadline: float | None = None) -> object:
        raise SSHError("connection refused (test transport)")

    monkeypatch.setattr(cli, "connect_client", refuse)
    yield
    registry.register_adapters(())     # a site's adapters are process-wide once checked


def _write_site(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_base_site_is_valid(tmp_path, capsys, no_network):
    site = _write_site(tmp_path / "site.toml", BASE)
    o = run_main(["check", "--site", site], capsys)
    assert o.code == 1 and "site file" in o.out and "2 not ready" in o.out, o


@pytest.mark.parametrize(("case", "text"), SITE_CASES, ids=[c for c, _ in SITE_CASES])
def test_bad_site_file(tmp_path, capsys, no_network, case, text):
    site = _write_site(tmp_path / "site.toml", text)
    o = run_main(["check", "--site", site], capsys)
    assert o.code == 2, (case, o)
    place = "/" if case == "ssh-config-is-directory" else str(site)
    assert_clean(o, place)


def test_bad_site_files_through_collect_too(tmp_path, capsys, no_network):
    for case, text in SITE_CASES[::7]:
        site = _write_site(tmp_path / f"{case}.toml", text)
        o = run_main(["collect", "--site", site, "--once", "--db", tmp_path / "ops.db"], capsys)
        assert o.code == 2, (case, o)
        assert_clean(o)
    assert not (tmp_path / "ops.db").exists()


# ---- hypothesis: mutations of the valid site file ---------------------------------------------------

_LINES = BASE.splitlines()
_ASSIGN = [i for i, line in enumerate(_LINES) if re.match(r"^\w+ = ", line)]


def _toml_float(x: float) -> str:
    return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(x), repr(x))


def _toml_str(s: str) -> str:
    return json.dumps(s)     # JSON's escapes (\uXXXX, \", \\) are TOML basic-string escapes


_SCALAR = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(_toml_float),
    st.sampled_from(["nan", "+nan", "-nan", "inf", "+inf", "-inf", "1e300", "-1e300", "1e-300", "0", "-0",
                     "true", "false", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "0x7fffffffffffffff",
                     "0o777", "0b1", "99999999999999999999999", "''", '""', "[]", "{}", "'''a\nb'''"]),
    st.text(max_size=30).map(_toml_str),
    st.text(alphabet=st.characters(max_codepoint=0x20ff), max_size=12).map(_toml_str),
)
_VALUE = st.one_of(
    _SCALAR,
    st.lists(_SCALAR, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.integers(1, 2500).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 2500).map(lambda n: "{a = " * n + "1" + "}" * n),
    st.tuples(st.text(max_size=8), _SCALAR).map(lambda kv: "{" + _toml_str(kv[0]) + " = " + kv[1] + "}"),
)
_MUTATION = st.one_of(
    st.tuples(st.just("value"), st.sampled_from(_ASSIGN), _VALUE),
    st.tuples(st.just("duplicate"), st.integers(0, len(_LINES) - 1), st.just("")),
    st.tuples(st.just("delete"), st.integers(0, len(_LINES) - 1), st.just("")),
    st.tuples(st.just("insert"), st.integers(0, len(_LINES)),
              st.tuples(st.text(max_size=10), _VALUE).map(lambda kv: _toml_str(kv[0]) + " = " + kv[1])),
    st.tuples(st.just("truncate"), st.integers(0, len(BASE)), st.just("")),
    st.tuples(st.just("char"), st.integers(0, len(BASE)), st.characters()),
)


def mutate(ops: list[tuple[str, int, str]]) -> str:
    lines = list(_LINES)
    for op, at, value in ops:
        at = min(at, len(lines) - 1) if lines else 0
        if op == "value" and lines and "=" in lines[at]:
            lines[at] = lines[at].split("=", 1)[0] + "= " + value
        elif op == "duplicate" and lines:
            lines.insert(at, lines[at])
        elif op == "delete" and lines:
            del lines[at]
        elif op == "insert":
            lines.insert(at, value)
        elif op in ("truncate", "char"):
            text = "\n".join(lines)
            at = min(at, len(text))
            text = text[:at] if op == "truncate" else text[:at] + value + text[at:]
            lines = text.split("\n")
    return "\n".join(lines) + "\n"


HYPOTHESIS_SITES = 150


def test_mutated_site_files(tmp_path, capsys, no_network):
    """Hypothesis mutations (values, duplicates, deletions, insertions, truncation, stray characters)."""
    seen: dict[int, int] = {}
    site = tmp_path / "site.toml"

    @settings(max_examples=HYPOTHESIS_SITES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(st.lists(_MUTATION, min_size=1, max_size=3))
    def one(ops):
        try:
            site.write_text(mutate(ops), encoding="utf-8")
        except UnicodeEncodeError:          # a lone surrogate character: not a file anyone can write
            site.write_bytes(mutate(ops).encode("utf-8", "surrogatepass"))
        o = run_main(["check", "--site", site], capsys)
        assert_clean(o, None if o.code != 2 else "mixops")
        if o.code == 2:
            assert all(str(site) in line or "ssh_config" in line for line in o.err.strip().split("\n")), o.err
        seen[o.code] = seen.get(o.code, 0) + 1

    one()
    total = sum(seen.values())
    print(f"mutated site files: {total} ({seen.get(2, 0)} exit 2, {seen.get(1, 0)} exit 1, {seen.get(0, 0)} exit 0)")
    assert total >= 100 and seen.get(2, 0) >= 50, seen


def test_site_cases_are_counted():
    print(f"bad site files: {len(SITE_CASES)} hand-written + {HYPOTHESIS_SITES} hypothesis mutations")
    assert len(SITE_CASES) >= 50


# ---- bad command lines ------------------------------------------------------------------------------

@dataclass
class Files:
    """The files bad command lines point at."""

    site: Path
    bad_site: Path
    no_nodes_site: Path
    bad_ssh_config_site: Path
    db: Path
    missing: Path
    empty: Path
    text: Path
    binary: Path
    other_db: Path
    corrupt_db: Path
    directory: Path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    site = _write_site(tmp_path / "site.toml", BASE)
    bad_site = _write_site(tmp_path / "bad.toml", sub("interval_s = 10", "interval_s = nan"))
    no_nodes = _write_site(tmp_path / "nonodes.toml", '[site]\nname = "empty hall"\n')
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host *\n  Port abc\n")
    bad_cfg = _write_site(tmp_path / "badcfg.toml", sub("/nonexistent/mixops-test/ssh_config", str(cfg)))
    db = tmp_path / "ops.db"
    store = Store(str(db))
    store.conn.execute("INSERT INTO incidents(opened_at, severity, state, title, node) "
                       "VALUES (1, 'P2', 'open', 'Xid 79', 'gpu-a01-1')")
    store.close()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    text = tmp_path / "text.txt"
    text.write_text("hello, not a database and not a capture\n" * 20)
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    corrupt = tmp_path / "corrupt.db"
    shutil.copy(db, corrupt)
    data = bytearray(corrupt.read_bytes())
    page = 4096
    for off in range(page, len(data), page):        # every page but the header's: the tables are garbage
        data[off:off + page] = os.urandom(min(page, len(data) - off))
    corrupt.write_bytes(bytes(data))
    directory = tmp_path / "a-directory"
    directory.mkdir()
    return Files(site, bad_site, no_nodes, bad_cfg, db, tmp_path / "typo" / "nope.db", empty, text, binary,
                 other, corrupt, directory)


def command_lines(f: Files) -> list[tuple]:
    """(argv, what its error line must name, exit status); a capture that a named parser cannot read is
    exit 0 with the parser's warnings in the JSON (DESIGN §9), not a usage error."""
    huge = "99999999999999999999999"
    g = f.site
    return [
        (["--bogus"], "--bogus"),
        (["frobnicate"], "frobnicate"),
        (["--db", f.db, "incidents", "list"], "invalid choice"),
        (["collect"], "--site"),
        (["collect", "--site"], "--site"),
        (["collect", "--site", g, "--db", f.db], "--once"),
        (["collect", "--site", g, "--once", "--interval", "5"], "--interval"),
        (["collect", "--site", g, "--interval", "-5"], "--interval"),
        (["collect", "--site", g, "--interval", "0"], "--interval"),
        (["collect", "--site", g, "--interval", "nan"], "--interval"),
        (["collect", "--site", g, "--interval", "inf"], "--interval"),
        (["collect", "--site", g, "--interval", "1e400"], "--interval"),
        (["collect", "--site", g, "--interval", "ten"], "--interval"),
        (["collect", "--site", g, "--interval", "1e9"], "--interval"),
        (["collect", "--site", g, "--once", "--parallel", "0"], "--parallel"),
        (["collect", "--site", g, "--once", "--parallel", "-3"], "--parallel"),
        (["collect", "--site", g, "--once", "--parallel", huge], "--parallel"),
        (["collect", "--site", g, "--once", "--parallel", "2.5"], "--parallel"),
        (["collect", "--site", f.missing, "--once"], str(f.missing)),
        (["collect", "--site", f.directory, "--once"], str(f.directory)),
        (["collect", "--site", "/proc/self/status", "--once"], "/proc/self/status"),
        (["collect", "--site", "/dev/null", "--once"], "/dev/null"),
        (["collect", "--site", "", "--once"], "--site"),
        (["collect", "--site", f.bad_site, "--once", "--db", f.db], str(f.bad_site)),
        (["collect", "--site", f.no_nodes_site, "--once", "--db", f.db], str(f.no_nodes_site)),
        (["collect", "--site", g, "--once", "--db", f.directory], str(f.directory)),
        (["collect", "--site", g, "--once", "--db", "/proc/mixops-test.db"], "/proc/mixops-test.db"),
        (["collect", "--site", g, "--once", "--db", ""], "--db"),
        (["collect", "--site", g, "--once", "--db", f.text], str(f.text)),
        (["check"], "--site"),
        (["check", "--site", f.bad_site], str(f.bad_site)),
        (["check", "--site", f.bad_ssh_config_site], "ssh_config"),
        (["check", "--site", g, "--trust-new=yes"], "--trust-new"),
        (["check", "--site", f.binary], str(f.binary)),
        (["parse"], "file"),
        (["parse", f.missing], str(f.missing)),
        (["parse", f.directory], str(f.directory)),
        (["parse", "/proc/self/mem"], "/proc/self/mem"),
        (["parse", "/dev/zero"], "/dev/zero"),
        (["parse", f.empty], str(f.empty)),
        (["parse", f.binary], str(f.binary)),
        (["parse", f.text], str(f.text)),
        (["parse", FIX / "ascend" / "910b2c-23.0.3-info.txt", "--vendor", "nvidai"], "--vendor"),
        (["parse", f.text, "--vendor", "nvidia", "--command", "nvidia-smi -q -x"], str(f.text), 0),
        (["parse", f.binary, "--vendor", "ascend", "--command", "npu-smi info"], str(f.binary), 0),
        (["parse", f.binary, "--vendor", "nvidia", "--command", "nvidia-smi --query-gpu=index,name"],
         str(f.binary), 0),
        (["incidents"], "ACTION"),
        (["incidents", "frob"], "frob"),
        (["incidents", "list", "--db"], "--db"),
        (["incidents", "list", "--db", f.missing], str(f.missing)),
        (["incidents", "list", "--db", f.directory], str(f.directory)),
        (["incidents", "list", "--db", f.empty], str(f.empty)),
        (["incidents", "list", "--db", f.text], str(f.text)),
        (["incidents", "list", "--db", f.other_db], str(f.other_db)),
        (["incidents", "list", "--db", f.corrupt_db], str(f.corrupt_db)),
        (["incidents", "list", "--db", "/proc/self/status"], "/proc/self/status"),
        (["incidents", "list", "--db", f.db, "--state", "bogus"], "--state"),
        (["incidents", "ack", "abc", "--by", "li", "--db", f.db], "id"),
        (["incidents", "ack", huge, "--by", "li", "--db", f.db], "id"),
        (["incidents", "ack", "-1", "--by", "li", "--db", f.db], "id"),
        (["incidents", "ack", "0", "--by", "li", "--db", f.db], "id"),
        (["incidents", "ack", "1e3", "--by", "li", "--db", f.db], "id"),
        (["incidents", "ack", "1", "--db", f.db], "--by"),
        (["incidents", "ack", "1", "--by", "", "--db", f.db], "--by"),
        (["incidents", "ack", "1", "--by", "\x1b]0;owned\x07li", "--db", f.db], "--by"),
        (["incidents", "ack", "42", "--by", "li", "--db", f.db], str(f.db)),
        (["incidents", "ack", "1", "--by", "li", "--db", f.missing], str(f.missing)),
        (["incidents", "resolve", "1", "--by", "li", "--db", f.missing], str(f.missing)),
        (["incidents", "resolve", "1", "--by", "li", "--note", "", "--db", f.db], "--note"),
        (["incidents", "note", "1", "", "--db", f.db], "text"),
        (["incidents", "note", "1", "reseated", "--db", f.missing], str(f.missing)),
        (["incidents", "note", huge, "reseated", "--db", f.db], "id"),
        (["demo", "--headless", "--days", "-1"], "--days"),
        (["demo", "--headless", "--days", "nan"], "--days"),
        (["demo", "--headless", "--cards", "5"], "--cards"),
        (["demo", "--headless", "--cards", huge], "--cards"),
        (["demo", "--days", "inf"], "--days"),
        (["demo", "--cards", "10"], "--cards"),
        (["gui", "--bogus"], "--bogus"),
        (["gui", "--lang", "fr"], "--lang"),
        (["gui", "--site", ""], "--site"),
        (["gui", "--bogus\x1b]0;owned\x07", "\x1b[2J"], "--bogus\\x1b]0;owned\\x07"),
        (["incidents", "list", "--db", f.db, "\x9b2J"], "\\x9b2J"),
    ]


def test_bad_command_lines(files, capsys, no_network):
    cases = [(c[0], c[1], c[2] if len(c) > 2 else 2) for c in command_lines(files)]
    codes: dict[int, int] = {}
    for argv, place, code in cases:
        o = run_main([str(a) for a in argv], capsys)
        assert o.code == code, (argv, o)
        assert_clean(o, place, max_lines=1)
        codes[o.code] = codes.get(o.code, 0) + 1
    assert not files.missing.parent.exists(), "a command created the mistyped --db's directory"
    print(f"bad command lines: {len(cases)} ({codes}), 0 tracebacks")
    assert len(cases) >= 40


def test_help_texts_exit_0(capsys):
    for argv in (["--help"], ["incidents", "ack", "--help"], ["collect", "--help"], ["report", "--help"]):
        o = run_main(argv, capsys)
        assert o.code == 0 and "usage:" in o.out and o.err == "", (argv, o)
    assert "1 to 4096" in run_main(["collect", "--help"], capsys).out


SUBPROCESS_CASES = [
    (["incidents", "ack", "99999999999999999999999", "--by", "li", "--db", "{db}"], "argument id"),
    (["incidents", "list", "--db", "{missing}"], "no such database"),
    (["check", "--site", "{deep}"], "nested too deeply"),
    (["check", "--site", "{nan}"], "connect_timeout_s: must be > 0"),
    (["collect", "--site", "{site}", "--once", "--parallel", "0"], "--parallel"),
    (["--frobnicate"], "unrecognized arguments"),
]


@pytest.mark.parametrize(("argv", "expected"), SUBPROCESS_CASES, ids=[a[0] + "-" + str(i) for i, (a, _) in enumerate(SUBPROCESS_CASES)])
def test_bad_input_through_a_real_process(tmp_path, argv, expected):
    values = {"db": tmp_path / "ops.db", "missing": tmp_path / "typo" / "x.db",
              "deep": _write_site(tmp_path / "deep.toml", DEEP_ARRAY),
              "nan": _write_site(tmp_path / "nan.toml", sub("connect_timeout_s = 5", "connect_timeout_s = nan")),
              "site": _write_site(tmp_path / "site.toml", BASE)}
    Store(str(values["db"])).close()
    args = [a.format(**{k: str(v) for k, v in values.items()}) for a in argv]
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().split("\n")
    assert line.startswith("mixops") and expected in line, line
    assert not (tmp_path / "typo").exists()


# ---- the defects, one by one --------------------------------------------------------------------------

def test_read_only_filesystem_is_one_line_naming_the_database(tmp_path):
    """A real read-only filesystem (tmpfs remounted ro in a private mount namespace): the database is read,
    but acknowledging is one line naming the file, not sqlite3's traceback."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (mount namespaces) to mount a read-only filesystem")
    db = tmp_path / "ops.db"
    store = Store(str(db))
    store.conn.execute("INSERT INTO incidents(opened_at, severity, state, title) VALUES (1, 'P2', 'open', 't')")
    store.close()
    mnt = tmp_path / "ro"
    mnt.mkdir()
    py, main_py = sys.executable, ROOT / "main.py"
    script = (f"mount -t tmpfs -o size=8m tmpfs {mnt} && cp {db} {mnt}/ops.db && mount -o remount,ro {mnt} && "
              f"{py} {main_py} incidents list --db {mnt}/ops.db; echo rc=$?; "
              f"{py} {main_py} incidents ack 1 --by li --db {mnt}/ops.db; echo rc=$?")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    if "rc=" not in proc.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert "Traceback" not in proc.stderr, proc.stderr
    listing, ack = proc.stdout.split("rc=")[:2], proc.stdout.strip().rsplit("rc=", 1)[1]
    assert "#1" in listing[0] and listing[1].startswith("0"), proc        # reading a read-only medium works
    assert ack == "2", proc
    (line,) = proc.stderr.strip().split("\n")
    assert line.startswith(f"mixops: database {mnt}/ops.db:") and "read-only" in line, line


def test_corrupt_database_is_one_line(files, capsys):
    o = run_main(["incidents", "list", "--db", files.corrupt_db], capsys)
    assert o.code == 2 and o.err.startswith(f"mixops: database {files.corrupt_db}"), o
    assert_clean(o, str(files.corrupt_db), max_lines=1)


def test_reading_commands_create_nothing(tmp_path, capsys):
    typo = tmp_path / "typo" / "x.db"
    for argv in (["incidents", "list", "--db", typo], ["incidents", "list", "--db", typo, "--json"],
                 ["incidents", "ack", "1", "--by", "li", "--db", typo]):
        o = run_main(argv, capsys)
        assert o.code == 2 and "no such database" in o.err, o
    assert list(tmp_path.iterdir()) == []


def test_incidents_list_reads_without_writing(files, capsys):
    def state():
        names = {p.name for p in files.db.parent.iterdir()} - {"ops.db-wal", "ops.db-shm"}   # a WAL reader's
        return files.db.read_bytes(), sorted(names)

    before = state()
    o = run_main(["incidents", "list", "--db", files.db], capsys)
    assert o.code == 0 and "Xid 79" in o.out
    assert state() == before


def test_hostile_text_from_the_database_is_escaped(files, capsys):
    conn = sqlite3.connect(files.db)
    conn.execute("INSERT INTO incidents(opened_at, severity, state, title, node) VALUES "
                 "(2, 'P1', 'open', 'NVRM: Xid \x1b]0;owned\x07 79\nmixops: all clear', 'gpu\x1b[2J\u009b1')")
    conn.commit()
    conn.close()
    o = run_main(["incidents", "list", "--db", files.db], capsys)
    assert o.code == 0 and len(o.out.strip().split("\n")) == 2, o
    assert "\\x1b]0;owned\\x07 79\\x0amixops: all clear" in o.out and "gpu\\x1b[2J\\x9b1" in o.out
    assert_clean(o)
    js = run_main(["incidents", "list", "--db", files.db, "--json"], capsys)
    rows = [json.loads(line) for line in js.out.strip().split("\n")]
    assert rows[0]["node"] == "gpu\x1b[2J\u009b1" and not RAW_CONTROL.search(js.out)


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


class _HostileClient:
    """A node whose shell answers with an OSC title sequence and a forged line instead of tool names."""

    def exec_command(self, command: str, timeout: float | None = None) -> tuple[None, _Stream, _Stream]:
        return None, _Stream(b"nvidia-smi\n\x1b]0;owned\x07\nfake\x1b[1A\x1b[2K\n"), _Stream(b"")

    def close(self) -> None:
        pass


def test_check_escapes_text_from_nodes(tmp_path, capsys, monkeypatch):
    calls = []

    def connect(endpoint, deadline=None):
        calls.append(endpoint.name)
        if endpoint.name == "npu-a01-2":
            raise SSHError("Error reading SSH protocol banner \x1b]0;owned\x07\nmixops: all clear")
        return _HostileClient()

    monkeypatch.setattr(cli, "connect_client", connect)
    site = _write_site(tmp_path / "site.toml", BASE)
    o = run_main(["check", "--site", site], capsys)
    assert sorted(calls) == ["gpu-a01-1", "npu-a01-2"]
    assert o.code == 1 and len(o.out.strip().split("\n")) == 4, o.out    # header, 2 nodes, summary
    assert "\\x1b]0;owned\\x07" in o.out and "\\x0amixops: all clear" in o.out
    assert_clean(o)


def test_control_characters_in_node_names_are_refused_at_load(tmp_path, capsys, no_network):
    site = _write_site(tmp_path / "site.toml", sub('name = "gpu-a01-1"', 'name = "gpu\\u001b]0;x\\u0007"'))
    o = run_main(["check", "--site", site], capsys)
    assert o.err.strip().split("\n")[0] == (
        f"mixops: {site}:20: nodes[0].name: contains the control character \\x1b (at 4): 'gpu\\x1b]0;x\\x07'")


def test_printable_and_json_line():
    assert printable("a\x1b]0;t\x07b\nc\td\x9b\u202ee\x7f") == "a\\x1b]0;t\\x07b\\x0ac\\x09d\\x9b\\u202ee\\x7f"
    assert printable("中文 gpu-a01 ×3 → ok") == "中文 gpu-a01 ×3 → ok"
    text = json_line({"t": "x\x1b\x9b\u202e中"}, indent=2)
    assert json.loads(text) == {"t": "x\x1b\x9b\u202e中"} and not RAW_CONTROL.search(text) and "中" in text
