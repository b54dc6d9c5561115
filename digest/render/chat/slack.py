"""Slack incoming webhooks: Block Kit sections in mrkdwn, 50 blocks a message."""

from __future__ import annotations

from typing import Any, ClassVar

from digest.render.chat.base import ChatDraft, Limits, clip
from digest.render.chat.webhook import Webhook
from digest.render.context import QUESTION, slack_escape


class Slack(Webhook):
    kind: ClassVar[str] = "slack"
    limits: ClassVar[Limits] = Limits(chars=3000, items=50, total=40_000)  # section text 3,000; 50 blocks a message
    markup: ClassVar[str | None] = "slack"

    @staticmethod
    def escape(text: str) -> str:
        return slack_escape(text)

    @classmethod
    def payloads(cls, draft: ChatDraft) -> list[dict[str, Any]]:
        chars, heading = cls.limits.chars, draft.heading
        item_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(i, chars)}} for i in draft.items]
        if draft.trending:
            text = "*Trending today*\n" + "\n".join(draft.trending)
            item_blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(text, chars)}})
        if draft.question:
            text = f"*{QUESTION}*\n{draft.question}"
            item_blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(text, chars)}})
        head: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": clip(heading, 150), "emoji": False}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(draft.intro)}]},
        ]
        # Each paper is a section followed by a divider: two blocks, so at most 24 papers after the 2 head blocks.
        per_message = (cls.limits.items - len(head)) // 2
        groups = [item_blocks[i : i + per_message] for i in range(0, len(item_blocks), per_message)] or [[]]
        payloads = []
        for number, group in enumerate(groups, start=1):
            blocks: list[dict[str, Any]] = list(head) if number == 1 else []
            for block in group:
                blocks += [block, {"type": "divider"}]
            suffix = f" ({number}/{len(groups)})" if len(groups) > 1 else ""
            payloads.append({"text": slack_escape(clip(heading + suffix, 150)), "blocks": blocks})
        return payloads
