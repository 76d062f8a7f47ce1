"""SSH layer: one verified paramiko session per node, kept open, running framed sweeps.

Each node gets one long-lived `sh` on one channel. A sweep writes a short script built only from
the vendor's constant command plan (and integers mixops chose) to that shell's stdin; the shell
answers with framed sections on stdout. One sweep therefore costs one write and one read on an
open channel, not a channel open + exec + close per command. Output of a node is only ever parsed,
never put back into a shell.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import paramiko
import paramiko.hostkeys

from collectors.model import Command, strip_ansi

MAX_OUTPUT_BYTES = 8 * 1024 * 1024
READER_WAKE_S = 10.0
STDERR_TAIL_BYTES = 400
DRAIN_S = 0.5               # past its deadline an answer is still read for this long, if bytes are waiting

# paramiko's transport thread logs every failure it sees (with a traceback) through the `paramiko`
# loggers; with no handler configured Python's last-resort handler prints them on stderr, e.g.
# "Error reading SSH protocol banner[Errno 9] Bad file descriptor" after a banner-less node was given
# up on (issue 16). The reason is already in the node's outcome, one line; keep the duplicate off stderr.
# An operator who wants paramiko's own log can still set a level on these loggers.
_PARAMIKO_LOG = logging.getLogger("paramiko")
_PARAMIKO_LOG.addHandler(logging.NullHandler())
for _name in ("paramiko", "paramiko.transport"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.CRITICAL)

# Everything ECMA-48 calls a control function, as node output can carry it (kernel log lines with a
# terminal title, tools printing colours without a TTY): CSI (ESC [ or U+009B) sequences; the control
# strings OSC, DCS, SOS, PM and APC (ESC ] P X ^ _ or U+009D U+0090 U+0098 U+009E U+009F) up to their
# terminator ST (ESC \ or U+009C) or BEL, or to the end of the line when unterminated; other escape
# sequences (ESC, intermediates 0x20-0x2F, a final byte); then any C0 or C1 control left but \n and \t.
_CONTROL = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x9c\x1b\n]*(?:\x07|\x9c|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Node text with every escape sequence and control character removed but newline and tab (a carriage
    return too: CRLF becomes a newline, and nothing can overwrite text on an operator's terminal)."""
    return _CONTROL.sub("", text)


def one_line(text: str, limit: int = 300) -> str:
    """Text from a node or a library made safe for a one-line reason: cleaned, whitespace folded, cut."""
    flat = " ".join(clean_text(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


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


def _retry_note(retry_in: float | None) -> str:
    return "" if retry_in is None else f" (still refused; next attempt in {retry_in:.0f} s)"


class HostKeyUnknown(SSHError):
    """The node's host key is not in known_hosts: refused until the operator trusts it.

    `presented` is False when the refusal is repeated from the retry backoff (no connection was made)."""

    def __init__(self, endpoint: Endpoint, key: paramiko.PKey, retry_in: float | None = None) -> None:
        self.endpoint = endpoint
        self.key = key
        self.fingerprint = fingerprint(key)
        self.presented = retry_in is None
        super().__init__(
            f"host key of {endpoint.known_hosts_entry} is unknown ({key.get_name()} {self.fingerprint}); "
            f"verify it, then run `mixops check --site FILE --trust-new` to trust it{_retry_note(retry_in)}")

    def repeated(self, retry_in: float) -> HostKeyUnknown:
        """The same refusal, raised again while the node waits for its next attempt."""
        return HostKeyUnknown(self.endpoint, self.key, retry_in)


class HostKeyChanged(SSHError):
    """The node presented a key other than the one in known_hosts: always refused.

    `presented` is False when the refusal is repeated from the retry backoff (no connection was made):
    the key was not seen again, but nothing says it is right now."""

    def __init__(self, endpoint: Endpoint, key: paramiko.PKey, expected: paramiko.PKey,
                 retry_in: float | None = None) -> None:
        self.endpoint = endpoint
        self.key = key
        self.expected = expected
        self.fingerprint = fingerprint(key)
        self.presented = retry_in is None
        super().__init__(
            f"HOST KEY CHANGED for {endpoint.known_hosts_entry}: got {key.get_name()} {self.fingerprint}, "
            f"known_hosts has {fingerprint(expected)}; refused (possible man-in-the-middle){_retry_note(retry_in)}")

    def repeated(self, retry_in: float) -> HostKeyChanged:
        """The same refusal, raised again while the node waits for its next attempt."""
        return HostKeyChanged(self.endpoint, self.key, self.expected, retry_in)


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


def _where(endpoint: Endpoint) -> str:
    return f"{endpoint.host}:{endpoint.port}"


def _describe(exc: BaseException, endpoint: Endpoint) -> str:
    """One clear line for a failure of the SSH layer (paramiko's own texts are often misleading)."""
    where = _where(endpoint)
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
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return f"connection closed by {where}"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {one_line(exc.strerror or str(exc))}"
    if isinstance(exc, paramiko.SSHException):
        text = one_line(str(exc) or type(exc).__name__)
        if "banner" in text.lower():
            return f"no SSH banner from {where} within {endpoint.connect_timeout_s:g} s"
        return f"SSH error with {where}: {text}"
    return f"{type(exc).__name__} with {where}: {one_line(str(exc))}"


def _phase_reason(transport: paramiko.Transport | None, endpoint: Endpoint, expired: bool) -> str | None:
    """Which step of the handshake a failed connection stopped in, when that is the useful reason: paramiko
    reports a node that never sends its banner as "No existing session" or "Error reading SSH protocol
    banner" followed by whatever the socket said once it had been closed."""
    if transport is None:
        return None
    where, limit = _where(endpoint), f"{endpoint.connect_timeout_s:g} s"
    if not transport.remote_version:
        return (f"no SSH banner from {where} within {limit} (the port accepts connections but sends nothing)"
                if expired else f"connection closed by {where} before its SSH banner")
    if not transport.initial_kex_done:
        return (f"SSH key exchange with {where} did not finish within {limit}" if expired
                else None)
    if not transport.is_authenticated():
        return f"authentication at {where} did not finish within {limit}" if expired else None
    return f"SSH session with {where} did not open within {limit}" if expired else None


class _Watchdog:
    """Ends a connection that is still being set up at its deadline, whichever step it is waiting in.

    paramiko bounds its steps separately (TCP connect, banner, key exchange, auth, channel open) and
    waits without a bound for an exec request's answer; one hard deadline for the whole connect phase
    keeps a node that stops answering half-way from holding a sweep for a multiple of connect_timeout_s.
    Shutting the socket down (or closing the jump channel) wakes every wait in paramiko at once."""

    def __init__(self, deadline: float, stop: Callable[[], None]) -> None:
        self.expired = False
        self._stop = stop
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.expired = True
        try:
            self._stop()
        except (OSError, paramiko.SSHException, EOFError):
            pass            # already closed: nothing left to wake

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket | paramiko.Channel) -> None:
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)
    else:
        sock.close()


class _KnownHosts:
    """A known_hosts file indexed by host name, for lookups as paramiko.HostKeys answers them (per key type,
    the first line in the file that names the host, plainly or hashed). paramiko's HostKeys.load checks each
    line against all before it and its lookup scans every line: for the fleet's 1,280 lines one parse took
    5.6 s of the GIL (every connect of the first sweep waiting behind it, 531 of 1,280 past their connect
    deadline) and each connect another 1,280 comparisons."""

    def __init__(self, path: str) -> None:
        self.plain: dict[str, list[tuple[int, paramiko.PKey]]] = {}
        self.hashed: list[tuple[int, str, paramiko.PKey]] = []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, raw in enumerate(fh, 1):
                line = raw.strip()
                if not line or line[0] == "#":
                    continue
                try:
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
                except paramiko.SSHException:
                    continue            # as HostKeys.load: a line it cannot read is skipped
                if entry is None or entry.key is None:
                    continue
                for host in entry.hostnames:
                    if host.startswith("|1|"):
                        self.hashed.append((lineno, host, entry.key))
                    else:
                        self.plain.setdefault(host, []).append((lineno, entry.key))

    def lookup(self, hostname: str) -> dict[str, paramiko.PKey]:
        """Key type -> key for `hostname`, as paramiko.HostKeys.lookup would give them."""
        found = list(self.plain.get(hostname, ()))
        for lineno, host, key in self.hashed:
            try:
                if hmac.compare_digest(paramiko.HostKeys.hash_host(hostname, host), host):
                    found.append((lineno, key))
            except (ValueError, TypeError, binascii.Error):
                continue
        keys: dict[str, paramiko.PKey] = {}
        for _, key in sorted(found, key=lambda item: item[0]):
            keys.setdefault(key.get_name(), key)
        return keys


_KNOWN_CACHE: dict[str, tuple[tuple[int, int], _KnownHosts]] = {}
_KNOWN_LOCK = threading.Lock()


def _known_hosts(path: str) -> _KnownHosts:
    """known_hosts parsed once per change of the file (500 nodes used to re-parse it 500 times a sweep)."""
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    with _KNOWN_LOCK:
        cached = _KNOWN_CACHE.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        keys = _KnownHosts(path)
        _KNOWN_CACHE[path] = (stamp, keys)
        return keys


def _known_hosts_stamp(endpoint: Endpoint) -> tuple[int, int] | None:
    try:
        st = os.stat(os.path.expanduser(endpoint.known_hosts))
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def connect_client(endpoint: Endpoint, deadline: float | None = None) -> paramiko.SSHClient:
    """Open a verified, authenticated SSHClient (through the jump host when one is set).

    The whole connect phase, jump host included, ends by `deadline` (default: connect_timeout_s from
    now): TCP connect, banner, key exchange and authentication share that one budget."""
    if deadline is None:
        deadline = time.monotonic() + endpoint.connect_timeout_s
    client = paramiko.SSHClient()
    known = os.path.expanduser(endpoint.known_hosts)
    if os.path.exists(known):
        try:
            entries: dict[str, paramiko.PKey] = _known_hosts(known).lookup(endpoint.known_hosts_entry)
        except (OSError, paramiko.SSHException) as exc:
            raise SSHError(f"cannot read known_hosts {known}: {one_line(str(exc))}") from exc
        mine = client.get_host_keys()
        for keytype, key in entries.items():
            mine.add(endpoint.known_hosts_entry, keytype, key)
    client.set_missing_host_key_policy(_RefuseUnknown(endpoint))
    sock: socket.socket | paramiko.Channel | None = None
    jump_client: paramiko.SSHClient | None = None
    watchdog: _Watchdog | None = None

    def give_up() -> None:
        transport = client.get_transport()
        client.close()
        if transport is not None:
            transport.close()
        if jump_client is not None:
            _close_client(jump_client)

    try:
        if endpoint.jump is not None:
            jump_client = connect_client(endpoint.jump, deadline)
            transport = jump_client.get_transport()
            assert transport is not None
            sock = transport.open_channel("direct-tcpip", (endpoint.host, endpoint.port), ("127.0.0.1", 0),
                                          timeout=max(0.1, deadline - time.monotonic()))
        else:
            sock = socket.create_connection((endpoint.host, endpoint.port),
                                            timeout=max(0.1, deadline - time.monotonic()))
            # Without TCP_NODELAY every exchange waits ~40 ms on delayed ACK (fleet README).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keys = [os.path.expanduser(p) for p in endpoint.identity_files]
        # paramiko's own step timeouts sit past the watchdog, which ends the phase at the deadline; were
        # they equal, start_client() could return unfinished and the reason read "No existing session".
        slack = max(0.1, deadline - time.monotonic()) + 1.0
        stop_sock = sock
        with _Watchdog(deadline, lambda: _shutdown(stop_sock)) as watchdog:
            client.connect(
                endpoint.host, port=endpoint.port, username=endpoint.user, sock=sock,
                key_filename=[k for k in keys if os.path.exists(k)] or None,  # type: ignore[arg-type]
                timeout=slack, banner_timeout=slack, auth_timeout=slack, channel_timeout=slack,
                allow_agent=True, look_for_keys=not keys,
            )
    except paramiko.BadHostKeyException as exc:
        give_up()
        raise HostKeyChanged(endpoint, exc.key, exc.expected_key) from exc
    except SSHError:
        give_up()               # a refused unknown key, or the jump host's own failure
        raise
    except (OSError, paramiko.SSHException, EOFError) as exc:
        transport = client.get_transport()
        expired = watchdog is not None and watchdog.expired
        reason = _phase_reason(transport, endpoint, expired) if sock is not None else None
        give_up()
        raise SSHError(reason or _describe(exc, endpoint)) from exc
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(endpoint.keepalive_s)
        # paramiko's reader thread wakes every 0.1 s to look for a close: with hundreds of idle sessions that
        # is most of the collector's idle CPU (40 ms/s for 200). It wakes at this interval instead; close()
        # shuts a socket down (a jump host's channel wakes its reader when closed), which ends it at once.
        # At 2 s, 1,280 sessions still cost 33 ms/s idle, ~0.5 ms per node-poll over a 20 s sweep; the wake
        # also paces keepalives (sent at most READER_WAKE_S after keepalive_s of silence).
        assert sock is not None
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


_CLOCK = ("mx_now() { if read -r MX_T _ </proc/uptime 2>/dev/null && [ -n \"$MX_T\" ]; then MX_T=${MX_T%%.*}; "
          "else MX_T=$(date +%s); fi; };")


def build_script(commands: tuple[Command, ...], nonce: str, timeout_s: float, since: int) -> str:
    """The framed sweep script. Only constants from command plans and integers go into it.

    `timeout_s` is the budget of the whole plan, as the client's deadline is (timeout_s + 1 after
    sending). The first command runs under `timeout timeout_s`; each later one under what is left of the
    budget in whole seconds (counted from the start second, so it ends before start + timeout_s + 1), and
    is not started when nothing is left: a node whose every tool hangs still answers, its sections framed,
    before the client gives up (and its session stays usable)."""
    t = max(1, int(round(timeout_s)))
    # The budget's clock is read with the shell's own `read` from /proc/uptime (whole seconds), not with
    # `$(date +%s)`: a fork and an exec fewer per command on the node, every sweep (`date` where it is unreadable).
    parts = [f"MIXOPS_SINCE={int(since)}; export MIXOPS_SINCE; {_CLOCK} mx_now; MX_END=$((MX_T + {t}))"]
    for i, cmd in enumerate(commands):
        if not re.fullmatch(r"[\w.\-]+", cmd.section):
            raise ValueError(f"bad section name {cmd.section!r}")
        run = f"/bin/sh -c {shlex.quote(cmd.shell)} </dev/null 2>\"$E\"; rc=$?"
        if i == 0:
            step = f"timeout -k 1 {t} {run}"
        else:
            step = (f"mx_now; r=$((MX_END - MX_T)); if [ \"$r\" -ge 1 ]; then timeout -k 1 \"$r\" {run}; "
                    f"else echo 'not run: the commands before it used up command_timeout_s ({t} s)' >\"$E\"; "
                    f"rc=124; fi")
        parts.append(
            f"printf '\\n@@MX {nonce} B {cmd.section}\\n'; {step}; "
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
        # The host-key refusal in force: repeated during the backoff, forgotten after a verified connection.
        self._refused: HostKeyChanged | HostKeyUnknown | None = None
        self._refused_stamp: tuple[int, int] | None = None
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
        refused = self._refused
        if refused is not None and _known_hosts_stamp(self.endpoint) != self._refused_stamp:
            self._retry_at = now        # the operator edited known_hosts (trusted a key): try it at once
        if now < self._retry_at:
            if refused is not None:
                # The key was not looked at again, but a refusal stands until a verified connection.
                raise refused.repeated(self._retry_at - now)
            raise SSHError(f"{self._last_error} (next retry in {self._retry_at - now:.0f} s)")
        deadline = now + self.endpoint.connect_timeout_s
        try:
            self._client = connect_client(self.endpoint, deadline)
            transport = self._client.get_transport()
            assert transport is not None
            # Opening the session and starting the shell belong to the connect phase: same deadline.
            with _Watchdog(deadline, transport.close) as watchdog:
                try:
                    chan = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
                    chan.exec_command(f"/bin/sh -c {shlex.quote(_SHELL_PRELUDE)}")
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    if watchdog.expired:
                        raise SSHError(f"SSH session with {_where(self.endpoint)} did not open within "
                                       f"{self.endpoint.connect_timeout_s:g} s") from exc
                    raise
        except (HostKeyChanged, HostKeyUnknown) as exc:
            self._note_failure(str(exc), exc)
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
        self._refused = None
        return chan

    def _note_failure(self, message: str, refused: HostKeyChanged | HostKeyUnknown | None = None) -> None:
        self.close()
        self._failures += 1
        self._last_error = message
        # The backoff repeats the last failure: a refusal with its fingerprints, or the other reason.
        self._refused = refused
        self._refused_stamp = _known_hosts_stamp(self.endpoint) if refused is not None else None
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
                chan.settimeout(timeout)        # a frozen node that stops taking data cannot hold the send
                chan.sendall(build_script(commands, nonce, timeout, since).encode())
            except (OSError, paramiko.SSHException, EOFError) as exc:
                msg = _describe(exc, self.endpoint)
                self._note_failure(msg)
                raise SSHError(msg) from exc
            # One deadline for the node's whole plan (README: "gives up command_timeout_s + 1 after
            # sending"). Each command also runs under the node's `timeout`, but a client deadline of the
            # timeout times the number of commands let one hung node stretch every sweep (issue 16).
            return Pending(commands, nonce, time.monotonic() + timeout + 1.0)

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
        # Past the deadline, with hundreds of nodes the answer may have arrived long ago and only be read
        # now: what is buffered is taken, for at most DRAIN_S, so a node trickling bytes cannot hold us.
        drain_until = max(deadline, time.monotonic()) + DRAIN_S
        try:
            while not buf.endswith(done):
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    if not chan.recv_ready() or now >= drain_until:
                        break
                    remaining = min(0.05, drain_until - now)
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
            if out.timed_out_in is None:
                # Nothing framed came back (the answer is sent in one piece at its end): a frozen node,
                # a stuck shell, or commands that ran past the budget together.
                raise SSHError(f"timed out: no answer from {_where(self.endpoint)} within {timeout + 1:g} s of "
                               f"sending the sweep (command_timeout_s = {timeout:g}; node hung or frozen?)")
            running = out.timed_out_in
            shell = next((c.shell for c in commands if c.section == running), running)
            shown = shell if len(shell) <= 60 else shell[:59] + "…"
            raise SSHError(f"timed out after {timeout:g} s running `{shown}`")
        return out
