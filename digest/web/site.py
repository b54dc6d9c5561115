"""What every request handler shares: the settings, the database, the page templates, the log, and how a
handler is called.

Handlers are plain functions run in Starlette's thread pool (``threaded``): the
event loop only reads the request and writes the answer, so a slow disk, a busy
database or a page being rendered never holds up another request. Each thread
has its own database connection (SQLite's connections stay in their thread).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest import links, pipeline
from digest.config import Settings
from digest.models import Paper, Subscriber
from digest.render import package_templates
from digest.store import Bounces, Digests, Feedback, Location, Papers, Signups, Store, Subscribers
from digest.web.limits import RateLimit

log = logging.getLogger("digest.serve")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Stores:
    """One database connection per thread that asks for one, all closed when the server stops."""

    def __init__(self, path: Location) -> None:
        self._path = path
        self._local = threading.local()
        self._opened: list[ExitStack] = []
        self._lock = threading.Lock()

    def here(self) -> Store:
        """This thread's connection, opened (and the schema brought up to date) on first use."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            stack = ExitStack()
            store = stack.enter_context(Store.open(self._path))
            self._local.store = store
            with self._lock:
                self._opened.append(stack)
        return store

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for stack in opened:
            with suppress(Exception):  # a connection of another thread: the process ends with it
                stack.close()


@dataclass
class Site:
    """The app's state, shared by the handlers' threads."""

    settings: Settings
    stores: Stores
    pages: jinja2.Environment
    signup_limit: RateLimit
    clock: Callable[[], datetime] = utc_now  # tests drive it
    path_for: Callable[..., object] = lambda name, **params: "/"  # the app's url_path_for: a route's path by name

    # The parts of the database the reader's side uses, on the calling thread's connection.
    @property
    def subscribers(self) -> Subscribers:
        return self.stores.here().subscribers

    @property
    def bounces(self) -> Bounces:
        """Which of a reader's addresses are suspended; lifted when the reader confirms one takes mail again."""
        return self.stores.here().bounces

    @property
    def feedback(self) -> Feedback:
        return self.stores.here().feedback

    @property
    def signups(self) -> Signups:
        return self.stores.here().signups

    @property
    def digests(self) -> Digests:
        """Read only: a reader's latest digests, for their feed."""
        return self.stores.here().digests

    @property
    def papers(self) -> Papers:
        """Read only: the paper a vote names."""
        return self.stores.here().papers

    def offers(self, subscriber: Subscriber) -> list[Paper]:
        """The archive papers the onboarding page offers this reader to rate, best match first."""
        profile = pipeline.stored_profile(subscriber)
        offers = pipeline.onboarding_offers(self.stores.here(), profile, settings=self.settings, now=self.clock())
        return [offer.item.paper for offer in offers]

    def status(self) -> pipeline.Status:
        """The brief status ``/healthz`` reports."""
        return pipeline.status(self.stores.here(), now=self.clock(), brief=True)

    @property
    def secret(self) -> str:
        return self.settings.delivery.secret.get_secret_value()

    def url(self, name: str, **params: str) -> str:
        """The path of the route ``name`` (``url('static', path='site.css')``): pages link by name."""
        return str(self.path_for(name, **params))

    def page(self, template: str, *, status: int = 200, **data: Any) -> HTMLResponse:
        html = self.pages.get_template(template).render(url=self.url, **data)
        return HTMLResponse(html, status_code=status)

    def not_found(self) -> HTMLResponse:
        """The one answer for every bad, tampered, expired or other-purpose link: it reveals nothing."""
        return self.page("missing.html.j2", status=404, title="Link not found")

    def bad_request(self, message: str) -> HTMLResponse:
        return self.page("missing.html.j2", status=400, title="That did not work", message=message)

    def subscriber(self, token: str, purpose: str) -> tuple[Subscriber, links.Claim] | None:
        """The subscriber a token was signed for, if it is good and for ``purpose``."""
        claim = links.read(token)
        if claim is None or claim.purpose != purpose or not self.secret:
            return None
        found = self.subscribers.by_key(claim.key)
        if found is None or not links.check(self.secret, token, claim, name=found.name):
            return None
        return found, claim

    def links_of(self, subscriber: Subscriber) -> links.Links | None:
        return links.links_for(subscriber.name, subscriber.link_key, self.settings.delivery)


@dataclass(frozen=True)
class Call:
    """What a handler is given of its request: all read on the event loop before the handler runs."""

    method: str
    params: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)  # a POST's form (urlencoded or multipart)
    client: str = "unknown"  # the client's address (a trusted proxy's X-Forwarded-For, else the peer)
    path: str = "/"


Handler = Callable[[Site, Call], Response]


def threaded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for ``handler``: the request read on the loop, the handler run in the thread pool."""

    async def endpoint(request: Request) -> Response:
        site: Site = request.app.state.site
        fields: dict[str, str] = {}
        if request.method == "POST":
            found = form_fields(await request.body(), request.headers.get("content-type", ""))
            if found is None:
                return await run_in_threadpool(site.bad_request, "The form could not be read. Please try again.")
            fields = found
        call = Call(
            request.method,
            dict(request.path_params),
            fields,
            request.client.host if request.client else "unknown",
            request.url.path,
        )
        return await run_in_threadpool(handler, site, call)

    endpoint.__name__ = handler.__name__
    return endpoint


def form_fields(body: bytes, content_type: str) -> dict[str, str] | None:
    """A form body as a dict (the last value of a repeated field wins): urlencoded, or multipart/form-data
    (as RFC 8058 allows for one-click unsubscribe). None when it cannot be read."""
    kind = content_type.partition(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart(body, content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}


def _multipart(body: bytes, content_type: str) -> dict[str, str] | None:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        return None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes) and part.get_filename() is None:
            fields[name] = payload.decode("utf-8", "replace")
    return fields


def page_templates(templates_dir: Path | None = None) -> jinja2.Environment:
    """The web pages' Jinja environment (autoescaped; the same look as the email). A file in
    ``[render] templates_dir``/web/ (a page, ``site.css``) is used instead of the packaged one."""
    folders = [templates_dir / "web"] if templates_dir is not None else []
    folders.append(Path(package_templates()) / "web")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(folder) for folder in folders]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
