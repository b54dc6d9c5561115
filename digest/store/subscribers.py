"""Subscribers: each profile's last good TOML text, its hash, its state, and the key of its signed links.

A subscriber is active, paused (optionally until a day) or unsubscribed. A
stored profile whose hash and source are unchanged is left alone. An
unsubscribe by the reader or the operator sticks: saving the profile again
(a folder sync) leaves them unsubscribed, and says so once; only an explicit
subscribe (``resubscribe=True``) or resume brings them back. One whose file
went away comes back with the file.

``profile_files`` remembers each folder file as last read (size, mtime, when
it was checked, its text's hash and the name it holds), so a sync of 100,000
unchanged files reads none of them; ``profile_folders`` a hash of the whole
listing (names, sizes, mtimes) after a sync without errors, so a sync that
finds the same listing need not look at the files' stamps either.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from digest.models import Status, Subscriber
from digest.store.db import Connection, Part, Row, day, iso

STICKY = ("operator", "reader", "complaint")  # unsubscribes that a folder sync does not undo
CANCELLED = "cancelled: unsubscribed"  # the error of a delivery an unsubscribe stopped


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile as the store keeps it: its name, checked text, that text's hash and its file."""

    name: str
    text: str
    profile_hash: str
    source: str | None


class FileStamp(NamedTuple):
    """A profile file as last read: its size and mtime then, when that was (ns), its text's hash, its name."""

    size: int
    mtime_ns: int
    checked_ns: int
    hash: str
    name: str


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a folder sync found on disk, for ``Subscribers.sync`` to write in one transaction."""

    folder: str
    profiles: Sequence[StoredProfile]  # read and checked now: saved
    stamps: Sequence[tuple[str, FileStamp]]  # files read now that hold a stored profile
    forget: Sequence[str]  # remembered files that went away or failed
    present: set[str]  # names whose file is there
    failed: set[str]  # files that failed: their subscribers stay on their last good version
    listing: str | None  # the folder's listing, remembered only after a sync without errors
    checked_ns: int


class Synced(NamedTuple):
    """What ``Subscribers.sync`` did: an outcome per saved profile, who stays unsubscribed, who went."""

    outcomes: list[str]
    held: list[Subscriber]
    removed: list[str]


class Subscribers(Part):
    """Queries on the subscribers table, and the stamps of the folder's profile files."""

    def sync(self, plan: SyncPlan, *, at: datetime) -> Synced:
        """Write what a folder sync found, all of it or (on any fault) none of it."""
        with self._transaction():
            outcomes = self.save_many(plan.profiles, at=at)
            saved = zip(plan.profiles, outcomes, strict=True)
            held = [found for p, outcome in saved if outcome == "held" and (found := self.get(p.name))]
            held += self.note_held(plan.folder)  # those whose file was not read (a save above notes its own)
            self.stamp_files(plan.folder, plan.stamps)
            self.forget_files(plan.forget)
            kept = {name for name, source in self.sources().items() if source in plan.failed}
            removed = self.unsubscribe_missing(folder=plan.folder, present=plan.present | kept, at=at)
            self.stamp_folder(plan.folder, plan.listing, checked_ns=plan.checked_ns)
        return Synced(outcomes, held, removed)

    def file_stamps(self, folder: str) -> dict[str, FileStamp]:
        """Every remembered file of the folder, by path."""
        rows = self._conn.execute(
            "SELECT path, size, mtime_ns, checked_ns, hash, name FROM profile_files WHERE folder = ?", (folder,)
        )
        return {row[0]: FileStamp(*row[1:]) for row in rows}

    def stamp_files(self, folder: str, stamps: Sequence[tuple[str, FileStamp]]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO profile_files (path, folder, size, mtime_ns, checked_ns, hash, name)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET folder = excluded.folder,"
                " size = excluded.size, mtime_ns = excluded.mtime_ns, checked_ns = excluded.checked_ns,"
                " hash = excluded.hash, name = excluded.name",
                [(path, folder, *stamp) for path, stamp in stamps],
            )

    def folder_listing(self, folder: str) -> tuple[str, int] | None:
        """The hash of the folder's listing at its last clean sync, and when that was (ns)."""
        row = self._conn.execute("SELECT listing, checked_ns FROM profile_folders WHERE folder = ?", (folder,))
        found = row.fetchone()
        return (found[0], found[1]) if found else None

    def stamp_folder(self, folder: str, listing: str | None, *, checked_ns: int) -> None:
        """Remember the listing of a clean sync, or (None) forget it: the next sync looks at every file."""
        with self._transaction() as conn:
            if listing is None:
                conn.execute("DELETE FROM profile_folders WHERE folder = ?", (folder,))
            else:
                conn.execute(
                    "INSERT INTO profile_folders (folder, listing, checked_ns) VALUES (?, ?, ?)"
                    " ON CONFLICT (folder) DO UPDATE SET listing = excluded.listing, checked_ns = excluded.checked_ns",
                    (folder, listing, checked_ns),
                )

    def forget_files(self, paths: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.executemany("DELETE FROM profile_files WHERE path = ?", [(path,) for path in paths])

    def note_held(self, folder: str) -> list[Subscriber]:
        """The folder's subscribers a reader or operator unsubscribed that no sync has said so of yet; now said."""
        rows = self._conn.execute(
            "SELECT name, source FROM subscribers WHERE status = 'unsubscribed' AND held_noted = 0"  # noqa: S608 - '?' only
            f" AND unsubscribed_by IN ({', '.join('?' * len(STICKY))})",
            STICKY,
        )
        held = [name for name, source in rows if source is not None and str(Path(source).parent) == folder]
        with self._transaction() as conn:
            conn.executemany("UPDATE subscribers SET held_noted = 1 WHERE name = ?", [(name,) for name in held])
        return [found for name in held if (found := self.get(name))]

    def save(
        self, name: str, *, text: str, profile_hash: str, source: str | None, at: datetime, resubscribe: bool = False
    ) -> str:
        """Store a profile's text. Returns added, updated, unchanged, resubscribed or held.

        ``held``: unsubscribed by the reader or the operator, so left so (said
        once; after that ``unchanged``) unless ``resubscribe``.
        """
        profile = StoredProfile(name, text, profile_hash, source)
        return self.save_many([profile], at=at, resubscribe=resubscribe)[0]

    def save_many(self, profiles: Sequence[StoredProfile], *, at: datetime, resubscribe: bool = False) -> list[str]:
        """``save_subscriber`` for many profiles in one transaction (a folder sync)."""
        stamp = at.isoformat(timespec="seconds")
        with self._transaction() as conn:
            return [_save_subscriber(conn, profile, stamp, resubscribe=resubscribe) for profile in profiles]

    def by_key(self, key: str) -> Subscriber | None:
        """The subscriber a signed link names (unsubscribed ones too)."""
        row = self._conn.execute("SELECT * FROM subscribers WHERE link_key = ?", (key,)).fetchone()
        return _subscriber(row) if row else None

    def link_keys(self, names: Sequence[str]) -> dict[str, str]:
        """The link key of each of these subscribers."""
        rows = self._rows_in("SELECT name, link_key FROM subscribers WHERE name IN ({marks})", names)
        return {row[0]: row[1] for row in rows}

    def sources(self) -> dict[str, str | None]:
        """Each subscriber's profile file (None when it came from the sign-up page), by name."""
        return dict(self._conn.execute("SELECT name, source FROM subscribers").fetchall())

    def set_joined(self, name: str, at: datetime) -> None:
        """When a reader confirmed their sign-up (``Subscriber.joined_at``)."""
        with self._transaction() as conn:
            conn.execute("UPDATE subscribers SET joined_at = ? WHERE name = ?", (at.isoformat(), name))

    def get(self, name: str) -> Subscriber | None:
        row = self._conn.execute("SELECT * FROM subscribers WHERE name = ?", (name,)).fetchone()
        return _subscriber(row) if row else None

    def all(self, *, include_unsubscribed: bool = False) -> list[Subscriber]:
        where = "" if include_unsubscribed else " WHERE status != 'unsubscribed'"
        query = "SELECT * FROM subscribers" + where  # noqa: S608 - two fixed strings
        return [_subscriber(row) for row in self._conn.execute(query + " ORDER BY name")]

    def set_status(
        self, name: str, status: str, *, at: datetime, until: date | None = None, by: str = "operator"
    ) -> bool:
        """Set a subscriber's state; False when there is no such subscriber.

        An unsubscribe records ``by`` whom (file, operator or reader) and when,
        and takes effect at once: deliveries not yet on their way are cancelled
        (failed, ``CANCELLED``), in the same transaction. Any other state clears
        that record.
        """
        stamp = at.isoformat(timespec="seconds")
        gone = status == "unsubscribed"
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE subscribers SET status = ?, paused_until = ?, updated_at = ?, unsubscribed_by = ?,"
                " unsubscribed_at = ?, held_noted = 0 WHERE name = ?",
                (status, iso(until), stamp, by if gone else None, stamp if gone else None, name),
            ).rowcount
            if gone and changed:
                conn.execute(
                    "UPDATE deliveries SET state = 'failed', last_error = ?, next_try = NULL, updated_at = ?"
                    " WHERE state IN ('pending', 'retry')"
                    " AND digest IN (SELECT id FROM digests WHERE subscriber = ?)",
                    (f"{CANCELLED} by the {by}", stamp, name),
                )
        return changed > 0

    def unsubscribe_missing(self, *, folder: str, present: set[str], at: datetime) -> list[str]:
        """Unsubscribe profiles that came from ``folder`` but whose file is gone; their names."""
        rows = self._conn.execute("SELECT name, source FROM subscribers WHERE status != 'unsubscribed'")
        gone = [
            name
            for name, source in rows
            if source is not None and name not in present and str(Path(source).parent) == folder
        ]
        for name in gone:
            self.set_status(name, "unsubscribed", at=at, by="file")
        return gone

    def with_address(self, email: str) -> list[tuple[str, bool]]:
        """(name, unsubscribed) of the subscribers whose profile names this address (its email, or an email
        channel's), those still subscribed first."""
        rows = self._conn.execute(
            "SELECT name, status = 'unsubscribed' FROM subscribers WHERE instr(lower(profile), lower(?)) > 0"
            " ORDER BY status = 'unsubscribed', name",
            (f'"{email}"',),
        )
        return [(str(row[0]), bool(row[1])) for row in rows]

    def with_email(self, email: str) -> str | None:
        """The name of an active or paused subscriber whose profile names this address (as a TOML string)."""
        row = self._conn.execute(
            "SELECT name FROM subscribers WHERE status != 'unsubscribed' AND instr(lower(profile), lower(?)) > 0",
            (f'"{email}"',),
        ).fetchone()
        return str(row[0]) if row else None


def _save_subscriber(conn: Connection, profile: StoredProfile, stamp: str, *, resubscribe: bool) -> str:
    row = conn.execute(
        "SELECT status, profile_hash, source, unsubscribed_by, held_noted FROM subscribers WHERE name = ?",
        (profile.name,),
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO subscribers (name, source, profile, profile_hash, created_at, updated_at, link_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (profile.name, profile.source, profile.text, profile.profile_hash, stamp, stamp, secrets.token_hex(12)),
        )
        return "added"
    held = row["status"] == "unsubscribed" and row["unsubscribed_by"] in STICKY
    if held and not resubscribe:
        if row["held_noted"]:
            return "unchanged"
        conn.execute("UPDATE subscribers SET held_noted = 1 WHERE name = ?", (profile.name,))
        return "held"
    if row["status"] == "unsubscribed":
        outcome = "resubscribed"
    elif row["profile_hash"] == profile.profile_hash and row["source"] == profile.source:
        return "unchanged"
    else:
        outcome = "updated"
    conn.execute(
        "UPDATE subscribers SET source = ?, profile = ?, profile_hash = ?, updated_at = ?,"
        " unsubscribed_by = NULL, unsubscribed_at = NULL, held_noted = 0,"
        " status = CASE status WHEN 'unsubscribed' THEN 'active' ELSE status END"
        " WHERE name = ?",
        (profile.source, profile.text, profile.profile_hash, stamp, profile.name),
    )
    return outcome


def _subscriber(row: Row) -> Subscriber:
    return Subscriber(
        name=row["name"],
        source=row["source"],
        text=row["profile"],
        profile_hash=row["profile_hash"],
        status=Status(row["status"]),
        paused_until=day(row["paused_until"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        link_key=row["link_key"],
        unsubscribed_by=row["unsubscribed_by"],
        unsubscribed_at=datetime.fromisoformat(row["unsubscribed_at"]) if row["unsubscribed_at"] else None,
        joined_at=datetime.fromisoformat(row["joined_at"]) if row["joined_at"] else None,
        created_at=datetime.fromisoformat(row["created_at"]),
    )
