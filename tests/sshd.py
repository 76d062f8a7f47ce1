"""Real OpenSSH sshd instances on 127.0.0.1 for the SSH tests, with fake vendor tools on PATH."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

FAKE_TOOL = Path(__file__).parent / "fakes" / "fake-tool"
FIXTURES = Path(__file__).parent / "fixtures"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
TOOLS = {"nvidia": ("nvidia-smi",), "ascend": ("npu-smi",), "hygon": ("hy-smi",), "amd": ("rocm-smi",),
         "cambricon": ("cnmon",), "metax": ("mx-smi",), "mthreads": ("mthreads-gmi",), "iluvatar": ("ixsmi",),
         "denglin": ("dlsmi",)}
DEFAULT_OUTPUT = {
    "nvidia-smi": FIXTURES / "nvidia" / "h100-565-query-noheader-nounits.csv",
    "npu-smi": FIXTURES / "ascend" / "910b2c-23.0.3-info.txt",
    "hy-smi": FIXTURES / "hygon" / "k100-dtk24-show.json",
    "rocm-smi": FIXTURES / "amd" / "mi300x-rocm6.2-show.json",
    "cnmon": FIXTURES / "cambricon" / "mlu370-x8-v5.txt",
    "mx-smi": FIXTURES / "metax" / "c500-2.2.9-table.txt",
    "mthreads-gmi": FIXTURES / "mthreads" / "s4000-gmi2.2.txt",
    "ixsmi": FIXTURES / "iluvatar" / "query.csv",
    "dlsmi": FIXTURES / "denglin" / "ks38-2gpu.xml",
}


def keygen(path: Path) -> Path:
    """A fresh ed25519 key pair without passphrase."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeNode:
    """One sshd with its own host key, bin/ of fake tools and outputs."""

    name: str
    port: int
    root: Path
    vendor: str
    proc: subprocess.Popen[bytes] | None = None

    def set_mode(self, mode: str | None) -> None:
        """hang | fail | garbage | truncated, or None for normal output."""
        p = self.root / "mode"
        if mode is None:
            p.unlink(missing_ok=True)
        else:
            p.write_text(mode + "\n")

    def set_output(self, tool: str, text: str) -> None:
        """What `tool` prints from now on."""
        (self.root / "out" / tool).write_text(text)
        if not (self.root / "bin" / tool).exists():
            (self.root / "bin" / tool).symlink_to(FAKE_TOOL)

    def remove_tool(self, tool: str) -> None:
        """The tool disappears from PATH (command not found)."""
        (self.root / "bin" / tool).unlink()

    @property
    def host_pub(self) -> str:
        """The host public key line (type base64)."""
        return " ".join((self.root / "host_key.pub").read_text().split()[:2])


@dataclass
class Fleet:
    """A set of FakeNodes sharing one client key and one known_hosts file."""

    root: Path
    client_key: Path
    nodes: list[FakeNode] = field(default_factory=list)

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def start(self, count: int, vendor: str = "nvidia", trust: bool = True) -> list[FakeNode]:
        """Start `count` more nodes (vendor tools faked), their keys in known_hosts when trust."""
        started = []
        for _ in range(count):
            i = len(self.nodes) + 1
            node = FakeNode(f"n{i:03d}", self._port(), self.root / f"n{i:03d}", vendor)
            (node.root / "bin").mkdir(parents=True)
            (node.root / "out").mkdir()
            keygen(node.root / "host_key")
            for tool in (*TOOLS[vendor], "dmesg", "journalctl"):
                (node.root / "bin" / tool).symlink_to(FAKE_TOOL)
            for tool in TOOLS[vendor]:
                shutil.copy(DEFAULT_OUTPUT[tool], node.root / "out" / tool)
            self._write_config(node)
            self.nodes.append(node)
            started.append(node)
            if trust:
                self.trust(node)
        for node in started:
            self._launch(node)
        for node in started:
            self._wait(node)
        return started

    def trust(self, node: FakeNode, pub: str | None = None) -> None:
        """Add the node's (or a given) host key to known_hosts."""
        with self.known_hosts.open("a") as fh:
            fh.write(f"[127.0.0.1]:{node.port} {pub or node.host_pub}\n")

    def _write_config(self, node: FakeNode) -> None:
        user = getpass.getuser()
        (node.root / "sshd_config").write_text(
            f"Port {node.port}\nListenAddress 127.0.0.1\nHostKey {node.root}/host_key\n"
            f"PidFile {node.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {user}\nSetEnv PATH={node.root}/bin:/usr/local/bin:/usr/bin:/bin\n"
            "LogLevel ERROR\nMaxStartups 100\nX11Forwarding no\nAllowTcpForwarding yes\n")

    def _launch(self, node: FakeNode) -> None:
        Path("/run/sshd").mkdir(exist_ok=True) if os.geteuid() == 0 else None
        with (node.root / "sshd.log").open("wb") as log:
            node.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(node.root / "sshd_config")],
                                         stdout=log, stderr=log)

    def _port(self) -> int:
        """A free port no node of this fleet has (two picks of bind(0) can return the same port)."""
        taken = {n.port for n in self.nodes}
        while (port := free_port()) in taken:
            pass
        return port

    def _move(self, node: FakeNode) -> None:
        """The node's port was taken between picking it and sshd's bind (an outgoing connection's ephemeral
        port, another process): the node moves to a new port, its known_hosts lines with it."""
        old, node.port = node.port, self._port()
        text = self.known_hosts.read_text()
        self.known_hosts.write_text(text.replace(f"[127.0.0.1]:{old} ", f"[127.0.0.1]:{node.port} "))
        self._write_config(node)
        self._launch(node)

    def _wait(self, node: FakeNode) -> None:
        deadline = time.monotonic() + 10
        moves = 0
        while time.monotonic() < deadline:
            if node.proc is not None and node.proc.poll() is not None:
                log = (node.root / "sshd.log").read_text()
                if "Address already in use" in log and moves < 3:
                    moves += 1
                    self._move(node)
                    continue
                raise RuntimeError(f"sshd for {node.name} exited: {log}")
            try:
                with socket.create_connection(("127.0.0.1", node.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {node.name} did not listen on {node.port}")

    def stop_node(self, node: FakeNode) -> None:
        """Stop one node's sshd (connection refused afterwards)."""
        if node.proc is not None and node.proc.poll() is None:
            # Like a dead machine: the per-connection sshd children go too.
            try:
                children = psutil.Process(node.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            for child in children:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
            node.proc.terminate()
            try:
                node.proc.wait(5)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            self.stop_node(node)

    def site_toml(self, *, command_timeout_s: float = 2, identity: Path | None = None,
                  extra_nodes: str = "", vendor_in_site: bool = True) -> Path:
        """A site file for the whole fleet."""
        lines = ['[site]\nname = "test fleet"\ntimezone = "Asia/Shanghai"\ninterval_s = 1\n',
                 f'[ssh]\nuser = "{getpass.getuser()}"\nidentity_file = "{identity or self.client_key}"\n'
                 f'known_hosts = "{self.known_hosts}"\nconnect_timeout_s = 2\n'
                 f'command_timeout_s = {command_timeout_s}\nconfig_file = "{self.root}/no_ssh_config"\n',
                 '[[racks]]\nname = "R01"\nslots = 64\n']
        for i, node in enumerate(self.nodes, 1):
            vendor = f'vendor = "{node.vendor}"\n' if vendor_in_site else ""
            lines.append(f'[[nodes]]\nname = "{node.name}"\nhost = "127.0.0.1"\nport = {node.port}\n'
                         f'rack = "R01"\nslot = {i}\n{vendor}')
        path = self.root / "site.toml"
        path.write_text("\n".join(lines) + extra_nodes)
        return path
