"""Sign-up mail, sent by the sender (``digest send``, every pass of the daemon), never inside a web request.

The sign-up page only records a sign-up; the next run mails it: a confirmation
link for a new address, or, for an address that already has a subscriber, that
subscriber's preferences link (so the page answers alike either way, and nobody
learns who is subscribed). Sign-ups never confirmed are forgotten after
``VALID``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest import links
from digest.config import Settings
from digest.errors import DeliveryError, PermanentError
from digest.pipeline.notices import deliver_notice
from digest.store import Store, Subscribers

VALID = timedelta(hours=48)
HOURS = int(VALID.total_seconds() // 3600)


@dataclass
class SignupMail:
    """What one run did with the sign-ups: mailed, still waiting (the server refused for now), forgotten."""

    sent: int = 0
    waiting: int = 0
    purged: int = 0


def mail_signups(store: Store, settings: Settings, *, now: datetime) -> SignupMail:
    """Mail every sign-up waiting for its mail; forget those older than ``VALID`` and never confirmed."""
    done = SignupMail(purged=store.signups.purge(before=now - VALID))
    secret = settings.delivery.secret.get_secret_value()
    base = settings.delivery.base_url.rstrip("/")
    if not secret or not base:
        return done  # the page is off without them; nothing can be waiting
    for signup_id, email, known, purpose in store.signups.to_mail(since=now - VALID):
        try:
            if purpose == "resume":
                link = links.url_of(
                    base, "email_again", links.sign_signup(secret, signup_id, purpose=links.EMAIL_AGAIN)
                )
                _mail_resume(settings, email, link=link, at=now)
            else:
                link = links.url_of(base, "confirm", links.sign_signup(secret, signup_id))
                _mail(store.subscribers, settings, email, known, link=link, at=now)
        except PermanentError:
            store.signups.mailed(signup_id, at=now)  # the address refuses mail: never tried again
            continue
        except DeliveryError:
            done.waiting += 1  # tried again by the next run, until it expires
            continue
        store.signups.mailed(signup_id, at=now)
        done.sent += 1
    return done


def _mail_resume(settings: Settings, email: str, *, link: str, at: datetime) -> None:
    """The link that starts a suspended address's digests again, mailed to that address: opening it proves
    that mail arrives there now."""
    deliver_notice(
        settings,
        email,
        subject="Start your paper-digest emails again",
        text="Your paper-digest emails to this address stopped because earlier ones could not be delivered. "
        f"You asked to start them again: open this link within {HOURS} hours and confirm. "
        "If it was not you, ignore this message: nothing changes without the confirmation.",
        link=link,
        at=at,
    )


def _mail(
    subscribers: Subscribers, settings: Settings, email: str, known: str | None, *, link: str, at: datetime
) -> None:
    if known is not None:
        subscriber = subscribers.get(known)
        signed = links.links_for(known, subscriber.link_key, settings.delivery) if subscriber else None
        if signed is None:
            return  # the subscriber is gone since: nothing to point to, and no confirmation either
        deliver_notice(
            settings,
            email,
            subject="Your paper-digest subscription",
            text="Someone (we hope you) asked to sign up this address for paper-digest. It is subscribed "
            "already: to change what you get, pause or unsubscribe, use this link.",
            link=signed.preferences,
            at=at,
        )
        return
    deliver_notice(
        settings,
        email,
        subject="Confirm your paper-digest subscription",
        text="Someone (we hope you) asked for a daily paper-digest at this address. "
        f"To start it, open this link within {HOURS} hours and confirm. "
        "If it was not you, ignore this message: nothing happens without the confirmation.",
        link=link,
        at=at,
    )
