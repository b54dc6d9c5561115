"""The frozen dataclasses that pass between the stages (stdlib only).

Stages exchange these plain values; dicts appear only at the edges (SQL rows,
JSON, templates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import NamedTuple

FREQUENCIES = ("daily", "weekdays", "weekly")


class Status(StrEnum):
    """A subscriber's state: active, paused (optionally until a day) or unsubscribed."""

    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"


class State(StrEnum):
    """A delivery's state in the ledger: pending -> sending -> sent | retry | failed."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


class ReasonKind(StrEnum):
    """What a ``Reason`` credits: a keyword, a seed (liked or from the archive), a disliked paper
    (less), the day's trending, or none when nothing matched."""

    KEYWORD = "keyword"
    SEED = "seed"
    LESS = "less"
    TRENDING = "trending"
    NONE = "none"


EMPTY_DAYS = ("skip", "notice")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Channel kinds a profile may name. Webhook kinds take the URL from an environment variable.
CHAT_KINDS = ("slack", "discord", "teams", "mattermost", "webhook")  # posted to a webhook URL
CHANNEL_KINDS = ("email", "outbox", "atom", *CHAT_KINDS)
FORMATS = ("html", "text", "md", *CHAT_KINDS)  # what a digest can be rendered as


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
    # What Hugging Face's JSON brings beside (``hf-json`` dumps); empty or None from a text page.
    authors: tuple[str, ...] = ()
    comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None


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


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One list day's latest fetch: ``new`` (a dump was written), ``unchanged``, ``empty`` or ``failed``."""

    day: date
    outcome: str
    items: int
    at: datetime
    etag: str | None = None
    sha256: str | None = None
    detail: str | None = None  # the dump's file name, or what went wrong


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a profile sends its digests: a channel kind and its target (an address, or the variable
    holding a webhook's URL; secrets are never here). ``digest.channels`` holds the transports."""

    kind: str
    url_env: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """A subscriber's wishes: what to rank for, when and where to send."""

    name: str
    keywords: tuple[tuple[str, float], ...] = ()
    exclude: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()
    email: str | None = None
    timezone: str = "UTC"
    send_at: time = time(7, 0)
    frequency: str = "daily"
    day: int | None = None  # weekly only: 0 is Monday
    max_items: int = 10
    min_score: float = 0.1
    empty_day: str = "skip"
    trending: int = 3
    ask: bool | None = None  # the daily question: on, off, or None (on for a reader's first ``[rank] ask_days``)
    channels: tuple[Destination, ...] = ()
    source: str | None = None  # the file it was read from

    @property
    def delivery(self) -> tuple[Destination, ...]:
        """The channels to use: as listed, else email when there is an address, else the outbox."""
        if self.channels:
            return self.channels
        return (Destination("email", address=self.email),) if self.email else (Destination("outbox"),)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A stored profile (its last good TOML text) and the subscriber's state."""

    name: str
    source: str | None
    text: str
    profile_hash: str
    status: Status
    paused_until: date | None
    updated_at: datetime
    link_key: str = ""  # names the subscriber in signed links, instead of the name
    unsubscribed_by: str | None = None  # file, operator or reader
    unsubscribed_at: datetime | None = None
    joined_at: datetime | None = None  # signed up on the page then: no edition that fired before it
    created_at: datetime | None = None  # first stored (from a file, or an unconfirmed sign-up)


@dataclass(frozen=True, slots=True)
class Vote:
    """A reader's "more / less like this" on one paper (the last vote wins)."""

    subscriber: str
    paper: str
    vote: int  # +1 more like this, -1 less
    edition: str | None
    at: datetime
    title: str | None = None  # the paper's title, when it is in the archive


class Reason(NamedTuple):
    """One contribution to a paper's score, for the digest's "why" line.

    ``kind`` is ``keyword`` (``label`` the term, ``where`` title and/or abstract,
    ``detail`` the words found when only part of a phrase matched), ``seed``
    (``label`` the seed title), ``trending`` (``detail`` upvotes and position) or
    ``none`` when nothing matched.

    A named tuple, like ``Ranked``, where the other models are frozen dataclasses:
    the ranker makes about 35 of them per subscriber a day, and a tuple is
    several times quicker to make.
    """

    kind: ReasonKind
    label: str
    score: float
    where: tuple[str, ...] = ()
    detail: str | None = None

    def as_dict(self) -> dict[str, object]:
        """As stored and as ``--json`` shows it."""
        where = list(self.where)
        return {"kind": self.kind, "label": self.label, "score": self.score, "where": where, "detail": self.detail}


class Ranked(NamedTuple):
    """A paper chosen for a profile, with its place, score and reasons."""

    paper: Paper
    rank: int
    score: float
    why: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """One edition of one subscriber's digest: what was chosen, frozen before anything is sent."""

    profile: Profile
    edition: date  # the subscriber's local day
    items: tuple[Ranked, ...]
    trending: tuple[Paper, ...] = ()
    new_count: int = 0  # new papers that day, for "12 papers for you out of 86 new today"
    question: Ranked | None = None  # "Help me learn: is this for you?": not among the items, not counted


@dataclass(frozen=True, slots=True)
class Message:
    """A digest rendered for people: subject, plain text, HTML (CSS inlined) and Markdown."""

    subject: str
    text: str
    html: str
    markdown: str


@dataclass(frozen=True, slots=True)
class StoredDigest:
    """A digest as frozen in the ledger: its rendered content, made before anything was sent."""

    id: int
    subscriber: str
    edition: date
    subject: str
    text: str
    html: str
    markdown: str
    items: int
    created_at: datetime
    mime: bytes = b""  # the MIME body made with it (render.mime_body); empty: make it when sending
    new_count: int = 0  # the new papers it was chosen from


@dataclass(frozen=True, slots=True)
class Delivery:
    """One (digest, channel) in the ledger: pending -> sending -> sent | retry | failed.

    ``channel`` names the channel without secrets (``email:ada@example.org``,
    ``slack:$BEN_SLACK_WEBHOOK``); ``payload`` holds chat messages as frozen JSON;
    ``parts_sent`` counts the chat messages already accepted, so a retry resumes.
    """

    id: int
    digest: int
    subscriber: str
    edition: date
    channel: str
    kind: str
    target: str | None
    message_id: str
    state: State
    attempts: int
    parts_sent: int
    payload: str | None
    next_try: datetime | None
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to create with its digest."""

    channel: str
    kind: str
    target: str | None
    message_id: str
    payload: str | None = None
