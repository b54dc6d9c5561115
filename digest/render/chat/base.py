"""What every chat platform's payloads share: limits, the draft they are built from, clipping and packing.

The renderer fills a ``ChatDraft`` and asks the platform's ``ChatStyle`` for
the payloads. A paper is never split between two messages (a single paper
longer than a limit is shortened, with "…").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from digest.models import Digest


@dataclass(frozen=True, slots=True)
class Limits:
    """What one chat message may hold."""

    chars: int  # text characters per message (or per section/embed where that is the limit)
    items: int  # blocks, embeds or entries per message
    total: int  # characters (Discord embeds) or UTF-8 bytes (Teams) per message


@dataclass(frozen=True, slots=True)
class ChatDraft:
    """A digest ready for a chat platform: its heading and intro, and one rendered fragment per paper."""

    digest: Digest
    context: dict[str, Any]  # what the templates got (``context.context``)
    heading: str
    intro: str
    items: list[str]  # one fragment per paper, in the platform's markup
    trending: list[str]
    question: str | None = None  # the daily question's fragment, without its heading (``context.QUESTION``)


class ChatStyle(Protocol):
    """A chat platform as the renderer sees it: a class of ``digest.render.chat.<platform>``."""

    @property
    def kind(self) -> str: ...

    @property
    def markup(self) -> str | None:
        """The fragment templates' flavour: "slack", "md", or None for none."""

    @property
    def with_title(self) -> bool:
        """Whether a paper's fragment starts with its title."""

    def escape(self, text: str) -> str: ...

    def payloads(self, draft: ChatDraft) -> list[dict[str, Any]]: ...


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


Part = TypeVar("Part")


def pack(parts: Sequence[Part], *, size: Callable[[Part], int], limit: int, count: int) -> list[list[Part]]:
    """Greedy: fill each message with whole parts while both the size and the count fit."""
    messages: list[list[Part]] = [[]]
    used = 0
    for part in parts:
        if messages[-1] and (used + size(part) > limit or len(messages[-1]) >= count):
            messages.append([])
            used = 0
        messages[-1].append(part)
        used += size(part)
    return messages
