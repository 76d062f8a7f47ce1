"""mixops entry point: headless commands go to console.cli, everything else opens the GUI."""

from __future__ import annotations

import sys

HEADLESS = {"collect", "check", "parse", "incidents", "export"}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run a headless command or the window."""
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    if first == "report" and not ({"-h", "--help"} & set(args)):
        # headless too, but the PDF and the heatmap image are Qt painting: widgets renders them
        from widgets.report import run_report_cli

        return run_report_cli(args)
    if first in HEADLESS or (first == "demo" and "--headless" in args) or "-h" in args[:1] or "--help" in args[:1]:
        from console.cli import run

        return run(args)
    from console.argv import UsageError, build_parser

    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    days = getattr(ns, "days", None)
    cards = getattr(ns, "cards", 1280)
    if not 64 <= cards <= 102_400 or (days is not None and not 0 <= days <= 30):
        print("mixops demo: --cards must be 64..102400 and --days 0..30", file=sys.stderr)
        return 2
    from widgets.app import run_gui

    code = run_gui(site=getattr(ns, "site", None), db=getattr(ns, "db", None),
                   demo=ns.command == "demo" or bool(getattr(ns, "demo", False)),
                   language=getattr(ns, "lang", None), cards=cards,
                   history_s=7200.0 if days is None else days * 86400.0,
                   prometheus=getattr(ns, "prometheus", None))
    return code


def entry() -> None:
    """The program (`python main.py`, the `mixops` script)."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
