"""The delivery ledger: one row per (digest, channel), pending -> sending -> sent | retry | failed.

A state is recorded only after the action it names: a row is ``sending`` from
before its try until its outcome is committed, so a crash in between is
retried with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from digest.models import Delivery, State
from digest.store.db import Part, Row


@dataclass(frozen=True, slots=True)
class Update:
    """One delivery's new state, for ``update_many``."""

    id: int
    state: str
    attempts: int | None = None
    parts_sent: int | None = None
    next_try: datetime | None = None
    error: str | None = None


_UPDATE = (
    "UPDATE deliveries SET state = ?, updated_at = ?, attempts = coalesce(?, attempts),"
    " parts_sent = coalesce(?, parts_sent), next_try = ?, last_error = ?,"
    " lease_until = CASE WHEN ? = 'sending' THEN lease_until END,"  # an outcome ends the claim
    " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?"
)
_DELIVERY_QUERY = "SELECT x.*, d.subscriber, d.edition FROM deliveries x JOIN digests d ON d.id = x.digest"


class Ledger(Part):
    """Queries on the deliveries table."""

    def due(self, now: datetime, *, names: set[str] | None = None) -> list[Delivery]:
        """Deliveries to try now: pending, left in sending by a crash, or retries whose time has come; none
        that another process holds (``claim``) until its lease runs out."""
        stamp = now.isoformat(timespec="seconds")
        rows = self._conn.execute(
            _DELIVERY_QUERY + " WHERE (x.state IN ('pending', 'sending') OR (x.state = 'retry' AND x.next_try <= ?))"
            " AND (x.lease_until IS NULL OR x.lease_until < ?) ORDER BY x.kind, x.id",
            (stamp, stamp),
        )
        found = [_delivery(row) for row in rows]
        return [d for d in found if names is None or d.subscriber in names]

    def deliveries(self, *, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Delivery]:
        where = f" WHERE x.state IN ({', '.join('?' * len(states))})" if states else ""
        bound = " LIMIT ?" if limit is not None else ""
        rows = self._conn.execute(
            _DELIVERY_QUERY + where + " ORDER BY x.id DESC" + bound, (*(states or ()), *([limit] if bound else []))
        )
        return [_delivery(row) for row in rows]

    def count(self, *, states: tuple[str, ...] | None = None) -> int:
        where = f" WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        query = "SELECT count(*) FROM deliveries" + where  # noqa: S608 - only '?' placeholders are joined in
        return int(self._conn.execute(query, states or ()).fetchone()[0])

    def failed_since(self, since: datetime) -> int:
        """How many deliveries failed for good since then (not counting those an unsubscribe cancelled)."""
        row = self._conn.execute(
            "SELECT count(*) FROM deliveries WHERE state = 'failed' AND updated_at >= ?"
            " AND coalesce(last_error, '') NOT LIKE 'cancelled:%'",
            (since.isoformat(timespec="seconds"),),
        ).fetchone()
        return int(row[0])

    def get(self, delivery_id: int) -> Delivery | None:
        row = self._conn.execute(_DELIVERY_QUERY + " WHERE x.id = ?", (delivery_id,)).fetchone()
        return _delivery(row) if row else None

    def update(
        self,
        delivery_id: int,
        state: str,
        *,
        at: datetime,
        attempts: int | None = None,
        parts_sent: int | None = None,
        next_try: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Record a delivery's new state (committed at once: the ledger is written after each action)."""
        self.update_many([Update(delivery_id, state, attempts, parts_sent, next_try, error)], at=at)

    def update_many(self, updates: Sequence[Update], *, at: datetime) -> None:
        """Record new states for a batch of deliveries, in one transaction (None keeps a count as it is). One
        state is one statement, committed by itself (a round trip, not three, on a database server)."""
        stamp = at.isoformat(timespec="seconds")
        rows = [
            (
                m.state,
                stamp,
                m.attempts,
                m.parts_sent,
                _not_before(m.next_try) if m.next_try else None,
                m.error,
                m.state,
                m.state,
                stamp,
                m.id,
            )
            for m in updates
        ]
        if len(rows) == 1:
            self._conn.execute(_UPDATE, rows[0])
            return
        with self._transaction() as conn:
            conn.executemany(_UPDATE, rows)

    def claim(self, ids: Sequence[int], *, holder: str, now: datetime, until: datetime) -> set[int]:
        """Of these due deliveries, those this process may send: on PostgreSQL, the rows no other process
        holds or is claiming (``FOR UPDATE SKIP LOCKED``), now held by ``holder`` until ``until``; on SQLite
        (one writer) all of them."""
        if self._db.dialect == "sqlite" or not ids:
            return set(ids)
        stamp = now.isoformat(timespec="seconds")
        query = (
            "UPDATE deliveries SET holder = ?, lease_until = ? WHERE id IN (SELECT id FROM deliveries"
            " WHERE id IN ({marks}) AND state IN ('pending', 'sending', 'retry')"
            " AND (lease_until IS NULL OR lease_until < ? OR holder = ?) FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        marks = ", ".join("?" * len(ids))
        with self._transaction() as conn:
            rows = conn.execute(
                query.format(marks=marks), (holder, until.isoformat(timespec="seconds"), *ids, stamp, holder)
            )
            return {int(row[0]) for row in rows}

    def start(self, delivery_id: int, *, attempts: int, holder: str, at: datetime, until: datetime) -> bool:
        """Mark a delivery ``sending`` as its message is handed on, renewing this process's lease; False (and
        nothing changed) when another process took the row over meanwhile (its lease ran out here)."""
        stamp = at.isoformat(timespec="seconds")
        started = self._conn.execute(  # one statement, committed by itself
            "UPDATE deliveries SET state = 'sending', updated_at = ?, attempts = ?, lease_until = CASE"
            " WHEN holder IS NULL THEN NULL ELSE ? END WHERE id = ? AND (holder IS NULL OR holder = ?)",
            (stamp, attempts, until.isoformat(timespec="seconds"), delivery_id, holder),
        )
        return started.rowcount > 0

    def set_payloads(self, payloads: Sequence[tuple[int, str]]) -> None:
        """Keep each delivery's payload (one frozen before payloads were kept, made now)."""
        with self._transaction() as conn:
            conn.executemany("UPDATE deliveries SET payload = ? WHERE id = ?", [(p, i) for i, p in payloads])

    def requeue(self, delivery_id: int | None, *, at: datetime) -> int:
        """Failed (or waiting) deliveries back to pending, with a fresh count of tries; how many."""
        with self._transaction() as conn:
            query = (
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_try = NULL, updated_at = ?"
                " WHERE state IN ('failed', 'retry')"
            )
            if delivery_id is None:
                return conn.execute(query, (at.isoformat(timespec="seconds"),)).rowcount
            return conn.execute(query + " AND id = ?", (at.isoformat(timespec="seconds"), delivery_id)).rowcount


def _delivery(row: Row) -> Delivery:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Delivery(
        id=row["id"],
        digest=row["digest"],
        subscriber=row["subscriber"],
        edition=date.fromisoformat(row["edition"]),
        channel=row["channel"],
        kind=row["kind"],
        target=row["target"],
        message_id=row["message_id"],
        state=State(row["state"]),
        attempts=row["attempts"],
        parts_sent=row["parts_sent"],
        payload=row["payload"],
        next_try=when(row["next_try"]),
        last_error=row["last_error"],
        sent_at=when(row["sent_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _not_before(moment: datetime) -> str:
    """A retry's time in whole seconds, as the ledger keeps times, rounded up: cut down, a backoff under a
    second made the row due again in the same second, so the same run tried it twice."""
    whole = moment.replace(microsecond=0)
    return (whole if whole == moment else whole + timedelta(seconds=1)).isoformat(timespec="seconds")
