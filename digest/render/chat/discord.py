"""Discord webhooks: one embed per paper, 10 embeds and 6,000 characters a message."""

from __future__ import annotations

from typing import Any, ClassVar

from digest.render.chat.base import ChatDraft, Limits, clip, pack
from digest.render.chat.webhook import Markdown
from digest.render.context import QUESTION, header_text, md_escape


class Discord(Markdown):
    kind: ClassVar[str] = "discord"
    limits: ClassVar[Limits] = Limits(chars=4096, items=10, total=6000)  # 10 embeds, 6,000 chars in all
    title_chars: ClassVar[int] = 256
    with_title: ClassVar[bool] = False  # the embed's title is the paper's

    @classmethod
    def payloads(cls, draft: ChatDraft) -> list[dict[str, Any]]:
        embeds = []
        for item, fragment in zip(draft.context["items"], draft.items, strict=True):
            title = clip(f"{item['rank']}. {header_text(item['title'], limit=300)}", cls.title_chars)
            embeds.append(
                {"title": md_escape(title), "url": item["links"]["main"], "description": clip(fragment, 1500)}
            )
        if draft.trending:
            embeds.append({"title": "Trending today", "description": clip("\n".join(draft.trending), 1500)})
        if draft.question:
            embeds.append({"title": QUESTION, "description": clip(draft.question, 1500)})
        content = clip(f"**{md_escape(draft.heading)}**\n{md_escape(draft.intro)}", 2000)
        groups = pack(embeds, size=_embed_size, limit=cls.limits.total, count=cls.limits.items) if embeds else [[]]
        return [
            {"content": content if number == 0 else "", "embeds": group, "allowed_mentions": {"parse": []}}
            for number, group in enumerate(groups)
        ]


def _embed_size(embed: dict[str, Any]) -> int:
    return len(embed["title"]) + len(embed.get("description", ""))
