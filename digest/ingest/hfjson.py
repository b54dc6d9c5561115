"""Hugging Face's ``/api/daily_papers`` JSON to a ``Dump`` (layout ``hf-json``).

Pure: it takes the text and touches no file, clock or environment.

The document is a list of items; each has a ``paper`` object (``id``, the arXiv
id without version, ``title``, ``summary``, ``authors`` as ``{name}`` objects,
``publishedAt``, ``upvotes`` and, sometimes, ``githubRepo``, ``githubStars``,
``projectPage``, ``ai_summary``, ``organization``) beside the item's own
``title``, ``summary``, ``numComments`` and ``submittedOnDailyAt``. Unknown
fields are ignored and missing optional ones are None; a document of the wrong
shape is refused in one line naming the JSON path (``[3].paper.title: missing``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from digest.errors import ParseError
from digest.ingest import safejson
from digest.models import Dump, Paper, ParseWarning
from digest.text import clean_line, normalise_title, paper_id, without_controls

LAYOUT = "hf-json"
_ARXIV = re.compile(r"^\d{4}\.\d{4,5}$")
_LINK = re.compile(r"^https?://[^\s<>|()\[\]\"'`\\]+$")  # nothing that could end a link in Markdown or Slack
_JSON_START = re.compile(r"\s*(\[\s*[{\]]|\{)")


def looks_like_json(text: str) -> bool:
    """Whether a dump's text is JSON (an HF daily_papers response) rather than a saved page: it opens a list
    of objects, an empty list or an object (a page whose first title is "[Re] …" is still a page)."""
    return _JSON_START.match(text.removeprefix("\ufeff")) is not None


def parse_json(text: str, *, source: str, max_papers: int) -> Dump:
    """Parse a daily_papers response; raises ``ParseError`` for invalid or unsafe JSON (``safejson``) or a
    document of the wrong shape."""
    items = safejson.loads(text.removeprefix("\ufeff"), source=source)
    if not isinstance(items, list):
        raise ParseError(f"{source}: expected a list of daily papers, found {type(items).__name__}")
    if len(items) > max_papers:
        raise ParseError(f"{source}: {len(items)} papers is over the {max_papers} limit; split the file")
    papers: list[Paper] = []
    warnings: list[ParseWarning] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        paper = _paper(item, f"[{n}]", source=source, position=n + 1)
        if paper.id in seen:
            warnings.append(ParseWarning(n + 1, f"[{n}]: paper {paper.id} listed twice; kept the first"))
            continue
        seen.add(paper.id)
        papers.append(paper)
    days = {p.published for p in papers if p.published}
    listed = _listed_days(items)
    page_date = max(listed) if listed else (max(days) if days else None)
    return Dump(source=source, layout=LAYOUT, page_date=page_date, papers=tuple(papers), warnings=tuple(warnings))


def _paper(item: object, at: str, *, source: str, position: int) -> Paper:
    field = _Fields(source)
    outer = field.table(item, at)
    inner = field.table(outer.get("paper"), f"{at}.paper")
    title = clean_line(field.text(inner.get("title", outer.get("title")), f"{at}.paper.title", required=True) or "")
    if not title:
        raise ParseError(f"{source}: {at}.paper.title: empty; every paper needs a title")
    arxiv = field.text(inner.get("id"), f"{at}.paper.id")
    norm = normalise_title(title)
    summary = field.text(inner.get("summary", outer.get("summary")), f"{at}.paper.summary")
    authors = tuple(
        name
        for k, person in enumerate(field.list(inner.get("authors"), f"{at}.paper.authors"))
        if (
            name := field.text(
                field.table(person, f"{at}.paper.authors[{k}]").get("name"), f"{at}.paper.authors[{k}].name"
            )
        )
    )
    return Paper(
        id=paper_id(norm, arxiv_id=arxiv if arxiv and _ARXIV.match(arxiv) else None),
        title=title,
        norm_title=norm,
        abstract=" ".join(summary.split()) if summary else None,
        authors_count=len(authors) or None,
        organization=_organization(inner.get("organization", outer.get("organization"))),
        published=_day(inner.get("publishedAt", outer.get("publishedAt"))),
        upvotes=field.integer(inner.get("upvotes"), f"{at}.paper.upvotes"),
        position=position,
        line=position,
        authors=authors,
        comments=field.integer(outer.get("numComments"), f"{at}.numComments"),
        github_repo=_url(inner.get("githubRepo")),
        github_stars=field.integer(inner.get("githubStars"), f"{at}.paper.githubStars"),
        project_page=_url(inner.get("projectPage")),
        ai_summary=field.text(inner.get("ai_summary"), f"{at}.paper.ai_summary"),
    )


class _Fields:
    """Reads one item's fields, refusing a wrong type in one line that names the JSON path."""

    def __init__(self, source: str) -> None:
        self._source = source

    def fail(self, at: str, problem: str) -> ParseError:
        return ParseError(f"{self._source}: {at}: {problem}; expected Hugging Face's daily_papers JSON")

    def table(self, value: object, at: str) -> dict[str, Any]:
        if value is None:
            raise self.fail(at, "missing")
        if not isinstance(value, dict):
            raise self.fail(at, f"a {type(value).__name__}, not an object")
        return value

    def list(self, value: object, at: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(at, f"a {type(value).__name__}, not a list")
        return value

    def text(self, value: object, at: str, *, required: bool = False) -> str | None:
        if value is None and required:
            raise self.fail(at, "missing")
        if value is not None and not isinstance(value, str):
            raise self.fail(at, f"a {type(value).__name__}, not a string")
        return without_controls(value).strip() or None if isinstance(value, str) else None

    def integer(self, value: object, at: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(at, f"{value!r} is not a whole number")
        return value


def _organization(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("fullname") or value.get("name")
    return without_controls(value).strip() or None if isinstance(value, str) else None


def _url(value: object) -> str | None:
    """An http(s) link as given, or None: anything else, or a link with characters that would end it in
    Markdown or Slack, is not shown to readers."""
    return value.strip() if isinstance(value, str) and _LINK.match(value.strip()) else None


def _day(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _listed_days(items: list[Any]) -> set[date]:
    """The days the items were put on the daily list (``submittedOnDailyAt``)."""
    return {d for item in items if isinstance(item, dict) and (d := _day(item.get("submittedOnDailyAt")))}
