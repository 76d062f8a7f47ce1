"""The collector's windowed two-phase sweep and its indexed known_hosts (issue 17, collector at 1,280 nodes)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import paramiko

from collectors.node import sweep_window
from collectors.ssh import _KnownHosts


def test_sweep_window_reads_in_order_with_at_most_window_in_flight():
    lock = threading.Lock()
    in_flight: set[int] = set()
    most = 0
    sent: list[int] = []

    def begin(i: int) -> None:
        nonlocal most
        with lock:
            in_flight.add(i)
            sent.append(i)
            most = max(most, len(in_flight))

    def end(i: int) -> int:
        with lock:
            assert i in in_flight, f"{i} read before it was sent"
            in_flight.discard(i)
        return i * 10

    for workers, window, n in ((4, 8, 100), (16, 3, 50), (2, 64, 10), (8, 1, 20)):
        most = 0
        sent.clear()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(sweep_window(pool, list(range(n)), begin, end, window))
        assert results == [i * 10 for i in range(n)]
        assert sorted(sent) == list(range(n)) and not in_flight
        assert most <= window


def test_indexed_known_hosts_answers_as_paramiko_does(tmp_path):
    k1 = paramiko.ECDSAKey.generate()
    k2 = paramiko.ECDSAKey.generate()
    k3 = paramiko.RSAKey.generate(1024)
    hashed = paramiko.HostKeys.hash_host("[127.0.0.1]:2202")
    lines = [
        f"[127.0.0.1]:2201 {k1.get_name()} {k1.get_base64()}",
        f"[127.0.0.1]:2201 {k2.get_name()} {k2.get_base64()}",      # same type later: the first one wins
        f"{hashed} {k2.get_name()} {k2.get_base64()}",
        f"[127.0.0.1]:2202,[127.0.0.1]:2203 {k3.get_name()} {k3.get_base64()}",
        "# a comment",
        "garbage line",
    ]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    ours = _KnownHosts(str(path))
    theirs = paramiko.HostKeys(str(path))
    for host in ("[127.0.0.1]:2201", "[127.0.0.1]:2202", "[127.0.0.1]:2203", "[127.0.0.1]:2299"):
        want = {t: k.asbytes() for t, k in dict(theirs.lookup(host) or {}).items()}
        assert {t: k.asbytes() for t, k in ours.lookup(host).items()} == want, host
