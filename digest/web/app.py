"""``digest serve``: the Starlette app, its routes and guards, and uvicorn to run it.

Every request shares one connection to the database that ``digest run`` and
``digest send`` use (WAL: readers never wait, a write waits its turn).
Responses carry a strict Content-Security-Policy and no-frame, no-referrer
headers; bodies over ``[web] max_body_kb`` are refused. The access log is
off: URLs hold tokens, so the app logs what was done and for whom instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from digest.config import Settings
from digest.store import Store
from digest.web import pages, prefs, signup
from digest.web.limits import RateLimit
from digest.web.site import Site, log, page_templates, utc_now

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADERS = [
    (b"content-security-policy", b"default-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]
BOTH = ["GET", "POST"]


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> ASGIApp:
    """The web app over the configured database (opened when the server starts)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with Store.open(settings.database.path) as store:
            app.state.site = Site(
                settings, store, page_templates(), RateLimit(settings.web.signups_per_hour, clock=clock), clock
            )
            yield

    app = Starlette(
        routes=[
            Route("/", pages.home),
            Route("/u/{token}", pages.unsubscribe, methods=BOTH),
            Route("/f/{token}", pages.feedback, methods=BOTH),
            Route("/p/{token}", prefs.preferences, methods=BOTH),
            Route("/feeds/{token}.atom", pages.feed),
            Route("/signup", signup.signup, methods=BOTH),
            Route("/c/{token}", signup.confirm, methods=BOTH),
            Route("/healthz", pages.healthz),
            *(Route(f"/{name}", pages.static) for name in pages.STATIC),
        ],
        lifespan=lifespan,
    )
    return _guarded(app, max_body=settings.web.max_body_kb * 1024)


def _guarded(app: ASGIApp, *, max_body: int) -> ASGIApp:
    """Security headers on every response; a body over ``max_body`` bytes answered 413 unread."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > max_body:
            await _refuse(send, 413, b"request body too large")
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_body:
                raise _TooLargeError
            return message

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in have)]
            await send(message)

        try:
            await app(scope, capped, with_headers)
        except _TooLargeError:
            await _refuse(send, 413, b"request body too large")

    return guarded


class _TooLargeError(Exception):
    """A body that grew past the limit while being read (no or a false Content-Length)."""


async def _refuse(send: Send, status: int, text: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain"), *HEADERS]}
    )
    await send({"type": "http.response.body", "body": text})


def serve(settings: Settings, *, host: str, port: int) -> int:
    """Run the app under uvicorn until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="digest serve: %(message)s")
    base = urlsplit(settings.delivery.base_url)
    if not settings.delivery.base_url:
        log.warning("[delivery] base_url is not set: emails carry no links to this server")
    elif base.scheme != "https" and base.hostname not in ("localhost", "127.0.0.1", "::1"):
        log.warning("[delivery] base_url %s is not https: readers' links travel in the clear", base.geturl())
    if not settings.delivery.secret.get_secret_value():
        log.warning("DIGEST_DELIVERY__SECRET is not set: no link can be checked, every link answers 404")
    log.info("listening on http://%s:%d (database %s)", host, port, settings.database.path)
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, access_log=False, log_level="warning", lifespan="on"
    )
    uvicorn.Server(config).run()
    return 0
