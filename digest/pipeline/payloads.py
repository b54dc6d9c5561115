"""What each delivery carries besides its digest, made once, when the digest is frozen.

* email and the outbox: every header but Date (``render.eml_head``), the
  signed one-click unsubscribe among them; sending adds the Date line;
* a chat platform: its messages, as JSON (``render.Renderer.chat``);
* an Atom feed: the feed's own signed address ("" without signed links).

So sending reads no subscriber, signs no link and renders nothing. A delivery
frozen before its payload was kept (by 0.11.1 or earlier) gets it once,
from ``fill_missing``, as it comes due.
"""

from __future__ import annotations

from dataclasses import replace

from digest import links, render
from digest.config import Settings
from digest.models import Delivery
from digest.store import Store

HEADED = ("email", "outbox")  # the kinds whose payload is the email's headers
FEED = "atom"


def head(
    subject: str,
    *,
    subscriber: str,
    edition: str,
    target: str | None,
    message_id: str,
    signed: links.Links | None,
    settings: Settings,
) -> str:
    """An email delivery's headers, all but Date: To is the target (the outbox's: the subscriber at localhost).

    Feedback-ID (Gmail's feedback loop: which mail a complaint rate is about, no reader named) is
    the edition, the stream (``digest``) and the sender's domain.
    """
    mail = settings.email
    feedback_id = f"{edition}:digest:{mail.sender.rpartition('@')[2] or 'paper-digest'}"
    return render.eml_head(
        subject,
        sender=mail.sender,
        sender_name=mail.sender_name,
        to=target or f"{subscriber}@localhost",
        reply_to=mail.reply_to or mail.sender,  # always set: [email] reply_to, else From
        message_id=message_id,
        headers=render.list_unsubscribe(signed.unsubscribe if signed else None) | {"Feedback-ID": feedback_id},
    )


def feed(signed: links.Links | None) -> str:
    """An Atom delivery's payload: the feed's own signed address, or "" without signed links."""
    return signed.feed if signed else ""


def fill_missing(store: Store, rows: list[Delivery], settings: Settings) -> list[Delivery]:
    """``rows`` with a payload each: one frozen without (before these were kept) gets it now, stored."""
    missing = [d for d in rows if d.payload is None and d.kind in (*HEADED, FEED)]
    if not missing:
        return rows
    keys = store.subscribers.link_keys(sorted({d.subscriber for d in missing}))
    subjects = {i: d.subject for i, d in store.digests.mail(sorted({d.digest for d in missing})).items()}
    filled: dict[int, str] = {}
    for delivery in missing:
        signed = links.links_for(delivery.subscriber, keys.get(delivery.subscriber, ""), settings.delivery)
        filled[delivery.id] = feed(signed) if delivery.kind == FEED else head(
            subjects[delivery.digest], subscriber=delivery.subscriber, edition=delivery.edition.isoformat(),
            target=delivery.target,
            message_id=delivery.message_id, signed=signed, settings=settings,
        )  # fmt: skip
    store.ledger.set_payloads(list(filled.items()))
    return [replace(d, payload=filled[d.id]) if d.id in filled else d for d in rows]
