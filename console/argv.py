"""The command line of DESIGN §4 as an argparse parser: light to import (the GUI starts from it)."""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable

from collectors import registry

# C0 (TAB and newline too: one problem is one line), DEL, C1 (U+0080-U+009F: 0x9b is a CSI on some
# terminals), the line/paragraph separators and the bidirectional overrides that reorder what is shown.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_BEYOND_C0 = re.compile("[\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_ID = 2**63 - 1            # SQLite's INTEGER


def printable(text: str) -> str:
    """Text from a site file, a node or the command line made safe for one terminal line.

    Every control character becomes a visible escape (ESC -> `\\x1b`, newline -> `\\x0a`), so an escape
    sequence (colours, an OSC `ESC]0;title BEL`, a cursor move) is shown as text, never run by the
    terminal, and a newline cannot forge a second line.
    """
    return _UNPRINTABLE.sub(_escape, text)


def json_line(value: object, indent: int | None = None) -> str:
    """JSON for a terminal: readable non-ASCII text, but DEL, C1 and bidi controls as \\u escapes too
    (json.dumps escapes only C0), so the output is still valid JSON and never drives the terminal."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _UNPRINTABLE_BEYOND_C0.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class UsageError(Exception):
    """Bad input: exit 2 with this one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # one line (DESIGN §4), not argparse's usage block: the hint says where the usage is
        # escaped here, as every caller (main.py, the report) prints it as it is
        raise UsageError(printable(f"{self.prog}: {message} (see {self.prog} --help)"))


def _seconds(text: str) -> float:
    """An --interval: a finite number of seconds above 0, at most one day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 86400 seconds, got {text!r}")
    return value


def _days(text: str) -> float:
    """--days: a finite number of days, 0 to 30."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 30:
        raise argparse.ArgumentTypeError(f"must be between 0 and 30 days, got {text!r}")
    return value


def _bounded_int(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo} and {hi}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def _text(what: str, allow_newlines: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        bad = _UNPRINTABLE.search(text.replace("\n", "").replace("\t", "") if allow_newlines else text)
        if bad is not None:
            raise argparse.ArgumentTypeError(f"{what} contains the control character {printable(bad.group())}")
        return text

    parse.__name__ = what
    return parse


def listen_address(text: str) -> tuple[str, int]:
    """--metrics-listen HOST:PORT ("[::1]:9400" for IPv6) as (host, port); port 0: any free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"not HOST:PORT (e.g. 127.0.0.1:9400): {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise argparse.ArgumentTypeError(f"an IPv6 address goes in brackets, e.g. [::1]:9400: {text!r}")
    if not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"the port must be a number from 0 to 65535: {text!r}")
    if not host.strip() or _UNPRINTABLE.search(host) or any(c.isspace() for c in host):
        raise argparse.ArgumentTypeError(f"not a host: {text!r}")
    return host, int(port)


def _url(text: str) -> str:
    """--remote-write URL: http(s)://host[:port]/path."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a URL ({exc}): {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or _UNPRINTABLE.search(text) or " " in text:
        raise argparse.ArgumentTypeError(f"not an http(s) URL, e.g. http://127.0.0.1:9090/api/v1/write: {text!r}")
    return text


MAX_SHARDS = 4_096


def shard(text: str) -> tuple[int, int]:
    """--shard K/N: this collector is shard K (1 to N) of N."""
    k, sep, n = text.strip().partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise argparse.ArgumentTypeError(f"not K/N (e.g. 1/3 for the first of three collectors): {text!r}")
    index, count = int(k), int(n)
    if not 1 <= count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"N must be between 1 and {MAX_SHARDS}, got {text!r}")
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"K must be between 1 and N ({count}), got {text!r}")
    return index, count


_incident_id = _bounded_int(1, MAX_ID, "an incident id")
_path = _text("a path")
_name = _text("a name")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; --help texts are part of the documentation."""
    p = _Parser(prog="mixops", description="Operations console for AI computing centers with mixed "
                "accelerator vendors. Without a command: the GUI on the configured site, or the demo site.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    g = sub.add_parser("gui", help="open the window (default)")
    g.add_argument("--site", type=_path, help="site file (default: $MIXOPS_SITE or ~/.config/mixops/site.toml)")
    g.add_argument("--db", type=_path, help="database file (default: the site's database in ~/.local/share/mixops)")
    g.add_argument("--demo", action="store_true", help="open the simulated demo site")
    g.add_argument("--lang", choices=("en", "zh_CN"), help="UI language (default: setting, then system locale)")
    g.add_argument("--prometheus", type=_url, metavar="URL",
                   help="show the whole site from a Prometheus or VictoriaMetrics that `mixops collect "
                        "--remote-write` (e.g. several --shard K/N collectors) or a scrape of --metrics-listen fills, "
                        "e.g. http://127.0.0.1:8428; no database and no collector of the window's own (not with "
                        "--site, --db or --demo)")

    d = sub.add_parser("demo", help="build or run the simulated demo site")
    d.add_argument("--db", type=_path, help="database file")
    d.add_argument("--days", type=_days, default=None,
                   help="days of history to simulate (default: 1 headless, 2 hours in the window)")
    d.add_argument("--lang", choices=("en", "zh_CN"), help="UI language of the window")
    d.add_argument("--cards", type=_bounded_int(64, 102_400, "a number of cards"), default=1280,
                   help="size of the simulated center in cards, 64 to 102400 (default 1280: 160 nodes)")
    d.add_argument("--headless", action="store_true",
                   help="build the database (history through the real parsers and store) without a window")
    d.add_argument("--interval", type=_seconds, metavar="SECONDS",
                   help="headless: sweep the history every SECONDS, as a real site records it (e.g. 10, the "
                        "demo site's interval_s); default: sparse (10 min, 5 min in the last 6 h, 1 min in the "
                        "last hour), quick to build")

    c = sub.add_parser("collect", help="sweep the site's nodes over SSH into the database")
    c.add_argument("--site", type=_path, required=True, help="site file (TOML)")
    c.add_argument("--db", type=_path, help="database file (default: the site's database)")
    mode = c.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one sweep, then exit")
    mode.add_argument("--interval", type=_seconds, metavar="SECONDS",
                      help="sweep every SECONDS (> 0, at most 86400) until Ctrl-C or SIGTERM (the current "
                           "sweep is committed)")
    c.add_argument("--parallel", type=_bounded_int(1, 4_096, "a number of nodes"), metavar="N",
                   help="nodes swept at once, 1 to 4096 (default: [ssh] max_parallel, 64)")
    c.add_argument("--quiet", action="store_true", help="print only failures and the summary line")
    c.add_argument("--metrics-listen", type=listen_address, metavar="HOST:PORT",
                   help="serve the last sweep at http://HOST:PORT/metrics for Prometheus (mixops_card_*, "
                        "mixops_node_up, incidents, jobs, the collector's health; NVIDIA cards also as "
                        "dcgm-exporter's DCGM_FI_DEV_*); port 0 picks a free port, printed at start")
    c.add_argument("--remote-write", type=_url, metavar="URL",
                   help="push every sweep (the same series) with the Prometheus remote-write protocol to URL, e.g. "
                        "Prometheus's http://HOST:9090/api/v1/write (--web.enable-remote-write-receiver) or "
                        "VictoriaMetrics's http://HOST:8428/api/v1/write; queued on disk beside the database "
                        "(<db>.remote-write, at most 256 MiB) while the store is down")
    c.add_argument("--shard", type=shard, metavar="K/N",
                   help="collect shard K (1 to N) of N: whole rows of racks (else racks, else nodes) balanced over "
                        "N collectors, the same split on every machine and at every restart; the default "
                        "database is then the site's with .shard-K-of-N before .db")

    k = sub.add_parser("check", help="preflight: site file, reachability, host keys, vendor tools")
    k.add_argument("--site", type=_path, required=True, help="site file (TOML)")
    k.add_argument("--trust-new", action="store_true",
                   help="record host keys of nodes never seen before in known_hosts (after printing their "
                        "fingerprints); a changed key is never accepted")
    k.add_argument("--db", type=_path, help="database to record a changed host key in (default: the site's, if it exists)")

    pa = sub.add_parser("parse", help="parse one captured vendor-tool output to JSON on stdout")
    pa.add_argument("file", type=_path, help="captured output ('-' for stdin)")
    pa.add_argument("--vendor", choices=registry.KNOWN_VENDORS, help="vendor (detected when omitted)")
    pa.add_argument("--command", dest="tool_command", metavar="CMD", help="the command that printed it")
    pa.add_argument("--db", type=_path, help=argparse.SUPPRESS)

    r = sub.add_parser("report", help="shift handover report from the database (PDF, HTML or Markdown)")
    r.add_argument("--db", type=_path, help="database file")
    r.add_argument("--shift", help='a shift of the site file: "YYYY-MM-DD NAME" (site timezone)')
    r.add_argument("--from", dest="from_", metavar="ISO", help="window start (ISO date-time, site timezone)")
    r.add_argument("--to", metavar="ISO", help="window end")
    r.add_argument("--lang", choices=("en", "zh_CN"), help="report language (default: from $LANG)")
    r.add_argument("--out", help="output file: .pdf (A4), .html (self-contained) or .md")

    inc = sub.add_parser("incidents", help="list and handle incidents from a terminal")
    isub = inc.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    il = isub.add_parser("list", help="list incidents")
    il.add_argument("--db", type=_path, help="database file (must exist; default: the configured site's)")
    il.add_argument("--state", choices=("open", "acknowledged", "resolved", "silenced"))
    il.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ia = isub.add_parser("ack", help="acknowledge an incident")
    ia.add_argument("id", type=_incident_id, help="incident number (as `incidents list` shows it)")
    ia.add_argument("--by", type=_name, required=True, help="who acknowledges")
    ia.add_argument("--db", type=_path, help="database file (must exist)")
    ir = isub.add_parser("resolve", help="resolve an incident")
    ir.add_argument("id", type=_incident_id, help="incident number")
    ir.add_argument("--by", type=_name, required=True, help="who resolves")
    ir.add_argument("--note", type=_text("a note", allow_newlines=True), help="what was done")
    ir.add_argument("--db", type=_path, help="database file (must exist)")
    ino = isub.add_parser("note", help="add a note to an incident")
    ino.add_argument("id", type=_incident_id, help="incident number")
    ino.add_argument("text", type=_text("a note", allow_newlines=True), help="the note")
    ino.add_argument("--db", type=_path, help="database file (must exist)")
    ex = sub.add_parser("export", help="every stored full-resolution sample of a range, as CSV or OpenMetrics")
    ex.add_argument("--db", type=_path, help="database file (must exist; default: the configured site's)")
    ex.add_argument("--from", dest="from_", metavar="ISO",
                    help="range start (ISO date-time; the site's timezone when none is given; default: the oldest held)")
    ex.add_argument("--to", metavar="ISO", help="range end, exclusive (default: now)")
    ex.add_argument("--cards", metavar="GLOB",
                    help="cards whose node/index (e.g. 'gpu-a01-*/0'), node or serial matches (default: all)")
    ex.add_argument("--format", choices=("csv", "openmetrics"), required=True,
                    help="csv: one line per card-sample, empty where not reported; openmetrics: DESIGN §8 "
                         "names, for `promtool tsdb create-blocks-from openmetrics`")
    ex.add_argument("--out", type=_path, required=True, help="output file, or - for stdout")
    return p
