"""What every request handler shares: the settings, the open database, the page templates, the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from digest import links
from digest.config import Settings
from digest.models import Subscriber
from digest.render import package_templates
from digest.store import Store
from digest.web.limits import RateLimit

log = logging.getLogger("digest.serve")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Site:
    """The app's state: one database connection, used from the event loop's thread only."""

    settings: Settings
    store: Store
    pages: jinja2.Environment
    signups: RateLimit
    clock: Callable[[], datetime] = utc_now  # tests drive it
    started: datetime = field(default_factory=utc_now)

    @property
    def secret(self) -> str:
        return self.settings.delivery.secret.get_secret_value()

    def page(self, template: str, *, status: int = 200, **data: Any) -> HTMLResponse:
        html = self.pages.get_template(template).render(**data)
        return HTMLResponse(html, status_code=status)

    def not_found(self) -> HTMLResponse:
        """The one answer for every bad, tampered, expired or other-purpose link: it reveals nothing."""
        return self.page("missing.html.j2", status=404, title="Link not found")

    def subscriber(self, token: str, purpose: str) -> tuple[Subscriber, links.Claim] | None:
        """The subscriber a token was signed for, if it is good and for ``purpose``."""
        claim = links.read(token)
        if claim is None or claim.purpose != purpose or not self.secret:
            return None
        found = self.store.subscriber_by_key(claim.key)
        if found is None or not links.check(self.secret, token, claim, name=found.name):
            return None
        return found, claim

    def links_of(self, subscriber: Subscriber) -> links.Links | None:
        return links.links_for(subscriber.name, subscriber.link_key, self.settings.delivery)


def page_templates() -> jinja2.Environment:
    """The web pages' Jinja environment (autoescaped; the same look as the email)."""
    folder = Path(package_templates()) / "web"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
