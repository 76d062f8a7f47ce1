"""mixops entry point: headless commands go to console.cli, everything else opens the GUI."""

from __future__ import annotations

import sys

HEADLESS = {"collect", "check", "parse", "report", "incidents"}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run a headless command or the window."""
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    if first in HEADLESS or (first == "demo" and "--headless" in args) or "-h" in args[:1] or "--help" in args[:1]:
        from console.cli import run

        return run(args)
    from console.cli import UsageError, build_parser

    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if ns.command == "demo":
        print("mixops: the demo site is not in this version yet", file=sys.stderr)
    from widgets.app import run_gui

    return run_gui(site=getattr(ns, "site", None), db=getattr(ns, "db", None),
                   demo=ns.command == "demo" or bool(getattr(ns, "demo", False)))


if __name__ == "__main__":
    sys.exit(main())
