"""``digest serve`` for tests: the real app under a real uvicorn on 127.0.0.1 and a free port, in a thread."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage

import httpx
import uvicorn

from digest.config import Settings
from digest.web import create_app
from digest.web.app import server_config


@contextmanager
def web_server(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Iterator[str]:
    """Yields the server's base URL; stops it on the way out."""
    app = create_app(settings, clock=clock) if clock else create_app(settings)
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        thread.join(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "uvicorn did not stop"


def local(url: str, base: str) -> str:
    """A link from a message (on the public base URL) pointed at the test server."""
    return f"{base}/{url.split('/', 3)[3]}"


def links_in(mail: EmailMessage, kind: str) -> list[str]:
    """The https links of one kind (u, f, p) in a message's plain-text part, in order."""
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(rf"https://digest\.example\.org/{kind}/[A-Za-z0-9_.-]+", body.get_content())


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, follow_redirects=False, timeout=30)
