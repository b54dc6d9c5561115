"""Microsoft Teams workflow webhooks: the payloads (``digest.render.chat.teams``) posted; a 200 may carry an error."""

from __future__ import annotations

import re
from typing import ClassVar

from digest.channels.webhook import WebhookChannel


class TeamsChannel(WebhookChannel):
    kind: ClassVar[str] = "teams"

    def problem(self, body: str) -> str | None:
        # Teams connectors have answered 200 with "... returned HTTP error 429" in the body.
        return f"said {body[:100]!r}" if re.search(r"error", body, re.I) else None
