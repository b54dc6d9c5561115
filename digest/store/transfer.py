"""Every row of one database copied into another of the other kind, and checked: ``digest migrate-db``, and
a PostgreSQL database's snapshot as a SQLite file (a dry run's scratch copy).

Tables go in the order their foreign keys need, each row as it is (ids
included); each table's rows are then read back from both sides in the same
order and compared by count and by a checksum: the sum of each row's SHA-256, so that the two
databases' orders of text (their collations) cannot tell an exact copy apart.
PostgreSQL's identity counters are moved past the copied ids, so the next
digest or delivery gets a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from digest.errors import StoreError
from digest.store.db import Database

# (table, the columns that order its rows); parents before the tables that name them.
TABLES: tuple[tuple[str, str], ...] = (
    ("dumps", "id"),
    ("papers", "rowid"),
    ("sightings", "dump, paper"),
    ("paper_aliases", "alias"),
    ("subscribers", "name"),
    ("digests", "id"),
    ("digest_items", "digest, paper"),
    ("bodies", "digest"),
    ("deliveries", "id"),
    ("feedback", "subscriber, paper"),
    ("signups", "id"),
    ("fetches", "day"),
    ("profile_files", "path"),
    ("profile_folders", "folder"),
    ("received", "subscriber, paper"),
    ("bounces", "id"),
    ("suspensions", "address"),
    ("claims", "subscriber"),
)
IDENTITIES = (("dumps", "id"), ("papers", "rowid"), ("digests", "id"), ("deliveries", "id"), ("bounces", "id"))
BATCH = 2000  # rows a statement


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table as copied and checked: its rows, and the checksum both sides gave."""

    table: str
    rows: int
    sha256: str


def copy_all(
    source: Database, target: Database, *, progress: Callable[[str, int], None] | None = None
) -> list[TableCopy]:
    """Copy every table of ``source`` into the empty ``target`` (both at this schema) in one transaction, then
    check each table on both sides; a ``StoreError`` names the first that differs (and nothing is kept)."""
    copied = []
    with target.transaction() as conn:
        target.defer_foreign_keys()
        for table, order in TABLES:
            count = 0
            for rows, columns in _batches(source, table, order):
                marks = ", ".join("?" * len(columns))
                conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)  # noqa: S608 - names from TABLES
                count += len(rows)
                if progress is not None:
                    progress(table, count)
        if target.dialect == "postgresql":
            for table, column in IDENTITIES:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"  # noqa: S608 - names fixed above
                    f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                )
        for table, order in TABLES:
            copied.append(_checked(source, target, table, order))
    return copied


def _batches(db: Database, table: str, order: str) -> Iterator[tuple[list[tuple[Any, ...]], list[str]]]:
    """A table's rows in ``order``, ``BATCH`` at a time, with their column names."""
    last: tuple[Any, ...] | None = None
    keys = [k.strip() for k in order.split(",")]
    while True:
        after = f" WHERE ({order}) > ({', '.join('?' * len(keys))})" if last is not None else ""
        rows = db.conn.execute(
            f"SELECT {_columns(db, table)} FROM {table}{after} ORDER BY {order} LIMIT {BATCH}",  # noqa: S608 - fixed names
            last or (),
        ).fetchall()
        if not rows:
            return
        columns = list(rows[0].keys())
        yield [tuple(row) for row in rows], columns
        last = tuple(rows[-1][k] for k in keys)


def _columns(db: Database, table: str) -> str:
    """What to select: every column, and for SQLite's ``papers`` its rowid (hidden from ``*``; a column of
    its own on PostgreSQL)."""
    return "rowid, *" if table == "papers" and db.dialect == "sqlite" else "*"


def _checked(source: Database, target: Database, table: str, order: str) -> TableCopy:
    counts, sums = [], []
    for db in (source, target):
        total = count = 0
        for rows, columns in _batches(db, table, order):
            for row in rows:
                named = dict(zip(columns, row, strict=True))
                line = repr([_plain(named[c]) for c in sorted(named)]).encode()
                total += int.from_bytes(hashlib.sha256(line).digest())
                count += 1
        counts.append(count)
        sums.append(f"{total % (1 << 256):064x}")
    if counts[0] != counts[1] or sums[0] != sums[1]:
        raise StoreError(
            f"{target.name}: table {table} did not copy exactly ({counts[0]} rows, {counts[1]} copied, "
            f"checksums {sums[0][:12]} and {sums[1][:12]}); nothing was kept, so the source is as it was"
        )
    return TableCopy(table, counts[0], sums[0])


def _plain(value: Any) -> Any:
    """A value as both databases give it back (bytes, not a memoryview)."""
    return bytes(value) if isinstance(value, memoryview) else value
