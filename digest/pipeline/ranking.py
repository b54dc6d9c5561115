"""What making and previewing digests share: the archive's TF-IDF space and the renderer (each built
once), the window of candidate papers an edition draws from, and a preview of the next digest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from digest import cadence, rank, render
from digest.config import Settings
from digest.models import Digest, Paper, Profile, Ranked, StoredDigest
from digest.pipeline.subscribers import find_subscriber, stored_profile
from digest.store import Store
from digest.text import normalise_title

_corpus_cache: dict[tuple[object, ...], rank.Corpus] = {}
_renderers: dict[str, render.Renderer] = {}


def corpus(store: Store, extra: Sequence[Paper] = (), *, settings: Settings, now: datetime) -> rank.Corpus:
    """The archive's TF-IDF space, fitted once per archive version and day; ``extra`` papers not stored yet
    join it.

    The archive is what the service remembers: the papers first seen within
    ``[retention] history_days``, and every profile's seed papers however old.
    So a day's ranking costs the same in a service's third year as in its
    first, once the window is full; an older paper no longer shapes which words
    are rare or which papers best match a keyword. (A vote on one weighs under 1%
    by then: a reader votes on papers of their digests, as they arrive.)
    """
    floor = datetime.combine((now - timedelta(days=settings.retention.history_days)).date(), time(), UTC)
    titles = frozenset(normalise_title(seed) for s in store.subscribers.all() for seed in stored_profile(s).seeds)
    key = (str(store.location), *store.papers.archive_version(), floor, titles)
    if key not in _corpus_cache:
        _corpus_cache.clear()  # one archive at a time: an older space is stale now
        _corpus_cache[key] = rank.Corpus(store.papers.archive(floor, titles=titles))
    cached = _corpus_cache[key]
    unknown = [p for p in extra if p.id not in cached]
    if not unknown:
        return cached
    return rank.Corpus([*cached.papers, *unknown])  # the cached space's papers: the archive is not read again


def weights(settings: Settings) -> rank.Weights:
    return rank.Weights(**settings.rank.model_dump(exclude={"vote_half_life_days", "ask_days"}))


def renderer(settings: Settings) -> render.Renderer:
    """The Jinja environment and CSS inliner, built once per settings (templates are read once)."""
    key = str(settings.render.templates_dir)
    if key not in _renderers:
        _renderers[key] = render.Renderer(templates_dir=settings.render.templates_dir)
    return _renderers[key]


def vote_weights(
    store: Store, names: Sequence[str], *, settings: Settings, now: datetime
) -> dict[str, list[tuple[str, float]]]:
    """Each subscriber's votes as the ranker takes them: +/- a weight halving every ``vote_half_life_days``."""
    half_life = settings.rank.vote_half_life_days * 86400
    return {
        name: [(paper, vote * 0.5 ** (max((now - at).total_seconds(), 0.0) / half_life)) for paper, vote, at in votes]
        for name, votes in store.feedback.votes_of(names).items()
    }


def new_papers(store: Store) -> tuple[list[Paper], str | None]:
    """The papers first seen in the latest dump, with that dump's source."""
    latest = store.papers.latest_dump()
    if latest is None:
        return [], None
    return [row.paper for row in store.papers.seen(first_dump=latest.id)], latest.source


class Reading(NamedTuple):
    """What ranking papers for one subscriber reads from the store: the archive's space (with the papers), their
    votes as the ranker takes them, and the papers they were sent. Read once for several rankings."""

    space: rank.Corpus
    votes: list[tuple[str, float]]
    seen: set[str]


def reading(store: Store, profile: Profile, papers: Sequence[Paper], *, settings: Settings, now: datetime) -> Reading:
    votes = vote_weights(store, [profile.name], settings=settings, now=now).get(profile.name, [])
    space = corpus(store, papers, settings=settings, now=now)
    return Reading(space, votes, store.digests.digested(profile.name))


def rank_for(
    store: Store,
    profile: Profile,
    papers: Sequence[Paper],
    *,
    settings: Settings,
    now: datetime,
    keep_all: bool = False,
    read: Reading | None = None,
) -> list[Ranked]:
    """Rank papers for one profile, skipping what its subscriber already received, with their votes (``read``:
    what ``reading`` gave for these papers, when it was read already)."""
    space, votes, seen = read or reading(store, profile, papers, settings=settings, now=now)
    return rank.rank(
        papers,
        profile,
        corpus=space,
        normalise_title=normalise_title,
        weights=weights(settings),
        seen=seen,
        votes=votes,
        keep_all=keep_all,
    )


def window_start(profile: Profile, fire: datetime, last_made: datetime | None, *, history_days: int) -> datetime:
    """Where the papers of the edition firing at ``fire`` begin: after the subscriber's latest
    digest, or for a first digest, after the firing before this one; never more than
    ``history_days`` before ``fire``.

    That bound is what lets retention forget, with the digests older than
    ``[retention] history_days``, who received their papers: a paper first seen
    before it is no edition's candidate any more, so it cannot be sent twice.
    """
    start = last_made if last_made is not None else cadence.previous_fire(profile, fire)
    return max(start, fire - timedelta(days=history_days))


def candidates(store: Store, profile: Profile, *, now: datetime, history_days: int) -> tuple[list[Paper], datetime]:
    """The papers an edition due at ``now`` draws from, and since when.

    Papers first seen after the subscriber's latest digest; for a first digest,
    after the firing before the one that is due (a day, or a week for weekly).
    A daemon that was down for days therefore sends one digest covering them all.
    """
    fire = cadence.last_fire(profile, now) or now
    since = window_start(profile, fire, store.digests.last_at(profile.name), history_days=history_days)
    return store.papers.since(since), since


@dataclass(frozen=True, slots=True)
class Preview:
    """What a subscriber would receive now."""

    profile: Profile
    items: list[Ranked]
    trending: list[Paper]
    candidates: int
    since: datetime
    everything: list[Ranked]  # every candidate not excluded or sent before, best first (for quiet days)
    status: str = "active"  # paused or unsubscribed: what they would get were they active


def preview(store: Store, name: str, *, settings: Settings, now: datetime) -> Preview:
    """What the subscriber's next digest would hold if it were made now (were they active: a paused or
    unsubscribed subscriber is previewed too, and ``status`` says which they are)."""
    subscriber = find_subscriber(store.subscribers, name, unsubscribed=True)
    profile = stored_profile(subscriber)
    papers, since = candidates(store, profile, now=now, history_days=settings.retention.history_days)
    read = reading(store, profile, papers, settings=settings, now=now)
    items = rank_for(store, profile, papers, settings=settings, now=now, read=read)
    everything = rank_for(store, profile, papers, settings=settings, now=now, keep_all=True, read=read)
    chosen = {item.paper.id for item in items} | read.seen
    trending = rank.trending(papers, count=profile.trending, skip=chosen, exclude=profile.exclude)
    return Preview(
        profile, items, trending, candidates=len(papers), since=since, everything=everything, status=subscriber.status
    )


@dataclass(frozen=True, slots=True)
class LastDigest:
    """A subscriber's latest digest as it was made: its frozen content and its items."""

    profile: Profile
    stored: StoredDigest
    items: list[Ranked]

    def as_digest(self) -> Digest:
        """The digest again, for formats not frozen with it (chat payloads); its trending list was not kept."""
        return Digest(self.profile, self.stored.edition, tuple(self.items), (), self.stored.new_count)


def last_digest(store: Store, profile: Profile) -> LastDigest | None:
    """The subscriber's latest digest, or None before their first."""
    stored = store.digests.last(profile.name)
    if stored is None:
        return None
    found = [
        (store.papers.get(paper), place, score, why) for paper, place, score, why in store.digests.items(stored.id)
    ]
    items = [Ranked(paper, place, score, why) for paper, place, score, why in found if paper is not None]
    return LastDigest(profile, stored, items)


def as_digest(view: Preview, *, now: datetime) -> Digest:
    """A preview as the digest it would become: the edition of the latest firing (or today)."""
    fire = cadence.last_fire(view.profile, now)
    edition = fire.date() if fire else now.astimezone(ZoneInfo(view.profile.timezone)).date()
    return Digest(
        profile=view.profile,
        edition=edition,
        items=tuple(view.items),
        trending=tuple(view.trending),
        new_count=view.candidates,
    )
