"""Real servers on 127.0.0.1 for delivery tests: aiosmtpd with scripted replies, and an HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
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
from typing import Any

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
    rcpt_replies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    data_replies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sessions: int = 0  # EHLO greetings: one per connection
    stop_after: int | None = None  # accept this many, then refuse the next and shut down
    on_stop: Any = None
    delay: float = 0.0

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

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
            time.sleep(self.box.delay)
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        self.box.messages.append(BytesParser(policy=policy.default).parsebytes(data))
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's Controller, remembering the server side of every connection it accepts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted: list[SMTP] = []

    def factory(self) -> SMTP:
        protocol: SMTP = super().factory()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it unannotated
        self.accepted.append(protocol)
        return protocol

    async def _hang_up(self) -> None:
        assert self.server is not None
        self.server.close()  # no new connections
        # A connection accepted just before the close may get its transport only later in this
        # loop, so close what is open, wait a little, and look again until nothing is left open.
        for _ in range(20):
            await asyncio.sleep(0.05)
            open_ = [p.transport for p in self.accepted if p.transport is not None and not p.transport.is_closing()]
            if not open_:
                break
            for transport in open_:
                transport.close()
        await asyncio.sleep(0)  # let the transports finish closing

    def shut_down(self) -> None:
        """Python 3.11's Server.close() leaves open connections open, and their transports are then
        reported unclosed (ResourceWarning). So first, in the server's own loop: stop listening, let
        accepts under way finish, close every connection; only then stop the loop."""
        asyncio.run_coroutine_threadsafe(self._hang_up(), self.loop).result(timeout=10)
        self.stop()


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


@dataclass
class Hooks:
    """Scripted replies per path (the last one repeats), and every request received."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    received: list[tuple[str, Any, int]] = field(default_factory=list)  # path, JSON body, status answered

    def accepted(self, path: str) -> list[Any]:
        return [body for p, body, status in self.received if p == path and 200 <= status < 300]


@contextmanager
def http_server(hooks: Hooks) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            script = hooks.replies.get(self.path) or [Reply()]
            reply = script.pop(0) if len(script) > 1 else script[0]
            if reply.delay:
                time.sleep(reply.delay)
            hooks.received.append((self.path, body, reply.status))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            data = reply.body.encode()
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
