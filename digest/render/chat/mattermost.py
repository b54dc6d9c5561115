"""Mattermost incoming webhooks: Markdown text, 16,383 characters a message."""

from __future__ import annotations

from typing import Any, ClassVar

from digest.render.chat.base import ChatDraft, Limits, clip, pack
from digest.render.chat.webhook import Markdown
from digest.render.context import QUESTION, md_escape


class Mattermost(Markdown):
    kind: ClassVar[str] = "mattermost"
    limits: ClassVar[Limits] = Limits(chars=16_383, items=1_000, total=16_383)

    @classmethod
    def payloads(cls, draft: ChatDraft) -> list[dict[str, Any]]:
        head = f"#### {md_escape(draft.heading)}\n{md_escape(draft.intro)}"
        room = cls.limits.chars - len(head)
        parts = [clip(i, room - 4) for i in draft.items]
        if draft.trending:
            parts.append(clip("**Trending today**\n" + "\n".join(draft.trending), room - 4))
        if draft.question:
            parts.append(clip(f"**{QUESTION}**\n{draft.question}", room - 4))
        groups = pack(parts, size=lambda p: len(p) + 2, limit=room - 2, count=cls.limits.items)
        return [
            {"text": "\n\n".join([head, *group]) if n == 0 else "\n\n".join(group)} for n, group in enumerate(groups)
        ]
