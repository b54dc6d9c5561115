"""Text to a ``Dump``: one Daily Papers page parsed into papers, with a warning for every oddity.

Pure: it takes the text and the ingest day and touches no file, clock or environment.

A Daily Papers page comes in two layouts (the README's "Dumps"), and Hugging Face's JSON
list in a third (``hf-json``, read by ``hfjson``):

* **cards**: blank-line separated blocks: title, abstract, and an optional meta
  block (``• 6 authors`` or an organization line, a lone ``·``, and the
  publication date optionally followed by the upvote count);
* **flat**: no blank lines; title and abstract lines alternate, the first title
  glued to the header word ``Subscribe``.

Both are read the same way. Every line is classified (``lines``); meta lines
close a paper. The text lines between two meta groups are assigned the roles
title / abstract by a small minimum-cost segmentation: plain alternation costs
nothing, and anything else (a missing abstract, a line that belongs to no paper,
an abstract spread over several lines) costs something and is reported as a
warning with its line number. The parser never drops a line without saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from digest.errors import ParseError
from digest.ingest.lines import (
    PAGE_DAY,
    Line,
    Meta,
    looks_like_abstract,
    month_number,
    page_lines,
    read_meta,
    resolve_page_day,
    short,
    split_meta,
)
from digest.models import Dump, Paper, ParseWarning
from digest.text import normalise_title, paper_id


@dataclass(slots=True)
class _Draft:
    title: str
    line: int
    abstract: str | None = None
    meta: Meta | None = None


# Costs of the segmentation. Plain title/abstract alternation costs 0; the
# numbers only order the alternatives (see _segment) and have no other meaning.
_COST_TITLE_LOOKS_LIKE_ABSTRACT = 3.0
_COST_SHORT_ABSTRACT = 1.0
_COST_MISSING_ABSTRACT = 2.0
_COST_ORPHAN = 4.0
_COST_WRAPPED_LINE = 1.0
_COST_LOOSE_CONTINUATION = 2.5
_COST_SHORT_CONTINUATION = 3.5


# Actions of the segmentation, per text line.
_TITLE, _ABSTRACT, _MORE_TITLE, _MORE_ABSTRACT, _ORPHAN = range(5)
# States: no open paper, a title without abstract yet, a title with an abstract.
_NONE, _HAS_TITLE, _HAS_ABSTRACT = range(3)


def _segment(units: list[Line], *, flat: bool) -> list[int]:
    """Assign each text line an action at minimum total cost (a tiny Viterbi pass)."""
    inf = float("inf")
    n = len(units)
    cost = [[inf] * 3 for _ in range(n + 1)]
    back: list[list[tuple[int, int]]] = [[(-1, -1)] * 3 for _ in range(n + 1)]
    cost[0][_NONE] = 0.0
    for i, unit in enumerate(units):
        prose = looks_like_abstract(unit.text)
        same_block = i > 0 and not flat and units[i - 1].block == unit.block
        for state in range(3):
            here = cost[i][state]
            if here == inf:
                continue
            options: list[tuple[float, int, int]] = []
            close = _COST_MISSING_ABSTRACT if state == _HAS_TITLE else 0.0
            title_cost = _COST_TITLE_LOOKS_LIKE_ABSTRACT if prose else 0.0
            options.append((close + title_cost, _TITLE, _HAS_TITLE))
            options.append((_COST_ORPHAN, _ORPHAN, state))
            if state == _HAS_TITLE:
                options.append((0.0 if prose else _COST_SHORT_ABSTRACT, _ABSTRACT, _HAS_ABSTRACT))
                if same_block and not prose:
                    options.append((_COST_WRAPPED_LINE, _MORE_TITLE, _HAS_TITLE))
            if state == _HAS_ABSTRACT:
                if same_block:  # in the cards layout, only a blank line starts a new title
                    more = _COST_WRAPPED_LINE
                elif prose:
                    more = _COST_LOOSE_CONTINUATION
                else:
                    more = _COST_SHORT_CONTINUATION
                options.append((more, _MORE_ABSTRACT, _HAS_ABSTRACT))
            for step, action, new_state in options:
                total = here + step
                if total < cost[i + 1][new_state]:
                    cost[i + 1][new_state] = total
                    back[i + 1][new_state] = (state, action)
    final = [cost[n][s] + (_COST_MISSING_ABSTRACT if s == _HAS_TITLE else 0.0) for s in range(3)]
    state = min(range(3), key=final.__getitem__)
    actions = [0] * n
    for i in range(n, 0, -1):
        state, actions[i - 1] = back[i][state]
    return actions


DEFAULT_MAX_PAPERS = 5000


def parse_page(text: str, *, source: str, today: date, max_papers: int = DEFAULT_MAX_PAPERS) -> Dump:
    """Parse one saved Daily Papers page into a ``Dump`` (``ingest.read.parse`` picks the layout).

    ``today`` is the ingest day; it gives the page day (``Mar 14``) its year:
    the latest year that puts it on or before ``today``. Raises ``ParseError``
    when the text holds no papers, has none of a page's marks (a page header,
    author/date lines, abstracts that read as prose), or holds more than
    ``max_papers``; everything else it cannot read becomes a warning with its
    line number.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    warnings: list[ParseWarning] = []
    lines = page_lines(text, warnings)
    has_header = any(line.kind in ("header", "day") for line in lines)
    page_date, body = _page_body(lines, today=today, warnings=warnings)
    # Cards put (nearly) every text line in a block of its own; flat pages run them together,
    # so a stray blank line in a flat page does not make it cards.
    text_lines = [line for line in body if line.kind == "text"]
    layout = "cards" if 2 * len({line.block for line in text_lines}) > len(text_lines) else "flat"
    drafts = _drafts(body, flat=layout == "flat", warnings=warnings)
    _check_shape(drafts, source=source, has_header=has_header, max_papers=max_papers)
    papers = _papers(drafts, warnings=warnings)
    if not papers:
        hint = "no text lines at all" if not body else "no line could be read as a paper title"
        raise ParseError(
            f"{source}: no papers found ({hint}); expected a Daily Papers page: "
            "title and abstract lines after the page header"
        )
    # Where every other paper ends with an author/date block, a last paper without one was cut off.
    cut = len(drafts) >= 2 and drafts[-1].meta is None and all(d.meta is not None for d in drafts[:-1])
    if cut and drafts[-1].line == papers[-1].line:
        warnings.append(
            ParseWarning(
                papers[-1].line,
                f"{short(papers[-1].title)!r} has no author/date block unlike the others; the file may be cut short",
            )
        )
    warnings.sort(key=lambda w: w.line)
    return Dump(source=source, layout=layout, page_date=page_date, papers=tuple(papers), warnings=tuple(warnings))


def _page_body(lines: list[Line], *, today: date, warnings: list[ParseWarning]) -> tuple[date | None, list[Line]]:
    """The page day (from the header) and the lines after the header; repeated headers are skipped."""
    page_date: date | None = None
    seen_text = False
    body: list[Line] = []
    for line in lines:
        if line.kind == "day":
            match = PAGE_DAY.match(line.text)
            assert match is not None  # noqa: S101 - an invariant, for the type checker; no input is checked by it
            day = resolve_page_day(month_number(match["month"]) or 0, int(match["day"]), today=today)
            if seen_text:
                warnings.append(ParseWarning(line.number, f"page header {line.text!r} repeated; skipped"))
            elif day is None:
                warnings.append(ParseWarning(line.number, f"page day {line.text!r} is not a date; skipped"))
            elif page_date is None:
                page_date = day
            elif page_date != day:
                warnings.append(ParseWarning(line.number, f"second page day {line.text!r}; kept {page_date:%b %d}"))
        elif line.kind == "header":
            if seen_text:
                warnings.append(ParseWarning(line.number, f"page header {line.text!r} repeated; skipped"))
        else:
            seen_text = seen_text or line.kind == "text"
            body.append(line)
    return page_date, body


def _drafts(body: list[Line], *, flat: bool, warnings: list[ParseWarning]) -> list[_Draft]:
    """The papers of the body, each closed by its meta block when it has one."""
    drafts: list[_Draft] = []
    segment: list[Line] = []

    def flush(meta: Meta | None) -> None:
        before = len(drafts)
        drafts.extend(_papers_of(segment, flat=flat, warnings=warnings))
        segment.clear()
        if meta is None:
            return
        if len(drafts) == before:
            warnings.append(ParseWarning(meta.first_line, "author/date block with no paper before it; skipped"))
            return
        drafts[-1].meta = meta

    for item in split_meta(body):
        if isinstance(item, list):
            flush(read_meta(item, warnings))
        else:
            segment.append(item)
    flush(None)
    return drafts


def _papers(drafts: list[_Draft], *, warnings: list[ParseWarning]) -> list[Paper]:
    """Drafts as papers, in page order; one without letters or digits, or a repeat, is skipped with a warning."""
    papers: list[Paper] = []
    seen_ids: dict[str, int] = {}
    for draft in drafts:
        norm = normalise_title(draft.title)
        if not norm:
            warnings.append(ParseWarning(draft.line, f"title {draft.title!r} has no letters or digits; skipped"))
            continue
        pid = paper_id(norm)
        if pid in seen_ids:
            message = f"{short(draft.title)!r} repeats the paper at line {seen_ids[pid]}; kept the first"
            warnings.append(ParseWarning(draft.line, message))
            continue
        seen_ids[pid] = draft.line
        meta = draft.meta or Meta(first_line=draft.line)
        papers.append(
            Paper(
                id=pid,
                title=draft.title,
                norm_title=norm,
                abstract=draft.abstract,
                authors_count=meta.authors_count,
                organization=meta.organization,
                published=meta.published,
                upvotes=meta.upvotes,
                position=len(papers) + 1,
                line=draft.line,
            )
        )
    return papers


def _check_shape(drafts: list[_Draft], *, source: str, has_header: bool, max_papers: int) -> None:
    """Refuse text that is not a Daily Papers page, or one with more papers than ``max_papers``.

    A page has a header, or author/date blocks, or abstracts that read as prose
    (a page saved without its header and meta lines still has those); a note or
    a log file has none of them and is not taken as papers.
    """
    if len(drafts) > max_papers:
        raise ParseError(
            f"{source}: {len(drafts):,} papers is over the limit of {max_papers:,} a dump; "
            "if the file is right, raise ingest.max_papers in the config (or DIGEST_INGEST__MAX_PAPERS)"
        )
    prose = sum(1 for d in drafts if d.abstract and looks_like_abstract(d.abstract))
    if drafts and not has_header and not any(d.meta for d in drafts) and 2 * prose < len(drafts):
        raise ParseError(
            f"{source}: does not look like a Daily Papers dump: no page header, no author/date lines, "
            f"and {len(drafts) - prose} of {len(drafts)} 'abstracts' do not read as prose; "
            "expected the text of a Daily Papers page"
        )


def _papers_of(units: list[Line], *, flat: bool, warnings: list[ParseWarning]) -> list[_Draft]:
    """Turn the text lines of one segment into paper drafts, warning on every oddity."""
    drafts: list[_Draft] = []
    for index, (unit, action) in enumerate(zip(units, _segment(units, flat=flat), strict=True)):
        current = drafts[-1] if drafts else None
        if action == _TITLE:
            drafts.append(_Draft(title=unit.text, line=unit.number))
        elif action == _MORE_TITLE and current is not None:
            current.title = f"{current.title} {unit.text}"
        elif action == _ABSTRACT and current is not None:
            current.abstract = unit.text
        elif action == _MORE_ABSTRACT and current is not None:
            wrapped = not flat and units[index - 1].block == unit.block
            if not wrapped:
                warnings.append(ParseWarning(unit.number, f"joined to the abstract of {short(current.title)!r}"))
            joiner = " " if wrapped else "\n\n"
            current.abstract = f"{current.abstract}{joiner}{unit.text}"
        else:
            warnings.append(ParseWarning(unit.number, f"text that belongs to no paper skipped: {short(unit.text)!r}"))
    for draft in drafts:
        if draft.abstract is None:
            warnings.append(ParseWarning(draft.line, f"no abstract for {short(draft.title)!r}"))
    return drafts
