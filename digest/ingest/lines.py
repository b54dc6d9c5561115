"""A page's lines: each classified (header, page day, meta, dot or text), and meta blocks read into fields.

Pure: no files, clock or environment.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from digest.models import ParseWarning
from digest.text import clean_line

_MONTHS = {
    name.casefold(): number
    for number in range(1, 13)
    for name in (calendar.month_abbr[number], calendar.month_name[number])
}
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
PAGE_DAY = re.compile(rf"^{_MONTH} (?P<day>\d{{1,2}})$")
_PUBLISHED = re.compile(rf"^{_MONTH} (?P<day>\d{{1,2}}), (?P<year>\d{{4}})(?: (?P<count>\d+))?$")
_AUTHORS = re.compile(r"^(?:[•·*-] ?)?(?P<n>\d+) authors?\b[\s|·•,;:-]*(?P<rest>.*)$", re.I)
_BULLET = re.compile(r"^[•·*] ?(?P<rest>.*)$")
_DOT = frozenset({"·", "•", "⋅", "∙"})
_COUNT = re.compile(r"^\d{1,7}$")
_HEADER = re.compile(
    r"^(?:new|subscribe|\[?daily papers\]?|by ?ak and the research community|"
    r"get trending papers in your (?:e-?mail )?inbox(?: once a day)?!?)$",
    re.I,
)
_GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?P<rest>\S.*)$")
# A lowercase word after "Subscribe" is a glued title only if it has a capital inside ("mPLUG");
# "Subscribers ..." could be a title of its own, so it is kept whole, with a warning.
_LOWER_WORD = re.compile(r"^[a-z][a-z'-]*(?:\s|$)")


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    kind: str  # "text" | "meta" | "dot" | "header" | "day"
    text: str
    block: int  # index of the blank-line separated block the line is in


@dataclass(slots=True)
class Meta:
    first_line: int
    authors_count: int | None = None
    organization: str | None = None
    published: date | None = None
    upvotes: int | None = None


def month_number(name: str) -> int | None:
    return _MONTHS.get(name.casefold())


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def resolve_page_day(month: int, day: int, *, today: date) -> date | None:
    """The latest date with this month and day on or before ``today``."""
    for year in range(today.year, today.year - 8, -1):
        candidate = _valid_date(year, month, day)
        if candidate is not None and candidate <= today:
            return candidate
    return None


def _is_page_day(text: str) -> bool:
    match = PAGE_DAY.match(text)
    return bool(match and month_number(match["month"]) and 1 <= int(match["day"]) <= 31)


def _classify(text: str) -> str:
    if text in _DOT:
        return "dot"
    if _HEADER.match(text):
        return "header"
    if _is_page_day(text):
        return "day"
    if _AUTHORS.match(text) or _COUNT.match(text):
        return "meta"
    match = _PUBLISHED.match(text)
    if match and month_number(match["month"]):
        return "meta"
    return "text"


def page_lines(text: str, warnings: list[ParseWarning]) -> list[Line]:
    """Classify every non-blank line; blank lines only advance the block counter."""
    out: list[Line] = []
    block = 0
    in_header = True
    for number, raw in enumerate(text.split("\n"), start=1):
        line = clean_line(raw)
        if not line:
            block += 1
            continue
        kind = _classify(line)
        glued = _GLUED_SUBSCRIBE.match(line) if in_header and kind == "text" else None
        if glued and _LOWER_WORD.match(glued["rest"]):
            warnings.append(ParseWarning(number, f"{short(line)!r} may be 'Subscribe' glued to a title; kept whole"))
        elif glued:
            out.append(Line(number, "header", "Subscribe", block))
            line = glued["rest"].strip()
        if kind == "text":
            in_header = False
        out.append(Line(number, kind, line, block))
    return out


_SENTENCE_END = re.compile(r"[.!?] +[A-Z(\[]")


def looks_like_abstract(text: str) -> bool:
    """Prose rather than a title: long, several sentences, or a long full stop."""
    return len(text) >= 220 or len(_SENTENCE_END.findall(text)) >= 2 or (len(text) >= 100 and text.endswith("."))


# --- meta blocks ------------------------------------------------------------


def read_meta(lines: list[Line], warnings: list[ParseWarning]) -> Meta:
    """Fold a run of meta lines (and an organization line before ``·``) into fields."""
    meta = Meta(first_line=lines[0].number)
    for line in lines:
        if line.kind == "dot":
            continue
        authors = _AUTHORS.match(line.text)
        published = _PUBLISHED.match(line.text)
        if authors:
            meta.authors_count = _count(authors["n"], line, warnings)
            if authors["rest"]:
                meta.organization = authors["rest"]
        elif published:
            month = month_number(published["month"]) or 0
            day = _valid_date(int(published["year"]), month, int(published["day"]))
            if day is None:
                warnings.append(ParseWarning(line.number, f"not a real date: {line.text!r}"))
            meta.published = day
            if published["count"] is not None:
                meta.upvotes = _count(published["count"], line, warnings)
        elif _COUNT.match(line.text):
            meta.upvotes = _count(line.text, line, warnings)
        else:  # the organization line that stands where the author count would
            bullet = _BULLET.match(line.text)
            meta.organization = bullet["rest"] if bullet else line.text
    return meta


MAX_COUNT = 999_999_999  # no page shows more upvotes or authors; a longer number is damage, not a count


def _count(digits: str, line: Line, warnings: list[ParseWarning]) -> int | None:
    """A count as a number, or None with a warning when it is too long to be one."""
    if len(digits) > len(str(MAX_COUNT)):
        warnings.append(ParseWarning(line.number, f"{digits[:20]}… is too large to be a count; left out"))
        return None
    return int(digits)


def split_meta(lines: list[Line]) -> list[list[Line] | Line]:
    """Group consecutive meta lines, and the organization line that opens a meta block.

    An organization line is a short text line right before a lone ``·`` in the
    same block, at the start of that block or after another meta line.
    """
    items: list[list[Line] | Line] = []
    for index, line in enumerate(lines):
        before = lines[index - 1] if index > 0 else None
        after = lines[index + 1] if index + 1 < len(lines) else None
        org_line = (
            line.kind == "text"
            and after is not None
            and after.kind == "dot"
            and after.block == line.block
            and (before is None or before.block != line.block or before.kind in ("meta", "dot"))
            and not looks_like_abstract(line.text)
        )
        if line.kind in ("meta", "dot") or org_line:
            last = items[-1] if items else None
            if isinstance(last, list):
                last.append(line)
            else:
                items.append([line])
        else:
            items.append(line)
    return items


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
