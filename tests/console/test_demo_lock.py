"""A second demo on the same database is refused with the holder named; it never deletes the first
demo's database under it (DemoRun holds the writer lock through the history build and the live run)."""

from __future__ import annotations

import os

import pytest

from console.demo import DemoRun
from console.store import StoreError


def test_second_demo_is_refused_and_the_first_keeps_its_database(tmp_path):
    path = str(tmp_path / "demo.db")
    first = DemoRun(path, cards=64, history_s=300)
    first.prepare(lambda _f: None)
    inode = os.stat(path).st_ino
    with pytest.raises(StoreError, match="another mixops is writing this database"):
        DemoRun(path, cards=64, history_s=300).prepare(lambda _f: None)
    assert os.stat(path).st_ino == inode
    _site, sweep, close = first.make()
    sweep()
    close()
    again = DemoRun(path, cards=64, history_s=300)     # the lock went with the first run's close
    again.prepare(lambda _f: None)
    _site, _sweep, close = again.make()
    close()
