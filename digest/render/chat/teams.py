"""Microsoft Teams workflow webhooks: an Adaptive Card a message, under the 28 KB cap."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from digest.render.chat.base import ChatDraft, Limits, clip, pack
from digest.render.chat.webhook import Markdown
from digest.render.context import QUESTION, md_escape


class Teams(Markdown):
    kind: ClassVar[str] = "teams"
    limits: ClassVar[Limits] = Limits(chars=25_000, items=1_000, total=25_000)  # bytes of JSON, under 28 KB

    @classmethod
    def payloads(cls, draft: ChatDraft) -> list[dict[str, Any]]:
        head = [
            {"type": "TextBlock", "text": md_escape(draft.heading), "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": md_escape(draft.intro), "isSubtle": True, "wrap": True},
        ]
        blocks = [
            {"type": "TextBlock", "text": clip(i, 4000), "wrap": True, "separator": True, "spacing": "Medium"}
            for i in draft.items
        ]
        if draft.trending:
            text = clip("**Trending today**\n\n" + "\n".join(draft.trending), 4000)
            blocks.append({"type": "TextBlock", "text": text, "wrap": True, "separator": True})
        if draft.question:
            text = clip(f"**{QUESTION}**\n\n{draft.question}", 4000)
            blocks.append({"type": "TextBlock", "text": text, "wrap": True, "separator": True})
        overhead = len(json.dumps(_card(head)).encode())
        groups = pack(blocks, size=_json_size, limit=cls.limits.total - overhead, count=cls.limits.items)
        return [_card((head if n == 0 else []) + group) for n, group in enumerate(groups)]


def _card(body: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": body,
                },
            }
        ],
    }


def _json_size(block: dict[str, Any]) -> int:
    return len(json.dumps(block).encode()) + 1
