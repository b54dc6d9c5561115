"""The generic JSON webhook: one object with every paper, its reasons and its links; no markup."""

from __future__ import annotations

from typing import Any, ClassVar

from digest.render.chat.base import ChatDraft
from digest.render.context import links, md_escape, reason_data


class Webhook:
    """The style every platform starts from: fragments without markup, each starting with its title."""

    kind: ClassVar[str] = "webhook"
    markup: ClassVar[str | None] = None
    with_title: ClassVar[bool] = True

    @staticmethod
    def escape(text: str) -> str:
        return text

    @classmethod
    def payloads(cls, draft: ChatDraft) -> list[dict[str, Any]]:
        """One JSON object with every paper and its reasons."""
        digest = draft.digest
        return [
            {
                "subscriber": digest.profile.name,
                "edition": digest.edition.isoformat(),
                "subject": draft.context["subject"],
                "new_count": digest.new_count,
                "items": [
                    {
                        "rank": item.rank,
                        "id": item.paper.id,
                        "title": item.paper.title,
                        "url": links(item.paper)["main"],
                        "abstract": item.paper.abstract,
                        "score": item.score,
                        "why": [reason_data(r) for r in item.why],
                        "authors_count": item.paper.authors_count,
                        "organization": item.paper.organization,
                        "published": item.paper.published.isoformat() if item.paper.published else None,
                        "upvotes": item.paper.upvotes,
                        "authors": list(item.paper.authors),
                        "comments": item.paper.comments,
                        "github_repo": item.paper.github_repo,
                        "github_stars": item.paper.github_stars,
                        "project_page": item.paper.project_page,
                        "ai_summary": item.paper.ai_summary,
                    }
                    for item in digest.items
                ],
                "trending": [{"id": p.id, "title": p.title, "url": links(p)["main"]} for p in digest.trending],
                **_question(draft),
            }
        ]


def _question(draft: ChatDraft) -> dict[str, Any]:
    """The daily question, when the digest asks one: the paper and its two vote links (not among the items)."""
    view = draft.context["question"]
    if view is None:
        return {}
    paper = view["paper"]
    about = {"id": paper.id, "title": paper.title, "url": view["links"]["main"], "abstract": paper.abstract}
    return {"question": {"text": view["heading"], **about, "more": view["vote"]["more"], "less": view["vote"]["less"]}}


class Markdown(Webhook):
    """A platform whose paper fragments are Markdown (Discord, Teams, Mattermost)."""

    markup: ClassVar[str | None] = "md"

    @staticmethod
    def escape(text: str) -> str:
        return md_escape(text)
