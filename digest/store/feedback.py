"""Feedback: each reader's "more / less like this" per paper (the last vote wins), and pending sign-ups."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from digest.models import Vote
from digest.store.db import Database


class Feedback(Database):
    """Queries on the feedback and signups tables."""

    def vote(self, name: str, paper: str, vote: int, *, edition: str | None, at: datetime) -> bool:
        """Record a vote (+1, -1) or clear it (0); True when that changed anything."""
        stamp = at.isoformat(timespec="seconds")
        with self._transaction() as conn:
            alias = conn.execute("SELECT paper FROM paper_aliases WHERE alias = ?", (paper,)).fetchone()
            paper = alias[0] if alias else paper  # a link sent before the paper got its arXiv id
            if vote == 0:
                return (
                    conn.execute("DELETE FROM feedback WHERE subscriber = ? AND paper = ?", (name, paper)).rowcount > 0
                )
            changed = conn.execute(
                "INSERT INTO feedback (subscriber, paper, vote, edition, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (subscriber, paper) DO UPDATE SET vote = excluded.vote, edition = excluded.edition,"
                " at = excluded.at WHERE feedback.vote != excluded.vote",
                (name, paper, vote, edition, stamp),
            ).rowcount
        return changed > 0

    def votes(self, name: str) -> list[Vote]:
        """A subscriber's votes, newest first, with the paper's title where the archive has it."""
        rows = self._conn.execute(
            "SELECT f.*, p.title FROM feedback f LEFT JOIN papers p ON p.id = f.paper"
            " WHERE f.subscriber = ? ORDER BY f.at DESC, f.paper",
            (name,),
        )
        return [_vote(row) for row in rows]

    def votes_of(self, names: Sequence[str]) -> dict[str, list[tuple[str, int, datetime]]]:
        """The (paper, vote, when) of each of these subscribers, for ranking."""
        found: dict[str, list[tuple[str, int, datetime]]] = {}
        query = "SELECT subscriber, paper, vote, at FROM feedback WHERE subscriber IN ({marks}) ORDER BY subscriber, at"
        for name, paper, vote, at in self._rows_in(query, names):
            found.setdefault(name, []).append((paper, vote, datetime.fromisoformat(at)))
        return found

    def add_signup(
        self, signup_id: str, *, email: str, profile: str, at: datetime, subscriber: str | None = None
    ) -> None:
        """A sign-up waiting for its mail: a confirmation link, or (``subscriber``: the address is theirs
        already) that subscriber's preferences link."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO signups (id, email, profile, created_at, subscriber) VALUES (?, ?, ?, ?, ?)",
                (signup_id, email, profile, at.isoformat(timespec="seconds"), subscriber),
            )

    def signups_to_mail(self, *, since: datetime) -> list[tuple[str, str, str | None]]:
        """The (id, email, known subscriber) of sign-ups made after ``since`` whose mail has not gone out."""
        rows = self._conn.execute(
            "SELECT id, email, subscriber FROM signups WHERE mailed_at IS NULL AND confirmed_at IS NULL"
            " AND created_at > ? ORDER BY created_at",
            (since.isoformat(timespec="seconds"),),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def signup_mailed(self, signup_id: str, *, at: datetime) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE signups SET mailed_at = ? WHERE id = ?", (at.isoformat(timespec="seconds"), signup_id))

    def purge_signups(self, *, before: datetime) -> int:
        """Forget the sign-ups never confirmed and made before ``before``; how many."""
        with self._transaction() as conn:
            return conn.execute(
                "DELETE FROM signups WHERE confirmed_at IS NULL AND created_at < ?",
                (before.isoformat(timespec="seconds"),),
            ).rowcount

    def signup(self, signup_id: str, *, now: datetime, valid: timedelta) -> tuple[str, str] | None:
        """A pending sign-up's (email, profile text), if it exists, is unconfirmed and is younger than ``valid``."""
        row = self._conn.execute(
            "SELECT email, profile, created_at FROM signups WHERE id = ? AND confirmed_at IS NULL"
            " AND subscriber IS NULL",
            (signup_id,),
        ).fetchone()
        if row is None or now - datetime.fromisoformat(row["created_at"]) > valid:
            return None
        return row["email"], row["profile"]

    def confirm_signup(self, signup_id: str, *, at: datetime) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE signups SET confirmed_at = ? WHERE id = ?", (at.isoformat(timespec="seconds"), signup_id)
            )

    def subscriber_with_email(self, email: str) -> str | None:
        """The name of an active or paused subscriber whose profile names this address (as a TOML string)."""
        row = self._conn.execute(
            "SELECT name FROM subscribers WHERE status != 'unsubscribed' AND instr(lower(profile), lower(?)) > 0",
            (f'"{email}"',),
        ).fetchone()
        return str(row[0]) if row else None


def _vote(row: sqlite3.Row) -> Vote:
    return Vote(
        subscriber=row["subscriber"],
        paper=row["paper"],
        vote=row["vote"],
        edition=row["edition"],
        at=datetime.fromisoformat(row["at"]),
        title=row["title"],
    )
