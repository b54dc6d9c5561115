"""Messages outside any digest: a sign-up's confirmation, sent at once through the email channel."""

from __future__ import annotations

import hashlib
from datetime import datetime
from html import escape

from digest import render
from digest.channels.email import send_one
from digest.channels.files import write_notice
from digest.config import Settings
from digest.models import Message


def deliver_notice(settings: Settings, to: str, *, subject: str, text: str, link: str, at: datetime) -> None:
    """One short message with one link: by SMTP when ``[smtp] host`` is set, else into the outbox.

    Raises ``DeliveryError`` when the server refuses it.
    """
    html = (
        f'<!DOCTYPE html><html><body style="font-family: sans-serif"><p>{escape(text)}</p>'
        f'<p><a href="{escape(link)}">{escape(link)}</a></p></body></html>'
    )
    mail = settings.email
    tag = hashlib.sha256(f"{to}|{link}".encode()).hexdigest()[:16]
    domain = mail.sender.rsplit("@", 1)[-1] or "localhost"
    message = render.eml(
        Message(subject, f"{text}\n\n{link}\n", html, ""),
        sender=mail.sender,
        sender_name=mail.sender_name,
        to=to,
        reply_to=mail.reply_to or mail.sender,  # always set: [email] reply_to, else From
        message_id=f"<notice.{tag}@{domain}>",
        sent=at,
    )
    if settings.smtp.host:
        send_one(settings, to, message)
    else:
        write_notice(settings, f"{at:%Y%m%dT%H%M%S}.{tag}", message)
