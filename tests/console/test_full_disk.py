"""`collect --interval` survives a full disk and a write lock held past the busy timeout (issue 16 #4).

Real parts: a real collector process, real sshd nodes, a real tiny filesystem (tmpfs mounted in a private
mount namespace, else the collector's RLIMIT_FSIZE), a real second process holding `BEGIN EXCLUSIVE`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.collectproc import ROOT, Collect, committed, integrity, sweeps, wait_until

pytestmark = pytest.mark.sshd

TINY_MIB = 3


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem says ENOSPC (a bounded number of chunks)."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as fh:
        for _ in range(TINY_MIB * 16 + 16):
            try:
                fh.write(chunk)
                fh.flush()
            except OSError:
                break
        else:
            raise AssertionError("the tiny filesystem never filled up")
    return filler


@contextlib.contextmanager
def _tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TINY_MIB MiB, or a skip when this machine cannot mount one."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY_MIB}m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the RLIMIT_FSIZE test covers it")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _trouble_and_back(run: Collect, db: Path, before: list[tuple[object, ...]], end_trouble, cause: str) -> None:
    """The collector tells the trouble once, holds sweeps, writes them all when it ends, tells that once."""
    wait_until(lambda: run.held() >= 4 or not run.alive(), "4 sweeps held in memory")
    assert run.alive(), run.stderr()
    (told,) = run.lines("cannot write")
    assert told.startswith(f"mixops: database {db}: cannot write: {cause}") and "held in memory" in told, told
    held = run.held()
    end_trouble()
    wait_until(lambda: run.lines("writing again") or not run.alive(), "the collector writes again")
    (back,) = run.lines("writing again")
    assert back.startswith(f"mixops: database {db}: writing again (")
    written = run.written()
    wait_until(lambda: run.written() >= written + 2, "2 more sweeps written")
    assert run.stop() == 0, run.stderr()
    assert "Traceback" not in run.stderr()
    assert len(run.lines("cannot write")) == 1 and len(run.lines("writing again")) == 1
    after = committed(db)
    assert after[:len(before)] == before                     # nothing committed before is lost or changed
    assert len(after) >= len(before) + held + 2               # the held sweeps were written, in order
    for _sid, _started, _finished, cards, outcomes, samples in after:
        assert outcomes == 2 and samples == cards == 8
    assert [row[1] for row in after] == sorted(row[1] for row in after)
    assert integrity(db) == "ok"


def test_full_disk_never_ends_the_collector(fleet, tmp_path):
    fleet.start(2, "nvidia")
    site = fleet.site_toml()
    with _tiny_fs(tmp_path) as mnt:
        db = mnt / "ops.db"
        run = Collect(tmp_path, site, db, interval=0.1)
        try:
            wait_until(lambda: sweeps(db) >= 3, "3 sweeps committed")
            filler = _fill(mnt)
            wait_until(lambda: bool(run.lines("cannot write")) or not run.alive(), "the disk is found full")
            before = committed(db)
            _trouble_and_back(run, db, before, filler.unlink, "database or disk is full")
        finally:
            run.kill()


def test_restart_on_a_full_disk_is_one_line(fleet, tmp_path):
    """Issue 16: a restart while the disk was still full gave a traceback (1 of 2 tries). Here 2 `--once`
    restarts exit 2 with one line; 2 `--interval` restarts run on, holding sweeps; the last one writes
    them once there is room."""
    fleet.start(2, "nvidia")
    site = fleet.site_toml()
    with _tiny_fs(tmp_path) as mnt:
        db = mnt / "ops.db"
        run = Collect(tmp_path, site, db, interval=0.1)
        try:
            wait_until(lambda: sweeps(db) >= 3, "3 sweeps committed")
            filler = _fill(mnt)
            wait_until(lambda: bool(run.lines("cannot write")) or not run.alive(), "the disk is found full")
            run.kill()                                   # SIGKILL while full: no clean close
            before = committed(db)
            for attempt in range(2):
                once = Collect(tmp_path, site, db, interval=None)
                assert once.wait() == 2
                lines = once.stderr().splitlines()
                assert len(lines) == 1 and lines[0].startswith(f"mixops: database {db}: "), lines
                assert lines[0].endswith("database or disk is full") and "Traceback" not in once.stderr()
                again = Collect(tmp_path, site, db, interval=0.1)
                wait_until(lambda: again.held() >= 2 or not again.alive(), "the restarted collector holds sweeps")
                assert again.alive(), again.stderr()
                (told,) = again.stderr().splitlines()
                assert told.startswith(f"mixops: database {db}: cannot write: database or disk is full; ")
                if attempt == 0:
                    assert again.stop() == 2                    # stopped while full: one more line says so
                    assert len(again.lines("not written at stop: database or disk is full")) == 1
                    assert "Traceback" not in again.stderr()
            held = again.held()
            filler.unlink()
            wait_until(lambda: again.lines("writing again") or not again.alive(), "the restarted one writes")
            assert again.stop() == 0 and "Traceback" not in again.stderr()
            after = committed(db)
            assert after[:len(before)] == before and len(after) >= len(before) + held
            assert integrity(db) == "ok"
        finally:
            run.kill()


def test_rlimit_fsize_full_disk_then_lifted(fleet, tmp_path):
    """The same without a mount: the collector's RLIMIT_FSIZE (SIGXFSZ ignored, so writes fail with EFBIG),
    lifted from outside with prlimit while it runs."""
    if not hasattr(resource, "prlimit"):
        pytest.skip("needs resource.prlimit (Linux)")
    fleet.start(2, "nvidia")
    site, db = fleet.site_toml(), tmp_path / "ops.db"
    Collect(tmp_path, site, db, interval=None).wait()          # the file and its WAL exist at full size
    for _ in range(3):
        Collect(tmp_path, site, db, interval=None).wait()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(db)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 8192, resource.RLIM_INFINITY))

    run = Collect(tmp_path, site, db, interval=0.1, preexec=limit)
    try:
        wait_until(lambda: bool(run.lines("cannot write")) or not run.alive(), "the file limit is reached")
        before = committed(db)
        _trouble_and_back(run, db, before,
                          lambda: resource.prlimit(run.pid, resource.RLIMIT_FSIZE,
                                                   (resource.RLIM_INFINITY, resource.RLIM_INFINITY)),
                          "")
    finally:
        run.kill()


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO meta VALUES ('locker', 'held')")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


@contextlib.contextmanager
def _locker(db: Path) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen([sys.executable, "-c", LOCKER, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "held\n"
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "released\n"


def test_write_lock_held_past_the_busy_timeout(fleet, tmp_path):
    """Another process holds BEGIN EXCLUSIVE longer than the busy timeout (0.5 s here, 30 s by default)."""
    fleet.start(2, "nvidia")
    site, db = fleet.site_toml(), tmp_path / "ops.db"
    run = Collect(tmp_path, site, db, interval=0.1, env={"MIXOPS_BUSY_TIMEOUT_S": "0.5"})
    try:
        wait_until(lambda: sweeps(db) >= 3, "3 sweeps committed")
        with _locker(db) as locker:
            before = committed(db)
            _trouble_and_back(run, db, before, lambda: _release(locker), "database is locked")
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT value FROM meta WHERE key = 'locker'").fetchone() == ("held",)
        conn.close()
    finally:
        run.kill()


def test_sigterm_while_the_database_is_locked_stops_cleanly(fleet, tmp_path):
    """Stopping during the trouble: one line says how many held sweeps were not written; exit 2; what was
    committed stays."""
    fleet.start(2, "nvidia")
    site, db = fleet.site_toml(), tmp_path / "ops.db"
    run = Collect(tmp_path, site, db, interval=0.1, env={"MIXOPS_BUSY_TIMEOUT_S": "0.5"})
    try:
        wait_until(lambda: sweeps(db) >= 2, "2 sweeps committed")
        with _locker(db):
            before = committed(db)
            wait_until(lambda: run.held() >= 2 or not run.alive(), "2 sweeps held")
            assert run.stop(signal.SIGTERM) == 2
            err = run.stderr()
            assert "Traceback" not in err
            (line,) = [x for x in err.splitlines() if "not written at stop" in x]
            assert line.startswith(f"mixops: database {db}: ") and "held sweep(s) not written at stop: " \
                "database is locked" in line
        assert committed(db) == before and integrity(db) == "ok"
    finally:
        run.kill()


