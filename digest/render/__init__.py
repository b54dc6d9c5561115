"""Rendering: a digest as templates' data (``context``), a message and chat payloads (``message``), an email (``mime``).

Pure: nothing is written or sent and the clock is not read. ``templating``
holds the Jinja extensions that make rendering 10,000 digests a day cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest import lazy

if TYPE_CHECKING:  # loaded with their room on first use (PEP 562): describing a paper needs no Jinja
    from digest.render.context import describe, header_text, links, md_escape, paper_meta, slack_escape, subject
    from digest.render.message import FORMATS, Renderer, package_templates
    from digest.render.mime import (
        MAX_LINE,
        alternatives,
        dated,
        email_body,
        eml,
        eml_head,
        list_unsubscribe,
        message_id,
        mime_body,
    )

_ROOMS = {
    **dict.fromkeys(
        ("describe", "header_text", "links", "md_escape", "paper_meta", "slack_escape", "subject"), "context"
    ),
    **dict.fromkeys(("FORMATS", "Renderer", "package_templates"), "message"),
    **dict.fromkeys(
        (
            "MAX_LINE",
            "alternatives",
            "dated",
            "email_body",
            "eml",
            "eml_head",
            "mime_body",
            "list_unsubscribe",
            "message_id",
        ),
        "mime",
    ),
}


# ``render.X`` imports X's room on first use: describing a paper needs no Jinja.
__getattr__ = lazy.loader(__name__, _ROOMS, globals())


__all__ = [
    "FORMATS",
    "MAX_LINE",
    "Renderer",
    "alternatives",
    "dated",
    "describe",
    "email_body",
    "eml",
    "eml_head",
    "header_text",
    "links",
    "list_unsubscribe",
    "md_escape",
    "message_id",
    "mime_body",
    "package_templates",
    "paper_meta",
    "slack_escape",
    "subject",
]
