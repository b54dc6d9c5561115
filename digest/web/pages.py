"""The reader's links: one-click unsubscribe, "more / less like this", the feed, health.

No GET changes anything: a GET shows a page with one button, and only the
POST it sends acts (mail scanners and link previews fetch every GET).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from digest import links
from digest.models import Subscriber
from digest.render.atom import atom_feed
from digest.web.site import Call, Site, log, threaded


@threaded
def unsubscribe(site: Site, call: Call) -> Response:
    """GET: a page with a confirm button. POST (RFC 8058 one-click, urlencoded or multipart, or that button):
    unsubscribe, at once."""
    found = site.subscriber(call.params["token"], links.UNSUBSCRIBE)
    if found is None:
        return site.not_found()
    subscriber, _ = found
    if call.method == "GET":
        manage = _manage(site, subscriber)
        return site.page("unsubscribe.html.j2", title="Unsubscribe", subscriber=subscriber, done=False, manage=manage)
    if call.fields.get("List-Unsubscribe") != "One-Click":
        return site.bad_request("This unsubscribe request was incomplete. Please use the button on the page.")
    if subscriber.status != "unsubscribed":
        site.subscribers.set_status(subscriber.name, "unsubscribed", at=site.clock(), by="reader")
        log.info("unsubscribed subscriber=%s by=reader", subscriber.name)
    return unsubscribed_page(site, site.subscribers.get(subscriber.name) or subscriber)


def unsubscribed_page(site: Site, subscriber: Subscriber, *, status: int = 200) -> Response:
    """ "You are unsubscribed", with the way back when the reader unsubscribed themselves."""
    return site.page(
        "unsubscribe.html.j2",
        status=status,
        title="Unsubscribed",
        subscriber=subscriber,
        done=True,
        manage=None,
        resubscribe=way_back(site, subscriber),
    )


def way_back(site: Site, subscriber: Subscriber) -> str | None:
    """The signed resubscribe URL (a POST, valid ``RESUBSCRIBE_DAYS``), only after the reader's own unsubscribe:
    an operator's, or the folder's, is not the reader's to undo."""
    signed = site.links_of(subscriber)
    if signed is None or subscriber.status != "unsubscribed" or subscriber.unsubscribed_by != "reader":
        return None
    until = int((site.clock() + timedelta(days=links.RESUBSCRIBE_DAYS)).timestamp())
    return site.url("resubscribe", token=signed.token(links.RESUBSCRIBE, str(until)))  # a form here posts to it


@threaded
def resubscribe(site: Site, call: Call) -> Response:
    """GET: a page with a button. POST: active again, if the reader unsubscribed themselves and the link is fresh."""
    found = site.subscriber(call.params["token"], links.RESUBSCRIBE)
    if found is None or not found[1].data.isdigit() or int(found[1].data) < site.clock().timestamp():
        return site.not_found()
    subscriber, _ = found
    if subscriber.status != "unsubscribed":
        return site.page("resubscribe.html.j2", title="Subscribed", subscriber=subscriber, done=True)
    if subscriber.unsubscribed_by != "reader":
        return site.page("resubscribe.html.j2", status=409, title="Unsubscribed", subscriber=subscriber, done=False)
    if call.method == "GET":
        return site.page("resubscribe.html.j2", title="Resubscribe", subscriber=subscriber, done=False)
    site.subscribers.set_status(subscriber.name, "active", at=site.clock())
    log.info("resubscribed subscriber=%s by=reader", subscriber.name)
    return site.page("resubscribe.html.j2", title="Subscribed again", subscriber=subscriber, done=True)


@threaded
def feedback(site: Site, call: Call) -> Response:
    """GET: "more / less like this <paper>?" with one button. POST: the vote, recorded (the last one wins)."""
    found = site.subscriber(call.params["token"], links.FEEDBACK)
    parsed = links.parse_feedback(found[1].data) if found else None
    if found is None or parsed is None:
        return site.not_found()
    subscriber, _ = found
    vote, edition, paper_id = parsed
    paper = site.papers.get(paper_id)
    title = paper.title if paper else paper_id
    data: dict[str, Any] = {"subscriber": subscriber, "vote": vote, "paper_title": title}
    data["manage"] = _manage(site, subscriber)
    if call.method == "GET":
        title = "More like this" if vote > 0 else "Less like this"
        return site.page("feedback.html.j2", title=title, done=False, **data)
    if site.feedback.vote(subscriber.name, paper_id, vote, edition=edition or None, at=site.clock()):
        log.info("feedback subscriber=%s vote=%+d", subscriber.name, vote)
    return site.page("feedback.html.j2", title="Thank you", done=True, **data)


def _manage(site: Site, subscriber: Subscriber) -> str | None:
    signed = site.links_of(subscriber)
    return signed.preferences if signed else None


@threaded
def feed(site: Site, call: Call) -> Response:
    """The subscriber's Atom feed (signed: feeds cannot be listed or guessed)."""
    found = site.subscriber(call.params["token"], links.FEED)
    if found is None:
        return site.not_found()
    subscriber, _ = found
    history = site.digests.recent(subscriber.name, limit=site.settings.delivery.atom_entries)
    signed = site.links_of(subscriber)
    body = atom_feed(
        subscriber.name,
        history,
        site.digests.papers([d.id for d in history]),
        self_url=signed.feed if signed else None,
        updated=subscriber.updated_at,
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@threaded
def healthz(site: Site, call: Call) -> Response:
    """The database reachable, the age of the last ingest, deliveries failed in the last day: 200 or 503."""
    try:
        status = site.status()
    except Exception as e:  # any fault here is the answer, not a crash
        log.warning("healthz: database unreachable (%s)", type(e).__name__)
        return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
    age, failed, rates = status.last_ingest_age_s, status.failed_last_day, status.rates
    body = {
        "ok": True,
        "database": "ok",
        "last_ingest_age_s": age,
        "failed_last_24h": failed,
        "email_sent_30d": rates.sent,
        "bounce_rate_30d": round(rates.bounce_rate, 5),
        "complaint_rate_30d": round(rates.complaint_rate, 5),
    }
    return Response(json.dumps(body), media_type="application/json")


@threaded
def home(site: Site, call: Call) -> Response:
    return site.page("home.html.j2", title="Welcome", signup=site.settings.web.signup)
