"""The preferences page: a subscriber's interests and schedule, edited through a form.

The form is checked with the same code and messages as ``digest check``; a
bad value re-shows the form with the message and changes nothing. An edit is
written back to the profile file the subscriber came from (atomically, its
comments and key order kept by tomlkit), so the file stays the source of
truth and the next folder sync keeps the edit.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomlkit
from starlette.responses import Response
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Table

from digest import atomic, links, pipeline, profiles
from digest.errors import ProfileError
from digest.models import FREQUENCIES, WEEKDAYS, Profile, Subscriber
from digest.pipeline.signups import VALID
from digest.web import form
from digest.web.pages import unsubscribed_page, way_back
from digest.web.site import Call, Site, log, threaded

FORM_VALID_SECONDS = 24 * 3600
UNEDITABLE = "Your profile cannot be edited right now. Please try again later; your digests go on as before."
PAUSES = {"pause-week": 7, "pause-month": 30}


@threaded
def preferences(site: Site, call: Call) -> Response:
    found = site.subscriber(call.params["token"], links.PREFERENCES)
    if found is None:
        return site.not_found()
    subscriber, _ = found
    if call.method == "GET":
        return _show(site, subscriber)
    fields = call.fields
    if not form_ok(site, subscriber, fields.get("form", "")):
        return site.page("missing.html.j2", status=403, title="This form has expired")
    if subscriber.status == "unsubscribed":  # only the way back, a new sign-up or the operator bring them back
        return _show(site, subscriber, status=409)
    action = fields.get("action", "save")
    if action in PAUSES:
        until = site.clock().date() + timedelta(days=PAUSES[action])
        site.subscribers.set_status(subscriber.name, "paused", at=site.clock(), until=until)
        log.info("paused subscriber=%s days=%d", subscriber.name, PAUSES[action])
        return _show(site, _fresh(site, subscriber), notice=f"Paused until {until:%A %-d %B}.")
    if action == "resume":
        site.subscribers.set_status(subscriber.name, "active", at=site.clock())
        return _show(site, _fresh(site, subscriber), notice="Your digests are back on.")
    if action == "email-again":
        return _email_again(site, subscriber)
    if action == "unsubscribe":
        site.subscribers.set_status(subscriber.name, "unsubscribed", at=site.clock(), by="reader")
        log.info("unsubscribed subscriber=%s by=reader", subscriber.name)
        return unsubscribed_page(site, _fresh(site, subscriber))
    return _save(site, subscriber, fields)


def suspended_addresses(site: Site, subscriber: Subscriber) -> list[str]:
    """The reader's email addresses that are not mailed because they bounced."""
    return pipeline.suspended_addresses(pipeline.stored_profile(subscriber), site.bounces.suspended())


def _email_again(site: Site, subscriber: Subscriber) -> Response:
    """Record a request the sender mails to each suspended address: its link (opened, confirmed) lifts the
    suspension. At most one a day: a link already on its way is not sent again."""
    addresses = suspended_addresses(site, subscriber)
    if not addresses:
        return _show(site, subscriber, notice="Your email is on: nothing to start again.")
    now = site.clock()
    if not site.signups.resume_pending(subscriber.name, since=now - timedelta(days=1)):
        for address in addresses:
            request = secrets.token_urlsafe(16)
            site.signups.add(request, email=address, profile="", at=now, subscriber=subscriber.name, purpose="resume")
        log.info("email-again requested subscriber=%s", subscriber.name)
    sent = ", ".join(addresses)
    return _show(
        site, subscriber, notice=f"We are sending a link to {sent}. Open it within 48 hours to start your emails again."
    )


@threaded
def email_again(site: Site, call: Call) -> Response:
    """GET: a page with one button. POST: the address the link was mailed to takes mail again."""
    request = links.read_signup(site.secret, call.params["token"], purpose=links.EMAIL_AGAIN) if site.secret else None
    found = site.signups.resume_request(request, now=site.clock(), valid=VALID) if request else None
    if request is None or found is None:
        return site.not_found()
    email, name = found
    if call.method == "GET":
        return site.page("email_again.html.j2", title="Start your emails again", email=email, done=False)
    site.bounces.lift([email])
    site.signups.confirm(request, at=site.clock())
    log.info("email again subscriber=%s", name)
    subscriber = site.subscribers.get(name)
    manage = site.links_of(subscriber) if subscriber else None
    return site.page(
        "email_again.html.j2", title="Your emails are back on", email=email, done=True,
        manage=manage.preferences if manage else None,
    )  # fmt: skip


def _save(site: Site, subscriber: Subscriber, fields: dict[str, str]) -> Response:
    seeds = bool(pipeline.stored_profile(subscriber).seeds)
    if wrong := form.problems(fields, has_seeds=seeds):
        return _show(site, subscriber, wrong=wrong, fields=fields, status=400)
    source = Path(subscriber.source) if subscriber.source else None
    on_disk = source is not None and source.is_file()
    try:
        base = profiles.read(source) if source is not None and on_disk else subscriber.text
        text = edited(base, fields)
    except (ProfileError, TOMLKitError, ValueError) as e:  # the file on disk is broken, or unreadable
        log.warning("preferences: %s cannot be edited (%s); fix the file", subscriber.source, type(e).__name__)
        return _show(site, subscriber, error=UNEDITABLE, fields=fields, status=503)
    try:
        profile = profiles.parse(text, source=subscriber.source or subscriber.name, default_name=subscriber.name)
    except ProfileError as e:  # a rule the form's own check does not hold; the operator's log has the detail
        log.warning("preferences: subscriber=%s edit refused: %s", subscriber.name, " | ".join(e.lines))
        return _show(site, subscriber, error=form.SAVE_FAILED, fields=fields, status=400)
    if profile.name != subscriber.name:  # the file on disk now names someone else; the operator must look
        log.warning("preferences: %s names %r, not %r; not edited", subscriber.source, profile.name, subscriber.name)
        return _show(site, subscriber, error=UNEDITABLE, fields=fields, status=503)
    if source is not None and on_disk:
        atomic.write(source, text.encode("utf-8"))
    site.subscribers.save(
        subscriber.name, text=text, profile_hash=profiles.fingerprint(text), source=subscriber.source, at=site.clock()
    )
    log.info("preferences saved subscriber=%s", subscriber.name)
    return _show(site, _fresh(site, subscriber), notice="Saved. Your next digest follows these settings.")


def edited(text: str, fields: dict[str, str]) -> str:
    """The profile's TOML with the form's values in place, everything else (comments, order) as it was."""
    doc = tomlkit.parse(text)
    for key in ("send_at", "timezone", "frequency"):
        if fields.get(key, "").strip():
            doc[key] = fields[key].strip()
    if doc.get("frequency") == "weekly" and fields.get("day", "").strip():
        doc["day"] = fields["day"].strip()
    elif doc.get("frequency") != "weekly":
        doc.pop("day", None)
    keywords = doc.get("keywords")
    if not isinstance(keywords, Table):
        keywords = tomlkit.table()
        doc["keywords"] = keywords
    home = keywords if isinstance(keywords.get("exclude"), list) else doc
    excludes = [line.strip() for line in fields.get("exclude", "").splitlines() if line.strip()]
    if excludes:
        home["exclude"] = excludes
    else:
        home.pop("exclude", None)
    _set_keywords(keywords, fields.get("keywords", ""))
    return tomlkit.dumps(doc)


def _set_keywords(table: Table, lines: str) -> None:
    """The [keywords] table as the form's lines say ("term" or "term = weight"); lists in it (seeds) stay."""
    wanted: dict[str, Any] = {}
    for line in lines.splitlines():
        term, _, weight = line.partition("=")
        term = term.strip().strip('"')
        if term:
            wanted[term] = _weight(weight.strip())
    for key in [k for k, v in table.items() if not isinstance(v, list) and k not in wanted]:
        del table[key]
    for term, weight in wanted.items():
        if table.get(term) != weight:
            table[term] = weight


def _weight(text: str) -> Any:
    """A weight as a number when it is one; otherwise the text, for ``profiles.parse`` to explain."""
    if not text:
        return 1
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def _fresh(site: Site, subscriber: Subscriber) -> Subscriber:
    return site.subscribers.get(subscriber.name) or subscriber


def form_token(site: Site, subscriber: Subscriber) -> str:
    """The anti-CSRF token of this subscriber's form, valid for a day."""
    expires = str(int(site.clock().timestamp()) + FORM_VALID_SECONDS)
    return links.sign(site.secret, links.CSRF, name=subscriber.name, key=subscriber.link_key, data=expires)


def form_ok(site: Site, subscriber: Subscriber, token: str) -> bool:
    """Whether a form's anti-CSRF token is this subscriber's and still fresh."""
    claim = links.read(token)
    if claim is None or claim.purpose != links.CSRF or claim.key != subscriber.link_key:
        return False
    if not claim.data.isdigit() or int(claim.data) < site.clock().timestamp():
        return False
    return links.check(site.secret, token, claim, name=subscriber.name)


def _show(
    site: Site,
    subscriber: Subscriber,
    *,
    notice: str | None = None,
    error: str | None = None,
    wrong: dict[str, list[str]] | None = None,
    fields: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    profile = pipeline.stored_profile(subscriber)
    values = _values(profile) | (fields or {})  # a field the form left out shows as the profile has it
    votes = site.feedback.votes(subscriber.name)
    return site.page(
        "preferences.html.j2",
        status=status,
        title="Your paper-digest",
        subscriber=subscriber,
        values=values,
        frequencies=FREQUENCIES,
        weekdays=WEEKDAYS,
        liked=[v for v in votes if v.vote > 0],
        disliked=[v for v in votes if v.vote < 0],
        form=form_token(site, subscriber),
        notice=notice,
        error=error,
        wrong=wrong or {},
        feed=links.feed_url(subscriber.name, subscriber.link_key, site.settings.delivery),
        onboard=signed.onboard if (signed := site.links_of(subscriber)) else None,
        resubscribe=way_back(site, subscriber),
        bounced=suspended_addresses(site, subscriber),
    )


def _values(profile: Profile) -> dict[str, str]:
    """The form's fields as the profile has them."""
    terms = [term if weight == 1 else f"{term} = {weight:g}" for term, weight in profile.keywords]
    return {
        "keywords": "\n".join(terms),
        "exclude": "\n".join(profile.exclude),
        "send_at": profile.send_at.strftime("%H:%M"),
        "timezone": profile.timezone,
        "frequency": profile.frequency,
        "day": WEEKDAYS[profile.day] if profile.day is not None else "monday",
    }
