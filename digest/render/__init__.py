"""Rendering: a digest as templates' data (``context``), a message and chat payloads (``message``), an email (``mime``).

Pure: nothing is written or sent and the clock is not read. ``templating``
holds the Jinja extensions that make rendering 10,000 digests a day cheap.
"""

from __future__ import annotations

from digest.render.context import describe, header_text, links, md_escape, paper_meta, slack_escape, subject
from digest.render.message import FORMATS, Renderer, package_templates
from digest.render.mime import MAX_LINE, email, email_body, list_unsubscribe, message_id

__all__ = [
    "FORMATS",
    "MAX_LINE",
    "Renderer",
    "describe",
    "email",
    "email_body",
    "header_text",
    "links",
    "list_unsubscribe",
    "md_escape",
    "message_id",
    "package_templates",
    "paper_meta",
    "slack_escape",
    "subject",
]
