"""Dump ingest: a file's bytes to text (``read``), text to a ``Dump`` in its layout (``parse``), both (``load``).

``read`` is the only module here that does I/O, and the one that picks a
dump's layout: ``hfjson`` reads Hugging Face's JSON, ``lines`` and ``parse``
a saved page (all three pure).
"""

from __future__ import annotations

from digest.ingest.lines import looks_like_abstract, resolve_page_day
from digest.ingest.parse import DEFAULT_MAX_PAPERS
from digest.ingest.read import Text, load, parse, read
from digest.text import clean_line, normalise_title, paper_id

__all__ = [
    "DEFAULT_MAX_PAPERS",
    "Text",
    "clean_line",
    "load",
    "looks_like_abstract",
    "normalise_title",
    "paper_id",
    "parse",
    "read",
    "resolve_page_day",
]
