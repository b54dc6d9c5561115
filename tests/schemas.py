"""Databases as released versions left them: built from the released migrations, for upgrade tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from digest import store


@contextmanager
def released(path: Path, version: int) -> Iterator[sqlite3.Connection]:
    """A database file at schema ``version`` (WAL, as every paper-digest file is), open to add rows to;
    committed when the block ends."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for migration in store.MIGRATIONS[:version]:
            for statement in migration:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
        yield conn
        conn.commit()
