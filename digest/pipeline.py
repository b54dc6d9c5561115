"""The only module that wires the stages together: files -> ingest -> store -> rank.

It decides nothing itself: ``ingest`` parses, ``profiles`` checks, ``store``
remembers, ``rank`` scores. What it adds is isolation (a bad file or profile
becomes an outcome with its error, and the rest goes on) and the cache of the
archive's TF-IDF space, refitted only when the archive changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest import ingest, profiles, rank, render
from digest.config import Settings
from digest.errors import DigestError, InputError, ProfileError, UsageError
from digest.models import Digest, Dump, Ingested, Paper, Profile, Ranked, Subscriber
from digest.store import Store


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one dump file: its parse and storage, or the error that stopped it."""

    path: Path
    dump: Dump | None = None
    ingested: Ingested | None = None
    error: DigestError | None = None


def is_dump_name(name: str) -> bool:
    """Files a folder scan takes: not hidden, not still being written (``*.tmp``)."""
    return not name.startswith(".") and not name.endswith(".tmp")


def expand(paths: Sequence[Path]) -> Iterator[Path | FileOutcome]:
    """Files first, folders as their dump files in name order; a bad path as an outcome."""
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and is_dump_name(p.name))
            if not files:
                yield FileOutcome(path, error=InputError(f"{path}: folder has no dump files; add .txt dumps to it"))
            yield from files
        elif path.exists():
            yield path
        else:
            yield FileOutcome(path, error=InputError(f"{path}: no such file or folder; check the path"))


def parse_files(paths: Sequence[Path], *, settings: Settings, today: date) -> Iterator[FileOutcome]:
    """Read and parse each file; write nothing."""
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, _ = ingest.load(item, today=today, max_bytes=settings.ingest.max_bytes)
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump)


def ingest_files(paths: Sequence[Path], *, store: Store, settings: Settings, now: datetime) -> Iterator[FileOutcome]:
    """Parse each file and store it: the seen-set learns which of its papers are new."""
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, raw = ingest.load(item, today=now.astimezone().date(), max_bytes=settings.ingest.max_bytes)
            stored = store.ingest(dump, sha256=raw.sha256, at=now)
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump, ingested=stored)


# --- subscribers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What syncing the subscribers folder did."""

    folder: Path
    changes: dict[str, str]  # name -> added | updated | resubscribed
    removed: list[str]
    errors: list[ProfileError]


def subscribe(store: Store, path: Path, *, at: datetime) -> tuple[Profile, str]:
    """Check a profile file and store it; returns the profile and added/updated/unchanged/resubscribed."""
    profile, text = profiles.load(path)
    outcome = store.save_subscriber(
        profile.name, text=text, profile_hash=profiles.fingerprint(text), source=str(path), at=at
    )
    return profile, outcome


def sync_subscribers(store: Store, folder: Path, *, at: datetime) -> SyncReport:
    """Bring the database in line with a folder of profiles.

    New and changed files are stored, files that went away unsubscribe, and a
    broken file is reported while its last good version stays in force.
    """
    errors: list[ProfileError] = []
    failed: set[str] = set()
    if not folder.is_dir():
        return SyncReport(folder, {}, [], [])

    def bad(path: Path, error: ProfileError) -> None:
        failed.add(str(path))
        errors.append(error)

    loaded = profiles.load_many(profiles.profile_files(folder), on_error=bad)
    changes: dict[str, str] = {}
    present = {p.name for p, _ in loaded}
    for profile, text in loaded:
        outcome = store.save_subscriber(
            profile.name, text=text, profile_hash=profiles.fingerprint(text), source=profile.source, at=at
        )
        if outcome != "unchanged":
            changes[profile.name] = outcome
    # A broken file still holds its subscriber: they stay subscribed on their last good version.
    present |= {s.name for s in store.subscribers() if s.source in failed}
    removed = store.unsubscribe_missing(folder=str(folder), present=present, at=at)
    return SyncReport(folder, changes, removed, errors)


def stored_profile(subscriber: Subscriber) -> Profile:
    """The Profile of a stored subscriber (its text was checked when it was stored)."""
    return profiles.parse(subscriber.text, source=subscriber.source or subscriber.name, default_name=subscriber.name)


def set_state(store: Store, name: str, status: str, *, at: datetime, until: date | None = None) -> None:
    """Unsubscribe, pause (optionally until a day) or resume a subscriber; unknown names are usage errors."""
    find_subscriber(store, name)
    store.set_status(name, status, at=at, until=until)


def find_subscriber(store: Store, name: str) -> Subscriber:
    subscriber = store.subscriber(name)
    if subscriber is None or subscriber.status == "unsubscribed":
        raise UsageError(f"no subscriber named {name!r}; 'digest subscribers' lists them")
    return subscriber


# --- ranking -----------------------------------------------------------------------

_corpus_cache: dict[tuple[str, int, int], rank.Corpus] = {}


def corpus(store: Store, extra: Sequence[Paper] = ()) -> rank.Corpus:
    """The archive's TF-IDF space, fitted once per archive version; ``extra`` papers not stored yet join it."""
    key = (str(store.path), *store.archive_version())
    if key not in _corpus_cache:
        _corpus_cache.clear()  # one archive at a time: an older space is stale now
        _corpus_cache[key] = rank.Corpus(store.archive())
    cached = _corpus_cache[key]
    unknown = [p for p in extra if p.id not in cached]
    if not unknown:
        return cached
    return rank.Corpus([*store.archive(), *unknown])


def weights(settings: Settings) -> rank.Weights:
    return rank.Weights(**settings.rank.model_dump())


def new_papers(store: Store) -> tuple[list[Paper], str | None]:
    """The papers first seen in the latest dump, with that dump's source."""
    latest = store.latest_dump()
    if latest is None:
        return [], None
    return [row.paper for row in store.papers(first_dump=latest.id)], latest.source


def rank_for(
    store: Store,
    profile: Profile,
    papers: Sequence[Paper],
    *,
    settings: Settings,
    keep_all: bool = False,
) -> list[Ranked]:
    """Rank papers for one profile, skipping what its subscriber already received."""
    return rank.rank(
        papers,
        profile,
        corpus=corpus(store, papers),
        normalise_title=ingest.normalise_title,
        weights=weights(settings),
        seen=store.digested(profile.name),
        keep_all=keep_all,
    )


@dataclass(frozen=True, slots=True)
class Preview:
    """What a subscriber would receive now."""

    profile: Profile
    items: list[Ranked]
    trending: list[Paper]
    candidates: int
    dump: str | None


def renderer(settings: Settings) -> render.Renderer:
    """The Jinja environment and CSS inliner, built once per settings (templates are read once)."""
    key = str(settings.render.templates_dir)
    if key not in _renderers:
        _renderers[key] = render.Renderer(templates_dir=settings.render.templates_dir)
    return _renderers[key]


_renderers: dict[str, render.Renderer] = {}


def as_digest(view: Preview, *, now: datetime) -> Digest:
    """A preview as the digest it would become: the edition is the subscriber's local day."""
    edition = now.astimezone(ZoneInfo(view.profile.timezone)).date()
    return Digest(
        profile=view.profile,
        edition=edition,
        items=tuple(view.items),
        trending=tuple(view.trending),
        new_count=view.candidates,
    )


def preview(store: Store, name: str, *, settings: Settings) -> Preview:
    """Rank the latest dump's new papers for a subscriber, as their next digest would."""
    profile = stored_profile(find_subscriber(store, name))
    papers, source = new_papers(store)
    items = rank_for(store, profile, papers, settings=settings)
    chosen = {item.paper.id for item in items} | store.digested(profile.name)
    hot = rank.trending(papers, count=profile.trending, skip=chosen, exclude=profile.exclude)
    return Preview(profile=profile, items=items, trending=hot, candidates=len(papers), dump=source)
