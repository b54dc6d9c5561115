"""Copies of the database file: a checked online backup, a restore that keeps the old file aside, and the
copy taken before an upgrade.

A copy is written to a hidden file beside its target with SQLite's online
backup (one read transaction: in WAL mode writers go on meanwhile), checked
with ``PRAGMA integrity_check``, flushed, and only then renamed into place:
the target is a whole, checked copy, or as it was.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.errors import StoreError
from digest.store.schema import SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class Copied:
    """A copy made: where, how many bytes, in how many seconds, of which schema."""

    path: Path
    size: int
    seconds: float
    schema: int


@dataclass(frozen=True, slots=True)
class Restored:
    """A restore done: the copy it came from, its schema, and where the file it replaced now is (None: none)."""

    source: Path
    schema: int
    aside: Path | None


def backup(conn: sqlite3.Connection, target: Path, *, now: Callable[[], float] = time.monotonic) -> Copied:
    """Copy the open database ``conn`` to ``target``, checked, atomically (see the module's note)."""
    started = now()
    schema = int(conn.execute("PRAGMA user_version").fetchone()[0])  # the copy's is the source's
    staged = _stage(conn, target, name=str(target))
    try:
        os.replace(staged, target)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{target}: cannot put the copy in place ({e}); check the folder's permissions") from e
    finally:
        staged.unlink(missing_ok=True)
    return Copied(target, target.stat().st_size, round(now() - started, 2), schema)


def restore(source: Path, database: Path, *, at: datetime) -> Restored:
    """Put a backup in the database's place; the current file (if any) is kept as
    ``NAME.before-restore-STAMP.sqlite3``. The caller holds the daemon's lock."""
    if not source.is_file():
        raise StoreError(f"{source}: no such backup file; check the path")
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as conn:
            schema = _check_source(conn, source)
            staged = _stage(conn, database, name=str(database))
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{source}: not a paper-digest database ({e}); choose a file 'digest backup' wrote") from e
    aside = None
    try:
        aside = _set_aside(database, at=at)
        os.replace(staged, database)
    except (OSError, sqlite3.Error) as e:
        if aside is not None and not database.exists():
            os.replace(aside, database)  # back as it was
        raise StoreError(f"{database}: cannot put the backup in place ({e}); the database is as it was") from e
    finally:
        staged.unlink(missing_ok=True)
    return Restored(source, schema, aside)


def stage_before_upgrade(conn: sqlite3.Connection, path: Path) -> Path | str:
    """A checked copy of a database about to be migrated, beside it but not yet named (``publish`` names
    it), or why none was taken: the disk is short, or the copy failed."""
    if short := short_of_room(path):
        return f"no copy taken: {short[0]} MB free beside it, about {short[1]} MB needed"
    try:
        return _stage(conn, path, name=str(path), tag=f"pre-upgrade-{os.getpid()}")
    except StoreError as e:
        return f"no copy taken: {e}"


def publish(staged: Path, path: Path, version: int) -> Path:
    """Name a copy staged before an upgrade from ``version``: ``NAME.pre-vN.sqlite3`` beside the database."""
    target = path.with_name(f"{path.stem}.pre-v{version}{path.suffix or '.sqlite3'}")
    os.replace(staged, target)
    return target


def _stage(conn: sqlite3.Connection, target: Path, *, name: str, tag: str = "tmp") -> Path:
    """A checked copy of ``conn`` in a hidden file beside ``target`` (``.NAME.TAG``), flushed to disk."""
    staged = target.with_name(f".{target.name}.{tag}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.unlink(missing_ok=True)
        with closing(sqlite3.connect(staged)) as copy:
            conn.backup(copy)  # one step: a read transaction on the source, so writers are not held up (WAL)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file (opening it makes it WAL again)
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise StoreError(f"{name}: the copy failed its integrity check ({verdict}); nothing was replaced")
        os.chmod(staged, 0o600)
        with open(staged, "rb") as handle:  # durable before it takes a name
            os.fsync(handle.fileno())
    except OSError as e:
        _drop(staged)
        fix = "check the free space and permissions of its folder"
        raise StoreError(f"{name}: cannot write the copy ({e.strerror}); {fix}") from e
    except sqlite3.Error as e:
        _drop(staged)
        raise StoreError(f"{name}: the copy failed ({e}); nothing was replaced") from e
    except BaseException:
        _drop(staged)
        raise
    return staged


def _drop(path: Path) -> None:
    with suppress(OSError):
        path.unlink(missing_ok=True)


def _check_source(conn: sqlite3.Connection, source: Path) -> int:
    """The schema of a backup fit to restore: a sound paper-digest database this version can read."""
    schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"papers", "subscribers"} <= tables:
        raise StoreError(f"{source}: not a paper-digest database (no papers or subscribers table)")
    if schema > SCHEMA_VERSION:
        raise StoreError(
            f"{source}: made by a newer paper-digest (schema {schema}, this one knows {SCHEMA_VERSION}); upgrade first"
        )
    verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        raise StoreError(f"{source}: the backup is damaged ({verdict}); choose another")
    return schema


def _set_aside(database: Path, *, at: datetime) -> Path | None:
    """Move the current database (its write-ahead log folded in first) to a dated name beside it."""
    if not database.exists():
        return None
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    aside = database.with_name(f"{database.stem}.before-restore-{at:%Y%m%dT%H%M%S}{database.suffix}")
    os.replace(database, aside)
    for leftover in ("-wal", "-shm"):
        Path(f"{database}{leftover}").unlink(missing_ok=True)
    return aside


def short_of_room(path: Path) -> tuple[int, int] | None:
    """(MB free, MB needed) when the folder of ``path`` lacks room for a whole copy of it and the work
    beside it (twice its size, and 64 MB), else None: a copy, or a VACUUM, is then not started."""
    size = path.stat().st_size
    free = free_bytes(path.parent)
    return (free >> 20, 2 * size >> 20) if free < 2 * size + (64 << 20) else None


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize
