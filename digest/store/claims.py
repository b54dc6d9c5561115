"""Claims on editions: which process is making whose digest, when several share a PostgreSQL database.

A row of ``claims`` holds a subscriber's edition for one process until its
lease runs out; ``Digests.save`` lets it go with the digest. On SQLite (one
writer) every claim is granted and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digest.store.db import Part


class Claims(Part):
    """Queries on the claims table."""

    def editions(self, editions: Sequence[tuple[str, str]], *, holder: str, now: datetime, until: datetime) -> set[str]:
        """Of these (subscriber, edition) pairs, the subscribers whose edition this process is to make: on
        PostgreSQL those no other process holds (a live row in ``claims``) or is claiming (their subscriber
        rows locked: ``FOR UPDATE SKIP LOCKED``) or made already, now held by ``holder`` until ``until``
        (``save`` lets them go); on SQLite (one writer) all of them."""
        names = [name for name, _ in editions]
        if self._db.dialect == "sqlite" or not editions:
            return set(names)
        stamp, end = now.isoformat(timespec="seconds"), until.isoformat(timespec="seconds")
        free: set[str] = set()
        with self._transaction() as conn:
            for edition in sorted({edition for _, edition in editions}):
                named = [name for name, wanted in editions if wanted == edition]
                marks = ", ".join("?" * len(named))
                found = conn.execute(_FREE.format(marks=marks), (*named, stamp, holder, edition))
                free |= {row[0] for row in found}
            conn.executemany(
                "INSERT INTO claims (subscriber, edition, holder, lease_until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (subscriber) DO UPDATE SET edition = excluded.edition, holder = excluded.holder,"
                " lease_until = excluded.lease_until",
                [(name, edition, holder, end) for name, edition in editions if name in free],
            )
        return free


# Subscribers whose edition is free to make: not held by another process's live claim, not being claimed
# right now (their rows locked), and not made already (by a process that planned before this one).
_FREE = (
    "SELECT s.name FROM subscribers s WHERE s.name IN ({marks}) AND NOT EXISTS (SELECT 1 FROM claims c"
    " WHERE c.subscriber = s.name AND c.lease_until >= ? AND c.holder != ?) AND NOT EXISTS (SELECT 1 FROM"
    " digests d WHERE d.subscriber = s.name AND d.edition = ?) FOR UPDATE OF s SKIP LOCKED"
)
