"""Sign-up with double opt-in (``[web] signup``): a form, a confirmation email, a signed link valid 48 hours.

Only a confirmed address becomes a subscriber: a profile file written into the
subscribers folder. The answer is the same whether or not the address is
subscribed already (nothing to learn from it), attempts are limited per client
address and per email address, and a field people never see catches bots.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import tomlkit
from starlette.requests import Request
from starlette.responses import Response

from digest import links, pipeline, profiles
from digest.errors import DeliveryError, ProfileError
from digest.web.pages import form, site_of
from digest.web.prefs import edited
from digest.web.site import Site, log

VALID = timedelta(hours=48)
HONEYPOT = "website"
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


async def signup(request: Request) -> Response:
    site = site_of(request)
    if not site.settings.web.signup or not site.secret:
        return site.not_found()
    if request.method == "GET":
        return _form(site)
    fields = await form(request)
    email = fields.get("email", "").strip()
    client = request.client.host if request.client else "unknown"
    if not site.signups.allow(f"client:{client}", f"email:{email.casefold()}"):
        return site.page("signup.html.j2", status=429, title="Too many tries", values=fields, error=None, limited=True)
    if fields.get(HONEYPOT):
        return _sent(site)  # a bot: the same answer, nothing sent
    try:
        text = profile_text(fields, name=_new_name(site, email))
        profiles.parse(text, source="the form", default_name=None)
    except ProfileError as e:
        message = "\n".join(line.removeprefix("the form: ") for line in e.lines)
        return site.page("signup.html.j2", status=400, title="Sign up", values=fields, error=message, limited=False)
    if site.store.subscriber_with_email(email) is None:
        _send_confirmation(site, email, text)
    return _sent(site)


def _form(site: Site) -> Response:
    values = {"email": "", "keywords": "", "timezone": "UTC", "send_at": "07:00"}
    return site.page("signup.html.j2", title="Sign up", values=values, error=None, limited=False)


def _sent(site: Site) -> Response:
    return site.page("signup_sent.html.j2", title="Check your inbox", hours=int(VALID.total_seconds() // 3600))


def _send_confirmation(site: Site, email: str, text: str) -> None:
    signup_id = secrets.token_hex(12)
    now = site.clock()
    site.store.add_signup(signup_id, email=email, profile=text, at=now)
    link = f"{site.settings.delivery.base_url.rstrip('/')}/c/{links.sign_signup(site.secret, signup_id)}"
    try:
        pipeline.send_notice(
            site.settings,
            email,
            subject="Confirm your paper-digest subscription",
            text="Someone (we hope you) asked for a daily paper-digest at this address. "
            f"To start it, open this link within {int(VALID.total_seconds() // 3600)} hours and confirm. "
            "If it was not you, ignore this message: nothing happens without the confirmation.",
            link=link,
            at=now,
        )
        log.info("signup confirmation sent")
    except DeliveryError as e:
        log.warning("signup confirmation not sent: %s", e.reason)


def profile_text(fields: dict[str, str], *, name: str) -> str:
    """A new profile from the sign-up form (checked by ``profiles.parse`` afterwards)."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("Made by the sign-up page of digest serve; edit it here or on the preferences page."))
    doc["name"] = name
    doc["email"] = fields.get("email", "").strip()
    return edited(tomlkit.dumps(doc), {**fields, "frequency": "daily"})


def _new_name(site: Site, email: str) -> str:
    """A subscriber name from the address's local part, made unique."""
    stem = _NOT_NAME.sub("-", email.partition("@")[0]).strip("._-")[:56] or "reader"
    name, number = stem, 1
    folder = site.settings.subscribers.dir
    while site.store.subscriber(name) is not None or (folder / f"{name}.toml").exists():
        number += 1
        name = f"{stem}-{number}"
    return name


async def confirm(request: Request) -> Response:
    """GET: a page with a confirm button. POST: the subscriber, made from the sign-up (once)."""
    site = site_of(request)
    signup_id = links.read_signup(site.secret, request.path_params["token"]) if site.secret else None
    pending = site.store.signup(signup_id, now=site.clock(), valid=VALID) if signup_id else None
    if signup_id is None or pending is None:
        return site.not_found()
    if request.method == "GET":
        return site.page("confirm.html.j2", title="Confirm", done=False, manage=None)
    email, text = pending
    doc = tomlkit.parse(text)
    name = str(doc["name"])
    if site.store.subscriber(name) is not None:  # a name taken since: take another
        doc["name"] = name = _new_name(site, email)
        text = tomlkit.dumps(doc)
    folder = site.settings.subscribers.dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    site.store.save_subscriber(
        name, text=text, profile_hash=profiles.fingerprint(text), source=str(path), at=site.clock(), resubscribe=True
    )
    site.store.confirm_signup(signup_id, at=site.clock())
    log.info("signup confirmed subscriber=%s", name)
    found = site.store.subscriber(name)
    signed = site.links_of(found) if found else None
    return site.page("confirm.html.j2", title="Subscribed", done=True, manage=signed.preferences if signed else None)
