"""Fetches: what each day's request to Hugging Face found (outcome, items, ETag, content hash)."""

from __future__ import annotations

from datetime import date, datetime

from digest.models import FetchRecord
from digest.store.db import Part, Row


class Fetches(Part):
    """Queries on the fetches table: one row per list day, the latest fetch of it."""

    def save(self, record: FetchRecord) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO fetches (day, outcome, items, etag, sha256, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (day) DO UPDATE SET outcome = excluded.outcome, items = excluded.items,"
                " etag = excluded.etag, sha256 = excluded.sha256, detail = excluded.detail, at = excluded.at",
                (
                    record.day.isoformat(),
                    record.outcome,
                    record.items,
                    record.etag,
                    record.sha256,
                    record.detail,
                    record.at.isoformat(timespec="seconds"),
                ),
            )

    def forget(self, *, before: date, dry_run: bool = False) -> int:
        """Forget the fetch records of list days before ``before``. How many."""
        with self._transaction() as conn:
            if dry_run:
                return int(
                    conn.execute("SELECT count(*) FROM fetches WHERE day < ?", (before.isoformat(),)).fetchone()[0]
                )
            return int(conn.execute("DELETE FROM fetches WHERE day < ?", (before.isoformat(),)).rowcount)

    def get(self, day: date) -> FetchRecord | None:
        row = self._conn.execute("SELECT * FROM fetches WHERE day = ?", (day.isoformat(),)).fetchone()
        return _record(row) if row else None

    def last(self) -> FetchRecord | None:
        row = self._conn.execute("SELECT * FROM fetches ORDER BY at DESC, day DESC LIMIT 1").fetchone()
        return _record(row) if row else None


def _record(row: Row) -> FetchRecord:
    return FetchRecord(
        day=date.fromisoformat(row["day"]),
        outcome=row["outcome"],
        items=row["items"],
        etag=row["etag"],
        sha256=row["sha256"],
        detail=row["detail"],
        at=datetime.fromisoformat(row["at"]),
    )
