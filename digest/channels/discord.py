"""Discord webhooks: the payloads (``digest.render.chat.discord``) posted."""

from __future__ import annotations

from typing import ClassVar

from digest.channels.webhook import WebhookChannel


class DiscordChannel(WebhookChannel):
    kind: ClassVar[str] = "discord"
