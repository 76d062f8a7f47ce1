"""SSH layer: one verified paramiko session per node, kept open, running framed sweeps.

Each node gets one long-lived `sh` on one channel. A sweep writes a short script built only from
the vendor's constant command plan (and integers mixops chose) to that shell's stdin; the shell
answers with framed sections on stdout. One sweep therefore costs one write and one read on an
open channel, not a channel open + exec + close per command. Output of a node is only ever parsed,
never put back into a shell.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field

import paramiko

from collectors.model import Command, strip_ansi

MAX_OUTPUT_BYTES = 8 * 1024 * 1024
READER_WAKE_S = 2.0
STDERR_TAIL_BYTES = 400


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything needed to reach one node; no secrets (keys stay in files or the agent)."""

    name: str
    host: str
    port: int = 22
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 8.0
    keepalive_s: int = 15
    jump: Endpoint | None = None

    @property
    def known_hosts_entry(self) -> str:
        """The host name as known_hosts spells it (`[host]:port` off port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


class SSHError(Exception):
    """A node could not be reached or did not answer; the message is one line for the operator."""


class HostKeyUnknown(SSHError):
    """The node's host key is not in known_hosts: refused until the operator trusts it."""

    def __init__(self, endpoint: Endpoint, key: paramiko.PKey) -> None:
        self.key = key
        self.fingerprint = fingerprint(key)
        super().__init__(
            f"host key of {endpoint.known_hosts_entry} is unknown ({key.get_name()} {self.fingerprint}); "
            f"verify it, then run `mixops check --site FILE --trust-new` to trust it")


class HostKeyChanged(SSHError):
    """The node presented a key other than the one in known_hosts: always refused."""

    def __init__(self, endpoint: Endpoint, key: paramiko.PKey, expected: paramiko.PKey) -> None:
        self.key = key
        self.fingerprint = fingerprint(key)
        super().__init__(
            f"HOST KEY CHANGED for {endpoint.known_hosts_entry}: got {key.get_name()} {self.fingerprint}, "
            f"known_hosts has {fingerprint(expected)}; refused (possible man-in-the-middle)")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Reject like paramiko's RejectPolicy, but keep the key so `check` can show its fingerprint."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyUnknown(self.endpoint, key)


def trust_host_key(endpoint: Endpoint, key: paramiko.PKey) -> None:
    """Append a node's key to its known_hosts file (only for keys never seen before)."""
    path = os.path.expanduser(endpoint.known_hosts)
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    line = f"{endpoint.known_hosts_entry} {key.get_name()} {key.get_base64()}\n"
    with open(path, "a", encoding="ascii") as fh:
        fh.write(line)


@dataclass(slots=True)
class Section:
    """One command's result inside a framed sweep."""

    stdout: str
    rc: int
    stderr_tail: str = ""


@dataclass(frozen=True, slots=True)
class Pending:
    """A sweep sent to a node whose answer has not been read yet."""

    commands: tuple[Command, ...]
    nonce: str
    deadline: float


@dataclass(slots=True)
class SweepOutput:
    """All sections of one sweep of one node."""

    sections: dict[str, Section] = field(default_factory=dict)
    timed_out_in: str | None = None


def _describe(exc: BaseException, endpoint: Endpoint) -> str:
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, SSHError):
        return str(exc)
    if isinstance(exc, paramiko.BadHostKeyException):
        return f"HOST KEY CHANGED for {endpoint.known_hosts_entry}; refused"
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed for user {endpoint.user or '(default)'} at {where}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"timed out connecting to {where} after {endpoint.connect_timeout_s:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {endpoint.host}"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    if isinstance(exc, paramiko.SSHException):
        text = str(exc) or type(exc).__name__
        if "banner" in text.lower():
            return f"no SSH banner from {where} within {endpoint.connect_timeout_s:g} s"
        return f"SSH error with {where}: {text}"
    return f"{type(exc).__name__} with {where}: {exc}"


_KNOWN_CACHE: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}
_KNOWN_LOCK = threading.Lock()


def _known_hosts(path: str) -> paramiko.HostKeys:
    """known_hosts parsed once per change of the file (500 nodes used to re-parse it 500 times a sweep)."""
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    with _KNOWN_LOCK:
        cached = _KNOWN_CACHE.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        keys = paramiko.HostKeys(path)
        _KNOWN_CACHE[path] = (stamp, keys)
        return keys


def connect_client(endpoint: Endpoint) -> paramiko.SSHClient:
    """Open a verified, authenticated SSHClient (through the jump host when one is set)."""
    client = paramiko.SSHClient()
    known = os.path.expanduser(endpoint.known_hosts)
    if os.path.exists(known):
        try:
            entries: dict[str, paramiko.PKey] = dict(_known_hosts(known).lookup(endpoint.known_hosts_entry) or {})
        except (OSError, paramiko.SSHException) as exc:
            raise SSHError(f"cannot read known_hosts {known}: {exc}") from exc
        mine = client.get_host_keys()
        for keytype, key in entries.items():
            mine.add(endpoint.known_hosts_entry, keytype, key)
    client.set_missing_host_key_policy(_RefuseUnknown(endpoint))
    sock: socket.socket | paramiko.Channel
    jump_client: paramiko.SSHClient | None = None
    try:
        if endpoint.jump is not None:
            jump_client = connect_client(endpoint.jump)
            transport = jump_client.get_transport()
            assert transport is not None
            sock = transport.open_channel("direct-tcpip", (endpoint.host, endpoint.port), ("127.0.0.1", 0),
                                          timeout=endpoint.connect_timeout_s)
        else:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=endpoint.connect_timeout_s)
            # Without TCP_NODELAY every exchange waits ~40 ms on delayed ACK (fleet README).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keys = [os.path.expanduser(p) for p in endpoint.identity_files]
        client.connect(
            endpoint.host, port=endpoint.port, username=endpoint.user, sock=sock,
            key_filename=[k for k in keys if os.path.exists(k)] or None,  # type: ignore[arg-type]
            timeout=endpoint.connect_timeout_s, banner_timeout=endpoint.connect_timeout_s,
            auth_timeout=endpoint.connect_timeout_s, channel_timeout=endpoint.connect_timeout_s,
            allow_agent=True, look_for_keys=not keys,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        if jump_client is not None:
            jump_client.close()
        raise HostKeyChanged(endpoint, exc.key, exc.expected_key) from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:
        client.close()
        if jump_client is not None:
            jump_client.close()
        raise SSHError(_describe(exc, endpoint)) from exc
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(endpoint.keepalive_s)
        # paramiko's reader thread wakes every 0.1 s to look for a close: with hundreds of idle sessions that
        # is most of the collector's idle CPU (40 ms/s for 200). It wakes at this interval instead; close()
        # shuts a socket down (a jump host's channel wakes its reader when closed), which ends it at once.
        sock.settimeout(READER_WAKE_S)
        if jump_client is not None:
            # Keep the jump client alive as long as the inner transport.
            transport.mixops_jump = jump_client  # type: ignore[attr-defined]
    return client


_SHELL_PRELUDE = (
    "export LANG=C.UTF-8 LC_ALL=C.UTF-8; "
    "E=$(mktemp 2>/dev/null) || E=/dev/null; O=$(mktemp 2>/dev/null) || O=''; export E O; "
    "trap 'rm -f \"$E\" \"$O\"' EXIT HUP TERM; "
    "/bin/sh -s 2>/dev/null"
)


def build_script(commands: tuple[Command, ...], nonce: str, timeout_s: float, since: int) -> str:
    """The framed sweep script. Only constants from command plans and integers go into it."""
    t = max(1, int(round(timeout_s)))
    parts = [f"MIXOPS_SINCE={int(since)}; export MIXOPS_SINCE"]
    for cmd in commands:
        if not re.fullmatch(r"[\w.\-]+", cmd.section):
            raise ValueError(f"bad section name {cmd.section!r}")
        parts.append(
            f"printf '\\n@@MX {nonce} B {cmd.section}\\n'; "
            f"timeout -k 1 {t} /bin/sh -c {shlex.quote(cmd.shell)} </dev/null 2>\"$E\"; rc=$?; "
            f"printf '\\n@@MX {nonce} E {cmd.section} %d\\n' \"$rc\"; "
            f"[ \"$rc\" -eq 0 ] || tail -c {STDERR_TAIL_BYTES} \"$E\" 2>/dev/null; "
            f"printf '\\n@@MX {nonce} X {cmd.section}\\n'"
        )
    body = "\n".join(parts)
    # The sections go to a file and out in one write, so the answer travels in one or two SSH packets
    # instead of one per frame (client CPU is per packet). Without a temp file, stream directly.
    return (f"if [ -n \"$O\" ]; then {{\n{body}\n}} >\"$O\"; cat \"$O\"; else\n{body}\nfi; "
            f"printf '\\n@@MX {nonce} D\\n'\n")


# One pattern for every sweep: the nonce is compared, not compiled in (a fresh regex per sweep cost
# ~150 us of client CPU per node-poll, more than the rest of the frame parsing).
_MARKER = re.compile(r"\n@@MX (?P<nonce>[0-9a-f]+) (?P<kind>[BEXD])(?: (?P<sec>[\w.\-]+))?(?: (?P<rc>-?\d+))?\n")


def parse_frames(data: str, nonce: str) -> SweepOutput:
    """Split a framed answer into sections; an unfinished section is reported as timed out. Markers
    with another nonce (a tool printing look-alike lines) are part of the section's text."""
    out = SweepOutput()
    current: str | None = None
    pos = 0
    stdout = ""
    rc = 0
    for m in _MARKER.finditer(data):
        if m.group("nonce") != nonce:
            continue
        body = data[pos:m.start()]
        kind = m.group("kind")
        if kind == "B":
            current = m.group("sec")
        elif kind == "E" and current is not None:
            stdout, rc = body, int(m.group("rc") or 0)
        elif kind == "X" and current is not None:
            out.sections[current] = Section(strip_ansi(stdout), rc, strip_ansi(body).strip())
            current = None
        pos = m.end()
    if current is not None:
        out.timed_out_in = current
    return out


def _close_client(client: paramiko.SSHClient) -> None:
    """Close a client; its socket is shut down first, which wakes the reader thread at once."""
    transport = client.get_transport()
    if transport is not None and isinstance(transport.sock, socket.socket):
        try:
            transport.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    client.close()


class NodeSession:
    """A node's SSH session, kept open across sweeps, reconnected with backoff after failures."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client: paramiko.SSHClient | None = None
        self._chan: paramiko.Channel | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        """True while the transport is up."""
        t = self._client.get_transport() if self._client is not None else None
        return t is not None and t.is_active()

    def close(self) -> None:
        """Close channel and connection (and the jump connection)."""
        if self._chan is not None:
            self._chan.close()
            self._chan = None
        if self._client is not None:
            transport = self._client.get_transport()
            jump = getattr(transport, "mixops_jump", None) if transport is not None else None
            _close_client(self._client)
            if jump is not None:
                _close_client(jump)
            self._client = None

    def _ensure_shell(self) -> paramiko.Channel:
        if self._chan is not None and not self._chan.closed and self.connected:
            return self._chan
        self.close()
        now = time.monotonic()
        if now < self._retry_at:
            raise SSHError(f"{self._last_error} (next retry in {self._retry_at - now:.0f} s)")
        try:
            self._client = connect_client(self.endpoint)
            transport = self._client.get_transport()
            assert transport is not None
            chan = transport.open_session(timeout=self.endpoint.connect_timeout_s)
            chan.exec_command(f"/bin/sh -c {shlex.quote(_SHELL_PRELUDE)}")
        except HostKeyChanged:
            self._note_failure("host key changed")
            raise
        except SSHError as exc:
            self._note_failure(str(exc))
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            msg = _describe(exc, self.endpoint)
            self._note_failure(msg)
            raise SSHError(msg) from exc
        self._chan = chan
        self._failures = 0
        return chan

    def _note_failure(self, message: str) -> None:
        self.close()
        self._failures += 1
        self._last_error = message
        # Backoff: retry on the next sweep first, then wait up to a minute between attempts.
        delay = 0.0 if self._failures <= 1 else min(60.0, 2.0 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay

    def run(self, commands: tuple[Command, ...], since: int = 0) -> SweepOutput:
        """Run one framed sweep on the open shell; raises SSHError with a one-line reason."""
        return self.finish(self.start(commands, since))

    def start(self, commands: tuple[Command, ...], since: int = 0) -> Pending:
        """Send a sweep to the node and return at once; finish() collects the answer."""
        with self._lock:
            chan = self._ensure_shell()
            nonce = secrets.token_hex(8)
            timeout = self.endpoint.command_timeout_s
            try:
                chan.sendall(build_script(commands, nonce, timeout, since).encode())
            except (OSError, paramiko.SSHException, EOFError) as exc:
                msg = _describe(exc, self.endpoint)
                self._note_failure(msg)
                raise SSHError(msg) from exc
            # each command runs under its own remote `timeout`, one after the other
            return Pending(commands, nonce, time.monotonic() + timeout * max(1, len(commands)) + 1.0)

    def finish(self, pending: Pending) -> SweepOutput:
        """Read the framed answer of a started sweep until its end marker or its deadline."""
        with self._lock:
            return self._finish(pending)

    def _finish(self, pending: Pending) -> SweepOutput:
        commands, nonce, deadline = pending.commands, pending.nonce, pending.deadline
        timeout = self.endpoint.command_timeout_s
        chan = self._chan
        if chan is None:
            raise SSHError(f"{self.endpoint.name}: session closed before the answer arrived")
        done = f"\n@@MX {nonce} D\n".encode()
        buf = bytearray()
        try:
            while not buf.endswith(done):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # Past the deadline, but with hundreds of nodes the answer may have arrived long ago
                    # and only be read now: take what is buffered before calling it a timeout.
                    if not chan.recv_ready():
                        break
                    remaining = 0.05
                chan.settimeout(remaining)
                try:
                    chunk = chan.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    self._note_failure("connection closed")
                    raise SSHError(f"{self.endpoint.name}: the remote shell exited (connection closed)")
                buf += chunk
                if len(buf) > MAX_OUTPUT_BYTES:
                    self._note_failure("too much output")
                    raise SSHError(f"{self.endpoint.name}: more than {MAX_OUTPUT_BYTES} bytes of output; stopped")
        except (OSError, paramiko.SSHException, EOFError) as exc:
            msg = _describe(exc, self.endpoint)
            self._note_failure(msg)
            raise SSHError(msg) from exc
        text = buf.decode("utf-8", errors="replace")
        out = parse_frames(text, nonce)
        if not buf.endswith(done):
            # The remote `timeout` kills the tool; drop this shell so late output cannot mix in.
            if self._chan is not None:
                self._chan.close()
                self._chan = None
            running = out.timed_out_in or "the sweep"
            shell = next((c.shell for c in commands if c.section == running), running)
            shown = shell if len(shell) <= 60 else shell[:59] + "…"
            raise SSHError(f"timed out after {timeout:g} s running `{shown}`")
        return out
