"""Rendering: a ``Digest`` becomes a ``Message`` (subject, text, HTML, Markdown), chat payloads and an email.

Pure: no files are written, nothing is sent, and the clock is not read (the
edition date is in the digest). Templates are Jinja with ``StrictUndefined``;
HTML is autoescaped, and paper text only ever arrives as data, never as
template source. Templates come from the package (``digest/templates`` in a
wheel, ``templates/`` in a checkout); a file of the same name in a configured
``templates_dir`` overrides one.

Chat payloads are assembled in Python from one rendered fragment per paper,
packed into as many messages as each platform's limits require; a paper is
never split between two messages (a single paper longer than a limit is
shortened, with "…").
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import css_inline
import jinja2

from digest.errors import RenderError
from digest.models import Digest, Message, Paper, Ranked, Reason
from digest.templating import FragmentCache, InliningLoader

# --- limits of each platform (class data, in one place) ---------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """What one chat message may hold."""

    chars: int  # text characters per message (or per section/embed where that is the limit)
    items: int  # blocks, embeds or entries per message
    total: int  # characters (Discord embeds) or UTF-8 bytes (Teams) per message


SLACK = Limits(chars=3000, items=50, total=40_000)  # section text 3,000; 50 blocks a message
DISCORD = Limits(chars=4096, items=10, total=6000)  # embed description 4,096; 10 embeds, 6,000 chars in all
DISCORD_TITLE = 256
MATTERMOST = Limits(chars=16_383, items=1_000, total=16_383)
TEAMS = Limits(chars=25_000, items=1_000, total=25_000)  # bytes of JSON, under the 28 KB webhook cap

CHAT_KINDS = ("slack", "discord", "teams", "mattermost", "webhook")
FORMATS = ("html", "text", "md", *CHAT_KINDS)

SUMMARY_SENTENCES = 2
SUMMARY_CHARS = 320

_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MENTION = re.compile(r"@(?=(everyone|here|channel|all)\b)", re.I)

# --- text helpers -------------------------------------------------------------------


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


@lru_cache(maxsize=65536)
def wrap(text: str, width: int = 69, indent: str = "   ") -> str:
    """Text wrapped at ``width`` for the plain-text email, continuation lines indented; never at hyphens.

    Cached: the same titles, summaries and reasons recur in thousands of digests a day.
    """
    lines = textwrap.wrap(text, width=width, break_on_hyphens=False, break_long_words=True)
    return ("\n" + indent).join(lines)


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


_ESCAPERS: dict[str, Callable[[str], str]] = {
    "slack": slack_escape,
    "discord": md_escape,
    "teams": md_escape,
    "mattermost": md_escape,
}


@lru_cache(maxsize=65536)
def _meta(paper: Paper) -> str:
    parts = []
    if paper.authors_count is not None:
        parts.append(f"{paper.authors_count} author{'s' if paper.authors_count != 1 else ''}")
    if paper.organization:
        parts.append(header_text(paper.organization, limit=80))
    if paper.published:
        parts.append(f"published {paper.published.day} {paper.published:%b %Y}")
    if paper.upvotes:
        parts.append(f"▲ {paper.upvotes}")
    return " · ".join(parts)


def describe(reason: Reason) -> str:
    """One reason as a phrase: “diffusion model” in the title, like “Pangu-Weather…”, trending (…)."""
    label = header_text(reason.label, limit=120)
    if reason.kind == "keyword":
        detail = f" ({reason.detail})" if reason.detail else ""
        return f"“{label}”{detail} in the {' and '.join(reason.where) or 'text'}"
    if reason.kind == "seed":
        return f"like “{label}”"
    if reason.kind == "trending":
        return f"trending ({reason.detail})" if reason.detail else "trending"
    return label


@lru_cache(maxsize=65536)
def _paper(paper: Paper) -> dict[str, Any]:
    """What templates show of one paper; ``paper`` itself is the key of its cached fragments."""
    short, more = summary(paper.abstract)
    return {
        "paper": paper,
        "id": paper.id,
        "title": " ".join(paper.title.split()),
        "links": links(paper),
        "summary": short,
        "more": more,
        "meta": _meta(paper),
        "upvotes": paper.upvotes,
    }


@lru_cache(maxsize=65536)
def _reason(reason: Reason) -> dict[str, Any]:
    return {
        "kind": reason.kind,
        "label": header_text(reason.label, limit=120),
        "where": " and ".join(reason.where) or "text",
        "detail": reason.detail,
        "score": reason.score,
        "text": describe(reason),
    }


def _shown(reasons: Sequence[Reason]) -> list[Reason]:
    """The reasons worth a reader's time: whole-term matches and seeds, else the best partial match."""
    strong = [r for r in reasons if r.kind == "seed" or (r.kind == "keyword" and r.detail is None)]
    partial = [r for r in reasons if r.kind == "keyword" and r.detail is not None]
    return strong or partial[:1]


def _day(value: date) -> str:
    return f"{value:%a} {value.day} {value:%b}"


def _topics(items: Sequence[Ranked]) -> list[str]:
    """The labels that did most for the top papers: keywords first, else the seed liked."""
    seen: list[str] = []
    for item in items:
        for reason in item.why:
            label = reason.label if reason.kind == "keyword" else None
            if reason.kind == "seed":
                label = "like " + header_text(reason.label, limit=40)
            if label and label not in seen:
                seen.append(label)
                break
        if len(seen) == 2:
            break
    return seen


def subject(digest: Digest) -> str:
    """ "Your papers for Mon 14 Mar: diffusion model, quantization (+10)", one safe line."""
    day = _day(digest.edition)
    if not digest.items:
        return header_text(f"Nothing matched today, {day}: {digest.new_count} new papers")
    topics = ", ".join(header_text(t, limit=40) for t in _topics(digest.items))
    more = len(digest.items) - 2
    tail = f" (+{more})" if more > 0 else ""
    noun = "paper" if len(digest.items) == 1 else "papers"
    return header_text(f"Your {noun} for {day}: {topics}{tail}" if topics else f"Your {noun} for {day}", limit=150)


# --- the renderer -------------------------------------------------------------------


def _package_templates() -> Path:
    bundled = resources.files("digest") / "templates"
    if bundled.is_dir():
        return Path(str(bundled))
    return Path(__file__).resolve().parent.parent / "templates"  # a source checkout


class Renderer:
    """The Jinja environment and the CSS inliner, built once and reused for every digest."""

    def __init__(self, *, templates_dir: Path | None = None) -> None:
        search = [str(templates_dir)] if templates_dir is not None else []
        search.append(str(_package_templates()))
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._loader = InliningLoader(search, self._inliner.inline)
        self._env = jinja2.Environment(
            loader=self._loader,
            extensions=[FragmentCache],
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["md"] = md_escape
        self._env.filters["wrap"] = wrap

    def _render(self, template: str, /, **context: Any) -> str:
        try:
            return self._env.get_template(template).render(**context)
        except jinja2.TemplateSyntaxError as e:
            where = f"{e.filename or template}:{e.lineno}"
            raise RenderError(f"{where}: template syntax error ({e.message}); fix the template") from e
        except jinja2.TemplateNotFound as e:
            raise RenderError(f"template {template} not found; check [render] templates_dir") from e
        except jinja2.UndefinedError as e:
            raise RenderError(f"{template}: {e.message}; check the names the template uses") from e

    def context(self, digest: Digest, *, unsubscribe_url: str | None = None) -> dict[str, Any]:
        """The data every template gets (plain dicts and strings; paper text as values only)."""
        items = [
            {
                **_paper(item.paper),
                "rank": item.rank,
                "score": item.score,
                "why": [_reason(r) for r in _shown(item.why)],
                "trending": next((r.detail for r in item.why if r.kind == "trending" and r.detail), None),
            }
            for item in digest.items
        ]
        trending = [_paper(p) for p in digest.trending]
        profile = digest.profile
        return {
            "name": profile.name,
            "subject": subject(digest),
            "day": _day(digest.edition),
            "edition": digest.edition.isoformat(),
            "count": len(digest.items),
            "new_count": digest.new_count,
            "items": items,
            "trending": trending,
            "keywords": [term for term, _ in profile.keywords],
            "seeds": len(profile.seeds),
            "unsubscribe_url": unsubscribe_url,
            "profile_file": profile.source,
        }

    def message(self, digest: Digest, *, unsubscribe_url: str | None = None, markdown: bool = True) -> Message:
        """Subject, plain text, HTML with CSS inlined, and Markdown (left empty with ``markdown=False``)."""
        context = self.context(digest, unsubscribe_url=unsubscribe_url)
        html = self._render("email.html.j2", **context)
        if "email.html.j2" not in self._loader.inlined:  # a custom template the loader could not pre-inline
            html = self._inliner.inline(html)
        return Message(
            subject=context["subject"],
            text=self._render("email.txt.j2", **context),
            html=html,
            markdown=self._render("digest.md.j2", **context) if markdown else "",
        )

    # --- chat ---------------------------------------------------------------------

    def chat(self, digest: Digest, kind: str, *, unsubscribe_url: str | None = None) -> list[dict[str, Any]]:
        """The JSON payloads that post this digest to a chat platform, in order."""
        context = self.context(digest, unsubscribe_url=unsubscribe_url)
        if kind == "webhook":
            return [self._generic(digest, context)]
        escape = _ESCAPERS[kind]
        fragments = [
            self._render(
                f"chat_item.{'slack' if kind == 'slack' else 'md'}.j2",
                item=item,
                esc=escape,
                with_title=kind != "discord",
            ).strip()
            for item in context["items"]
        ]
        trending = [
            self._render(f"chat_trending.{'slack' if kind == 'slack' else 'md'}.j2", paper=paper, esc=escape).strip()
            for paper in context["trending"]
        ]
        heading = header_text(context["subject"], limit=150)
        intro = _intro(context)
        build = {"slack": _slack, "discord": _discord, "teams": _teams, "mattermost": _mattermost}[kind]
        return build(heading, intro, fragments, trending, context)

    def _generic(self, digest: Digest, context: dict[str, Any]) -> dict[str, Any]:
        return {
            "subscriber": digest.profile.name,
            "edition": digest.edition.isoformat(),
            "subject": context["subject"],
            "new_count": digest.new_count,
            "items": [
                {
                    "rank": item.rank,
                    "id": item.paper.id,
                    "title": item.paper.title,
                    "url": links(item.paper)["main"],
                    "abstract": item.paper.abstract,
                    "score": item.score,
                    "why": [_reason(r) for r in item.why],
                    "authors_count": item.paper.authors_count,
                    "organization": item.paper.organization,
                    "published": item.paper.published.isoformat() if item.paper.published else None,
                    "upvotes": item.paper.upvotes,
                }
                for item in digest.items
            ],
            "trending": [{"id": p.id, "title": p.title, "url": links(p)["main"]} for p in digest.trending],
        }

    def render(self, digest: Digest, fmt: str, *, unsubscribe_url: str | None = None) -> str:
        """One format as text, for previews and files: html, text, md, or a chat kind as JSON."""
        if fmt in CHAT_KINDS:
            payloads = self.chat(digest, fmt, unsubscribe_url=unsubscribe_url)
            return json.dumps(payloads if len(payloads) > 1 else payloads[0], indent=2, ensure_ascii=False) + "\n"
        message = self.message(digest, unsubscribe_url=unsubscribe_url)
        return {"html": message.html, "text": message.text, "md": message.markdown}[fmt]


def _intro(context: dict[str, Any]) -> str:
    count, new = context["count"], context["new_count"]
    if not count:
        return f"Nothing matched your profile today, out of {new} new papers."
    return f"{count} paper{'s' if count != 1 else ''} for you out of {new} new today."


# --- packing chat messages ----------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_Part = TypeVar("_Part")


def _pack(parts: Sequence[_Part], *, size: Callable[[_Part], int], limit: int, count: int) -> list[list[_Part]]:
    """Greedy: fill each message with whole parts while both the size and the count fit."""
    messages: list[list[_Part]] = [[]]
    used = 0
    for part in parts:
        if messages[-1] and (used + size(part) > limit or len(messages[-1]) >= count):
            messages.append([])
            used = 0
        messages[-1].append(part)
        used += size(part)
    return messages


def _slack(
    heading: str, intro: str, items: list[str], trending: list[str], ctx: dict[str, Any]
) -> list[dict[str, Any]]:
    item_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(i, SLACK.chars)}} for i in items]
    if trending:
        text = "*Trending today*\n" + "\n".join(trending)
        item_blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SLACK.chars)}})
    head: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(heading, 150), "emoji": False}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(intro)}]},
    ]
    # Each paper is a section followed by a divider: two blocks, so at most 24 papers after the 2 head blocks.
    per_message = (SLACK.items - len(head)) // 2
    groups = [item_blocks[i : i + per_message] for i in range(0, len(item_blocks), per_message)] or [[]]
    payloads = []
    for number, group in enumerate(groups, start=1):
        blocks: list[dict[str, Any]] = list(head) if number == 1 else []
        for block in group:
            blocks += [block, {"type": "divider"}]
        suffix = f" ({number}/{len(groups)})" if len(groups) > 1 else ""
        payloads.append({"text": slack_escape(_clip(heading + suffix, 150)), "blocks": blocks})
    return payloads


def _discord(
    heading: str, intro: str, items: list[str], trending: list[str], ctx: dict[str, Any]
) -> list[dict[str, Any]]:
    embeds = []
    for item, fragment in zip(ctx["items"], items, strict=True):
        title = _clip(f"{item['rank']}. {header_text(item['title'], limit=300)}", DISCORD_TITLE)
        embeds.append({"title": md_escape(title), "url": item["links"]["main"], "description": _clip(fragment, 1500)})
    if trending:
        embeds.append({"title": "Trending today", "description": _clip("\n".join(trending), 1500)})
    content = _clip(f"**{md_escape(heading)}**\n{md_escape(intro)}", 2000)
    groups = _pack(embeds, size=_embed_size, limit=DISCORD.total, count=DISCORD.items) if embeds else [[]]
    return [
        {"content": content if number == 0 else "", "embeds": group, "allowed_mentions": {"parse": []}}
        for number, group in enumerate(groups)
    ]


def _mattermost(
    heading: str, intro: str, items: list[str], trending: list[str], ctx: dict[str, Any]
) -> list[dict[str, Any]]:
    head = f"#### {md_escape(heading)}\n{md_escape(intro)}"
    parts = [_clip(i, MATTERMOST.chars - len(head) - 4) for i in items]
    if trending:
        parts.append(_clip("**Trending today**\n" + "\n".join(trending), MATTERMOST.chars - len(head) - 4))
    groups = _pack(parts, size=lambda p: len(p) + 2, limit=MATTERMOST.chars - len(head) - 2, count=MATTERMOST.items)
    return [{"text": "\n\n".join([head, *group]) if n == 0 else "\n\n".join(group)} for n, group in enumerate(groups)]


def _teams_card(body: list[dict[str, Any]]) -> dict[str, Any]:
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


def _teams(
    heading: str, intro: str, items: list[str], trending: list[str], ctx: dict[str, Any]
) -> list[dict[str, Any]]:
    head = [
        {"type": "TextBlock", "text": md_escape(heading), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": md_escape(intro), "isSubtle": True, "wrap": True},
    ]
    blocks = [
        {"type": "TextBlock", "text": _clip(i, 4000), "wrap": True, "separator": True, "spacing": "Medium"}
        for i in items
    ]
    if trending:
        text = _clip("**Trending today**\n\n" + "\n".join(trending), 4000)
        blocks.append({"type": "TextBlock", "text": text, "wrap": True, "separator": True})
    overhead = len(json.dumps(_teams_card(head)).encode())
    groups = _pack(blocks, size=_json_size, limit=TEAMS.total - overhead, count=TEAMS.items)
    return [_teams_card((head if n == 0 else []) + group) for n, group in enumerate(groups)]


def _embed_size(embed: dict[str, Any]) -> int:
    return len(embed["title"]) + len(embed.get("description", ""))


def _json_size(block: dict[str, Any]) -> int:
    return len(json.dumps(block).encode()) + 1


# --- email --------------------------------------------------------------------------


def email(
    message: Message,
    *,
    sender: str,
    to: str,
    sender_name: str = "paper-digest",
    reply_to: str | None = None,
    message_id: str | None = None,
    sent: datetime | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """One multipart/alternative email (plain text, then HTML) as RFC 5322 bytes with CRLF line ends.

    Assembled directly rather than through ``email.message.EmailMessage``, which
    cost 1.7 ms a message (bench/scale.py): header values are single safe lines,
    encoded as RFC 2047 words when not ASCII; then ``body``, the message's
    ``email_body`` (given when it was made ahead, else made here).
    """
    fields = [("Subject", header_text(message.subject))]
    fields.append(("From", formataddr((header_text(sender_name, limit=80), header_text(sender)), charset="utf-8")))
    fields.append(("To", header_text(to)))
    if reply_to:
        fields.append(("Reply-To", header_text(reply_to)))
    if sent is not None:
        fields.append(("Date", format_datetime(sent)))
    if message_id:
        fields.append(("Message-ID", header_text(message_id)))
    fields += [(name, header_text(value, limit=900)) for name, value in (headers or {}).items()]
    head = "\r\n".join(_header(name, value) for name, value in fields).encode("ascii")
    return head + b"\r\n" + (body if body is not None else email_body(message))


def email_body(message: Message) -> bytes:
    """The MIME part of ``email``: its MIME headers and both alternatives, the same for every send.

    The text part is quoted-printable, the HTML part 7bit where it can be
    (``_html_body``). Made when the digest is frozen, so sending adds only the
    headers that name the recipient and the moment.
    """
    text = _qp(message.text)
    html_encoding, html = _html_body(message.html)
    boundary = "==paper-digest-" + hashlib.sha256(text[:4096] + html[:4096]).hexdigest()[:24] + "=="
    part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: {}\r\n\r\n'
    return b"".join(
        [
            f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
            f"\r\n--{boundary}\r\n".encode(),
            part.format("plain", "quoted-printable").encode(),
            text,
            f"\r\n--{boundary}\r\n".encode(),
            part.format("html", html_encoding).encode(),
            html,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


MAX_LINE = 998  # RFC 5322: octets a line may hold, CRLF not counted


def _raw_text_is_ascii(html: str) -> bool:
    """No character beyond ASCII inside <style> or <script>, where a reference would stay literal."""
    for name in ("style", "script"):
        start = html.find(f"<{name}")
        while start >= 0:
            stop = html.find(f"</{name}", start)
            if not html[start : stop if stop >= 0 else len(html)].isascii():
                return False
            start = html.find(f"<{name}", stop) if stop >= 0 else -1
    return True


def _html_body(html: str) -> tuple[str, bytes]:
    """The HTML part as 7bit where it can travel so, else quoted-printable.

    7bit needs ASCII and lines of at most 998 octets: other characters become
    character references (the same text to a reader), which HTML decodes
    everywhere but inside <style> and <script>. A 7-bit part is about half the
    lines of a quoted-printable one, so the receiving server reads far fewer.
    """
    if _raw_text_is_ascii(html):
        body = _lf(html).encode("ascii", "xmlcharrefreplace")
        lines = body.rstrip(b"\n").split(b"\n")
        fitted = lines if max(map(len, lines)) <= MAX_LINE else _fold(lines)
        if fitted is not None:
            return "7bit", b"\r\n".join(fitted) + b"\r\n"
    return "quoted-printable", _qp(html)


_ATTRIBUTE_GAP = re.compile(rb"(?<=[\"']) +(?=[A-Za-z_:][-A-Za-z0-9_:.]*=)")


def _fold(lines: list[bytes]) -> list[bytes] | None:
    """Lines over 998 octets broken between a tag's attributes, where a line break means what a space does.

    None when a long line has no such place (a very long title, say).
    """
    folded: list[bytes] = []
    for line in lines:
        if len(line) <= MAX_LINE:
            folded.append(line)
            continue
        # A quote, spaces, then name= : a gap between attributes when it is inside a tag.
        gaps = [
            g.start()
            for g in _ATTRIBUTE_GAP.finditer(line)
            if line.rfind(b"<", 0, g.start()) > line.rfind(b">", 0, g.start())
        ]
        start = 0
        while len(line) - start > MAX_LINE:
            fitting = [gap for gap in gaps if start < gap <= start + MAX_LINE]
            if not fitting:
                return None
            folded.append(line[start : fitting[-1]])
            start = fitting[-1] + 1
        folded.append(line[start:])
    return folded


def _qp(body: str) -> bytes:
    """Quoted-printable (binascii, in C), CRLF line ends, ending with a line break."""
    encoded = binascii.b2a_qp(_lf(body).encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n").rstrip(b"\r\n") + b"\r\n"


def _lf(text: str) -> str:
    """Every line end as LF (the parts turn them into CRLF when encoded)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _header(name: str, value: str) -> str:
    """``Name: value``, as encoded words when the value is not ASCII, folded where it is long."""
    if value.isascii() and len(value) + len(name) < 900:
        return f"{name}: {value}"
    return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
