"""Subscribers in: profile files checked and stored, a folder synced, states changed.

A broken profile is reported while its last good version stays in force.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from digest import profiles
from digest.errors import ProfileError, UsageError
from digest.models import Profile, Subscriber
from digest.store import FileStamp, Store, StoredProfile, Subscribers, SyncPlan


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What syncing the subscribers folder did."""

    folder: Path
    changes: dict[str, str]  # name -> added | updated | resubscribed
    removed: list[str]
    errors: list[ProfileError]
    held: list[Subscriber] = field(default_factory=list)  # unsubscribed by reader or operator: their file stays


def subscribe(subscribers: Subscribers, path: Path, *, at: datetime) -> tuple[Profile, str]:
    """Check a profile file and store it; returns the profile and added/updated/unchanged/resubscribed.

    A name that another existing file owns is refused: the next sync would put that file's version back.
    """
    profile, text = profiles.load(path)
    existing = subscribers.get(profile.name)
    if existing is not None and (owner := owned_elsewhere(existing.source, path)):
        raise ProfileError(taken_line(path, profile.name, owner))
    outcome = subscribers.save(
        profile.name, text=text, profile_hash=profiles.fingerprint(text), source=str(path), at=at, resubscribe=True
    )
    return profile, outcome


def sync_subscribers(subscribers: Subscribers, folder: Path, *, at: datetime) -> SyncReport:
    """Bring the database in line with a folder of profiles.

    New and changed files are stored, files that went away unsubscribe, and a
    broken file is reported while its last good version stays in force. Only
    files whose size or mtime changed since the last sync are read, and only
    those whose text's hash changed are parsed (see ``_unchanged``). What it
    finds is written in one transaction (``Subscribers.sync``).
    """
    if not folder.is_dir():
        return SyncReport(folder, {}, [], [])
    checked = time.time_ns()
    scanned = profiles.scan(folder)
    listing = _listing(scanned)
    last = subscribers.folder_listing(str(folder))
    if last is not None and last[0] == listing and _settled(max((m for _, _, m in scanned), default=0), last[1]):
        return SyncReport(
            folder, {}, [], [], subscribers.note_held(str(folder))
        )  # not a file added, removed or touched
    errors: list[ProfileError] = []
    failed: set[str] = set()

    def bad(path: Path, error: ProfileError) -> None:
        failed.add(str(path))
        errors.append(error)

    plan, loaded = _plan(subscribers, folder, scanned, checked, on_error=bad)
    synced = subscribers.sync(replace(plan, failed=failed, listing=None if errors else listing), at=at)
    named = zip((p.name for p in loaded), synced.outcomes, strict=True)
    changes = {name: outcome for name, outcome in named if outcome not in ("unchanged", "held")}
    return SyncReport(folder, changes, synced.removed, errors, synced.held)


def _plan(
    subscribers: Subscribers,
    folder: Path,
    scanned: list[tuple[str, int, int]],
    checked: int,
    *,
    on_error: Callable[[Path, ProfileError], None],
) -> tuple[SyncPlan, list[Profile]]:
    """What a sync writes: the files read and checked now, their stamps, and who is still there."""
    entries = profiles.paths_of(folder, sorted(scanned))
    stamps = subscribers.file_stamps(str(folder))
    kept = {path: stamps[path] for path, size, mtime in entries if _unchanged(stamps.get(path), size, mtime)}
    texts = {path: text for path, _, _ in entries if path not in kept and (text := _read(path, on_error)) is not None}
    for path, text in texts.items():  # read again but the same text (touched): no need to parse it
        stamp = stamps.get(path)
        if stamp is not None and stamp.hash == profiles.fingerprint(text):
            kept[path] = stamp
    taken = {stamp.name: path for path, stamp in kept.items()}
    fresh = [Path(path) for path in texts if path not in kept]
    sources = subscribers.sources() if fresh else {}
    read = {Path(path): text for path, text in texts.items()}
    loaded = [
        (profile, text)
        for profile, text in profiles.load_many(fresh, on_error=on_error, taken=taken, texts=read)
        if _unowned(profile, sources.get(profile.name), on_error=on_error)
    ]
    owned = {p.source: (p.name, profiles.fingerprint(text)) for p, text in loaded} | {
        path: (stamp.name, stamp.hash) for path, stamp in kept.items()
    }
    plan = SyncPlan(
        folder=str(folder),
        profiles=[StoredProfile(p.name, text, profiles.fingerprint(text), p.source) for p, text in loaded],
        stamps=[
            (path, FileStamp(size, mtime, checked, owned[path][1], owned[path][0]))
            for path, size, mtime in entries
            if path in texts and path in owned
        ],
        forget=sorted(stamps.keys() - owned.keys()),
        present={p.name for p, _ in loaded} | taken.keys(),
        failed=set(),
        listing=None,
        checked_ns=checked,
    )
    return plan, [p for p, _ in loaded]


def _listing(scanned: list[tuple[str, int, int]]) -> str:
    """A hash of a folder's listing: every file's name, size and mtime, in the directory's order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, size, mtime in scanned:
        digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


# A file modified this close to when it was last checked may have changed again within the
# filesystem's mtime granularity: it is read again (as git does with "racily clean" entries).
RACY_NS = 2_000_000_000


def _settled(mtime_ns: int, checked_ns: int) -> bool:
    """Whether a modification time is far enough before a check that the check saw that version."""
    return mtime_ns < checked_ns - RACY_NS


def _unchanged(stamp: FileStamp | None, size: int, mtime_ns: int) -> bool:
    """Whether a file is as last read: same size and mtime, and that mtime well before the check."""
    if stamp is None or (stamp.size, stamp.mtime_ns) != (size, mtime_ns):
        return False
    return _settled(mtime_ns, stamp.checked_ns)


def _read(path: str, on_error: Callable[[Path, ProfileError], None]) -> str | None:
    try:
        return profiles.read(Path(path))
    except ProfileError as e:
        on_error(Path(path), e)
        return None


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
    subscribers: Subscribers, name: str, status: str, *, at: datetime, until: date | None = None, by: str = "operator"
) -> None:
    """Unsubscribe, pause (optionally until a day) or resume a subscriber; unknown names are usage errors.

    Resuming also undoes an unsubscribe (the one way back besides ``digest subscribe``).
    """
    find_subscriber(subscribers, name, unsubscribed=status == "active")
    subscribers.set_status(name, status, at=at, until=until, by=by)


def find_subscriber(subscribers: Subscribers, name: str, *, unsubscribed: bool = False) -> Subscriber:
    """The stored subscriber ``name`` (an unsubscribed one only with ``unsubscribed``), or a usage error."""
    subscriber = subscribers.get(name)
    if subscriber is None or (subscriber.status == "unsubscribed" and not unsubscribed):
        raise UsageError(f"no subscriber named {name!r}; 'digest subscribers' lists them")
    return subscriber


def held_line(subscriber: Subscriber) -> str:
    """What a sync says of a subscriber whose profile file is there but who unsubscribed."""
    who = {"reader": "by the reader", "operator": "by the operator", "complaint": "after a spam complaint"}.get(
        subscriber.unsubscribed_by or "", ""
    )
    when = f" on {subscriber.unsubscribed_at:%Y-%m-%d}" if subscriber.unsubscribed_at else ""
    return f'{subscriber.name} stays unsubscribed ({who}{when}); "digest resume {subscriber.name}" to undo'


def vote(store: Store, name: str, papers: list[str], direction: int, *, at: datetime) -> int:
    """Record (or with 0, clear) the subscriber's vote on each paper; how many changed."""
    find_subscriber(store.subscribers, name, unsubscribed=True)
    return sum(store.feedback.vote(name, paper, direction, edition=None, at=at) for paper in papers)


def is_active(subscriber: Subscriber, *, today: date) -> bool:
    """Active, or paused until a day that has passed."""
    if subscriber.status == "active":
        return True
    return subscriber.status == "paused" and subscriber.paused_until is not None and subscriber.paused_until < today


def asks(subscriber: Subscriber, profile: Profile, *, on: datetime, ask_days: int) -> bool:
    """Whether this edition ends with the daily question: never when ``[rank] ask_days`` is 0; else as the
    profile's ``ask`` says; else within ``ask_days`` of the reader's start (their sign-up, or the first sync)."""
    if ask_days <= 0:
        return False
    if profile.ask is not None:
        return profile.ask
    start = subscriber.joined_at or subscriber.created_at
    return start is not None and on < start + timedelta(days=ask_days)
