"""The headless commands of DESIGN §4: check, collect, parse, incidents (report comes later)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import stat
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import paramiko

from collectors import registry
from collectors.model import NodeReport
from collectors.ssh import Endpoint, HostKeyChanged, HostKeyUnknown, SSHError, connect_client, trust_host_key
from console import incidents, paths
from console.argv import UsageError, build_parser, json_line, printable
from console.parse_cmd import ParseInputError, parse_capture, to_json
from console.site import Site, SiteError, load_site, shard_group, shard_site, source_nodes
from console.store import SCHEMA_VERSION, Store, StoreError

EXIT_OK, EXIT_NODES_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MAX_CAPTURE_BYTES = 64 * 1024 * 1024


def say(*parts: object, err: bool = False) -> None:
    """Print one line to the terminal with every control character shown as an escape (never run)."""
    print(printable(" ".join(str(p) for p in parts)), file=sys.stderr if err else sys.stdout, flush=err)


def _db_path(args: argparse.Namespace, site: Site | None) -> str:
    if getattr(args, "db", None):
        path = str(args.db)
    elif site is not None:
        path = str(paths.default_db(site.name))
    else:
        configured = paths.configured_site()
        if configured is None:
            raise UsageError("no --db given and no site configured ($MIXOPS_SITE or ~/.config/mixops/site.toml)")
        path = str(paths.default_db(load_site(configured).name))
    args.db_file = path          # named by the one line run() prints for a database error
    return path


def _existing_db(path: str) -> None:
    """A command that only reads or changes incidents never creates a database: it must exist already.

    A mistyped --db would otherwise be a new empty database and a false "no incidents" (issue 16).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such database (check --db; this command never creates one)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot open database: {exc.strerror or exc}") from None
    except ValueError:          # an embedded NUL
        raise UsageError(f"{path!r}: not a database path") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path}: is a directory, not a database")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path}: not a regular file, not a database")
    if st.st_size == 0:
        raise UsageError(f"{path}: empty file, not a mixops database")


def _connect_readonly(path: str) -> sqlite3.Connection:
    """mode=ro; on a read-only medium (no -shm can be made beside a WAL database) immutable=1, which is
    safe there because nobody can be writing the file either."""
    absolute = os.path.abspath(path)
    uri = "file:" + urllib.parse.quote(absolute) + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        if os.access(os.path.dirname(absolute), os.W_OK):
            raise
        conn = sqlite3.connect(uri + "&immutable=1", uri=True)
    return conn


def _read_only_hint(path: str) -> str:
    """Why a database cannot be written, when the reason is plain: the file or its directory is read-only."""
    absolute = os.path.abspath(path)
    if os.path.exists(absolute) and not (os.access(absolute, os.W_OK) and os.access(os.path.dirname(absolute), os.W_OK)):
        return " (the file or its directory is read-only)"
    return ""


@contextlib.contextmanager
def _reading(path: str) -> Iterator[sqlite3.Connection]:
    """`_open_reader` for a `with` block: the connection (or the migrating store) closed after it."""
    conn, store = _open_reader(path)
    try:
        yield conn
    finally:
        if store is not None:
            store.close()
        else:
            conn.close()


def _open_reader(path: str) -> tuple[sqlite3.Connection, Store | None]:
    """An existing database opened read-only (a read-only file or filesystem is fine for reading).

    A database of an older schema is migrated through the store first (it exists: this creates nothing).
    """
    _existing_db(path)
    conn = _connect_readonly(path)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "incidents" not in tables and (version == 0 or "nodes" not in tables):
        conn.close()
        raise StoreError(f"{path}: not a mixops database (no incidents table)")
    if version < SCHEMA_VERSION:
        conn.close()
        store = Store(path, lock=False)         # a migration, not a collector: no writer lock
        return store.conn, store
    return conn, None


# ---- collect ---------------------------------------------------------------------------------------

def cmd_collect(args: argparse.Namespace) -> int:
    """`mixops collect`: one sweep or a sweep every interval; exit 1 if nodes failed.

    With --interval, a database that cannot be written for a while (another process holds its write lock,
    the disk is full) does not end the collector: it says so once, keeps sweeping into memory (bounded,
    console.service.HOLD_ROWS), writes the held sweeps in order when it can, and says so again.
    """
    from console.service import HOLD_ROWS, Collector

    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if args.interval is not None:       # first: a stop asked during the start still ends after one sweep
        if args.interval <= 0:
            raise UsageError("--interval must be > 0")
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
    site = load_site(args.site)
    if not site.nodes:
        raise UsageError(f"{args.site}: no [[nodes]] to collect")
    db_path = None
    if args.shard is not None:
        index, count = args.shard
        whole = site
        site = shard_site(site, index, count)
        if not site.nodes:
            groups = len({shard_group(whole, n) for n in whole.nodes})
            raise UsageError(f"--shard {index}/{count}: no nodes in this shard (the site has {groups} row/rack/node "
                             f"group(s), each collected whole by one shard)")
        say(f"mixops: shard {index}/{count}: {len(site.nodes)} of {len(whole.nodes)} nodes "
            f"({', '.join(sorted({shard_group(whole, n) for n in site.nodes}))})", err=True)
        if not getattr(args, "db", None):
            default = paths.default_db(site.name)
            db_path = str(default.with_name(f"{default.stem}.shard-{index}-of-{count}{default.suffix}"))
            args.db_file = db_path
    via_source = source_nodes(site)
    for node in site.nodes:            # ~/.ssh/config problems (a bad Port) before any database is made
        if node.name not in via_source:
            site.endpoint(node)
    store = Store(db_path or _db_path(args, site))     # the writer lock: a second collector stops here, exit 2
    for notice in store.notices:
        say(f"mixops: database {notice}", err=True)
    any_failed = False
    trouble: str | None = None         # the database problem last told (told once, and once when it ends)
    collector = None
    exporter = None
    writer = None
    snapshots = None
    try:
        if args.metrics_listen is not None or args.remote_write is not None:
            from console.metrics import Exporter, ListenError, RemoteWriter, Snapshots

            shard = f"{args.shard[0]}/{args.shard[1]}" if args.shard is not None else None
            snapshots = Snapshots(site, shard)
        if args.metrics_listen is not None:         # after the writer lock: a second collector stops there first
            try:
                host, port = args.metrics_listen
                exporter = Exporter(site, host, port, shard=shard)
            except ListenError as exc:
                raise UsageError(printable(str(exc))) from None
            say(f"mixops: serving /metrics on {exporter.url}", err=True)
        if args.remote_write is not None:
            writer = RemoteWriter(args.remote_write, store.path + ".remote-write",
                                  tell=lambda line: say(f"mixops: {printable(line)}", err=True))
        collector = Collector(site, store, args.parallel, hold_rows=HOLD_ROWS if args.interval is not None else 0)
        while True:
            t0 = time.monotonic()
            summary = collector.sweep()
            if snapshots is not None:
                families = snapshots.update(summary, store)
                if exporter is not None:
                    exporter.set(families)
                if writer is not None:
                    writer.push(families, summary.started + summary.duration_s)
            any_failed = bool(summary.failed)
            down = _source_down(summary.reports)
            for error, names in down.items():           # one line for all the nodes of a source that is down
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                say(f"{', '.join(names[:3])}{more} ({len(names)} node(s)): FAILED: {error}", err=True)
            for r in summary.reports:
                if not r.ok and r.error not in down:
                    say(f"{r.node}: FAILED: {r.error}", err=True)
                elif r.warnings and not args.quiet:
                    for w in r.warnings[:3]:
                        say(f"{r.node}: warning: {w}", err=True)
            ok = len(summary.reports) - len(summary.failed)
            cards = sum(len(r.cards) for r in summary.reports)
            where = (f"held in memory ({summary.held} sweeps)" if summary.store_problem is not None
                     else store.path)
            say(f"sweep {summary.sweep_id or '-'}: {ok} ok, {len(summary.failed)} failed, {len(summary.stale)} stale, "
                f"{cards} cards in {summary.duration_s:.2f} s -> {where}")
            sys.stdout.flush()
            trouble = _tell_store_trouble(store, summary.store_problem, trouble, summary.written, summary.dropped)
            if args.once or stop.is_set():
                break
            stop.wait(max(0.0, args.interval - (time.monotonic() - t0)))
            if stop.is_set():
                break
        if collector.held:
            problem = collector.flush()
            if problem is not None:
                say(f"mixops: database {store.path}: {collector.held} held sweep(s) not written at stop: {problem}",
                    err=True)
                return EXIT_BAD_INPUT
    finally:
        if exporter is not None:
            exporter.close()
        if writer is not None:
            writer.close()
        if collector is not None:
            collector.close()
        store.close()
    return EXIT_NODES_FAILED if any_failed else EXIT_OK


def _source_down(reports: tuple[NodeReport, ...]) -> dict[str, list[str]]:
    """The nodes that failed because their [[sources]] entry could not be read, by that one error."""
    out: dict[str, list[str]] = {}
    for r in reports:
        if not r.ok and r.error is not None and r.error.startswith("source unavailable: "):
            out.setdefault(r.error, []).append(r.node)
    return out


def _tell_store_trouble(store: Store, problem: str | None, told: str | None, written: int, dropped: int) -> str | None:
    """One line on stderr when the database stops taking sweeps (or the cause changes) and one when it takes
    them again; returns the problem now told. While in trouble a write waits at most 1 s for a lock, so the
    sweeps keep their cadence and SIGTERM is answered at once."""
    from console.service import HOLD_ROWS

    if problem is not None and problem != told:
        say(f"mixops: database {store.path}: cannot write: {problem}{_read_only_hint(store.path)}; collecting on, "
            f"sweeps held in memory (up to {HOLD_ROWS:,} rows) and written when it can", err=True)
        store.set_busy_timeout(min(1.0, store.busy_timeout_s))
    elif problem is None and told is not None:
        lost = f"; the samples of the {dropped} oldest held sweep(s) did not fit in memory" if dropped else ""
        say(f"mixops: database {store.path}: writing again ({max(0, written - 1)} held sweep(s) written in order, "
            f"then this one){lost}", err=True)
        store.set_busy_timeout(store.busy_timeout_s)
    return problem


# ---- check -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class CheckResult:
    """One node's preflight outcome."""

    node: str
    address: str
    ok: bool
    hostkey: str
    detail: str
    changed_fingerprint: str | None = None


_trust_lock = threading.Lock()


def _check_node(ep: Endpoint, vendor: str | None, trust_new: bool) -> CheckResult:
    address = f"{ep.host}:{ep.port}" + (f" via {ep.jump.host}:{ep.jump.port}" if ep.jump else "")
    try:
        try:
            client = connect_client(ep)
            hostkey = "known"
        except HostKeyUnknown as exc:
            if not trust_new:
                return CheckResult(ep.name, address, False, "UNKNOWN",
                                   f"host key {exc.key.get_name()} {exc.fingerprint} is not in "
                                   f"{ep.known_hosts}; verify it, then run again with --trust-new")
            with _trust_lock:
                say(f"{ep.name}: trusting new host key {exc.key.get_name()} {exc.fingerprint} "
                    f"for {ep.known_hosts_entry} -> {ep.known_hosts}")
                sys.stdout.flush()
                trust_host_key(ep, exc.key)
            client = connect_client(ep)
            hostkey = "trusted now"
    except HostKeyChanged as exc:
        return CheckResult(ep.name, address, False, "CHANGED", str(exc), exc.fingerprint)
    except SSHError as exc:
        return CheckResult(ep.name, address, False, "-", str(exc))
    try:
        probe = registry.detect_command().shell + "; command -v timeout >/dev/null || echo NO-TIMEOUT"
        _in, out, _err = client.exec_command(probe, timeout=ep.command_timeout_s)
        text = out.read().decode("utf-8", "replace")
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        return CheckResult(ep.name, address, False, hostkey, f"cannot run commands: {exc}")
    client.close()
    tools = [t for t in text.split() if t != "NO-TIMEOUT"]
    detected = registry.detect("\n".join(tools))
    problems = []
    if "NO-TIMEOUT" in text:
        problems.append("coreutils `timeout` missing on the node")
    reader = registry.get(vendor) if vendor is not None else None
    if vendor is not None and reader is not None:
        wanted = reader.tools
        if not any(t in tools for t in wanted):
            problems.append(f"site says vendor {vendor} but {'/'.join(wanted)} is not on PATH")
    elif vendor is not None:
        problems.append(f"vendor {vendor} has no collector in this version of mixops")
    elif detected is None:
        problems.append("no known vendor tool on PATH")
    detail = f"tools: {', '.join(tools) or 'none'}; vendor: {vendor or detected or '?'}"
    if problems:
        detail += "; " + "; ".join(problems)
    return CheckResult(ep.name, address, not problems, hostkey, detail)


def _check_sources(site: Site, via_source: dict[str, int]) -> list[CheckResult]:
    """The nodes of [[sources]]: one query per source, as a sweep reads them (cards found, or why not)."""
    from console.promsource import PromNodeCollector, PromSource

    out: list[CheckResult] = []
    for i, src in enumerate(site.sources):
        members = [n for n in site.nodes if via_source.get(n.name) == i]
        if not members:
            continue
        source = PromSource(src, members, site.interval_s)
        try:
            source.start()
            for n in members:
                report = PromNodeCollector(source, n).sweep()
                if report.ok:
                    detail = f"{len(report.cards)} {report.vendor} card(s) read by PromQL"
                else:
                    detail = report.error or "failed"
                out.append(CheckResult(n.name, src.url, report.ok, "-", detail))
        finally:
            source.close()
    return out


def cmd_check(args: argparse.Namespace) -> int:
    """`mixops check`: one line per node; exit 1 if any node is not ready."""
    site = load_site(args.site)
    registry.register_adapters(site.adapters)
    say(f"site file {args.site}: ok ({len(site.nodes)} nodes, {len(site.racks)} racks, {len(site.jobs)} jobs)")
    via_source = source_nodes(site)
    eps = [(site.endpoint(n), n.vendor) for n in site.nodes if n.name not in via_source]
    with ThreadPoolExecutor(max_workers=max(1, min(site.ssh.max_parallel, len(eps) or 1))) as pool:
        results = list(pool.map(lambda e: _check_node(e[0], e[1], args.trust_new), eps))
    results += _check_sources(site, via_source)
    order = {n.name: i for i, n in enumerate(site.nodes)}
    results.sort(key=lambda r: order.get(r.node, 0))
    names = [printable(r.node) for r in results]     # padded after escaping, so the columns line up
    width = max((len(n) for n in names), default=4)
    for name, r in zip(names, results, strict=True):
        status = "ok" if r.ok else "FAIL"
        say(f"{name:<{width}}  {status:<4}  {printable(r.address):<21}  host key {r.hostkey:<11}  {r.detail}")
    changed = [r for r in results if r.hostkey == "CHANGED"]
    if changed:
        db = args.db or (str(paths.default_db(site.name)) if paths.default_db(site.name).exists() else None)
        if db:
            args.db_file = db
            store = Store(db, lock=False)       # one fault row beside a running collector
            for r in changed:
                store.add_fault(time.time(), r.node, "ssh-hostkey-changed", "critical", "isolate", r.detail)
            store.close()
    bad = sum(1 for r in results if not r.ok)
    say(f"{len(results) - bad} ready, {bad} not ready")
    return EXIT_NODES_FAILED if bad else EXIT_OK


# ---- parse -----------------------------------------------------------------------------------------

def cmd_parse(args: argparse.Namespace) -> int:
    """`mixops parse FILE`: the contract JSON on stdout."""
    data = _read_capture(args.file)
    text = data.decode("utf-8", errors="replace")
    try:
        result = parse_capture(text, args.vendor, args.tool_command)
    except ParseInputError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    print(json_line(to_json(result), indent=2))
    return EXIT_OK


def _read_capture(name: str) -> bytes:
    """A capture file's bytes (or stdin's); a directory, a device, a huge or unreadable file is one line."""
    if name == "-":
        data = sys.stdin.buffer.read(MAX_CAPTURE_BYTES + 1)
    else:
        try:
            st = os.stat(name)
            if stat.S_ISDIR(st.st_mode):
                raise UsageError(f"{name}: is a directory, not a capture file")
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
                raise UsageError(f"{name}: not a regular file")
            with Path(name).open("rb") as fh:
                data = fh.read(MAX_CAPTURE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from None
        except ValueError:
            raise UsageError(f"{name!r}: not a file name") from None
    if len(data) > MAX_CAPTURE_BYTES:
        raise UsageError(f"{name}: larger than {MAX_CAPTURE_BYTES // (1024 * 1024)} MiB: not one captured output")
    return data


# ---- incidents -------------------------------------------------------------------------------------

def cmd_incidents(args: argparse.Namespace) -> int:
    """`mixops incidents …` over the incidents table of an existing database."""
    path = _db_path(args, None)
    store: Store | None
    if args.action == "list":
        conn, store = _open_reader(path)
    else:
        _existing_db(path)
        store = Store(path, lock=False)         # an operator's write beside a running collector
        conn = store.conn
    try:
        if args.action == "list":
            sql = ("SELECT id, opened_at, severity, state, title, node, card_idx, job, acknowledged_at, "
                   "acknowledged_by, resolved_at, resolved_by, code, action, count, suppressed_by FROM incidents"
                   + (" WHERE state = ?" if args.state else "") + " ORDER BY severity, opened_at")
            cur = conn.execute(sql, (args.state,) if args.state else ())
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, row, strict=True)) for row in cur]
            if args.json:
                for row in rows:
                    print(json_line(row))
            elif not rows:
                print("no incidents" + (f" in state {args.state}" if args.state else ""))
            else:
                for row in rows:
                    hidden = f"  (suppressed by #{row['suppressed_by']})" if row["suppressed_by"] else ""
                    repeats = f" ×{row['count']}" if row["count"] and row["count"] > 1 else ""
                    node = printable(str(row["node"] or "-"))
                    say(f"#{row['id']:<5} {row['severity']}  {row['state']:<12} {node:<16} "
                        f"{row['title']}{repeats}  → {row['action'] or '-'}{hidden}")
            return EXIT_OK
        try:
            if args.action == "ack":
                incidents.acknowledge(conn, args.id, args.by)
            elif args.action == "resolve":
                incidents.resolve(conn, args.id, args.by, args.note)
            elif args.action == "note":
                incidents.add_note(conn, args.id, os.environ.get("USER") or "unknown", args.text)
        except incidents.IncidentError as exc:
            raise UsageError(f"{exc} ({path})") from None
        print(f"incident {args.id}: {args.action} done")
        return EXIT_OK
    finally:
        if store is not None:
            store.close()
        else:
            conn.close()


def _progress_line(fraction: float) -> None:
    print(f"\rmixops demo: building history {fraction * 100:5.1f} %", end="", file=sys.stderr, flush=True)
    if fraction >= 1.0:
        print(file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    """`demo --headless`: build the simulated site's database."""
    from console import demo

    if not args.headless:
        raise UsageError("mixops demo: without --headless the demo opens in the window")
    if not 64 <= args.cards <= demo.MAX_CARDS:
        raise UsageError(f"mixops demo: --cards must be between 64 and {demo.MAX_CARDS}")
    if args.days is None:
        args.days = 1.0
    if not 0 <= args.days <= 30:
        raise UsageError("mixops demo: --days must be between 0 and 30")
    path = args.db or str(paths.data_dir() / "demo.db")
    try:
        demo.replace_demo_db(path)
    except (FileExistsError, OSError) as exc:
        raise UsageError(f"mixops demo: {exc}") from exc
    summary = demo.build_history(path, args.days, args.cards, interval=args.interval,
                                 progress=_progress_line if args.interval is not None else None)
    print(f"DEMO database {summary.path}: {summary.nodes} nodes, {summary.cards} cards, "
          f"{summary.days:g} day(s) in {summary.sweeps} sweeps"
          f"{f' every {args.interval:g} s' if args.interval is not None else ''}, built in {summary.seconds:.1f} s")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """`mixops export`: the samples of a range, read through the store's history (head rows and chunks)."""
    from console import export
    from console.reports import ReportError, parse_when

    path = _db_path(args, None)
    with _reading(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
        tz = str(row[0]) if row else "UTC"
        try:
            start = parse_when(args.from_, tz, "--from") if args.from_ else None
            end = parse_when(args.to, tz, "--to") if args.to else None
        except ReportError as exc:
            raise UsageError(f"mixops export: {exc}") from None
        lo, hi = export.iter_range(start, end)
        if hi <= lo:
            raise UsageError("mixops export: --to must be after --from")
        chosen = export.cards(conn, args.cards)
        write = export.write_csv if args.format == "csv" else export.write_openmetrics
        if args.out == "-":
            n = write(conn, sys.stdout, lo, hi, chosen)
            sys.stdout.flush()
        else:
            tmp = f"{args.out}.part"
            with open(tmp, "w", encoding="utf-8", newline="") as out:
                n = write(conn, out, lo, hi, chosen)
            os.replace(tmp, args.out)       # a file half written is never left under the asked name
        say(f"mixops export: {n:,} samples of {len(chosen):,} cards -> {args.out}", err=True)
        return EXIT_OK


def run(argv: list[str]) -> int:
    """Run a headless command; every expected failure becomes one line on stderr and exit 2.

    The environment's errors (a database that cannot be written, a file that cannot be read) are one line
    naming the file; a bug in mixops still shows its traceback.
    """
    parser = build_parser()
    args = argparse.Namespace()
    try:
        parser.parse_args(argv, namespace=args)
        handler = {"collect": cmd_collect, "check": cmd_check, "parse": cmd_parse,
                   "incidents": cmd_incidents, "demo": cmd_demo, "export": cmd_export}.get(args.command)
        if handler is None:
            raise UsageError(f"mixops {args.command}: not available in this version yet")
        return handler(args)
    except SystemExit as exc:          # --help (argparse exits after printing it)
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except UsageError as exc:
        say(f"mixops: {exc}" if not str(exc).startswith("mixops") else str(exc), err=True)
        return EXIT_BAD_INPUT
    except SiteError as exc:
        for problem in exc.problems:
            say(f"mixops: {problem}", err=True)
        return EXIT_BAD_INPUT
    except StoreError as exc:
        db = getattr(args, "db_file", None)
        say(f"mixops: database {exc}{_read_only_hint(db) if db else ''}", err=True)
        return EXIT_BAD_INPUT
    except sqlite3.Error as exc:       # e.g. "attempt to write a readonly database", "disk I/O error"
        db = getattr(args, "db_file", None) or getattr(args, "db", None)
        say(f"mixops: database {db or '?'}: {exc}{_read_only_hint(db) if db else ''}", err=True)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:             # a file the command needs: known_hosts, a key, the output directory
        where = f"{exc.filename}: " if exc.filename else ""
        say(f"mixops: {where}{exc.strerror or exc}", err=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("mixops: interrupted", err=True)
        return 130
