"""Bounces and complaints as recorded (never the raw message), and the addresses suspended because of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.store.db import Part

SUSPENDED = "suspended: the address bounced"  # the error of an email delivery a suspension stopped
# A delivery, whose it is and where it went: the start of each lookup that matches a bounce to its delivery.
_WHOSE = "SELECT d.id, g.subscriber, d.target FROM deliveries d JOIN digests g ON g.id = d.digest"


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """One recipient's bounce or complaint, as kept: what was said, and whom and which delivery it was about."""

    at: str
    source: str  # the mailbox, smtp (refused while sending), or a provider's webhook
    kind: str  # hard, soft or complaint
    address: str | None
    subscriber: str | None
    delivery: int | None
    status: str | None
    reason: str
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Suspension:
    address: str
    subscriber: str | None
    since: str
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rates:
    """The last days' email: sent, bounced (distinct deliveries) and complained of."""

    sent: int
    bounced: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


class Bounces(Part):
    """Queries on the bounces and suspensions tables, and the lookups that say whose a bounce is."""

    def record(self, bounce: BounceRecord) -> bool:
        """Keep one bounce; False when it was kept already (the same delivery, address and kind: read twice)."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO bounces (at, source, kind, address, subscriber, delivery, status, reason,"
                " diagnostic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    bounce.at, bounce.source, bounce.kind, _lower(bounce.address), bounce.subscriber,
                    bounce.delivery, bounce.status, bounce.reason, bounce.diagnostic[:500],
                ),
            )  # fmt: skip
        return cursor.rowcount > 0

    def soft_count(self, address: str, *, since: datetime) -> int:
        """Soft bounces of ``address`` since then, one per delivery (a delay notice, then its failure, is one)."""
        row = self._conn.execute(
            "SELECT count(DISTINCT coalesce(CAST(delivery AS TEXT), 'at ' || at)) FROM bounces"
            " WHERE address = ? AND kind = 'soft' AND at >= ?",
            (address.lower(), since.isoformat(timespec="seconds")),
        ).fetchone()
        return int(row[0])

    def suspend(self, address: str, *, subscriber: str | None, kind: str, reason: str, at: datetime) -> bool:
        """Stop email to ``address``: its deliveries not yet on their way are cancelled in the same
        transaction. False when it was suspended already."""
        stamp = at.isoformat(timespec="seconds")
        with self._transaction() as conn:
            added = conn.execute(
                "INSERT INTO suspensions (address, subscriber, since, kind, reason) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (address.lower(), subscriber, stamp, kind, reason),
            ).rowcount
            conn.execute(
                "UPDATE deliveries SET state = 'failed', last_error = ?, next_try = NULL, updated_at = ?"
                " WHERE state IN ('pending', 'retry') AND kind = 'email' AND lower(target) = ?",
                (SUSPENDED, stamp, address.lower()),
            )
        return added > 0

    def lift(self, addresses: Sequence[str]) -> int:
        """End the suspensions of these addresses; how many there were."""
        with self._transaction() as conn:
            return sum(
                conn.execute("DELETE FROM suspensions WHERE address = ?", (a.lower(),)).rowcount for a in addresses
            )

    def suspended(self) -> set[str]:
        """Every suspended address (lower-cased)."""
        return {row[0] for row in self._conn.execute("SELECT address FROM suspensions")}

    def suspensions(self) -> list[Suspension]:
        rows = self._conn.execute("SELECT address, subscriber, since, kind, reason FROM suspensions ORDER BY since")
        return [Suspension(*row) for row in rows]

    def newest(self, *, limit: int | None = None) -> list[BounceRecord]:
        """The bounces and complaints recorded, newest first (at most ``limit``)."""
        rows = self._conn.execute(
            "SELECT at, source, kind, address, subscriber, delivery, status, reason, diagnostic FROM bounces"
            " ORDER BY at DESC, id DESC LIMIT ?",
            (-1 if limit is None else limit,),  # SQLite: a negative LIMIT is none
        )
        return [BounceRecord(*row) for row in rows]

    def rates(self, *, since: datetime) -> Rates:
        """Email sent since then, and how many of those deliveries bounced or were complained of."""
        stamp = since.isoformat(timespec="seconds")
        sent = self._conn.execute(
            "SELECT count(*) FROM deliveries WHERE kind = 'email' AND state = 'sent' AND sent_at >= ?", (stamp,)
        ).fetchone()[0]
        bounced, complaints = self._conn.execute(
            "SELECT count(DISTINCT CASE WHEN kind != 'complaint' THEN coalesce(delivery, -id) END),"
            " count(DISTINCT CASE WHEN kind = 'complaint' THEN coalesce(delivery, -id) END)"
            " FROM bounces WHERE at >= ?",
            (stamp,),
        ).fetchone()
        return Rates(int(sent), int(bounced or 0), int(complaints or 0))

    def delivery_by_message_id(self, message_ids: Sequence[str]) -> tuple[int, str, str | None] | None:
        """(delivery, subscriber, target) of the email delivery that carried one of these Message-IDs."""
        for message_id in message_ids:
            row = self._conn.execute(
                _WHOSE + " WHERE d.message_id = ? AND d.kind IN ('email', 'outbox') ORDER BY d.id DESC LIMIT 1",
                (message_id,),
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1]), row[2]
        return None

    def delivery(self, delivery_id: int) -> tuple[int, str, str | None] | None:
        """(delivery, subscriber, target) of this email delivery, if it is still kept."""
        row = self._conn.execute(_WHOSE + " WHERE d.id = ? AND d.kind = 'email'", (delivery_id,)).fetchone()
        return (int(row[0]), str(row[1]), row[2]) if row is not None else None

    def last_delivery_to(self, address: str) -> tuple[int, str] | None:
        """(delivery, subscriber) of the latest email to this address."""
        row = self._conn.execute(
            "SELECT d.id, g.subscriber FROM deliveries d JOIN digests g ON g.id = d.digest"
            " WHERE d.kind = 'email' AND lower(d.target) = ? ORDER BY d.id DESC LIMIT 1",
            (address.lower(),),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row is not None else None

    def forget(self, *, before: datetime, dry_run: bool = False) -> int:
        """Delete the bounces recorded before then (suspensions stay); how many (``dry_run``: would)."""
        stamp = before.isoformat(timespec="seconds")
        if dry_run:
            return int(self._conn.execute("SELECT count(*) FROM bounces WHERE at < ?", (stamp,)).fetchone()[0])
        with self._transaction() as conn:
            return conn.execute("DELETE FROM bounces WHERE at < ?", (stamp,)).rowcount


def _lower(address: str | None) -> str | None:
    return address.lower() if address else None
