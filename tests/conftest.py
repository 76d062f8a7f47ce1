"""Shared fixtures: a real sshd fleet on 127.0.0.1 and fixture text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import PROMETHEUS, VICTORIA, Prometheus, Victoria
from tests.sshd import SSHD, Fleet, keygen

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def fixture_text(rel: str) -> str:
    """The text of tests/fixtures/<rel>."""
    return (FIXTURES / rel).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def client_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(authorised client key, a key nobody authorised)."""
    d = tmp_path_factory.mktemp("keys")
    return keygen(d / "id_ed25519"), keygen(d / "id_wrong")


@pytest.fixture
def fleet(tmp_path: Path, client_keys: tuple[Path, Path]) -> Iterator[Fleet]:
    """Real sshd processes on 127.0.0.1; stopped after the test."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.fail("OpenSSH server not installed: run .ci/setup.sh (it installs openssh-server)")
    root = tmp_path / "fleet"
    root.mkdir()
    (root / "authorized_keys").write_text(Path(str(client_keys[0]) + ".pub").read_text())
    (root / "known_hosts").write_text("")
    f = Fleet(root, client_keys[0])
    try:
        yield f
    finally:
        f.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A real prometheus on 127.0.0.1, not yet started (`start` or `scrape`); stopped after the test."""
    if not os.path.exists(PROMETHEUS):
        pytest.skip(f"{PROMETHEUS} not installed (Debian package prometheus; .ci/setup.sh installs it)")
    p = Prometheus(tmp_path / "prometheus")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    """A real single-node VictoriaMetrics on 127.0.0.1, started; stopped after the test."""
    if not os.path.exists(VICTORIA):
        pytest.skip(f"{VICTORIA} not installed (Debian package victoria-metrics; .ci/setup.sh installs it)")
    v = Victoria(tmp_path / "victoria")
    try:
        yield v.start()
    finally:
        v.stop()
