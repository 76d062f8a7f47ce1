"""The command line of DESIGN §4 as an argparse parser: light to import (the GUI starts from it)."""

from __future__ import annotations

import argparse
import sys

from collectors import registry


class UsageError(Exception):
    """Bad input: exit 2 with this one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; --help texts are part of the documentation."""
    p = _Parser(prog="mixops", description="Operations console for AI computing centers with mixed "
                "accelerator vendors. Without a command: the GUI on the configured site, or the demo site.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    g = sub.add_parser("gui", help="open the window (default)")
    g.add_argument("--site", help="site file (default: $MIXOPS_SITE or ~/.config/mixops/site.toml)")
    g.add_argument("--db", help="database file (default: the site's database in ~/.local/share/mixops)")
    g.add_argument("--demo", action="store_true", help="open the simulated demo site")
    g.add_argument("--lang", choices=("en", "zh_CN"), help="UI language (default: setting, then system locale)")

    d = sub.add_parser("demo", help="build or run the simulated demo site")
    d.add_argument("--db", help="database file")
    d.add_argument("--days", type=float, default=None,
                   help="days of history to simulate (default: 1 headless, 2 hours in the window)")
    d.add_argument("--lang", choices=("en", "zh_CN"), help="UI language of the window")
    d.add_argument("--cards", type=int, default=1280,
                   help="size of the simulated center in cards, 64 to 102400 (default 1280: 160 nodes)")
    d.add_argument("--headless", action="store_true",
                   help="build the database (history through the real parsers and store) without a window")

    c = sub.add_parser("collect", help="sweep the site's nodes over SSH into the database")
    c.add_argument("--site", required=True, help="site file (TOML)")
    c.add_argument("--db", help="database file (default: the site's database)")
    mode = c.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one sweep, then exit")
    mode.add_argument("--interval", type=float, metavar="SECONDS",
                      help="sweep every SECONDS until Ctrl-C or SIGTERM (the current sweep is committed)")
    c.add_argument("--parallel", type=int, help="nodes swept at once (default: [ssh] max_parallel, 64)")
    c.add_argument("--quiet", action="store_true", help="print only failures and the summary line")

    k = sub.add_parser("check", help="preflight: site file, reachability, host keys, vendor tools")
    k.add_argument("--site", required=True, help="site file (TOML)")
    k.add_argument("--trust-new", action="store_true",
                   help="record host keys of nodes never seen before in known_hosts (after printing their "
                        "fingerprints); a changed key is never accepted")
    k.add_argument("--db", help="database to record a changed host key in (default: the site's, if it exists)")

    pa = sub.add_parser("parse", help="parse one captured vendor-tool output to JSON on stdout")
    pa.add_argument("file", help="captured output ('-' for stdin)")
    pa.add_argument("--vendor", choices=registry.KNOWN_VENDORS, help="vendor (detected when omitted)")
    pa.add_argument("--command", dest="tool_command", metavar="CMD", help="the command that printed it")
    pa.add_argument("--db", help=argparse.SUPPRESS)

    r = sub.add_parser("report", help="shift handover report from the database (PDF, HTML or Markdown)")
    r.add_argument("--db", help="database file")
    r.add_argument("--shift", help='a shift of the site file: "YYYY-MM-DD NAME" (site timezone)')
    r.add_argument("--from", dest="from_", metavar="ISO", help="window start (ISO date-time, site timezone)")
    r.add_argument("--to", metavar="ISO", help="window end")
    r.add_argument("--lang", choices=("en", "zh_CN"), help="report language (default: from $LANG)")
    r.add_argument("--out", help="output file: .pdf (A4), .html (self-contained) or .md")

    inc = sub.add_parser("incidents", help="list and handle incidents from a terminal")
    isub = inc.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    il = isub.add_parser("list", help="list incidents")
    il.add_argument("--db")
    il.add_argument("--state", choices=("open", "acknowledged", "resolved", "silenced"))
    il.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ia = isub.add_parser("ack", help="acknowledge an incident")
    ia.add_argument("id", type=int)
    ia.add_argument("--by", required=True)
    ia.add_argument("--db")
    ir = isub.add_parser("resolve", help="resolve an incident")
    ir.add_argument("id", type=int)
    ir.add_argument("--by", required=True)
    ir.add_argument("--note")
    ir.add_argument("--db")
    ino = isub.add_parser("note", help="add a note to an incident")
    ino.add_argument("id", type=int)
    ino.add_argument("text")
    ino.add_argument("--db")
    return p
