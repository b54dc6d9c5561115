"""Sign-ups from the web page: each waits for its mail, then for the reader's confirmation."""

from __future__ import annotations

from datetime import datetime, timedelta

from digest.store.db import Part, Row


class Signups(Part):
    """Queries on the signups table."""

    def add(
        self,
        signup_id: str,
        *,
        email: str,
        profile: str,
        at: datetime,
        subscriber: str | None = None,
        purpose: str = "signup",
    ) -> None:
        """A sign-up waiting for its mail: a confirmation link, or (``subscriber``: the address is theirs
        already) that subscriber's preferences link. ``purpose = "resume"``: a subscriber whose address
        bounced asks for a link, mailed to that address, that starts their email again."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO signups (id, email, profile, created_at, subscriber, purpose) VALUES (?, ?, ?, ?, ?, ?)",
                (signup_id, email, profile, at.isoformat(timespec="seconds"), subscriber, purpose),
            )

    def to_mail(self, *, since: datetime) -> list[tuple[str, str, str | None, str]]:
        """The (id, email, known subscriber, purpose) of requests made after ``since`` whose mail has not gone out."""
        rows = self._conn.execute(
            "SELECT id, email, subscriber, purpose FROM signups WHERE mailed_at IS NULL AND confirmed_at IS NULL"
            " AND created_at > ? ORDER BY created_at",
            (since.isoformat(timespec="seconds"),),
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def mailed(self, signup_id: str, *, at: datetime) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE signups SET mailed_at = ? WHERE id = ?", (at.isoformat(timespec="seconds"), signup_id))

    def purge(self, *, before: datetime, confirmed_before: datetime | None = None, dry_run: bool = False) -> int:
        """Forget the sign-ups never confirmed and made before ``before``, and (with ``confirmed_before``) the
        confirmed ones made before that, whose reader is a subscriber now; how many (``dry_run``: would)."""
        confirmed = confirmed_before.isoformat(timespec="seconds") if confirmed_before else ""  # "": none is older
        stamps = (before.isoformat(timespec="seconds"), confirmed)
        which = " FROM signups WHERE created_at < CASE WHEN confirmed_at IS NULL THEN ? ELSE ? END"
        with self._transaction() as conn:
            if dry_run:
                return int(conn.execute("SELECT count(*)" + which, stamps).fetchone()[0])
            return conn.execute("DELETE" + which, stamps).rowcount

    def get(self, signup_id: str, *, now: datetime, valid: timedelta) -> tuple[str, str] | None:
        """A pending sign-up's (email, profile text), if it exists, is unconfirmed and is younger than ``valid``."""
        row = self._pending(signup_id, "purpose = 'signup' AND subscriber IS NULL", now=now, valid=valid)
        return (row["email"], row["profile"]) if row is not None else None

    def resume_request(self, request_id: str, *, now: datetime, valid: timedelta) -> tuple[str, str] | None:
        """A pending request to mail a suspended address again: (email, subscriber), if it is younger than ``valid``."""
        row = self._pending(request_id, "purpose = 'resume' AND subscriber IS NOT NULL", now=now, valid=valid)
        return (row["email"], row["subscriber"]) if row is not None else None

    def _pending(self, request_id: str, which: str, *, now: datetime, valid: timedelta) -> Row | None:
        """The unconfirmed request ``request_id`` that matches ``which`` (a fixed condition) and is younger
        than ``valid``."""
        row: Row | None = self._conn.execute(
            "SELECT * FROM signups WHERE id = ? AND confirmed_at IS NULL AND " + which,  # noqa: S608 - fixed strings
            (request_id,),
        ).fetchone()
        if row is None or now - datetime.fromisoformat(row["created_at"]) > valid:
            return None
        return row

    def resume_pending(self, subscriber: str, *, since: datetime) -> bool:
        """Whether this subscriber asked for a resume link after ``since`` (one a day is enough)."""
        row = self._conn.execute(
            "SELECT 1 FROM signups WHERE subscriber = ? AND purpose = 'resume' AND confirmed_at IS NULL"
            " AND created_at > ? LIMIT 1",
            (subscriber, since.isoformat(timespec="seconds")),
        ).fetchone()
        return row is not None

    def confirm(self, signup_id: str, *, at: datetime) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE signups SET confirmed_at = ? WHERE id = ?", (at.isoformat(timespec="seconds"), signup_id)
            )
