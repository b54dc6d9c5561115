"""Dump ingest: bytes to text (``read``) and text to a ``Dump`` (``parse``).

``parse`` is pure: it takes the text and the ingest day and touches no file,
clock or environment. ``read`` is the only function here that does I/O.

A Daily Papers page comes in two layouts (DESIGN.md §1):

* **cards**: blank-line separated blocks: title, abstract, and an optional meta
  block (``• 6 authors`` or an organization line, a lone ``·``, and the
  publication date optionally followed by the upvote count);
* **flat**: no blank lines; title and abstract lines alternate, the first title
  glued to the header word ``Subscribe``.

Both are read the same way. Every line is classified (header, page day, meta,
or text); meta lines close a paper. The text lines between two meta groups are
assigned the roles title / abstract by a small minimum-cost segmentation: plain
alternation costs nothing, and anything else (a missing abstract, a line that
belongs to no paper, an abstract spread over several lines) costs something and
is reported as a warning with its line number. The parser never drops a line
without saying so.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import BinaryIO

from digest.errors import ParseError, ReadError
from digest.models import Dump, Paper, ParseWarning

# --- normalisation and identity -------------------------------------------

_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"))
_LATEX_STYLE = re.compile(
    r"\\(?:text(?:bf|it|tt|sc|rm|sf)?|emph|math(?:rm|bf|it|cal|bb|sf|tt|frak)?|"
    r"bm|boldsymbol|operatorname)\b"
)
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)")
_NOT_WORD = re.compile(r"[\W_]+")


def clean_line(line: str) -> str:
    """One display line: invisible characters dropped, all spaces folded to one."""
    return _SPACES.sub(" ", line.translate(_INVISIBLE)).strip()


def normalise_title(title: str) -> str:
    """The identity form of a title: NFKC, casefolded, LaTeX and punctuation folded.

    ``"Pangu-Weather: A 3D {Model}"`` and ``"pangu weather a 3d model"`` are the
    same paper. Greek letters fold to their names, so ``$\\alpha$-Net`` and
    ``α-Net`` agree, and accents are dropped.
    """
    text = html.unescape(unicodedata.normalize("NFKC", title))
    text = _LATEX_STYLE.sub(" ", text)
    text = _LATEX_COMMAND.sub(r" \1 ", text)
    folded = []
    for char in unicodedata.normalize("NFKD", text.casefold()):
        if unicodedata.combining(char):
            continue
        if "\u0370" <= char <= "\u03ff":
            name = unicodedata.name(char, "")
            folded.append(f" {name.rsplit(' ', 1)[-1].lower()} " if name else char)
        else:
            folded.append(char)
    return " ".join(_NOT_WORD.sub(" ", "".join(folded)).split())


def paper_id(norm_title: str, *, arxiv_id: str | None = None) -> str:
    """The arXiv id when known, else ``t:`` + 16 hex digits of the title's hash."""
    if arxiv_id:
        return arxiv_id
    return "t:" + hashlib.sha256(norm_title.encode("utf-8")).hexdigest()[:16]


# --- line classification ---------------------------------------------------

_MONTHS = {
    name.casefold(): number
    for number in range(1, 13)
    for name in (calendar.month_abbr[number], calendar.month_name[number])
}
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_PAGE_DAY = re.compile(rf"^{_MONTH} (?P<day>\d{{1,2}})$")
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
class _Line:
    number: int
    kind: str  # "text" | "meta" | "dot" | "header" | "day"
    text: str
    block: int  # index of the blank-line separated block the line is in


@dataclass(slots=True)
class _Draft:
    title: str
    line: int
    abstract: str | None = None
    meta: _Meta | None = None


@dataclass(slots=True)
class _Meta:
    first_line: int
    authors_count: int | None = None
    organization: str | None = None
    published: date | None = None
    upvotes: int | None = None


def _month(name: str) -> int | None:
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
    match = _PAGE_DAY.match(text)
    return bool(match and _month(match["month"]) and 1 <= int(match["day"]) <= 31)


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
    if match and _month(match["month"]):
        return "meta"
    return "text"


def _lines(text: str, warnings: list[ParseWarning]) -> list[_Line]:
    """Classify every non-blank line; blank lines only advance the block counter."""
    out: list[_Line] = []
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
            warnings.append(ParseWarning(number, f"{_short(line)!r} may be 'Subscribe' glued to a title; kept whole"))
        elif glued:
            out.append(_Line(number, "header", "Subscribe", block))
            line = glued["rest"].strip()
        if kind == "text":
            in_header = False
        out.append(_Line(number, kind, line, block))
    return out


# --- title / abstract segmentation -----------------------------------------

_SENTENCE_END = re.compile(r"[.!?] +[A-Z(\[]")

# Costs of the segmentation. Plain title/abstract alternation costs 0; the
# numbers only order the alternatives (see _segment) and have no other meaning.
_COST_TITLE_LOOKS_LIKE_ABSTRACT = 3.0
_COST_SHORT_ABSTRACT = 1.0
_COST_MISSING_ABSTRACT = 2.0
_COST_ORPHAN = 4.0
_COST_WRAPPED_LINE = 1.0
_COST_LOOSE_CONTINUATION = 2.5
_COST_SHORT_CONTINUATION = 3.5


def looks_like_abstract(text: str) -> bool:
    """Prose rather than a title: long, several sentences, or a long full stop."""
    return len(text) >= 220 or len(_SENTENCE_END.findall(text)) >= 2 or (len(text) >= 100 and text.endswith("."))


# Actions of the segmentation, per text line.
_TITLE, _ABSTRACT, _MORE_TITLE, _MORE_ABSTRACT, _ORPHAN = range(5)
# States: no open paper, a title without abstract yet, a title with an abstract.
_NONE, _HAS_TITLE, _HAS_ABSTRACT = range(3)


def _segment(units: list[_Line], *, flat: bool) -> list[int]:
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


# --- meta blocks ------------------------------------------------------------


def _read_meta(lines: list[_Line], warnings: list[ParseWarning]) -> _Meta:
    """Fold a run of meta lines (and an organization line before ``·``) into fields."""
    meta = _Meta(first_line=lines[0].number)
    for line in lines:
        if line.kind == "dot":
            continue
        authors = _AUTHORS.match(line.text)
        published = _PUBLISHED.match(line.text)
        if authors:
            meta.authors_count = int(authors["n"])
            if authors["rest"]:
                meta.organization = authors["rest"]
        elif published:
            month = _month(published["month"]) or 0
            day = _valid_date(int(published["year"]), month, int(published["day"]))
            if day is None:
                warnings.append(ParseWarning(line.number, f"not a real date: {line.text!r}"))
            meta.published = day
            if published["count"] is not None:
                meta.upvotes = int(published["count"])
        elif _COUNT.match(line.text):
            meta.upvotes = int(line.text)
        else:  # the organization line that stands where the author count would
            bullet = _BULLET.match(line.text)
            meta.organization = bullet["rest"] if bullet else line.text
    return meta


def _split_meta(lines: list[_Line]) -> list[list[_Line] | _Line]:
    """Group consecutive meta lines, and the organization line that opens a meta block.

    An organization line is a short text line right before a lone ``·`` in the
    same block, at the start of that block or after another meta line.
    """
    items: list[list[_Line] | _Line] = []
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


# --- parse -----------------------------------------------------------------


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


DEFAULT_MAX_PAPERS = 5000


def parse(text: str, *, source: str, today: date, max_papers: int = DEFAULT_MAX_PAPERS) -> Dump:
    """Parse one Daily Papers page into a ``Dump``.

    ``today`` is the ingest day; it gives the page day (``Mar 14``) its year:
    the latest year that puts it on or before ``today``. Raises ``ParseError``
    when the text holds no papers, has none of a page's marks (a page header,
    author/date lines, abstracts that read as prose), or holds more than
    ``max_papers``; everything else it cannot read becomes a warning with its
    line number.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    warnings: list[ParseWarning] = []
    lines = _lines(text, warnings)
    page_date: date | None = None
    seen_text = False
    has_header = any(line.kind in ("header", "day") for line in lines)
    body: list[_Line] = []
    for line in lines:
        if line.kind == "day":
            match = _PAGE_DAY.match(line.text)
            assert match is not None
            day = resolve_page_day(_month(match["month"]) or 0, int(match["day"]), today=today)
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

    # Cards put (nearly) every text line in a block of its own; flat pages run them together,
    # so a stray blank line in a flat page does not make it cards.
    text_lines = [line for line in body if line.kind == "text"]
    layout = "cards" if 2 * len({line.block for line in text_lines}) > len(text_lines) else "flat"

    drafts: list[_Draft] = []
    segment: list[_Line] = []

    def flush(meta: _Meta | None) -> None:
        before = len(drafts)
        drafts.extend(_papers_of(segment, flat=layout == "flat", warnings=warnings))
        segment.clear()
        if meta is None:
            return
        if len(drafts) == before:
            warnings.append(ParseWarning(meta.first_line, "author/date block with no paper before it; skipped"))
            return
        drafts[-1].meta = meta

    for item in _split_meta(body):
        if isinstance(item, list):
            flush(_read_meta(item, warnings))
        else:
            segment.append(item)
    flush(None)
    _check_shape(drafts, source=source, has_header=has_header, max_papers=max_papers)

    papers: list[Paper] = []
    seen_ids: dict[str, int] = {}
    for draft in drafts:
        norm = normalise_title(draft.title)
        if not norm:
            warnings.append(ParseWarning(draft.line, f"title {draft.title!r} has no letters or digits; skipped"))
            continue
        pid = paper_id(norm)
        if pid in seen_ids:
            message = f"{_short(draft.title)!r} repeats the paper at line {seen_ids[pid]}; kept the first"
            warnings.append(ParseWarning(draft.line, message))
            continue
        seen_ids[pid] = draft.line
        meta = draft.meta or _Meta(first_line=draft.line)
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
                f"{_short(papers[-1].title)!r} has no author/date block unlike the others; the file may be cut short",
            )
        )
    warnings.sort(key=lambda w: w.line)
    return Dump(source=source, layout=layout, page_date=page_date, papers=tuple(papers), warnings=tuple(warnings))


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


def _papers_of(units: list[_Line], *, flat: bool, warnings: list[ParseWarning]) -> list[_Draft]:
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
                warnings.append(ParseWarning(unit.number, f"joined to the abstract of {_short(current.title)!r}"))
            joiner = " " if wrapped else "\n\n"
            current.abstract = f"{current.abstract}{joiner}{unit.text}"
        else:
            warnings.append(ParseWarning(unit.number, f"text that belongs to no paper skipped: {_short(unit.text)!r}"))
    for draft in drafts:
        if draft.abstract is None:
            warnings.append(ParseWarning(draft.line, f"no abstract for {_short(draft.title)!r}"))
    return drafts


# --- read ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """A dump file's text, the sha256 of its bytes, and what decoding had to drop."""

    path: Path
    text: str
    sha256: str
    size: int
    warnings: tuple[ParseWarning, ...] = ()


def read(path: Path, *, max_bytes: int) -> Text:
    """Read a dump file as strict UTF-8 (a BOM is fine), refusing what is not text.

    Only a regular file is read: a symbolic link (which could point anywhere on
    the machine), a FIFO, a device or a socket is refused without being opened
    for reading, so nothing blocks and nothing outside the dumps is ingested.
    Raises ``ReadError`` for those, a missing file, a file over ``max_bytes``,
    binary data and any byte sequence that is not UTF-8, naming the byte
    offset. A multi-byte character cut off by truncation at the very end is
    dropped with a warning instead, so a truncated download keeps its papers.
    """
    try:
        with _open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise ReadError(
                    f"{path}: {size / 1_048_576:.1f} MB is over the {max_bytes / 1_048_576:.4g} MB limit; "
                    "raise ingest.max_size_mb in the config (or DIGEST_INGEST__MAX_SIZE_MB)"
                )
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as e:
        raise ReadError(f"{path}: no such file; check the path") from e
    except PermissionError as e:
        raise ReadError(f"{path}: permission denied; make the file readable") from e
    except OSError as e:
        raise ReadError(f"{path}: cannot read ({e.strerror}); check the file") from e
    if len(data) > max_bytes:
        raise ReadError(f"{path}: grew past the {max_bytes / 1_048_576:.4g} MB limit while being read")
    if not data.strip():
        raise ReadError(f"{path}: the file is empty; expected the text of a Daily Papers page")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReadError(f"{path}: UTF-16 text; re-save it as UTF-8 (iconv -f UTF-16 -t UTF-8)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ReadError(f"{path}: binary data (NUL byte at offset {nul}); expected a text dump")
    digest = hashlib.sha256(data).hexdigest()
    warnings: tuple[ParseWarning, ...] = ()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.end == len(data):
            text = data[: e.start].decode("utf-8-sig")
            warnings = (
                ParseWarning(
                    text.count("\n") + 1,
                    f"file ends inside a character; dropped its last {len(data) - e.start} byte(s)",
                ),
            )
        else:
            raise ReadError(
                f"{path}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
                "re-save it as UTF-8 (e.g. iconv -f ISO-8859-1 -t UTF-8)"
            ) from e
    return Text(path=path, text=text, sha256=digest, size=len(data), warnings=warnings)


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (not following a symbolic link)."""
    if path.is_symlink():
        raise ReadError(f"{path}: a symbolic link; dumps are read only from regular files, so copy the file in")
    # O_NOFOLLOW closes the gap between that look and the open; O_NONBLOCK keeps a FIFO from blocking.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ReadError(f"{path}: is a folder, not a dump file")
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
            raise ReadError(f"{path}: {kind}, not a regular file; dumps must be regular files")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load(path: Path, *, today: date, max_bytes: int, max_papers: int = DEFAULT_MAX_PAPERS) -> tuple[Dump, Text]:
    """``read`` then ``parse``, with decoding warnings merged into the dump's."""
    raw = read(path, max_bytes=max_bytes)
    dump = parse(raw.text, source=str(path), today=today, max_papers=max_papers)
    if raw.warnings:
        dump = replace(dump, warnings=tuple(sorted(raw.warnings + dump.warnings, key=lambda w: w.line)))
    return dump, raw
