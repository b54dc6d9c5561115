"""The reader's links: one-click unsubscribe, "more / less like this", the feed, health.

No GET changes anything: a GET shows a page with one button, and only the
POST it sends acts (mail scanners and link previews fetch every GET).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest import links
from digest.channels.files import atom_feed
from digest.models import Subscriber
from digest.web.site import Site, log

ONE_CLICK = "List-Unsubscribe=One-Click"


async def form(request: Request) -> dict[str, str]:
    """A urlencoded form body as a dict (the last value of a repeated field wins)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def unsubscribe(request: Request) -> Response:
    """GET: a page with a confirm button. POST (RFC 8058 one-click, or that button): unsubscribe, at once."""
    site = site_of(request)
    found = site.subscriber(request.path_params["token"], links.UNSUBSCRIBE)
    if found is None:
        return site.not_found()
    subscriber, _ = found
    if request.method == "GET":
        manage = _manage(site, subscriber)
        return site.page("unsubscribe.html.j2", title="Unsubscribe", subscriber=subscriber, done=False, manage=manage)
    if (await form(request)).get("List-Unsubscribe") != "One-Click":
        return site.page("missing.html.j2", status=400, title="Link not found")
    if subscriber.status != "unsubscribed":
        site.store.set_status(subscriber.name, "unsubscribed", at=site.clock(), by="reader")
        log.info("unsubscribed subscriber=%s by=reader", subscriber.name)
    return site.page("unsubscribe.html.j2", title="Unsubscribed", subscriber=subscriber, done=True, manage=None)


async def feedback(request: Request) -> Response:
    """GET: "more / less like this <paper>?" with one button. POST: the vote, recorded (the last one wins)."""
    site = site_of(request)
    found = site.subscriber(request.path_params["token"], links.FEEDBACK)
    parsed = links.parse_feedback(found[1].data) if found else None
    if found is None or parsed is None:
        return site.not_found()
    subscriber, _ = found
    vote, edition, paper_id = parsed
    paper = site.store.paper(paper_id)
    title = paper.title if paper else paper_id
    data: dict[str, Any] = {"subscriber": subscriber, "vote": vote, "paper_title": title}
    data["manage"] = _manage(site, subscriber)
    if request.method == "GET":
        title = "More like this" if vote > 0 else "Less like this"
        return site.page("feedback.html.j2", title=title, done=False, **data)
    if site.store.vote(subscriber.name, paper_id, vote, edition=edition or None, at=site.clock()):
        log.info("feedback subscriber=%s vote=%+d", subscriber.name, vote)
    return site.page("feedback.html.j2", title="Thank you", done=True, **data)


def _manage(site: Site, subscriber: Subscriber) -> str | None:
    signed = site.links_of(subscriber)
    return signed.preferences if signed else None


async def feed(request: Request) -> Response:
    """The subscriber's Atom feed (signed: feeds cannot be listed or guessed)."""
    site = site_of(request)
    found = site.subscriber(request.path_params["token"], links.FEED)
    if found is None:
        return site.not_found()
    subscriber, _ = found
    history = site.store.recent_digests(subscriber.name, limit=site.settings.delivery.atom_entries)
    signed = site.links_of(subscriber)
    body = atom_feed(
        subscriber.name,
        history,
        site.store.digest_papers([d.id for d in history]),
        self_url=signed.feed if signed else None,
        updated=subscriber.updated_at,
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


async def healthz(request: Request) -> Response:
    """The database reachable, the age of the last ingest, deliveries failed in the last day: 200 or 503."""
    site = site_of(request)
    now = site.clock()
    try:
        status = site.store.status()
        failed = site.store.failed_since(now - timedelta(days=1))
    except Exception as e:  # any fault here is the answer, not a crash
        log.warning("healthz: database unreachable (%s)", type(e).__name__)
        return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
    last = status.last_dump
    age = round((now - last.ingested_at).total_seconds()) if last else None
    body = {"ok": True, "database": "ok", "last_ingest_age_s": age, "failed_last_24h": failed}
    return Response(json.dumps(body), media_type="application/json")


async def home(request: Request) -> Response:
    site = site_of(request)
    return site.page("home.html.j2", title="paper-digest", signup=site.settings.web.signup)


STATIC = {"site.css": "text/css", "timezone.js": "text/javascript"}


async def static(request: Request) -> Response:
    """The stylesheet and the one optional script, from the page templates' folder."""
    site = site_of(request)
    name = request.url.path.lstrip("/")
    assert site.pages.loader is not None
    text, _, _ = site.pages.loader.get_source(site.pages, name)
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "public, max-age=3600"})
