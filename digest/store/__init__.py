"""All SQL, in one part per group of tables; ``Store`` is an open database with one of each.

* ``db``: the file, its connection and transactions, migrations (``schema``,
  the statements as data), checkpoints, and one line for every fault;
* ``papers``: dumps, the seen-set and sightings;
* ``subscribers``: profiles and their state;
* ``digests``: frozen digests, their items and packed content;
* ``ledger``: deliveries, each state recorded after the action;
* ``feedback``: readers' votes on papers;
* ``signups``: sign-ups from the web page, until confirmed;
* ``fetches``: what each day's fetch from Hugging Face found;
* ``bounces``: bounces and complaints as recorded, and the addresses suspended;
* ``claims``: which process is making whose edition, when several share a PostgreSQL database;
* ``copies``: the file copied: a checked backup, a restore, the copy before an upgrade.

Only this package speaks SQL. A room is handed the parts it uses
(``store.ledger``, ``store.digests``…), not the whole ``Store``;
``tests/test_layout.py`` holds which room may use which part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from digest.errors import StoreError
from digest.store import copies
from digest.store.bounces import SUSPENDED, BounceRecord, Bounces, Rates, Suspension
from digest.store.claims import Claims
from digest.store.copies import Copied, Restored, restore
from digest.store.db import Database, Location, SqliteDatabase, fault
from digest.store.digests import Digests, PreparedDigest, prepare
from digest.store.feedback import Feedback
from digest.store.fetches import Fetches
from digest.store.ledger import Ledger, Update
from digest.store.papers import Papers
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION
from digest.store.signups import Signups
from digest.store.subscribers import FileStamp, StoredProfile, Subscribers, Synced, SyncPlan
from digest.store.transfer import TableCopy

CHORES_LOCK = 0x6469_6765_7363  # the advisory lock of ``Store.chores``


class Store:
    """An open database and its parts: ``with Store.open(path) as store: store.papers.since(...)``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.papers = Papers(db)
        self.subscribers = Subscribers(db)
        self.digests = Digests(db)
        self.ledger = Ledger(db)
        self.feedback = Feedback(db)
        self.signups = Signups(db)
        self.fetches = Fetches(db)
        self.bounces = Bounces(db)
        self.claims = Claims(db)

    @classmethod
    @contextmanager
    def open(cls, location: Location) -> Iterator[Store]:
        """Open and migrate the database at ``location``: a SQLite file (created ``0600`` if new; see
        ``SqliteDatabase.open``) or a ``postgresql://`` URL (``postgres.PostgresDatabase``)."""
        if isinstance(location, Path):
            with SqliteDatabase.open(location) as db:
                yield cls(db)
            return
        try:
            from digest.store.postgres import PostgresDatabase  # noqa: PLC0415 - psycopg only where it is used
        except ImportError as e:
            raise StoreError(
                "database.url names PostgreSQL, which needs psycopg: pip install 'daily-papers-digest[postgres]'"
            ) from e
        with PostgresDatabase.open(location) as pg:
            yield cls(pg)

    @contextmanager
    def chores(self) -> Iterator[bool]:
        """Whether this process may do now what one process does at a time (ingest, fetch, the profiles'
        sync, sign-up mail, retention): on SQLite always (one writer holds the file); on PostgreSQL while it
        holds the advisory lock for them, which nothing waits for."""
        if isinstance(self.db, SqliteDatabase):
            yield True
            return
        with Store.server_lock(str(self.db.location), CHORES_LOCK) as taken:
            yield taken

    @staticmethod
    @contextmanager
    def server_lock(url: str, key: int) -> Iterator[bool]:
        """A PostgreSQL advisory lock held for the block (``postgres.advisory_lock``): whether it was taken."""
        from digest.store.postgres import advisory_lock  # noqa: PLC0415 - psycopg only where it is used

        with advisory_lock(url, key) as taken:
            yield taken

    @property
    def location(self) -> Location:
        return self.db.location

    def backup(self, target: Path) -> Copied:
        """A checked online copy of a SQLite database at ``target`` (``copies.backup``)."""
        if not isinstance(self.db, SqliteDatabase):
            raise StoreError(f"{self.db.name}: back PostgreSQL up with pg_dump; digest backup copies SQLite files")
        return copies.backup(self.db.sqlite, target)


def migrate_to_postgres(
    source: Path, url: str, *, progress: Callable[[str, int], None] | None = None
) -> list[TableCopy]:
    """Copy the SQLite database at ``source`` into the empty PostgreSQL database at ``url``, checked
    (``postgres.migrate_into``)."""
    from digest.store.postgres import migrate_into  # noqa: PLC0415 - psycopg only where it is used

    return migrate_into(source, url, progress=progress)


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SUSPENDED",
    "BounceRecord",
    "Bounces",
    "Claims",
    "Copied",
    "Database",
    "Digests",
    "Feedback",
    "Fetches",
    "FileStamp",
    "Ledger",
    "Location",
    "Papers",
    "PreparedDigest",
    "Rates",
    "Restored",
    "Signups",
    "Store",
    "StoredProfile",
    "Subscribers",
    "Suspension",
    "SyncPlan",
    "Synced",
    "TableCopy",
    "Update",
    "fault",
    "migrate_to_postgres",
    "prepare",
    "restore",
]
