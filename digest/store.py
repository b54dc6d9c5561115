"""All SQL: the schema and its migrations, the dumps, the seen-set and sightings.

One SQLite file in WAL mode, created ``0600``. The schema version lives in
``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a database from version ``i``
to ``i + 1`` inside one transaction, so a failed upgrade changes nothing.

Tables:

* ``dumps``: one row per distinct file content (keyed by the sha256 of its
  bytes), so ingesting the same bytes twice is a no-op;
* ``papers``: the seen-set, one row per paper id, with its normalised title so
  one paper seen in two sources is one paper;
* ``sightings``: (dump, paper, position, upvotes): every appearance of a
  paper, new or not; the trending signal;
* ``subscribers``: each profile's last good TOML text, its hash, and its state
  (active, paused until a day, unsubscribed);
* ``digests`` and ``digest_items``: one digest per (subscriber, edition), frozen
  with its papers, ranks, scores, reasons and rendered content before anything
  is sent; a paper goes into a subscriber's digests once, ever. The content
  (text, HTML, Markdown and, for email, the MIME body) is one zstd frame in
  ``body`` (``_pack``), about a ninth of the bytes; digests made before schema 4
  keep it in ``body_text``, ``body_html`` and ``body_markdown``;
* ``deliveries``: the ledger, one row per (digest, channel), moving pending ->
  sending -> sent | retry | failed; a state is recorded only after the action.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import InitVar, dataclass, field, replace
from datetime import date, datetime
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

import zstandard

from digest.errors import StoreError
from digest.models import (
    Delivery,
    Dump,
    DumpRecord,
    Ingested,
    Message,
    NewDelivery,
    Paper,
    Ranked,
    Reason,
    SeenPaper,
    StoredDigest,
    StoreStatus,
    Subscriber,
)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE dumps (
        id            INTEGER PRIMARY KEY,
        sha256        TEXT NOT NULL UNIQUE,
        source        TEXT NOT NULL,
        layout        TEXT NOT NULL,
        page_date     TEXT,
        paper_count   INTEGER NOT NULL DEFAULT 0,
        new_count     INTEGER NOT NULL DEFAULT 0,
        warning_count INTEGER NOT NULL DEFAULT 0,
        ingested_at   TEXT NOT NULL
    );
    CREATE TABLE papers (
        id            TEXT PRIMARY KEY,
        norm_title    TEXT NOT NULL,
        title         TEXT NOT NULL,
        abstract      TEXT,
        authors_count INTEGER,
        organization  TEXT,
        published     TEXT,
        first_dump    INTEGER NOT NULL REFERENCES dumps (id),
        first_seen    TEXT NOT NULL
    );
    CREATE UNIQUE INDEX papers_norm_title ON papers (norm_title);
    CREATE INDEX papers_first_dump ON papers (first_dump);
    CREATE TABLE sightings (
        dump     INTEGER NOT NULL REFERENCES dumps (id),
        paper    TEXT NOT NULL REFERENCES papers (id),
        position INTEGER NOT NULL,
        upvotes  INTEGER,
        PRIMARY KEY (dump, paper)
    ) WITHOUT ROWID;
    CREATE INDEX sightings_paper ON sightings (paper);
    """,
    """
    CREATE TABLE subscribers (
        name          TEXT PRIMARY KEY,
        source        TEXT,
        profile       TEXT NOT NULL,
        profile_hash  TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'unsubscribed')),
        paused_until  TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE TABLE digests (
        id          INTEGER PRIMARY KEY,
        subscriber  TEXT NOT NULL REFERENCES subscribers (name),
        edition     TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        UNIQUE (subscriber, edition)
    );
    CREATE TABLE digest_items (
        digest  INTEGER NOT NULL REFERENCES digests (id),
        paper   TEXT NOT NULL REFERENCES papers (id),
        rank    INTEGER NOT NULL,
        score   REAL NOT NULL,
        why     TEXT NOT NULL,
        PRIMARY KEY (digest, paper)
    ) WITHOUT ROWID;
    CREATE INDEX digest_items_paper ON digest_items (paper);
    """,
    """
    ALTER TABLE digests ADD COLUMN subject TEXT NOT NULL DEFAULT '';
    ALTER TABLE digests ADD COLUMN body_text TEXT NOT NULL DEFAULT '';
    ALTER TABLE digests ADD COLUMN body_html TEXT NOT NULL DEFAULT '';
    ALTER TABLE digests ADD COLUMN body_markdown TEXT NOT NULL DEFAULT '';
    ALTER TABLE digests ADD COLUMN new_count INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE deliveries (
        id          INTEGER PRIMARY KEY,
        digest      INTEGER NOT NULL REFERENCES digests (id),
        channel     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        target      TEXT,
        message_id  TEXT NOT NULL,
        payload     TEXT,
        state       TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'retry', 'failed')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        parts_sent  INTEGER NOT NULL DEFAULT 0,
        next_try    TEXT,
        last_error  TEXT,
        sent_at     TEXT,
        updated_at  TEXT NOT NULL,
        UNIQUE (digest, channel)
    );
    CREATE INDEX deliveries_due ON deliveries (state, next_try);
    """,
    """
    ALTER TABLE digests ADD COLUMN body BLOB;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def fault(path: Path, error: sqlite3.Error) -> StoreError:
    """One line for a database fault: the file, what SQLite said, and what to do about it."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary result code
    said = str(error)
    folder = path.parent
    if code == sqlite3.SQLITE_NOTADB:
        fix = "point database.path at a paper-digest database, or restore it from your backup"
        return StoreError(f"{path}: not a SQLite database ({said}); {fix}")
    if code == sqlite3.SQLITE_CORRUPT:
        fix = (
            f"stop paper-digest and restore your backup, or salvage what is left with: "
            f"sqlite3 {path} .recover | sqlite3 {path}.recovered, then point database.path at that"
        )
        return StoreError(f"{path}: the database is damaged ({said}); {fix}")
    if code == sqlite3.SQLITE_FULL:
        return StoreError(
            f"{path}: the disk is full ({said}); nothing of this change was written. "
            f"Free space where {folder} is (df -h {folder}), then run again"
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return StoreError(
            f"{path}: cannot write the database ({said}); make the file and its folder {folder} writable "
            "by this user (SQLite keeps -wal and -shm files beside it), or point database.path elsewhere"
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(f"{path}: the database stayed locked by another process ({said}); try again")
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"{path}: the disk failed to read or write ({said}); check the disk and its free space")
    return StoreError(f"{path}: database error ({said})")


class Store:
    """An open database. Use ``Store.open(path)`` as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[Store]:
        """Open (creating ``0600`` if new) and migrate the database at ``path``.

        Any SQLite fault while it is open (a damaged file, a full disk, a
        read-only folder) leaves the ``with`` block as one ``StoreError`` that
        names the file, what happened and the fix. Every write is a
        transaction, so nothing half-written stays behind.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as e:
            raise StoreError(
                f"{path}: cannot create the database ({e.strerror}); "
                f"make {path.parent} writable by this user, or point database.path elsewhere"
            ) from e
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            try:
                store = cls._prepare(conn, path)
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as e:
            raise fault(path, e) from e
        try:
            yield store
        except sqlite3.Error as e:
            raise fault(path, e) from e
        finally:
            conn.close()

    @classmethod
    def _prepare(cls, conn: sqlite3.Connection, path: Path) -> Store:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        store = cls(conn, path)
        store._migrate()
        return store

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            # After some errors (a full disk, an I/O error) SQLite has rolled back already;
            # a second ROLLBACK would fail and hide the real error behind "no transaction is active".
            if self._conn.in_transaction:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema {version} is newer than this paper-digest "
                f"understands ({SCHEMA_VERSION}); upgrade paper-digest"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._transaction() as conn:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")

    # --- dumps and the seen-set ---------------------------------------------

    def ingest(self, dump: Dump, *, sha256: str, at: datetime) -> Ingested:
        """Store a dump, its papers and their sightings, in one transaction.

        A dump whose bytes were stored before changes nothing and comes back with
        ``repeat=True``. A paper is new when no earlier dump had its id or its
        normalised title; a known paper only gains fields it lacked.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM dumps WHERE sha256 = ?", (sha256,)).fetchone()
            if row is not None:
                return Ingested(record=_dump_record(row), repeat=True)
            stamp = at.isoformat(timespec="seconds")
            dump_id = conn.execute(
                "INSERT INTO dumps (sha256, source, layout, page_date, paper_count, warning_count, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sha256,
                    dump.source,
                    dump.layout,
                    _iso(dump.page_date),
                    len(dump.papers),
                    len(dump.warnings),
                    stamp,
                ),
            ).lastrowid
            new = 0
            for paper in dump.papers:
                known = conn.execute(
                    "SELECT id FROM papers WHERE id = ? UNION ALL SELECT id FROM papers WHERE norm_title = ? LIMIT 1",
                    (paper.id, paper.norm_title),
                ).fetchone()
                if known is None:
                    new += 1
                    paper_id = paper.id
                    conn.execute(
                        "INSERT INTO papers (id, norm_title, title, abstract, authors_count, organization,"
                        " published, first_dump, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            paper.id,
                            paper.norm_title,
                            paper.title,
                            paper.abstract,
                            paper.authors_count,
                            paper.organization,
                            _iso(paper.published),
                            dump_id,
                            stamp,
                        ),
                    )
                else:
                    paper_id = known["id"]
                    conn.execute(
                        "UPDATE papers SET abstract = coalesce(abstract, ?),"
                        " authors_count = coalesce(authors_count, ?), organization = coalesce(organization, ?),"
                        " published = coalesce(published, ?) WHERE id = ?",
                        (paper.abstract, paper.authors_count, paper.organization, _iso(paper.published), paper_id),
                    )
                conn.execute(
                    "INSERT OR IGNORE INTO sightings (dump, paper, position, upvotes) VALUES (?, ?, ?, ?)",
                    (dump_id, paper_id, paper.position or 0, paper.upvotes),
                )
            conn.execute("UPDATE dumps SET new_count = ? WHERE id = ?", (new, dump_id))
            row = conn.execute("SELECT * FROM dumps WHERE id = ?", (dump_id,)).fetchone()
        return Ingested(record=_dump_record(row), repeat=False)

    def find_dump(self, ref: str) -> DumpRecord | None:
        """A dump by id, source path, file name or a sha256 prefix (newest first)."""
        query = (
            "SELECT * FROM dumps WHERE CAST(id AS TEXT) = :ref OR source = :ref"
            " OR source LIKE '%/' || :ref OR (length(:ref) >= 6 AND sha256 LIKE :ref || '%')"
            " ORDER BY id DESC LIMIT 1"
        )
        row = self._conn.execute(query, {"ref": ref}).fetchone()
        return _dump_record(row) if row else None

    def dumps(self) -> list[DumpRecord]:
        """Every stored dump, oldest first."""
        return [_dump_record(row) for row in self._conn.execute("SELECT * FROM dumps ORDER BY id")]

    def papers(self, *, first_dump: int | None = None, limit: int | None = None) -> list[SeenPaper]:
        """Papers of the seen-set in the order they were first seen, optionally from one dump."""
        rows = self._conn.execute(
            "SELECT p.*, d.source AS dump_source, s.position, s.upvotes,"
            " (SELECT count(*) FROM sightings WHERE paper = p.id) AS sighting_count"
            " FROM papers p JOIN dumps d ON d.id = p.first_dump"
            " LEFT JOIN sightings s ON s.dump = p.first_dump AND s.paper = p.id"
            " WHERE :dump IS NULL OR p.first_dump = :dump"
            " ORDER BY p.first_dump, s.position LIMIT :limit",
            {"dump": first_dump, "limit": -1 if limit is None else limit},
        )
        return [
            SeenPaper(
                paper=replace(_paper(row), upvotes=row["upvotes"], position=row["position"]),
                first_dump=row["dump_source"],
                first_seen=datetime.fromisoformat(row["first_seen"]),
                sightings=row["sighting_count"],
            )
            for row in rows
        ]

    def status(self) -> StoreStatus:
        """How much the database holds, and the last dump stored."""
        counts = self._conn.execute(
            "SELECT (SELECT count(*) FROM dumps), (SELECT count(*) FROM papers), (SELECT count(*) FROM sightings)"
        ).fetchone()
        last = self._conn.execute("SELECT * FROM dumps ORDER BY id DESC LIMIT 1").fetchone()
        return StoreStatus(
            path=str(self.path),
            schema_version=int(self._conn.execute("PRAGMA user_version").fetchone()[0]),
            dumps=counts[0],
            papers=counts[1],
            sightings=counts[2],
            last_dump=_dump_record(last) if last else None,
        )

    def snapshot(self, path: Path) -> None:
        """Copy the whole database to ``path`` (SQLite's online backup), e.g. for a dry run."""
        target = sqlite3.connect(path)
        try:
            self._conn.backup(target)
        finally:
            target.close()

    # --- the archive -------------------------------------------------------------

    def archive(self) -> list[Paper]:
        """Every paper ever ingested, in the order first seen (the ranker's corpus)."""
        rows = self._conn.execute("SELECT * FROM papers ORDER BY rowid")
        return [_paper(row) for row in rows]

    def archive_version(self) -> tuple[int, int]:
        """Changes whenever a paper is added: (count, last rowid)."""
        row = self._conn.execute("SELECT count(*), coalesce(max(rowid), 0) FROM papers").fetchone()
        return int(row[0]), int(row[1])

    def latest_dump(self) -> DumpRecord | None:
        row = self._conn.execute("SELECT * FROM dumps ORDER BY id DESC LIMIT 1").fetchone()
        return _dump_record(row) if row else None

    # --- subscribers ---------------------------------------------------------------

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
                (status, _iso(until), at.isoformat(timespec="seconds"), name),
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

    # --- digests ---------------------------------------------------------------------

    def digested(self, name: str) -> set[str]:
        """Ids of every paper in any of the subscriber's digests."""
        rows = self._conn.execute(
            "SELECT i.paper FROM digest_items i JOIN digests d ON d.id = i.digest WHERE d.subscriber = ?", (name,)
        )
        return {row[0] for row in rows}

    def save_digests(self, digests: Sequence[FrozenDigest], *, at: datetime) -> list[int | None]:
        """Freeze digests with their items, rendered content and deliveries, in one transaction.

        Returns each one's id, or None where that (subscriber, edition) existed
        already, in which case nothing of it is written. The rows are prepared
        before the transaction starts, so the database is locked only to write.
        """
        stamp = at.isoformat(timespec="seconds")
        rows = [_digest_rows(d, stamp) for d in digests]
        ids: list[int | None] = []
        with self._transaction() as conn:
            for digest, items, deliveries in rows:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO digests (subscriber, edition, created_at, subject, body, new_count)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    digest,
                )
                if cursor.rowcount == 0:
                    ids.append(None)
                    continue
                digest_id = int(cursor.lastrowid or 0)
                conn.executemany(
                    "INSERT INTO digest_items (digest, paper, rank, score, why) VALUES (?, ?, ?, ?, ?)",
                    [(digest_id, *item) for item in items],
                )
                conn.executemany(
                    "INSERT INTO deliveries (digest, channel, kind, target, message_id, payload, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(digest_id, *delivery) for delivery in deliveries],
                )
                ids.append(digest_id)
        return ids

    def defer_checkpoints(self) -> None:
        """Commits stop copying the write-ahead log into the database; call ``checkpoint`` instead."""
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database, without waiting for other writers."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def digest_marks(self) -> dict[str, tuple[datetime, str]]:
        """Every subscriber's latest digest: (made at, edition), in one query."""
        rows = self._conn.execute("SELECT subscriber, max(created_at), max(edition) FROM digests GROUP BY subscriber")
        return {row[0]: (datetime.fromisoformat(row[1]), row[2]) for row in rows}

    def digested_among(self, paper_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each subscriber, which of these papers their digests already had."""
        found: dict[str, set[str]] = {}
        for start in range(0, len(paper_ids), 500):
            chunk = list(paper_ids[start : start + 500])
            rows = self._conn.execute(
                "SELECT d.subscriber, i.paper FROM digest_items i JOIN digests d ON d.id = i.digest"
                f" WHERE i.paper IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for name, paper in rows:
                found.setdefault(name, set()).add(paper)
        return found

    def last_digest_at(self, name: str) -> datetime | None:
        """When the subscriber's latest digest was made."""
        row = self._conn.execute("SELECT max(created_at) FROM digests WHERE subscriber = ?", (name,)).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def stored_digest(self, digest_id: int) -> StoredDigest:
        return self.stored_digests([digest_id])[digest_id]

    def recent_digests(self, name: str, *, limit: int) -> list[StoredDigest]:
        """The subscriber's latest digests that have papers, newest first (for feeds)."""
        rows = self._conn.execute(
            _DIGEST_QUERY + " WHERE d.subscriber = ? GROUP BY d.id HAVING items > 0 ORDER BY d.edition DESC LIMIT ?",
            (name, limit),
        )
        return [_stored_digest(row) for row in rows]

    def papers_since(self, since: datetime) -> list[Paper]:
        """Papers first seen after ``since``, as on the page that first had them."""
        rows = self._conn.execute(
            "SELECT p.*, s.position, s.upvotes FROM papers p"
            " LEFT JOIN sightings s ON s.dump = p.first_dump AND s.paper = p.id"
            " WHERE p.first_seen > ? ORDER BY p.first_dump, s.position",
            (since.isoformat(timespec="seconds"),),
        )
        return [replace(_paper(row), upvotes=row["upvotes"], position=row["position"]) for row in rows]

    # --- the ledger ------------------------------------------------------------------

    def due(self, now: datetime, *, names: set[str] | None = None) -> list[Delivery]:
        """Deliveries to try now: pending, left in sending by a crash, or retries whose time has come."""
        rows = self._conn.execute(
            _DELIVERY_QUERY + " WHERE x.state IN ('pending', 'sending')"
            " OR (x.state = 'retry' AND x.next_try <= ?) ORDER BY x.kind, x.id",
            (now.isoformat(timespec="seconds"),),
        )
        found = [_delivery(row) for row in rows]
        return [d for d in found if names is None or d.subscriber in names]

    def deliveries(self, *, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Delivery]:
        where = f" WHERE x.state IN ({', '.join('?' * len(states))})" if states else ""
        rows = self._conn.execute(
            _DELIVERY_QUERY + where + " ORDER BY x.id DESC LIMIT ?", (*(states or ()), -1 if limit is None else limit)
        )
        return [_delivery(row) for row in rows]

    def delivery(self, delivery_id: int) -> Delivery | None:
        row = self._conn.execute(_DELIVERY_QUERY + " WHERE x.id = ?", (delivery_id,)).fetchone()
        return _delivery(row) if row else None

    def mark(
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
        self.mark_many([Mark(delivery_id, state, attempts, parts_sent, next_try, error)], at=at)

    def mark_many(self, updates: Sequence[Mark], *, at: datetime) -> None:
        """Record new states for a batch of deliveries, in one transaction (None keeps a count as it is)."""
        stamp = at.isoformat(timespec="seconds")
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE deliveries SET state = ?, updated_at = ?, attempts = coalesce(?, attempts),"
                " parts_sent = coalesce(?, parts_sent), next_try = ?, last_error = ?,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                [
                    (
                        m.state,
                        stamp,
                        m.attempts,
                        m.parts_sent,
                        m.next_try.isoformat(timespec="seconds") if m.next_try else None,
                        m.error,
                        m.state,
                        stamp,
                        m.id,
                    )
                    for m in updates
                ],
            )

    def stored_digests(self, ids: Sequence[int]) -> dict[int, StoredDigest]:
        """Several frozen digests by id, in few queries."""
        found: dict[int, StoredDigest] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self._conn.execute(
                _DIGEST_QUERY + f" WHERE d.id IN ({', '.join('?' * len(chunk))}) GROUP BY d.id", chunk
            )
            found |= {row["id"]: _stored_digest(row) for row in rows}
        return found

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


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile as the store keeps it: its name, checked text, that text's hash and its file."""

    name: str
    text: str
    profile_hash: str
    source: str | None


@dataclass(frozen=True, slots=True)
class Mark:
    """One delivery's new state, for ``mark_many``."""

    id: int
    state: str
    attempts: int | None = None
    parts_sent: int | None = None
    next_try: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FrozenDigest:
    """A digest to store with ``Store.save_digests``: items, rendered content and deliveries.

    The message (and ``email``, its MIME body from ``render.email_body`` when it
    goes out as email) is packed (``_pack``) as the digest is made and only its
    subject kept as text: a batch waiting to be stored holds a ninth of the bytes.
    """

    name: str
    edition: str
    items: list[Ranked]
    message: InitVar[Message | None] = None
    new_count: int = 0
    deliveries: list[NewDelivery] = field(default_factory=list)
    email: InitVar[bytes] = b""
    subject: str = field(init=False, default="")
    body: bytes | None = field(init=False, default=None)

    def __post_init__(self, message: Message | None, email: bytes) -> None:
        if message is not None:
            object.__setattr__(self, "subject", message.subject)
            parts = [message.text.encode(), message.html.encode(), message.markdown.encode(), email]
            object.__setattr__(self, "body", _pack(parts))


_Row = tuple[Any, ...]


def _digest_rows(d: FrozenDigest, stamp: str) -> tuple[_Row, list[_Row], list[_Row]]:
    """A digest's row, its items' and its deliveries' (each without the digest's id, not known yet)."""
    digest = (d.name, d.edition, stamp, d.subject, d.body, d.new_count)
    items = [
        (item.paper.id, item.rank, item.score, json.dumps([_reason_json(r) for r in item.why])) for item in d.items
    ]
    deliveries = [(x.channel, x.kind, x.target, x.message_id, x.payload, stamp) for x in d.deliveries]
    return digest, items, deliveries


_COUNT = struct.Struct(">I")  # a body: how many parts, each part's length, then the parts
_zstd = threading.local()  # a compressor and a decompressor per thread (reused: a new context costs 20 us)


def _pack(parts: list[bytes]) -> bytes:
    """A digest's content as one zstd frame (level 1: an email digest's ~70 KB in ~80 us, to ~8 KB).

    The parts are the UTF-8 text, HTML and Markdown, then the email's MIME body
    (empty when the digest is not emailed). Uncompressed, 100,000 digests were
    3.5 GB written to the write-ahead log and again to the database, without the
    MIME bodies; packed, with them, about 0.8 GB, and so is the file's growth.
    """
    if not hasattr(_zstd, "compressor"):
        _zstd.compressor = zstandard.ZstdCompressor(level=1)
    lengths = struct.pack(f">{len(parts) + 1}I", len(parts), *map(len, parts))
    return bytes(_zstd.compressor.compress(lengths + b"".join(parts)))


def _unpack(body: bytes) -> list[bytes]:
    if not hasattr(_zstd, "decompressor"):
        _zstd.decompressor = zstandard.ZstdDecompressor()
    data = _zstd.decompressor.decompress(body)
    [count] = _COUNT.unpack_from(data)
    lengths = struct.unpack_from(f">{count}I", data, _COUNT.size)
    stops = list(accumulate(lengths, initial=_COUNT.size * (count + 1)))
    return [data[a:b] for a, b in pairwise(stops)]


def _reason_json(reason: Reason) -> dict[str, object]:
    # dataclasses.asdict deep-copies every value; at 100,000 digests a day that was a second per 2,000.
    return {
        "kind": reason.kind,
        "label": reason.label,
        "score": reason.score,
        "where": list(reason.where),
        "detail": reason.detail,
    }


_DIGEST_QUERY = "SELECT d.*, (SELECT count(*) FROM digest_items i WHERE i.digest = d.id) AS items FROM digests d"
_DELIVERY_QUERY = "SELECT x.*, d.subscriber, d.edition FROM deliveries x JOIN digests d ON d.id = x.digest"


def _stored_digest(row: sqlite3.Row) -> StoredDigest:
    if row["body"] is None:  # made before schema 4
        text, html, markdown, email = row["body_text"], row["body_html"], row["body_markdown"], b""
    else:
        content = _unpack(row["body"])
        text, html, markdown = (part.decode() for part in content[:3])
        email = content[3]
    return StoredDigest(
        id=row["id"],
        subscriber=row["subscriber"],
        edition=date.fromisoformat(row["edition"]),
        subject=row["subject"],
        text=text,
        html=html,
        markdown=markdown,
        items=row["items"],
        created_at=datetime.fromisoformat(row["created_at"]),
        email=email,
    )


def _delivery(row: sqlite3.Row) -> Delivery:
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
        state=row["state"],
        attempts=row["attempts"],
        parts_sent=row["parts_sent"],
        payload=row["payload"],
        next_try=when(row["next_try"]),
        last_error=row["last_error"],
        sent_at=when(row["sent_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _paper(row: sqlite3.Row) -> Paper:
    return Paper(
        id=row["id"],
        title=row["title"],
        norm_title=row["norm_title"],
        abstract=row["abstract"],
        authors_count=row["authors_count"],
        organization=row["organization"],
        published=_date(row["published"]),
    )


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
        paused_until=_date(row["paused_until"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _dump_record(row: sqlite3.Row) -> DumpRecord:
    return DumpRecord(
        id=row["id"],
        sha256=row["sha256"],
        source=row["source"],
        layout=row["layout"],
        page_date=_date(row["page_date"]),
        papers=row["paper_count"],
        new=row["new_count"],
        warnings=row["warning_count"],
        ingested_at=datetime.fromisoformat(row["ingested_at"]),
    )
