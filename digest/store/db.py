"""The database: opening it, transactions, migrations, checkpoints, and one line per fault.

``Database`` owns the connection; each group of tables (``papers``,
``subscribers``, ``digests``, ``ledger``, ``feedback``, ``fetches``,
``signups``, ``bounces``) is a ``Part`` over it, and ``digest.store.Store``
holds one of each, over either kind:

* ``SqliteDatabase``: one SQLite file in WAL mode, created ``0600`` (the
  embedded default);
* ``postgres.PostgresDatabase``: a PostgreSQL database named by a
  ``postgresql://`` URL, shared by several processes and hosts.

The parts write one SQL that both accept; the connection (``Connection``)
is a ``sqlite3.Connection`` or ``postgres.Connection``, which adapts the
placeholders.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any, Protocol, Self

from digest.errors import StoreError
from digest.store import copies
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("digest.store")
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def fault(path: Path, error: sqlite3.Error | UnicodeDecodeError) -> StoreError:
    """One line for a database fault: the file, what SQLite said, and what to do about it.

    A ``UnicodeDecodeError`` is text SQLite handed back that is not UTF-8: a
    damaged page (Python decodes it, not SQLite, so it is no ``sqlite3.Error``).
    """
    if isinstance(error, UnicodeDecodeError):
        code, said = sqlite3.SQLITE_CORRUPT, "text in it is not UTF-8"
    else:
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


IN_CHUNK = 500  # values bound in one IN (...) list: statements stay small, far under SQLite's variable limit
Location = Path | str  # a SQLite file, or a postgresql:// URL
Row = Any  # a row by position and by name: sqlite3.Row or postgres.Row


class Cursor(Protocol):
    """What a statement gave, on either database."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The connection the parts speak to: ``sqlite3.Connection`` or ``postgres.Connection``."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...
    @property
    def in_transaction(self) -> bool: ...


class Database(ABC):
    """An open database: its connection, transactions, and what each kind does its own way."""

    dialect = "sqlite"
    conn: Connection
    location: Location

    def rows_in(self, query: str, values: Sequence[object]) -> Iterator[Any]:
        """The rows of ``query`` for ``values``, bound ``IN_CHUNK`` at a time where it says ``{marks}``."""
        for start in range(0, len(values), IN_CHUNK):
            chunk = list(values[start : start + IN_CHUNK])
            yield from self.conn.execute(query.format(marks=", ".join("?" * len(chunk))), chunk)

    @property
    def name(self) -> str:
        """The database as a line may name it (a PostgreSQL URL without its password)."""
        return str(self.location)

    @abstractmethod
    def transaction(self, mode: str = "IMMEDIATE") -> AbstractContextManager[Connection]:
        """One transaction, committed unless its block raises; inside another, part of that one."""

    @abstractmethod
    def version(self) -> int:
        """The schema version the database is at."""

    @abstractmethod
    def defer_foreign_keys(self) -> None:
        """Inside a transaction: foreign keys are checked at its commit, not at each statement."""

    @abstractmethod
    def snapshot(self, path: Path) -> None:
        """Copy the whole database into a new SQLite file at ``path`` (a dry run's scratch copy)."""

    @abstractmethod
    def reclaim(self, *, step: int = 1024) -> int:
        """Give freed space back to the file system; bytes."""

    @abstractmethod
    def defer_checkpoints(self) -> None:
        """Commits stop copying the write-ahead log into the database; call ``checkpoint`` instead."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database, without waiting for other writers."""


class SqliteDatabase(Database):
    """An open SQLite file. Use ``Store.open(path)`` as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = self.sqlite = conn
        self.path = self.location = path

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[Self]:
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
                database = cls._prepare(conn, path)
            except BaseException:
                conn.close()
                raise
        except (sqlite3.Error, UnicodeDecodeError) as e:  # nothing but the database has run yet
            raise fault(path, e) from e
        try:
            yield database
        except sqlite3.Error as e:
            raise fault(path, e) from e
        except UnicodeDecodeError as e:
            if _intact(conn):
                raise  # not the database's: a bug elsewhere, shown as it is
            raise fault(path, e) from e
        finally:
            conn.close()

    @classmethod
    def _prepare(cls, conn: sqlite3.Connection, path: Path) -> Self:
        conn.row_factory = sqlite3.Row
        if not conn.execute("PRAGMA page_count").fetchone()[0]:  # a new file: space is given back as it is freed
            conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        database = cls(conn, path)
        database._migrate()
        return database

    @contextmanager
    def transaction(self, mode: str = "IMMEDIATE") -> Iterator[Connection]:
        """One transaction (``BEGIN IMMEDIATE``, or ``EXCLUSIVE``), committed unless its block raises.

        Inside another transaction it is part of that one: a change that spans
        parts (a folder sync) opens one, and every write within it joins.
        """
        conn = self.sqlite
        if conn.in_transaction:
            yield conn
            return
        conn.execute(f"BEGIN {mode}")
        try:
            yield conn
        except BaseException:
            # After some errors (a full disk, an I/O error) SQLite has rolled back already;
            # a second ROLLBACK would fail and hide the real error behind "no transaction is active".
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def defer_foreign_keys(self) -> None:
        self.sqlite.execute("PRAGMA defer_foreign_keys = ON")

    def _migrate(self) -> None:
        """Bring the schema up to date, under an exclusive lock with the version read inside it.

        Two processes that open an old database at once (the daemon and the web
        side starting together after an upgrade) are safe: the second waits for
        the lock, reads the version the first one left, and has nothing to do.
        An existing database is copied first (``NAME.pre-vN.sqlite3``, checked);
        only the process that then migrates names its copy. One line says what
        happened (the ``digest.store`` logger).
        """
        before = self.version()
        if before == SCHEMA_VERSION:
            return  # the common case: no lock taken
        staged = copies.stage_before_upgrade(self.sqlite, self.path) if before > 0 else None
        try:
            with self.transaction("EXCLUSIVE") as conn:
                found = self.version()
                for number in range(found, SCHEMA_VERSION):
                    for statement in MIGRATIONS[number]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            if isinstance(staged, Path):
                copies.publish(staged, self.path, before)  # the way back from a failed upgrade
            raise
        if found != before or staged is None:  # another process migrated it meanwhile, or it was new
            if isinstance(staged, Path):
                staged.unlink(missing_ok=True)
            return
        kept = f"backup: {copies.publish(staged, self.path, before)}" if isinstance(staged, Path) else staged
        line = f"upgraded {self.path} from schema {before} to {SCHEMA_VERSION} ({kept}; {self._make_incremental()})"
        log.warning(line, extra={"event": "upgraded"})

    def _make_incremental(self) -> str:
        """Once, after an upgrade: ``auto_vacuum = INCREMENTAL`` and the one VACUUM that takes, so that
        retention can give space back in small steps (``reclaim``). What happened, in words."""
        if self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
            return "space is given back as it is freed"
        if short := copies.short_of_room(self.path):
            return f"space is not given back: no room to vacuum ({short[0]} MB free, {short[1]} MB needed)"
        started = time.monotonic()
        try:
            self.conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
            self.conn.execute("VACUUM")
        except sqlite3.OperationalError as e:  # another process is reading: the next upgrade tries again
            return f"space is not given back yet: the vacuum could not run ({e})"
        return f"vacuumed once in {time.monotonic() - started:.1f} s, so space is given back as it is freed"

    def reclaim(self, *, step: int = 1024) -> int:
        """Give freed pages back to the file system, ``step`` pages a transaction (each write short); bytes."""
        page = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
        given = 0
        while free := int(self.conn.execute("PRAGMA freelist_count").fetchone()[0]):
            self.conn.execute(f"PRAGMA incremental_vacuum({step})")
            left = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
            if left >= free:  # not incremental (an old file whose vacuum has not run): nothing to give back
                break
            given += (free - left) * page
        return given

    def version(self) -> int:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema {version} is newer than this paper-digest "
                f"understands ({SCHEMA_VERSION}); upgrade paper-digest"
            )
        return version

    def snapshot(self, path: Path) -> None:
        """SQLite's online backup into ``path``."""
        target = sqlite3.connect(path)
        try:
            self.sqlite.backup(target)
        finally:
            target.close()

    def defer_checkpoints(self) -> None:
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


class Part:
    """One group of tables over the shared ``Database``: its queries, and only those."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn = db.conn

    def _transaction(self, mode: str = "IMMEDIATE") -> AbstractContextManager[Connection]:
        return self._db.transaction(mode)

    def _rows_in(self, query: str, values: Sequence[object]) -> Iterator[Any]:
        return self._db.rows_in(query, values)


def _intact(conn: sqlite3.Connection) -> bool:
    """Whether SQLite finds the file sound (asked only after something went wrong)."""
    try:
        return bool(conn.execute("PRAGMA quick_check").fetchone()[0] == "ok")
    except (sqlite3.Error, UnicodeDecodeError):
        return False


def iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
