"""Making one batch of digests: rank a batch of subscribers together, render each digest, freeze them all.

The same work runs in this process or in a worker (``workers``); ``make``
decides which batches there are.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from digest import links, rank, render
from digest.channels import REGISTRY
from digest.config import Settings
from digest.models import CHAT_KINDS, Digest, NewDelivery, Paper, Profile, Ranked
from digest.pipeline import claims, payloads
from digest.pipeline.ranking import corpus, renderer, weights
from digest.pipeline.report import MadeDigest, Skipped
from digest.store import PreparedDigest, Store, prepare
from digest.text import normalise_title


class Member(NamedTuple):
    """A subscriber due now: their profile, and the firing whose edition is made."""

    profile: Profile
    fire: datetime


@dataclass
class Batch:
    """Subscribers sharing a window of candidate papers (each with the firing due), and what each had before."""

    since: datetime
    members: list[Member]
    seen: dict[str, set[str]]
    keys: dict[str, str]  # each member's link key, for their signed links
    votes: dict[str, list[tuple[str, float]]]  # each member's votes, weighted by age
    suspended: frozenset[str] = frozenset()  # addresses not mailed: they bounced (lower-cased)
    asking: frozenset[str] = frozenset()  # members whose digest ends with the daily question


@dataclass
class Made:
    """What making one batch did: the digests made, the empty days skipped, seconds per phase."""

    made: list[MadeDigest]
    skipped: list[Skipped]
    seconds: dict[str, float]
    elsewhere: list[str]  # members another process had claimed: it makes theirs


@dataclass
class Window:
    """A window's candidate papers, with what every batch against it shares (loaded once per process)."""

    papers: list[Paper]
    order: list[Paper]  # most trending first
    space: rank.Corpus


class Windows:
    """The window the batches in hand draw from, built once per process; batches come window by window.

    ``read`` holds papers already read for their window (``make`` reads them to plan the batches):
    a window found there is not read from the database again.
    """

    def __init__(self, read: dict[datetime, list[Paper]] | None = None) -> None:
        self._read = read or {}
        self._since: datetime | None = None
        self._window: Window | None = None

    def get(self, store: Store, since: datetime, *, settings: Settings, now: datetime) -> Window:
        if self._window is None or self._since != since:
            self._window = None  # only the latest is needed again: the last one's memory goes first
            papers = self._read.pop(since, None)
            if papers is None:
                papers = store.papers.since(since)
            space = corpus(store, papers, settings=settings, now=now)
            self._since, self._window = since, Window(papers, rank.trending_order(papers), space)
        return self._window


def make_batch(
    store: Store,
    settings: Settings,
    windows: Windows,
    batch: Batch,
    *,
    now: datetime,
    lock: AbstractContextManager[object],
    checkpoint: bool = False,
) -> Made:
    """Rank, render and freeze one batch (in this process or a worker; ``lock`` is held to write): its
    members this process claimed (``claims``), the others being made by another process."""
    seconds: dict[str, float] = {}
    clocked = Stopwatch(seconds)
    editions = [(profile.name, fire.date().isoformat()) for profile, fire in batch.members]
    mine = store.claims.editions(editions, holder=claims.holder(), now=now, until=claims.lease_end(settings, now))
    elsewhere = [name for name, _ in editions if name not in mine]
    if elsewhere:
        batch = replace(batch, members=[m for m in batch.members if m.profile.name in mine])
    if not batch.members:
        return Made([], [], seconds, elsewhere)
    window = windows.get(store, batch.since, settings=settings, now=now)
    with _gc_paused():
        with clocked("rank"):
            ranked, questions = rank.rank_and_ask(
                window.papers,
                [profile for profile, _ in batch.members],
                corpus=window.space,
                normalise_title=normalise_title,
                weights=weights(settings),
                seen=batch.seen,
                votes=batch.votes,
                ask=[profile.name in batch.asking for profile, _ in batch.members],
            )
        digests = [
            _prepare(profile, fire, (items, question), window, batch=batch, settings=settings, clocked=clocked)
            for (profile, fire), items, question in zip(batch.members, ranked, questions, strict=True)
        ]
        with clocked("freeze"):
            with lock:
                saved = store.digests.save(digests, at=now)
            if checkpoint:
                store.db.checkpoint()  # outside the lock: the other workers write meanwhile
    made = Made([], [], seconds, elsewhere)
    for (profile, fire), items, digest_id in zip(batch.members, ranked, saved, strict=True):
        edition = fire.date().isoformat()
        if digest_id is None:  # made meanwhile by another process sharing the database
            made.elsewhere.append(profile.name)
        elif not items and profile.empty_day == "skip":
            made.skipped.append(Skipped(profile.name, edition))
        else:
            made.made.append(MadeDigest(profile.name, edition, len(items)))
    return made


def ledger_channels(
    profile: Profile, settings: Settings, *, suspended: frozenset[str] = frozenset()
) -> list[tuple[str, str, str | None]]:
    """(channel name, kind, target) per channel; email goes to the outbox when no SMTP host is set, and not
    at all to a ``suspended`` address."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for channel in profile.delivery:
        if channel.kind == "email":
            address = channel.address or profile.email
            if settings.smtp.host and address and address.lower() in suspended:
                continue
            entry = (f"email:{address}", "email", address) if settings.smtp.host else ("outbox", "outbox", None)
        elif channel.url_env:
            entry = (f"{channel.kind}:${channel.url_env}", channel.kind, channel.url_env)
        else:
            entry = (channel.kind, channel.kind, None)
        found.setdefault(entry[0], entry)
    return list(found.values())


def _prepare(
    profile: Profile,
    fire: datetime,
    picked: tuple[list[Ranked], Ranked | None],
    window: Window,
    *,
    batch: Batch,
    settings: Settings,
    clocked: Stopwatch,
) -> PreparedDigest:
    """One subscriber's digest, rendered and ready to store (an empty skip-day keeps only its mark); its
    ``picked`` papers, and the day's question, asked only where the reader can answer it (signed links)."""
    items, question = picked
    edition = fire.date().isoformat()
    papers = window.papers
    if not items and profile.empty_day == "skip":
        return PreparedDigest(profile.name, edition, [], new_count=len(papers))
    signed = links.links_for(profile.name, batch.keys.get(profile.name, ""), settings.delivery)
    question = question if signed is not None else None
    with clocked("rank"):
        chosen = {item.paper.id for item in items} | batch.seen.get(profile.name, set())
        if question is not None:
            chosen.add(question.paper.id)  # asked about: not listed again as trending
        trending = rank.trending(
            papers, count=profile.trending, skip=chosen, exclude=profile.exclude, order=window.order
        )
    digest = Digest(profile, fire.date(), tuple(items), tuple(trending), new_count=len(papers), question=question)
    with clocked("render"):
        renders = renderer(settings)
        routes = ledger_channels(profile, settings, suspended=batch.suspended)
        channels = [(name, REGISTRY[kind], target) for name, kind, target in routes]
        message = renders.message(digest, links=signed, markdown=any(cls.markdown for _, cls, _ in channels))

        def delivery(name: str, kind: str, target: str | None) -> NewDelivery:
            message_id = render.message_id(profile.name, edition, name, sender=settings.email.sender)
            if kind in CHAT_KINDS:
                payload = json.dumps(renders.chat(digest, kind, links=signed))
            elif kind == payloads.FEED:
                payload = payloads.feed(signed)
            else:
                payload = payloads.head(
                    message.subject, subscriber=profile.name, edition=edition, target=target, message_id=message_id,
                    signed=signed, settings=settings,
                )  # fmt: skip
            return NewDelivery(name, kind, target, message_id, payload)

        deliveries = [delivery(name, cls.kind, target) for name, cls, target in channels]
        mailed = any(cls.takes == "email" for _, cls, _ in channels)
        body, gives_back = render.email_body(message) if mailed else (b"", False)
    with clocked("freeze"):  # packing the content is part of freezing it
        return prepare(
            profile.name, edition, items, message, new_count=len(papers), deliveries=deliveries, mime=body,
            gives_back=gives_back,
        )  # fmt: skip


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cycle collector off while a batch is made.

    A batch makes a few hundred thousand short-lived objects, freed by reference
    counting when it is stored; each automatic collection meanwhile walks every
    live object (the day's papers, the archive), which was over a third of the
    ranking time at 10,000 subscribers. Cycles made in the batch are left to
    the collections after it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Stopwatch:
    """Adds the seconds spent in each named phase to a dict (or does nothing without one)."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self._into = into

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self._into is None:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        finally:
            self._into[phase] = self._into.get(phase, 0.0) + time.perf_counter() - started
