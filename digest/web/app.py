"""``digest serve``: the Starlette app, its routes and guards, and uvicorn to run it.

Handlers run in the thread pool, each thread with its own connection to the
database that ``digest run`` and ``digest send`` use (WAL: readers never wait,
a write waits its turn), so the event loop never waits on SQLite or a file.
Responses carry a strict Content-Security-Policy and no-frame, no-referrer
headers; bodies over ``[web] max_body_kb`` are refused with 413, however they
are sent. X-Forwarded-For counts only from ``[web] trusted_proxies``. The
access log is off: URLs hold tokens, so the app logs what was done and for
whom instead.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from os import PathLike
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest import links
from digest.config import Settings
from digest.errors import DigestError
from digest.render import package_templates
from digest.web import hooks, onboard, pages, prefs, signup
from digest.web.limits import RateLimit
from digest.web.site import Site, Stores, log, page_templates, utc_now

HEADERS = [
    (b"content-security-policy", b"default-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]
BOTH = ["GET", "POST"]


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> ASGIApp:
    """The web app over the configured database (its connections opened as handlers need them)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stores = Stores(settings.database.location)
        stores.here()  # opened (and the schema brought up to date) before the first request
        app.state.site = Site(
            settings,
            stores,
            page_templates(settings.render.templates_dir),
            RateLimit(settings.web.signups_per_hour, clock=clock),
            clock,
            app.url_path_for,
        )
        try:
            yield
        finally:
            stores.close()

    signed = {  # the pages a signed link opens: their paths are links.PATHS, as in every message
        "unsubscribe": pages.unsubscribe,
        "resubscribe": pages.resubscribe,
        "feedback": pages.feedback,
        "preferences": prefs.preferences,
        "feed": pages.feed,
        "confirm": signup.confirm,
        "email_again": prefs.email_again,
        "onboard": onboard.onboard,
    }
    app = Starlette(
        routes=[
            Route("/", pages.home, name="home"),
            *(
                Route(links.PATHS[name], page, methods=["GET"] if name == "feed" else BOTH, name=name)
                for name, page in signed.items()
            ),
            Route("/signup", signup.signup, methods=BOTH, name="signup"),
            Route("/healthz", pages.healthz, name="healthz"),
            *(
                Route(path, hooks.hooked(getattr(hooks, name)), methods=["POST"], name=f"hook_{name}")
                for name, path in hooks.PATHS.items()
            ),
            Mount("/static", assets(settings.render.templates_dir), name="static"),
        ],
        lifespan=lifespan,
    )
    # Outside Starlette's own error handling, so that even its 500 carries the headers.
    return SecurityHeaders(BodyLimit(app, max_body=settings.web.max_body_kb * 1024))


HOOK_BODY = 4 << 20  # a provider's batch of events (SendGrid posts many at once): larger than any form


class SecurityHeaders:
    """A strict Content-Security-Policy, no framing, no referrer, no sniffing and no caching on every
    response that does not say otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send))


class BodyLimit:
    """A request body over ``max_body`` bytes answered 413, whether it says its length or streams
    (chunked), before any handler sees it."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max(self.max_body, HOOK_BODY) if str(scope.get("path", "")).startswith("/hooks/") else self.max_body
        length = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            await _refuse(send, 413, b"request body too large")
            return
        body = await _read(receive, limit)
        if body is None:
            await _refuse(send, 413, b"request body too large")
            return
        await self.app(scope, _replay(body, receive), send)


ASSETS = ("site.css", "timezone.js")  # the stylesheet and the one optional script


class Assets(StaticFiles):
    """The pages' stylesheet and script, from ``[render] templates_dir``/web/ when there, else the package's;
    nothing else of those folders (the page templates) is served."""

    def __init__(self, folders: list[Path]) -> None:
        super().__init__(directory=folders[-1])
        self.all_directories = list(folders)  # looked up in this order

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in ASSETS:
            return "", None
        return super().lookup_path(path)

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def assets(templates_dir: Path | None) -> Assets:
    folders = [templates_dir / "web"] if templates_dir is not None else []
    return Assets([*folders, package_templates() / "web"])


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; the handler sees an empty rest
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the body read already, then waits as the original does (for a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            have = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in have)]
        await send(message)

    return sending


async def _refuse(send: Send, status: int, text: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text})


def server_config(app: ASGIApp, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for the app: X-Forwarded-For honoured only from ``[web] trusted_proxies``."""
    trusted = settings.web.trusted_proxies
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        lifespan="on",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [],
    )


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound; a port in use (or not ours to take) is one line saying so and the fix."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise DigestError(f"{where} is in use by another program; stop it, or use another port: --port N") from e
        if e.errno == errno.EACCES:
            raise DigestError(f"{where}: this user may not listen there; use a port above 1023: --port N") from e
        raise DigestError(f"{where}: cannot listen there ({e.strerror}); check [web] host, or --host") from e
    return sock


def serve(settings: Settings, *, host: str, port: int) -> int:
    """Run the app under uvicorn until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="digest serve: %(message)s")
    sock = listen(host, port)
    base = urlsplit(settings.delivery.base_url)
    if not settings.delivery.base_url:
        log.warning("[delivery] base_url is not set: emails carry no links to this server")
    elif base.scheme != "https" and base.hostname not in ("localhost", "127.0.0.1", "::1"):
        log.warning("[delivery] base_url %s is not https: readers' links travel in the clear", base.geturl())
    if not settings.delivery.secret.get_secret_value():
        log.warning("DIGEST_DELIVERY__SECRET is not set: no link can be checked, every link answers 404")
    log.info("listening on http://%s:%d (database %s)", host, port, settings.database.location)
    uvicorn.Server(server_config(create_app(settings), settings, host=host, port=port)).run(sockets=[sock])
    return 0
