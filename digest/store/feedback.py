"""Feedback: each reader's "more / less like this" per paper (the last vote wins)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digest.models import Vote
from digest.store.db import Part, Row


class Feedback(Part):
    """Queries on the feedback table."""

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

    def forget(self, *, before: datetime, dry_run: bool = False) -> int:
        """Forget the votes cast before ``before`` (they no longer count). How many."""
        stamp = (before.isoformat(timespec="seconds"),)
        with self._transaction() as conn:
            if dry_run:
                return int(conn.execute("SELECT count(*) FROM feedback WHERE at < ?", stamp).fetchone()[0])
            return int(conn.execute("DELETE FROM feedback WHERE at < ?", stamp).rowcount)

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


def _vote(row: Row) -> Vote:
    return Vote(
        subscriber=row["subscriber"],
        paper=row["paper"],
        vote=row["vote"],
        edition=row["edition"],
        at=datetime.fromisoformat(row["at"]),
        title=row["title"],
    )
