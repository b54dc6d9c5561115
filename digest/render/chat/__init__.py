"""Chat payloads: one module per platform owns its limits, escaping and payloads; ``base`` what they share.

``STYLES`` is every platform the renderer builds payloads for, by kind. The
channels only carry the payloads frozen with the digest.
"""

from __future__ import annotations

from collections.abc import Mapping

from digest.render.chat.base import ChatDraft, ChatStyle, Limits, clip, pack
from digest.render.chat.discord import Discord
from digest.render.chat.mattermost import Mattermost
from digest.render.chat.slack import Slack
from digest.render.chat.teams import Teams
from digest.render.chat.webhook import Webhook

STYLES: Mapping[str, ChatStyle] = {style.kind: style for style in (Slack, Discord, Teams, Mattermost, Webhook)}

__all__ = ["STYLES", "ChatDraft", "ChatStyle", "Limits", "clip", "pack"]
