"""What templates and chat payloads are made from: a digest as plain data, and the text helpers they share.

Pure: no files, clock or environment. Paper text only ever arrives as data.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from digest.links import Links
from digest.models import Digest, Paper, Ranked, Reason
from digest.text import plural

SUMMARY_SENTENCES = 2
SHOWN_ARCHIVE = 0.05  # an archive match's part of the score from which a digest names it
SUMMARY_CHARS = 320

_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MENTION = re.compile(r"@(?=(everyone|here|channel|all)\b)", re.I)


def header_text(text: str, *, limit: int = 200) -> str:
    """Safe for a mail header or a one-line title: no CR, LF or other controls, spaces folded."""
    clean = " ".join(_CONTROL.sub(" ", text).split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


@lru_cache(maxsize=65536)
def summary(abstract: str | None) -> tuple[str, bool]:
    """The first sentences of an abstract (about two), and whether anything was left out."""
    if not abstract:
        return "", False
    text = " ".join(abstract.split())
    sentences = _SENTENCE.split(text)
    short = " ".join(sentences[:SUMMARY_SENTENCES])
    if len(short) > SUMMARY_CHARS:
        short = short[:SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return short, len(short) < len(text)


@lru_cache(maxsize=16384)
def wrap(text: str, width: int = 69, indent: str = "   ") -> str:
    """Text wrapped at ``width`` for the plain-text email, continuation lines indented; never at hyphens.

    Cached: the same titles, summaries and reasons recur in thousands of digests a day. Text of
    single-spaced words none longer than ``width`` (nearly all) is wrapped greedily here, as
    ``textwrap`` would, at a tenth of its cost; anything else goes to ``textwrap``.
    """
    words = text.split(" ")
    if _SIMPLE.match(text) and max(map(len, words)) <= width:
        lines, line = [], words[0]
        for word in words[1:]:
            if len(line) + 1 + len(word) <= width:
                line += " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    else:
        lines = textwrap.wrap(text, width=width, break_on_hyphens=False, break_long_words=True)
    return ("\n" + indent).join(lines)


# Words with one plain space between them, nothing before or after: what ``wrap`` does itself.
_SIMPLE = re.compile(r"[^\s]+(?: [^\s]+)*\Z")


@lru_cache(maxsize=65536)
def links(paper: Paper) -> dict[str, str | None]:
    """Where a paper can be read: its arXiv page when the id is one, else searches for its title."""
    title = header_text(paper.title, limit=300)
    arxiv = f"https://arxiv.org/abs/{paper.id}" if _ARXIV_ID.match(paper.id) else None
    hf_search = f"https://huggingface.co/papers?q={quote_plus(title)}"
    arxiv_search = f"https://arxiv.org/search/?searchtype=title&query={quote(title)}"
    return {
        "main": arxiv or hf_search,
        "arxiv": arxiv,
        "hf_search": hf_search,
        "arxiv_search": arxiv_search,
        "hf_paper": f"https://huggingface.co/papers/{paper.id}" if arxiv else None,
        "github": paper.github_repo,
        "project": paper.project_page,
    }


def no_mentions(text: str) -> str:
    """Break @everyone, @here, @channel and @all with a zero-width space so they notify no one."""
    return _MENTION.sub("@\u200b", text)


def md_escape(text: str) -> str:
    """Markdown-safe text: backslash before every character that could start markup; no mentions."""
    return no_mentions(re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", " ".join(text.split())))


def slack_escape(text: str) -> str:
    """Slack mrkdwn: &, < and > as entities (Slack's rule); *, _, ~ and ` broken by a zero-width space."""
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return no_mentions(re.sub(r"([*_~`])", "\u200b\\1\u200b", text))


SHOWN_AUTHORS = 3  # names in a digest before "et al."


def authors_text(paper: Paper) -> str | None:
    """The first three authors' names and "et al.", or the author count a text page gives."""
    if paper.authors:
        names = ", ".join(header_text(name, limit=60) for name in paper.authors[:SHOWN_AUTHORS])
        return names + (" et al." if len(paper.authors) > SHOWN_AUTHORS else "")
    if paper.authors_count is not None:
        return f"{paper.authors_count} author{'s' if paper.authors_count != 1 else ''}"
    return None


@lru_cache(maxsize=65536)
def paper_meta(paper: Paper) -> str:
    parts = []
    if (authors := authors_text(paper)) is not None:
        parts.append(authors)
    if paper.organization:
        parts.append(header_text(paper.organization, limit=80))
    if paper.published:
        parts.append(f"published {paper.published.day} {paper.published:%b %Y}")
    if paper.upvotes:
        parts.append(f"▲ {paper.upvotes}")
    if paper.comments:
        parts.append(f"{paper.comments} comment{'s' if paper.comments != 1 else ''}")
    return " · ".join(parts)


def describe(reason: Reason) -> str:
    """One reason as a phrase: “diffusion model” in the title, like “Pangu-Weather…”, trending (…)."""
    label = header_text(reason.label, limit=120)
    if reason.kind == "keyword":
        detail = f" ({reason.detail})" if reason.detail else ""
        return f"“{label}”{detail} in the {' and '.join(reason.where) or 'text'}"
    if reason.kind == "seed" and reason.detail == "liked":
        return f"like “{label}”, which you liked"
    if reason.kind == "seed" and reason.detail == "archive":
        return f"like the archive's best matches for your keywords, such as “{label}”"
    if reason.kind == "seed":
        return f"like “{label}”"
    if reason.kind == "less":
        return f"less like “{label}”"
    if reason.kind == "trending":
        return f"trending ({reason.detail})" if reason.detail else "trending"
    return label


_VIEWS = itertools.count()  # each paper view's number: the key of its cached fragments, never given twice


@lru_cache(maxsize=65536)
def paper_view(paper: Paper) -> dict[str, Any]:
    """What templates show of one paper; ``key`` is the key of its cached fragments.

    A number, not the paper: hashing a ``Paper`` hashes every field, ~20 times a
    digest. A view is kept per paper, so its number stands for this paper's content.
    """
    short, more = summary(paper.abstract)
    if paper.ai_summary:  # Hugging Face's one-line summary, said to be theirs; the abstract is a link away
        short, more = f"{AI_SUMMARY_LABEL}: {' '.join(paper.ai_summary.split())}", True
    return {
        "paper": paper,
        "key": next(_VIEWS),
        "id": paper.id,
        "title": " ".join(paper.title.split()),
        "links": links(paper),
        "summary": short,
        "more": more,
        "meta": paper_meta(paper),
        "upvotes": paper.upvotes,
        "code": code_text(paper),
    }


AI_SUMMARY_LABEL = "Hugging Face's AI summary"


def code_text(paper: Paper) -> str | None:
    """The code's label: "GitHub ★ 310" (stars when known), or None without a repository."""
    if not paper.github_repo:
        return None
    return "GitHub" + (f" ★ {paper.github_stars:,}" if paper.github_stars else "")


def reason_view(reason: Reason) -> dict[str, Any]:
    """What templates show of one reason: its words (shared by every subscriber it applies to), the ``key`` of
    their cached fragments, and its score."""
    return {**_reason_words(reason._replace(score=0.0)), "score": reason.score}


def reason_data(reason: Reason) -> dict[str, Any]:
    """One reason as data (a JSON webhook's): ``reason_view`` without its fragments' key."""
    return {name: value for name, value in reason_view(reason).items() if name != "key"}


_REASON_KEYS = itertools.count()  # each reason's words' number: the key of their cached fragments, never reused


@lru_cache(maxsize=65536)
def _reason_words(reason: Reason) -> dict[str, Any]:
    """A reason's words, kept per reason without its score: the same few recur in thousands of digests; ``key``
    stands for them (a template renders them once per key, in a cache block)."""
    return {
        "key": next(_REASON_KEYS),
        "kind": reason.kind,
        "label": header_text(reason.label, limit=120),
        "where": " and ".join(reason.where) or "text",
        "detail": reason.detail,
        "score": None,  # filled in by ``reason_view``, here for the keys' order
        "text": describe(reason),
    }


def shown_reasons(reasons: Sequence[Reason]) -> list[Reason]:
    """The reasons worth a reader's time: whole-term matches, seeds and liked papers, else the best partial
    match. A close archive match is said once, in the digest's header (``archive_match``), and under an item
    only when it is that item's main reason."""
    strong = [
        r for r in reasons if (r.kind == "seed" and r.detail != "archive") or (r.kind == "keyword" and not r.detail)
    ]
    archive = [r for r in reasons if r.kind == "seed" and r.detail == "archive" and r.score >= SHOWN_ARCHIVE]
    if archive and all(archive[0].score > r.score for r in strong):
        strong = [*archive[:1], *strong]  # it did most for this paper
    partial = [r for r in reasons if r.kind == "keyword" and r.detail is not None]
    return strong or partial[:1]


def archive_match(items: Sequence[Ranked]) -> str | None:
    """The archive paper that most drew this digest's papers by likeness to the keywords' best matches, for
    the header's one line about that reason; None when it counted for no item."""
    found = [r for item in items for r in item.why if r.kind == "seed" and r.detail == "archive"]
    best = max((r for r in found if r.score >= SHOWN_ARCHIVE), key=lambda r: r.score, default=None)
    return header_text(best.label, limit=120) if best else None


@lru_cache(maxsize=64)
def day_label(value: date) -> str:
    """ "Mon 14 Mar" (cached: strftime is slow, and a day's digests share a handful of dates)."""
    return f"{value:%a} {value.day} {value:%b}"


def top_labels(items: Sequence[Ranked]) -> list[str]:
    """The keywords that did most for the top papers, at most two: what the digest's own items matched."""
    seen: list[str] = []
    for item in items:
        label = next((reason.label for reason in item.why if reason.kind == "keyword"), None)
        if label and label not in seen:
            seen.append(label)
        if len(seen) == 2:
            break
    return seen


def subject(digest: Digest) -> str:
    """ "Your papers for Mon 14 Mar: diffusion model, quantization (+10)", one safe line, from the digest's own
    content: the keywords its items matched, else its first item's title; never a paper that is not in it."""
    day = day_label(digest.edition)
    if not digest.items:
        return header_text(f"Nothing matched today, {day}: {plural(digest.new_count, 'new paper')}")
    labels = top_labels(digest.items)
    topics = [header_text(t, limit=40) for t in labels] or [header_text(digest.items[0].paper.title, limit=60)]
    more = len(digest.items) - max(len(labels), 1)
    tail = f" (+{more})" if more > 0 else ""
    noun = "paper" if len(digest.items) == 1 else "papers"
    return header_text(f"Your {noun} for {day}: {', '.join(topics)}{tail}", limit=150)


def context(digest: Digest, *, unsubscribe_url: str | None = None, links: Links | None = None) -> dict[str, Any]:
    """The data every template gets (plain dicts and strings; paper text as values only).

    With ``links`` (the subscriber's signed links), every paper gets "more / less
    like this" links and the footer a link to the preferences page.
    """
    edition = digest.edition.isoformat()
    items = [_item_view(item, links, edition) for item in digest.items]
    trending = [paper_view(p) for p in digest.trending]
    profile = digest.profile
    return {
        "name": profile.name,
        "subject": subject(digest),
        "day": day_label(digest.edition),
        "edition": edition,
        "count": len(digest.items),
        "new_count": digest.new_count,
        "items": items,
        "archive_match": archive_match(digest.items),
        "trending": trending,
        "question": _question_view(digest.question, links, edition),
        "keywords": [term for term, _ in profile.keywords],
        "seeds": len(profile.seeds),
        "unsubscribe_url": links.unsubscribe if links else unsubscribe_url,
        "manage_url": links.preferences if links else None,
    }


def _item_view(item: Ranked, links: Links | None, edition: str) -> dict[str, Any]:
    """One chosen paper: its view, its place and score, the reasons shown (also as one line), vote links."""
    why = [reason_view(r) for r in shown_reasons(item.why)]
    return {
        **paper_view(item.paper),
        "rank": item.rank,
        "score": item.score,
        "why": why,
        "why_text": "; ".join(r["text"] for r in why),
        "trending": next((r.detail for r in item.why if r.kind == "trending" and r.detail), None),
        "vote": _votes(links, item.paper.id, edition),
    }


QUESTION = "Help me learn: is this for you?"  # the daily question's heading, in every format
QUESTION_NOTE = "Your answer teaches your digest; this paper is not one of today's picks."


def _question_view(question: Ranked | None, links: Links | None, edition: str) -> dict[str, Any] | None:
    """The daily question: the paper (no place, no reasons) and its vote links; None without either."""
    if question is None or links is None:
        return None
    vote = _votes(links, question.paper.id, edition)
    return {**paper_view(question.paper), "vote": vote, "heading": QUESTION, "note": QUESTION_NOTE}


def _votes(links: Links | None, paper: str, edition: str) -> dict[str, str] | None:
    if links is None:
        return None
    return {"more": links.feedback(paper, 1, edition), "less": links.feedback(paper, -1, edition)}


def intro(context: dict[str, Any]) -> str:
    count, new = context["count"], context["new_count"]
    if not count:
        return f"Nothing matched your profile today, out of {plural(new, 'new paper')}."
    also = f" {ARCHIVE_LINE} “{context['archive_match']}”." if context.get("archive_match") else ""
    return f"{plural(count, 'paper')} for you out of {new:,} new today.{also}"


# The one line a digest's header gives the archive-likeness reason (it would repeat under every item otherwise).
ARCHIVE_LINE = "Also ranked by how close papers are to your keywords' best matches in the archive, such as"
