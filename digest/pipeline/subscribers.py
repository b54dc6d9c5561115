"""Subscribers in: profile files checked and stored, a folder synced, states changed.

A broken profile is reported while its last good version stays in force.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from digest import profiles
from digest.errors import ProfileError, UsageError
from digest.models import Profile, Subscriber
from digest.store import Store, StoredProfile


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What syncing the subscribers folder did."""

    folder: Path
    changes: dict[str, str]  # name -> added | updated | resubscribed
    removed: list[str]
    errors: list[ProfileError]
    held: list[Subscriber] = field(default_factory=list)  # unsubscribed by reader or operator: their file stays


def subscribe(store: Store, path: Path, *, at: datetime) -> tuple[Profile, str]:
    """Check a profile file and store it; returns the profile and added/updated/unchanged/resubscribed.

    A name that another existing file owns is refused: the next sync would put that file's version back.
    """
    profile, text = profiles.load(path)
    existing = store.subscriber(profile.name)
    if existing is not None and (owner := owned_elsewhere(existing.source, path)):
        raise ProfileError(taken_line(path, profile.name, owner))
    outcome = store.save_subscriber(
        profile.name, text=text, profile_hash=profiles.fingerprint(text), source=str(path), at=at, resubscribe=True
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

    sources = store.sources()
    loaded = [
        (profile, text)
        for profile, text in profiles.load_many(profiles.profile_files(folder), on_error=bad)
        if _unowned(profile, sources.get(profile.name), on_error=bad)
    ]
    present = {p.name for p, _ in loaded}
    outcomes = store.save_subscribers(
        [StoredProfile(p.name, text, profiles.fingerprint(text), p.source) for p, text in loaded], at=at
    )
    named = [(p.name, outcome) for (p, _), outcome in zip(loaded, outcomes, strict=True)]
    changes = {name: outcome for name, outcome in named if outcome not in ("unchanged", "held")}
    held = [found for name, outcome in named if outcome == "held" and (found := store.subscriber(name))]
    # A broken file still holds its subscriber: they stay subscribed on their last good version.
    present |= {s.name for s in store.subscribers() if s.source in failed}
    removed = store.unsubscribe_missing(folder=str(folder), present=present, at=at)
    return SyncReport(folder, changes, removed, errors, held)


def owned_elsewhere(source: str | None, path: Path) -> str | None:
    """The file a stored name came from, when that file still exists and is not ``path``."""
    if source is None or not Path(source).is_file():
        return None
    return None if Path(source).resolve() == path.resolve() else source


def taken_line(path: Path, name: str, owner: str) -> str:
    return (
        f"{path}: name '{name}' belongs to {owner}; give this profile another name "
        f'(name = "…" or rename the file), or edit {owner} instead'
    )


def _unowned(profile: Profile, source: str | None, *, on_error: Callable[[Path, ProfileError], None]) -> bool:
    """Whether a folder file may hold its name: no other existing file owns it."""
    if profile.source is None or source is None or source == profile.source:
        return True
    path = Path(profile.source)
    if (owner := owned_elsewhere(source, path)) is None:
        return True
    on_error(path, ProfileError(taken_line(path, profile.name, owner)))
    return False


def stored_profile(subscriber: Subscriber) -> Profile:
    """The Profile of a stored subscriber (its text was checked when it was stored)."""
    return profiles.parse(subscriber.text, source=subscriber.source or subscriber.name, default_name=subscriber.name)


def set_state(
    store: Store, name: str, status: str, *, at: datetime, until: date | None = None, by: str = "operator"
) -> None:
    """Unsubscribe, pause (optionally until a day) or resume a subscriber; unknown names are usage errors.

    Resuming also undoes an unsubscribe (the one way back besides ``digest subscribe``).
    """
    find_subscriber(store, name, unsubscribed=status == "active")
    store.set_status(name, status, at=at, until=until, by=by)


def find_subscriber(store: Store, name: str, *, unsubscribed: bool = False) -> Subscriber:
    """The stored subscriber ``name`` (an unsubscribed one only with ``unsubscribed``), or a usage error."""
    subscriber = store.subscriber(name)
    if subscriber is None or (subscriber.status == "unsubscribed" and not unsubscribed):
        raise UsageError(f"no subscriber named {name!r}; 'digest subscribers' lists them")
    return subscriber


def held_line(subscriber: Subscriber) -> str:
    """What a sync says of a subscriber whose profile file is there but who unsubscribed."""
    who = {"reader": "by the reader", "operator": "by the operator"}.get(subscriber.unsubscribed_by or "", "")
    when = f" on {subscriber.unsubscribed_at:%Y-%m-%d}" if subscriber.unsubscribed_at else ""
    return f'{subscriber.name} stays unsubscribed ({who}{when}); "digest resume {subscriber.name}" to undo'


def vote(store: Store, name: str, papers: list[str], direction: int, *, at: datetime) -> int:
    """Record (or with 0, clear) the subscriber's vote on each paper; how many changed."""
    find_subscriber(store, name, unsubscribed=True)
    return sum(store.vote(name, paper, direction, edition=None, at=at) for paper in papers)


def is_active(subscriber: Subscriber, *, today: date) -> bool:
    """Active, or paused until a day that has passed."""
    if subscriber.status == "active":
        return True
    return subscriber.status == "paused" and subscriber.paused_until is not None and subscriber.paused_until < today
