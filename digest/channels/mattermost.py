"""Mattermost incoming webhooks: the payloads (``digest.render.chat.mattermost``) posted."""

from __future__ import annotations

from typing import ClassVar

from digest.channels.webhook import WebhookChannel


class MattermostChannel(WebhookChannel):
    kind: ClassVar[str] = "mattermost"
