"""PostgreSQL through psycopg 3: the connection the store's parts speak to, and one line per fault.

The parts write one SQL that SQLite and PostgreSQL both accept, with SQLite's
``?`` and ``:name`` placeholders. ``Connection`` is the one place that adapts
them to psycopg's (``%s``, ``%(name)s``), hands back rows that answer by
position and by name as ``sqlite3.Row`` does, and reads ``numeric`` (what
``sum()`` of integers gives) as an ``int`` or a ``float``, never a
``Decimal``. Transactions are explicit (``BEGIN`` … ``COMMIT``) on an
autocommit connection, as they are on SQLite.

psycopg is an optional extra (``pip install 'daily-papers-digest[postgres]'``):
it is imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

import psycopg
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from digest.config import without_password as shown
from digest.errors import StoreError
from digest.store import transfer
from digest.store.db import Database, SqliteDatabase
from digest.store.schema import SCHEMA_VERSION
from digest.store.schema_postgres import postgres_steps
from digest.text import plural

log = logging.getLogger("digest.store")
MIGRATION_LOCK = 0x6469_6765_7374  # pg_advisory_xact_lock's key while the schema is brought up to date
CONNECT_TIMEOUT = 10  # seconds to reach the server and log in
STATEMENT_TIMEOUT_MS = 600_000  # no statement of ours takes minutes; one that does is stuck behind a lock
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|(?<!:):([A-Za-z_]\w*)|%")


def is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's placeholders as psycopg's: ``?`` → ``%s``, ``:name`` → ``%(name)s``, a literal ``%`` doubled.

    Quoted strings and names are left as they are (a ``?`` in ``'?'`` is text).
    """

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "?":
            return "%s"
        if found == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return found.replace("%", "%%")

    return _TOKEN.sub(one, sql)


class Row(tuple[Any, ...]):
    """A row that answers ``row[0]`` and ``row["name"]``, as ``sqlite3.Row`` does."""

    _index: Mapping[str, int]
    _names: list[str]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    names = [c.name for c in cursor.description or ()]
    index = {name: i for i, name in reversed(list(enumerate(names)))}  # a repeated name: its first column
    kind: type[Row] = type("Row", (Row,), {"_index": index, "_names": names, "__slots__": ()})

    def make(values: Sequence[Any]) -> Row:
        return kind(values)

    return make


class _Numeric(Loader):
    """``numeric`` as an ``int`` when whole, else a ``float`` (what SQLite gives for the same query)."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class Cursor:
    """What a statement gave: its rows (iterated or fetched) and how many rows it changed."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> None:
        return None  # PostgreSQL has none: the parts ask with RETURNING

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class Connection:
    """A psycopg connection as the store's parts use a ``sqlite3.Connection``: ``execute``, ``executemany``,
    ``in_transaction``, ``close``."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        return Cursor(self._conn.execute(translate(sql), params, prepare=False))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]] | Iterator[Sequence[Any]]) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(translate(sql), list(rows))
        return Cursor(cursor)

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self._conn.close()


def connect(url: str, *, application: str = "paper-digest") -> Connection:
    """A connection to ``url`` (its password from the URL as given in the environment, or ``PGPASSWORD``).

    Its session commits without waiting for the server to flush (``synchronous_commit = off``): the
    durability of the SQLite default (WAL, ``synchronous = NORMAL``), where a crash of the server's machine
    may lose the last moment's commits but never leaves a half-written one. The ledger's rows were
    written twice as slowly otherwise. Options in the URL (``?options=-c synchronous_commit=on``) come
    after these, and win.
    """
    try:
        given = conninfo_to_dict(url).get("options") or ""
        ours = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c synchronous_commit=off"
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=application,
            options=f"{ours} {given}".strip(),
        )
    except psycopg.Error as e:
        raise fault(url, e) from e
    conn.row_factory = _row_factory
    conn.adapters.register_loader("numeric", _Numeric)
    return Connection(conn)


# SQLSTATE classes and codes (PostgreSQL's Appendix A) that have a fix of their own.
_LINES = {
    "28P01": "authentication failed; set the password in PGPASSWORD or DIGEST_DATABASE__URL",
    "28000": "the server refused this user; check the user in database.url and the server's pg_hba.conf",
    "3D000": "the database does not exist; create it (createdb) or fix its name in database.url",
    "53100": "the server's disk is full; nothing of this change was written. Free space on the database server",
    "53300": "the server has too many connections; raise max_connections or run fewer digest processes",
    "57P03": "the server is starting up or shutting down; try again in a moment",
    "42501": "this user may not do that; grant it the database (GRANT ALL ON DATABASE … TO …)",
    "55P03": "a row stayed locked by another process; try again",
    "57014": "a statement ran past its deadline (a lock held too long by another process); try again",
    "40P01": "two processes waited on each other; nothing was written, try again",
    "40001": "another process changed the same rows; nothing was written, try again",
}


def fault(url: str, error: BaseException) -> StoreError:
    """One line for a PostgreSQL fault: the database (never its password), what happened and the fix."""
    where = shown(url)
    code = getattr(error, "sqlstate", None) or ""
    said = _first_line(error)
    if code in _LINES:
        return StoreError(f"{where}: {_LINES[code]} ({said})")
    if code.startswith("08") or not code:
        if "password" in said and ("authentication failed" in said or "no password" in said):
            return StoreError(f"{where}: {_LINES['28P01']} ({said})")
        if "does not exist" in said and "database" in said:
            return StoreError(f"{where}: {_LINES['3D000']} ({said})")
        if "too many" in said:
            return StoreError(f"{where}: {_LINES['53300']} ({said})")
        return StoreError(
            f"{where}: cannot reach the database server ({said}); check that PostgreSQL runs there and "
            "that host and port in database.url are right"
        )
    return StoreError(f"{where}: database error {code} ({said})")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    said = text[0] if text else type(error).__name__
    if password := os.environ.get("PGPASSWORD"):
        said = said.replace(password, "***")
    return said.removeprefix("connection failed: ")


class PostgresDatabase(Database):
    """An open PostgreSQL database. Use ``Store.open("postgresql://…")`` as a context manager."""

    dialect = "postgresql"

    def __init__(self, conn: Connection, url: str) -> None:
        self.conn = self.pg = conn
        self.location = self.url = url

    @property
    def name(self) -> str:
        return shown(self.url)

    @classmethod
    @contextmanager
    def open(cls, url: str, *, migrate: bool = True) -> Iterator[Self]:
        """Connect and (unless told not to) migrate; any server fault while it is open leaves as one
        ``StoreError``."""
        conn = connect(url)
        try:
            database = cls(conn, url)
            if migrate:
                database.migrate()
            yield database
        except psycopg.Error as e:
            raise fault(url, e) from e
        finally:
            conn.close()

    @contextmanager
    def transaction(self, mode: str = "IMMEDIATE") -> Iterator[Connection]:
        """One transaction, committed unless its block raises; inside another, part of that one."""
        conn = self.pg
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def defer_foreign_keys(self) -> None:
        self.pg.execute("SET CONSTRAINTS ALL DEFERRED")

    def reclaim(self, *, step: int = 1024) -> int:
        """Nothing: PostgreSQL's autovacuum makes freed space reusable, and the file keeps its size."""
        return 0

    def defer_checkpoints(self) -> None:
        """Nothing: the server checkpoints on its own schedule, whatever the clients write."""

    def checkpoint(self) -> None:
        """Nothing, as for ``defer_checkpoints``."""

    def snapshot(self, path: Path) -> None:
        """Every table copied into a new SQLite file at ``path``, and checked (``transfer``)."""
        with SqliteDatabase.open(path) as copy:
            transfer.copy_all(self, copy)

    def version(self) -> int:
        if self.pg.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        version = int(self.pg.execute("SELECT version FROM schema_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.name}: database schema {version} is newer than this paper-digest "
                f"understands ({SCHEMA_VERSION}); upgrade paper-digest"
            )
        return version

    def migrate(self) -> None:
        """Bring the schema up to date in one transaction, under an advisory lock with the version read inside
        it: of several processes starting at once, one migrates and the others find nothing to do."""
        if self.version() == SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            found = self.version()
            for reached, statements in postgres_steps(found):
                for statement in statements:
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (reached,))
        if found:
            log.warning(f"upgraded {self.name} from schema {found} to {SCHEMA_VERSION}", extra={"event": "upgraded"})


def migrate_into(
    source: Path, url: str, *, progress: Callable[[str, int], None] | None = None
) -> list[transfer.TableCopy]:
    """Copy the SQLite database at ``source`` into the empty PostgreSQL database at ``url``, checked
    (``transfer.copy_all``): the schema and every row in one transaction, so a failure leaves it empty."""
    if found := tables(url):
        more = "…" if len(found) > 3 else ""
        raise StoreError(
            f"{shown(url)}: not empty ({plural(len(found), 'table')}: {', '.join(found[:3])}{more}); "
            "migrate-db copies into an empty database: create one with createdb"
        )
    with SqliteDatabase.open(source) as db, PostgresDatabase.open(url, migrate=False) as pg, pg.transaction():
        pg.migrate()
        return transfer.copy_all(db, pg, progress=progress)


def tables(url: str) -> list[str]:
    """The tables in the database's current schema, by name."""
    conn = connect(url)
    try:
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        return [row[0] for row in conn.execute(query)]
    except psycopg.Error as e:
        raise fault(url, e) from e
    finally:
        conn.close()


@contextmanager
def advisory_lock(url: str, key: int) -> Iterator[bool]:
    """A session advisory lock on ``key``, on a connection of its own, held for the block: True when taken,
    False when another session holds it (nothing waits). The server frees it if this process dies."""
    conn = connect(url, application="paper-digest lock")
    try:
        taken = bool(conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0])
        yield taken
    except psycopg.Error as e:
        raise fault(url, e) from e
    finally:
        conn.close()
