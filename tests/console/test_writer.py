"""One writer per database (issue 16 #7) and a private database file (#9): real processes, real files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from console.store import Store, StoreError
from tests.console.collectproc import ROOT, Collect, committed, integrity, sweeps, wait_until

HOLDER = """
import sys, time
from console.store import Store
store = Store(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


@contextlib.contextmanager
def _holder(db) -> Iterator[subprocess.Popen[str]]:
    """Another process that opens the store for writing and keeps it until its stdin closes."""
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def test_second_store_in_the_same_or_another_process_is_refused_naming_the_holder(tmp_path):
    db = tmp_path / "ops.db"
    first = Store(str(db))
    try:
        with pytest.raises(StoreError) as again:
            Store(str(db))
        message = str(again.value)
        assert message.startswith(f"{db}: another mixops is writing this database (pid {os.getpid()} (mixops")
        assert f"on {socket.gethostname()} since 20" in message and "one writer per database" in message
        holder = json.loads((tmp_path / "ops.db.lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert stat.S_IMODE(os.stat(tmp_path / "ops.db.lock").st_mode) == 0o600
        # readers and the short operator writes never need the lock
        operator = Store(str(db), lock=False)
        operator.add_fault(1.0, "n1", "x", "info", "watch", "note")
        operator.close()
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        assert reader.execute("SELECT count(*) FROM faults").fetchone() == (1,)
        reader.close()
    finally:
        first.close()
    assert (tmp_path / "ops.db.lock").read_text() == ""        # released at close: names nobody
    Store(str(db)).close()                                      # and free for the next writer


@pytest.mark.parametrize("how", ["close", "sigkill"])
def test_lock_is_released_at_close_and_by_the_kernel_when_the_holder_dies(tmp_path, how):
    db = tmp_path / "ops.db"
    with _holder(db) as proc:
        with pytest.raises(StoreError, match=rf"another mixops is writing this database \(pid {proc.pid} "):
            Store(str(db))
        if how == "close":
            assert proc.stdin is not None
            proc.stdin.close()                  # the holder's Store is closed at exit
        else:
            proc.send_signal(signal.SIGKILL)    # no cleanup at all: the kernel drops the flock
        assert proc.wait(30) == (0 if how == "close" else -signal.SIGKILL)
    Store(str(db)).close()


@pytest.mark.sshd
def test_second_collector_exits_2_with_one_line_naming_the_first(fleet, tmp_path):
    fleet.start(2, "nvidia")
    site, db = fleet.site_toml(), tmp_path / "ops.db"
    first = Collect(tmp_path, site, db, interval=0.2)
    try:
        wait_until(lambda: sweeps(db) >= 2, "the first collector commits 2 sweeps")
        before = committed(db)
        second = Collect(tmp_path, site, db, interval=None)
        assert second.wait() == 2
        (line,) = second.stderr().splitlines()
        assert line.startswith(f"mixops: database {db}: another mixops is writing this database "
                               f"(pid {first.pid} (mixops collect --site {site} --db {db} --interval 0.2")
        assert f"on {socket.gethostname()} since " in line and "Traceback" not in second.stderr()
        assert second.stdout() == ""                      # it swept nothing, wrote nothing
        assert first.alive()
        wait_until(lambda: sweeps(db) >= len(before) + 2, "the first collector goes on")
        assert first.stop() == 0
    finally:
        first.kill()
    assert committed(db)[:len(before)] == before and integrity(db) == "ok"
    assert Collect(tmp_path, site, db, interval=None).wait() == 0      # released: the next one writes


@pytest.mark.sshd
def test_two_collectors_started_together_on_a_new_database(fleet, tmp_path):
    """Before the lock the second died with `UNIQUE constraint failed: index 'cards_node_idx_chip'`."""
    fleet.start(2, "nvidia")
    site, db = fleet.site_toml(), tmp_path / "new.db"
    runs = [Collect(tmp_path, site, db, interval=0.2) for _ in range(2)]
    try:
        wait_until(lambda: any(not r.alive() for r in runs), "one of the two gives way")
        loser = next(r for r in runs if not r.alive())
        winner = next(r for r in runs if r is not loser)
        assert loser.wait() == 2
        (line,) = loser.stderr().splitlines()
        # started together, the loser may look in the instant between the winner's flock and its holder
        # line: then it says so rather than naming it
        assert (f"another mixops is writing this database (pid {winner.pid} " in line
                or "another mixops is writing this database (holder not recorded yet)" in line), line
        assert "UNIQUE" not in loser.stderr() and "Traceback" not in loser.stderr()
        wait_until(lambda: sweeps(db) >= 2, "the winner writes")
        assert winner.stop() == 0
    finally:
        for r in runs:
            r.kill()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), count(DISTINCT node || '/' || idx) FROM cards").fetchone() == (8, 8)
    conn.close()


# ---- #9: the file is the operator's data, owner-only ----------------------------------------------------

def test_an_existing_0644_database_and_its_wal_are_made_0600_and_said_once(tmp_path):
    db = tmp_path / "ops.db"
    Store(str(db)).close()
    conn = sqlite3.connect(db)                       # keep -wal/-shm in place while the modes are opened up
    conn.execute("CREATE TABLE IF NOT EXISTS t(x)")
    for name in ("ops.db", "ops.db-wal", "ops.db-shm"):
        os.chmod(tmp_path / name, 0o644)
    store = Store(str(db))
    try:
        assert [n.split(":")[0] for n in store.notices] == [str(db), f"{db}-wal", f"{db}-shm"]
        assert all("mode 0644 made 0600" in n for n in store.notices)
        for name in ("ops.db", "ops.db-wal", "ops.db-shm", "ops.db.lock"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    finally:
        store.close()
        conn.close()
    again = Store(str(db))
    assert again.notices == []                        # said once: it is private now
    again.close()


def test_collect_says_once_that_it_made_the_file_private(tmp_path):
    """Through the real command: a site whose only node refuses at once (nothing listens)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "x"\n[ssh]\nknown_hosts = "{tmp_path}/kh"\nconfig_file = "{tmp_path}/none"\n'
                    f'[[racks]]\nname = "R"\nslots = 2\n'
                    f'[[nodes]]\nname = "a"\nhost = "127.0.0.1"\nport = {port}\nrack = "R"\nslot = 1\n')
    db = tmp_path / "ops.db"
    Store(str(db)).close()
    os.chmod(db, 0o644)
    first = Collect(tmp_path, site, db, interval=None)
    assert first.wait() == 1                                   # the node failed; the sweep is written
    assert first.lines("made 0600") == [f"mixops: database {db}: mode 0644 made 0600 (it holds the site's data)"]
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    second = Collect(tmp_path, site, db, interval=None)
    assert second.wait() == 1 and second.lines("made 0600") == []
    assert sweeps(db) == 2


def test_threads_of_one_process_share_nothing_by_accident(tmp_path):
    """A second Store in another thread of the same process is refused too (flock is per open file)."""
    db = tmp_path / "ops.db"
    first = Store(str(db))
    errors: list[str] = []

    def other() -> None:
        try:
            Store(str(db)).close()
        except StoreError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    first.close()
    assert len(errors) == 1 and "another mixops is writing" in errors[0]
