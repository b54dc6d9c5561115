"""Subscribers: each profile's last good TOML text, its hash, and its state.

A subscriber is active, paused (optionally until a day) or unsubscribed.
A stored profile whose hash and source are unchanged is left alone; an
unsubscribed one comes back active when its profile is saved again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from digest.models import Subscriber
from digest.store.db import Database, day, iso


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile as the store keeps it: its name, checked text, that text's hash and its file."""

    name: str
    text: str
    profile_hash: str
    source: str | None


class Subscribers(Database):
    """Queries on the subscribers table."""

    def save_subscriber(self, name: str, *, text: str, profile_hash: str, source: str | None, at: datetime) -> str:
        """Store a profile's text. Returns added, updated, unchanged or resubscribed.

        A stored profile whose hash and source are unchanged is left alone; an
        unsubscribed one comes back active.
        """
        return self.save_subscribers([StoredProfile(name, text, profile_hash, source)], at=at)[0]

    def save_subscribers(self, profiles: Sequence[StoredProfile], *, at: datetime) -> list[str]:
        """``save_subscriber`` for many profiles in one transaction (a folder sync)."""
        stamp = at.isoformat(timespec="seconds")
        with self._transaction() as conn:
            return [_save_subscriber(conn, profile, stamp) for profile in profiles]

    def subscriber(self, name: str) -> Subscriber | None:
        row = self._conn.execute("SELECT * FROM subscribers WHERE name = ?", (name,)).fetchone()
        return _subscriber(row) if row else None

    def subscribers(self, *, include_unsubscribed: bool = False) -> list[Subscriber]:
        query = "SELECT * FROM subscribers" + ("" if include_unsubscribed else " WHERE status != 'unsubscribed'")
        return [_subscriber(row) for row in self._conn.execute(query + " ORDER BY name")]

    def set_status(self, name: str, status: str, *, at: datetime, until: date | None = None) -> bool:
        """Set a subscriber's state; False when there is no such subscriber."""
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE subscribers SET status = ?, paused_until = ?, updated_at = ? WHERE name = ?",
                (status, iso(until), at.isoformat(timespec="seconds"), name),
            ).rowcount
        return changed > 0

    def unsubscribe_missing(self, *, folder: str, present: set[str], at: datetime) -> list[str]:
        """Unsubscribe profiles that came from ``folder`` but whose file is gone; their names."""
        gone = [
            s.name
            for s in self.subscribers()
            if s.source is not None and str(Path(s.source).parent) == folder and s.name not in present
        ]
        for name in gone:
            self.set_status(name, "unsubscribed", at=at)
        return gone


def _save_subscriber(conn: sqlite3.Connection, profile: StoredProfile, stamp: str) -> str:
    row = conn.execute(
        "SELECT status, profile_hash, source FROM subscribers WHERE name = ?", (profile.name,)
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO subscribers (name, source, profile, profile_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (profile.name, profile.source, profile.text, profile.profile_hash, stamp, stamp),
        )
        return "added"
    if row["status"] == "unsubscribed":
        outcome = "resubscribed"
    elif row["profile_hash"] == profile.profile_hash and row["source"] == profile.source:
        return "unchanged"
    else:
        outcome = "updated"
    conn.execute(
        "UPDATE subscribers SET source = ?, profile = ?, profile_hash = ?, updated_at = ?,"
        " status = CASE status WHEN 'unsubscribed' THEN 'active' ELSE status END"
        " WHERE name = ?",
        (profile.source, profile.text, profile.profile_hash, stamp, profile.name),
    )
    return outcome


def _subscriber(row: sqlite3.Row) -> Subscriber:
    return Subscriber(
        name=row["name"],
        source=row["source"],
        text=row["profile"],
        profile_hash=row["profile_hash"],
        status=row["status"],
        paused_until=day(row["paused_until"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )
