"""The frozen dataclasses that pass between the stages (stdlib only).

Stages exchange these plain values; dicts appear only at the edges (SQL rows,
JSON, templates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

LAYOUTS = ("cards", "flat")


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """Something the parser skipped or could not read, at a 1-based line."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper as seen on one page.

    ``id`` is the arXiv id when the source gives one, else ``t:`` plus a hash of
    ``norm_title``. ``position`` (1-based), ``upvotes`` and ``line`` describe
    this sighting of the paper, not the paper itself.
    """

    id: str
    title: str
    norm_title: str
    abstract: str | None = None
    authors_count: int | None = None
    organization: str | None = None
    published: date | None = None
    upvotes: int | None = None
    position: int | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Dump:
    """The parsed text of one Daily Papers page."""

    source: str
    layout: str
    page_date: date | None
    papers: tuple[Paper, ...]
    warnings: tuple[ParseWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class DumpRecord:
    """A dump as the store knows it: what it held and what was new in it."""

    id: int
    sha256: str
    source: str
    layout: str
    page_date: date | None
    papers: int
    new: int
    warnings: int
    ingested_at: datetime

    @property
    def seen(self) -> int:
        """Papers of this dump that an earlier dump already had."""
        return self.papers - self.new


@dataclass(frozen=True, slots=True)
class Ingested:
    """The outcome of storing one dump; ``repeat`` when its bytes were stored before."""

    record: DumpRecord
    repeat: bool


@dataclass(frozen=True, slots=True)
class SeenPaper:
    """A paper in the seen-set, with the dump that first had it."""

    paper: Paper
    first_dump: str
    first_seen: datetime
    sightings: int


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Counts for ``digest status``."""

    path: str
    schema_version: int
    dumps: int
    papers: int
    sightings: int
    last_dump: DumpRecord | None
