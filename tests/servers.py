"""Real servers on 127.0.0.1 for the tests: aiosmtpd with scripted replies, an HTTP server, Dovecot (IMAP over
TLS) for the bounce mailbox, and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server accepted, and the replies it is told to give first."""

    messages: list[EmailMessage] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)  # each accepted message's envelope sender (MAIL FROM)
    rcpt_replies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    data_replies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sessions: int = 0  # EHLO greetings: one per connection
    stop_after: int | None = None  # accept this many, then refuse the next and shut down
    on_stop: Any = None
    delay: float = 0.0
    hold_after: int | None = None  # accept this many, then hold every further DATA until released
    held: int = 0  # messages waiting at that gate now

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    def _gate_closed(self) -> bool:
        return self.box.hold_after is not None and len(self.box.messages) >= self.box.hold_after

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.box.sessions += 1
        session.host_name = hostname  # what aiosmtpd does itself when no hook takes over
        return responses

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        replies = self.box.rcpt_replies.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        for address in envelope.rcpt_tos:
            replies = self.box.data_replies.get(address)
            if replies:
                return replies.pop(0)
        if self.box.stop_after is not None and len(self.box.messages) >= self.box.stop_after:
            self.box.on_stop()
            return "421 4.3.2 Service shutting down"
        if self.box.delay:
            # On purpose: the sink takes one message at a time (a slow MTA), so a test can stop the sender
            # at a known count.
            time.sleep(self.box.delay)  # noqa: ASYNC251
        if self._gate_closed():
            self.box.held += 1
            try:
                deadline = time.monotonic() + 300  # the test opens the gate (or fails) long before
                # The gate is a threading.Event the test sets from its own thread: an asyncio.Event cannot be.
                while self._gate_closed() and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            finally:
                self.box.held -= 1
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        self.box.messages.append(BytesParser(policy=policy.default).parsebytes(data))
        self.box.senders.append(str(envelope.mail_from))
        return "250 2.0.0 Message accepted for delivery"


class _TrackedSMTP(SMTP):
    """aiosmtpd's protocol, telling its controller when its connection opens and when it is gone."""

    def __init__(self, live: set[_TrackedSMTP], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live = live
        live.add(self)  # from the moment it exists: its transport may only come later

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._live.discard(self)

    def abort(self) -> None:
        for transport in (self.transport, self._original_transport):
            if isinstance(transport, asyncio.WriteTransport):  # what a socket or TLS transport is
                transport.abort()


class _Controller(Controller):
    """aiosmtpd's Controller that closes every connection it accepted before its loop stops.

    Python 3.11's ``Server.close()`` leaves accepted connections open; worse, an
    accept still under way when it runs fails inside ``Server._attach`` and
    leaves its socket to the garbage collector. Either is reported (an unclosed
    socket or transport: ResourceWarning, an error here) in whichever test next
    collects garbage. So hanging up stops accepting without closing the server,
    lets the accepts under way finish, closes every connection (each protocol
    counts as live from its creation until ``connection_lost``), and closes the
    server last.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live: set[_TrackedSMTP] = set()

    def factory(self) -> SMTP:
        return _TrackedSMTP(self.live, self.handler, **self.SMTP_kwargs)

    async def _hang_up(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        for sock in self.server.sockets:
            self.loop.remove_reader(sock.fileno())  # no new connections; the server stays open
        deadline = time.monotonic() + 10
        while self.live or _accepting():
            for protocol in list(self.live):
                protocol.abort()  # connection_lost follows in this loop
            if time.monotonic() > deadline:
                states = [(p.transport, p._handler_coroutine) for p in self.live]
                raise AssertionError(f"SMTP connections never closed: {states}; accepting: {_accepting()}")
            await asyncio.sleep(0.01)
        self.server.close()
        current = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)  # the handlers see their cancellation through

    def shut_down(self) -> None:
        """In the server's own loop: stop listening, close every connection, let the handlers end;
        only then stop the loop."""
        asyncio.run_coroutine_threadsafe(self._hang_up(), self.loop).result(timeout=30)
        self.stop()


def _accepting() -> list[asyncio.Task[Any]]:
    """The loop's accepts under way (asyncio runs each as a task of ``_accept_connection2``)."""
    return [t for t in asyncio.all_tasks() if "_accept_connection" in getattr(t.get_coro(), "__qualname__", "")]


class SMTPServer:
    """aiosmtpd on 127.0.0.1; ``stop()`` and ``start()`` again keep the port and the mailbox."""

    def __init__(
        self, box: Mailbox | None = None, *, password: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.box = box or Mailbox()
        self.port = free_port()
        self.password = password
        self.tls = tls
        self._controller: _Controller | None = None
        self._stopping: threading.Thread | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)  # handled=False: let aiosmtpd send the 535

    def start(self) -> None:
        if self._stopping is not None:  # a stop requested from inside the server finishes first
            self._stopping.join(timeout=30)
            self._stopping = None
        options: dict[str, Any] = {}
        if self.password is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        if self.tls is not None:
            options |= {"tls_context": self.tls, "require_starttls": True}
        self._controller = _Controller(_Handler(self.box), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.shut_down()

    def stop_soon(self) -> None:
        """Stop from inside a handler (which runs in the server's loop): in a thread, this server only."""
        controller, self._controller = self._controller, None
        if controller is not None:
            self._stopping = threading.Thread(target=controller.shut_down, daemon=True)
            self._stopping.start()


@contextmanager
def smtp_server(
    box: Mailbox | None = None, *, password: str | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[SMTPServer]:
    server = SMTPServer(box, password=password, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: threading.Event | None = None  # answer only once the test sets it (at most 60 s): timing the test drives


@dataclass
class Hooks:
    """Scripted replies per path (the last one repeats), and every request received."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    received: list[tuple[str, Any, int]] = field(default_factory=list)  # path, JSON body, status answered
    hosts: list[str] = field(default_factory=list)  # the Host header of each request

    def accepted(self, path: str) -> list[Any]:
        return [body for p, body, status in self.received if p == path and 200 <= status < 300]


@contextmanager
def http_server(hooks: Hooks, *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A threaded HTTP (or, with ``tls``, HTTPS) server on 127.0.0.1; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            script = hooks.replies.get(self.path) or [Reply()]
            reply = script.pop(0) if len(script) > 1 else script[0]
            if reply.delay:
                time.sleep(reply.delay)
            if reply.hold is not None:
                reply.hold.wait(60)
            hooks.received.append((self.path, body, reply.status))
            hooks.hosts.append(self.headers.get("host", ""))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            data = reply.body.encode()
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    with serving(Handler, tls=tls) as url:
        yield url


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A threaded server for ``handler`` on 127.0.0.1 (HTTPS with ``tls``); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class IMAPServer:
    """Dovecot on 127.0.0.1 over TLS (a certificate of its own, ``cert``), one user ``bounces``."""

    port: int
    cert: Path
    user: str = "bounces"
    password: str = "imap-pw-0123"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the certificate is its own CA: trust it by ca_file)."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


@contextmanager
def imap_server() -> Iterator[IMAPServer]:
    """Debian's Dovecot started for the test (``.ci/run`` installs dovecot-imapd), stopped after it.

    It runs as root (CI does) and keeps the mail as the ``dovecot`` user, in a folder of its own under /tmp
    (pytest's are private to root). Skipped only outside CI, where Dovecot may not be installed."""
    if shutil.which("dovecot") is None or os.geteuid() != 0:
        if os.environ.get("CI"):
            raise AssertionError("CI must run the IMAP tests: .ci/run installs dovecot-imapd and runs as root")
        pytest.skip("needs Debian's dovecot-imapd and root (apt-get install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    try:
        root.chmod(0o755)
        owner = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "home"):
            (root / sub).mkdir()
        os.chown(root / "home", owner.pw_uid, owner.pw_gid)
        cert, _ = self_signed(root)
        server = IMAPServer(port=free_port(), cert=cert)
        (root / "users").write_text(f"{server.user}:{{PLAIN}}{server.password}::::::\n")
        conf = root / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(root=root, user="dovecot", port=server.port))
        process = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            _wait_for(server.port, process, root / "dovecot.log")
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_for(port: int, process: Any, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dovecot stopped: {log.read_text() if log.exists() else process.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("dovecot did not listen within 30 s")


PG_PASSWORD_ROLE = "digest_pw"  # the one role that must give a password (the other roles are trusted on 127.0.0.1)


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of the test's own: ``url(name)`` names one of its databases, ``create()`` makes one."""

    port: int
    password: str = "s3cret-pg-test-password"
    _made: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres", user: str = "digest") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create(self) -> str:
        """A new empty database, and its URL."""
        import psycopg

        name = f"t{os.getpid()}_{len(self._made)}_{time.monotonic_ns() % 10**9}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._made.append(name)
        return self.url(name)


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL program: on PATH, or where Debian's postgresql package puts it (not on PATH)."""
    if found := shutil.which(name):
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(versions[-1]) if versions else None


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Debian's PostgreSQL (``.ci/run`` installs it): ``initdb`` + ``pg_ctl`` in a temp folder, listening on
    127.0.0.1 and a socket in that folder, stopped and removed after. Run as root, the cluster belongs to
    ``nobody`` (PostgreSQL refuses root). Skipped only outside CI, where PostgreSQL may not be installed.
    For the tests it skips flushing to disk; ``durable`` keeps PostgreSQL's defaults (for benchmarks)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must run the PostgreSQL tests: .ci/run installs Debian's postgresql")
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)")
    user = "nobody" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    try:
        root.chmod(0o755)
        if user is not None:
            owner = pwd.getpwnam(user)
            os.chown(root, owner.pw_uid, owner.pw_gid)
        server = PostgresServer(port=free_port())
        data = root / "data"
        _as(user, [initdb, "-D", str(data), "-U", "digest", "-A", "trust", "-E", "UTF8", "--no-sync"], root)
        hba = f"host all {PG_PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + (data / "pg_hba.conf").read_text()
        (data / "pg_hba.conf").write_text(hba)
        fast = "" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories={root} "
            f"-c max_connections=200{fast}"
        )
        _as(user, [pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "-t", "60", "start"], root)
        try:
            import psycopg

            with psycopg.connect(server.url(), autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"CREATE ROLE {PG_PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD '{server.password}'")
            yield server
        finally:
            _as(user, [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop"], root, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as(user: str | None, command: list[str], root: Path, *, check: bool = True) -> None:
    done = subprocess.run(command, user=user, cwd=root, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(command[:1])} failed: {done.stdout}{done.stderr}")
