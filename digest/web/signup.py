"""Sign-up with double opt-in (``[web] signup``): a form, a confirmation email, a signed link valid 48 hours.

Only a confirmed address becomes a subscriber: a profile file written into the
subscribers folder, never over a file that is there. The page only records the
sign-up; the sender mails it (``pipeline.signups``). The answer is the same, in
body and in work done, whether or not the address is subscribed already (then
the mail is the subscriber's preferences link instead): nothing to learn from
it. Attempts are limited per client address and per normalised email address,
and a field people never see catches bots.
"""

from __future__ import annotations

import re
import secrets

import tomlkit
from starlette.responses import Response

from digest import addresses, atomic, cadence, links, pipeline, profiles
from digest.errors import ProfileError
from digest.pipeline.signups import HOURS, VALID
from digest.web.prefs import edited
from digest.web.site import Call, Site, log, threaded

HONEYPOT = "website"
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@threaded
def signup(site: Site, call: Call) -> Response:
    if not site.settings.web.signup or not site.secret:
        return site.not_found()
    if call.method == "GET":
        return _form(site)
    fields = call.fields
    if not site.signup_limit.allow(f"client:{call.client}"):  # every try counts, a bot's and a typo's too
        return _limited(site, fields)
    if fields.get(HONEYPOT):
        return _sent(site)  # a bot: the same answer, nothing recorded
    try:
        email = addresses.normalise(fields.get("email", ""), public=True)
    except addresses.AddressError as e:
        return _again(site, fields, f"That email address cannot be used: {e}.")
    if not site.signup_limit.allow(f"email:{email.casefold()}"):  # however the address is spelled
        return _limited(site, fields)
    known = site.subscribers.with_email(email)
    try:
        text = profile_text({**fields, "email": email}, name=known or _new_name(site, email))
        profiles.parse(text, source="the form", default_name=None)
    except ProfileError as e:
        return _again(site, fields, "\n".join(line.removeprefix("the form: ") for line in e.lines))
    site.signups.add(secrets.token_hex(12), email=email, profile=text, at=site.clock(), subscriber=known)
    log.info("signup recorded; the sender mails it")
    return _sent(site)


def _form(site: Site) -> Response:
    values = {"email": "", "keywords": "", "timezone": "UTC", "send_at": "07:00"}
    return site.page("signup.html.j2", title="Sign up", values=values, error=None, limited=False)


def _again(site: Site, fields: dict[str, str], error: str) -> Response:
    values = {"email": "", "keywords": "", "timezone": "UTC", "send_at": "07:00"} | fields
    return site.page("signup.html.j2", status=400, title="Sign up", values=values, error=error, limited=False)


def _limited(site: Site, fields: dict[str, str]) -> Response:
    return site.page("signup.html.j2", status=429, title="Too many tries", values=fields, error=None, limited=True)


def _sent(site: Site) -> Response:
    return site.page("signup_sent.html.j2", title="Check your inbox", hours=HOURS)


def profile_text(fields: dict[str, str], *, name: str) -> str:
    """A new profile from the sign-up form (checked by ``profiles.parse`` afterwards)."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("Made by the sign-up page of digest serve; edit it here or on the preferences page."))
    doc["name"] = name
    doc["email"] = fields.get("email", "").strip()
    return edited(tomlkit.dumps(doc), {**fields, "frequency": "daily"})


def _new_name(site: Site, email: str) -> str:
    """A subscriber name from the address's local part, free in the database and in the folder."""
    stem = _NOT_NAME.sub("-", email.partition("@")[0]).strip("._-")[:56] or "reader"
    name, number = stem, 1
    folder = site.settings.subscribers.dir
    while site.subscribers.get(name) is not None or (folder / f"{name}.toml").exists():
        number += 1
        name = f"{stem}-{number}"
    return name


@threaded
def confirm(site: Site, call: Call) -> Response:
    """GET: a page with a confirm button. POST: the subscriber, made from the sign-up (once)."""
    signup_id = links.read_signup(site.secret, call.params["token"]) if site.secret else None
    pending = site.signups.get(signup_id, now=site.clock(), valid=VALID) if signup_id else None
    if signup_id is None or pending is None:
        return site.not_found()
    email, text = pending
    if call.method == "GET":
        profile = profiles.parse(text, source="the sign-up", default_name=None)
        keywords = [term for term, _ in profile.keywords]
        first = cadence.next_label(profile, site.clock())
        return site.page("confirm.html.j2", title="Confirm", done=False, email=email, keywords=keywords, first=first)
    known = site.subscribers.with_email(email)  # the address subscribed meanwhile: one subscriber per address
    name = known or _create(site, email, text)
    if known is None:
        log.info("signup confirmed subscriber=%s", name)
    site.signups.confirm(signup_id, at=site.clock())
    found = site.subscribers.get(name)
    signed = site.links_of(found) if found else None
    first = cadence.next_label(pipeline.stored_profile(found), site.clock()) if found else ""
    manage = signed.preferences if signed else None
    onboard = signed.onboard if signed else None
    return site.page(
        "confirm.html.j2", title="Subscribed", done=True, new=known is None, first=first, manage=manage, onboard=onboard
    )


def _create(site: Site, email: str, text: str) -> str:
    """The profile file for a confirmed sign-up, under a name free now (a file is never overwritten), stored."""
    doc = tomlkit.parse(text)
    folder = site.settings.subscribers.dir
    folder.mkdir(parents=True, exist_ok=True)
    name = str(doc["name"])
    while True:
        if site.subscribers.get(name) is None and atomic.write(
            folder / f"{name}.toml", tomlkit.dumps(doc).encode("utf-8"), replace=False
        ):
            break
        doc["name"] = name = _new_name(site, email)
    text = tomlkit.dumps(doc)
    path = folder / f"{name}.toml"
    site.subscribers.save(
        name, text=text, profile_hash=profiles.fingerprint(text), source=str(path), at=site.clock(), resubscribe=True
    )
    site.subscribers.set_joined(name, site.clock())  # the first digest is their next send time, never a past edition
    return name
