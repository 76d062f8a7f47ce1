"""A real `prometheus` (Debian package, 2.42) and a real single-node `victoria-metrics` (1.79) on 127.0.0.1,
each with its own temporary data directory, for the tests of the metrics out, the Prometheus source in and
`gui --prometheus`. The fixtures `prometheus` and `victoria` (tests/conftest.py) skip when the package is
not installed; `.ci/setup.sh` installs both."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

PROMETHEUS = "/usr/bin/prometheus"
VICTORIA = "/usr/bin/victoria-metrics"
POLL_S = 0.1
MAX_POLLS = 300             # 30 s on an idle machine: a bound on waiting, never an assertion on time

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> str:
    """The body of a GET, as text."""
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def poll(condition: Callable[[], T], what: str, polls: int = MAX_POLLS) -> T:
    """The first true value of `condition()`, asked every POLL_S; AssertionError naming `what` when none."""
    for _ in range(polls):
        value = condition()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"never happened: {what}")


class Engine:
    """One server process under `root` (its log in `root/<name>.log`), started once and stopped once."""

    name = "engine"
    health_path = "/"
    healthy: Callable[[str], bool] = staticmethod(lambda body: True)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.root / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _launch(self, argv: list[str]) -> None:
        with (self.root / f"{self.name}.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            try:
                return self.healthy(get(self.url + self.health_path))
            except OSError:
                return False

        poll(ready, f"{self.name} ready")

    def query(self, promql: str) -> list[dict]:
        """An instant query's result (the API said success)."""
        body = json.loads(get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def values(self, promql: str) -> dict[tuple[str, ...], float]:
        """An instant query's values by their sorted labels."""
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in self.query(promql)}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


class Prometheus(Engine):
    """A real prometheus scraping every second."""

    name = "prometheus"
    health_path = "/-/ready"
    healthy = staticmethod(lambda body: "Ready" in body)

    def start(self, target: str | None, port: int | None = None, receiver: bool = False) -> None:
        """Scrape a mixops collector at `target` every second (None: no scrape), on `port` (None: a free one);
        `receiver`: take remote writes at /api/v1/write."""
        text = ""
        if target is not None:
            text = ("scrape_configs:\n  - job_name: mixops\n    static_configs:\n"
                    f"      - targets: ['{target}']\n"
                    # the README's relabelling for dcgm-exporter dashboards that select by instance
                    "    metric_relabel_configs:\n      - source_labels: [__name__, Hostname]\n"
                    "        regex: 'DCGM_FI_.+;(.+)'\n        target_label: instance\n"
                    "        replacement: '$1'\n")
        self._run(text, port, receiver)

    def scrape(self, jobs: dict[str, tuple[int, dict[str, str]]]) -> None:
        """Scrape exporters as a site's Prometheus would: job name -> (port on 127.0.0.1, target labels).
        Called again after `stop`, it starts on the same port and data."""
        text = "scrape_configs:\n"
        for job, (port, labels) in jobs.items():
            text += f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            if labels:
                text += "        labels:\n" + "".join(f"          {k}: '{v}'\n" for k, v in labels.items())
        self._run(text, self.port or None, False)

    def _run(self, scrape_configs: str, port: int | None, receiver: bool) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                          + scrape_configs)
        self.port = port or free_port()
        self._launch([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
                      f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                      *(["--web.enable-remote-write-receiver"] if receiver else [])])


class Victoria(Engine):
    """A real single-node VictoriaMetrics; queries see a sample a second after it arrived, uncached."""

    name = "victoria-metrics"
    health_path = "/health"
    healthy = staticmethod(lambda body: body.strip() == "OK")

    def start(self) -> Victoria:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._launch([VICTORIA, f"-storageDataPath={self.root / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
                      "-search.latencyOffset=1s", "-search.disableCache", "-loggerLevel=ERROR"])
        return self
