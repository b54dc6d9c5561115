"""Slack incoming webhooks: the payloads (``digest.render.chat.slack``) posted; a good answer says "ok"."""

from __future__ import annotations

from typing import ClassVar

from digest.channels.webhook import WebhookChannel


class SlackChannel(WebhookChannel):
    kind: ClassVar[str] = "slack"

    def problem(self, body: str) -> str | None:
        return None if body in ("", "ok") else f"said {body[:100]!r}"
